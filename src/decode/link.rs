//! Link layers and layer-2 shims, down to the IP header.

use super::{DecodeError, Encap};

use crate::wire::{EtherType, LinkType};

/// Human name of a link type, for the run summary.
pub fn linktype_name(lt: u16) -> &'static str {
    match LinkType::from_u16(lt) {
        LinkType::Null => "NULL",
        LinkType::Ethernet => "EN10MB",
        LinkType::Ppp | LinkType::PppHdlc => "PPP",
        LinkType::Raw | LinkType::RawBsd(_) => "RAW",
        LinkType::CHdlc => "C_HDLC",
        LinkType::Loop => "LOOP",
        LinkType::LinuxSll => "LINUX_SLL",
        LinkType::LinuxSll2 => "LINUX_SLL2",
        LinkType::Ipv4 => "IPV4",
        LinkType::Ipv6 => "IPV6",
        LinkType::PppEther => "PPPOE",
        LinkType::Ieee80211 => "IEEE802_11",
        LinkType::Radiotap => "IEEE802_11_RADIO",
        LinkType::Ppi => "PPI",
        LinkType::Avs => "IEEE802_11_RADIO_AVS",
        LinkType::Prism => "PRISM_HEADER",
        LinkType::Nflog => "NFLOG",
        LinkType::Unknown(_) => "other",
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Strips the link layer of a captured frame. `Ok(None)` means a non-IP frame.
pub fn strip<'a>(
    linktype: u16,
    frame: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match LinkType::from_u16(linktype) {
        LinkType::Ethernet => ethernet(frame, encap, depth),
        LinkType::Raw | LinkType::RawBsd(_) | LinkType::Ipv4 | LinkType::Ipv6 => Ok(Some(frame)),
        LinkType::LinuxSll => {
            let proto = be16(frame, 14).ok_or(DecodeError::Truncated("sll"))?;
            ethertype(proto, &frame[16..], encap, depth)
        }
        LinkType::LinuxSll2 => {
            if frame.len() < 20 {
                return Err(DecodeError::Truncated("sll2"));
            }
            let proto = be16(frame, 0).ok_or(DecodeError::Truncated("sll2"))?;
            ethertype(proto, &frame[20..], encap, depth)
        }
        LinkType::Null | LinkType::Loop => {
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
        LinkType::Ppp | LinkType::PppHdlc => {
            // Address/control (ff 03) may be present or compressed away.
            let rest = if frame.starts_with(&[0xff, 0x03]) {
                &frame[2..]
            } else {
                frame
            };
            ppp(rest)
        }
        LinkType::PppEther => pppoe(frame),
        LinkType::CHdlc => {
            let proto = be16(frame, 2).ok_or(DecodeError::Truncated("c_hdlc"))?;
            ethertype(proto, &frame[4..], encap, depth)
        }
        // 802.11 captured without a radio header carries no FCS (libpcap's convention,
        // and what tshark assumes by default).
        LinkType::Ieee80211 => wlan(frame, false, encap, depth),
        LinkType::Radiotap => radiotap(frame, encap, depth),
        LinkType::Ppi => ppi(frame, encap, depth),
        LinkType::Avs => avs(frame, encap, depth),
        LinkType::Prism => prism(frame, encap, depth),
        LinkType::Nflog => nflog(frame),
        LinkType::Unknown(other) => Err(DecodeError::UnsupportedLinkType(other)),
    }
}

/// Radiotap (LINKTYPE 127): version 0, pad, little-endian length and a chain of
/// little-endian "present" words, then fields in bit order, each aligned to its own size
/// from the start of the header. Only the Flags field (bit 1) matters here; it follows
/// TSFT (bit 0, 8 bytes, 8-aligned) and says whether the frame ends in an FCS (0x10), has
/// padding after its 802.11 header (0x20) or failed its FCS check (0x40).
fn radiotap<'a>(
    f: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let len = usize::from(le16(f, 2).ok_or(DecodeError::Truncated("radiotap"))?);
    let first = le32(f, 4).ok_or(DecodeError::Truncated("radiotap"))?;
    if f.first() != Some(&0) || len < 8 {
        return Err(DecodeError::Malformed("radiotap"));
    }
    let hdr = f.get(..len).ok_or(DecodeError::Truncated("radiotap"))?;
    // Extended present words: bit 31 says another follows. Each is 4 bytes of a header of
    // at most 65535, so the header length bounds the walk; the cap is belt and braces.
    let mut off = 4;
    let mut more = true;
    for _ in 0..(len / 4) {
        let word = le32(hdr, off).ok_or(DecodeError::Malformed("radiotap"))?;
        off += 4;
        if word & 0x8000_0000 == 0 {
            more = false;
            break;
        }
    }
    if more {
        return Err(DecodeError::Malformed("radiotap"));
    }
    let mut flags = 0u8;
    if first & 0x1 != 0 {
        off = off.next_multiple_of(8) + 8;
    }
    if first & 0x2 != 0 {
        flags = *hdr.get(off).ok_or(DecodeError::Malformed("radiotap"))?;
    }
    if flags & 0x40 != 0 {
        // The card says the frame's checksum was wrong: its bytes are not to be trusted.
        return Err(DecodeError::Skipped("wlan_bad_fcs"));
    }
    let mut frame = &f[len..];
    if flags & 0x10 != 0 {
        let keep = frame
            .len()
            .checked_sub(4)
            .ok_or(DecodeError::Truncated("wlan"))?;
        frame = &frame[..keep];
    }
    wlan(frame, flags & 0x20 != 0, encap, depth)
}

