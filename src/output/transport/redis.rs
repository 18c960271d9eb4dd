//! Redis transport: `redis://HOST:PORT/KEY?mode=list|channel|stream`.
//!
//! * `list`: `RPUSH KEY line`; `channel`: `PUBLISH KEY line`; `stream`:
//!   `XADD KEY MAXLEN ~ N * event line` (`maxlen=`, default 100000).
//! * `password=` (and `username=`, Redis 6 ACL) send `AUTH` on connect, `db=` sends `SELECT`.
//! * Commands are pipelined, `batch=` (default 256) at a time: all written, then every reply
//!   read. Replies are counted in order; an event is delivered when its reply is not an error.
//!
//! Why RESP2 by hand instead of the `redis` crate: the sensor sends three commands (plus AUTH
//! and SELECT) and needs exact per-command reply accounting in a pipeline; the crate's
//! pipelines return all-or-nothing, and it brings an async runtime and a large dependency tree
//! into a synchronous sink thread. RESP2 is a small, stable format: the encoder is a few
//! `extend_from_slice`s and the reply parser below is a pure, fuzz-safe function.

use super::syslog::tcp_connect;
use super::unix::{check_keys, opt_timeout, opt_u64, trim_buf, write_counted};
use super::{Out, Partial, SendError, Transport};
use crate::output::url::{RedisMode, Scheme, SinkSpec};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    /// More bytes are needed; nothing was consumed.
    #[error("incomplete reply")]
    Incomplete,
    /// The bytes are not RESP2: the connection is out of step and must be dropped.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

/// Rule: a reply nests at most this deep (ours are flat; a hostile or broken peer must not
/// overflow the stack).
const MAX_DEPTH: usize = 8;
/// Rule: Redis' own proto-max-bulk-len default; a larger declared length is garbage.
const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Rule: a declared array length never preallocates more than this many slots.
const MAX_PREALLOC: usize = 64;

fn line(buf: &[u8]) -> Result<(&[u8], usize), RespError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok((&buf[..i], i + 2)),
        None => {
            if buf.len() > 64 * 1024 {
                // A status/error/length line this long is not Redis talking.
                Err(RespError::Protocol("header line over 64 KiB"))
            } else {
                Err(RespError::Incomplete)
            }
        }
    }
}

fn int(s: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(RespError::Protocol("bad integer"))
}

fn parse_at(buf: &[u8], depth: usize) -> Result<(Reply, usize), RespError> {
    if depth > MAX_DEPTH {
        return Err(RespError::Protocol("reply nested too deep"));
    }
    let Some(&tag) = buf.first() else {
        return Err(RespError::Incomplete);
    };
    let (head, mut used) = line(&buf[1..])?;
    used += 1;
    match tag {
        b'+' => Ok((
            Reply::Simple(String::from_utf8_lossy(head).into_owned()),
            used,
        )),
        b'-' => Ok((
            Reply::Error(String::from_utf8_lossy(head).into_owned()),
            used,
        )),
        b':' => Ok((Reply::Integer(int(head)?), used)),
        b'$' => {
            let n = int(head)?;
            if n == -1 {
                return Ok((Reply::Bulk(None), used));
            }
            if !(0..=MAX_BULK).contains(&n) {
                return Err(RespError::Protocol("bad bulk length"));
            }
            let n = n as usize;
            let rest = &buf[used..];
            if rest.len() < n + 2 {
                return Err(RespError::Incomplete);
            }
            if &rest[n..n + 2] != b"\r\n" {
                return Err(RespError::Protocol("bulk not followed by CRLF"));
            }
            Ok((Reply::Bulk(Some(rest[..n].to_vec())), used + n + 2))
        }
        b'*' => {
            let n = int(head)?;
            if n == -1 {
                return Ok((Reply::Array(None), used));
            }
            if !(0..=MAX_BULK).contains(&n) {
                return Err(RespError::Protocol("bad array length"));
            }
            let mut items = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
            for _ in 0..n {
                let (r, k) = parse_at(&buf[used..], depth + 1)?;
                items.push(r);
                used += k;
            }
            Ok((Reply::Array(Some(items)), used))
        }
        _ => Err(RespError::Protocol("unknown reply type byte")),
    }
}

