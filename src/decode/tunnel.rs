//! Tunnels that taps and SPAN/RSPAN ports deliver: GRE (with ERSPAN I/II/III and Aruba's
//! 802.11-in-GRE), GRE over UDP, VXLAN, Geneve, GTP-U, AYIYA and Teredo. The inner packet is
//! what gets inspected; `Encap::tunnels` records that it was tunnelled.

use super::link::{ethernet, mpls, ppp, wlan};
use super::{decode_ip, DecodeError, Encap, Outcome};

pub const VXLAN_PORT: u16 = 4789;
/// Linux's pre-IANA default VXLAN port.
pub const VXLAN_LINUX_PORT: u16 = 8472;
pub const GENEVE_PORT: u16 = 6081;
pub const TEREDO_PORT: u16 = 3544;
/// GTP user plane (3GPP TS 29.281), on both sides of a GSN-to-GSN datagram.
pub const GTPU_PORT: u16 = 2152;
/// GRE-in-UDP (RFC 8086) destination port; the source port is flow entropy.
pub const GRE_UDP_PORT: u16 = 4754;
/// AYIYA (draft-massar-v6ops-ayiya) tunnel broker port.
pub const AYIYA_PORT: u16 = 5072;

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

/// Continues decoding an 802.11 frame (no FCS) found inside a tunnel.
fn inner_wlan(frame: &[u8], mut encap: Encap, depth: u8) -> Result<Outcome<'_>, DecodeError> {
    encap.tunnels += 1;
    match wlan(frame, false, &mut encap, depth + 1)? {
        Some(ip) => decode_ip(ip, encap, depth + 1),
        None => Ok(Outcome::NotIp),
    }
}

/// GRE protocol types Aruba controllers use for an 802.11 frame from an AP (0x8200 to
/// 0x8370 in steps of 0x10, as Wireshark 4.0 registers them, and 0x9000 of later releases).
fn aruba_wlan(proto: u16) -> bool {
    (0x8200..=0x8370).contains(&proto) && proto & 0xf == 0 || proto == 0x9000
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
        (0, p) if aruba_wlan(p) => inner_wlan(body, encap, depth),
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
    matches!(
        dport,
        VXLAN_PORT | VXLAN_LINUX_PORT | GENEVE_PORT | GRE_UDP_PORT
    ) || [TEREDO_PORT, GTPU_PORT, AYIYA_PORT]
        .iter()
        .any(|p| *p == sport || *p == dport)
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
    if sport == GTPU_PORT || dport == GTPU_PORT {
        return gtpu(d, encap, depth);
    }
    if dport == GRE_UDP_PORT {
        return gre_udp(d, encap, depth);
    }
    if sport == AYIYA_PORT || dport == AYIYA_PORT {
        return ayiya(d, encap, depth);
    }
    if sport == TEREDO_PORT || dport == TEREDO_PORT {
        return teredo(d).map(|ip| inner_ip(ip, encap, depth));
    }
    None
}

/// GRE-in-UDP (RFC 8086): a GRE header (version 0) right after the UDP header. Taken for
/// GRE only when its version is 0 and its protocol is one the GRE path decodes; anything
/// else on the port stays an ordinary UDP flow rather than vanishing as "not IP".
fn gre_udp(d: &[u8], encap: Encap, depth: u8) -> Option<Result<Outcome<'_>, DecodeError>> {
    let flags = be16(d, 0)?;
    let proto = be16(d, 2)?;
    let known = matches!(
        proto,
        0x0800 | 0x86dd | 0x6558 | 0x88be | 0x22eb | 0x8847 | 0x8848
    ) || aruba_wlan(proto);
    (flags & 0x7 == 0 && known).then(|| gre(d, encap, depth))
}

