//! Unix-socket transports, as Suricata's `eve-log` `filetype: unix_dgram` / `unix_stream`:
//!
//! * `unix+dgram:PATH`: one datagram per event (the JSON line, no trailing newline: a
//!   datagram is its own frame). A datagram the kernel refuses as too large (`EMSGSIZE`) is
//!   rejected for that event only; no listener (`ECONNREFUSED`, `ENOENT`) is `Down`; a full
//!   receiver queue (`EAGAIN`, `ENOBUFS`) is waited out for at most `timeout_ms`, then `Down`.
//! * `unix+stream:PATH`: newline-delimited JSON over a connected stream socket. A failed write
//!   reports how many events of the batch went into the socket whole.
//!
//! This file also holds the small socket and option helpers the other network transports
//! (syslog, redis) share, since each transport file is owned separately and `mod.rs` is a
//! contract.

use super::{Out, Partial, SendError, Transport};
use crate::output::url::{Scheme, SinkSpec};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default for `timeout_ms=`: connect, read and write timeouts, so nothing hangs forever.
pub(super) const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// Rule: a misspelt option is an error naming it, never silently ignored (url.rs contract).
pub(super) fn check_keys(spec: &SinkSpec, known: &[&str]) -> Result<(), String> {
    let unknown: Vec<&str> = spec
        .opts
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: unknown option(s) {} (this sink takes: {})",
            spec.url,
            unknown.join(", "),
            known.join(", ")
        ))
    }
}

/// An integer option in `min..=max`, or `default` when absent.
pub(super) fn opt_u64(
    spec: &SinkSpec,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, String> {
    match spec.opts.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                format!(
                    "{}: {key}={v:?}: expected an integer in {min}..={max}",
                    spec.url
                )
            }),
    }
}

