//! QUIC Initial packets (RFC 9000/9001, and QUIC v2, RFC 9369): the client's Initial packets
//! are protected with keys derived from its own Destination Connection ID, so a passive sensor
//! can remove the protection, gather the CRYPTO frames (across frames and packets, in any
//! order) and read the TLS ClientHello inside: SNI, ALPN and a `q` JA4, as tshark and Suricata
//! do. Server Initials fail authentication with the client keys and are ignored.

use super::tls::{parse_client_hello, ClientHello};
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// Largest ClientHello gathered from CRYPTO frames.
pub const MAX_CRYPTO: usize = 64 * 1024;
/// Client Initial packets looked at per flow before giving up.
pub const MAX_INITIALS: u8 = 8;

/// Does this UDP payload start with a QUIC long-header packet of a version we read?
pub fn looks_like_quic(d: &[u8]) -> bool {
    d.len() >= 7 && d[0] & 0xc0 == 0xc0 && {
        let v = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
        v == VERSION_1 || v == VERSION_2
    }
}

fn varint(d: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *d.get(*pos)?;
    let len = 1usize << (first >> 6);
    let bytes = d.get(*pos..*pos + len)?;
    let mut v = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        v = (v << 8) | u64::from(*b);
    }
    *pos += len;
    Some(v)
}

fn expand_label(secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let hk = Hkdf::<Sha256>::from_prk(secret).ok()?;
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    let mut out = vec![0u8; len];
    hk.expand(&info, &mut out).ok()?;
    Some(out)
}

struct Keys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

fn client_keys(version: u32, dcid: &[u8]) -> Option<Keys> {
    let (salt, pfx) = if version == VERSION_2 {
        (&SALT_V2, "quicv2 ")
    } else {
        (&SALT_V1, "quic ")
    };
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), dcid);
    let client = expand_label(&prk, "client in", 32)?;
    let key = expand_label(&client, &format!("{pfx}key"), 16)?;
    let iv = expand_label(&client, &format!("{pfx}iv"), 12)?;
    let hp = expand_label(&client, &format!("{pfx}hp"), 16)?;
    let mut ivb = [0u8; 12];
    ivb.copy_from_slice(&iv);
    Some(Keys {
        aead: Aes128Gcm::new_from_slice(&key).ok()?,
        iv: ivb,
        hp: Aes128::new_from_slice(&hp).ok()?,
    })
}

/// Per-flow state: CRYPTO bytes gathered from the client's Initial packets.
#[derive(Debug, Default)]
pub struct QuicClient {
    crypto: Vec<u8>,
    /// Byte ranges of `crypto` filled so far.
    have: Vec<(usize, usize)>,
    initials: u8,
    pub done: bool,
    pub version: u32,
}

impl QuicClient {
    /// Feeds one UDP datagram. Returns the ClientHello once complete.
    pub fn datagram(&mut self, mut d: &[u8]) -> Option<ClientHello> {
        // A datagram may coalesce several packets; each long header gives its length.
        for _ in 0..4 {
            if self.done || !looks_like_quic(d) {
                return None;
            }
            let (consumed, hello) = self.packet(d)?;
            if hello.is_some() {
                return hello;
            }
            d = d.get(consumed..)?;
        }
        None
    }

