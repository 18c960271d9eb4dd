//! TLS ClientHello extraction (via `tls-parser`), with JA3 and JA4 client fingerprints, and the
//! server's plaintext first flight (ServerHello with JA3S, the leaf certificate via
//! `x509-parser`).
//!
//! The client's bytes are reassembled by the flow stage; [`ClientStream`] walks the TLS
//! records of that stream, gathers the handshake bytes across as many records as a message
//! spans, and reports every plaintext ClientHello (a second one follows a HelloRetryRequest)
//! until the records turn encrypted. [`parse_server_flight`] / [`ServerStream`] read the
//! server side of TLS 1.2 and earlier; the certificate is parsed only when a Certificate
//! message is actually there.

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::fmt::Write;
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_message_handshake, SNIType, TlsExtension,
    TlsMessage, TlsMessageHandshake,
};

/// Largest ClientHello we wait for; larger claims are treated as not-TLS. Real ones are a few
/// KiB even with post-quantum key shares.
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;
const MAX_RECORD: usize = 16_384 + 2_048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("record length {0} exceeds the TLS maximum")]
    BadRecordLength(usize),
    #[error("handshake length {0} exceeds the ClientHello cap")]
    HandshakeTooLong(usize),
    #[error("malformed ClientHello")]
    Malformed,
    #[error("certificate of {0} bytes exceeds the cap")]
    CertificateTooLong(usize),
    #[error("certificate is not valid X.509 DER")]
    BadCertificate,
}

impl TlsError {
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::BadRecordLength(_) => "tls_bad_record_length",
            TlsError::HandshakeTooLong(_) => "tls_handshake_too_long",
            TlsError::Malformed => "tls_malformed_client_hello",
            TlsError::CertificateTooLong(_) => "tls_certificate_too_long",
            TlsError::BadCertificate => "tls_bad_certificate",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub sni: Option<String>,
    /// ALPN protocol names as sent (raw bytes: JA4 hashes them byte-wise).
    pub alpn: Vec<Vec<u8>>,
    /// `legacy_version` of the hello (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// supported_versions extension, in order (GREASE included, as on the wire).
    pub versions: Vec<u16>,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    /// signature_algorithms in wire order (GREASE included, as on the wire).
    pub sig_algs: Vec<u16>,
    /// The encrypted_client_hello extension (0xfe0d) is present: the real server name is
    /// encrypted and `sni` is the outer (public) name.
    pub ech: bool,
}

/// Extension type of encrypted_client_hello (draft-ietf-tls-esni, the codepoint browsers use).
pub const EXT_ECH: u16 = 0xfe0d;
/// Extension type of server_name.
pub const EXT_SNI: u16 = 0x0000;
/// Extension type of ALPN.
pub const EXT_ALPN: u16 = 0x0010;
/// Extension type of supported_versions.
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn without_grease(v: &[u16]) -> Vec<u16> {
    v.iter().copied().filter(|x| !is_grease(*x)).collect()
}

/// What the start of a client stream holds so far.
#[derive(Debug)]
pub enum Progress {
    NeedMore,
    NotTls,
    Hello(Box<ClientHello>),
    Error(TlsError),
}

/// Quick test of the first bytes: a TLS handshake record.
pub fn looks_like_tls(d: &[u8]) -> bool {
    d.len() >= 3 && d[0] == 0x16 && d[1] == 0x03 && d[2] <= 0x04
}

/// TLS record content types (RFC 8446 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    ChangeCipherSpec,
    Alert,
    Handshake,
    ApplicationData,
    Unknown(u8),
}

impl From<u8> for ContentType {
    fn from(v: u8) -> Self {
        match v {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            n => ContentType::Unknown(n),
        }
    }
}

/// Handshake message types we act on (RFC 8446 section 4, RFC 5246 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeType {
    ClientHello,
    ServerHello,
    Certificate,
    ServerKeyExchange,
    ServerHelloDone,
    Unknown(u8),
}

impl From<u8> for HandshakeType {
    fn from(v: u8) -> Self {
        match v {
            1 => HandshakeType::ClientHello,
            2 => HandshakeType::ServerHello,
            11 => HandshakeType::Certificate,
            12 => HandshakeType::ServerKeyExchange,
            14 => HandshakeType::ServerHelloDone,
            n => HandshakeType::Unknown(n),
        }
    }
}

