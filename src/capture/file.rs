//! Streaming pcap/pcapng file reader with precise error positions.

use super::chunks::{self, ChunkReader, Header};
use super::{ChunkRef, PacketRef};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Buffer size of the reader; also the largest record we accept (a pcap record larger than
/// this is reported as corrupt rather than grown into: snaplen is at most 256 KiB in practice).
const READ_BUFFER: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: empty file, not a pcap or pcapng capture")]
    Empty { path: PathBuf },
    #[error("{path}: not a pcap or pcapng file (unrecognised magic number at byte 0)")]
    BadMagic { path: PathBuf },
    #[error("{path}: corrupt capture at byte offset {offset} (after packet {packet}): {what}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        packet: u64,
        what: String,
    },
    #[error("{path}: read error at byte offset {offset}")]
    Read { path: PathBuf, offset: u64 },
}

/// Interface as declared by a pcapng Interface Description Block.
#[derive(Debug, Clone, Copy)]
struct Iface {
    linktype: u16,
    /// Units per second of this interface's timestamps.
    resolution: u64,
    offset_s: i64,
}

/// Reads one capture file packet by packet, calling back for each; the borrowed packet is
/// valid only during the callback.
pub struct FileReader {
    path: PathBuf,
    /// Streaming parser (pcapng); `None` for classic pcap.
    inner: Option<Box<dyn PcapReaderIterator + Send>>,
    /// Classic pcap: read in shared chunks, packets not copied again.
    classic: Option<(ChunkReader<File>, Header)>,
    /// Byte offset of the next block within the file.
    offset: u64,
    packets: u64,
    legacy: Option<(u16, bool)>,
    ifaces: Vec<Iface>,
    /// Records skipped as unreadable but not fatal (e.g. a truncated last record).
    pub truncated_tail: bool,
    /// Set from outside (SIGTERM): reading ends after the packet in hand.
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl FileReader {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let mut file = File::open(path).map_err(|source| CaptureError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // Classic pcap (the common case, and the fast path) is told by its 24-byte header;
        // anything else goes to the streaming parser from the start of the file.
        let mut head = [0u8; 24];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return Err(CaptureError::Read {
                        path: path.to_path_buf(),
                        offset: got as u64,
                    })
                }
            }
        }
        if let Some(h) = chunks::header(&head[..got]) {
            return Ok(FileReader {
                path: path.to_path_buf(),
                inner: None,
                classic: Some((ChunkReader::for_file(file, got as u64), h)),
                offset: 24,
                packets: 0,
                legacy: None,
                ifaces: Vec::new(),
                truncated_tail: false,
                stop: None,
            });
        }
        // Not classic pcap: give the streaming parser the bytes already read, then the rest.
        let file = Prefixed {
            head: head[..got].to_vec(),
            at: 0,
            file,
        };
        let inner = match create_reader(READ_BUFFER, file) {
            Ok(r) => r,
            Err(PcapError::Eof) => {
                return Err(CaptureError::Empty {
                    path: path.to_path_buf(),
                })
            }
            Err(PcapError::ReadError) => {
                return Err(CaptureError::Read {
                    path: path.to_path_buf(),
                    offset: 0,
                })
            }
            Err(_) => {
                return Err(CaptureError::BadMagic {
                    path: path.to_path_buf(),
                })
            }
        };
        Ok(FileReader {
            path: path.to_path_buf(),
            inner: Some(inner),
            classic: None,
            offset: 0,
            packets: 0,
            legacy: None,
            ifaces: Vec::new(),
            truncated_tail: false,
            stop: None,
        })
    }

    /// Whether packets come in shared chunks (batches then hold references, not copies).
    /// Reading ends (as at the end of the file) once `stop` is set.
    pub fn set_stop(&mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.stop = Some(stop);
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn shares_buffers(&self) -> bool {
        self.classic.is_some()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Packets delivered so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn corrupt(&self, what: impl Into<String>) -> CaptureError {
        corrupt(&self.path, self.offset, self.packets, what)
    }

    /// Calls `f` for every packet until the end of the file. Returns the number of packets
    /// read. A record cut short at the very end of the file (a capture copied while it was
    /// being written) sets `truncated_tail` and ends the file normally; corruption in the
    /// middle is an error that names the byte offset.
    pub fn for_each<F: FnMut(&PacketRef<'_>)>(&mut self, mut f: F) -> Result<u64, CaptureError> {
        self.for_each_or_wait(|p| {
            if let Some(p) = p {
                f(p)
            }
        })
    }

    /// As [`FileReader::for_each`], and `f(None)` before a read that may block (a pipe, or a
    /// file being written): the moment to hand on packets held back for batching, so that
    /// an alert never waits for traffic that may not come.
    pub fn for_each_or_wait<F: FnMut(Option<&PacketRef<'_>>)>(
        &mut self,
        mut f: F,
    ) -> Result<u64, CaptureError> {
        if let Some((mut reader, h)) = self.classic.take() {
            let r = self.for_each_classic(&mut reader, h, f);
            self.classic = Some((reader, h));
            return r;
        }
        let Some(mut inner) = self.inner.take() else {
            return Ok(self.packets);
        };
        let r = self.for_each_stream(&mut inner, &mut f);
        self.inner = Some(inner);
        r
    }

    fn for_each_classic<F: FnMut(Option<&PacketRef<'_>>)>(
        &mut self,
        reader: &mut ChunkReader<File>,
        h: Header,
        mut f: F,
    ) -> Result<u64, CaptureError> {
        let read_err = |s: &Self| CaptureError::Read {
            path: s.path.clone(),
            offset: s.offset,
        };
        let mut chunk = reader.next(&[], 0).map_err(|_| read_err(self))?;
        let mut pos = 0usize;
        // Bytes of the chunk asked for ahead of the walk (see `PREFETCH_AHEAD`).
        let mut fetched = 0usize;
        loop {
            if self.stopped() {
                return Ok(self.packets);
            }
            let to = (pos + PREFETCH_AHEAD).min(chunk.len());
            while fetched < to {
                super::prefetch(&chunk[fetched..], 1);
                fetched += 64;
            }
            let rec = match chunks::record(&chunk, pos, h) {
                Some(r) => r,
                None => {
                    if reader.at_eof() {
                        self.truncated_tail = pos < chunk.len();
                        return Ok(self.packets);
                    }
                    if !reader.is_mapped() {
                        f(None);
                    }
                    chunk = reader.next(&chunk[pos..], 16).map_err(|_| read_err(self))?;
                    pos = 0;
                    fetched = 0;
                    continue;
                }
            };
            if rec.caplen > READ_BUFFER {
                return Err(self.corrupt(format!(
                    "record larger than {READ_BUFFER} bytes (bogus length field)"
                )));
            }
            let end = pos + 16 + rec.caplen;
            if end > chunk.len() {
                if reader.at_eof() {
                    self.truncated_tail = true;
                    return Ok(self.packets);
                }
                if !reader.is_mapped() {
                    f(None);
                }
                chunk = reader
                    .next(&chunk[pos..], 16 + rec.caplen)
                    .map_err(|_| read_err(self))?;
                pos = 0;
                fetched = 0;
                continue;
            }
            self.packets += 1;
            f(Some(&PacketRef {
                ts_ns: rec.ts_ns,
                linktype: h.linktype,
                iface: 0,
                orig_len: rec.orig_len,
                data: &chunk[pos + 16..end],
                chunk: Some(ChunkRef {
                    chunk: &chunk,
                    off: (pos + 16) as u32,
                }),
            }));
            self.offset += (end - pos) as u64;
            pos = end;
        }
    }

    fn for_each_stream<F: FnMut(Option<&PacketRef<'_>>)>(
        &mut self,
        inner: &mut Box<dyn PcapReaderIterator + Send>,
        f: &mut F,
    ) -> Result<u64, CaptureError> {
        let mut refills_without_progress = 0u32;
        loop {
            if self.stopped() {
                return Ok(self.packets);
            }
            match inner.next() {
                Ok((len, block)) => {
                    refills_without_progress = 0;
                    let pkt = match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy = Some((h.network.0 as u16, h.is_nanosecond_precision()));
                            None
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let (lt, nanos) = self.legacy.unwrap_or((1, false));
                            let frac = if nanos {
                                u64::from(b.ts_usec)
                            } else {
                                u64::from(b.ts_usec) * 1000
                            };
                            let caplen = (b.caplen as usize).min(b.data.len());
                            Some(PacketRef {
                                ts_ns: u64::from(b.ts_sec) * 1_000_000_000 + frac,
                                linktype: lt,
                                iface: 0,
                                orig_len: b.origlen,
                                data: &b.data[..caplen],
                                chunk: None,
                            })
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            // A new section starts a new interface numbering.
                            self.ifaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u16,
                                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                                offset_s: idb.ts_offset(),
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(ifc) = self.ifaces.get(epb.if_id as usize).copied() else {
                                let e = corrupt(
                                    &self.path,
                                    self.offset,
                                    self.packets,
                                    format!("packet refers to undeclared interface {}", epb.if_id),
                                );
                                return Err(e);
                            };
                            let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ts_ns = scale_to_ns(raw, ifc.resolution)
                                .saturating_add_signed(ifc.offset_s.saturating_mul(1_000_000_000));
                            let caplen = (epb.caplen as usize).min(epb.data.len());
                            Some(PacketRef {
                                ts_ns,
                                linktype: ifc.linktype,
                                iface: epb.if_id as u16,
                                orig_len: epb.origlen,
                                data: &epb.data[..caplen],
                                chunk: None,
                            })
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let lt = self.ifaces.first().map(|i| i.linktype).unwrap_or(1);
                            let caplen = (spb.origlen as usize).min(spb.data.len());
                            Some(PacketRef {
                                ts_ns: 0,
                                linktype: lt,
                                iface: 0,
                                orig_len: spb.origlen,
                                data: &spb.data[..caplen],
                                chunk: None,
                            })
                        }
                        PcapBlockOwned::NG(_) => None,
                    };
                    if let Some(p) = pkt {
                        self.packets += 1;
                        f(Some(&p));
                    }
                    inner.consume(len);
                    self.offset += len as u64;
                }
                Err(PcapError::Eof) => return Ok(self.packets),
                Err(PcapError::Incomplete(_)) => {
                    // A record spans the end of the buffer: read more. The parser reports
                    // UnexpectedEof once the file is exhausted, so this loop ends; the
                    // counter only guards against a reader that keeps returning nothing.
                    refills_without_progress += 1;
                    if refills_without_progress > 10_000 {
                        return Err(self.corrupt("reader makes no progress"));
                    }
                    f(None);
                    if inner.refill().is_err() {
                        self.truncated_tail = true;
                        return Ok(self.packets);
                    }
                }
                Err(PcapError::UnexpectedEof) => {
                    self.truncated_tail = true;
                    return Ok(self.packets);
                }
                Err(PcapError::BufferTooSmall) => {
                    return Err(self.corrupt(format!(
                        "record larger than {READ_BUFFER} bytes (bogus length field)"
                    )))
                }
                Err(PcapError::ReadError) => {
                    return Err(CaptureError::Read {
                        path: self.path.clone(),
                        offset: self.offset,
                    })
                }
                Err(e) => {
                    return Err(corrupt(
                        &self.path,
                        self.offset,
                        self.packets,
                        format!("unparseable block ({e:?})"),
                    ))
                }
            }
        }
    }
}

