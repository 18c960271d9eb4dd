//! TLS ClientHello extraction (via `tls-parser`), with JA3 and JA4 client fingerprints.
//!
//! The client's first bytes are reassembled by the flow stage; [`scan_client_stream`] walks the
//! TLS records at the start of that stream, gathers the handshake bytes across as many records
//! as the ClientHello spans, and parses it once complete.

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
}

impl TlsError {
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::BadRecordLength(_) => "tls_bad_record_length",
            TlsError::HandshakeTooLong(_) => "tls_handshake_too_long",
            TlsError::Malformed => "tls_malformed_client_hello",
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
    pub sig_algs: Vec<u16>,
}

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

/// Walks the records at the start of a client stream and parses the ClientHello once all its
/// bytes are present.
pub fn scan_client_stream(buf: &[u8]) -> Progress {
    let mut hs: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(hdr) = buf.get(pos..pos + 5) else {
            return Progress::NeedMore;
        };
        if hdr[0] != 0x16 || hdr[1] != 0x03 {
            return if pos == 0 {
                Progress::NotTls
            } else {
                Progress::Error(TlsError::Malformed)
            };
        }
        let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
        if len > MAX_RECORD {
            return Progress::Error(TlsError::BadRecordLength(len));
        }
        let Some(frag) = buf.get(pos + 5..pos + 5 + len) else {
            // Use what has arrived to check the handshake type early.
            let avail = &buf[(pos + 5).min(buf.len())..];
            if pos == 0 && !avail.is_empty() && avail[0] != 1 {
                return Progress::NotTls;
            }
            return Progress::NeedMore;
        };
        hs.extend_from_slice(frag);
        pos += 5 + len;
        if hs.len() >= 4 {
            if hs[0] != 1 {
                return Progress::NotTls;
            }
            let hlen = (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            if hlen + 4 > MAX_CLIENT_HELLO {
                return Progress::Error(TlsError::HandshakeTooLong(hlen));
            }
            if hs.len() >= hlen + 4 {
                return match parse_client_hello(&hs[..hlen + 4]) {
                    Ok(h) => Progress::Hello(Box::new(h)),
                    Err(e) => Progress::Error(e),
                };
            }
        }
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
            if self.sni.is_some() { 'd' } else { 'i' },
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
        let mut sorted_e: Vec<u16> = exts.into_iter().filter(|e| *e != 0 && *e != 16).collect();
        sorted_e.sort_unstable();
        let mut estr = sorted_e
            .iter()
            .map(|e| format!("{e:04x}"))
            .collect::<Vec<_>>()
            .join(",");
        let sigs: Vec<String> = self.sig_algs.iter().map(|s| format!("{s:04x}")).collect();
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

/// Version name as Suricata writes it.
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