/// GTP-U (3GPP TS 29.281). Flags: version (3 bits, 1), PT (1 = GTP), E, S, PN; message
/// type; length of what follows the first 8 bytes; TEID. When any of E/S/PN is set, a
/// sequence number, N-PDU number and next-extension-type follow (4 bytes). Extension
/// headers: a length in 4-byte units (the length and next-type bytes included), content,
/// next type; 0 ends the chain. Only a G-PDU (type 255) carries a user packet; other
/// messages (echo, error indication, end marker) are signalling between the GSNs, left to
/// be an ordinary UDP flow, as is anything that is not GTPv1.
fn gtpu(d: &[u8], encap: Encap, depth: u8) -> Option<Result<Outcome<'_>, DecodeError>> {
    const G_PDU: u8 = 255;
    /// Extension headers followed before the packet is called malformed; real ones chain
    /// two or three.
    const MAX_EXT: usize = 16;
    let flags = *d.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 {
        return None;
    }
    let (Some(&kind), Some(len)) = (d.get(1), be16(d, 2)) else {
        return Some(Err(DecodeError::Truncated("gtpu")));
    };
    if kind != G_PDU {
        return None;
    }
    // The length field ends the message (the datagram may hold padding after it).
    let end = (8 + usize::from(len)).min(d.len());
    let d = &d[..end];
    let mut off = 8;
    if flags & 0x07 != 0 {
        let Some(&first_ext) = d.get(11) else {
            return Some(Err(DecodeError::Truncated("gtpu")));
        };
        off = 12;
        let mut next = if flags & 0x04 != 0 { first_ext } else { 0 };
        for _ in 0..MAX_EXT {
            if next == 0 {
                break;
            }
            let Some(&units) = d.get(off) else {
                return Some(Err(DecodeError::Truncated("gtpu")));
            };
            if units == 0 {
                return Some(Err(DecodeError::Malformed("gtpu")));
            }
            let ext_end = off + 4 * usize::from(units);
            let Some(&n) = d.get(ext_end - 1) else {
                return Some(Err(DecodeError::Truncated("gtpu")));
            };
            next = n;
            off = ext_end;
        }
        if next != 0 {
            return Some(Err(DecodeError::Malformed("gtpu")));
        }
    }
    let Some(inner) = d.get(off..) else {
        return Some(Err(DecodeError::Truncated("gtpu")));
    };
    // A G-PDU carries IPv4 or IPv6 (5G PDU sessions may carry Ethernet or unstructured
    // data, which this does not read).
    Some(match inner.first().map(|b| b >> 4) {
        Some(4) | Some(6) => inner_ip(inner, encap, depth),
        Some(_) => Ok(Outcome::NotIp),
        None => Err(DecodeError::Truncated("gtpu")),
    })
}

/// AYIYA ("Anything In Anything", draft-massar-v6ops-ayiya): byte 0 = identity length
/// (as a power of 2, high nibble) and identity type; byte 1 = signature length (in 4-byte
/// words, high nibble) and hash method; byte 2 = authentication method and opcode; byte 3 =
/// next header (an IP protocol number); 4 bytes of epoch time; the identity; the signature;
/// then the payload. Only "forward" (1) and "echo request and forward" (3) carry a packet,
/// and only next header 4 (IPv4) and 41 (IPv6) are decoded; other opcodes are the tunnel's
/// own signalling.
fn ayiya(d: &[u8], encap: Encap, depth: u8) -> Option<Result<Outcome<'_>, DecodeError>> {
    let head = d.get(..8)?;
    let id_len = 1usize << (head[0] >> 4);
    let sig_len = usize::from(head[1] >> 4) * 4;
    let opcode = head[2] & 0x0f;
    let next = head[3];
    // Anything else on the port (other opcodes, a payload that is not IP) stays an
    // ordinary UDP flow.
    if !(opcode == 1 || opcode == 3) || !(next == 4 || next == 41) {
        return None;
    }
    let Some(inner) = d.get(8 + id_len + sig_len..) else {
        return Some(Err(DecodeError::Truncated("ayiya")));
    };
    Some(inner_ip(inner, encap, depth))
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

#[cfg(test)]
mod tests {
    use super::super::testpkt::{ipv4_udp, ipv6_udp, noise, outer_ip, outer_udp, udp_of, verdict};
    use super::super::MAX_ENCAP_DEPTH;
    use super::{AYIYA_PORT, GRE_UDP_PORT, GTPU_PORT};