/// Most ClientHellos reported per client stream: a HelloRetryRequest costs one more, a
/// misbehaving client may not make us parse without end.
pub const MAX_CLIENT_HELLOS: u8 = 4;
/// Client bytes walked record by record before we stop looking for another ClientHello
/// (handshakes are a few KiB; what follows is encrypted).
pub const MAX_CLIENT_SCAN: usize = 256 * 1024;

/// Incremental walk over the TLS records a client sends: every plaintext ClientHello is
/// reported (the first one, and the second one after a HelloRetryRequest), until the records
/// turn encrypted (application data, an alert) or a cap is reached.
///
/// A renegotiation's ClientHello travels encrypted under the first handshake's keys, so it
/// cannot be read on the wire; only plaintext ones are found.
#[derive(Debug, Default)]
pub struct ClientStream {
    /// How many ClientHellos this handshake has, once the server's first hello has told
    /// (see [`ClientStream::expect_hellos`]); until then up to MAX_CLIENT_HELLOS.
    wanted: Option<u8>,
    /// Bytes of an incomplete record.
    buf: Vec<u8>,
    /// Handshake bytes gathered across records until a whole message is present.
    hs: Vec<u8>,
    /// Handshake messages seen so far (the first must be a ClientHello).
    messages: usize,
    hellos: u8,
    /// A ChangeCipherSpec was sent: later handshake records may be encrypted (TLS 1.2
    /// Finished), so what does not parse there ends the walk without being an error. TLS 1.3
    /// clients also send one before the second ClientHello (RFC 8446 D.4), which stays plain.
    after_ccs: bool,
    scanned: usize,
    done: bool,
}