/// PPI (LINKTYPE 192): version 0, flags (bit 0: fields 32-bit aligned), little-endian
/// header length and the link type of the frame that follows, then typed fields. The
/// 802.11-Common field (type 2) has flags at offset 8: 0x1 = FCS present, 0x4 = FCS bad.
fn ppi<'a>(f: &'a [u8], encap: &mut Encap, depth: u8) -> Result<Option<&'a [u8]>, DecodeError> {
    let len = usize::from(le16(f, 2).ok_or(DecodeError::Truncated("ppi"))?);
    let dlt = le32(f, 4).ok_or(DecodeError::Truncated("ppi"))?;
    if f.first() != Some(&0) || len < 8 {
        return Err(DecodeError::Malformed("ppi"));
    }
    let hdr = f.get(..len).ok_or(DecodeError::Truncated("ppi"))?;
    let aligned = f.get(1).is_some_and(|b| b & 1 != 0);
    let (mut fcs, mut bad) = (false, false);
    let mut off = 8;
    // Each field takes at least its 4-byte header, so the header length bounds the walk.
    for _ in 0..(len / 4) {
        if off >= len {
            break;
        }
        let (Some(kind), Some(dlen)) = (le16(hdr, off), le16(hdr, off + 2)) else {
            return Err(DecodeError::Malformed("ppi"));
        };
        let end = off + 4 + usize::from(dlen);
        let data = hdr.get(off + 4..end).ok_or(DecodeError::Malformed("ppi"))?;
        if kind == 2 {
            if let Some(fl) = le16(data, 8) {
                fcs = fl & 0x1 != 0;
                bad = fl & 0x4 != 0;
            }
        }
        off = if aligned {
            end.next_multiple_of(4)
        } else {
            end
        };
    }
    let inner = &f[len..];
    match u16::try_from(dlt).map(LinkType::from_u16) {
        Ok(LinkType::Ieee80211) => {
            if bad {
                return Err(DecodeError::Skipped("wlan_bad_fcs"));
            }
            let frame = if fcs {
                let keep = inner
                    .len()
                    .checked_sub(4)
                    .ok_or(DecodeError::Truncated("wlan"))?;
                &inner[..keep]
            } else {
                inner
            };
            wlan(frame, false, encap, depth)
        }
        Ok(lt) => {
            // PPI around any other link type (even PPI again): the depth cap ends a chain.
            if depth >= super::MAX_ENCAP_DEPTH {
                return Err(DecodeError::TooDeep);
            }
            strip(lt.number(), inner, encap, depth + 1)
        }
        Err(_) => Err(DecodeError::UnsupportedLinkType(u16::MAX)),
    }
}

/// AVS capture header (LINKTYPE 163): big-endian magic 0x8021100N (N = version) and
/// header length, then an 802.11 frame without FCS (as tshark reads it).
fn avs<'a>(f: &'a [u8], encap: &mut Encap, depth: u8) -> Result<Option<&'a [u8]>, DecodeError> {
    let magic = be32(f, 0).ok_or(DecodeError::Truncated("avs"))?;
    let len = be32(f, 4).ok_or(DecodeError::Truncated("avs"))?;
    if magic & 0xffff_ff00 != 0x8021_1000 || len < 8 {
        return Err(DecodeError::Malformed("avs"));
    }
    let frame = usize::try_from(len)
        .ok()
        .and_then(|l| f.get(l..))
        .ok_or(DecodeError::Truncated("avs"))?;
    wlan(frame, false, encap, depth)
}

