//! The crash-safe on-disk spool: one per sink, in `DIR/<sink name>/`, holding the events the
//! sink could not deliver yet (receiver down, slow, queue full), delivered in order later.
//!
//! Why our own format: we need a small append-only log with a checksum per record, a
//! persisted read cursor and a hard size bound, that survives `kill -9` and a torn tail.
//! Embedded databases (sled, rocksdb, sqlite) are far larger than the problem and do not
//! bound their disk use the way `--spool-max` must; queue crates on crates.io either keep
//! everything in memory or lack checksums. The format below is small and fully ours.
//!
//! Layout of `DIR/<sink name>/`:
//! * `00000001.spool`, `00000002.spool`, ...: segments, written in sequence order; a new one
//!   is started when the current one reaches `min(16 MiB, max_bytes / 4)`.
//! * `cursor`: where reading resumes: segment sequence (u64 LE), byte offset (u64 LE), CRC-32
//!   of those 16 bytes (u32 LE). Written to `cursor.tmp` and renamed over (atomic).
//! * `lock`: held with `flock` while the spool is open, so two processes never share one.
//!
//! Record: `[u32 LE payload length][u32 LE CRC-32 (IEEE) of payload][payload]`, payload =
//! kind u8, severity u8, flow_id u64 LE, source address tag u8 (0 none, 4 IPv4, 16 IPv6)
//! followed by that many address bytes, ts_ns u64 LE, then the event's line (no newline).
//!
//! Durability: every `append` is one `write` into the segment file, so once it returns the
//! record is in the kernel's page cache and a `kill -9` loses nothing. The file is fsynced
//! when a segment is closed (rotation), on `sync` (at most once a second, driven by the sink
//! thread, outside any lock the writer waits on), and on `finish`: a power loss may lose up
//! to about the last second. The cursor is rewritten after each consumed batch, so a crash
//! replays at most the batch being delivered (at-least-once: duplicates, never losses).
//!
//! Damage found at open (a torn tail from a crash mid-write, a flipped byte) is cut out of
//! the segment (rewritten without it) and counted in [`OpenReport::corrupt`]; the records
//! around it survive. Damage found later while reading loses the rest of that segment,
//! counted in [`Spool::corrupt`]. Never a panic.

use crate::output::transport::{Kind, Out, OutMeta};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A segment is closed at this size (or `max_bytes / 4` when smaller) so consumed space is
/// given back in pieces and a rewrite at open stays small.
pub const SEG_MAX: u64 = 16 << 20;
/// Smallest segment size, so a tiny `--spool-max` does not make one file per record.
const SEG_MIN: u64 = 4 << 10;
/// A length field above this is damage, not an event (events are a few KiB).
const MAX_PAYLOAD: u32 = 64 << 20;
/// kind + severity + flow_id + tag + ts_ns: the smallest valid payload.
const MIN_PAYLOAD: u32 = 1 + 1 + 8 + 1 + 8;
const HEADER: u64 = 8;
/// Reads from a segment in chunks of this size (replay reads many small records).
const READ_CHUNK: usize = 1 << 20;
/// At most one fsync a second while appending (see the module's durability note).
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const LOCK: &str = "lock";
const EXT: &str = "spool";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The record would take the spool past `max_bytes` (`--spool-max`).
    #[error("spool full: {need} bytes more would pass the limit of {max} bytes")]
    Full { need: u64, max: u64 },
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool {0} is in use by another process (flock on its lock file)")]
    Locked(PathBuf),
}