impl ClientStream {
    pub fn new() -> Self {
        ClientStream::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Bytes held (bounded: one record plus one handshake message under MAX_CLIENT_HELLO).
    pub fn buffered(&self) -> usize {
        self.buf.capacity() + self.hs.capacity()
    }

    /// The server's first hello told how many ClientHellos the handshake has: one, or two
    /// after a HelloRetryRequest (RFC 8446 4.1.4: a second HelloRetryRequest aborts the
    /// handshake). The walk ends once that many have been reported: what follows is
    /// encrypted, and walking it would keep the connection on the packet path until its
    /// first application-data record for nothing.
    pub fn expect_hellos(&mut self, n: u8) {
        self.wanted = Some(n.clamp(1, MAX_CLIENT_HELLOS));
        if self.hellos >= self.cap() {
            self.finish();
        }
    }

    /// Most ClientHellos still worth reading.
    fn cap(&self) -> u8 {
        self.wanted.unwrap_or(MAX_CLIENT_HELLOS)
    }

    fn finish(&mut self) {
        self.done = true;
        self.buf = Vec::new();
        self.hs = Vec::new();
    }

    /// Feeds contiguous client bytes. ClientHellos go to `out`, problems to `errs`; the first
    /// record not being a TLS handshake, or the first message not a ClientHello, ends the walk
    /// quietly (not TLS).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<ClientHello>, errs: &mut Vec<TlsError>) {
        if self.done || data.is_empty() {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        // Each pass consumes one whole record or breaks, so the loop ends.
        while !self.done {
            let Some(hdr) = self.buf.get(pos..pos + 5) else {
                break;
            };
            let ctype = ContentType::from(hdr[0]);
            let first = self.messages == 0 && self.scanned == 0 && pos == 0;
            if hdr[1] != 0x03 || matches!(ctype, ContentType::Unknown(_)) {
                if !first && !self.after_ccs {
                    errs.push(TlsError::Malformed);
                }
                self.finish();
                break;
            }
            if first && ctype != ContentType::Handshake {
                self.finish();
                break;
            }
            let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
            if len > MAX_RECORD {
                if !self.after_ccs {
                    errs.push(TlsError::BadRecordLength(len));
                }
                self.finish();
                break;
            }
            let Some(frag) = self.buf.get(pos + 5..pos + 5 + len) else {
                // Use what has arrived to check the handshake type early.
                if first && self.buf.get(5).is_some_and(|t| *t != 1) {
                    self.finish();
                }
                break;
            };
            match ctype {
                ContentType::ChangeCipherSpec => self.after_ccs = true,
                ContentType::Handshake => {
                    self.hs.extend_from_slice(frag);
                    pos += 5 + len;
                    self.messages_from_hs(out, errs);
                    continue;
                }
                // Application data or an alert: the handshake's plaintext part is over.
                _ => {
                    self.finish();
                    break;
                }
            }
            pos += 5 + len;
        }
        if self.done {
            return;
        }
        self.scanned += pos;
        self.buf.drain(..pos);
        if self.scanned > MAX_CLIENT_SCAN || self.hellos >= self.cap() {
            self.finish();
        }
    }

    /// Takes every whole handshake message out of `hs`.
    fn messages_from_hs(&mut self, out: &mut Vec<ClientHello>, errs: &mut Vec<TlsError>) {
        let mut at = 0;
        // Each pass consumes one whole message or breaks.
        while !self.done {
            let Some(h) = self.hs.get(at..at + 4) else {
                break;
            };
            let htype = HandshakeType::from(h[0]);
            let hlen = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            if self.messages == 0 && htype != HandshakeType::ClientHello {
                self.finish();
                return;
            }
            if hlen + 4 > MAX_CLIENT_HELLO {
                if !self.after_ccs {
                    errs.push(TlsError::HandshakeTooLong(hlen));
                }
                self.finish();
                return;
            }
            let Some(msg) = self.hs.get(at..at + 4 + hlen) else {
                break;
            };
            self.messages += 1;
            if htype == HandshakeType::ClientHello {
                match parse_client_hello(msg) {
                    Ok(ch) => {
                        out.push(ch);
                        self.hellos += 1;
                        if self.hellos >= self.cap() {
                            self.finish();
                            return;
                        }
                    }
                    Err(e) => {
                        // After ChangeCipherSpec this is most likely an encrypted Finished.
                        if !self.after_ccs {
                            errs.push(e);
                        }
                        self.finish();
                        return;
                    }
                }
            } else if self.after_ccs {
                // Encrypted handshake bytes: nothing more to read in the clear.
                self.finish();
                return;
            }
            at += 4 + hlen;
        }
        if !self.done {
            self.hs.drain(..at);
        }
    }
}

/// Walks the records at the start of a client stream and parses the first ClientHello once all
/// its bytes are present (the one-shot form of [`ClientStream`]).
pub fn scan_client_stream(buf: &[u8]) -> Progress {
    let mut s = ClientStream::new();
    let mut out = Vec::new();
    let mut errs = Vec::new();
    s.feed(buf, &mut out, &mut errs);
    if let Some(h) = out.into_iter().next() {
        return Progress::Hello(Box::new(h));
    }
    if let Some(e) = errs.into_iter().next() {
        return Progress::Error(e);
    }
    if s.is_done() {
        Progress::NotTls
    } else {
        Progress::NeedMore
    }
}

/// Parses one handshake message that must be a ClientHello.
pub fn parse_client_hello(msg: &[u8]) -> Result<ClientHello, TlsError> {
    let (_, m) = parse_tls_message_handshake(msg).map_err(|_| TlsError::Malformed)?;
    let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m else {
        return Err(TlsError::Malformed);
    };
    let mut out = ClientHello {
        legacy_version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..ClientHello::default()
    };
    let mut ext = ch.ext.unwrap_or(&[]);
    // Walk extensions by their own headers so one malformed extension costs only itself.
    while ext.len() >= 4 {
        let etype = u16::from_be_bytes([ext[0], ext[1]]);
        let elen = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        let Some(raw) = ext.get(..4 + elen) else {
            return Err(TlsError::Malformed);
        };
        out.extensions.push(etype);
        if etype == EXT_ECH {
            out.ech = true;
        }
        if let Ok((_, e)) = parse_tls_client_hello_extension(raw) {
            match e {
                TlsExtension::SNI(names) => {
                    if let Some((_, n)) = names.iter().find(|(t, _)| *t == SNIType::HostName) {
                        out.sni = Some(String::from_utf8_lossy(n).into_owned());
                    }
                }
                TlsExtension::ALPN(v) => out.alpn = v.iter().map(|p| p.to_vec()).collect(),
                TlsExtension::SupportedVersions(v) => {
                    out.versions = v.iter().map(|x| x.0).collect()
                }
                TlsExtension::EllipticCurves(v) => out.groups = v.iter().map(|g| g.0).collect(),
                TlsExtension::EcPointFormats(v) => out.point_formats = v.to_vec(),
                TlsExtension::SignatureAlgorithms(v) => out.sig_algs = v,
                _ => {}
            }
        }
        ext = &ext[4 + elen..];
    }
    Ok(out)
}

fn join<T: std::fmt::Display>(it: impl Iterator<Item = T>, sep: char, out: &mut String) {
    for (i, v) in it.enumerate() {
        if i > 0 {
            out.push(sep);
        }
        let _ = write!(out, "{v}");
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl ClientHello {
    /// Highest non-GREASE version offered (supported_versions, else legacy_version).
    pub fn max_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }

    /// JA3 string: `version,ciphers,extensions,groups,point_formats`, GREASE removed.
    pub fn ja3_string(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{},", self.legacy_version);
        join(self.ciphers.iter().filter(|v| !is_grease(**v)), '-', &mut s);
        s.push(',');
        join(
            self.extensions.iter().filter(|v| !is_grease(**v)),
            '-',
            &mut s,
        );
        s.push(',');
        join(self.groups.iter().filter(|v| !is_grease(**v)), '-', &mut s);
        s.push(',');
        join(self.point_formats.iter(), '-', &mut s);
        s
    }

    pub fn ja3_hash(&self) -> String {
        hex(&Md5::digest(self.ja3_string().as_bytes()))
    }

    /// JA4 (the TLS client fingerprint of FoxIO's JA4+ suite; JA4 itself is BSD-3-Clause).
    pub fn ja4(&self, quic: bool) -> String {
        let ver = match self.max_version() {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        let ciphers = without_grease(&self.ciphers);
        let exts = without_grease(&self.extensions);
        let alpn = match self.alpn.first().map(|a| a.as_slice()) {
            Some(a) if !a.is_empty() => {
                let (f, l) = (a[0], a[a.len() - 1]);
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    format!("{}{}", f as char, l as char)
                } else {
                    let h = hex(a);
                    let hb = h.as_bytes();
                    format!("{}{}", hb[0] as char, hb[hb.len() - 1] as char)
                }
            }
            _ => "00".to_string(),
        };
        let a = format!(
            "{}{}{}{:02}{:02}{}",
            if quic { 'q' } else { 't' },
            ver,
            // FoxIO: "d" when the server_name extension is present, whatever it holds.
            if self.extensions.contains(&EXT_SNI) {
                'd'
            } else {
                'i'
            },
            ciphers.len().min(99),
            exts.len().min(99),
            alpn
        );
        let mut sorted_c = ciphers.clone();
        sorted_c.sort_unstable();
        let cstr = sorted_c
            .iter()
            .map(|c| format!("{c:04x}"))
            .collect::<Vec<_>>()
            .join(",");
        let b = if sorted_c.is_empty() {
            "000000000000".to_string()
        } else {
            hex(&Sha256::digest(cstr.as_bytes()))[..12].to_string()
        };
        let mut sorted_e: Vec<u16> = exts
            .into_iter()
            .filter(|e| *e != EXT_SNI && *e != EXT_ALPN)
            .collect();
        sorted_e.sort_unstable();
        let mut estr = sorted_e
            .iter()
            .map(|e| format!("{e:04x}"))
            .collect::<Vec<_>>()
            .join(",");
        // Signature algorithms keep their wire order but lose GREASE values, as every other
        // list does (FoxIO spec: "ignore GREASE values" everywhere); else Chromium, which
        // GREASEs them, would change the third section on every connection.
        let sigs: Vec<String> = self
            .sig_algs
            .iter()
            .filter(|s| !is_grease(**s))
            .map(|s| format!("{s:04x}"))
            .collect();
        if !sigs.is_empty() {
            estr.push('_');
            estr.push_str(&sigs.join(","));
        }
        let c = if sorted_e.is_empty() {
            "000000000000".to_string()
        } else {
            hex(&Sha256::digest(estr.as_bytes()))[..12].to_string()
        };
        format!("{a}_{b}_{c}")
    }
}

impl ClientHello {
    /// ALPN names for display (non-UTF-8 bytes replaced).
    pub fn alpn_strings(&self) -> Vec<String> {
        self.alpn
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }
}

/// Version name as Suricata writes it (the final versions only; see [`TlsVersion`] for all).
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0304 => "TLS 1.3",
        0x0303 => "TLS 1.2",
        0x0302 => "TLS 1.1",
        0x0301 => "TLS 1.0",
        0x0300 => "SSLv3",
        0x0002 => "SSLv2",
        _ => "UNDETERMINED",
    }
}

