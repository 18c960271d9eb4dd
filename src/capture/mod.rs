//! Capture stage: reads classic pcap (either byte order, micro- or nanosecond) and pcapng
//! (any number of sections and interfaces, each with its own link type and time resolution).
//!
//! Files are read with `pcap-parser` rather than libpcap: libpcap refuses a pcapng file whose
//! interfaces have different link types ("an interface has a type different from the type of the
//! first interface"), which is exactly what `dumpcap -i eth0 -i any` writes. Live capture (`-i`)
//! goes through libpcap in a later stage of the project.

mod file;

pub use file::{CaptureError, FileReader};

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
}

/// Metadata of one packet inside a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct PktMeta {
    pub ts_ns: u64,
    pub start: u32,
    pub len: u32,
    pub orig_len: u32,
    pub linktype: u16,
    pub iface: u16,
}

/// A batch of packets copied out of the reader into one contiguous buffer, so that handing
/// packets to a worker costs one allocation per batch (and none once batches are recycled).
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub pkts: Vec<PktMeta>,
}

impl Batch {
    pub fn with_capacity(bytes: usize, pkts: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            pkts: Vec::with_capacity(pkts),
        }
    }

    pub fn push(&mut self, p: &PacketRef<'_>) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(p.data);
        self.pkts.push(PktMeta {
            ts_ns: p.ts_ns,
            start,
            len: p.data.len() as u32,
            orig_len: p.orig_len,
            linktype: p.linktype,
            iface: p.iface,
        });
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.pkts.clear();
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub fn get(&self, i: usize) -> PacketRef<'_> {
        let m = self.pkts[i];
        let end = (m.start + m.len) as usize;
        PacketRef {
            ts_ns: m.ts_ns,
            linktype: m.linktype,
            iface: m.iface,
            orig_len: m.orig_len,
            data: &self.data[m.start as usize..end],
        }
    }
}
