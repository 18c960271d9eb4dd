//! Leaf primitives shared by several stages (no imports from the rest of the crate).

use std::net::IpAddr;

/// An address range, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    v4: bool,
    net: u128,
    len: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, l) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let ip: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR"))?;
        let (v4, bits, max) = split(ip);
        let len = match l {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr {
            v4,
            net: bits & mask(len, max),
            len,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, bits, max) = split(ip);
        v4 == self.v4 && bits & mask(self.len, max) == self.net
    }
}

/// Whether `ip` is in any of `set`.
pub fn in_any(set: &[Cidr], ip: IpAddr) -> bool {
    set.iter().any(|c| c.contains(ip))
}

fn split(ip: IpAddr) -> (bool, u128, u8) {
    match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (false, u128::from(a), 128),
    }
}

fn mask(len: u8, max: u8) -> u128 {
    let full: u128 = if max == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    if len == 0 {
        0
    } else {
        full & !(full >> len)
    }
}

/// A pcap/pcapng LINKTYPE_* value (tcpdump.org/linktypes.html). Named so that a decoder
/// matches on meaning, not on a bare number; anything else is kept as `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// 0: BSD loopback, 4-byte address family in the writer's byte order.
    Null,
    /// 1: Ethernet II.
    Ethernet,
    /// 9: PPP.
    Ppp,
    /// 12 and 14: raw IP (OpenBSD / other BSD numbers).
    RawBsd(u16),
    /// 50: PPP in HDLC framing.
    PppHdlc,
    /// 51: PPPoE session header, then PPP.
    PppEther,
    /// 101: raw IP.
    Raw,
    /// 104: Cisco HDLC.
    CHdlc,
    /// 105: IEEE 802.11 without a radio header.
    Ieee80211,
    /// 108: OpenBSD loopback, family in network order.
    Loop,
    /// 113: Linux cooked capture v1.
    LinuxSll,
    /// 119: Prism monitor-mode header, then 802.11.
    Prism,
    /// 127: radiotap header, then 802.11.
    Radiotap,
    /// 163: AVS monitor-mode header, then 802.11.
    Avs,
    /// 192: Per-Packet Information header, then the frame of its own link type.
    Ppi,
    /// 228: raw IPv4.
    Ipv4,
    /// 229: raw IPv6.
    Ipv6,
    /// 239: Linux netfilter NFLOG messages.
    Nflog,
    /// 276: Linux cooked capture v2.
    LinuxSll2,
    Unknown(u16),
}

impl LinkType {
    pub fn from_u16(n: u16) -> LinkType {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 => LinkType::Ppp,
            12 | 14 => LinkType::RawBsd(n),
            50 => LinkType::PppHdlc,
            51 => LinkType::PppEther,
            101 => LinkType::Raw,
            104 => LinkType::CHdlc,
            105 => LinkType::Ieee80211,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            119 => LinkType::Prism,
            127 => LinkType::Radiotap,
            163 => LinkType::Avs,
            192 => LinkType::Ppi,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            239 => LinkType::Nflog,
            276 => LinkType::LinuxSll2,
            other => LinkType::Unknown(other),
        }
    }

    pub fn number(self) -> u16 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::RawBsd(n) | LinkType::Unknown(n) => n,
            LinkType::PppHdlc => 50,
            LinkType::PppEther => 51,
            LinkType::Raw => 101,
            LinkType::CHdlc => 104,
            LinkType::Ieee80211 => 105,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Prism => 119,
            LinkType::Radiotap => 127,
            LinkType::Avs => 163,
            LinkType::Ppi => 192,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Nflog => 239,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// An ethertype (also GRE's protocol type and the type of an LLC/SNAP header) that the
/// decoder acts on; anything else is `Unknown(n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Ipv6,
    /// 802.1Q tag.
    Vlan,
    /// 802.1ad outer tag (0x88a8) and the pre-standard 0x9100.
    QinQ,
    MplsUnicast,
    MplsMulticast,
    PppoeSession,
    /// Cisco VN-Tag (0x8926).
    VnTag,
    /// 802.1BR E-Tag (0x893f).
    ETag,
    /// Transparent Ethernet bridging (0x6558): a whole Ethernet frame follows.
    Teb,
    Unknown(u16),
}

impl EtherType {
    pub fn from_u16(n: u16) -> EtherType {
        match n {
            0x0800 => EtherType::Ipv4,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 | 0x9100 => EtherType::QinQ,
            0x8847 => EtherType::MplsUnicast,
            0x8848 => EtherType::MplsMulticast,
            0x8864 => EtherType::PppoeSession,
            0x8926 => EtherType::VnTag,
            0x893f => EtherType::ETag,
            0x6558 => EtherType::Teb,
            other => EtherType::Unknown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c = Cidr::parse("10.99.9.0/24").unwrap();
        assert!(c.contains("10.99.9.5".parse().unwrap()));
        assert!(!c.contains("10.99.8.5".parse().unwrap()));
        assert!(!c.contains("::ffff:10.99.9.5".parse().unwrap()));
        let six = Cidr::parse("fc00::/7").unwrap();
        assert!(six.contains("fd99::1".parse().unwrap()));
        assert!(!six.contains("fe80::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("10.1.2.3")
            .unwrap()
            .contains("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn link_types_round_trip_and_unknown_is_kept() {
        for n in 0..=u16::MAX {
            assert_eq!(LinkType::from_u16(n).number(), n);
        }
        assert_eq!(LinkType::from_u16(127), LinkType::Radiotap);
        assert_eq!(LinkType::from_u16(239), LinkType::Nflog);
        assert_eq!(LinkType::from_u16(147), LinkType::Unknown(147));
        assert_eq!(EtherType::from_u16(0x9100), EtherType::QinQ);
        assert_eq!(EtherType::from_u16(0x0806), EtherType::Unknown(0x0806));
    }
}
