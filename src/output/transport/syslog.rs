//! Syslog transports: RFC 5424 messages over UDP (RFC 5426), TCP and TLS (RFC 6587 / RFC 5425
//! octet counting).
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, where TIMESTAMP is the
//! event's time (`OutMeta::ts_ns`, RFC 3339 UTC with microseconds), MSGID the event kind
//! (`alert`, `dns`, ...), no structured data (`-`) and MSG the JSON line as is. RFC 5424 wants a
//! UTF-8 BOM before a UTF-8 MSG; it is left out on purpose: the JSON is UTF-8 anyway, and
//! receivers (rsyslog, syslog-ng, Elastic) would otherwise keep three stray bytes in front of
//! the JSON that break JSON parsing downstream.
//!
//! Delivery on a stream (TCP, TLS): syslog has no application acknowledgement, so "delivered"
//! means "acknowledged by the receiver's TCP stack". After writing a batch the transport waits
//! (at most `ack_wait_ms`) for the kernel's send queue to empty (`ioctl(SIOCOUTQ)`), and when a
//! connection fails it counts from `TCP_INFO.tcpi_bytes_acked` exactly which events' bytes the
//! receiver acknowledged. What the receiver had acknowledged but not yet processed when it died
//! is lost (docs/transports.md).

use super::unix::{
    check_keys, events_within, opt_timeout, opt_u64, peek_alive, send_nosig, trim_buf,
    write_counted,
};
use super::{Kind, Out, OutMeta, Partial, SendError, Transport};
use crate::output::url::{Scheme, SinkSpec};
use crate::timefmt::civil_from_days;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What goes into every message besides the event: settled once at `open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// 0..=23 (RFC 5424 table 1).
    pub facility: u8,
    /// APP-NAME, 1..=48 printable ASCII characters.
    pub app_name: String,
    /// HOSTNAME, 1..=255 printable ASCII characters.
    pub hostname: String,
    /// PROCID: the sensor's process id.
    pub procid: String,
}

/// Facility names as syslog.conf spells them (RFC 5424 table 1 numbers).
const FACILITIES: [(&str, u8); 26] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("console", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
    ("audit", 13),
    ("solaris-cron", 15),
];

/// `facility=`: a name from [`FACILITIES`] or a number 0..=23.
pub fn parse_facility(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return (n <= 23).then_some(n);
    }
    FACILITIES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|&(_, n)| n)
}

/// Severity of an event (RFC 5424 numbers). Rule: an EVE alert's severity (1 high .. 3 low)
/// maps to critical (2), error (3), warning (4); an alert with any other severity is a warning
/// (it is still an alert); every non-alert event is informational (6), so a receiver filtering
/// on `*.warning` gets the alerts only.
pub fn severity(meta: &OutMeta) -> u8 {
    match (meta.kind, meta.severity) {
        (Kind::Alert, 1) => 2,
        (Kind::Alert, 2) => 3,
        (Kind::Alert, _) => 4,
        _ => 6,
    }
}

/// RFC 5424 header fields are PRINTUSASCII (33..=126), non-empty, bounded in length.
fn header_field_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// `n` as exactly `width` digits (zero padded; `n` must fit).
fn push_fixed(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut v = n;
    for slot in tmp[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&tmp[..width]);
}

/// RFC 3339 UTC with microseconds: `2023-11-14T22:13:20.123456Z` (RFC 5424 allows at most
/// 6 fractional digits).
pub fn push_timestamp(out: &mut Vec<u8>, ts_ns: u64) {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    // u64 ns reach year 2554: always 4 digits.
    push_fixed(out, y as u64, 4);
    out.push(b'-');
    push_fixed(out, m.into(), 2);
    out.push(b'-');
    push_fixed(out, d.into(), 2);
    out.push(b'T');
    push_fixed(out, sod / 3600, 2);
    out.push(b':');
    push_fixed(out, sod / 60 % 60, 2);
    out.push(b':');
    push_fixed(out, sod % 60, 2);
    out.push(b'.');
    push_fixed(out, micros, 6);
    out.push(b'Z');
}

/// Appends one RFC 5424 message (no framing) to `out`.
pub fn format_5424(meta: &OutMeta, line: &[u8], p: &Params, out: &mut Vec<u8>) {
    out.push(b'<');
    push_u64(out, u64::from(p.facility) * 8 + u64::from(severity(meta)));
    out.extend_from_slice(b">1 ");
    push_timestamp(out, meta.ts_ns);
    out.push(b' ');
    out.extend_from_slice(p.hostname.as_bytes());
    out.push(b' ');
    out.extend_from_slice(p.app_name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(p.procid.as_bytes());
    out.push(b' ');
    out.extend_from_slice(meta.kind.name().as_bytes());
    out.extend_from_slice(b" - ");
    out.extend_from_slice(line);
}

/// The machine's name (gethostname(2)), made a valid HOSTNAME: characters outside printable
/// ASCII become `_`, at most 255 bytes, `-` (the NILVALUE) when unknown.
pub fn machine_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; gethostname NUL-terminates within it when the
    // name fits (we pass len - 1 so a truncated name still ends with our zero byte).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len() - 1) };
    if rc != 0 {
        return "-".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len() - 1);
    let s: String = buf[..end.min(255)]
        .iter()
        .map(|&b| {
            if (33..=126).contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Udp,
    Tcp,
    Tls,
}

pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    let (proto, host, port) = match &spec.scheme {
        Scheme::SyslogUdp { host, port } => (Proto::Udp, host, *port),
        Scheme::SyslogTcp { host, port } => (Proto::Tcp, host, *port),
        Scheme::SyslogTls { host, port } => (Proto::Tls, host, *port),
        _ => return Err(format!("{}: not a syslog URL", spec.url)),
    };
    let mut known = vec!["facility", "app_name", "hostname", "timeout_ms"];
    match proto {
        Proto::Udp => known.push("max_udp"),
        Proto::Tcp => known.push("ack_wait_ms"),
        Proto::Tls => known.extend(["ack_wait_ms", "ca", "cert", "key", "server_name"]),
    }
    check_keys(spec, &known)?;
    let facility = match spec.opts.get("facility") {
        None => 21, // local5
        Some(f) => parse_facility(f).ok_or_else(|| {
            format!(
                "{}: facility={f:?}: expected 0..23 or a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, clock, local0..local7)",
                spec.url
            )
        })?,
    };
    let app_name = spec
        .opts
        .get("app_name")
        .cloned()
        .unwrap_or_else(|| "cloudtap".into());
    if !header_field_ok(&app_name, 48) {
        return Err(format!(
            "{}: app_name={app_name:?}: 1 to 48 printable ASCII characters, no spaces",
            spec.url
        ));
    }
    let hostname = match spec.opts.get("hostname") {
        Some(h) if header_field_ok(h, 255) => h.clone(),
        Some(h) => {
            return Err(format!(
                "{}: hostname={h:?}: 1 to 255 printable ASCII characters, no spaces",
                spec.url
            ))
        }
        None => machine_hostname(),
    };
    let params = Params {
        facility,
        app_name,
        hostname,
        procid: std::process::id().to_string(),
    };
    let timeout = opt_timeout(spec)?;
    let max_udp = opt_u64(spec, "max_udp", 65_000, 64, 65_507)? as usize;
    let ack_wait = Duration::from_millis(opt_u64(spec, "ack_wait_ms", 1000, 0, 60_000)?);
    let tls = if proto == Proto::Tls {
        let name = spec.opts.get("server_name").unwrap_or(host);
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| format!("{}: server name {name:?}: {e}", spec.url))?;
        Some((tls_config(spec)?, server_name))
    } else {
        None
    };
    Ok(Box::new(Syslog {
        url: spec.url.clone(),
        proto,
        host: host.clone(),
        port,
        timeout,
        max_udp,
        ack_wait,
        tls,
        params,
        conn: None,
        msg: Vec::new(),
        buf: Vec::new(),
        ends: Vec::new(),
    }))
}

/// TLS 1.2 or 1.3 (rustls' safe defaults, ring provider), trusting `ca=` (a PEM file) or the
/// system's roots; a client certificate when `cert=` and `key=` are given.
fn tls_config(spec: &SinkSpec) -> Result<Arc<ClientConfig>, String> {
    let url = &spec.url;
    let mut roots = RootCertStore::empty();
    match spec.opts.get("ca") {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{url}: ca={path:?}: {e}"))?;
            let (added, _bad) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "{url}: ca={path:?}: no usable CA certificate in it"
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _bad) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "{url}: no system CA certificates found ({} errors); give ca=PATH",
                    found.errors.len()
                ));
            }
        }
    }
    // rustls 0.23.48 deprecates the ring provider (no post-quantum key exchange); ring is
    // the provider this project builds rustls with (Cargo.toml: no aws-lc-rs, no cmake).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{url}: TLS: {e}"))?
        .with_root_certificates(roots);
    let cfg = match (spec.opts.get("cert"), spec.opts.get("key")) {
        (None, None) => builder.with_no_client_auth(),
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{url}: cert={c:?}: {e}"))?;
            if chain.is_empty() {
                return Err(format!("{url}: cert={c:?}: no certificate in it"));
            }
            let key =
                PrivateKeyDer::from_pem_file(k).map_err(|e| format!("{url}: key={k:?}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{url}: cert/key: {e}"))?
        }
        _ => return Err(format!("{url}: cert= and key= go together")),
    };
    Ok(Arc::new(cfg))
}

/// The socket as rustls' reader and writer, counting every byte written (handshake included)
/// so acknowledged bytes can be mapped back to events.
struct Wire<'a> {
    fd: RawFd,
    sock: &'a TcpStream,
    sent: &'a mut u64,
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.sock).read(buf)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = send_nosig(self.fd, buf)?;
        *self.sent += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connected TCP (or TLS over TCP) stream.
struct Stream {
    sock: TcpStream,
    tls: Option<ClientConnection>,
    /// `tcpi_bytes_acked` right after connecting (before any byte of ours).
    acked_base: u64,
    /// Bytes written to the socket since connecting.
    sent: u64,
}

enum Conn {
    Udp(UdpSocket),
    Stream(Box<Stream>),
}

pub struct Syslog {
    url: String,
    proto: Proto,
    host: String,
    port: u16,
    timeout: Duration,
    max_udp: usize,
    ack_wait: Duration,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    params: Params,
    conn: Option<Conn>,
    /// One formatted message, reused.
    msg: Vec<u8>,
    /// A batch's bytes as they go on the wire (framed; encrypted for TLS), reused.
    buf: Vec<u8>,
    /// End offset in `buf` of each event.
    ends: Vec<usize>,
}

fn tcp_info(fd: RawFd) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast::<libc::c_void>(),
            &mut len,
        );
        if rc == 0 {
            Ok(info)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Bytes in the socket's send queue not yet acknowledged by the peer (SIOCOUTQ, which is
/// TIOCOUTQ on Linux).
fn outq(fd: RawFd) -> io::Result<u32> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc == 0 {
        Ok(n.max(0) as u32)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// TCP_CLOSE in linux/tcp_states.h: the connection was reset or is gone.
const TCP_STATE_CLOSE: u8 = 7;

/// Waits (at most `limit`) until the peer acknowledged everything written. `Err` when the
/// connection broke meanwhile. A receiver that is alive but slower than `limit` is not an
/// error: its bytes stay in the kernel, which keeps retransmitting them.
fn settle(fd: RawFd, limit: Duration) -> io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        let info = tcp_info(fd)?;
        if info.tcpi_state == TCP_STATE_CLOSE {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by the receiver",
            ));
        }
        if outq(fd)? == 0 || start.elapsed() >= limit {
            return Ok(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let v: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} has no address"),
        ));
    }
    Ok(v)
}

/// Connects to the first address that answers, each try bounded by `timeout`; read and
/// write timeouts set. Shared with the Redis transport.
pub(super) fn tcp_connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for a in resolve(host, port)? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

impl Syslog {
    fn down(&self, what: &str, e: impl std::fmt::Display) -> SendError {
        SendError::Down(format!("{}: {what}: {e}", self.url))
    }

    fn not_connected(&self) -> Partial {
        Partial {
            delivered: 0,
            error: self.down("send", "not connected"),
        }
    }

    fn send_udp(&mut self, batch: &[Out]) -> Result<(), Partial> {
        let Some(Conn::Udp(sock)) = self.conn.as_ref() else {
            return Err(self.not_connected());
        };
        for (i, ev) in batch.iter().enumerate() {
            self.msg.clear();
            format_5424(&ev.meta, &ev.line, &self.params, &mut self.msg);
            if self.msg.len() > self.max_udp {
                return Err(Partial {
                    delivered: i,
                    error: SendError::Rejected(format!(
                        "{}: {}-byte message over max_udp={}",
                        self.url,
                        self.msg.len(),
                        self.max_udp
                    )),
                });
            }
            let r = loop {
                match sock.send(&self.msg) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r,
                }
            };
            match r {
                Ok(n) if n == self.msg.len() => {}
                Ok(n) => {
                    return Err(Partial {
                        delivered: i,
                        error: self.down("send", format!("datagram cut to {n} bytes")),
                    })
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    return Err(Partial {
                        delivered: i,
                        error: SendError::Rejected(format!("{}: {e}", self.url)),
                    })
                }
                Err(e) => {
                    // ECONNREFUSED: an earlier datagram drew an ICMP port unreachable, nobody
                    // listens; the rest: no route, timeouts. Reconnect and resend from here.
                    let error = self.down("send", &e);
                    self.conn = None;
                    return Err(Partial {
                        delivered: i,
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Reads what the receiver sent since the last batch without blocking: TLS records
    /// (session tickets, alerts) go through rustls. `Err` when the receiver closed or failed.
    fn check_incoming(st: &mut Stream) -> io::Result<()> {
        let fd = st.sock.as_raw_fd();
        let pending = peek_alive(fd)?;
        if !pending {
            return Ok(());
        }
        let Some(tls) = st.tls.as_mut() else {
            // Plain syslog receivers never talk back; discard what came (bounded).
            let mut scratch = [0u8; 4096];
            st.sock.set_nonblocking(true)?;
            let mut r = Ok(());
            for _ in 0..64 {
                match (&st.sock).read(&mut scratch) {
                    Ok(0) => {
                        r = Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "receiver closed the connection",
                        ));
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            st.sock.set_nonblocking(false)?;
            return r;
        };
        st.sock.set_nonblocking(true)?;
        let mut wire = Wire {
            fd,
            sock: &st.sock,
            sent: &mut st.sent,
        };
        let mut r = Ok(());
        for _ in 0..64 {
            match tls.read_tls(&mut wire) {
                Ok(0) => {
                    r = Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "receiver closed the connection",
                    ));
                    break;
                }
                Ok(_) => match tls.process_new_packets() {
                    Ok(state) if state.peer_has_closed() => {
                        r = Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "receiver sent close_notify",
                        ));
                        break;
                    }
                    Ok(state) => {
                        // The receiver sent application data: not part of syslog; drop it.
                        let mut left = state.plaintext_bytes_to_read();
                        let mut scratch = [0u8; 4096];
                        while left > 0 {
                            match tls.reader().read(&mut scratch) {
                                Ok(n) if n > 0 => left = left.saturating_sub(n),
                                _ => break,
                            }
                        }
                    }
                    Err(e) => {
                        r = Err(io::Error::other(format!("TLS: {e}")));
                        break;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        st.sock.set_nonblocking(false)?;
        r
    }

    fn send_stream(&mut self, batch: &[Out]) -> Result<(), Partial> {
        let Some(Conn::Stream(st)) = self.conn.as_mut() else {
            return Err(self.not_connected());
        };
        if let Err(e) = Self::check_incoming(st) {
            let error = self.down("receiver", &e);
            self.conn = None;
            return Err(Partial {
                delivered: 0,
                error,
            });
        }
        // Frame every event (RFC 6587 octet counting: `LEN SP MSG`), encrypting for TLS, into
        // one buffer, remembering where each event ends on the wire.
        self.buf.clear();
        self.ends.clear();
        let mut frame_err = None;
        for ev in batch {
            self.msg.clear();
            format_5424(&ev.meta, &ev.line, &self.params, &mut self.msg);
            match st.tls.as_mut() {
                None => {
                    push_u64(&mut self.buf, self.msg.len() as u64);
                    self.buf.push(b' ');
                    self.buf.extend_from_slice(&self.msg);
                }
                Some(tls) => {
                    let mut head = Vec::with_capacity(8);
                    push_u64(&mut head, self.msg.len() as u64);
                    head.push(b' ');
                    let r = tls
                        .writer()
                        .write_all(&head)
                        .and_then(|()| tls.writer().write_all(&self.msg));
                    let r = r.and_then(|()| {
                        while tls.wants_write() {
                            tls.write_tls(&mut self.buf)?;
                        }
                        Ok(())
                    });
                    if let Err(e) = r {
                        frame_err = Some(e);
                        break;
                    }
                }
            }
            self.ends.push(self.buf.len());
        }
        if let Some(e) = frame_err {
            // rustls could not take the plaintext: the TLS session is unusable.
            let error = self.down("TLS", &e);
            self.conn = None;
            return Err(Partial {
                delivered: 0,
                error,
            });
        }
        let fd = st.sock.as_raw_fd();
        let start = st.sent;
        let res = match write_counted(fd, &self.buf) {
            Ok(()) => {
                st.sent += self.buf.len() as u64;
                settle(fd, self.ack_wait).map_err(|e| (self.buf.len(), e))
            }
            Err((n, e)) => {
                st.sent += n as u64;
                Err((n, e))
            }
        };
        let out = match res {
            Ok(()) => Ok(()),
            Err((written, e)) => {
                // Count only what the receiver's TCP acknowledged: bytes merely written into
                // our socket die with it.
                let acked = tcp_info(fd)
                    .map(|i| {
                        i.tcpi_bytes_acked
                            .saturating_sub(st.acked_base)
                            .saturating_sub(start)
                    })
                    .unwrap_or(0);
                let upto = (acked.min(written as u64)) as usize;
                let delivered = events_within(&self.ends, upto);
                let error = self.down("write", &e);
                self.conn = None;
                Err(Partial { delivered, error })
            }
        };
        trim_buf(&mut self.buf);
        out
    }

    fn connect_stream(&mut self) -> Result<Stream, SendError> {
        let sock = tcp_connect(&self.host, self.port, self.timeout)
            .map_err(|e| self.down("connect", &e))?;
        let fd = sock.as_raw_fd();
        let acked_base = tcp_info(fd)
            .map(|i| i.tcpi_bytes_acked)
            .map_err(|e| self.down("TCP_INFO", &e))?;
        let mut st = Stream {
            sock,
            tls: None,
            acked_base,
            sent: 0,
        };
        if let Some((cfg, name)) = &self.tls {
            let mut conn = ClientConnection::new(cfg.clone(), name.clone())
                .map_err(|e| self.down("TLS", &e))?;
            // Plaintext is turned into records batch by batch and drained at once.
            conn.set_buffer_limit(None);
            let mut wire = Wire {
                fd,
                sock: &st.sock,
                sent: &mut st.sent,
            };
            // Each round does socket I/O bounded by the read/write timeouts; a handshake
            // needs a handful of rounds.
            let mut rounds = 0;
            while conn.is_handshaking() {
                rounds += 1;
                if rounds > 32 {
                    return Err(self.down("TLS handshake", "did not finish"));
                }
                conn.complete_io(&mut wire)
                    .map_err(|e| self.down("TLS handshake", &e))?;
            }
            while conn.wants_write() {
                conn.write_tls(&mut wire)
                    .map_err(|e| self.down("TLS handshake", &e))?;
            }
            st.tls = Some(conn);
        }
        Ok(st)
    }
}

impl Transport for Syslog {
    fn connect(&mut self) -> Result<(), SendError> {
        self.conn = None;
        match self.proto {
            Proto::Udp => {
                let addrs = resolve(&self.host, self.port).map_err(|e| self.down("resolve", &e))?;
                let a = addrs[0];
                let local: SocketAddr = if a.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(local).map_err(|e| self.down("bind", &e))?;
                s.connect(a).map_err(|e| self.down("connect", &e))?;
                s.set_write_timeout(Some(self.timeout))
                    .map_err(|e| self.down("set timeout", &e))?;
                self.conn = Some(Conn::Udp(s));
            }
            Proto::Tcp | Proto::Tls => {
                let st = self.connect_stream()?;
                self.conn = Some(Conn::Stream(Box::new(st)));
            }
        }
        Ok(())
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        match self.proto {
            Proto::Udp => self.send_udp(batch),
            Proto::Tcp | Proto::Tls => self.send_stream(batch),
        }
    }

    fn flush(&mut self) -> Result<(), SendError> {
        // Nothing is held back between batches: each `send` writes and settles its batch.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::url::parse;

    fn meta(kind: Kind, severity: u8, ts_ns: u64) -> OutMeta {
        OutMeta {
            kind,
            severity,
            flow_id: 1,
            src: None,
            ts_ns,
        }
    }

    fn p() -> Params {
        Params {
            facility: 21,
            app_name: "cloudtap".into(),
            hostname: "sensor1".into(),
            procid: "4242".into(),
        }
    }

    #[test]
    fn formats_5424() {
        let mut out = Vec::new();
        let m = meta(Kind::Alert, 1, 1_700_000_000_123_456_789);
        format_5424(&m, br#"{"event_type":"alert"}"#, &p(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<170>1 2023-11-14T22:13:20.123456Z sensor1 cloudtap 4242 alert - {"event_type":"alert"}"#
        );
        let mut out = b"keep".to_vec();
        format_5424(&meta(Kind::Dns, 0, 0), b"{}", &p(), &mut out);
        assert_eq!(
            out,
            b"keep<174>1 1970-01-01T00:00:00.000000Z sensor1 cloudtap 4242 dns - {}"
        );
    }

    #[test]
    fn timestamps() {
        let ts = |ns: u64| {
            let mut v = Vec::new();
            push_timestamp(&mut v, ns);
            String::from_utf8(v).unwrap()
        };
        // 2024-02-29 (leap day) 23:59:59.999999999 truncates to .999999.
        assert_eq!(ts(1_709_251_199_999_999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(ts(951_782_400_000_001_000), "2000-02-29T00:00:00.000001Z");
        assert_eq!(ts(u64::MAX), "2554-07-21T23:34:33.709551Z");
    }

    #[test]
    fn severities() {
        assert_eq!(severity(&meta(Kind::Alert, 1, 0)), 2);
        assert_eq!(severity(&meta(Kind::Alert, 2, 0)), 3);
        assert_eq!(severity(&meta(Kind::Alert, 3, 0)), 4);
        assert_eq!(severity(&meta(Kind::Alert, 0, 0)), 4);
        assert_eq!(severity(&meta(Kind::Alert, 9, 0)), 4);
        for k in Kind::ALL.into_iter().filter(|k| *k != Kind::Alert) {
            assert_eq!(severity(&meta(k, 1, 0)), 6);
        }
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("local0"), Some(16));
        assert_eq!(parse_facility("LOCAL7"), Some(23));
        assert_eq!(parse_facility("daemon"), Some(3));
        assert_eq!(parse_facility("23"), Some(23));
        assert_eq!(parse_facility("24"), None);
        assert_eq!(parse_facility("local8"), None);
        assert_eq!(parse_facility(""), None);
    }

    #[test]
    fn options() {
        let err = |u: &str| open(&parse(u).unwrap()).err().unwrap();
        assert!(err("syslog+udp://h:514?ca=/x").contains("unknown option(s) ca"));
        assert!(err("syslog+tcp://h:514?max_udp=100").contains("max_udp"));
        assert!(err("syslog+udp://h:514?facility=local9").contains("facility"));
        assert!(err("syslog+udp://h:514?app_name=a%20b").contains("app_name"));
        assert!(err("syslog+udp://h:514?hostname=").contains("hostname"));
        assert!(err("syslog+tls://h:514?cert=/x").contains("go together"));
        assert!(err("syslog+tls://h:514?ca=/nonexistent/ca.pem").contains("ca="));
        assert!(
            open(&parse("syslog+udp://h:514?facility=3&max_udp=1200&timeout_ms=10").unwrap())
                .is_ok()
        );
        let h = machine_hostname();
        assert!(header_field_ok(&h, 255), "{h:?}");
    }
}