/// What `open` found from a previous run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Undelivered events left in the spool (delivered first).
    pub events: u64,
    /// Their size on disk, headers included.
    pub bytes: u64,
    /// Damaged regions (torn write, bad checksum, undecodable record) cut out.
    pub corrupt: u64,
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven: a few lines, so no
/// crate for it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Appends the payload of `out` (see the module's format) to `buf`.
pub fn encode_payload(out: &Out, buf: &mut Vec<u8>) {
    let m = &out.meta;
    buf.push(m.kind as u8);
    buf.push(m.severity);
    buf.extend_from_slice(&m.flow_id.to_le_bytes());
    match m.src {
        None => buf.push(0),
        Some(IpAddr::V4(a)) => {
            buf.push(4);
            buf.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            buf.push(16);
            buf.extend_from_slice(&a.octets());
        }
    }
    buf.extend_from_slice(&m.ts_ns.to_le_bytes());
    buf.extend_from_slice(&out.line);
}

/// Decodes a payload; `None` when it is not one we wrote (a damaged or foreign record).
pub fn decode_payload(p: &[u8]) -> Option<Out> {
    let kind = Kind::from_u8(*p.first()?)?;
    let severity = *p.get(1)?;
    let flow_id = u64::from_le_bytes(p.get(2..10)?.try_into().ok()?);
    let tag = *p.get(10)?;
    let (src, at) = match tag {
        0 => (None, 11),
        4 => {
            let a: [u8; 4] = p.get(11..15)?.try_into().ok()?;
            (Some(IpAddr::V4(Ipv4Addr::from(a))), 15)
        }
        16 => {
            let a: [u8; 16] = p.get(11..27)?.try_into().ok()?;
            (Some(IpAddr::V6(Ipv6Addr::from(a))), 27)
        }
        _ => return None,
    };
    let ts_ns = u64::from_le_bytes(p.get(at..at + 8)?.try_into().ok()?);
    Some(Out {
        line: Arc::from(p.get(at + 8..)?),
        meta: OutMeta {
            kind,
            severity,
            flow_id,
            src,
            ts_ns,
        },
    })
}

/// Bytes `out` takes in the spool, header included.
pub fn record_size(out: &Out) -> u64 {
    let addr = match out.meta.src {
        None => 0,
        Some(IpAddr::V4(_)) => 4,
        Some(IpAddr::V6(_)) => 16,
    };
    HEADER + MIN_PAYLOAD as u64 + addr + out.line.len() as u64
}

/// One segment file: its sequence number, valid length, and records in it.
#[derive(Debug, Clone, Copy)]
struct Seg {
    seq: u64,
    len: u64,
    events: u64,
}

/// Outcome of validating the record at an offset of an in-memory segment.
enum Scan {
    /// A good record of this many bytes (header included).
    Good(u64),
    /// Damage at this offset.
    Bad,
}

fn scan_at(data: &[u8], off: usize) -> Scan {
    let Some(h) = data.get(off..off + HEADER as usize) else {
        return Scan::Bad;
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Scan::Bad;
    }
    let start = off + HEADER as usize;
    let Some(p) = data.get(start..start + len as usize) else {
        return Scan::Bad;
    };
    if crc32(p) != crc || decode_payload(p).is_none() {
        return Scan::Bad;
    }
    Scan::Good(HEADER + len as u64)
}

/// Where a walk over the records stopped.
#[derive(Debug, Clone, Copy)]
struct Pos {
    seg_i: usize,
    off: u64,
    /// Records of `segs[seg_i]` before `off`.
    count: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    seg_max: u64,
    /// Segments still holding unread records, oldest first; the last one is written to.
    segs: VecDeque<Seg>,
    /// Read position in `segs[0]`.
    roff: u64,
    rcount: u64,
    /// Unread records and their bytes (headers included).
    events: u64,
    bytes: u64,
    /// Records removed from the front since open (delivered, dropped or lost to damage):
    /// the logical index of the oldest unread record.
    head: u64,
    next_seq: u64,
    writer: Option<File>,
    /// Read cache: a chunk of segment `cache_seq` starting at byte `cache_off`.
    cache: Vec<u8>,
    cache_seq: u64,
    cache_off: u64,
    scratch: Vec<u8>,
    /// Appended since the last fsync.
    dirty: bool,
    last_sync: Instant,
    /// Closed segments not yet fsynced (handed to `take_sync_work`).
    to_sync: Vec<File>,
    /// The in-memory cursor moved without being written (drop_oldest defers it).
    cursor_dirty: bool,
    /// Fully read segments to delete once the cursor past them is on disk.
    to_delete: Vec<u64>,
    corrupt: u64,
    _lock: File,
}

