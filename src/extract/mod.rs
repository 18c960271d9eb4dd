//! Extract stage: recognises the application protocol of each direction of a flow by its
//! content (not by port alone) and pulls out DNS questions/answers, TLS ClientHellos and HTTP
//! requests.

pub mod dns;
pub mod http;
pub mod quic;
pub mod tls;

use crate::stats::Skips;

/// Ports on which UDP and TCP payloads are taken as DNS without content checks.
pub fn is_dns_port(p: u16) -> bool {
    matches!(p, 53 | 5353 | 5355)
}

fn is_netbios_port(p: u16) -> bool {
    matches!(p, 137 | 138)
}

/// Something worth reporting that a flow carried.
#[derive(Debug, Clone)]
pub enum Record {
    Dns(dns::Message),
    Tls(Box<tls::ClientHello>),
    Http(http::Request),
    /// A ClientHello read from QUIC Initial packets, with the QUIC version.
    Quic(Box<tls::ClientHello>, u32),
    /// The server's side of a TLS 1.2-or-earlier handshake: ServerHello (JA3S) and the leaf
    /// certificate. Its meta is oriented client to server, like the ClientHello's.
    TlsServer(Box<tls::ServerInfo>),
}

impl Record {
    pub fn app_proto(&self) -> &'static str {
        match self {
            Record::Dns(_) => "dns",
            Record::Tls(_) => "tls",
            Record::Http(_) => "http",
            Record::Quic(..) => "quic",
            Record::TlsServer(_) => "tls",
        }
    }
}

/// Bytes of an undecided stream we keep while waiting to recognise it.
const MAX_UNDECIDED: usize = 16;
/// How far into an unrecognised stream we look for STARTTLS or tunnelled TLS.
const MAX_PROBE: usize = 16 * 1024;
/// A DNS-over-TCP stream buffers at most one message plus its length prefix.
const MAX_DNS_TCP: usize = 65_535 + 2;

/// What one direction of a TCP connection carries, and the parser state for it.
#[derive(Debug)]
pub enum AppStream {
    /// Nothing seen yet (or too few bytes to tell). `synced` is true when the stream start
    /// was captured (SYN seen), so the first bytes are the first bytes the client sent.
    Undecided {
        synced: bool,
        buf: Vec<u8>,
        /// Read a server's TLS flight if this turns out to be one (see `skip_server_flight`).
        server_tls: bool,
    },
    /// A TLS client: every plaintext ClientHello is reported (a second one after a
    /// HelloRetryRequest too).
    Tls(tls::ClientStream),
    /// A TLS server: its first flight (ServerHello, Certificate), read once.
    TlsServer(tls::ServerStream),
    Http(http::RequestStream),
    DnsTcp {
        buf: Vec<u8>,
    },
    /// An unrecognised protocol (SMTP, IMAP, an HTTP CONNECT tunnel, ...): each new chunk is
    /// checked for a TLS ClientHello (STARTTLS, tunnelled TLS) or an HTTP request, for the
    /// first MAX_PROBE bytes.
    Probe {
        seen: usize,
    },
    /// Nothing more to extract from this direction: its bytes are skipped.
    Finished,
}

impl AppStream {
    pub fn new(synced: bool) -> Self {
        AppStream::Undecided {
            synced,
            buf: Vec::new(),
            server_tls: true,
        }
    }

    /// The caller needs nothing from a server's TLS flight on this stream: if that is what
    /// it carries, it is skipped rather than buffered and its certificate parsed (the
    /// costliest thing a TLS flow can ask of the packet path).
    pub fn skip_server_flight(&mut self) {
        if let AppStream::Undecided { server_tls, .. } = self {
            *server_tls = false;
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, AppStream::Finished)
    }

    /// Bytes this stream holds in buffers (for the per-flow and global reassembly caps).
    pub fn buffered(&self) -> usize {
        match self {
            AppStream::Undecided { buf, .. } | AppStream::DnsTcp { buf } => buf.capacity(),
            AppStream::Tls(t) => t.buffered(),
            AppStream::TlsServer(t) => t.buffered(),
            AppStream::Http(h) => h.buffered(),
            AppStream::Probe { .. } | AppStream::Finished => 0,
        }
    }