/// Prism monitor header (LINKTYPE 119): message code and message length (the header's
/// size, 144 in practice) in the writer's byte order, device name and ten 12-byte items;
/// then an 802.11 frame without FCS (as tshark reads it). Some drivers write an AVS header
/// under this link type instead; its magic tells.
fn prism<'a>(f: &'a [u8], encap: &mut Encap, depth: u8) -> Result<Option<&'a [u8]>, DecodeError> {
    let code = be32(f, 0).ok_or(DecodeError::Truncated("prism"))?;
    if code & 0xffff_ff00 == 0x8021_1000 {
        return avs(f, encap, depth);
    }
    let le = le32(f, 4).ok_or(DecodeError::Truncated("prism"))?;
    let be = be32(f, 4).ok_or(DecodeError::Truncated("prism"))?;
    // The header is at least its code, length and 16-byte device name.
    let plausible = |l: u32| (24..=4096).contains(&l);
    let len = if plausible(le) {
        le
    } else if plausible(be) {
        be
    } else {
        return Err(DecodeError::Malformed("prism"));
    };
    let frame = f
        .get(len as usize..)
        .ok_or(DecodeError::Truncated("prism"))?;
    wlan(frame, false, encap, depth)
}

/// An IEEE 802.11 frame without FCS, down to what its LLC/SNAP header names. `pad`: the
/// radiotap "data pad" flag, the header is padded to a multiple of 4 bytes.
///
/// Only unprotected data frames carry a readable packet. Management, control and
/// extension frames, null-data frames, protected (encrypted) frames, 802.11 fragments and
/// A-MSDUs are counted skips (`wlan_*`), not errors: they are normal on a wireless link.
pub(super) fn wlan<'a>(
    f: &'a [u8],
    pad: bool,
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let (Some(&fc0), Some(&fc1)) = (f.first(), f.get(1)) else {
        return Err(DecodeError::Truncated("wlan"));
    };
    if fc0 & 0x03 != 0 {
        // Protocol version 0 is the only one defined (1 is 802.11ah PV1, not decoded).
        return Err(DecodeError::Malformed("wlan"));
    }
    match (fc0 >> 2) & 0x3 {
        0 => return Err(DecodeError::Skipped("wlan_mgmt")),
        1 => return Err(DecodeError::Skipped("wlan_ctrl")),
        2 => {}
        _ => return Err(DecodeError::Skipped("wlan_extension")),
    }
    let subtype = fc0 >> 4;
    // Subtypes with bit 2 set (Null, QoS Null, CF-Ack/Poll only) carry no body.
    if subtype & 0x4 != 0 {
        return Err(DecodeError::Skipped("wlan_null_data"));
    }
    if fc1 & 0x40 != 0 {
        // Protected: the body is encrypted, and we hold no keys.
        return Err(DecodeError::Skipped("wlan_protected"));
    }
    let four_addr = fc1 & 0x3 == 0x3;
    let qos = subtype & 0x8 != 0;
    // FC, duration, 3 addresses, sequence control; a 4th address on WDS (ToDS and FromDS).
    let mut hlen = 24 + if four_addr { 6 } else { 0 };
    let mut amsdu = false;
    if qos {
        let qc = *f.get(hlen).ok_or(DecodeError::Truncated("wlan"))?;
        amsdu = qc & 0x80 != 0;
        hlen += 2;
        // The Order bit on a QoS data frame means an HT Control field follows.
        if fc1 & 0x80 != 0 {
            hlen += 4;
        }
    }
    let seq = le16(f, 22).ok_or(DecodeError::Truncated("wlan"))?;
    if pad {
        hlen = hlen.next_multiple_of(4);
    }
    let body = f.get(hlen..).ok_or(DecodeError::Truncated("wlan"))?;
    // More Fragments, or a fragment number other than 0: only the reassembled MSDU would
    // make sense, and 802.11 fragmentation is rare enough not to be worth buffering.
    if fc1 & 0x04 != 0 || seq & 0x000f != 0 {
        return Err(DecodeError::Skipped("wlan_fragment"));
    }
    if amsdu {
        return Err(DecodeError::Skipped("wlan_amsdu"));
    }
    llc_snap(body, encap, depth)
}

/// An 802.2 LLC header: SNAP (aa aa 03) with OUI 00-00-00 (RFC 1042) or 00-00-f8 (802.1H
/// bridge tunnel) names an ethertype. Any other LLC (STP, NetBIOS, ...) is not IP.
fn llc_snap<'a>(
    body: &'a [u8],
    encap: &mut Encap,
    depth: u8,
) -> Result<Option<&'a [u8]>, DecodeError> {
    // A data frame (not a null one) holds at least an LLC header.
    if body.len() < 3 {
        return Err(DecodeError::Truncated("llc"));
    }
    if !body.starts_with(&[0xaa, 0xaa, 0x03]) {
        return Ok(None);
    }
    let oui = body.get(3..6).ok_or(DecodeError::Truncated("llc"))?;
    let proto = be16(body, 6).ok_or(DecodeError::Truncated("llc"))?;
    if oui != [0, 0, 0] && oui != [0, 0, 0xf8] {
        return Ok(None);
    }
    ethertype(proto, &body[8..], encap, depth)
}

