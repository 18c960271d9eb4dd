//! Decode stage: peels link layers and encapsulations down to the innermost IP packet and
//! its TCP/UDP header. Pure functions over `&[u8]`; IP fragments are returned as such and
//! reassembled by [`defrag::Defragmenter`], after which decoding resumes with
//! [`decode_ip_payload`].
//!
//! IP, TCP and UDP headers are parsed with `etherparse`. The layers etherparse does not know
//! (MPLS, PPPoE, VN-Tag, E-Tag, SLL/SLL2, BSD null, PPP, Cisco HDLC, IEEE 802.11 with its
//! radiotap/PPI/AVS/Prism radio headers, NFLOG, GRE/ERSPAN, GRE over UDP, Aruba GRE, VXLAN,
//! Geneve, GTP-U, AYIYA, Teredo) are a few bytes each and are peeled by hand in `link` and
//! `tunnel`.

pub mod defrag;
mod link;
mod tunnel;

use etherparse::{IpNumber, IpSlice, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice, UdpSlice};
use std::net::IpAddr;

pub use link::linktype_name;

/// How deep encapsulations may nest before the packet is rejected (a GRE-in-GRE bomb).
pub const MAX_ENCAP_DEPTH: u8 = 8;

/// Why a packet could not be decoded; each reason is a counter in the run summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u16),
    #[error("truncated {0} header")]
    Truncated(&'static str),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("encapsulation nested deeper than {MAX_ENCAP_DEPTH}")]
    TooDeep,
    /// Not an error: a frame that by design carries no packet we can read (an 802.11
    /// management or encrypted frame, an NFLOG message without payload). The string is
    /// the counter name itself.
    #[error("skipped: {0}")]
    Skipped(&'static str),
}

impl DecodeError {
    /// Stable counter name for the summary and stats records.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType(_) => "unsupported_linktype",
            DecodeError::Truncated(what) => match *what {
                "ethernet" => "truncated_ethernet",
                "vlan" => "truncated_vlan",
                "mpls" => "truncated_mpls",
                "pppoe" => "truncated_pppoe",
                "ipv4" => "truncated_ipv4",
                "ipv6" => "truncated_ipv6",
                "tcp" => "truncated_tcp",
                "udp" => "truncated_udp",
                "gre" => "truncated_gre",
                "erspan" => "truncated_erspan",
                "vxlan" => "truncated_vxlan",
                "geneve" => "truncated_geneve",
                "radiotap" => "truncated_radiotap",
                "ppi" => "truncated_ppi",
                "avs" => "truncated_avs",
                "prism" => "truncated_prism",
                "wlan" => "truncated_wlan",
                "llc" => "truncated_llc",
                "nflog" => "truncated_nflog",
                "gtpu" => "truncated_gtpu",
                "ayiya" => "truncated_ayiya",
                _ => "truncated_link",
            },
            DecodeError::Malformed(what) => match *what {
                "ip version" => "bad_ip_version",
                "ipv4" => "malformed_ipv4",
                "ipv6" => "malformed_ipv6",
                "tcp" => "malformed_tcp",
                "radiotap" => "malformed_radiotap",
                "ppi" => "malformed_ppi",
                "avs" => "malformed_avs",
                "prism" => "malformed_prism",
                "wlan" => "malformed_wlan",
                "nflog" => "malformed_nflog",
                "gtpu" => "malformed_gtpu",
                _ => "malformed_other",
            },
            DecodeError::TooDeep => "encap_too_deep",
            DecodeError::Skipped(reason) => reason,
        }
    }
}

/// Context gathered on the way down to the innermost IP header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encap {
    /// Outermost and second 802.1Q/802.1ad VLAN ids (0 = none).
    pub vlan: [u16; 2],
    /// Number of tunnel layers (GRE, VXLAN, ...) passed through.
    pub tunnels: u8,
}

/// Transport layer of a decoded packet.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    Tcp(TcpInfo<'a>),
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    /// Any other IP protocol: not inspected, but still a flow.
    Other(u8),
}

/// The TCP fields the flow stage needs.
#[derive(Debug, Clone, Copy)]
pub struct TcpInfo<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// A fully decoded, unfragmented packet.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
    pub encap: Encap,
}

/// One IP fragment, to be reassembled before its payload can be decoded.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
    /// Offset of this fragment's payload in bytes.
    pub offset: u32,
    pub more: bool,
    pub payload: &'a [u8],
    pub encap: Encap,
    /// Encapsulation depth reached when the fragment was found.
    pub depth: u8,
}

#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Packet(Decoded<'a>),
    Fragment(Fragment<'a>),
    /// Not IP (ARP, LLDP, STP, ...): counted, not an error.
    NotIp,
}

