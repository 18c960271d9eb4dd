//! Capture stage: reads classic pcap (either byte order, micro- or nanosecond) and pcapng
//! (any number of sections and interfaces, each with its own link type and time resolution).
//!
//! Files are read with `pcap-parser` rather than libpcap: libpcap refuses a pcapng file whose
//! interfaces have different link types ("an interface has a type different from the type of the
//! first interface"), which is exactly what `dumpcap -i eth0 -i any` writes. Live capture (`-i`)
//! goes through libpcap in a later stage of the project.

mod file;
mod mapped;

pub use file::{CaptureError, FileReader};
pub use mapped::Window;

use memmap2::Mmap;
use std::sync::Arc;

/// Where a packet lies in a memory-mapped capture: a batch keeps the map and the windows
/// alive instead of copying the bytes.
#[derive(Debug, Clone, Copy)]
pub struct MapRef<'a> {
    pub map: &'a Arc<Mmap>,
    /// The window(s) the record lies in (the same one twice unless it crosses a boundary).
    pub windows: [&'a Arc<Window>; 2],
    /// Offset of the packet's first byte in the map.
    pub off: u64,
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
    /// Set when `data` lies in a memory map (see [`MapRef`]).
    pub mapped: Option<MapRef<'a>>,
}

/// Metadata of one packet inside a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct PktMeta {
    pub ts_ns: u64,
    /// Offset in `Batch::data`, or in the map when `mapped`.
    pub start: u64,
    pub mapped: bool,
    pub len: u32,
    pub orig_len: u32,
    pub linktype: u16,
    pub iface: u16,
}

/// A batch of packets: copied out of the reader into one contiguous buffer, or (for a
/// memory-mapped file) referring to the map, whose windows it keeps alive.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub pkts: Vec<PktMeta>,
    map: Option<Arc<Mmap>>,
    windows: Vec<Arc<Window>>,
}

impl Batch {
    pub fn with_capacity(bytes: usize, pkts: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            pkts: Vec::with_capacity(pkts),
            map: None,
            windows: Vec::new(),
        }
    }

    pub fn push(&mut self, p: &PacketRef<'_>) {
        let (start, mapped) = match p.mapped {
            Some(m)
                if !self
                    .map
                    .as_ref()
                    .is_some_and(|own| !Arc::ptr_eq(own, m.map)) =>
            {
                if self.map.is_none() {
                    self.map = Some(m.map.clone());
                }
                for w in m.windows {
                    if !self.windows.last().is_some_and(|l| Arc::ptr_eq(l, w)) {
                        self.windows.push(w.clone());
                    }
                }
                (m.off, true)
            }
            _ => {
                let start = self.data.len() as u64;
                self.data.extend_from_slice(p.data);
                (start, false)
            }
        };
        self.pkts.push(PktMeta {
            ts_ns: p.ts_ns,
            start,
            mapped,
            len: p.data.len() as u32,
            orig_len: p.orig_len,
            linktype: p.linktype,
            iface: p.iface,
        });
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
        self.windows.clear();
        self.map = None;
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub fn get(&self, i: usize) -> PacketRef<'_> {
        let m = self.pkts[i];
        let (start, end) = (m.start as usize, m.start as usize + m.len as usize);
        let data: &[u8] = match (&self.map, m.mapped) {
            (Some(map), true) => map.get(start..end).unwrap_or(&[]),
            _ => self.data.get(start..end).unwrap_or(&[]),
        };
        PacketRef {
            ts_ns: m.ts_ns,
            linktype: m.linktype,
            iface: m.iface,
            orig_len: m.orig_len,
            data,
            mapped: None,
        }
    }
}
