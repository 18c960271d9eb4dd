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
#[inline]
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// `tchar` by byte value: every byte of every header name is checked, so a table rather
/// than a search of the punctuation list.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric();
        i += 1;
    }
    let punct = b"!#$%&'*+-.^_`|~";
    let mut j = 0;
    while j < punct.len() {
        t[punct[j] as usize] = true;
        j += 1;
    }
    t
};

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

/// One parsed request head: the request it makes, how its body is framed, and what was
/// skipped in it.
#[derive(Debug)]
struct Head {
    req: Request,
    body: State,
    /// Header lines skipped (no colon, or a name that is not a token).
    invalid_lines: usize,
    /// Headers past MAX_HEADERS, not kept.
    dropped_headers: usize,
}

enum HeadStatus {
    Partial,
    /// Bytes the head took, and the head.
    Complete(usize, Box<Head>),
    Invalid,
}

/// The next line of `buf` from `at`: the line without its LF (and CR), and where the one
/// after it starts; `None` when no LF follows. Looks at eight bytes at a time (a request
/// head is mostly long lines).
#[inline]
fn next_line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let p = find_lf(rest)?;
    let line = &rest[..p];
    Some((line.strip_suffix(b"\r").unwrap_or(line), at + p + 1))
}

/// Position of the first LF in `d`: a word-at-a-time search (the classic "has zero byte"
/// test on the bytes XORed with LF), then the exact byte.
#[inline]
fn find_lf(d: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LF: u64 = LO * b'\n' as u64;
    let mut i = 0;
    while let Some(w) = d.get(i..i + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b) ^ LF;
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            break;
        }
        i += 8;
    }
    d[i..].iter().position(|b| *b == b'\n').map(|p| i + p)
}

/// A header field being read, applied to the request once its continuation lines (if any)
/// have been joined to it. Only the fields the request keeps are copied.
struct Field<'a> {
    name: &'a [u8],
    /// The value as sent, or joined with continuation lines.
    value: std::borrow::Cow<'a, [u8]>,
}

/// Which of the fields the request keeps a header name is (`None`: not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Host,
    UserAgent,
    ContentType,
    ContentLength,
    TransferEncoding,
}

fn kept(name: &[u8]) -> Option<Kept> {
    let (want, k): (&[u8], Kept) = match name.len() {
        4 => (b"host", Kept::Host),
        10 => (b"user-agent", Kept::UserAgent),
        12 => (b"content-type", Kept::ContentType),
        14 => (b"content-length", Kept::ContentLength),
        17 => (b"transfer-encoding", Kept::TransferEncoding),
        _ => return None,
    };
    name.eq_ignore_ascii_case(want).then_some(k)
}