/// The reader's shortcut to a packet's worker: for the common case of an unfragmented TCP
/// segment or UDP datagram (outside the tunnel ports) in IPv4 or IPv6 (no extension
/// headers) straight over Ethernet, the address pair read in place, which is what
/// [`decode`] would find as the innermost pair. Anything else (VLANs, tunnels, UDP that may
/// carry one, fragments) returns `None` and takes the full decoder, so the choice is always
/// the same as the worker's.
#[inline]
pub fn fast_shard(linktype: u16, f: &[u8]) -> Option<u64> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if linktype != 1 {
        return None;
    }
    let ip = f.get(14..)?;
    // TCP, or UDP between ports that never carry a tunnel (the decoder would look inside
    // those, and shard on the inner pair); the ports sit at the same offsets in both.
    let plain = |proto: u8, l4: &[u8]| match proto {
        6 => true,
        17 => match l4.get(..4) {
            Some(p) => !tunnel::udp_may_tunnel(
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ),
            None => false,
        },
        _ => false,
    };
    match f.get(12..14)? {
        [0x08, 0x00] => {
            let h = ip.get(..20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            // version 4, not a fragment (MF clear, offset 0)
            if h[0] >> 4 != 4 || ihl < 20 || (h[6] & 0x3f) != 0 || h[7] != 0 {
                return None;
            }
            if !plain(h[9], ip.get(ihl..)?) {
                return None;
            }
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            Some(crate::flow::shard_hash(src.into(), dst.into()))
        }
        [0x86, 0xdd] => {
            let h = ip.get(..40)?;
            if h[0] >> 4 != 6 || !plain(h[6], ip.get(40..)?) {
                return None;
            }
            let a: [u8; 16] = h[8..24].try_into().ok()?;
            let b: [u8; 16] = h[24..40].try_into().ok()?;
            Some(crate::flow::shard_hash(
                Ipv6Addr::from(a).into(),
                Ipv6Addr::from(b).into(),
            ))
        }
        _ => None,
    }
}

/// Decodes a captured frame of the given LINKTYPE down to its innermost IP packet.
pub fn decode(linktype: u16, frame: &[u8]) -> Result<Outcome<'_>, DecodeError> {
    let mut encap = Encap::default();
    match link::strip(linktype, frame, &mut encap, 0)? {
        Some(ip) => decode_ip(ip, encap, 0),
        None => Ok(Outcome::NotIp),
    }
}

/// Decodes an IP packet (v4 or v6, chosen by its version nibble).
pub(crate) fn decode_ip(data: &[u8], encap: Encap, depth: u8) -> Result<Outcome<'_>, DecodeError> {
    if depth > MAX_ENCAP_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let version = data.first().map(|b| b >> 4);
    let ip = match IpSlice::from_slice(data) {
        Ok(ip) => ip,
        Err(_) => {
            // A capture cut by a snap length (tcpdump -s) holds less than the IP length
            // says: its headers still name the flow, and its wire length still counts.
            if let Some(o) = truncated_ip(data, encap, depth) {
                return o;
            }
            return Err(match version {
                Some(4) if data.len() < 20 => DecodeError::Truncated("ipv4"),
                Some(4) => DecodeError::Malformed("ipv4"),
                Some(6) if data.len() < 40 => DecodeError::Truncated("ipv6"),
                Some(6) => DecodeError::Malformed("ipv6"),
                None => DecodeError::Truncated("ipv4"),
                _ => DecodeError::Malformed("ip version"),
            });
        }
    };
    let (src, dst): (IpAddr, IpAddr) = match &ip {
        IpSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        IpSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
    };
    let payload = ip.payload();
    let proto = payload.ip_number.0;
    if payload.fragmented {
        let (id, offset, more) = match &ip {
            IpSlice::Ipv4(v4) => {
                let h = v4.header();
                (
                    u32::from(h.identification()),
                    u32::from(h.fragments_offset().value()) * 8,
                    h.more_fragments(),
                )
            }
            IpSlice::Ipv6(v6) => {
                let mut found = None;
                for ext in v6.extensions().clone() {
                    if let Ipv6ExtensionSlice::Fragment(f) = ext {
                        found = Some((
                            f.identification(),
                            u32::from(f.fragment_offset().value()) * 8,
                            f.more_fragments(),
                        ));
                    }
                }
                found.ok_or(DecodeError::Malformed("ipv6"))?
            }
        };
        return Ok(Outcome::Fragment(Fragment {
            src,
            dst,
            id,
            proto,
            offset,
            more,
            payload: payload.payload,
            encap,
            depth,
        }));
    }
    decode_ip_payload(src, dst, proto, payload.payload, encap, depth)
}

/// An unfragmented IP packet whose captured bytes end before its stated length, decoded
/// from what was captured; `None` when it is anything else (the caller's error stands).
fn truncated_ip(data: &[u8], encap: Encap, depth: u8) -> Option<Result<Outcome<'_>, DecodeError>> {
    let (ip, _) = LaxIpSlice::from_slice(data).ok()?;
    let payload = ip.payload();
    if !payload.incomplete || payload.fragmented {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = match &ip {
        LaxIpSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        LaxIpSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
    };
    Some(decode_ip_payload(
        src,
        dst,
        payload.ip_number.0,
        payload.payload,
        encap,
        depth,
    ))
}

