//! Classic pcap files read into shared chunks, packets not copied again.
//!
//! Why: at tens of Gbit/s, copying every byte twice (kernel to reader buffer, reader buffer to
//! batch) costs as much as the rest of the reader, and memory-mapping the file costs more
//! still (a page fault and page-table work per 4 KiB page). So the file is `read` into 1 MiB
//! chunks; a batch refers to the chunks its packets lie in, and a chunk goes back to a
//! bounded pool when the last batch holding it is done. Resident memory is the chunks in
//! flight, whatever the file size.

use crossbeam_channel::{Receiver, Sender};
use std::io::Read;
use std::sync::Arc;

/// Size of a pooled chunk. A record larger than this gets a chunk of its own.
pub const CHUNK: usize = 1 << 20;
/// Chunks kept for reuse.
const POOL: usize = 64;

/// A filled buffer shared by the batches whose packets lie in it.
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
    pool: Option<Sender<Vec<u8>>>,
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(p) = &self.pool {
            // Back to the pool if there is room; otherwise simply freed.
            let _ = p.try_send(std::mem::take(&mut self.buf));
        }
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.len)
    }
}

/// Reads a file into chunks, carrying a record cut by a chunk's end into the next one.
pub struct ChunkReader<R: Read> {
    src: R,
    give: Sender<Vec<u8>>,
    take: Receiver<Vec<u8>>,
    eof: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(src: R) -> Self {
        let (give, take) = crossbeam_channel::bounded(POOL);
        ChunkReader {
            src,
            give,
            take,
            eof: false,
        }
    }

    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// A new chunk starting with `carry`, then what the file gives: at least `need` bytes
    /// in all (and at least one new byte) unless the file ends first. It does not wait to
    /// fill the whole chunk, so a pipe fed slowly still delivers its packets promptly; a
    /// regular file fills it in one read anyway.
    pub fn next(&mut self, carry: &[u8], need: usize) -> std::io::Result<Arc<Chunk>> {
        let cap = need.max(CHUNK);
        let (mut buf, pooled) = match self.take.try_recv() {
            Ok(b) if cap == CHUNK && b.len() == CHUNK => (b, true),
            // Pooled buffers are kept at full length, so they are initialised only once.
            _ => (vec![0u8; cap], cap == CHUNK),
        };
        buf[..carry.len()].copy_from_slice(carry);
        let mut len = carry.len();
        let want = need.max(carry.len() + 1).min(buf.len());
        while len < want && !self.eof {
            match self.src.read(&mut buf[len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Arc::new(Chunk {
            buf,
            len,
            pool: pooled.then(|| self.give.clone()),
        }))
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

    #[test]
    fn chunks_carry_and_recycle() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 10)).map(|i| (i % 251) as u8).collect();
        let mut r = ChunkReader::new(&data[..]);
        let a = r.next(&[], 0).expect("read");
        assert_eq!(a.len(), CHUNK, "a slice reads whole");
        let b = r.next(&a[CHUNK - 5..], 0).expect("read");
        assert_eq!(&b[..5], &data[CHUNK - 5..CHUNK]);
        assert_eq!(b.len(), CHUNK);
        drop(a); // back to the pool
        let big = r.next(&[], CHUNK * 3).expect("read");
        assert_eq!(big.len(), 15);
        assert!(r.at_eof());
        assert_eq!(&big[..], &data[CHUNK * 2 - 5..]);
    }
}