    /// Raw IP link type: the test frames start at the outer IPv4 header.
    const RAW: u16 = 101;

    fn gtp(flags: u8, kind: u8, opt: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut g = vec![flags, kind];
        g.extend_from_slice(&((opt.len() + inner.len()) as u16).to_be_bytes());
        g.extend_from_slice(&0x1001u32.to_be_bytes());
        g.extend_from_slice(opt);
        g.extend_from_slice(inner);
        g
    }

    #[test]
    fn gtpu_g_pdu_with_optional_fields_and_extension_chains() {
        let ip = ipv4_udp(b"hello");
        let ip6 = ipv6_udp(b"six");
        // PDU session container (0x85) then UDP port (0x40), then the end of the chain.
        let chain = [0, 7, 0, 0x85, 1, 0x10, 0x09, 0x40, 1, 0x08, 0x68, 0x00];
        let two_word_ext = [0, 0, 0, 0xc0, 2, 1, 2, 3, 4, 5, 6, 0];
        for (g, inner_v6) in [
            (gtp(0x30, 255, &[], &ip), false),
            (gtp(0x32, 255, &[0, 9, 0, 0], &ip), false),
            (gtp(0x31, 255, &[0, 0, 7, 0], &ip6), true),
            // S set, and a next-type byte that E does not announce: ignored.
            (gtp(0x32, 255, &[0, 9, 0, 0x85], &ip), false),
            (gtp(0x34, 255, &chain, &ip6), true),
            (gtp(0x36, 255, &two_word_ext, &ip), false),
        ] {
            for (sp, dp) in [
                (GTPU_PORT, GTPU_PORT),
                (40000, GTPU_PORT),
                (GTPU_PORT, 40000),
            ] {
                let f = outer_udp(sp, dp, &g);
                let (s, d, pl, tunnels) = udp_of(RAW, &f);
                let want: (u16, u16, &[u8]) = if inner_v6 {
                    (3333, 4444, b"six")
                } else {
                    (1111, 2222, b"hello")
                };
                assert_eq!((s, d, pl.as_slice(), tunnels), (want.0, want.1, want.2, 1));
            }
        }
        // Padding after the message (its length says where it ends) is not the packet's.
        let mut g = gtp(0x30, 255, &[], &ip);
        g.extend_from_slice(&[0xee; 6]);
        let (_, _, pl, _) = udp_of(RAW, &outer_udp(GTPU_PORT, GTPU_PORT, &g));
        assert_eq!(pl, b"hello");
    }

    #[test]
    fn gtpu_signalling_and_other_versions_stay_plain_udp() {
        let ip = ipv4_udp(b"hello");
        for g in [
            gtp(0x32, 1, &[0, 1, 0, 0], &[]), // echo request
            gtp(0x30, 26, &[], &[0; 8]),      // error indication
            gtp(0x30, 254, &[], &[]),         // end marker
            gtp(0x48, 255, &[0; 4], &ip),     // GTPv2
            gtp(0x20, 255, &[], &ip),         // GTP' (PT = 0)
            vec![],                           // empty datagram
        ] {
            let (s, d, pl, tunnels) = udp_of(RAW, &outer_udp(GTPU_PORT, GTPU_PORT, &g));
            assert_eq!((s, d, pl, tunnels), (GTPU_PORT, GTPU_PORT, g, 0));
        }
        // A G-PDU whose content is neither IPv4 nor IPv6 (a 5G Ethernet PDU session).
        let g = gtp(0x30, 255, &[], &[0x02; 40]);
        assert_eq!(verdict(RAW, &outer_udp(GTPU_PORT, GTPU_PORT, &g)), "not_ip");
    }