/// Decodes what follows an IP header (after reassembly, if it was fragmented).
pub fn decode_ip_payload(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    mut encap: Encap,
    depth: u8,
) -> Result<Outcome<'_>, DecodeError> {
    match IpNumber(proto) {
        IpNumber::TCP => {
            let tcp = TcpSlice::from_slice(payload).map_err(|_| {
                if payload.len() < 20 {
                    DecodeError::Truncated("tcp")
                } else {
                    DecodeError::Malformed("tcp")
                }
            })?;
            Ok(Outcome::Packet(Decoded {
                src,
                dst,
                transport: Transport::Tcp(TcpInfo {
                    sport: tcp.source_port(),
                    dport: tcp.destination_port(),
                    seq: tcp.sequence_number(),
                    ack: tcp.acknowledgment_number(),
                    syn: tcp.syn(),
                    ack_flag: tcp.ack(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    payload: tcp.payload(),
                }),
                encap,
            }))
        }
        IpNumber::UDP => {
            // Lax: a UDP length that disagrees with the IP length is common on taps
            // (padding, snaplen); use what is there.
            let udp =
                UdpSlice::from_slice_lax(payload).map_err(|_| DecodeError::Truncated("udp"))?;
            let (sport, dport) = (udp.source_port(), udp.destination_port());
            let data = udp.payload();
            if let Some(inner) = tunnel::udp(sport, dport, data, encap, depth) {
                return inner;
            }
            Ok(Outcome::Packet(Decoded {
                src,
                dst,
                transport: Transport::Udp {
                    sport,
                    dport,
                    payload: data,
                },
                encap,
            }))
        }
        IpNumber::IPV4 | IpNumber::IPV6 => {
            encap.tunnels += 1;
            decode_ip(payload, encap, depth + 1)
        }
        IpNumber::GRE => tunnel::gre(payload, encap, depth),
        _ => Ok(Outcome::Packet(Decoded {
            src,
            dst,
            transport: Transport::Other(proto),
            encap,
        })),
    }
}

/// Packets for the decoder tests, built field by field.
#[cfg(test)]
pub(crate) mod testpkt {
    use super::{decode, DecodeError, Outcome, Transport};

    /// An IPv4/UDP packet 10.0.0.1:1111 -> 10.0.0.2:2222 carrying `payload` (checksums 0:
    /// the decoder does not verify them).
    pub fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&1111u16.to_be_bytes());
        p.extend_from_slice(&2222u16.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// An IPv6/UDP packet fd00::1:3333 -> fd00::2:4444 carrying `payload`.
    pub fn ipv6_udp(payload: &[u8]) -> Vec<u8> {
        let plen = (8 + payload.len()) as u16;
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&plen.to_be_bytes());
        p.extend_from_slice(&[17, 64]);
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = 1;
        p.extend_from_slice(&a);
        a[15] = 2;
        p.extend_from_slice(&a);
        p.extend_from_slice(&3333u16.to_be_bytes());
        p.extend_from_slice(&4444u16.to_be_bytes());
        p.extend_from_slice(&plen.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// An outer IPv4/UDP datagram 192.0.2.1 -> 192.0.2.2 between the given ports.
    pub fn outer_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = ipv4_udp(payload);
        p[12..20].copy_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p
    }

    /// An outer IPv4 packet of protocol `proto` carrying `payload`.
    pub fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![
            0x45, 0, 0, 0, 0, 2, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// The decoded UDP packet's (source port, destination port, payload, tunnels); panics
    /// with the outcome when it is anything else.
    pub fn udp_of(lt: u16, frame: &[u8]) -> (u16, u16, Vec<u8>, u8) {
        match decode(lt, frame) {
            Ok(Outcome::Packet(d)) => match d.transport {
                Transport::Udp {
                    sport,
                    dport,
                    payload,
                } => (sport, dport, payload.to_vec(), d.encap.tunnels),
                other => panic!("not UDP: {other:?}"),
            },
            other => panic!("not a packet: {other:?}"),
        }
    }

    /// The counter name of a decode failure, "not_ip" for a non-IP frame, "packet" for a
    /// decoded one.
    pub fn verdict(lt: u16, frame: &[u8]) -> &'static str {
        match decode(lt, frame) {
            Ok(Outcome::Packet(_)) | Ok(Outcome::Fragment(_)) => "packet",
            Ok(Outcome::NotIp) => "not_ip",
            Err(e) => DecodeError::reason(&e),
        }
    }

    /// Deterministic pseudo-random bytes (xorshift), for garbage-input loops.
    pub fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }
}