/// A protocol version number as sent in a hello or supported_versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Ssl2,
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
    /// IETF draft of TLS 1.3: 0x7f00 + draft number (drafts 0..=28 were deployed).
    Tls13Draft(u8),
    /// Facebook's (fizz) experimental TLS 1.3 drafts: 0xfb00 + draft number (0xfb17 draft
    /// 23, 0xfb1a draft 26).
    Tls13DraftFacebook(u8),
    Dtls10,
    Dtls12,
    Dtls13,
    /// RFC 8701 GREASE value: never a real version.
    Grease(u16),
    Unknown(u16),
}

impl From<u16> for TlsVersion {
    fn from(v: u16) -> Self {
        match v {
            0x0002 => TlsVersion::Ssl2,
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls10,
            0x0302 => TlsVersion::Tls11,
            0x0303 => TlsVersion::Tls12,
            0x0304 => TlsVersion::Tls13,
            0x7f00..=0x7f1c => TlsVersion::Tls13Draft((v & 0xff) as u8),
            0xfb00..=0xfbff => TlsVersion::Tls13DraftFacebook((v & 0xff) as u8),
            0xfeff => TlsVersion::Dtls10,
            0xfefd => TlsVersion::Dtls12,
            0xfefc => TlsVersion::Dtls13,
            g if is_grease(g) => TlsVersion::Grease(g),
            n => TlsVersion::Unknown(n),
        }
    }
}