impl Spool {
    /// Opens (creating) the spool in `dir`, scanning what a previous run left: damage is cut
    /// out and counted, undelivered records are kept for delivery first.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Spool, OpenReport), SpoolError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // SAFETY: flock on a descriptor we own; no memory is shared.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(SpoolError::Locked(dir.to_path_buf()));
        }
        let (cur_seq, cur_off) = read_cursor(&dir.join(CURSOR));
        let mut seqs = Vec::new();
        for ent in fs::read_dir(dir).map_err(io_err(dir))? {
            let ent = ent.map_err(io_err(dir))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = name
                .strip_suffix(".spool")
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            } else if name.ends_with(".spool.tmp") || name == CURSOR_TMP {
                // Left by a crash during a rewrite: the original is still in place.
                let p = ent.path();
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        seqs.sort_unstable();
        let seg_max = (max_bytes / 4).clamp(SEG_MIN, SEG_MAX);
        let mut report = OpenReport::default();
        let mut segs = VecDeque::new();
        let mut roff = 0;
        let mut cursor_moved = false;
        for &seq in &seqs {
            let path = seg_path(dir, seq);
            if seq < cur_seq {
                // Fully read before the last exit; its deletion did not happen.
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let data = fs::read(&path).map_err(io_err(&path))?;
            let from = if seq == cur_seq { cur_off } else { 0 };
            // Scan every record: boundaries from the start, only those at or after the
            // cursor are kept.
            let mut good: Vec<(usize, usize)> = Vec::new();
            let mut damaged = 0u64;
            let mut off = 0usize;
            while off < data.len() {
                match scan_at(&data, off) {
                    Scan::Good(n) => {
                        good.push((off, n as usize));
                        off += n as usize;
                    }
                    Scan::Bad => {
                        damaged += 1;
                        off = resync(&data, off + 1);
                    }
                }
            }
            let keep: Vec<(usize, usize)> = good
                .into_iter()
                .filter(|(o, _)| *o as u64 >= from)
                .collect();
            report.corrupt += damaged;
            let first = keep.first().map_or(data.len(), |k| k.0);
            let kept_bytes: u64 = keep.iter().map(|k| k.1 as u64).sum();
            let contiguous = first as u64 + kept_bytes == data.len() as u64;
            if keep.is_empty() {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let seg_len;
            if damaged == 0 && contiguous {
                seg_len = data.len() as u64;
                if segs.is_empty() {
                    roff = first as u64;
                    if roff != from {
                        cursor_moved = true;
                    }
                }
            } else {
                // Rewrite the segment with its good unread records only (atomic rename),
                // so the damage is counted once and never read again.
                let tmp = dir.join(format!("{seq:08}.spool.tmp"));
                let mut buf = Vec::with_capacity(kept_bytes as usize);
                for (o, n) in &keep {
                    buf.extend_from_slice(&data[*o..*o + *n]);
                }
                write_synced(&tmp, &buf).map_err(io_err(&tmp))?;
                fs::rename(&tmp, &path).map_err(io_err(&path))?;
                seg_len = kept_bytes;
                if segs.is_empty() {
                    roff = 0;
                    cursor_moved = true;
                }
            }
            report.events += keep.len() as u64;
            report.bytes += kept_bytes;
            segs.push_back(Seg {
                seq,
                len: seg_len,
                events: keep.len() as u64,
            });
        }
        // The first segment's `events` counts only the records from `roff` on, so the read
        // count starts at 0 there.
        let rcount = 0;
        let (events, bytes) = (report.events, report.bytes);
        let last_seq = seqs.last().copied().unwrap_or(0);
        let next_seq = last_seq.max(cur_seq).max(1) + u64::from(!seqs.is_empty());
        let writer = match segs.back() {
            Some(s) => {
                let p = seg_path(dir, s.seq);
                Some(
                    OpenOptions::new()
                        .append(true)
                        .open(&p)
                        .map_err(io_err(&p))?,
                )
            }
            None => None,
        };
        let mut sp = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            seg_max,
            segs,
            roff,
            rcount,
            events,
            bytes,
            head: 0,
            next_seq,
            writer,
            cache: Vec::new(),
            cache_seq: 0,
            cache_off: 0,
            scratch: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
            to_sync: Vec::new(),
            cursor_dirty: cursor_moved,
            to_delete: Vec::new(),
            corrupt: 0,
            _lock: lock,
        };
        if sp.events == 0 {
            sp.reset()?;
        } else if sp.cursor_dirty {
            sp.persist_cursor(true)?;
        }
        Ok((sp, report))
    }

    /// Unread events.
    pub fn len(&self) -> u64 {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Unread bytes, headers included (what `max_bytes` bounds).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Logical index of the oldest unread record (counts from 0 at open).
    pub fn head_index(&self) -> u64 {
        self.head
    }

    /// Damaged records met while reading since open (each loses the rest of its segment).
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Whether `out` fits now.
    pub fn fits(&self, out: &Out) -> bool {
        self.bytes + record_size(out) <= self.max_bytes
    }

    fn io(&self, path: &Path) -> impl FnOnce(io::Error) -> SpoolError {
        let path = path.to_path_buf();
        move |source| SpoolError::Io { path, source }
    }

    /// Appends one event: a single `write`, so it is in the page cache once this returns.
    pub fn append(&mut self, out: &Out) -> Result<(), SpoolError> {
        let need = record_size(out);
        if self.bytes + need > self.max_bytes {
            return Err(SpoolError::Full {
                need,
                max: self.max_bytes,
            });
        }
        let rotate = match self.segs.back() {
            None => true,
            Some(s) => self.writer.is_none() || s.len >= self.seg_max,
        };
        if rotate {
            self.rotate()?;
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.extend_from_slice(&[0; 8]);
        encode_payload(out, &mut buf);
        let plen = (buf.len() - HEADER as usize) as u32;
        let crc = crc32(&buf[HEADER as usize..]);
        buf[0..4].copy_from_slice(&plen.to_le_bytes());
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let seg = *self.segs.back().expect("rotate made a segment");
        let path = seg_path(&self.dir, seg.seq);
        let w = self.writer.as_mut().expect("rotate opened the writer");
        let res = w.write_all(&buf);
        self.scratch = buf;
        if let Err(e) = res {
            // Cut a partial write so the segment stays a sequence of whole records.
            if let Err(e2) = w.set_len(seg.len) {
                return Err(SpoolError::Io {
                    path,
                    source: io::Error::new(e.kind(), format!("{e}; truncating: {e2}")),
                });
            }
            return Err(SpoolError::Io { path, source: e });
        }
        let s = self.segs.back_mut().expect("checked");
        s.len += need;
        s.events += 1;
        self.events += 1;
        self.bytes += need;
        self.dirty = true;
        Ok(())
    }

    /// Puts `outs` before every unread record (events that were in memory at exit are older
    /// than what the spool holds). The unread part of the first segment is rewritten behind
    /// them (at most one segment plus `outs`). Call it only with nothing being replayed.
    ///
    /// Crash safety: the cursor is moved to the segment's start (fsynced) before the new
    /// file is renamed over the old one, so a crash in between replays the old segment from
    /// its start (duplicates, never a loss).
    pub fn prepend(&mut self, outs: &[Out]) -> Result<(), SpoolError> {
        if outs.is_empty() {
            return Ok(());
        }
        let need: u64 = outs.iter().map(record_size).sum();
        if self.bytes + need > self.max_bytes {
            return Err(SpoolError::Full {
                need,
                max: self.max_bytes,
            });
        }
        let Some(front) = self.segs.front().copied() else {
            for o in outs {
                self.append(o)?;
            }
            return Ok(());
        };
        let path = seg_path(&self.dir, front.seq);
        let old = fs::read(&path).map_err(self.io(&path))?;
        let rest = old
            .get(self.roff as usize..front.len as usize)
            .unwrap_or_default();
        let mut buf = Vec::with_capacity(need as usize + rest.len());
        for o in outs {
            let at = buf.len();
            buf.extend_from_slice(&[0; 8]);
            encode_payload(o, &mut buf);
            let plen = (buf.len() - at - HEADER as usize) as u32;
            let crc = crc32(&buf[at + HEADER as usize..]);
            buf[at..at + 4].copy_from_slice(&plen.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
        buf.extend_from_slice(rest);
        let unread_front = front.events.saturating_sub(self.rcount);
        let tmp = self.dir.join(format!("{:08}.spool.tmp", front.seq));
        write_synced(&tmp, &buf).map_err(self.io(&tmp))?;
        self.roff = 0;
        self.rcount = 0;
        self.cursor_dirty = true;
        self.persist_cursor(true)?;
        fs::rename(&tmp, &path).map_err(self.io(&path))?;
        if self.cache_seq == front.seq {
            self.cache.clear();
        }
        let is_last = self.segs.len() == 1;
        let f = &mut self.segs[0];
        f.len = buf.len() as u64;
        f.events = unread_front + outs.len() as u64;
        self.events += outs.len() as u64;
        self.bytes += need;
        if is_last {
            // The writer held the replaced file: write to the new one.
            self.writer = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(self.io(&path))?,
            );
        }
        Ok(())
    }

    /// Closes the current segment (queued for fsync) and starts the next.
    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.take() {
            self.to_sync.push(w);
        }
        let seq = self.next_seq;
        let path = seg_path(&self.dir, seq);
        let f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(self.io(&path))?;
        self.next_seq += 1;
        self.writer = Some(f);
        self.segs.push_back(Seg {
            seq,
            len: 0,
            events: 0,
        });
        Ok(())
    }

    /// Reads `[off, off + n)` of segment `seq` through the chunk cache.
    fn read(&mut self, seq: u64, off: u64, n: usize, seg_len: u64) -> io::Result<&[u8]> {
        let have = self.cache_seq == seq
            && off >= self.cache_off
            && off + n as u64 <= self.cache_off + self.cache.len() as u64;
        if !have {
            let want = (seg_len.saturating_sub(off) as usize).min(READ_CHUNK.max(n));
            if want < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "record past the segment's end",
                ));
            }
            let f = File::open(seg_path(&self.dir, seq))?;
            self.cache.resize(want, 0);
            f.read_exact_at(&mut self.cache, off)?;
            self.cache_seq = seq;
            self.cache_off = off;
        }
        let s = (off - self.cache_off) as usize;
        Ok(&self.cache[s..s + n])
    }

    /// The record at `off` of segment `i`: its size and, when `decode`, the event.
    fn record(&mut self, i: usize, off: u64, decode: bool) -> Option<(u64, Option<Out>)> {
        let seg = self.segs[i];
        let h = self.read(seg.seq, off, HEADER as usize, seg.len).ok()?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) || off + HEADER + len as u64 > seg.len {
            return None;
        }
        if !decode {
            return Some((HEADER + len as u64, None));
        }
        let p = self
            .read(seg.seq, off + HEADER, len as usize, seg.len)
            .ok()?;
        if crc32(p) != crc {
            return None;
        }
        let out = decode_payload(p)?;
        Some((HEADER + len as u64, Some(out)))
    }

    /// Walks up to `n` records from the read position. Damage at the very front loses the
    /// rest of that segment (counted in `corrupt`, moved past); damage after some good
    /// records ends the walk there, so the records returned are exactly the next ones.
    fn walk(&mut self, n: usize, decode: bool) -> (Vec<Out>, Pos, u64, u64) {
        let mut outs = Vec::new();
        let mut pos = Pos {
            seg_i: 0,
            off: self.roff,
            count: self.rcount,
        };
        let (mut records, mut bytes) = (0u64, 0u64);
        while (records as usize) < n && pos.seg_i < self.segs.len() {
            let seg = self.segs[pos.seg_i];
            if pos.off >= seg.len {
                if pos.seg_i + 1 < self.segs.len() {
                    pos = Pos {
                        seg_i: pos.seg_i + 1,
                        off: 0,
                        count: 0,
                    };
                    continue;
                }
                break;
            }
            match self.record(pos.seg_i, pos.off, decode) {
                Some((sz, out)) => {
                    pos.off += sz;
                    pos.count += 1;
                    records += 1;
                    bytes += sz;
                    outs.extend(out);
                }
                None if records == 0 => {
                    // Lose the rest of this segment; account it so counts stay exact.
                    let lost = seg.events.saturating_sub(pos.count);
                    self.corrupt += lost.max(1);
                    self.events = self.events.saturating_sub(lost);
                    self.bytes = self.bytes.saturating_sub(seg.len - pos.off);
                    self.head += lost;
                    pos.off = seg.len;
                    pos.count = seg.events;
                    self.roff = pos.off;
                    self.rcount = pos.count;
                    self.cursor_dirty = true;
                    // Commit the skip now: the read position is at the segment's end.
                    self.commit(pos, 0, 0);
                    pos = Pos {
                        seg_i: 0,
                        off: self.roff,
                        count: self.rcount,
                    };
                }
                None => break,
            }
        }
        (outs, pos, records, bytes)
    }

    /// Moves the read position to `pos`, which is `records` records (`bytes` bytes) on.
    fn commit(&mut self, pos: Pos, records: u64, bytes: u64) {
        for _ in 0..pos.seg_i {
            if let Some(s) = self.segs.pop_front() {
                self.to_delete.push(s.seq);
            }
        }
        self.roff = pos.off;
        self.rcount = pos.count;
        // A read-through segment that is not the one written to is done with.
        if self.segs.len() > 1 && self.segs.front().is_some_and(|s| self.roff >= s.len) {
            if let Some(s) = self.segs.pop_front() {
                self.to_delete.push(s.seq);
            }
            self.roff = 0;
            self.rcount = 0;
        }
        self.events = self.events.saturating_sub(records);
        self.bytes = self.bytes.saturating_sub(bytes);
        self.head += records;
        self.cursor_dirty = true;
    }

    /// The next `n` (at most) undelivered events, oldest first, without consuming them.
    pub fn peek_batch(&mut self, n: usize) -> Result<Vec<Out>, SpoolError> {
        let outs = self.walk(n, true).0;
        // Damage at the front may have emptied the spool.
        self.after_advance(false)?;
        Ok(outs)
    }

    /// Marks the `n` oldest events delivered: the cursor is written (atomic rename) and
    /// segments read through are deleted.
    pub fn consume(&mut self, n: usize) -> Result<(), SpoolError> {
        let (_, pos, records, bytes) = self.walk(n, false);
        self.commit(pos, records, bytes);
        self.after_advance(true)
    }

    /// Discards up to `n` of the oldest events (the spool is full and the policy is
    /// `drop_oldest`); returns how many. The cursor is written later (by `sync` or the next
    /// `consume`): a crash before may bring them back, never lose others.
    pub fn drop_oldest(&mut self, n: usize) -> Result<u64, SpoolError> {
        let (_, pos, records, bytes) = self.walk(n, false);
        self.commit(pos, records, bytes);
        self.after_advance(false)?;
        Ok(records)
    }

    fn after_advance(&mut self, persist: bool) -> Result<(), SpoolError> {
        if self.events == 0 {
            return self.reset();
        }
        if persist {
            self.persist_cursor(false)?;
        }
        Ok(())
    }

    /// Everything was read: write the cursor past every segment and delete them all, so an
    /// idle spool takes no disk.
    fn reset(&mut self) -> Result<(), SpoolError> {
        if self.segs.is_empty() && !self.cursor_dirty && self.to_delete.is_empty() {
            return Ok(());
        }
        self.writer = None;
        self.to_sync.clear();
        while let Some(s) = self.segs.pop_front() {
            self.to_delete.push(s.seq);
        }
        self.roff = 0;
        self.rcount = 0;
        self.events = 0;
        self.bytes = 0;
        self.cursor_dirty = true;
        self.dirty = false;
        self.persist_cursor(false)
    }

    /// Writes the cursor (tmp + rename), then deletes segments read through.
    fn persist_cursor(&mut self, sync: bool) -> Result<(), SpoolError> {
        if !self.cursor_dirty && self.to_delete.is_empty() {
            return Ok(());
        }
        let (seq, off) = match self.segs.front() {
            Some(s) => (s.seq, self.roff),
            None => (self.next_seq, 0),
        };
        let mut b = [0u8; 20];
        b[0..8].copy_from_slice(&seq.to_le_bytes());
        b[8..16].copy_from_slice(&off.to_le_bytes());
        let c = crc32(&b[0..16]);
        b[16..20].copy_from_slice(&c.to_le_bytes());
        let tmp = self.dir.join(CURSOR_TMP);
        let res = if sync {
            write_synced(&tmp, &b)
        } else {
            fs::write(&tmp, b)
        };
        res.map_err(self.io(&tmp))?;
        let cur = self.dir.join(CURSOR);
        fs::rename(&tmp, &cur).map_err(self.io(&cur))?;
        self.cursor_dirty = false;
        for seq in std::mem::take(&mut self.to_delete) {
            let p = seg_path(&self.dir, seq);
            if self.cache_seq == seq {
                self.cache.clear();
            }
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::Io { path: p, source: e }),
            }
        }
        Ok(())
    }

    /// Periodic durability, for the sink thread: writes a deferred cursor, and returns the
    /// files to fsync (closed segments; the current one when appended to and a second has
    /// passed) so the caller fsyncs them outside any lock.
    pub fn take_sync_work(&mut self) -> Result<Vec<File>, SpoolError> {
        self.persist_cursor(false)?;
        let mut v = std::mem::take(&mut self.to_sync);
        if self.dirty && self.last_sync.elapsed() >= SYNC_EVERY {
            if let Some(w) = &self.writer {
                let seq = self.segs.back().map_or(0, |s| s.seq);
                let dup = w.try_clone().map_err(self.io(&seg_path(&self.dir, seq)))?;
                v.push(dup);
            }
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(v)
    }

    /// Everything on disk now: segments fsynced, cursor written and fsynced, the folder
    /// fsynced (new and deleted names). Called at finish.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        for f in std::mem::take(&mut self.to_sync) {
            f.sync_data().map_err(self.io(&self.dir))?;
        }
        if let Some(w) = &self.writer {
            w.sync_data().map_err(self.io(&self.dir))?;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        self.cursor_dirty = true;
        self.persist_cursor(true)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(&self.dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:08}.{EXT}"))
}

/// The next offset at or after `from` where a whole valid record starts (or the end).
fn resync(data: &[u8], from: usize) -> usize {
    (from..data.len())
        .find(|&o| matches!(scan_at(data, o), Scan::Good(_)))
        .unwrap_or(data.len())
}

/// The persisted cursor; a missing or damaged file reads as "from the very start" (replay
/// more, lose nothing).
fn read_cursor(p: &Path) -> (u64, u64) {
    let Ok(b) = fs::read(p) else { return (0, 0) };
    if b.len() != 20 {
        return (0, 0);
    }
    let c = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
    if crc32(&b[0..16]) != c {
        return (0, 0);
    }
    let seq = u64::from_le_bytes(b[0..8].try_into().unwrap_or([0; 8]));
    let off = u64::from_le_bytes(b[8..16].try_into().unwrap_or([0; 8]));
    (seq, off)
}

fn write_synced(p: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = File::create(p)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
