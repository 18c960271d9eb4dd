//! HTTP/1.x request extraction over a reassembled client stream: every request of a
//! keep-alive or pipelined connection, headers split across any number of segments, bodies
//! (Content-Length or chunked) skipped without buffering. Header parsing is `httparse`.

/// Largest request head (request line plus headers) we buffer before giving up on it.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most headers per request.
const MAX_HEADERS: usize = 96;
/// How many bytes a stream may be searched for a request start before we stop trying
/// (midstream pickup, or after a request we could not parse).
pub const MAX_RESYNC_BYTES: usize = 256 * 1024;

const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"M-SEARCH",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    pub uri: String,
    /// "HTTP/1.0" or "HTTP/1.1".
    pub protocol: &'static str,
    /// Host without port, from the Host header (or an absolute-form URI).
    pub host: Option<String>,
    /// Port given in the Host header, if any.
    pub host_port: Option<u16>,
    pub user_agent: Option<String>,
    /// Each User-Agent header separately, when there are several.
    pub user_agents: Vec<String>,
    pub content_type: Option<String>,
}

/// Does `d` begin with a request line start (`METHOD SP`)? `None` when too short to tell.
pub fn starts_with_request(d: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for m in METHODS {
        if d.len() > m.len() {
            if d.starts_with(m) && d[m.len()] == b' ' {
                return Some(true);
            }
        } else if m.starts_with(d) {
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    /// Data of one chunk; afterwards the next chunk-size line.
    ChunkData(u64),
    ChunkSize,
    ChunkTrailer,
    /// Looking for the next request line (midstream start or after an unparseable head).
    Resync,
    /// Gave up: the stream carries nothing more we can read.
    Done,
    /// A CONNECT request was accepted: what follows is another protocol.
    Tunnel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSkip {
    HeaderTooLarge,
    Malformed,
    ResyncExhausted,
}

impl HttpSkip {
    pub fn reason(&self) -> &'static str {
        match self {
            HttpSkip::HeaderTooLarge => "http_header_too_large",
            HttpSkip::Malformed => "http_malformed_request",
            HttpSkip::ResyncExhausted => "http_resync_exhausted",
        }
    }
}

/// Incremental request parser for one direction of a connection.
#[derive(Debug)]
pub struct RequestStream {
    buf: Vec<u8>,
    state: State,
    resync_scanned: usize,
}

impl RequestStream {
    /// `synced`: the stream is known to start at a request boundary (SYN seen, or the first
    /// bytes are a request line); otherwise the parser searches for the first request line.
    pub fn new(synced: bool) -> Self {
        RequestStream {
            buf: Vec::new(),
            state: if synced { State::Head } else { State::Resync },
            resync_scanned: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// After a CONNECT request: the bytes already buffered behind it, once.
    pub fn take_tunnel(&mut self) -> Option<Vec<u8>> {
        if self.state == State::Tunnel {
            self.state = State::Done;
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Bytes currently buffered (bounded by MAX_HEADER_BYTES plus one segment).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds contiguous stream bytes; complete requests go to `out`, problems to `skips`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Request>, skips: &mut Vec<HttpSkip>) {
        if matches!(self.state, State::Done | State::Tunnel) {
            return;
        }
        // Body bytes that arrive whole need not be copied at all.
        let mut data = data;
        if self.buf.is_empty() {
            if let State::Body(n) = self.state {
                let k = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                data = &data[k..];
                let left = n - k as u64;
                self.state = if left == 0 {
                    State::Head
                } else {
                    State::Body(left)
                };
                if data.is_empty() {
                    return;
                }
            }
        }
        self.buf.extend_from_slice(data);
        // Each pass consumes bytes or breaks, so the loop is bounded by the buffer length.
        loop {
            match self.state {
                State::Done => {
                    self.buf = Vec::new();
                    return;
                }
                State::Tunnel => return,
                State::Head => {
                    if self.buf.is_empty() {
                        return;
                    }
                    // Tolerate stray CRLFs between requests (RFC 9112 section 2.2).
                    let lead = self
                        .buf
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    if lead > 0 {
                        self.buf.drain(..lead);
                        continue;
                    }
                    match starts_with_request(&self.buf) {
                        None => return,
                        Some(false) => {
                            skips.push(HttpSkip::Malformed);
                            self.state = State::Resync;
                            continue;
                        }
                        Some(true) => {}
                    }
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(&self.buf) {
                        Ok(httparse::Status::Complete(n)) => {
                            let (r, body) = build(&req);
                            out.push(r);
                            self.buf.drain(..n);
                            self.state = body;
                        }
                        Ok(httparse::Status::Partial) => {
                            if self.buf.len() > MAX_HEADER_BYTES {
                                skips.push(HttpSkip::HeaderTooLarge);
                                self.buf.clear();
                                self.state = State::Resync;
                            }
                            return;
                        }
                        Err(_) => {
                            skips.push(HttpSkip::Malformed);
                            self.buf.drain(..1);
                            self.state = State::Resync;
                        }
                    }
                }
                State::Body(n) | State::ChunkData(n) => {
                    let chunked = matches!(self.state, State::ChunkData(_));
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
                    self.buf.drain(..k);
                    let left = n - k as u64;
                    self.state = match (left, chunked) {
                        (0, false) => State::Head,
                        (0, true) => State::ChunkSize,
                        (l, false) => State::Body(l),
                        (l, true) => State::ChunkData(l),
                    };
                    if left > 0 {
                        return;
                    }
                }
                State::ChunkSize => {
                    let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
                        if self.buf.len() > 1024 {
                            skips.push(HttpSkip::Malformed);
                            self.state = State::Resync;
                            continue;
                        }
                        return;
                    };
                    let line = &self.buf[..nl];
                    let hexpart: Vec<u8> = line
                        .iter()
                        .copied()
                        .take_while(|b| b.is_ascii_hexdigit())
                        .collect();
                    let blank = line.iter().all(|b| *b == b'\r');
                    if blank {
                        // CRLF that ends the previous chunk's data.
                        self.buf.drain(..=nl);
                        continue;
                    }
                    let size = std::str::from_utf8(&hexpart)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s, 16).ok());
                    self.buf.drain(..=nl);
                    match size {
                        Some(0) => self.state = State::ChunkTrailer,
                        Some(n) => self.state = State::ChunkData(n),
                        None => {
                            skips.push(HttpSkip::Malformed);
                            self.state = State::Resync;
                        }
                    }
                }
                State::ChunkTrailer => {
                    let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
                        if self.buf.len() > MAX_HEADER_BYTES {
                            self.state = State::Resync;
                            continue;
                        }
                        return;
                    };
                    let blank = self.buf[..nl].iter().all(|b| *b == b'\r');
                    self.buf.drain(..=nl);
                    if blank {
                        self.state = State::Head;
                    }
                }
                State::Resync => {
                    if let Some(at) = find_request_start(&self.buf) {
                        self.resync_scanned += at;
                        self.buf.drain(..at);
                        self.state = State::Head;
                        continue;
                    }
                    // Keep a tail long enough to hold a split "\nPROPPATCH ".
                    let keep = self.buf.len().min(11);
                    let dropped = self.buf.len() - keep;
                    self.resync_scanned += dropped;
                    self.buf.drain(..dropped);
                    if self.resync_scanned > MAX_RESYNC_BYTES {
                        skips.push(HttpSkip::ResyncExhausted);
                        self.state = State::Done;
                        continue;
                    }
                    return;
                }
            }
        }
    }
}

/// Finds the start of a request line at the buffer start or just after a newline.
fn find_request_start(buf: &[u8]) -> Option<usize> {
    if starts_with_request(buf) == Some(true) && line_has_http_version(buf) {
        return Some(0);
    }
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|b| *b == b'\n') {
        let at = i + p + 1;
        if at >= buf.len() {
            return None;
        }
        if starts_with_request(&buf[at..]) == Some(true) && line_has_http_version(&buf[at..]) {
            return Some(at);
        }
        i = at;
    }
    None
}