impl TlsVersion {
    /// Order for "highest version offered": final versions by number, the TLS 1.3 drafts
    /// between TLS 1.2 and TLS 1.3, DTLS (whose numbers count down) ranked by age, GREASE
    /// and unknown numbers lowest.
    fn rank(self) -> u32 {
        match self {
            TlsVersion::Grease(_) | TlsVersion::Unknown(_) => 0,
            TlsVersion::Ssl2 => 1,
            TlsVersion::Ssl3 => 2,
            TlsVersion::Tls10 | TlsVersion::Dtls10 => 3,
            TlsVersion::Tls11 => 4,
            TlsVersion::Tls12 | TlsVersion::Dtls12 => 5,
            // 6..=261: above TLS 1.2, later drafts higher.
            TlsVersion::Tls13Draft(d) | TlsVersion::Tls13DraftFacebook(d) => 6 + u32::from(d),
            TlsVersion::Tls13 | TlsVersion::Dtls13 => 1000,
        }
    }

    /// The name for the `version` of a record: Suricata's names for the final versions,
    /// "TLS 1.3 draft 23", "TLS 1.3 draft 26 (Facebook)", "DTLS 1.2", and "0x1234" for a
    /// number nobody assigned.
    pub fn label(self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self {
            TlsVersion::Ssl2 => Cow::Borrowed("SSLv2"),
            TlsVersion::Ssl3 => Cow::Borrowed("SSLv3"),
            TlsVersion::Tls10 => Cow::Borrowed("TLS 1.0"),
            TlsVersion::Tls11 => Cow::Borrowed("TLS 1.1"),
            TlsVersion::Tls12 => Cow::Borrowed("TLS 1.2"),
            TlsVersion::Tls13 => Cow::Borrowed("TLS 1.3"),
            TlsVersion::Tls13Draft(d) => Cow::Owned(format!("TLS 1.3 draft {d}")),
            TlsVersion::Tls13DraftFacebook(d) => {
                Cow::Owned(format!("TLS 1.3 draft {d} (Facebook)"))
            }
            TlsVersion::Dtls10 => Cow::Borrowed("DTLS 1.0"),
            TlsVersion::Dtls12 => Cow::Borrowed("DTLS 1.2"),
            TlsVersion::Dtls13 => Cow::Borrowed("DTLS 1.3"),
            TlsVersion::Grease(v) | TlsVersion::Unknown(v) => Cow::Owned(format!("0x{v:04x}")),
        }
    }
}

impl ClientHello {
    /// Highest version offered, drafts ranked below TLS 1.3 and above TLS 1.2 (GREASE
    /// excluded); the legacy_version when supported_versions holds nothing else.
    pub fn best_version(&self) -> TlsVersion {
        self.versions
            .iter()
            .map(|v| TlsVersion::from(*v))
            .filter(|v| !matches!(v, TlsVersion::Grease(_)))
            .max_by_key(|v| v.rank())
            .unwrap_or(TlsVersion::from(self.legacy_version))
    }