/// Parses a request head at the start of `buf` (leniently, see the module comment), in one
/// pass over its lines, copying only what the request keeps.
fn parse_head(buf: &[u8]) -> HeadStatus {
    // The head ends at the first empty line (CRLF CRLF, or bare LF LF as libhtp allows).
    // `buf` is at most MAX_HEADER_BYTES plus the segment just fed (the caller drops a longer
    // partial head), and each line read moves past one newline.
    let Some((first, mut at)) = next_line(buf, 0) else {
        return HeadStatus::Partial;
    };
    if first.is_empty() {
        return HeadStatus::Invalid;
    }
    let line = trim(first);
    let mtok = line.iter().take_while(|b| is_tchar(**b)).count();
    let protocol = if mtok == 0 || !matches!(line.get(mtok), Some(b' ' | b'\t')) {
        None
    } else {
        version_of_line(line)
    };
    let Some(protocol) = protocol else {
        // Not a request line; still a partial head (not an invalid one) until it ends.
        loop {
            match next_line(buf, at) {
                None => return HeadStatus::Partial,
                Some(([], _)) => return HeadStatus::Invalid,
                Some((_, next)) => at = next,
            }
        }
    };
    let vstart = line
        .iter()
        .rposition(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(line.len());
    // The URI is everything between the method and the version, spaces included.
    let uri = trim(line.get(mtok..vstart).unwrap_or(&[]));
    let mut head = Head {
        req: Request {
            method: String::from_utf8_lossy(&line[..mtok]).into_owned(),
            uri: String::from_utf8_lossy(uri).into_owned(),
            protocol,
            ..Request::default()
        },
        body: State::Head,
        invalid_lines: 0,
        dropped_headers: 0,
    };
    let mut headers = 0usize;
    // The last header kept, while continuation lines may still be joined to it. A header
    // line that failed ends any folding: a continuation after it is skipped too.
    let mut cur: Option<Field<'_>> = None;
    let mut can_fold = false;
    let end = loop {
        let Some((l, next)) = next_line(buf, at) else {
            return HeadStatus::Partial;
        };
        at = next;
        if l.is_empty() {
            break at;
        }
        if matches!(l.first(), Some(b' ' | b'\t')) {
            // Obsolete line folding (RFC 7230 3.2.4): one SP replaces the fold.
            match cur.as_mut() {
                Some(f) if can_fold => {
                    let more = trim(l);
                    if !more.is_empty() && f.value.len() + more.len() < MAX_HEADER_BYTES {
                        let v = f.value.to_mut();
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
        if headers >= MAX_HEADERS {
            head.dropped_headers += 1;
            can_fold = false;
            continue;
        }
        headers += 1;
        if let Some(f) = cur.take() {
            apply(&mut head, &f);
        }
        cur = Some(Field {
            name,
            value: std::borrow::Cow::Borrowed(trim(&l[colon + 1..])),
        });
        can_fold = true;
    };
    if let Some(f) = cur.take() {
        apply(&mut head, &f);
    }
    finish(&mut head);
    HeadStatus::Complete(end, Box::new(head))
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
                            let Head { req, body, .. } = *head;
                            out.push(req);
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

/// Applies one header field (continuations joined) to the request being read.
fn apply(head: &mut Head, f: &Field<'_>) {
    let Some(k) = kept(f.name) else {
        return;
    };
    let value = &f.value[..];
    let r = &mut head.req;
    match k {
        Kept::Host => {
            let (host, port) = split_host_port(&header_str(value));
            r.host = Some(host);
            r.host_port = port;
        }
        Kept::UserAgent => {
            // Repeated User-Agent headers are joined with ", " as Suricata does; every
            // one of them is matched by the detect stage.
            let ua = header_raw(value);
            r.user_agent = Some(match r.user_agent.take() {
                Some(prev) => format!("{prev}, {ua}"),
                None => ua.clone(),
            });
            r.user_agents.push(ua);
        }
        Kept::ContentType => r.content_type = Some(header_str(value)),
        Kept::ContentLength => {
            if let Ok(n) = header_str(value).parse::<u64>() {
                if n > 0 && head.body == State::Head {
                    head.body = State::Body(n);
                }
            }
        }
        Kept::TransferEncoding => {
            if header_str(value).to_ascii_lowercase().contains("chunked") {
                head.body = State::ChunkSize;
            }
        }
    }
}

/// What the whole head decides: the host of an absolute-form URI, CONNECT's tunnel.
fn finish(head: &mut Head) {
    let r = &mut head.req;
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
        head.body = State::Tunnel;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_lf_finds_the_first_newline_wherever_it_sits() {
        for len in 0..40 {
            for at in 0..len {
                let mut d = vec![b'a'; len];
                d[at] = b'\n';
                if at + 3 < len {
                    d[at + 3] = b'\n';
                }
                assert_eq!(find_lf(&d), Some(at), "len {len} at {at}");
            }
            // Bytes one off LF (0x0b, 0x09, 0x8a) are not taken for it.
            let d: Vec<u8> = (0..len).map(|i| [0x0b, 0x09, 0x8a][i % 3]).collect();
            assert_eq!(find_lf(&d), None);
        }
    }

    #[test]
    fn tchar_table_is_the_rfc_set() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), want, "{b:#04x}");
        }
    }

    #[test]
    fn head_fields_are_read_in_one_pass() {
        let mut s = RequestStream::new(true);
        let (mut out, mut skips) = (Vec::new(), Vec::new());
        let req = b"POST http://p.example:8080/x HTTP/1.1\r\nUser-Agent: a\r\n b\r\n\
            user-agent: c\r\nbad line\r\n\tlost\r\nContent-Type: t/x\r\n\
            Content-Length: 3\r\n\r\nabcGET /n HTTP/1.0\nHost: h.example:81\n\n";
        s.feed(req, &mut out, &mut skips);
        assert_eq!(out.len(), 2);
        let r = &out[0];
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("POST", "http://p.example:8080/x")
        );
        assert_eq!(
            (r.host.as_deref(), r.host_port),
            (Some("p.example"), Some(8080))
        );
        assert_eq!(r.user_agent.as_deref(), Some("a b, c"));
        assert_eq!(r.user_agents, ["a b", "c"]);
        assert_eq!(r.content_type.as_deref(), Some("t/x"));
        assert_eq!(
            skips,
            [HttpSkip::InvalidHeaderLine, HttpSkip::InvalidHeaderLine]
        );
        let r = &out[1];
        assert_eq!((r.method.as_str(), r.protocol), ("GET", "HTTP/1.0"));
        assert_eq!(
            (r.host.as_deref(), r.host_port),
            (Some("h.example"), Some(81))
        );
    }
}
