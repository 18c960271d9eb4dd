//! Tunnels that taps and SPAN/RSPAN ports deliver: GRE (with ERSPAN I/II/III), VXLAN, Geneve
//! and Teredo. The inner packet is what gets inspected; `Encap::tunnels` records that it was
//! tunnelled.

use super::link::{ethernet, mpls, ppp};
use super::{decode_ip, DecodeError, Encap, Outcome};

pub const VXLAN_PORT: u16 = 4789;
/// Linux's pre-IANA default VXLAN port.
pub const VXLAN_LINUX_PORT: u16 = 8472;
pub const GENEVE_PORT: u16 = 6081;
pub const TEREDO_PORT: u16 = 3544;

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// Continues decoding an Ethernet frame found inside a tunnel.
fn inner_ethernet(frame: &[u8], mut encap: Encap, depth: u8) -> Result<Outcome<'_>, DecodeError> {
    encap.tunnels += 1;
    match ethernet(frame, &mut encap, depth + 1)? {
        Some(ip) => decode_ip(ip, encap, depth + 1),
        None => Ok(Outcome::NotIp),
    }
}

fn inner_ip(ip: &[u8], mut encap: Encap, depth: u8) -> Result<Outcome<'_>, DecodeError> {
    encap.tunnels += 1;
    decode_ip(ip, encap, depth + 1)
}

/// GRE (RFC 2784/2890), including PPTP's enhanced GRE and ERSPAN.
pub fn gre(d: &[u8], encap: Encap, depth: u8) -> Result<Outcome<'_>, DecodeError> {
    if depth >= super::MAX_ENCAP_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let flags = be16(d, 0).ok_or(DecodeError::Truncated("gre"))?;
    let proto = be16(d, 2).ok_or(DecodeError::Truncated("gre"))?;
    let version = flags & 0x7;
    let has_csum = flags & 0x8000 != 0 || flags & 0x4000 != 0;
    let has_key = flags & 0x2000 != 0;
    let has_seq = flags & 0x1000 != 0;
    let has_ack = version == 1 && flags & 0x0080 != 0;
    let hlen = 4
        + 4 * usize::from(has_csum)
        + 4 * usize::from(has_key)
        + 4 * usize::from(has_seq)
        + 4 * usize::from(has_ack);
    let body = d.get(hlen..).ok_or(DecodeError::Truncated("gre"))?;
    match (version, proto) {
        (0, 0x0800) | (0, 0x86dd) => inner_ip(body, encap, depth),
        (0, 0x6558) => inner_ethernet(body, encap, depth),
        // ERSPAN type II carries an 8-byte header (and always a sequence number); type I
        // has neither.
        (0, 0x88be) if has_seq => {
            let frame = body.get(8..).ok_or(DecodeError::Truncated("erspan"))?;
            inner_ethernet(frame, encap, depth)
        }
        (0, 0x88be) => inner_ethernet(body, encap, depth),
        // ERSPAN type III: 12-byte header, plus an 8-byte platform sub-header when O is set.
        (0, 0x22eb) => {
            let o = body.get(11).ok_or(DecodeError::Truncated("erspan"))? & 1 == 1;
            let frame = body
                .get(if o { 20 } else { 12 }..)
                .ok_or(DecodeError::Truncated("erspan"))?;
            inner_ethernet(frame, encap, depth)
        }
        (0, 0x8847) | (0, 0x8848) => {
            let mut e = encap;
            e.tunnels += 1;
            match mpls(body, &mut e, depth + 1)? {
                Some(ip) => decode_ip(ip, e, depth + 1),
                None => Ok(Outcome::NotIp),
            }
        }
        (1, 0x880b) => match ppp(body)? {
            Some(ip) => inner_ip(ip, encap, depth),
            None => Ok(Outcome::NotIp),
        },
        _ => Ok(Outcome::NotIp),
    }
}

/// UDP-borne tunnels. `None` means "not a tunnel after all": the datagram is ordinary UDP.
/// Whether [`udp`] might find a tunnel in a datagram between these ports: when not, the
/// datagram's own addresses are the innermost ones (the reader's fast shard path).
pub fn udp_may_tunnel(sport: u16, dport: u16) -> bool {
    matches!(dport, VXLAN_PORT | VXLAN_LINUX_PORT | GENEVE_PORT)
        || sport == TEREDO_PORT
        || dport == TEREDO_PORT
}

pub fn udp(
    sport: u16,
    dport: u16,
    d: &[u8],
    encap: Encap,
    depth: u8,
) -> Option<Result<Outcome<'_>, DecodeError>> {
    if depth >= super::MAX_ENCAP_DEPTH {
        return None;
    }
    if dport == VXLAN_PORT || dport == VXLAN_LINUX_PORT {
        // Flags byte must have only the I bit (0x08) among the defined ones.
        if d.len() >= 8 + 14 && d[0] & 0x08 != 0 {
            return Some(inner_ethernet(&d[8..], encap, depth));
        }
        return None;
    }
    if dport == GENEVE_PORT {
        let ver = d.first()? >> 6;
        let optlen = usize::from(d.first()? & 0x3f) * 4;
        let proto = be16(d, 2)?;
        let inner = d.get(8 + optlen..)?;
        if ver != 0 {
            return None;
        }
        return match proto {
            0x6558 => Some(inner_ethernet(inner, encap, depth)),
            0x0800 | 0x86dd => Some(inner_ip(inner, encap, depth)),
            _ => None,
        };
    }
    if sport == TEREDO_PORT || dport == TEREDO_PORT {
        return teredo(d).map(|ip| inner_ip(ip, encap, depth));
    }
    None
}

/// Teredo (RFC 4380): optional authentication and origin-indication headers, then IPv6.
/// Accepted only when what follows really is a whole IPv6 packet.
fn teredo(mut d: &[u8]) -> Option<&[u8]> {
    if d.len() >= 2 && d[0] == 0 && d[1] == 1 {
        let id_len = usize::from(*d.get(2)?);
        let au_len = usize::from(*d.get(3)?);
        d = d.get(4 + id_len + au_len + 8 + 1..)?;
    }
    if d.len() >= 2 && d[0] == 0 && d[1] == 0 {
        d = d.get(8..)?;
    }
    if d.len() < 40 || d[0] >> 4 != 6 {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([d[4], d[5]]));
    (d.len() == 40 + plen).then_some(d)
}