/// Linux NFLOG (LINKTYPE 239): family (AF_INET 2, AF_INET6 10), version 0, resource id,
/// then TLVs: length (TLV header included) and type in the capturing host's byte order,
/// each padded to 4 bytes. NFULA_PAYLOAD (type 9) holds the packet from its network
/// header on. The first TLV is NFULA_PACKET_HDR (type 1), which tells the byte order
/// (little-endian unless it reads as 1 only big-endian).
fn nflog(f: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    const NFULA_PACKET_HDR: u16 = 1;
    const NFULA_PAYLOAD: u16 = 9;
    // The top two bits of a netlink attribute type are flags (nested, net byte order).
    const TYPE_MASK: u16 = 0x3fff;
    /// TLVs walked before giving up: the kernel writes about 15 at most.
    const MAX_TLVS: usize = 64;
    let (Some(&family), Some(&version)) = (f.first(), f.get(1)) else {
        return Err(DecodeError::Truncated("nflog"));
    };
    if f.len() < 4 {
        return Err(DecodeError::Truncated("nflog"));
    }
    if version != 0 {
        return Err(DecodeError::Malformed("nflog"));
    }
    let big = le16(f, 6).map(|t| t & TYPE_MASK) != Some(NFULA_PACKET_HDR)
        && be16(f, 6).map(|t| t & TYPE_MASK) == Some(NFULA_PACKET_HDR);
    let rd = |at: usize| if big { be16(f, at) } else { le16(f, at) };
    let mut off = 4;
    for _ in 0..MAX_TLVS {
        if off >= f.len() {
            break;
        }
        let (Some(len), Some(kind)) = (rd(off), rd(off + 2)) else {
            return Err(DecodeError::Truncated("nflog"));
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(DecodeError::Malformed("nflog"));
        }
        if kind & TYPE_MASK == NFULA_PAYLOAD {
            // A snap length may have cut the payload: decode what was captured.
            let payload = &f[off + 4..(off + len).min(f.len())];
            return match family {
                2 | 10 => Ok(Some(payload)),
                _ => Ok(None),
            };
        }
        if off + len > f.len() {
            return Err(DecodeError::Truncated("nflog"));
        }
        off += len.next_multiple_of(4);
    }
    Err(DecodeError::Skipped("nflog_no_payload"))
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
        match EtherType::from_u16(proto) {
            EtherType::Ipv4 | EtherType::Ipv6 => return Ok(Some(d)),
            EtherType::Vlan | EtherType::QinQ => {
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
            EtherType::VnTag => {
                // 4 bytes of tag, then the next ethertype.
                proto = be16(d, 4).ok_or(DecodeError::Truncated("vntag"))?;
                d = &d[6..];
            }
            EtherType::ETag => {
                // 802.1BR: 6 bytes of E-TCI, then the next ethertype.
                proto = be16(d, 6).ok_or(DecodeError::Truncated("etag"))?;
                d = &d[8..];
            }
            EtherType::MplsUnicast | EtherType::MplsMulticast => return mpls(d, encap, depth),
            EtherType::PppoeSession => return pppoe(d),
            EtherType::Teb => {
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

#[cfg(test)]
mod tests {
    use super::super::testpkt::{ipv4_udp, ipv6_udp, noise, udp_of, verdict};
    use super::super::Encap;
    use super::strip;

    const BSSID: [u8; 6] = [2, 0x99, 0, 0, 0x0a, 1];
    const STA: [u8; 6] = [2, 0x99, 0, 0, 0, 1];
    const HOST: [u8; 6] = [2, 0x99, 0, 0, 0, 2];

    /// An 802.11 data frame: `fc` (2 bytes), 3 or 4 addresses, sequence control `seq`,
    /// QoS control `qos` (with `htc`: 4 bytes of HT control), then `body`.
    fn dot11(fc: [u8; 2], seq: u16, qos: Option<u16>, htc: bool, body: &[u8]) -> Vec<u8> {
        let mut f = vec![fc[0], fc[1], 0x2c, 0];
        f.extend_from_slice(&BSSID);
        f.extend_from_slice(&STA);
        f.extend_from_slice(&HOST);
        f.extend_from_slice(&seq.to_le_bytes());
        if fc[1] & 3 == 3 {
            f.extend_from_slice(&STA);
        }
        if let Some(q) = qos {
            f.extend_from_slice(&q.to_le_bytes());
        }
        if htc {
            f.extend_from_slice(&[0, 0, 0, 0]);
        }
        f.extend_from_slice(body);
        f
    }

    fn snap(ethertype: u16, ip: &[u8]) -> Vec<u8> {
        let mut b = vec![0xaa, 0xaa, 0x03, 0, 0, 0];
        b.extend_from_slice(&ethertype.to_be_bytes());
        b.extend_from_slice(ip);
        b
    }

    fn fcs(frame: &[u8]) -> Vec<u8> {
        // The decoder never checks the FCS, only drops it: any 4 bytes do.
        let mut f = frame.to_vec();
        f.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        f
    }

    /// The IP bytes `strip` hands on, or the failure's counter name.
    fn ip_of(lt: u16, frame: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
        let mut e = Encap::default();
        strip(lt, frame, &mut e, 0)
            .map(|o| o.map(<[u8]>::to_vec))
            .map_err(|e| e.reason())
    }

    #[test]
    fn wlan_data_frames_of_every_shape_reach_the_packet() {
        let ip = ipv4_udp(b"hello");
        let body = snap(0x0800, &ip);
        let cases = [
            dot11([0x08, 0x01], 0x10, None, false, &body), // ToDS
            dot11([0x08, 0x02], 0x20, None, false, &body), // FromDS
            dot11([0x08, 0x00], 0x30, None, false, &body), // ad hoc
            dot11([0x88, 0x01], 0x40, Some(0x0005), false, &body), // QoS, TID 5
            dot11([0x88, 0x81], 0x50, Some(0), true, &body), // QoS + HT control (Order)
            dot11([0x08, 0x03], 0x60, None, false, &body), // WDS, 4 addresses
            dot11([0x88, 0x03], 0x70, Some(0), false, &body), // QoS WDS
        ];
        for f in &cases {
            assert_eq!(ip_of(105, f), Ok(Some(ip.clone())), "{f:02x?}");
            let (sp, dp, pl, _) = udp_of(105, f);
            assert_eq!((sp, dp, pl.as_slice()), (1111, 2222, &b"hello"[..]));
        }
        // 802.1H bridge-tunnel OUI, and IPv6.
        let ip6 = ipv6_udp(b"six");
        let mut b = snap(0x86dd, &ip6);
        b[5] = 0xf8;
        let f = dot11([0x08, 0x02], 0, None, false, &b);
        assert_eq!(ip_of(105, &f), Ok(Some(ip6)));
        // The Order bit on a non-QoS data frame adds nothing.
        let f = dot11([0x08, 0x81], 0, None, false, &body);
        assert_eq!(ip_of(105, &f), Ok(Some(ip.clone())));
        // A VLAN tag inside SNAP is followed like on Ethernet.
        let mut tagged = vec![0, 100, 0x08, 0x00];
        tagged.extend_from_slice(&ip);
        let f = dot11([0x08, 0x01], 0, None, false, &snap(0x8100, &tagged));
        assert_eq!(ip_of(105, &f), Ok(Some(ip)));
    }

    #[test]
    fn wlan_frames_without_a_readable_packet_are_counted_skips() {
        let body = snap(0x0800, &ipv4_udp(b"x"));
        let beacon = dot11([0x80, 0x00], 0, None, false, &[0; 12]);
        let ack = vec![0xd4, 0x00, 0, 0, 2, 0x99, 0, 0, 0, 1];
        let ext = dot11([0x0c, 0x00], 0, None, false, &body);
        let null = dot11([0x48, 0x01], 0, None, false, &[]);
        let qos_null = dot11([0xc8, 0x01], 0, Some(0), false, &[]);
        let protected = dot11([0x08, 0x41], 0, None, false, &[0x11; 40]);
        let protected_qos = dot11([0x88, 0x42], 0, Some(0), false, &[0x11; 40]);
        let more_frags = dot11([0x08, 0x05], 0, None, false, &body);
        let second_frag = dot11([0x08, 0x01], 0x0011, None, false, &body[..10]);
        let amsdu = dot11([0x88, 0x01], 0, Some(0x0080), false, &body);
        for (f, want) in [
            (&beacon, "wlan_mgmt"),
            (&ack, "wlan_ctrl"),
            (&ext, "wlan_extension"),
            (&null, "wlan_null_data"),
            (&qos_null, "wlan_null_data"),
            (&protected, "wlan_protected"),
            (&protected_qos, "wlan_protected"),
            (&more_frags, "wlan_fragment"),
            (&second_frag, "wlan_fragment"),
            (&amsdu, "wlan_amsdu"),
        ] {
            assert_eq!(verdict(105, f), want, "{f:02x?}");
        }
        // LLC that is not SNAP (spanning tree) and SNAP of another OUI: not IP.
        let stp = dot11([0x08, 0x01], 0, None, false, &[0x42, 0x42, 0x03, 0, 0, 0]);
        assert_eq!(verdict(105, &stp), "not_ip");
        let mut apple = body.clone();
        apple[3..6].copy_from_slice(&[0x00, 0x80, 0xc7]);
        let f = dot11([0x08, 0x01], 0, None, false, &apple);
        assert_eq!(verdict(105, &f), "not_ip");
        // ARP over SNAP: not IP either.
        let f = dot11([0x08, 0x01], 0, None, false, &snap(0x0806, &[0; 28]));
        assert_eq!(verdict(105, &f), "not_ip");
        // Protocol version other than 0.
        let f = dot11([0x09, 0x01], 0, None, false, &body);
        assert_eq!(verdict(105, &f), "malformed_wlan");
    }

    #[test]
    fn wlan_truncated_at_every_length() {
        let body = snap(0x0800, &ipv4_udp(b"hello"));
        for (f, hdr) in [
            (dot11([0x08, 0x01], 0, None, false, &body), 24),
            (dot11([0x88, 0x83], 0, Some(0), true, &body), 36),
        ] {
            for cut in 0..f.len() {
                let v = verdict(105, &f[..cut]);
                let want = if cut < hdr {
                    "truncated_wlan"
                } else if cut < hdr + 8 {
                    "truncated_llc"
                } else if cut < hdr + 8 + 20 {
                    "truncated_ipv4"
                } else {
                    // Cut inside the UDP header or payload: the lax IP path.
                    v
                };
                assert_eq!(v, want, "cut at {cut}");
            }
        }
    }

    /// The radiotap header of the rewrapped capture: two present words, 4 bytes of padding
    /// so that TSFT is 8-aligned, then Flags.
    fn radiotap(flags: u8) -> Vec<u8> {
        let mut h = vec![0, 0, 34, 0];
        h.extend_from_slice(&0xa000_082fu32.to_le_bytes());
        h.extend_from_slice(&0x0000_0820u32.to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h.extend_from_slice(&0x1122_3344_5566u64.to_le_bytes());
        h.extend_from_slice(&[flags, 0x6c, 0x85, 0x09, 0xc0, 0x00, 0xd6, 0, 0xd4, 1]);
        assert_eq!(h.len(), 34);
        h
    }

    #[test]
    fn radiotap_flags_fcs_pad_and_bad_fcs() {
        let ip = ipv4_udp(b"hello");
        let frame = dot11([0x88, 0x01], 0, Some(0), false, &snap(0x0800, &ip));
        // FCS flag: the last 4 bytes go, exactly.
        let mut f = radiotap(0x10);
        f.extend_from_slice(&fcs(&frame));
        assert_eq!(ip_of(127, &f), Ok(Some(ip.clone())));
        // Without the flag, trailing bytes stay part of what follows the header.
        let mut f = radiotap(0x00);
        f.extend_from_slice(&fcs(&frame));
        let mut with_tail = ip.clone();
        with_tail.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(ip_of(127, &f), Ok(Some(with_tail)));
        // Data pad: a 26-byte QoS header padded to 28.
        let mut padded = frame[..26].to_vec();
        padded.extend_from_slice(&[0, 0]);
        padded.extend_from_slice(&frame[26..]);
        let mut f = radiotap(0x20);
        f.extend_from_slice(&padded);
        assert_eq!(ip_of(127, &f), Ok(Some(ip.clone())));
        // Bad FCS: counted, not decoded.
        let mut f = radiotap(0x50);
        f.extend_from_slice(&fcs(&frame));
        assert_eq!(verdict(127, &f), "wlan_bad_fcs");
        // One present word, no TSFT: Flags right after it.
        let mut f = vec![0, 0, 9, 0, 0x02, 0, 0, 0, 0x10];
        f.extend_from_slice(&fcs(&frame));
        assert_eq!(ip_of(127, &f), Ok(Some(ip)));
        // A management frame behind radiotap is a skip, not an error.
        let mut f = radiotap(0x10);
        f.extend_from_slice(&fcs(&dot11([0x80, 0], 0, None, false, &[0; 12])));
        assert_eq!(verdict(127, &f), "wlan_mgmt");
        // FCS flag but fewer than 4 bytes after the header.
        let mut f = radiotap(0x10);
        f.extend_from_slice(&[0x08, 0x01]);
        assert_eq!(verdict(127, &f), "truncated_wlan");
    }

    #[test]
    fn radiotap_garbage_and_truncation() {
        let frame = dot11([0x08, 0x01], 0, None, false, &snap(0x0800, &ipv4_udp(b"x")));
        let mut good = radiotap(0x10);
        good.extend_from_slice(&fcs(&frame));
        for cut in 0..8 {
            assert_eq!(verdict(127, &good[..cut]), "truncated_radiotap", "{cut}");
        }
        for cut in 8..34 {
            assert_eq!(verdict(127, &good[..cut]), "truncated_radiotap", "{cut}");
        }
        // Version 1, a length under 8, present words running past the length, Flags
        // past the length.
        let mut v1 = good.clone();
        v1[0] = 1;
        assert_eq!(verdict(127, &v1), "malformed_radiotap");
        let mut short = good.clone();
        short[2] = 4;
        assert_eq!(verdict(127, &short), "malformed_radiotap");
        let all_ext = [
            0, 0, 16, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(verdict(127, &all_ext), "malformed_radiotap");
        let flags_missing = [0, 0, 8, 0, 0x02, 0, 0, 0, 0x08, 0x01];
        assert_eq!(verdict(127, &flags_missing), "malformed_radiotap");
    }

    fn ppi(dlt: u32, flags: u16) -> Vec<u8> {
        let mut h = vec![0, 0, 32, 0];
        h.extend_from_slice(&dlt.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&[108, 0, 0x85, 0x09, 0xc0, 0, 0, 0, 0xd6, 0xa1]);
        assert_eq!(h.len(), 32);
        h
    }

    #[test]
    fn ppi_802_11_with_and_without_fcs_and_other_link_types() {
        let ip = ipv4_udp(b"hello");
        let frame = dot11([0x88, 0x03], 0, Some(0), false, &snap(0x0800, &ip));
        let mut f = ppi(105, 0x0001);
        f.extend_from_slice(&fcs(&frame));
        assert_eq!(ip_of(192, &f), Ok(Some(ip.clone())));
        let mut f = ppi(105, 0);
        f.extend_from_slice(&frame);
        assert_eq!(ip_of(192, &f), Ok(Some(ip.clone())));
        let mut f = ppi(105, 0x0005);
        f.extend_from_slice(&fcs(&frame));
        assert_eq!(verdict(192, &f), "wlan_bad_fcs");
        // PPI around Ethernet.
        let mut f = ppi(1, 0);
        f.extend_from_slice(&[0xff; 12]);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        assert_eq!(ip_of(192, &f), Ok(Some(ip.clone())));
        // PPI around PPI around ...: the depth cap ends it.
        let mut f = frame.clone();
        for _ in 0..12 {
            let mut outer = ppi(192, 0);
            outer.extend_from_slice(&f);
            f = outer;
        }
        assert_eq!(verdict(192, &f), "encap_too_deep");
        // An unknown inner link type, and one that does not fit in 16 bits.
        let mut f = ppi(147, 0);
        f.extend_from_slice(&frame);
        assert_eq!(verdict(192, &f), "unsupported_linktype");
        let mut f = ppi(0x1_0001, 0);
        f.extend_from_slice(&frame);
        assert_eq!(verdict(192, &f), "unsupported_linktype");
        // Truncated anywhere in the header; a field running past the header; version 1.
        let mut good = ppi(105, 1);
        good.extend_from_slice(&fcs(&frame));
        for cut in 0..32 {
            assert_eq!(verdict(192, &good[..cut]), "truncated_ppi", "{cut}");
        }
        let mut bad = good.clone();
        bad[10] = 40;
        assert_eq!(verdict(192, &bad), "malformed_ppi");
        let mut v1 = good.clone();
        v1[0] = 1;
        assert_eq!(verdict(192, &v1), "malformed_ppi");
    }

    #[test]
    fn avs_and_prism_headers() {
        let ip = ipv4_udp(b"hello");
        let frame = dot11([0x08, 0x02], 0, None, false, &snap(0x0800, &ip));
        let mut avs = vec![0x80, 0x21, 0x10, 0x01, 0, 0, 0, 64];
        avs.resize(64, 0);
        let mut f = avs.clone();
        f.extend_from_slice(&frame);
        assert_eq!(ip_of(163, &f), Ok(Some(ip.clone())));
        // Under the Prism link type too (some drivers do that).
        assert_eq!(ip_of(119, &f), Ok(Some(ip.clone())));
        for cut in 0..8 {
            assert_eq!(verdict(163, &f[..cut]), "truncated_avs", "{cut}");
        }
        assert_eq!(verdict(163, &f[..40]), "truncated_avs");
        let mut bad = f.clone();
        bad[2] = 0x11;
        assert_eq!(verdict(163, &bad), "malformed_avs");

        let mut prism = vec![0x44, 0, 0, 0, 144, 0, 0, 0];
        prism.resize(144, 0);
        let mut f = prism.clone();
        f.extend_from_slice(&frame);
        assert_eq!(ip_of(119, &f), Ok(Some(ip.clone())));
        // Written on a big-endian host.
        f[..8].copy_from_slice(&[0, 0, 0, 0x44, 0, 0, 0, 144]);
        assert_eq!(ip_of(119, &f), Ok(Some(ip)));
        for cut in 0..8 {
            assert_eq!(verdict(119, &f[..cut]), "truncated_prism", "{cut}");
        }
        assert_eq!(verdict(119, &f[..100]), "truncated_prism");
        let mut bad = f.clone();
        bad[4..8].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(verdict(119, &bad), "malformed_prism");
    }

    /// An NFLOG message: header, NFULA_PACKET_HDR, NFULA_PREFIX (padded), then the given
    /// extra TLVs, little- or big-endian.
    fn nflog(family: u8, big: bool, tlvs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![family, 0, 0, 5];
        let hdr: &[u8] = &[0x08, 0x00, 3, 0];
        let prefix: &[u8] = b"x\0";
        for (kind, val) in [(1u16, hdr), (10, prefix)].iter().chain(tlvs) {
            let len = (4 + val.len()) as u16;
            let (l, k) = if big {
                (len.to_be_bytes(), kind.to_be_bytes())
            } else {
                (len.to_le_bytes(), kind.to_le_bytes())
            };
            m.extend_from_slice(&l);
            m.extend_from_slice(&k);
            m.extend_from_slice(val);
            while m.len() % 4 != 0 {
                m.push(0);
            }
        }
        m
    }

    #[test]
    fn nflog_tlv_walk_to_the_payload() {
        let ip = ipv4_udp(b"hello");
        let ip6 = ipv6_udp(b"six");
        let uid = 0u32.to_be_bytes();
        for big in [false, true] {
            let m = nflog(2, big, &[(11, &uid), (9, &ip)]);
            assert_eq!(ip_of(239, &m), Ok(Some(ip.clone())), "big {big}");
            let m = nflog(10, big, &[(9, &ip6)]);
            assert_eq!(ip_of(239, &m), Ok(Some(ip6.clone())), "big {big}");
            // The nested / byte-order flag bits of a type are ignored.
            let m = nflog(2, big, &[(0x4009, &ip)]);
            assert_eq!(ip_of(239, &m), Ok(Some(ip.clone())), "big {big}");
        }
        // Another family (ARP, bridge): not IP. No payload TLV: a counted skip.
        assert_eq!(verdict(239, &nflog(3, false, &[(9, &[0; 28])])), "not_ip");
        assert_eq!(
            verdict(239, &nflog(2, false, &[(11, &uid)])),
            "nflog_no_payload"
        );
        // A payload cut by the snap length is decoded from what is there.
        let m = nflog(2, false, &[(9, &ip)]);
        let padding = (4 - ip.len() % 4) % 4;
        let cut = m.len() - padding - 2;
        assert!(matches!(ip_of(239, &m[..cut]), Ok(Some(p)) if p == ip[..ip.len() - 2]));
    }

    #[test]
    fn nflog_garbage_is_bounded_and_counted() {
        let ip = ipv4_udp(b"hello");
        let m = nflog(2, false, &[(9, &ip)]);
        for cut in 0..4 {
            assert_eq!(verdict(239, &m[..cut]), "truncated_nflog", "{cut}");
        }
        // Cut inside the first TLVs (before the payload TLV starts); a cut that falls
        // between two TLVs leaves a message without payload.
        for cut in 5..16 {
            let want = if cut == 12 {
                "nflog_no_payload"
            } else {
                "truncated_nflog"
            };
            assert_eq!(verdict(239, &m[..cut]), want, "{cut}");
        }
        // A TLV length under 4 would never advance: malformed, not a loop.
        let mut zero = m.clone();
        zero[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(verdict(239, &zero), "malformed_nflog");
        // Version 1.
        let mut v1 = m.clone();
        v1[1] = 1;
        assert_eq!(verdict(239, &v1), "malformed_nflog");
        // Thousands of empty TLVs and no payload: the walk stops at its cap.
        let mut many = vec![2, 0, 0, 5];
        for _ in 0..5000 {
            many.extend_from_slice(&[4, 0, 11, 0]);
        }
        many.extend_from_slice(&[8, 0, 9, 0, 0x45, 0, 0, 0]);
        assert_eq!(verdict(239, &many), "nflog_no_payload");
    }

    #[test]
    fn garbage_never_panics_on_any_new_link_type() {
        for lt in [105u16, 127, 192, 163, 119, 239] {
            for seed in 0..3000u64 {
                let len = (seed % 200) as usize;
                let mut f = noise(seed * 7 + u64::from(lt), len);
                // Make the common header bytes plausible now and then, to get past them.
                if seed % 3 == 0 && f.len() > 8 {
                    match lt {
                        127 | 192 | 239 => {
                            f[0] = if lt == 239 { 2 } else { 0 };
                            f[1] = 0;
                            f[2] = (f[2] % 48).max(8);
                            f[3] = 0;
                        }
                        163 => f[..4].copy_from_slice(&[0x80, 0x21, 0x10, 0x01]),
                        _ => f[0] = 0x08,
                    }
                }
                let _ = verdict(lt, &f);
            }
        }
    }
}