    /// The reassembler skipped a hole in this direction (bytes the capture lost). HTTP looks
    /// for the next request line; a stream still undecided or TLS cannot continue past the
    /// hole and stops (a TLS record boundary is lost with it).
    pub fn gap(&mut self, skips: &mut Skips) {
        match self {
            AppStream::Http(h) => {
                let mut errs = Vec::new();
                h.gap(&mut errs);
                for e in errs {
                    skips.add(e.reason());
                }
            }
            // Past a hole the next bytes are not the stream start: decide afresh, as for a
            // connection picked up midway.
            AppStream::Undecided { server_tls, .. } => {
                let server_tls = *server_tls;
                *self = AppStream::new(false);
                if !server_tls {
                    self.skip_server_flight();
                }
            }
            AppStream::Tls(_) | AppStream::TlsServer(_) | AppStream::DnsTcp { .. } => {
                *self = AppStream::Finished
            }
            AppStream::Probe { .. } | AppStream::Finished => {}
        }
    }

    /// Feeds contiguous in-order bytes of this direction.
    pub fn feed(
        &mut self,
        data: &[u8],
        ports: (u16, u16),
        out: &mut Vec<Record>,
        skips: &mut Skips,
    ) {
        if data.is_empty() {
            return;
        }
        if let AppStream::Undecided {
            synced,
            buf,
            server_tls,
        } = self
        {
            let synced = *synced;
            let server_tls = *server_tls;
            let held = std::mem::take(buf);
            let mut head = held.clone();
            head.extend_from_slice(data);
            let next = decide(&head, synced, server_tls, ports);
            match next {
                Some(s @ AppStream::Probe { .. }) => {
                    // A probe looks at chunk starts: replay the chunks as they came (a SOCKS
                    // request held back here is followed by the tunnelled ClientHello).
                    *self = s;
                    self.feed_decided(&held, out, skips);
                    self.feed_decided(data, out, skips);
                }
                Some(s) => {
                    *self = s;
                    // Replay what was held back into the chosen parser.
                    self.feed_decided(&head, out, skips);
                }
                None if head.len() < MAX_UNDECIDED => *buf = head,
                None => *self = AppStream::Finished,
            }
            return;
        }
        self.feed_decided(data, out, skips);
    }

    fn feed_decided(&mut self, data: &[u8], out: &mut Vec<Record>, skips: &mut Skips) {
        match self {
            AppStream::Undecided { .. } | AppStream::Finished => {}
            AppStream::Tls(t) => {
                let mut hellos = Vec::new();
                let mut errs = Vec::new();
                t.feed(data, &mut hellos, &mut errs);
                for e in errs {
                    skips.add(e.reason());
                }
                out.extend(hellos.into_iter().map(|h| Record::Tls(Box::new(h))));
                if t.is_done() {
                    *self = AppStream::Finished;
                }
            }
            AppStream::TlsServer(t) => match t.feed(data) {
                tls::ServerProgress::NeedMore => {}
                tls::ServerProgress::Done(info) => {
                    if let Some(e) = &info.cert_error {
                        skips.add(e.reason());
                    }
                    out.push(Record::TlsServer(info));
                    *self = AppStream::Finished;
                }
                tls::ServerProgress::NotTls => *self = AppStream::Finished,
                tls::ServerProgress::Error(e) => {
                    skips.add(e.reason());
                    *self = AppStream::Finished;
                }
            },
            AppStream::Http(h) => {
                let mut reqs = Vec::new();
                let mut errs = Vec::new();
                h.feed(data, &mut reqs, &mut errs);
                for e in errs {
                    skips.add(e.reason());
                }
                out.extend(reqs.into_iter().map(Record::Http));
                if let Some(rest) = h.take_tunnel() {
                    // After CONNECT the stream carries the tunnelled protocol (usually TLS).
                    *self = AppStream::Probe { seen: 0 };
                    self.feed_decided(&rest, out, skips);
                } else if h.is_done() {
                    *self = AppStream::Finished;
                }
            }
            AppStream::Probe { seen } => {
                if tls::looks_like_tls(data) {
                    *self = AppStream::Tls(tls::ClientStream::new());
                    self.feed_decided(data, out, skips);
                } else if http::starts_with_request(data) == Some(true) {
                    *self = AppStream::Http(http::RequestStream::new(true));
                    self.feed_decided(data, out, skips);
                } else {
                    *seen += data.len();
                    if *seen > MAX_PROBE {
                        *self = AppStream::Finished;
                    }
                }
            }
            AppStream::DnsTcp { buf } => {
                buf.extend_from_slice(data);
                let mut pos = 0;
                while buf.len() >= pos + 2 {
                    let len = usize::from(u16::from_be_bytes([buf[pos], buf[pos + 1]]));
                    let Some(msg) = buf.get(pos + 2..pos + 2 + len) else {
                        break;
                    };
                    match dns::parse(msg) {
                        Ok(m) => out.push(Record::Dns(m)),
                        Err(e) => skips.add(e.reason()),
                    }
                    pos += 2 + len;
                }
                buf.drain(..pos);
                if buf.len() > MAX_DNS_TCP {
                    *self = AppStream::Finished;
                }
            }
        }
    }
}

