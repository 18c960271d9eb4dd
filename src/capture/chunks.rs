//! Classic pcap files in shared chunks, packets not copied again.
//!
//! Why: at tens of Gbit/s, copying every byte twice (kernel to reader buffer, reader buffer to
//! batch) costs as much as the rest of the reader. A batch refers to the chunks its packets
//! lie in instead, and a chunk is released when the last batch holding it is done, so
//! resident memory is the chunks in flight, whatever the file size.
//!
//! A regular file is memory-mapped a window (`WINDOW`) at a time: no copy at all. (An
//! earlier attempt mapped the whole file and lost to `read`, because its first touch of
//! every page stalled the reader; the reader now streams the bytes in ahead of its record
//! walk, see `file.rs`.) Each window is unmapped when its chunk is dropped, so the file's
//! pages never pile up in the process's resident set. Pipes, and any file the kernel will
//! not map, are `read` into 1 MiB chunks from a bounded pool.

use crossbeam_channel::{Receiver, Sender};
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

/// Size of a pooled chunk. A record larger than this gets a chunk of its own.
pub const CHUNK: usize = 1 << 20;
/// Chunks kept for reuse.
const POOL: usize = 64;

/// Turns the one way a mapped file can fail after it was mapped, another program truncating
/// it while we read (SIGBUS on the next touch of a vanished page), into a clear message and
/// exit status 1 instead of "Bus error (core dumped)". Call once at start.
pub fn explain_sigbus() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MSG: &[u8] = b"cloudtap: error: a capture file was truncated while it was being read (SIGBUS); stopping\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(1);
        }
    }
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

/// Bytes of file mapped per window (a record larger than this gets a window of its own).
/// Each unmap costs a TLB shootdown on every core running a worker: 8 MiB windows made
/// `--threads 2` about 6% faster than 4 MiB, for about 15 MB more peak RSS (the windows
/// that queued batches still point into).
const WINDOW: usize = 8 << 20;

/// A filled buffer shared by the batches whose packets lie in it.
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
    pool: Option<Sender<Vec<u8>>>,
    /// Set when the bytes are a mapped window of the file rather than `buf`.
    map: Option<Window>,
}

/// A read-only mapping of part of a file; the chunk's bytes start `skip` bytes in (the
/// mapping starts on a page boundary).
struct Window {
    base: *mut libc::c_void,
    size: usize,
    skip: usize,
}

// SAFETY: the mapping is read-only and owned by its chunk alone (unmapped on drop), so
// sharing or moving it between threads is like sharing a `Box<[u8]>`.
unsafe impl Send for Window {}
// SAFETY: as above.
unsafe impl Sync for Window {}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.map {
            // SAFETY: `skip + len <= size` bytes of the mapping are readable while the
            // chunk lives (checked when it was made).
            Some(w) => unsafe {
                std::slice::from_raw_parts((w.base as *const u8).add(w.skip), self.len)
            },
            None => &self.buf[..self.len],
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(w) = &self.map {
            // SAFETY: `base`/`size` are what mmap returned; no slice of it outlives the chunk.
            unsafe {
                libc::munmap(w.base, w.size);
            }
        }
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
    /// For a mapped regular file: its descriptor (owned by `src`) and the offset of the
    /// first byte not yet in a chunk.
    mapped: Option<(i32, u64)>,
    /// Windows mapped so far.
    windows: u64,
}

impl ChunkReader<std::fs::File> {
    /// Chunks of `file` from byte `pos` on: mapped windows if it is a regular file,
    /// otherwise read as a stream (from wherever its read offset is).
    pub fn for_file(file: std::fs::File, pos: u64) -> Self {
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let fd = file.as_raw_fd();
        let mut r = ChunkReader::new(file);
        if regular {
            r.mapped = Some((fd, pos));
        }
        r
    }
}

