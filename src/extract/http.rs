//! HTTP/1.x request extraction over a reassembled client stream: every request of a
//! keep-alive or pipelined connection, headers split across any number of segments, bodies
//! (Content-Length or chunked) skipped without buffering.
//!
//! The request head parser is our own and as lenient as Suricata's (libhtp) and Zeek's: a
//! sensor must read what servers accept, not what the RFC allows. The method is the first
//! token of the request line (any RFC 7230 token, not a fixed list, once the line ends in an
//! HTTP version), the version its last token, the URI what lies between (spaces included, or
//! empty); a header line without a colon is skipped, not the request; obsolete line folding
//! joins a continuation line to the header before it. After a capture gap the stream
//! resynchronises on the next request line.

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

/// RFC 7230 `tchar`: the bytes a method token (and a header name) is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Longest method token considered (the known ones are at most 11 bytes; custom ones a bit
/// longer); bounds the look at a line start.
const MAX_METHOD_LEN: usize = 24;

/// Does `d` begin with a request line start (`METHOD SP`)? `None` when too short to tell.
///
/// A well-known method followed by a space is enough. Any other token (RFC 7230 tchar)
/// counts only when its whole first line is present and ends in an HTTP version, so that
/// other text protocols ("EHLO host", "USER name") are not taken for HTTP.
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
    let tok = d
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|b| is_tchar(**b))
        .count();
    match d.get(tok) {
        Some(b' ') if tok > 0 && tok <= MAX_METHOD_LEN => {
            let Some(nl) = d.iter().take(MAX_HEADER_BYTES).position(|b| *b == b'\n') else {
                return if d.len() < MAX_HEADER_BYTES {
                    None
                } else {
                    Some(false)
                };
            };
            Some(version_of_line(&d[..nl]).is_some())
        }
        None if tok <= MAX_METHOD_LEN => None,
        _ if undecided => None,
        _ => Some(false),
    }
}

/// The HTTP version a request line ends with ("HTTP/1.1" -> Some("HTTP/1.1")).
fn version_of_line(line: &[u8]) -> Option<&'static str> {
    let line = trim(line);
    let start = line
        .iter()
        .rposition(|b| *b == b' ' || *b == b'\t')
        .map_or(0, |p| p + 1);
    if start == 0 {
        return None;
    }
    protocol_name(&line[start..])
}

/// `HTTP/x.y` -> its name; the versions HTTP/1.x parsers meet are named, others fall back to
/// "HTTP/1.1" (how the request is parsed).
fn protocol_name(tok: &[u8]) -> Option<&'static str> {
    let v = tok.strip_prefix(b"HTTP/")?;
    if !(v.len() == 3 && v[0].is_ascii_digit() && v[1] == b'.' && v[2].is_ascii_digit()) {
        return None;
    }
    Some(match v {
        b"0.9" => "HTTP/0.9",
        b"1.0" => "HTTP/1.0",
        b"2.0" => "HTTP/2.0",
        _ => "HTTP/1.1",
    })
}

/// Strips spaces, tabs and a trailing CR from both ends.
fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = v {
        v = rest;
    }
    v
}

/// One parsed request head: the request line's parts and the header fields.
#[derive(Debug, Default)]
struct Head {
    method: String,
    uri: String,
    protocol: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Header lines skipped (no colon, or a name that is not a token).
    invalid_lines: usize,
    /// Headers past MAX_HEADERS, not kept.
    dropped_headers: usize,
}

enum HeadStatus {
    Partial,
    /// Bytes the head took, and the head.
    Complete(usize, Head),
    Invalid,
}