/// `timeout_ms=` (1 ms .. 10 min, default 5 s).
pub(super) fn opt_timeout(spec: &SinkSpec) -> Result<Duration, String> {
    opt_u64(spec, "timeout_ms", DEFAULT_TIMEOUT_MS, 1, 600_000).map(Duration::from_millis)
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error to report, never a
/// `SIGPIPE` that kills the sensor (std ignores SIGPIPE in Rust binaries, but a library must
/// not rely on its host). Retries `EINTR`.
pub(super) fn send_nosig(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid readable slice for its length; `fd` is owned by the caller.
        let n = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast::<libc::c_void>(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `buf` (blocking socket with a write timeout); on error returns how many bytes
/// went into the socket before it, with the error.
pub(super) fn write_counted(fd: RawFd, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match send_nosig(fd, &buf[done..]) {
            Ok(0) => {
                return Err((
                    done,
                    io::Error::new(io::ErrorKind::WriteZero, "socket took no bytes"),
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // SO_SNDTIMEO expired: the receiver stopped reading.
                return Err((
                    done,
                    io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
                ));
            }
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

/// Events whose frame ends at or before byte `written` (`ends` ascending, one per event).
pub(super) fn events_within(ends: &[usize], written: usize) -> usize {
    ends.partition_point(|&e| e <= written)
}

/// Before writing to a stream socket: has the peer closed it (or reset it)? A non-blocking
/// `MSG_PEEK` read returning 0 is an orderly close; an error other than `EAGAIN` is a reset.
/// Bytes waiting to be read (the receiver talks back) are not a failure: `Ok(true)`.
/// Returns `Ok(false)` when nothing is pending.
pub(super) fn peek_alive(fd: RawFd) -> io::Result<bool> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: `b` is a valid writable 1-byte buffer.
        let n = unsafe {
            libc::recv(
                fd,
                b.as_mut_ptr().cast::<libc::c_void>(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            return Ok(true);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "receiver closed the connection",
            ));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Rule: a batch buffer keeps its capacity between batches (no per-event allocation), but a
/// single huge batch must not pin its memory forever.
pub(super) fn trim_buf(buf: &mut Vec<u8>) {
    const KEEP: usize = 1 << 20;
    if buf.capacity() > 8 * KEEP {
        buf.clear();
        buf.shrink_to(KEEP);
    }
}

pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    check_keys(spec, &["timeout_ms"])?;
    let timeout = opt_timeout(spec)?;
    match &spec.scheme {
        Scheme::UnixDgram { path } => Ok(Box::new(UnixDgram {
            path: path.clone(),
            timeout,
            sock: None,
        })),
        Scheme::UnixStream { path } => Ok(Box::new(UnixStreamT {
            path: path.clone(),
            timeout,
            sock: None,
            buf: Vec::new(),
            ends: Vec::new(),
        })),
        _ => Err(format!("{}: not a unix socket URL", spec.url)),
    }
}

fn down(path: &std::path::Path, what: &str, e: &io::Error) -> SendError {
    SendError::Down(format!("{}: {what}: {e}", path.display()))
}

/// `unix+dgram:PATH`.
pub struct UnixDgram {
    path: PathBuf,
    timeout: Duration,
    sock: Option<UnixDatagram>,
}

impl UnixDgram {
    /// Sends one datagram, waiting out a full receiver for at most `timeout`.
    fn send_one(sock: &UnixDatagram, line: &[u8], timeout: Duration) -> io::Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match send_nosig(sock.as_raw_fd(), line) {
                Ok(n) if n == line.len() => return Ok(()),
                // A datagram is sent whole or not at all; a short count would be a kernel bug.
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "datagram cut to {n} of {} bytes",
                        line.len()
                    )))
                }
                Err(e) => {
                    // EAGAIN: the blocking send's SO_SNDTIMEO expired with the receiver's
                    // queue still full. ENOBUFS: the kernel is short of buffers for now. Both
                    // pass; retry until the deadline, then the receiver counts as down.
                    let transient = e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS);
                    if !transient || start.elapsed() >= timeout {
                        return Err(e);
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }
}

impl Transport for UnixDgram {
    fn connect(&mut self) -> Result<(), SendError> {
        self.sock = None;
        let s = UnixDatagram::unbound().map_err(|e| down(&self.path, "socket", &e))?;
        s.connect(&self.path)
            .map_err(|e| down(&self.path, "connect", &e))?;
        s.set_write_timeout(Some(self.timeout))
            .map_err(|e| down(&self.path, "set timeout", &e))?;
        self.sock = Some(s);
        Ok(())
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        let Some(sock) = self.sock.as_ref() else {
            return Err(Partial {
                delivered: 0,
                error: SendError::Down(format!("{}: not connected", self.path.display())),
            });
        };
        for (i, ev) in batch.iter().enumerate() {
            if let Err(e) = Self::send_one(sock, &ev.line, self.timeout) {
                let error = if e.raw_os_error() == Some(libc::EMSGSIZE) {
                    // Too big for one datagram on this socket: no retry can help.
                    SendError::Rejected(format!(
                        "{}: {}-byte event too large for a datagram: {e}",
                        self.path.display(),
                        ev.line.len()
                    ))
                } else {
                    // ECONNREFUSED / ENOENT (listener gone), timeouts, anything else: down,
                    // reconnect and resend from this event.
                    self.sock = None;
                    down(&self.path, "send", &e)
                };
                return Err(Partial {
                    delivered: i,
                    error,
                });
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

/// `unix+stream:PATH`.
pub struct UnixStreamT {
    path: PathBuf,
    timeout: Duration,
    sock: Option<UnixStream>,
    /// The batch's bytes, reused.
    buf: Vec<u8>,
    /// End offset in `buf` of each event's line (newline included).
    ends: Vec<usize>,
}

impl Transport for UnixStreamT {
    fn connect(&mut self) -> Result<(), SendError> {
        self.sock = None;
        // A Unix stream connect does not wait on the network: it succeeds, or fails at once
        // (no listener), or blocks only while the listener's backlog is full.
        let s = UnixStream::connect(&self.path).map_err(|e| down(&self.path, "connect", &e))?;
        s.set_write_timeout(Some(self.timeout))
            .and_then(|()| s.set_read_timeout(Some(self.timeout)))
            .map_err(|e| down(&self.path, "set timeout", &e))?;
        self.sock = Some(s);
        Ok(())
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        let fd = match self.sock.as_ref() {
            Some(s) => s.as_raw_fd(),
            None => {
                return Err(Partial {
                    delivered: 0,
                    error: SendError::Down(format!("{}: not connected", self.path.display())),
                })
            }
        };
        // A listener that closed since the last batch: find out now, not after writing into a
        // dead socket (a write to a closed Unix peer fails at once, but say it plainly).
        if let Err(e) = peek_alive(fd) {
            self.sock = None;
            return Err(Partial {
                delivered: 0,
                error: down(&self.path, "peer", &e),
            });
        }
        self.buf.clear();
        self.ends.clear();
        for ev in batch {
            self.buf.extend_from_slice(&ev.line);
            self.buf.push(b'\n');
            self.ends.push(self.buf.len());
        }
        let r = write_counted(fd, &self.buf);
        trim_buf(&mut self.buf);
        match r {
            Ok(()) => Ok(()),
            Err((written, e)) => {
                self.sock = None;
                Err(Partial {
                    delivered: events_within(&self.ends, written),
                    error: down(&self.path, "write", &e),
                })
            }
        }
    }

    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::url::parse;

    #[test]
    fn options_checked() {
        let e = open(&parse("unix+dgram:/tmp/x?timeout_ms=5&bogus=1&other=2").unwrap())
            .err()
            .unwrap();
        assert!(e.contains("bogus, other"), "{e}");
        let e = open(&parse("unix+stream:/tmp/x?timeout_ms=0").unwrap())
            .err()
            .unwrap();
        assert!(e.contains("timeout_ms"), "{e}");
        assert!(open(&parse("unix+stream:/tmp/x?timeout_ms=250").unwrap()).is_ok());
    }

    #[test]
    fn counting_whole_events() {
        let ends = [4, 9, 15];
        assert_eq!(events_within(&ends, 0), 0);
        assert_eq!(events_within(&ends, 3), 0);
        assert_eq!(events_within(&ends, 4), 1);
        assert_eq!(events_within(&ends, 14), 2);
        assert_eq!(events_within(&ends, 15), 3);
    }
}