    #[test]
    fn gtpu_bad_headers_are_counted_and_the_chain_is_bounded() {
        let ip = ipv4_udp(b"hello");
        let f = |g: &[u8]| outer_udp(GTPU_PORT, GTPU_PORT, g);
        // Version 1 but shorter than the fixed header; optional fields missing.
        assert_eq!(verdict(RAW, &f(&[0x30])), "truncated_gtpu");
        assert_eq!(verdict(RAW, &f(&[0x30, 255, 0, 0, 0, 0])), "truncated_gtpu");
        let g = gtp(0x32, 255, &[0, 1], &[]);
        assert_eq!(verdict(RAW, &f(&g)), "truncated_gtpu");
        // G-PDU with nothing inside.
        assert_eq!(
            verdict(RAW, &f(&gtp(0x30, 255, &[], &[]))),
            "truncated_gtpu"
        );
        // An extension of length 0 would never advance.
        let g = gtp(0x34, 255, &[0, 0, 0, 0x85, 0, 0, 0, 0], &ip);
        assert_eq!(verdict(RAW, &f(&g)), "malformed_gtpu");
        // An extension longer than the message.
        let g = gtp(0x34, 255, &[0, 0, 0, 0x85, 9, 0, 0, 0], &[]);
        assert_eq!(verdict(RAW, &f(&g)), "truncated_gtpu");
        // A chain that never ends: 40 one-word headers each naming another.
        let mut opt = vec![0, 0, 0, 0x85];
        for _ in 0..40 {
            opt.extend_from_slice(&[1, 0, 0, 0x85]);
        }
        assert_eq!(
            verdict(RAW, &f(&gtp(0x34, 255, &opt, &ip))),
            "malformed_gtpu"
        );
        // Every cut of a header with a chain: no panic, always a named verdict.
        let chain = [0, 7, 0, 0x85, 1, 0x10, 0x09, 0x40, 1, 0x08, 0x68, 0x00];
        let good = f(&gtp(0x34, 255, &chain, &ip));
        for cut in 28..good.len() {
            let v = verdict(RAW, &good[..cut]);
            assert!(
                [
                    "truncated_gtpu",
                    "truncated_ipv4",
                    "truncated_udp",
                    "packet"
                ]
                .contains(&v),
                "cut {cut}: {v}"
            );
        }
    }

    #[test]
    fn gre_over_udp() {
        let ip = ipv4_udp(b"hello");
        let ip6 = ipv6_udp(b"six");
        let mut plain = vec![0, 0, 0x08, 0x00];
        plain.extend_from_slice(&ip);
        let mut keyed = vec![0x20, 0, 0x86, 0xdd, 0, 0, 0xab, 0xcd];
        keyed.extend_from_slice(&ip6);
        let (s, d, pl, t) = udp_of(RAW, &outer_udp(49170, GRE_UDP_PORT, &plain));
        assert_eq!((s, d, pl.as_slice(), t), (1111, 2222, &b"hello"[..], 1));
        let (s, d, pl, t) = udp_of(RAW, &outer_udp(49170, GRE_UDP_PORT, &keyed));
        assert_eq!((s, d, pl.as_slice(), t), (3333, 4444, &b"six"[..], 1));
        // Only the destination port says GRE-in-UDP (the source port is entropy).
        let (_, d, _, t) = udp_of(RAW, &outer_udp(GRE_UDP_PORT, 49170, &plain));
        assert_eq!((d, t), (49170, 0));
        // Key announced but cut off.
        for cut in 4..8 {
            let f = outer_udp(49170, GRE_UDP_PORT, &keyed[..cut]);
            assert_eq!(verdict(RAW, &f), "truncated_gre", "{cut}");
        }
        // Too short for a GRE header, an unknown protocol, version 1: the port is all it
        // had in common with GRE-in-UDP, so it stays a plain datagram.
        for d in [
            &keyed[..3],
            &[0, 0, 0x12, 0x34, 1, 2][..],
            &[0, 1, 0x08, 0x00, 0x45, 0][..],
        ] {
            let (_, dp, pl, t) = udp_of(RAW, &outer_udp(49170, GRE_UDP_PORT, d));
            assert_eq!((dp, pl.as_slice(), t), (GRE_UDP_PORT, d, 0));
        }
    }

