//! Link layers and layer-2 shims, down to the IP header.

use super::{DecodeError, Encap};

pub const LINKTYPE_NULL: u16 = 0;
pub const LINKTYPE_ETHERNET: u16 = 1;
pub const LINKTYPE_PPP: u16 = 9;
pub const LINKTYPE_RAW_BSD: u16 = 12;
pub const LINKTYPE_RAW_BSD14: u16 = 14;
pub const LINKTYPE_PPP_HDLC: u16 = 50;
pub const LINKTYPE_PPP_ETHER: u16 = 51;
pub const LINKTYPE_RAW: u16 = 101;
pub const LINKTYPE_C_HDLC: u16 = 104;
pub const LINKTYPE_LOOP: u16 = 108;
pub const LINKTYPE_LINUX_SLL: u16 = 113;
pub const LINKTYPE_IPV4: u16 = 228;
pub const LINKTYPE_IPV6: u16 = 229;
pub const LINKTYPE_LINUX_SLL2: u16 = 276;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS_UC: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_VNTAG: u16 = 0x8926;
const ETH_ETAG: u16 = 0x893f;
const ETH_TEB: u16 = 0x6558;

/// Human name of a link type, for the run summary.
pub fn linktype_name(lt: u16) -> &'static str {
    match lt {
        LINKTYPE_NULL => "NULL",
        LINKTYPE_ETHERNET => "EN10MB",
        LINKTYPE_PPP | LINKTYPE_PPP_HDLC => "PPP",
        LINKTYPE_RAW | LINKTYPE_RAW_BSD | LINKTYPE_RAW_BSD14 => "RAW",
        LINKTYPE_C_HDLC => "C_HDLC",
        LINKTYPE_LOOP => "LOOP",
        LINKTYPE_LINUX_SLL => "LINUX_SLL",
        LINKTYPE_LINUX_SLL2 => "LINUX_SLL2",
        LINKTYPE_IPV4 => "IPV4",
        LINKTYPE_IPV6 => "IPV6",
        LINKTYPE_PPP_ETHER => "PPPOE",
        _ => "other",
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Strips the link layer of a captured frame. `Ok(None)` means a non-IP frame.
pub fn strip<'a>(
    linktype: u16,
    frame: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match linktype {
        LINKTYPE_ETHERNET => ethernet(frame, encap, depth),
        LINKTYPE_RAW | LINKTYPE_RAW_BSD | LINKTYPE_RAW_BSD14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            Ok(Some(frame))
        }
        LINKTYPE_LINUX_SLL => {
            let proto = be16(frame, 14).ok_or(DecodeError::Truncated("sll"))?;
            ethertype(proto, &frame[16..], encap, depth)
        }
        LINKTYPE_LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(DecodeError::Truncated("sll2"));
            }
            let proto = be16(frame, 0).ok_or(DecodeError::Truncated("sll2"))?;
            ethertype(proto, &frame[20..], encap, depth)
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            if frame.len() < 4 {
                return Err(DecodeError::Truncated("null"));
            }
            // DLT_NULL stores the address family in the writer's byte order, DLT_LOOP in
            // network order; accept either. AF_INET is 2 everywhere; AF_INET6 is 10 (Linux),
            // 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
            let le = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let be = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            let af = if le < 256 { le } else { be };
            match af {
                2 | 10 | 24 | 28 | 30 => Ok(Some(&frame[4..])),
                _ => Ok(None),
            }
        }
        LINKTYPE_PPP | LINKTYPE_PPP_HDLC => {
            // Address/control (ff 03) may be present or compressed away.
            let rest = if frame.starts_with(&[0xff, 0x03]) {
                &frame[2..]
            } else {
                frame
            };
            ppp(rest)
        }
        LINKTYPE_PPP_ETHER => pppoe(frame),
        LINKTYPE_C_HDLC => {
            let proto = be16(frame, 2).ok_or(DecodeError::Truncated("c_hdlc"))?;
            ethertype(proto, &frame[4..], encap, depth)
        }
        other => Err(DecodeError::UnsupportedLinkType(other)),
    }
}

/// PPP protocol field followed by the datagram.
pub(super) fn ppp(d: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    // Protocol-field compression: a one-byte protocol has its low bit set.
    let (proto, rest) = match d.first() {
        Some(b) if b & 1 == 1 => (u16::from(*b), &d[1..]),
        Some(_) => (be16(d, 0).ok_or(DecodeError::Truncated("ppp"))?, &d[2..]),
        None => return Err(DecodeError::Truncated("ppp")),
    };
    match proto {
        0x0021 | 0x0057 => Ok(Some(rest)),
        _ => Ok(None),
    }
}

/// PPPoE session header (6 bytes) then PPP.
fn pppoe(d: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    if d.len() < 8 {
        return Err(DecodeError::Truncated("pppoe"));
    }
    ppp(&d[6..])
}

/// An Ethernet II frame, possibly tagged.
pub fn ethernet<'a>(
    frame: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let proto = be16(frame, 12).ok_or(DecodeError::Truncated("ethernet"))?;
    ethertype(proto, &frame[14..], encap, depth)
}

/// Follows a chain of ethertype-announced shims until IP (or something we do not inspect).
fn ethertype<'a>(
    mut proto: u16,
    mut d: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    // Each shim consumes at least 4 bytes, so this terminates; the cap keeps a hostile
    // frame made of nothing but tags from costing more than a few steps.
    for _ in 0..16 {
        match proto {
            ETH_IPV4 | ETH_IPV6 => return Ok(Some(d)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let tci = be16(d, 0).ok_or(DecodeError::Truncated("vlan"))?;
                let id = tci & 0x0fff;
                if encap.vlan[0] == 0 {
                    encap.vlan[0] = id;
                } else if encap.vlan[1] == 0 {
                    encap.vlan[1] = id;
                }
                proto = be16(d, 2).ok_or(DecodeError::Truncated("vlan"))?;
                d = &d[4..];
            }
            ETH_VNTAG => {
                // 4 bytes of tag, then the next ethertype.
                proto = be16(d, 4).ok_or(DecodeError::Truncated("vntag"))?;
                d = &d[6..];
            }
            ETH_ETAG => {
                // 802.1BR: 6 bytes of E-TCI, then the next ethertype.
                proto = be16(d, 6).ok_or(DecodeError::Truncated("etag"))?;
                d = &d[8..];
            }
            ETH_MPLS_UC | ETH_MPLS_MC => return mpls(d, encap, depth),
            ETH_PPPOE_SESSION => return pppoe(d),
            ETH_TEB => {
                if depth >= super::MAX_ENCAP_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                return ethernet(d, encap, depth + 1);
            }
            _ => return Ok(None),
        }
    }
    Err(DecodeError::TooDeep)
}

/// An MPLS label stack; what follows the bottom label is guessed from its first nibble, as
/// every decoder must (MPLS does not say): 4 = IPv4, 6 = IPv6, 0 = pseudowire control word
/// followed by Ethernet, anything else Ethernet without control word.
pub(super) fn mpls<'a>(
    mut d: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    if depth >= super::MAX_ENCAP_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    for _ in 0..16 {
        if d.len() < 4 {
            return Err(DecodeError::Truncated("mpls"));
        }
        let bottom = d[2] & 1 == 1;
        d = &d[4..];
        if bottom {
            return match d.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Some(d)),
                Some(0) if d.len() >= 4 + 14 => ethernet(&d[4..], encap, depth + 1),
                Some(_) => ethernet(d, encap, depth + 1),
                None => Err(DecodeError::Truncated("mpls")),
            };
        }
    }
    Err(DecodeError::TooDeep)
}