/// The bytes already read from the start of a file, then the rest of it, in reads that fill
/// as much of the caller's buffer as one read of the file can (works on pipes too, where
/// seeking back is not possible).
struct Prefixed {
    head: Vec<u8>,
    at: usize,
    file: File,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.head.get(self.at..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        if n == buf.len() {
            return Ok(n);
        }
        match self.file.read(&mut buf[n..]) {
            Ok(m) => Ok(n + m),
            Err(_) if n > 0 => Ok(n),
            Err(e) => Err(e),
        }
    }
}

fn corrupt(path: &Path, offset: u64, packet: u64, what: impl Into<String>) -> CaptureError {
    CaptureError::Corrupt {
        path: path.to_path_buf(),
        offset,
        packet,
        what: what.into(),
    }
}

/// Converts a timestamp in `resolution` units per second to nanoseconds without overflow.
fn scale_to_ns(raw: u64, resolution: u64) -> u64 {
    if resolution == 0 {
        return raw;
    }
    let secs = raw / resolution;
    let frac = raw % resolution;
    let frac_ns = (u128::from(frac) * 1_000_000_000u128 / u128::from(resolution)) as u64;
    secs.saturating_mul(1_000_000_000).saturating_add(frac_ns)
}

/// How far ahead of the record walk the file's bytes are requested. Each record header's
/// place depends on the previous one's length, so without this the walk waits on memory
/// once per packet; with it, a mapped file streams in at memory speed, and the workers find
/// the bytes in the shared cache.
const PREFETCH_AHEAD: usize = 8192;

#[cfg(test)]
mod tests {
    use super::scale_to_ns;

    #[test]
    fn scales_common_resolutions() {
        assert_eq!(scale_to_ns(1_500_000, 1_000_000), 1_500_000_000);
        assert_eq!(scale_to_ns(1_500_000_001, 1_000_000_000), 1_500_000_001);
        // 2^-10 s units (if_tsresol = 0x8a)
        assert_eq!(scale_to_ns(1024 + 512, 1024), 1_500_000_000);
    }
}