    /// Name of [`ClientHello::best_version`] for a record's `version` (drafts and
    /// experimental versions named, not "UNDETERMINED").
    pub fn version(&self) -> String {
        self.best_version().label().into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Server side (TLS 1.2 and earlier, where the server's first flight is plaintext): ServerHello
// (JA3S) and the leaf certificate of the Certificate message.

/// Largest leaf certificate we parse. Real leaves are 1-4 KiB; the chain behind the leaf is
/// never buffered or parsed.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Most server bytes walked before giving up on finding the ServerHello and Certificate.
pub const MAX_SERVER_SCAN: usize = 96 * 1024;

/// The random of a HelloRetryRequest (RFC 8446 section 4.1.3): SHA-256 of "HelloRetryRequest".
pub(crate) const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// legacy_version of the ServerHello (what JA3S uses).
    pub legacy_version: u16,
    /// The supported_versions extension's selection (TLS 1.3), if sent.
    pub selected_version: Option<u16>,
    pub cipher: u16,
    /// Extension types in wire order.
    pub extensions: Vec<u16>,
    /// This is a HelloRetryRequest (TLS 1.3), not a real ServerHello.
    pub hello_retry: bool,
}

/// The leaf certificate, with its fields written as Suricata 7 writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN in certificate order, "C=US, O=Org, CN=name".
    pub subject: String,
    /// Issuer DN, same form.
    pub issuerdn: String,
    /// Serial number bytes as uppercase colon-separated hex ("00:E1:4A:...").
    pub serial: String,
    /// SHA-1 of the DER certificate, lowercase colon-separated hex.
    pub fingerprint: String,
    /// Validity start, UTC, "2024-01-01T00:00:00".
    pub notbefore: String,
    /// Validity end, same form.
    pub notafter: String,
    /// DNS names of the subjectAltName extension, in order.
    pub sans: Vec<String>,
}

/// What the server's plaintext first flight held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub hello: ServerHello,
    /// The leaf certificate, when a Certificate message was in the clear (TLS 1.2 and
    /// earlier, full handshake) and parsed as X.509.
    pub cert: Option<CertInfo>,
    /// Why a Certificate message that was present gave no `cert`.
    pub cert_error: Option<TlsError>,
}

impl ServerHello {
    /// The negotiated version: supported_versions' selection, else legacy_version.
    pub fn version(&self) -> TlsVersion {
        TlsVersion::from(self.selected_version.unwrap_or(self.legacy_version))
    }
}

impl ServerInfo {
    /// Name of the negotiated version, for a record's `version`.
    pub fn version(&self) -> String {
        self.hello.version().label().into_owned()
    }

    /// JA3S string (Salesforce): `version,cipher,extensions` in decimal, extensions joined
    /// by '-' in wire order, GREASE values left out as in JA3.
    pub fn ja3s_string(&self) -> String {
        let h = &self.hello;
        let mut s = String::new();
        let _ = write!(s, "{},{},", h.legacy_version, h.cipher);
        join(h.extensions.iter().filter(|v| !is_grease(**v)), '-', &mut s);
        s
    }

    pub fn ja3s_hash(&self) -> String {
        hex(&Md5::digest(self.ja3s_string().as_bytes()))
    }
}

/// What the first bytes of a server's stream say about its first hello: `Some(true)` for a
/// HelloRetryRequest, `Some(false)` for a real ServerHello, `None` when they do not tell
/// (too few bytes, a record too short to hold the random, not a ServerHello). Only the
/// record header, the handshake header, the version and the 32-byte random are looked at:
/// this is on the packet path of every TLS connection.
pub fn first_server_hello(head: &[u8]) -> Option<bool> {
    // Record header (5 bytes), handshake header (4), legacy_version (2), random (32).
    if head.first() != Some(&22) || head.get(1) != Some(&3) || head.get(5) != Some(&2) {
        return None;
    }
    let rlen = u16::from_be_bytes([*head.get(3)?, *head.get(4)?]);
    if rlen < 4 + 2 + 32 {
        return None;
    }
    Some(*head.get(11..43)? == HRR_RANDOM)
}

/// Parses the body of a ServerHello handshake message (after the 4-byte header).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, TlsError> {
    let be16 = |at: usize| -> Result<u16, TlsError> {
        match body.get(at..at + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => Err(TlsError::Malformed),
        }
    };
    let legacy_version = be16(0)?;
    let random = body.get(2..34).ok_or(TlsError::Malformed)?;
    let sid_len = usize::from(*body.get(34).ok_or(TlsError::Malformed)?);
    let mut at = 35 + sid_len;
    let cipher = be16(at)?;
    at += 2;
    // Compression method.
    body.get(at).ok_or(TlsError::Malformed)?;
    at += 1;
    let mut hello = ServerHello {
        legacy_version,
        cipher,
        hello_retry: random == HRR_RANDOM,
        ..ServerHello::default()
    };
    if at == body.len() {
        // SSLv3-style hello without extensions.
        return Ok(hello);
    }
    let elen = usize::from(be16(at)?);
    let mut ext = body.get(at + 2..at + 2 + elen).ok_or(TlsError::Malformed)?;
    // Each pass consumes at least the 4-byte extension header.
    while ext.len() >= 4 {
        let etype = u16::from_be_bytes([ext[0], ext[1]]);
        let len = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        let data = ext.get(4..4 + len).ok_or(TlsError::Malformed)?;
        hello.extensions.push(etype);
        if etype == EXT_SUPPORTED_VERSIONS && data.len() == 2 {
            hello.selected_version = Some(u16::from_be_bytes([data[0], data[1]]));
        }
        ext = &ext[4 + len..];
    }
    Ok(hello)
}