    #[test]
    fn tunnels_nested_past_the_depth_cap_stop_there() {
        // GRE-in-UDP twelve deep: the decoder follows 8 layers, then sees a datagram.
        let mut p = ipv4_udp(b"core");
        for _ in 0..12 {
            let mut g = vec![0, 0, 0x08, 0x00];
            g.extend_from_slice(&p);
            p = outer_udp(49170, GRE_UDP_PORT, &g);
        }
        let (_, d, _, tunnels) = udp_of(RAW, &p);
        assert_eq!((d, tunnels), (GRE_UDP_PORT, MAX_ENCAP_DEPTH));
        // Same with GTP-U and AYIYA.
        let mut p = ipv4_udp(b"core");
        for _ in 0..12 {
            p = outer_udp(GTPU_PORT, GTPU_PORT, &gtp(0x30, 255, &[], &p));
        }
        let (_, d, _, tunnels) = udp_of(RAW, &p);
        assert_eq!((d, tunnels), (GTPU_PORT, MAX_ENCAP_DEPTH));
        // Aruba GRE nested through 802.11 and IP-in-GRE: GRE refuses past the cap.
        let mut p = ipv4_udp(b"core");
        for _ in 0..12 {
            p = outer_ip(47, &aruba(0x8200, &wlan_ip(&p)));
        }
        assert_eq!(verdict(RAW, &p), "encap_too_deep");
    }

    fn ayiya(opcode: u8, next: u8, inner: &[u8]) -> Vec<u8> {
        let mut a = vec![0x41, 0x52, 0x10 | opcode, next, 0x67, 0x5a, 0x00, 0x00];
        a.extend_from_slice(&[0xfd; 16]);
        a.extend_from_slice(&[0x5a; 20]);
        a.extend_from_slice(inner);
        a
    }

    #[test]
    fn ayiya_forward_and_the_rest() {
        let ip = ipv4_udp(b"hello");
        let ip6 = ipv6_udp(b"six");
        for (sp, dp) in [
            (AYIYA_PORT, AYIYA_PORT),
            (40000, AYIYA_PORT),
            (AYIYA_PORT, 40000),
        ] {
            let (s, d, pl, t) = udp_of(RAW, &outer_udp(sp, dp, &ayiya(1, 41, &ip6)));
            assert_eq!((s, d, pl.as_slice(), t), (3333, 4444, &b"six"[..], 1));
            let (s, d, pl, t) = udp_of(RAW, &outer_udp(sp, dp, &ayiya(3, 4, &ip)));
            assert_eq!((s, d, pl.as_slice(), t), (1111, 2222, &b"hello"[..], 1));
        }
        // No identity and no signature: an 8-byte header.
        let mut bare = vec![0x00, 0x00, 0x01, 41, 0, 0, 0, 0];
        bare[0] = 0; // identity length 2^0 = 1 byte
        bare.push(0x77);
        bare.extend_from_slice(&ip6);
        let (_, _, pl, _) = udp_of(RAW, &outer_udp(AYIYA_PORT, AYIYA_PORT, &bare));
        assert_eq!(pl, b"six");
        // Echo request, MOTD, query: the tunnel's own signalling, a plain datagram.
        for op in [0u8, 2, 4, 5, 6, 7] {
            let a = ayiya(op, 59, &[]);
            let (_, d, pl, t) = udp_of(RAW, &outer_udp(AYIYA_PORT, AYIYA_PORT, &a));
            assert_eq!((d, pl, t), (AYIYA_PORT, a, 0), "opcode {op}");
        }
        // No next header (59) or another protocol: a plain datagram too.
        for nh in [59u8, 17, 0] {
            let a = ayiya(1, nh, &[1, 2, 3]);
            let (_, d, pl, t) = udp_of(RAW, &outer_udp(AYIYA_PORT, AYIYA_PORT, &a));
            assert_eq!((d, pl, t), (AYIYA_PORT, a, 0), "next header {nh}");
        }
        // Next header says IPv4, the packet is not: a bad IP version, counted.
        let f = outer_udp(AYIYA_PORT, AYIYA_PORT, &ayiya(1, 4, &[0x70; 40]));
        assert_eq!(verdict(RAW, &f), "bad_ip_version");
        // Shorter than the fixed 8 bytes: not AYIYA at all.
        let (_, _, _, t) = udp_of(RAW, &outer_udp(AYIYA_PORT, AYIYA_PORT, &[0x41, 0x52]));
        assert_eq!(t, 0);
        // Identity or signature cut off; an identity length of 2^15.
        let good = ayiya(1, 41, &ip6);
        for cut in 8..44 {
            let f = outer_udp(AYIYA_PORT, AYIYA_PORT, &good[..cut]);
            assert_eq!(verdict(RAW, &f), "truncated_ayiya", "{cut}");
        }
        let mut huge = good.clone();
        huge[0] = 0xf1;
        assert_eq!(
            verdict(RAW, &outer_udp(AYIYA_PORT, AYIYA_PORT, &huge)),
            "truncated_ayiya"
        );
    }