impl<R: Read> ChunkReader<R> {
    pub fn new(src: R) -> Self {
        let (give, take) = crossbeam_channel::bounded(POOL);
        ChunkReader {
            src,
            give,
            take,
            eof: false,
            mapped: None,
            windows: 0,
        }
    }

    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Whether chunks are mapped windows of a regular file (whose reads never wait on a
    /// producer) rather than reads of a stream.
    pub fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }

    /// A new chunk starting with `carry`, then what the file gives: at least `need` bytes
    /// in all (and at least one new byte) unless the file ends first. It does not wait to
    /// fill the whole chunk, so a pipe fed slowly still delivers its packets promptly; a
    /// regular file fills it in one read anyway.
    ///
    /// `carry` must be the end of the previous chunk: a mapped file just maps it again.
    pub fn next(&mut self, carry: &[u8], need: usize) -> std::io::Result<Arc<Chunk>> {
        if let Some((fd, pos)) = self.mapped {
            if let Some(c) = self.next_window(fd, pos, carry.len(), need)? {
                self.windows += 1;
                return Ok(c);
            }
            self.mapped = None;
            if self.windows > 0 {
                return Err(std::io::Error::other("mapping the file failed in mid-file"));
            }
            // The kernel would not map it at all: nothing was read past `pos` yet, so
            // reading it as a stream goes on from the same place.
        }
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
            map: None,
        }))
    }

    /// The window of the file that starts `carry` bytes before `pos` and holds at least
    /// `need` bytes (fewer only at the end of the file). `Ok(None)` if mmap fails.
    fn next_window(
        &mut self,
        fd: i32,
        pos: u64,
        carry: usize,
        need: usize,
    ) -> std::io::Result<Option<Arc<Chunk>>> {
        // The size now, not at open: a file that grew is read on, and one cut shorter
        // than what was read is an error rather than a mapping past its end.
        // SAFETY: `fd` is the open descriptor owned by `self.src`; `st` is written by fstat.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return Ok(None);
            }
            u64::try_from(st.st_size).unwrap_or(0)
        };
        if size < pos {
            return Err(std::io::Error::other(
                "the file was truncated while being read",
            ));
        }
        let Some(start) = pos.checked_sub(carry as u64) else {
            return Ok(None);
        };
        let want = need.max(carry + 1).max(WINDOW) as u64;
        let end = start.saturating_add(want).min(size).max(pos);
        self.eof = end >= size;
        let (aligned, skip) = align_down(start, page_size());
        let (Ok(map_len), Ok(off)) = (
            usize::try_from(end - aligned),
            libc::off_t::try_from(aligned),
        ) else {
            return Ok(None);
        };
        let map_len = map_len.max(1);
        // SAFETY: a read-only private mapping of an open file; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd,
                off,
            )
        };
        if base == libc::MAP_FAILED {
            return Ok(None);
        }
        // A file not in the page cache yet (its window's last page is not): start reading
        // all of the window now. On a cached file the advice would only walk the cache
        // again, a tenth of the reader's time on a cached 1.5 GB capture.
        if !last_page_cached(base, map_len, page_size()) {
            // SAFETY: advice on our own fresh mapping; failure only costs speed.
            unsafe {
                libc::madvise(base, map_len, libc::MADV_WILLNEED);
            }
        }
        self.mapped = Some((fd, end));
        Ok(Some(Arc::new(Chunk {
            buf: Vec::new(),
            len: (end - start) as usize,
            pool: None,
            map: Some(Window {
                base,
                size: map_len,
                skip,
            }),
        })))
    }
}

/// The system's page size, asked once. mmap file offsets must be multiples of it, and it is
/// not 4 KiB everywhere: 16 KiB on Apple-silicon and some arm64 kernels, 64 KiB on some
/// arm64 and ppc64 ones. Should sysconf fail, 64 KiB: every smaller power-of-two page
/// divides it, so offsets aligned to it are aligned to the real page whatever it is.
pub fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions and only reads system configuration.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(n)
            .ok()
            .filter(|n| n.is_power_of_two() && *n >= 4096)
            .unwrap_or(64 << 10)
    })
}

