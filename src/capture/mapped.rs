//! Classic pcap files read through a memory map, without copying packets.
//!
//! Why: at tens of Gbit/s, copying every byte twice (kernel to reader buffer, reader buffer to
//! batch) costs as much as the rest of the reader. Mapped, a batch points into the file.
//! Pages the workers are done with are handed back (`MADV_DONTNEED` per window), so the
//! resident set stays at the few windows in flight rather than growing to the file's size.

use memmap2::{Mmap, UncheckedAdvice};
use std::sync::Arc;

/// Span of the file released as one unit once no batch refers to it.
pub const WINDOW: usize = 4 << 20;

/// A span of the mapping that batches hold on to; dropping the last holder releases its pages.
pub struct Window {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl Window {
    pub fn new(map: &Arc<Mmap>, index: usize) -> Arc<Window> {
        let start = index.saturating_mul(WINDOW).min(map.len());
        let end = start.saturating_add(WINDOW).min(map.len());
        Arc::new(Window {
            map: map.clone(),
            start,
            end,
        })
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if self.end > self.start {
            // SAFETY: the pages are read-only file pages; nothing reads this span after the
            // last batch holding it is dropped (a later read would refault from the page
            // cache, which is also correct). Failure only leaves the pages resident.
            unsafe {
                let _ = self.map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    self.start,
                    self.end - self.start,
                );
            }
        }
    }
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Window({}..{})", self.start, self.end)
    }
}

/// Byte order and timestamp unit of a classic pcap file, from its magic number.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub big_endian: bool,
    pub nanos: bool,
    pub linktype: u16,
}

/// Parses the 24-byte global header; `None` if this is not classic pcap (e.g. pcapng).
pub fn header(d: &[u8]) -> Option<Header> {
    let magic: [u8; 4] = d.get(..4)?.try_into().ok()?;
    let (big_endian, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    let lt: [u8; 4] = d.get(20..24)?.try_into().ok()?;
    let lt = if big_endian {
        u32::from_be_bytes(lt)
    } else {
        u32::from_le_bytes(lt)
    };
    Some(Header {
        big_endian,
        nanos,
        linktype: lt as u16,
    })
}

/// One record header.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub ts_ns: u64,
    pub caplen: usize,
    pub orig_len: u32,
}

/// Reads the 16-byte record header at `pos`; `None` if fewer than 16 bytes remain.
#[inline]
pub fn record(d: &[u8], pos: usize, h: Header) -> Option<Record> {
    let b = d.get(pos..pos.checked_add(16)?)?;
    let u = |i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if h.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let frac = u64::from(u(4));
    let frac_ns = if h.nanos { frac } else { frac * 1000 };
    Some(Record {
        ts_ns: u64::from(u(0)) * 1_000_000_000 + frac_ns,
        caplen: u(8) as usize,
        orig_len: u(12),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_all_four_magics() {
        let mut le = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        le.extend_from_slice(&[0; 12]);
        le.extend_from_slice(&1u32.to_le_bytes());
        let h = header(&le).expect("classic");
        assert!(!h.big_endian && !h.nanos && h.linktype == 1);
        let mut be = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4];
        be.extend_from_slice(&[0; 12]);
        be.extend_from_slice(&113u32.to_be_bytes());
        let h = header(&be).expect("classic");
        assert!(h.big_endian && h.nanos && h.linktype == 113);
        assert!(header(&[0x0a, 0x0d, 0x0d, 0x0a]).is_none());
        assert!(header(&le[..10]).is_none());
        let mut rec = Vec::new();
        for v in [7u32, 5, 60, 1514] {
            rec.extend_from_slice(&v.to_be_bytes());
        }
        let r = record(&rec, 0, h).expect("record");
        assert_eq!((r.ts_ns, r.caplen, r.orig_len), (7_000_000_005, 60, 1514));
        assert!(record(&rec, 1, h).is_none());
        assert!(record(&rec, usize::MAX - 3, h).is_none());
    }
}