/// Formats seconds since the epoch as "2024-01-01T00:00:00" (UTC), as Suricata writes
/// certificate validity. Civil date from days: Howard Hinnant's algorithm.
fn utc_string(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

fn colon_hex(bytes: &[u8], upper: bool) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = if upper {
            write!(s, "{b:02X}")
        } else {
            write!(s, "{b:02x}")
        };
    }
    s
}

/// Parses one DER X.509 certificate into the fields Suricata logs. Only called when a
/// Certificate message is present, so connections without one pay nothing.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, TlsError> {
    if der.len() > MAX_CERT_BYTES {
        return Err(TlsError::CertificateTooLong(der.len()));
    }
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| TlsError::BadCertificate)?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                sans.push((*d).to_string());
            }
        }
    }
    let v = cert.validity();
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuerdn: cert.issuer().to_string(),
        serial: colon_hex(cert.raw_serial(), true),
        fingerprint: colon_hex(&sha1::Sha1::digest(der), false),
        notbefore: utc_string(v.not_before.timestamp()),
        notafter: utc_string(v.not_after.timestamp()),
        sans,
    })
}

/// How far a server stream has been read.
#[derive(Debug)]
pub enum ServerProgress {
    NeedMore,
    /// The stream does not start with a plaintext ServerHello.
    NotTls,
    Done(Box<ServerInfo>),
    Error(TlsError),
}

/// Walks the server's records from the stream start. `at_end`: no more bytes will come, so
/// a ServerHello without a complete Certificate behind it is the answer.
fn walk_server(d: &[u8], at_end: bool) -> ServerProgress {
    let mut hs: Vec<u8> = Vec::new();
    let mut info: Option<ServerInfo> = None;
    let mut pos = 0;
    let mut seen_msgs = 0usize;
    let finish = |info: Option<ServerInfo>| match info {
        Some(i) => ServerProgress::Done(Box::new(i)),
        None => ServerProgress::Error(TlsError::Malformed),
    };
    // Each pass consumes one record (at least 5 bytes) or returns.
    loop {
        if pos > MAX_SERVER_SCAN {
            return finish(info);
        }
        let Some(hdr) = d.get(pos..pos + 5) else {
            return if at_end {
                finish(info)
            } else {
                ServerProgress::NeedMore
            };
        };
        let ctype = ContentType::from(hdr[0]);
        if hdr[1] != 0x03 || (pos == 0 && ctype != ContentType::Handshake) {
            return if pos == 0 {
                ServerProgress::NotTls
            } else {
                finish(info)
            };
        }
        if ctype != ContentType::Handshake {
            // ChangeCipherSpec, alert, application data: the plaintext flight is over.
            return finish(info);
        }
        let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        if len > MAX_RECORD {
            return match info {
                Some(i) => ServerProgress::Done(Box::new(i)),
                None => ServerProgress::Error(TlsError::BadRecordLength(len)),
            };
        }
        let frag = match d.get(pos + 5..pos + 5 + len) {
            Some(f) => f,
            // A partial record still helps: the leaf may be complete before its end.
            None => d.get(pos + 5..).unwrap_or(&[]),
        };
        let partial = frag.len() < len;
        hs.extend_from_slice(frag);
        pos += 5 + frag.len();
        // Whole messages in `hs`; each pass consumes one or breaks.
        let mut at = 0;
        while let Some(h) = hs.get(at..at + 4) {
            let htype = HandshakeType::from(h[0]);
            let hlen = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            if seen_msgs == 0 && htype != HandshakeType::ServerHello {
                return ServerProgress::NotTls;
            }
            let body = hs.get(at + 4..(at + 4 + hlen).min(hs.len())).unwrap_or(&[]);
            match htype {
                HandshakeType::ServerHello => {
                    if hlen > MAX_CLIENT_HELLO {
                        return ServerProgress::Error(TlsError::HandshakeTooLong(hlen));
                    }
                    if body.len() < hlen {
                        break;
                    }
                    match parse_server_hello(body) {
                        Ok(h) => {
                            let hrr = h.hello_retry;
                            info = Some(ServerInfo {
                                hello: h,
                                ..ServerInfo::default()
                            });
                            if hrr {
                                // The real ServerHello comes after the client's second hello.
                                return finish(info);
                            }
                        }
                        Err(e) => return ServerProgress::Error(e),
                    }
                }
                HandshakeType::Certificate => {
                    // Only the leaf is read: 3-byte list length, 3-byte leaf length, DER.
                    let Some(l) = body.get(3..6) else {
                        if at_end {
                            return finish(info);
                        }
                        break;
                    };
                    let leaf_len =
                        (usize::from(l[0]) << 16) | (usize::from(l[1]) << 8) | usize::from(l[2]);
                    let Some(i) = info.as_mut() else {
                        return ServerProgress::Error(TlsError::Malformed);
                    };
                    if leaf_len > MAX_CERT_BYTES {
                        i.cert_error = Some(TlsError::CertificateTooLong(leaf_len));
                        return finish(info);
                    }
                    match body.get(6..6 + leaf_len) {
                        Some(der) => {
                            match parse_certificate(der) {
                                Ok(c) => i.cert = Some(c),
                                Err(e) => i.cert_error = Some(e),
                            }
                            // Everything we read from the server has been seen.
                            return finish(info);
                        }
                        None if at_end || leaf_len + 6 > hlen => {
                            i.cert_error = Some(TlsError::BadCertificate);
                            return finish(info);
                        }
                        None => break,
                    }
                }
                // ServerKeyExchange, ServerHelloDone, ...: no certificate came (resumption,
                // anonymous suites), or it is already behind us.
                _ => return finish(info),
            }
            seen_msgs += 1;
            at += 4 + hlen;
        }
        hs.drain(..at.min(hs.len()));
        if partial {
            return if at_end {
                finish(info)
            } else {
                ServerProgress::NeedMore
            };
        }
    }
}