/// Where a mapping that must hold file byte `start` begins: the page boundary at or
/// before it (mmap's offset), and how far into the mapping `start` lies. Pure, with the
/// page size a parameter, so that it is testable for any page size.
fn align_down(start: u64, page: u64) -> (u64, usize) {
    let aligned = start - start % page;
    (aligned, (start - aligned) as usize)
}

/// Offset, in a mapping of `len` bytes, of the start of its last page.
fn last_page_offset(len: usize, page: usize) -> usize {
    len.saturating_sub(1) / page * page
}

/// Whether the last page of a fresh file mapping (`base`, `len` > 0) is in the page cache.
fn last_page_cached(base: *mut libc::c_void, len: usize, page: u64) -> bool {
    let last = last_page_offset(len, usize::try_from(page).unwrap_or(usize::MAX));
    let mut v = [0u8; 1];
    // SAFETY: `base + last` is a page-aligned address inside our own mapping, and `v` has
    // room for the one page asked about.
    let r = unsafe { libc::mincore(base.cast::<u8>().add(last).cast(), 1, v.as_mut_ptr()) };
    r == 0 && v[0] & 1 != 0
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
    fn alignment_for_4k_16k_and_64k_pages() {
        for page in [4u64 << 10, 16 << 10, 64 << 10] {
            for start in [
                0u64,
                1,
                24,
                page - 1,
                page,
                page + 1,
                3 * page + 7,
                (8 << 20) + 24,
                (1 << 40) + page / 2,
            ] {
                let (aligned, skip) = align_down(start, page);
                assert_eq!(aligned % page, 0, "page {page} start {start}");
                assert!(aligned <= start && start - aligned < page);
                assert_eq!(aligned + skip as u64, start);
            }
            // Exact values, worked out by hand for each page size.
            assert_eq!(align_down(page + 24, page), (page, 24));
            assert_eq!(
                align_down(5 * page - 1, page),
                (4 * page, page as usize - 1)
            );
            let p = page as usize;
            assert_eq!(last_page_offset(1, p), 0);
            assert_eq!(last_page_offset(p, p), 0);
            assert_eq!(last_page_offset(p + 1, p), p);
            assert_eq!(last_page_offset(3 * p, p), 2 * p);
        }
        // A 4 KiB boundary is not a 16 KiB or 64 KiB one: 20 KiB + 24 maps from 20 KiB on
        // a 4 KiB system, from 16 KiB on the others.
        let start = (20 << 10) + 24;
        assert_eq!(align_down(start, 4 << 10), (20 << 10, 24));
        assert_eq!(align_down(start, 16 << 10), (16 << 10, (4 << 10) + 24));
        assert_eq!(align_down(start, 64 << 10), (0, (20 << 10) + 24));
        let page = page_size();
        assert!(page.is_power_of_two() && page >= 4096);
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

    #[test]
    fn mapped_windows_carry_and_a_shrunk_file_is_an_error() {
        let path = std::env::temp_dir().join(format!("cloudtap-chunks-{}", std::process::id()));
        let data: Vec<u8> = (0..(WINDOW * 3)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let mut r = ChunkReader::for_file(file, 24);
        let a = r.next(&[], 0).expect("map");
        assert!(a.map.is_some(), "a regular file is mapped");
        assert_eq!(&a[..], &data[24..24 + WINDOW]);
        // The carry is mapped again, not copied: the next window starts with it.
        let b = r.next(&a[WINDOW - 5..], 0).expect("map");
        assert_eq!(&b[..], &data[24 + WINDOW - 5..24 + 2 * WINDOW - 5]);
        assert!(!r.at_eof());
        drop((a, b)); // unmapped
                      // Cut shorter than what was read: an error, not a mapping past the end.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(100))
            .expect("truncate");
        assert!(r.next(&[], 16).is_err());
        let _ = std::fs::remove_file(&path);
    }
}