/// Parses one RESP2 reply from the front of `buf`: the reply and the bytes it took.
/// Never panics, whatever `buf` holds.
pub fn parse_reply(buf: &[u8]) -> Result<(Reply, usize), RespError> {
    parse_at(buf, 0)
}

/// Rule: an error reply that retrying can cure (the server is starting, busy, out of memory,
/// read-only during a failover, the client limit reached, auth lost) means the receiver is
/// down for now; any other error (WRONGTYPE, ERR wrong number of arguments, NOPERM, ...) is
/// about this command and will never succeed: the event is rejected.
pub fn is_transient(err: &str) -> bool {
    const TRANSIENT: [&str; 10] = [
        "LOADING",
        "BUSY",
        "OOM",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "READONLY",
        "NOREPLICAS",
        "MISCONF",
        "NOAUTH",
    ];
    let code = err.split(' ').next().unwrap_or("");
    TRANSIENT.contains(&code) || err.starts_with("ERR max number of clients")
}

/// Appends one RESP2 bulk string.
fn push_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Encodes a command (array of bulk strings).
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        push_bulk(out, a);
    }
}

/// The fixed front of every event's command (array header, command, key, ...), so an event
/// costs one bulk string to encode.
fn command_prefix(mode: RedisMode, key: &str, maxlen: u64) -> Vec<u8> {
    let mut p = Vec::new();
    let k = key.as_bytes();
    let ml = maxlen.to_string();
    match mode {
        RedisMode::List => {
            encode_command(&mut p, &[b"RPUSH", k]);
            p[1] = b'3';
        }
        RedisMode::Channel => {
            encode_command(&mut p, &[b"PUBLISH", k]);
            p[1] = b'3';
        }
        RedisMode::Stream => {
            encode_command(
                &mut p,
                &[b"XADD", k, b"MAXLEN", b"~", ml.as_bytes(), b"*", b"event"],
            );
            p[1] = b'8';
        }
    }
    p
}

/// What became of an event already sent in a pipeline behind a rejected one.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Rejected(String),
}

pub struct Redis {
    url: String,
    host: String,
    port: u16,
    timeout: Duration,
    username: Option<String>,
    password: Option<String>,
    db: u64,
    batch: usize,
    prefix: Vec<u8>,
    sock: Option<TcpStream>,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    /// Start of unparsed bytes in `rbuf`.
    rpos: usize,
    /// Rule: after a rejected event, the commands pipelined behind it were executed too. Their
    /// outcomes wait here, matched by the line's allocation, so that when the sink hands the
    /// rest of the batch back they are accounted, not sent twice. At most `batch` entries;
    /// cleared when the next batch does not start with them.
    behind: VecDeque<(Arc<[u8]>, Outcome)>,
}

pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    let Scheme::Redis {
        host,
        port,
        key,
        mode,
    } = &spec.scheme
    else {
        return Err(format!("{}: not a redis URL", spec.url));
    };
    check_keys(
        spec,
        &[
            "password",
            "username",
            "db",
            "batch",
            "maxlen",
            "timeout_ms",
        ],
    )?;
    if *mode != RedisMode::Stream && spec.opts.contains_key("maxlen") {
        return Err(format!("{}: maxlen= is for mode=stream only", spec.url));
    }
    if spec.opts.contains_key("username") && !spec.opts.contains_key("password") {
        return Err(format!("{}: username= needs password=", spec.url));
    }
    let maxlen = opt_u64(spec, "maxlen", 100_000, 1, u64::MAX >> 1)?;
    Ok(Box::new(Redis {
        url: spec.url.clone(),
        host: host.clone(),
        port: *port,
        timeout: opt_timeout(spec)?,
        username: spec.opts.get("username").cloned(),
        password: spec.opts.get("password").cloned(),
        db: opt_u64(spec, "db", 0, 0, 1 << 20)?,
        batch: opt_u64(spec, "batch", 256, 1, 100_000)? as usize,
        prefix: command_prefix(*mode, key, maxlen),
        sock: None,
        wbuf: Vec::new(),
        rbuf: Vec::new(),
        rpos: 0,
        behind: VecDeque::new(),
    }))
}