/// Reads the server's first flight (server-to-client TLS record bytes from the stream
/// start, complete or not): the ServerHello and, when in the clear, the leaf certificate.
pub fn parse_server_flight(d: &[u8]) -> Result<ServerInfo, TlsError> {
    match walk_server(d, true) {
        ServerProgress::Done(i) => Ok(*i),
        ServerProgress::Error(e) => Err(e),
        ServerProgress::NotTls | ServerProgress::NeedMore => Err(TlsError::Malformed),
    }
}

/// Incremental form of [`parse_server_flight`] for a server stream: buffers at most
/// MAX_SERVER_SCAN bytes and reports once. The buffer is walked again only when a further
/// record has completed or WALK_STEP more bytes have come, so a flight cut into many small
/// segments costs a bounded number of walks.
#[derive(Debug, Default)]
pub struct ServerStream {
    buf: Vec<u8>,
    done: bool,
    /// End of the whole records seen so far in `buf` (found by header hops, incrementally),
    /// and how many there are.
    records_end: usize,
    records: usize,
    /// Records and buffer length at the last walk.
    walked_records: usize,
    walked_len: usize,
}

/// Bytes after which a server buffer is walked again even without a new whole record (a
/// large Certificate record may hold the whole leaf before its end).
const WALK_STEP: usize = 4096;

impl ServerStream {
    pub fn new() -> Self {
        ServerStream::default()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Feeds contiguous server bytes; the result once the flight has been read.
    pub fn feed(&mut self, data: &[u8]) -> ServerProgress {
        if self.done {
            return ServerProgress::NotTls;
        }
        self.buf.extend_from_slice(data);
        let at_end = self.buf.len() > MAX_SERVER_SCAN;
        // Each pass moves past one whole record (5 bytes at least).
        while let Some(h) = self.buf.get(self.records_end..self.records_end + 5) {
            let end = self.records_end + 5 + usize::from(u16::from_be_bytes([h[3], h[4]]));
            if end > self.buf.len() {
                break;
            }
            self.records_end = end;
            self.records += 1;
        }
        let records = self.records;
        let first = self.walked_len == 0;
        if !at_end
            && !first
            && records == self.walked_records
            && self.buf.len() < self.walked_len + WALK_STEP
        {
            return ServerProgress::NeedMore;
        }
        self.walked_records = records;
        self.walked_len = self.buf.len();
        let p = walk_server(&self.buf, at_end);
        if !matches!(p, ServerProgress::NeedMore) {
            self.done = true;
            self.buf = Vec::new();
        }
        p
    }
}
