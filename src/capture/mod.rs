//! Capture stage: reads classic pcap (either byte order, micro- or nanosecond) and pcapng
//! (any number of sections and interfaces, each with its own link type and time resolution).
//!
//! Files are read with `pcap-parser` rather than libpcap: libpcap refuses a pcapng file whose
//! interfaces have different link types ("an interface has a type different from the type of the
//! first interface"), which is exactly what `dumpcap -i eth0 -i any` writes. Live capture
//! (`-i`) has two back ends: AF_PACKET rings with fanout (`afpacket`, Linux, one ring per
//! worker) and libpcap (`pcap_live`, one reader thread, as for files).

#[cfg(target_os = "linux")]
pub mod afpacket;
mod chunks;
mod file;
pub mod live;
pub mod pcap_live;

pub use chunks::{explain_sigbus, Chunk};
pub use file::{CaptureError, FileReader};

use std::sync::Arc;

/// Waits until one of `fds` is readable or `ms` milliseconds pass.
pub fn wait_readable(fds: &[libc::c_int], ms: i32) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        })
        .collect();
    // SAFETY: a valid array of pollfd of the length given. EINTR (a signal) just returns.
    unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
}

/// Asks the CPU to start loading the first `lines` cache lines of `d`: a hint that never
/// faults, used to have packet bytes in cache by the time they are parsed.
#[inline]
pub fn prefetch(d: &[u8], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = d.as_ptr() as *const i8;
        for i in 0..lines {
            // SAFETY: prefetching is a hint; it never faults, even for an invalid address,
            // and SSE is part of the x86_64 baseline.
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * i));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (d, lines);
}

/// Where a packet lies in a shared chunk: a batch keeps the chunk alive instead of copying
/// the bytes.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRef<'a> {
    pub chunk: &'a Arc<Chunk>,
    /// Offset of the packet's first byte in the chunk.
    pub off: u32,
}

/// One packet as read from a capture, borrowing the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct PacketRef<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// LINKTYPE_* value of the interface the packet came from.
    pub linktype: u16,
    /// Interface index within the file (pcapng), 0 for classic pcap.
    pub iface: u16,
    /// Length on the wire (may exceed `data.len()` when the capture was snapped).
    pub orig_len: u32,
    pub data: &'a [u8],
    /// Set when `data` lies in a shared chunk (see [`ChunkRef`]).
    pub chunk: Option<ChunkRef<'a>>,
}

/// Metadata of one packet inside a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct PktMeta {
    pub ts_ns: u64,
    /// Offset in `Batch::data`, or in chunk `src` of the batch.
    pub start: u32,
    /// Index into the batch's chunks; `OWN` when the bytes were copied into `Batch::data`.
    pub src: u16,
    pub len: u32,
    pub orig_len: u32,
    pub linktype: u16,
    pub iface: u16,
}

/// `PktMeta::src` of a packet copied into the batch.
const OWN: u16 = u16::MAX;

/// A batch of packets: copied out of the reader into one contiguous buffer, or referring to
/// the shared chunks they were read into, which it keeps alive.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub pkts: Vec<PktMeta>,
    chunks: Vec<Arc<Chunk>>,
}

impl Batch {
    pub fn with_capacity(bytes: usize, pkts: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            pkts: Vec::with_capacity(pkts),
            chunks: Vec::new(),
        }
    }

    pub fn push(&mut self, p: &PacketRef<'_>) {
        let (start, src) = match p.chunk {
            Some(c) => {
                if !self.chunks.last().is_some_and(|l| Arc::ptr_eq(l, c.chunk)) {
                    self.chunks.push(c.chunk.clone());
                }
                match u16::try_from(self.chunks.len() - 1) {
                    Ok(i) if i != OWN => (c.off, i),
                    _ => self.copy_in(p.data),
                }
            }
            None => self.copy_in(p.data),
        };
        self.pkts.push(PktMeta {
            ts_ns: p.ts_ns,
            start,
            src,
            len: p.data.len() as u32,
            orig_len: p.orig_len,
            linktype: p.linktype,
            iface: p.iface,
        });
    }

    fn copy_in(&mut self, d: &[u8]) -> (u32, u16) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(d);
        (start, OWN)
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
        self.chunks.clear();
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// The bytes of packet `i`, if there is one.
    #[inline]
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        let m = self.pkts.get(i)?;
        let (start, end) = (m.start as usize, m.start as usize + m.len as usize);
        match m.src {
            OWN => self.data.get(start..end),
            c => self.chunks.get(usize::from(c))?.get(start..end),
        }
    }

    pub fn get(&self, i: usize) -> PacketRef<'_> {
        let m = self.pkts[i];
        let (start, end) = (m.start as usize, m.start as usize + m.len as usize);
        let data: &[u8] = match m.src {
            OWN => self.data.get(start..end).unwrap_or(&[]),
            i => self
                .chunks
                .get(usize::from(i))
                .and_then(|c| c.get(start..end))
                .unwrap_or(&[]),
        };
        PacketRef {
            ts_ns: m.ts_ns,
            linktype: m.linktype,
            iface: m.iface,
            orig_len: m.orig_len,
            data,
            chunk: None,
        }
    }
}