/// The request line (up to the first newline, or what we have) mentions HTTP/1.
fn line_has_http_version(d: &[u8]) -> bool {
    let line_end = d.iter().position(|b| *b == b'\n').unwrap_or(d.len());
    let line = &d[..line_end.min(8192)];
    line.windows(7).any(|w| w == b"HTTP/1.")
}

fn header_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim().to_string()
}

/// A header value as sent (only leading white space removed, as the grammar says); used for
/// the User-Agent, whose exact bytes are evidence.
fn header_raw(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim_start().to_string()
}

/// Splits `host[:port]` (or `[v6]:port`).
pub fn split_host_port(h: &str) -> (String, Option<u16>) {
    if let Some(rest) = h.strip_prefix('[') {
        if let Some((addr, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (addr.to_string(), port);
        }
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_string(), Some(p)),
            Err(_) => (h.to_string(), None),
        },
        _ => (h.to_string(), None),
    }
}

fn build(req: &httparse::Request<'_, '_>) -> (Request, State) {
    let mut r = Request {
        method: req.method.unwrap_or("").to_string(),
        uri: req.path.unwrap_or("").to_string(),
        protocol: if req.version == Some(0) {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        },
        ..Request::default()
    };
    let mut body = State::Head;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            let (host, port) = split_host_port(&header_str(h.value));
            r.host = Some(host);
            r.host_port = port;
        } else if h.name.eq_ignore_ascii_case("user-agent") {
            // Repeated User-Agent headers are joined with ", " as Suricata does; every
            // one of them is matched by the detect stage.
            let ua = header_raw(h.value);
            r.user_agent = Some(match r.user_agent.take() {
                Some(prev) => format!("{prev}, {ua}"),
                None => ua,
            });
            r.user_agents.push(header_raw(h.value));
        } else if h.name.eq_ignore_ascii_case("content-type") {
            r.content_type = Some(header_str(h.value));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if let Ok(n) = header_str(h.value).parse::<u64>() {
                if n > 0 && body == State::Head {
                    body = State::Body(n);
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && header_str(h.value).to_ascii_lowercase().contains("chunked")
        {
            body = State::ChunkSize;
        }
    }
    if r.host.is_none() {
        // Absolute-form request target (to a proxy): http://host[:port]/path
        if let Some(rest) = r.uri.split_once("://").map(|(_, rest)| rest) {
            let authority = rest.split('/').next().unwrap_or("");
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            let (host, port) = split_host_port(authority);
            if !host.is_empty() {
                r.host = Some(host);
                r.host_port = port;
            }
        }
    }
    if r.method.eq_ignore_ascii_case("CONNECT") {
        // The tunnel that follows is not HTTP (usually TLS, probed by the caller).
        body = State::Tunnel;
    }
    (r, body)
}
