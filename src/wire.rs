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
}