/// Reading failed: the connection (or the reply stream) is gone.
#[derive(Debug)]
enum ReadFail {
    Io(io::Error),
    Protocol(RespError),
}

impl std::fmt::Display for ReadFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadFail::Io(e) => write!(f, "{e}"),
            ReadFail::Protocol(e) => write!(f, "{e}"),
        }
    }
}

/// Rule: the read buffer never holds more than one maximal reply plus a read's worth.
const MAX_RBUF: usize = MAX_BULK as usize + (1 << 16);

impl Redis {
    fn down(&self, what: &str, e: impl std::fmt::Display) -> SendError {
        // Never echo the password: messages name the URL as the user typed it, and what failed.
        SendError::Down(format!("{}: {what}: {e}", self.url))
    }

    /// The next reply, reading from the socket as needed (bounded by the read timeout).
    fn read_reply(&mut self) -> Result<Reply, ReadFail> {
        let Some(sock) = self.sock.as_ref() else {
            return Err(ReadFail::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "not connected",
            )));
        };
        loop {
            match parse_reply(&self.rbuf[self.rpos..]) {
                Ok((r, used)) => {
                    self.rpos += used;
                    if self.rpos == self.rbuf.len() {
                        self.rbuf.clear();
                        self.rpos = 0;
                    }
                    return Ok(r);
                }
                Err(RespError::Incomplete) => {}
                Err(e) => return Err(ReadFail::Protocol(e)),
            }
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            if self.rbuf.len() >= MAX_RBUF {
                return Err(ReadFail::Protocol(RespError::Protocol("reply too large")));
            }
            let old = self.rbuf.len();
            self.rbuf.resize(old + 16 * 1024, 0);
            let r = loop {
                match (&*sock).read(&mut self.rbuf[old..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            match r {
                Ok(0) => {
                    self.rbuf.truncate(old);
                    return Err(ReadFail::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "Redis closed the connection",
                    )));
                }
                Ok(n) => self.rbuf.truncate(old + n),
                Err(e) => {
                    self.rbuf.truncate(old);
                    return Err(ReadFail::Io(e));
                }
            }
        }
    }

    /// Sends one command on connect and wants a non-error reply.
    fn handshake(&mut self, args: &[&[u8]], what: &str) -> Result<(), SendError> {
        let mut cmd = Vec::new();
        encode_command(&mut cmd, args);
        let fd = match self.sock.as_ref() {
            Some(s) => s.as_raw_fd(),
            None => return Err(self.down(what, "not connected")),
        };
        write_counted(fd, &cmd).map_err(|(_, e)| self.down(what, e))?;
        match self.read_reply() {
            Ok(Reply::Error(e)) => Err(self.down(what, e)),
            Ok(_) => Ok(()),
            Err(e) => Err(self.down(what, e)),
        }
    }

    fn connect_inner(&mut self) -> Result<(), SendError> {
        let s = tcp_connect(&self.host, self.port, self.timeout)
            .map_err(|e| self.down("connect", e))?;
        self.sock = Some(s);
        self.rbuf.clear();
        self.rpos = 0;
        if let Some(pw) = self.password.clone() {
            match self.username.clone() {
                Some(u) => self.handshake(&[b"AUTH", u.as_bytes(), pw.as_bytes()], "AUTH")?,
                None => self.handshake(&[b"AUTH", pw.as_bytes()], "AUTH")?,
            }
        }
        if self.db != 0 {
            let db = self.db.to_string();
            self.handshake(&[b"SELECT", db.as_bytes()], "SELECT")?;
        }
        Ok(())
    }

    /// Sends one pipeline (`chunk`, at most `batch` events) and reads its replies.
    /// Ok(()) when all delivered; Err((delivered in chunk, error)) otherwise.
    fn pipeline(&mut self, chunk: &[Out]) -> Result<(), (usize, SendError)> {
        self.wbuf.clear();
        for ev in chunk {
            self.wbuf.extend_from_slice(&self.prefix);
            push_bulk(&mut self.wbuf, &ev.line);
        }
        let fd = match self.sock.as_ref() {
            Some(s) => s.as_raw_fd(),
            None => return Err((0, self.down("send", "not connected"))),
        };
        let w = write_counted(fd, &self.wbuf);
        trim_buf(&mut self.wbuf);
        if let Err((_, e)) = w {
            // Commands written before the failure may have run; their replies are lost with
            // the connection, so nothing of this pipeline counts (at-least-once).
            return Err((0, self.down("write", e)));
        }
        for i in 0..chunk.len() {
            match self.read_reply() {
                Ok(Reply::Error(msg)) if is_transient(&msg) => {
                    return Err((i, self.down("reply", msg)));
                }
                Ok(Reply::Error(msg)) => {
                    // Permanent: reject this event; the commands behind it ran as well, so
                    // read their replies now (keeping the connection in step) and remember them.
                    self.behind.clear();
                    for ev in &chunk[i + 1..] {
                        let o = match self.read_reply() {
                            Ok(Reply::Error(m)) if !is_transient(&m) => Outcome::Rejected(m),
                            Ok(Reply::Error(_)) => break,
                            Ok(_) => Outcome::Delivered,
                            Err(_) => break,
                        };
                        self.behind.push_back((ev.line.clone(), o));
                    }
                    if self.behind.len() < chunk.len() - i - 1 {
                        // A reply behind could not be read or was transient: the connection is
                        // not trustworthy; what was recorded stays valid.
                        self.sock = None;
                    }
                    return Err((
                        i,
                        SendError::Rejected(format!(
                            "{}: Redis refused the event: {msg}",
                            self.url
                        )),
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err((i, self.down("reply", e))),
            }
        }
        Ok(())
    }
}

impl Transport for Redis {
    fn connect(&mut self) -> Result<(), SendError> {
        self.sock = None;
        let r = self.connect_inner();
        if r.is_err() {
            self.sock = None;
        }
        r
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        // Events already executed behind a rejected one (see `behind`).
        let mut start = 0;
        while let Some((line, _)) = self.behind.front() {
            match batch.get(start) {
                Some(ev) if Arc::ptr_eq(line, &ev.line) => {}
                _ => {
                    self.behind.clear();
                    break;
                }
            }
            match self.behind.pop_front() {
                Some((_, Outcome::Delivered)) => start += 1,
                Some((_, Outcome::Rejected(msg))) => {
                    return Err(Partial {
                        delivered: start,
                        error: SendError::Rejected(format!(
                            "{}: Redis refused the event: {msg}",
                            self.url
                        )),
                    })
                }
                None => break,
            }
        }
        if start == batch.len() {
            return Ok(());
        }
        if self.sock.is_none() {
            return Err(Partial {
                delivered: start,
                error: self.down("send", "not connected"),
            });
        }
        let mut done = start;
        for chunk in batch[start..].chunks(self.batch) {
            match self.pipeline(chunk) {
                Ok(()) => done += chunk.len(),
                Err((n, error)) => {
                    if matches!(error, SendError::Down(_)) {
                        self.sock = None;
                        self.behind.clear();
                    }
                    return Err(Partial {
                        delivered: done + n,
                        error,
                    });
                }
            }
        }
        Ok(())
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
    fn parses_replies() {
        assert_eq!(parse_reply(b"+OK\r\n"), Ok((Reply::Simple("OK".into()), 5)));
        assert_eq!(
            parse_reply(b"-WRONGTYPE Operation against a key\r\n+x"),
            Ok((Reply::Error("WRONGTYPE Operation against a key".into()), 36))
        );
        assert_eq!(parse_reply(b":42\r\n"), Ok((Reply::Integer(42), 5)));
        assert_eq!(parse_reply(b":-1\r\n"), Ok((Reply::Integer(-1), 5)));
        assert_eq!(
            parse_reply(b"$5\r\nab\r\nc\r\n"),
            Ok((Reply::Bulk(Some(b"ab\r\nc".to_vec())), 11))
        );
        assert_eq!(parse_reply(b"$-1\r\n"), Ok((Reply::Bulk(None), 5)));
        assert_eq!(
            parse_reply(b"*2\r\n$3\r\nfoo\r\n:1\r\n"),
            Ok((
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"foo".to_vec())),
                    Reply::Integer(1)
                ])),
                17
            ))
        );
        assert_eq!(parse_reply(b"*-1\r\n"), Ok((Reply::Array(None), 5)));
    }

    #[test]
    fn incomplete_and_bad() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$5\r\nab",
            b"$5\r\nabcde\r",
            b"*2\r\n:1\r\n",
        ] {
            assert_eq!(
                parse_reply(partial),
                Err(RespError::Incomplete),
                "{partial:?}"
            );
        }
        for bad in [
            &b"?\r\n"[..],
            b":abc\r\n",
            b"$-2\r\n",
            b"$3\r\nabcXY",
            b"*-5\r\n",
            b"$99999999999\r\n",
        ] {
            assert!(
                matches!(parse_reply(bad), Err(RespError::Protocol(_))),
                "{bad:?}"
            );
        }
        let deep = b"*1\r\n".repeat(100);
        assert!(matches!(parse_reply(&deep), Err(RespError::Protocol(_))));
        // A huge declared array with nothing behind it: incomplete, no huge allocation.
        assert_eq!(parse_reply(b"*536870912\r\n"), Err(RespError::Incomplete));
    }

    #[test]
    fn never_panics_on_noise() {
        // A deterministic pseudo-random sweep over short inputs built from RESP's alphabet.
        let alphabet = b"+-:$*\r\n0123456789-abc";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let mut v = Vec::with_capacity(len);
            let mut y = x;
            for _ in 0..len {
                v.push(alphabet[(y % alphabet.len() as u64) as usize]);
                y = y.rotate_left(5) ^ 0xA5A5;
            }
            if let Ok((_, used)) = parse_reply(&v) {
                assert!(used <= v.len());
            }
        }
    }

    #[test]
    fn transient_or_permanent() {
        assert!(is_transient(
            "LOADING Redis is loading the dataset in memory"
        ));
        assert!(is_transient(
            "OOM command not allowed when used memory > 'maxmemory'."
        ));
        assert!(is_transient("BUSY Redis is busy running a script."));
        assert!(is_transient("ERR max number of clients reached"));
        assert!(!is_transient(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        ));
        assert!(!is_transient(
            "ERR wrong number of arguments for 'rpush' command"
        ));
        assert!(!is_transient("NOPERM this user has no permissions"));
    }

    #[test]
    fn encodes_commands() {
        let mut out = command_prefix(RedisMode::List, "k", 5);
        push_bulk(&mut out, b"{}");
        assert_eq!(out, b"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$2\r\n{}\r\n");
        let mut out = command_prefix(RedisMode::Stream, "ev", 1000);
        push_bulk(&mut out, b"x");
        assert_eq!(
            out,
            b"*8\r\n$4\r\nXADD\r\n$2\r\nev\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n$1\r\n*\r\n$5\r\nevent\r\n$1\r\nx\r\n"
                .to_vec()
        );
    }

    #[test]
    fn options() {
        let err = |u: &str| open(&parse(u).unwrap()).err().unwrap();
        assert!(err("redis://h:1/k?bogus=1").contains("unknown option(s) bogus"));
        assert!(err("redis://h:1/k?maxlen=5").contains("mode=stream"));
        assert!(err("redis://h:1/k?batch=0").contains("batch"));
        assert!(err("redis://h:1/k?username=u").contains("password"));
        assert!(open(&parse("redis://h:1/k?mode=stream&maxlen=5&db=2&batch=3").unwrap()).is_ok());
    }
}