/// Parses a request head at the start of `buf` (leniently, see the module comment).
fn parse_head(buf: &[u8]) -> HeadStatus {
    // The head ends at the first empty line (CRLF CRLF, or bare LF LF as libhtp allows).
    let mut end = None;
    let mut line_start = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    // `buf` is at most MAX_HEADER_BYTES plus the segment just fed (the caller drops a longer
    // partial head), and each pass moves `line_start` past one newline.
    while let Some(p) = buf[line_start..].iter().position(|b| *b == b'\n') {
        let line = &buf[line_start..line_start + p];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line_start += p + 1;
        if line.is_empty() {
            end = Some(line_start);
            break;
        }
        lines.push(line);
    }
    let Some(end) = end else {
        return HeadStatus::Partial;
    };
    let Some((first, rest)) = lines.split_first() else {
        return HeadStatus::Invalid;
    };
    let line = trim(first);
    let mtok = line.iter().take_while(|b| is_tchar(**b)).count();
    if mtok == 0 || !matches!(line.get(mtok), Some(b' ' | b'\t')) {
        return HeadStatus::Invalid;
    }
    let Some(protocol) = version_of_line(line) else {
        return HeadStatus::Invalid;
    };
    let vstart = line
        .iter()
        .rposition(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(line.len());
    // The URI is everything between the method and the version, spaces included.
    let uri = trim(line.get(mtok..vstart).unwrap_or(&[]));
    let mut head = Head {
        method: String::from_utf8_lossy(&line[..mtok]).into_owned(),
        uri: String::from_utf8_lossy(uri).into_owned(),
        protocol,
        ..Head::default()
    };
    // A header line that failed ends any folding: a continuation after it is skipped too.
    let mut can_fold = false;
    for l in rest {
        if matches!(l.first(), Some(b' ' | b'\t')) {
            // Obsolete line folding (RFC 7230 3.2.4): one SP replaces the fold.
            match head.headers.last_mut() {
                Some((_, v)) if can_fold => {
                    let more = trim(l);
                    if !more.is_empty() && v.len() + more.len() < MAX_HEADER_BYTES {
                        if !v.is_empty() {
                            v.push(b' ');
                        }
                        v.extend_from_slice(more);
                    }
                }
                _ => head.invalid_lines += 1,
            }
            continue;
        }
        let Some(colon) = l.iter().position(|b| *b == b':') else {
            head.invalid_lines += 1;
            can_fold = false;
            continue;
        };
        // libhtp tolerates white space between the name and the colon.
        let name = trim(&l[..colon]);
        if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
            head.invalid_lines += 1;
            can_fold = false;
            continue;
        }
        if head.headers.len() >= MAX_HEADERS {
            head.dropped_headers += 1;
            can_fold = false;
            continue;
        }
        head.headers
            .push((name.to_vec(), trim(&l[colon + 1..]).to_vec()));
        can_fold = true;
    }
    HeadStatus::Complete(end, head)
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
    /// A header line without a colon (or with a name that is not a token): the line is
    /// skipped, the request kept.
    InvalidHeaderLine,
    /// Headers past MAX_HEADERS in one request: ignored.
    TooManyHeaders,
    /// The capture lost bytes of the stream: the parser looked for the next request line.
    Gap,
}

impl HttpSkip {
    pub fn reason(&self) -> &'static str {
        match self {
            HttpSkip::HeaderTooLarge => "http_header_too_large",
            HttpSkip::Malformed => "http_malformed_request",
            HttpSkip::ResyncExhausted => "http_resync_exhausted",
            HttpSkip::InvalidHeaderLine => "http_invalid_header_line",
            HttpSkip::TooManyHeaders => "http_too_many_headers",
            HttpSkip::Gap => "http_gap_resync",
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

    /// The capture lost bytes of this stream (the reassembler skipped a hole): whatever the
    /// parser was in (a head, a body, a chunk) is lost with them, so it looks for the next
    /// request line in what follows.
    pub fn gap(&mut self, skips: &mut Vec<HttpSkip>) {
        if matches!(self.state, State::Done | State::Tunnel) {
            return;
        }
        skips.push(HttpSkip::Gap);
        self.buf.clear();
        self.state = State::Resync;
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
                    match parse_head(&self.buf) {
                        HeadStatus::Complete(n, head) => {
                            for _ in 0..head.invalid_lines.min(MAX_HEADERS) {
                                skips.push(HttpSkip::InvalidHeaderLine);
                            }
                            if head.dropped_headers > 0 {
                                skips.push(HttpSkip::TooManyHeaders);
                            }
                            let (r, body) = build(&head);
                            out.push(r);
                            self.buf.drain(..n);
                            self.state = body;
                        }
                        HeadStatus::Partial => {
                            if self.buf.len() > MAX_HEADER_BYTES {
                                skips.push(HttpSkip::HeaderTooLarge);
                                self.buf.clear();
                                self.state = State::Resync;
                            }
                            return;
                        }
                        HeadStatus::Invalid => {
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

fn build(head: &Head) -> (Request, State) {
    let mut r = Request {
        method: head.method.clone(),
        uri: head.uri.clone(),
        protocol: head.protocol,
        ..Request::default()
    };
    let mut body = State::Head;
    for (name, value) in &head.headers {
        let name = name.as_slice();
        let value = value.as_slice();
        if name.eq_ignore_ascii_case(b"host") {
            let (host, port) = split_host_port(&header_str(value));
            r.host = Some(host);
            r.host_port = port;
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            // Repeated User-Agent headers are joined with ", " as Suricata does; every
            // one of them is matched by the detect stage.
            let ua = header_raw(value);
            r.user_agent = Some(match r.user_agent.take() {
                Some(prev) => format!("{prev}, {ua}"),
                None => ua,
            });
            r.user_agents.push(header_raw(value));
        } else if name.eq_ignore_ascii_case(b"content-type") {
            r.content_type = Some(header_str(value));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if let Ok(n) = header_str(value).parse::<u64>() {
                if n > 0 && body == State::Head {
                    body = State::Body(n);
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            && header_str(value).to_ascii_lowercase().contains("chunked")
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