    fn wlan_ip(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0x08, 0x01, 0x2c, 0];
        f.extend_from_slice(&[
            2, 0x99, 0, 0, 0x0a, 1, 2, 0x99, 0, 0, 0, 1, 2, 0x99, 0, 0, 0, 2,
        ]);
        f.extend_from_slice(&[0x10, 0]);
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    }

    fn aruba(proto: u16, frame: &[u8]) -> Vec<u8> {
        let mut g = vec![0, 0];
        g.extend_from_slice(&proto.to_be_bytes());
        g.extend_from_slice(frame);
        g
    }

    #[test]
    fn aruba_gre_carries_802_11() {
        let ip = ipv4_udp(b"hello");
        let frame = wlan_ip(&ip);
        for proto in [0x8200u16, 0x8210, 0x82a0, 0x8370, 0x9000] {
            let (s, d, pl, t) = udp_of(RAW, &outer_ip(47, &aruba(proto, &frame)));
            assert_eq!(
                (s, d, pl.as_slice(), t),
                (1111, 2222, &b"hello"[..], 1),
                "{proto:x}"
            );
        }
        // Not an Aruba type: not IP.
        for proto in [0x8201u16, 0x8380, 0x81f0] {
            assert_eq!(verdict(RAW, &outer_ip(47, &aruba(proto, &frame))), "not_ip");
        }
        // Inside, 802.11 rules apply: encrypted and management frames are counted skips,
        // a cut header is truncated.
        let mut prot = frame.clone();
        prot[1] |= 0x40;
        assert_eq!(
            verdict(RAW, &outer_ip(47, &aruba(0x8200, &prot))),
            "wlan_protected"
        );
        let mut mgmt = frame.clone();
        mgmt[0] = 0x40; // probe request
        assert_eq!(
            verdict(RAW, &outer_ip(47, &aruba(0x8210, &mgmt))),
            "wlan_mgmt"
        );
        for cut in 0..24 {
            let g = aruba(0x8200, &frame[..cut]);
            assert_eq!(verdict(RAW, &outer_ip(47, &g)), "truncated_wlan", "{cut}");
        }
    }

    #[test]
    fn garbage_in_every_new_tunnel_never_panics() {
        for seed in 0..4000u64 {
            let body = noise(seed, (seed % 120) as usize);
            let mut gtp_like = body.clone();
            if let Some(b) = gtp_like.first_mut() {
                *b = 0x30 | (*b & 0x07);
            }
            if let Some(b) = gtp_like.get_mut(1) {
                *b = 255;
            }
            for f in [
                outer_udp(GTPU_PORT, GTPU_PORT, &gtp_like),
                outer_udp(40000, GRE_UDP_PORT, &body),
                outer_udp(AYIYA_PORT, AYIYA_PORT, &body),
                outer_ip(47, &aruba(0x8200, &body)),
            ] {
                let _ = verdict(RAW, &f);
            }
        }
    }
}
