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

    /// The server's first hello, on the other direction of this connection, was read:
    /// `hrr` when it is a HelloRetryRequest. A TLS client stream then knows how many
    /// ClientHellos are still to come (one more after a HelloRetryRequest, none otherwise)
    /// and finishes once they are read, rather than walking encrypted records until the
    /// first application data (the connection stays on the packet path meanwhile).
    /// Streams not yet decided keep reading as before: nothing is lost, only time.
    pub fn server_hello(&mut self, hrr: bool) {
        if let AppStream::Tls(t) = self {
            t.expect_hellos(if hrr { 2 } else { 1 });
            if t.is_done() {
                *self = AppStream::Finished;
            }
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
        self.feed_head(data, ports, out, skips);
    }

    /// [`AppStream::feed`], also telling what this direction's first bytes said about a
    /// server's first hello (see [`tls::first_server_hello`]), when they were decided now.
    fn feed_head(
        &mut self,
        data: &[u8],
        ports: (u16, u16),
        out: &mut Vec<Record>,
        skips: &mut Skips,
    ) -> Option<bool> {
        if data.is_empty() {
            return None;
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
            let hello = match next {
                Some(AppStream::TlsServer(_) | AppStream::Finished) => {
                    tls::first_server_hello(&head)
                }
                _ => None,
            };
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
            return hello;
        }
        self.feed_decided(data, out, skips);
        None
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

/// Feeds contiguous in-order bytes of direction `dir` of a TCP connection whose two
/// directions are `app`. When they are a server's first hello, the other direction (the
/// client's) learns whether it was a HelloRetryRequest (see [`AppStream::server_hello`]).
pub fn feed_pair(
    app: &mut [AppStream; 2],
    dir: usize,
    data: &[u8],
    ports: (u16, u16),
    out: &mut Vec<Record>,
    skips: &mut Skips,
) {
    let [a, b] = app;
    let (this, peer) = if dir == 0 { (a, b) } else { (b, a) };
    if let Some(hrr) = this.feed_head(data, ports, out, skips) {
        peer.server_hello(hrr);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ct, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn handshake(t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    /// A ClientHello record naming `sni`.
    fn client_hello(sni: &str) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        let mut d = ((sni.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        d.extend_from_slice(sni.as_bytes());
        let mut e = vec![0, 0];
        e.extend_from_slice(&(d.len() as u16).to_be_bytes());
        e.extend_from_slice(&d);
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        record(22, &handshake(1, &body))
    }

    /// A TLS 1.3 ServerHello record; `hrr`: with the HelloRetryRequest random.
    fn server_hello(hrr: bool) -> Vec<u8> {
        let mut body = vec![3, 3];
        if hrr {
            body.extend_from_slice(&tls::HRR_RANDOM);
        } else {
            body.extend_from_slice(&[9; 32]);
        }
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01, 0]);
        body.extend_from_slice(&[0, 6, 0, 0x2b, 0, 2, 3, 4]);
        record(22, &handshake(2, &body))
    }

    fn snis(out: &[Record]) -> Vec<String> {
        out.iter()
            .filter_map(|r| match r {
                Record::Tls(h) => h.sni.clone(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_server_hello_finishes_the_client_stream() {
        let mut app = [AppStream::new(true), AppStream::new(true)];
        let (mut out, mut skips) = (Vec::new(), Skips::default());
        feed_pair(
            &mut app,
            0,
            &client_hello("a.example"),
            (50000, 443),
            &mut out,
            &mut skips,
        );
        assert!(!app[0].is_finished(), "the server has not answered yet");
        feed_pair(
            &mut app,
            1,
            &server_hello(false),
            (443, 50000),
            &mut out,
            &mut skips,
        );
        assert!(app[0].is_finished(), "no second ClientHello can follow");
        assert_eq!(snis(&out), ["a.example"]);
    }

    #[test]
    fn a_hello_retry_request_keeps_the_client_stream_for_one_more_hello() {
        let mut app = [AppStream::new(true), AppStream::new(true)];
        let (mut out, mut skips) = (Vec::new(), Skips::default());
        feed_pair(
            &mut app,
            0,
            &client_hello("h.example"),
            (50000, 443),
            &mut out,
            &mut skips,
        );
        feed_pair(
            &mut app,
            1,
            &server_hello(true),
            (443, 50000),
            &mut out,
            &mut skips,
        );
        assert!(
            !app[0].is_finished(),
            "the second ClientHello is still to come"
        );
        // TLS 1.3 middlebox compatibility: a ChangeCipherSpec before the second hello.
        let mut second = record(20, &[1]);
        second.extend(client_hello("h.example"));
        feed_pair(&mut app, 0, &second, (50000, 443), &mut out, &mut skips);
        assert!(app[0].is_finished(), "two hellos are all a handshake has");
        assert_eq!(snis(&out), ["h.example", "h.example"]);
    }

    #[test]
    fn a_server_answer_that_does_not_tell_leaves_the_client_stream_reading() {
        // The server's first segment too short to hold the random: no verdict, the client
        // stream reads on as without one (every ClientHello until encrypted records).
        let mut app = [AppStream::new(true), AppStream::new(true)];
        let (mut out, mut skips) = (Vec::new(), Skips::default());
        feed_pair(
            &mut app,
            0,
            &client_hello("s.example"),
            (50000, 443),
            &mut out,
            &mut skips,
        );
        let sh = server_hello(false);
        feed_pair(&mut app, 1, &sh[..20], (443, 50000), &mut out, &mut skips);
        feed_pair(&mut app, 1, &sh[20..], (443, 50000), &mut out, &mut skips);
        assert!(!app[0].is_finished());
        feed_pair(
            &mut app,
            0,
            &record(23, &[1; 30]),
            (50000, 443),
            &mut out,
            &mut skips,
        );
        assert!(app[0].is_finished(), "application data ends it");
        // A verdict before the client's hello is complete: the first hello still counts.
        let mut app = [AppStream::new(true), AppStream::new(true)];
        let ch = client_hello("t.example");
        feed_pair(&mut app, 0, &ch[..10], (50000, 443), &mut out, &mut skips);
        feed_pair(
            &mut app,
            1,
            &server_hello(false),
            (443, 50000),
            &mut out,
            &mut skips,
        );
        assert!(!app[0].is_finished());
        feed_pair(&mut app, 0, &ch[10..], (50000, 443), &mut out, &mut skips);
        assert!(app[0].is_finished());
        assert_eq!(snis(&out), ["s.example", "t.example"]);
    }

    #[test]
    fn first_server_hello_reads_only_a_server_hello_start() {
        assert_eq!(tls::first_server_hello(&server_hello(true)), Some(true));
        assert_eq!(tls::first_server_hello(&server_hello(false)), Some(false));
        assert_eq!(tls::first_server_hello(&server_hello(true)[..42]), None);
        assert_eq!(tls::first_server_hello(&client_hello("x")), None);
        assert_eq!(tls::first_server_hello(b"HTTP/1.1 200 OK\r\n\r\n"), None);
    }
}