    /// One long-header packet: (its length, the ClientHello if now complete).
    fn packet(&mut self, d: &[u8]) -> Option<(usize, Option<ClientHello>)> {
        let version = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
        let ptype = (d[0] >> 4) & 0x03;
        let initial = if version == VERSION_2 { 1 } else { 0 };
        let mut pos = 5;
        let dcid_len = usize::from(*d.get(pos)?);
        if dcid_len > 20 {
            return None;
        }
        let dcid = d.get(pos + 1..pos + 1 + dcid_len)?;
        pos += 1 + dcid_len;
        let scid_len = usize::from(*d.get(pos)?);
        pos += 1 + scid_len;
        if ptype == initial {
            let tlen = varint(d, &mut pos)? as usize;
            pos = pos.checked_add(tlen)?;
        }
        let len = varint(d, &mut pos)? as usize;
        let end = pos.checked_add(len)?;
        if end > d.len() {
            return None;
        }
        if ptype != initial {
            return Some((end, None));
        }
        self.initials += 1;
        if self.initials > MAX_INITIALS {
            self.done = true;
            return None;
        }
        let keys = client_keys(version, dcid)?;
        let pn_off = pos;
        let sample = d.get(pn_off + 4..pn_off + 20)?;
        let mut block = aes::Block::clone_from_slice(sample);
        keys.hp.encrypt_block(&mut block);
        let first = d[0] ^ (block[0] & 0x0f);
        let pn_len = usize::from(first & 0x03) + 1;
        let mut header = d.get(..pn_off + pn_len)?.to_vec();
        header[0] = first;
        let mut pn: u64 = 0;
        for i in 0..pn_len {
            header[pn_off + i] ^= block[1 + i];
            pn = (pn << 8) | u64::from(header[pn_off + i]);
        }
        let mut nonce = keys.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        let ct = d.get(pn_off + pn_len..end)?;
        let Ok(plain) = keys.aead.decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: ct,
                aad: &header,
            },
        ) else {
            // Not the client's (a server Initial) or damaged.
            return Some((end, None));
        };
        self.version = version;
        self.frames(&plain);
        Some((end, self.try_hello()))
    }

    fn frames(&mut self, p: &[u8]) {
        let mut pos = 0;
        while pos < p.len() {
            let Some(t) = varint(p, &mut pos) else { return };
            match t {
                0x00 | 0x01 => {}
                0x02 | 0x03 => {
                    // ACK: largest, delay, range count, first range, ranges, [ECN counts]
                    let (Some(_), Some(_), Some(n), Some(_)) = (
                        varint(p, &mut pos),
                        varint(p, &mut pos),
                        varint(p, &mut pos),
                        varint(p, &mut pos),
                    ) else {
                        return;
                    };
                    for _ in 0..n.min(256) * 2 {
                        if varint(p, &mut pos).is_none() {
                            return;
                        }
                    }
                    if t == 0x03 {
                        for _ in 0..3 {
                            if varint(p, &mut pos).is_none() {
                                return;
                            }
                        }
                    }
                }
                0x06 => {
                    let (Some(off), Some(len)) = (varint(p, &mut pos), varint(p, &mut pos)) else {
                        return;
                    };
                    let (off, len) = (off as usize, len as usize);
                    let Some(data) = p.get(pos..pos + len) else {
                        return;
                    };
                    pos += len;
                    if off + len > MAX_CRYPTO {
                        self.done = true;
                        return;
                    }
                    if self.crypto.len() < off + len {
                        self.crypto.resize(off + len, 0);
                    }
                    self.crypto[off..off + len].copy_from_slice(data);
                    self.have.push((off, off + len));
                }
                _ => return, // CONNECTION_CLOSE or something unexpected in an Initial
            }
        }
    }

    fn try_hello(&mut self) -> Option<ClientHello> {
        self.have.sort_unstable();
        let mut contiguous = 0;
        for &(s, e) in &self.have {
            if s > contiguous {
                break;
            }
            contiguous = contiguous.max(e);
        }
        if contiguous < 4 || self.crypto[0] != 1 {
            return None;
        }
        let hlen = (usize::from(self.crypto[1]) << 16)
            | (usize::from(self.crypto[2]) << 8)
            | usize::from(self.crypto[3]);
        if contiguous < hlen + 4 {
            return None;
        }
        self.done = true;
        parse_client_hello(&self.crypto[..hlen + 4]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 appendix A.1: keys from DCID 0x8394c8f03e515708.
    #[test]
    fn rfc9001_client_initial_keys() {
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let (prk, _) = Hkdf::<Sha256>::extract(Some(&SALT_V1), &dcid);
        let client = expand_label(&prk, "client in", 32).expect("expand");
        assert_eq!(
            client[..4],
            [0xc0, 0x0c, 0xf1, 0x51],
            "client_initial_secret starts c00cf151"
        );
        let iv = expand_label(&client, "quic iv", 12).expect("iv");
        assert_eq!(
            iv,
            [0xfa, 0x04, 0x4b, 0x2f, 0x42, 0xa3, 0xfd, 0x3b, 0x46, 0xfb, 0x25, 0x5c]
        );
        let hp = expand_label(&client, "quic hp", 16).expect("hp");
        assert_eq!(hp[..4], [0x9f, 0x50, 0x44, 0x9e]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut q = QuicClient::default();
        for n in 0..300usize {
            let mut d = vec![0xc3, 0, 0, 0, 1, 8];
            d.extend((0..n).map(|i| (i * 31 % 256) as u8));
            let _ = q.datagram(&d);
        }
    }
}