/// Recognises a direction's protocol from its first bytes; `None` = need more bytes.
fn decide(
    head: &[u8],
    synced: bool,
    server_tls: bool,
    (sport, dport): (u16, u16),
) -> Option<AppStream> {
    if tls::looks_like_tls(head) {
        // A ClientHello, or a server's first flight (ServerHello, certificate: JA3S and
        // the names it is for); application data and the rest are of no interest.
        return Some(match head.get(5) {
            None | Some(1) => AppStream::Tls(tls::ClientStream::new()),
            Some(2) if server_tls && head.first() == Some(&22) => {
                AppStream::TlsServer(tls::ServerStream::new())
            }
            Some(_) => AppStream::Finished,
        });
    }
    match http::starts_with_request(head) {
        Some(true) => return Some(AppStream::Http(http::RequestStream::new(true))),
        None if head.len() < MAX_UNDECIDED => return None,
        _ => {}
    }
    if is_dns_port(sport) || is_dns_port(dport) {
        return Some(AppStream::DnsTcp { buf: Vec::new() });
    }
    if head.len() >= 14 {
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        if len >= 17 && dns::plausible_header(&head[2..]) {
            return Some(AppStream::DnsTcp { buf: Vec::new() });
        }
    }
    if head.starts_with(b"HTTP/1.") || head.starts_with(b"SSH-") {
        return Some(AppStream::Finished);
    }
    if head.len() < 14 && head.len() < MAX_UNDECIDED {
        return None;
    }
    if synced {
        Some(AppStream::Probe { seen: 0 })
    } else {
        // Picked up mid-connection: look for the next HTTP request line, bounded.
        Some(AppStream::Http(http::RequestStream::new(false)))
    }
}

/// HTTP requests carried in one UDP datagram (SSDP's M-SEARCH and NOTIFY).
pub fn udp_http(payload: &[u8], skips: &mut Skips) -> Vec<http::Request> {
    let mut out = Vec::new();
    if http::starts_with_request(payload) == Some(true) {
        let mut s = http::RequestStream::new(true);
        let mut errs = Vec::new();
        s.feed(payload, &mut out, &mut errs);
        for e in errs {
            skips.add(e.reason());
        }
    }
    out
}

/// Recognises a UDP payload as DNS: always on DNS ports, elsewhere only when the header is
/// plausible and the whole message parses.
pub fn udp_dns(payload: &[u8], sport: u16, dport: u16, skips: &mut Skips) -> Option<dns::Message> {
    let dns_port = is_dns_port(sport) || is_dns_port(dport);
    // NetBIOS name service speaks the DNS wire format about NetBIOS names, not domains.
    if !dns_port && (is_netbios_port(sport) || is_netbios_port(dport)) {
        return None;
    }
    if !dns_port && !dns::plausible_header(payload) {
        return None;
    }
    match dns::parse(payload) {
        Ok(m) if dns_port || (m.complete && !m.questions.is_empty()) => Some(m),
        Ok(_) => None,
        Err(e) => {
            if dns_port {
                skips.add(e.reason());
            }
            None
        }
    }
}
