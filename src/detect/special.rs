//! IANA's special-purpose address ranges (the IPv4 and IPv6 Special-Purpose Address
//! Registries, RFC 6890 and its updates, plus multicast and the reserved class E space).
//!
//! Rule: a provider's published list is data, not truth. An entry inside one of these
//! ranges (documentation, private, loopback, link-local, multicast, ...) names no web
//! service on the Internet, and keeping it would make a lab's 192.0.2.1 or a LAN's 10.0.0.1
//! "Vultr". Such entries are dropped at load; an entry that merely contains one keeps its
//! other addresses (it is carved around the special range), and `signatures check` warns.
//! Leaf module: depends on nothing in the crate.

/// (IPv4 network, prefix length, what it is).
const V4: [(u32, u8, &str); 19] = [
    (0x0000_0000, 8, "this network"),
    (0x0a00_0000, 8, "private-use"),
    (0x6440_0000, 10, "shared address space"),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local"),
    (0xac10_0000, 12, "private-use"),
    (0xc000_0000, 24, "IETF protocol assignments"),
    (0xc000_0200, 24, "documentation (TEST-NET-1)"),
    (0xc01f_c400, 24, "AS112-v4"),
    (0xc034_c100, 24, "AMT"),
    (0xc058_6300, 24, "deprecated 6to4 relay anycast"),
    (0xc0a8_0000, 16, "private-use"),
    (0xc0af_3000, 24, "direct delegation AS112"),
    (0xc612_0000, 15, "benchmarking"),
    (0xc633_6400, 24, "documentation (TEST-NET-2)"),
    (0xcb00_7100, 24, "documentation (TEST-NET-3)"),
    (0xe000_0000, 4, "multicast"),
    (0xf000_0000, 4, "reserved"),
    (0xffff_ffff, 32, "limited broadcast"),
];

/// (IPv6 network as u128, prefix length, what it is).
const V6: [(u128, u8, &str); 16] = [
    (0, 128, "unspecified"),
    (1, 128, "loopback"),
    (0xffff_0000_0000, 96, "IPv4-mapped"),
    (
        0x0064_ff9b_0000_0000_0000_0000_0000_0000,
        96,
        "IPv4-IPv6 translation",
    ),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "local-use IPv4-IPv6 translation",
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "discard-only",
    ),
    (
        0x2001_0000_0000_0000_0000_0000_0000_0000,
        23,
        "IETF protocol assignments",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation",
    ),
    (0x2002_0000_0000_0000_0000_0000_0000_0000, 16, "6to4"),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "documentation",
    ),
    (
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        "segment routing SIDs",
    ),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique-local"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local"),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "site-local (deprecated)",
    ),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
    (
        0x0000_0000_0000_0000_0000_0000_0000_0000,
        8,
        "reserved by IETF (::/8)",
    ),
];

fn masked(bits: u128, len: u8, max: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let shift = u32::from(max - len);
        (bits >> shift) << shift
    }
}

/// Whether `a/alen` lies inside `b/blen` (same family, `max` bits).
fn within(a: u128, alen: u8, b: u128, blen: u8, max: u8) -> bool {
    alen >= blen && masked(a, blen, max) == b
}

/// The registry of one family, as (network, length, what). ::/8 holds the unspecified,
/// loopback and mapped ranges; listing them too names them precisely in warnings (the first
/// range that covers an entry is named). No allocation: this runs for every imported range.
fn table(v4: bool) -> impl Iterator<Item = (u128, u8, &'static str)> + Clone {
    let a = V4
        .iter()
        .filter(move |_| v4)
        .map(|&(n, l, w)| (u128::from(n), l, w));
    let b = V6.iter().filter(move |_| !v4).copied();
    a.chain(b)
}

/// What happens to one provider range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No special-purpose address in it.
    Keep,
    /// Wholly inside a special-purpose range (named).
    Drop(&'static str),
    /// Contains special-purpose ranges (named): keep these parts, `(network, length)`.
    Carve(Vec<(u128, u8)>, Vec<&'static str>),
}

/// Checks a range already parsed and masked (see `matcher::parse_cidr`).
pub fn check(v4: bool, net: u128, len: u8) -> Verdict {
    let max = if v4 { 32 } else { 128 };
    // The common case first, with plain loops (this runs for each of the ~120,000 ranges
    // the bundled packs import): no special range overlaps the entry.
    let overlaps = |n: u128, l: u8| within(net, len, n, l, max) || within(n, l, net, len, max);
    let any = if v4 {
        V4.iter().any(|&(n, l, _)| overlaps(u128::from(n), l))
    } else {
        V6.iter().any(|&(n, l, _)| overlaps(n, l))
    };
    if !any {
        return Verdict::Keep;
    }
    let specials = table(v4);
    if let Some(s) = specials.clone().find(|s| within(net, len, s.0, s.1, max)) {
        return Verdict::Drop(s.2);
    }
    if !specials.clone().any(|s| within(s.0, s.1, net, len, max)) {
        return Verdict::Keep;
    }
    let inside: Vec<(u128, u8, &str)> = specials
        .clone()
        .filter(|s| within(s.0, s.1, net, len, max))
        .collect();
    // Split in halves until each half is clear of every special range or wholly inside
    // one (then dropped). Depth is bounded by the address width; the number of pieces by
    // (special ranges inside) x (width), at most a few hundred.
    let mut keep = Vec::new();
    let mut work = vec![(net, len)];
    while let Some((n, l)) = work.pop() {
        if specials.clone().any(|s| within(n, l, s.0, s.1, max)) {
            continue;
        }
        if !inside.iter().any(|s| within(s.0, s.1, n, l, max)) {
            keep.push((n, l));
            continue;
        }
        if l >= max {
            continue;
        }
        let bit = 1u128 << (u32::from(max - l) - 1);
        work.push((n | bit, l + 1));
        work.push((n, l + 1));
    }
    keep.sort_unstable();
    let mut names: Vec<&'static str> = inside.iter().map(|s| s.2).collect();
    names.dedup();
    Verdict::Carve(keep, names)
}

/// Text form of a carved piece, as `parse_cidr` reads it.
pub fn cidr_text(v4: bool, net: u128, len: u8) -> String {
    if v4 {
        format!("{}/{len}", std::net::Ipv4Addr::from(net as u32))
    } else {
        format!("{}/{len}", std::net::Ipv6Addr::from(net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> (u128, u8) {
        let (a, l) = s.split_once('/').unwrap();
        let a: std::net::Ipv4Addr = a.parse().unwrap();
        (u128::from(u32::from(a)), l.parse().unwrap())
    }

    #[test]
    fn documentation_and_private_ranges_are_dropped() {
        let (n, l) = v4("192.0.2.0/24");
        assert_eq!(
            check(true, n, l),
            Verdict::Drop("documentation (TEST-NET-1)")
        );
        let (n, l) = v4("10.1.2.0/24");
        assert_eq!(check(true, n, l), Verdict::Drop("private-use"));
        let (n, l) = v4("224.0.0.251/32");
        assert_eq!(check(true, n, l), Verdict::Drop("multicast"));
        let doc6 = u128::from("2001:db8:1::".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(check(false, doc6, 48), Verdict::Drop("documentation"));
        let ula = u128::from("fd00::".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(check(false, ula, 8), Verdict::Drop("unique-local"));
    }

    #[test]
    fn public_ranges_are_kept() {
        for s in [
            "3.5.140.0/22",
            "8.8.8.0/24",
            "192.0.3.0/24",
            "198.20.0.0/16",
            "1.1.1.1/32",
        ] {
            let (n, l) = v4(s);
            assert_eq!(check(true, n, l), Verdict::Keep, "{s}");
        }
        let aws6 = u128::from("2600:1f00::".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(check(false, aws6, 24), Verdict::Keep);
    }

    #[test]
    fn a_wide_range_is_carved_around_the_special_one() {
        // 192.0.0.0/22 holds 192.0.0.0/24 (IETF) and 192.0.2.0/24 (documentation).
        let (n, l) = v4("192.0.0.0/22");
        let Verdict::Carve(keep, names) = check(true, n, l) else {
            panic!("expected a carve")
        };
        let texts: Vec<String> = keep.iter().map(|&(n, l)| cidr_text(true, n, l)).collect();
        assert_eq!(texts, ["192.0.1.0/24", "192.0.3.0/24"]);
        assert_eq!(names.len(), 2);
        // Every address of the original is either kept or special, never both.
        for last in 0..=3u32 {
            let a = u128::from(0xc000_0000u32 | (last << 8) | 7);
            let kept = keep.iter().any(|&(n, l)| within(a, 32, n, l, 32));
            let special = V4.iter().any(|s| within(a, 32, u128::from(s.0), s.1, 32));
            assert!(kept != special, "192.0.{last}.7");
        }
    }

    #[test]
    fn the_whole_space_keeps_only_public_addresses() {
        let Verdict::Carve(keep, _) = check(true, 0, 0) else {
            panic!("0.0.0.0/0 contains special ranges")
        };
        for probe in [
            0x0808_0808u32,
            0xc000_0201,
            0x0a00_0001,
            0x6440_0001,
            0xdfff_ffff,
        ] {
            let a = u128::from(probe);
            let kept = keep.iter().any(|&(n, l)| within(a, 32, n, l, 32));
            let special = V4.iter().any(|s| within(a, 32, u128::from(s.0), s.1, 32));
            assert_eq!(kept, !special, "{probe:#x}");
        }
        assert!(keep.len() < 200, "{} pieces", keep.len());
    }
}
