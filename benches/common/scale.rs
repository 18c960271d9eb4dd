//! Shared by the bench targets: the deterministic scale lists of issue 3 (1,000,000 domain
//! suffixes, 200,000 CIDRs, 2,000 user-agent patterns) and the probes used to time lookups.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Deterministic pseudo-random numbers (xorshift), so every run builds the same lists.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| (b'a' + (self.next() % 26) as u8) as char)
            .collect()
    }
}

const TLDS: [&str; 8] = ["com", "net", "org", "io", "app", "dev", "xyz", "info"];

/// Writes bench.domains, bench.cidrs and bench.useragents into `dir`; returns the RNG state
/// to continue from and a sample of listed names (`www.` + every 1,000th suffix).
pub fn write_scale_lists(dir: &Path) -> (Rng, Vec<String>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("dir");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut domains = String::from("# id: 8100001\n# message: CLOUDTAP bench domains\n");
    let mut names = Vec::new();
    for i in 0..1_000_000 {
        let l1 = 4 + (rng.next() % 10) as usize;
        let d = if i % 3 == 0 {
            let l2 = 3 + (rng.next() % 8) as usize;
            format!("{}.{}.{}", rng.word(l2), rng.word(l1), TLDS[i % TLDS.len()])
        } else {
            format!("{}.{}", rng.word(l1), TLDS[i % TLDS.len()])
        };
        if i % 1000 == 0 {
            names.push(format!("www.{d}"));
        }
        domains.push_str(&d);
        domains.push('\n');
    }
    std::fs::write(dir.join("bench.domains"), domains).expect("write");
    let mut cidrs = String::from("# id: 8100002\n");
    for i in 0..200_000u64 {
        let r = rng.next();
        if i % 5 == 0 {
            cidrs.push_str(&format!(
                "2001:{:x}:{:x}::/48\n",
                (r >> 16) & 0xffff,
                r & 0xffff
            ));
        } else {
            let len = 16 + (r % 17) as u8;
            let a = Ipv4Addr::from((r >> 20) as u32);
            cidrs.push_str(&format!("{a}/{len}\n"));
        }
    }
    std::fs::write(dir.join("bench.cidrs"), cidrs).expect("write");
    let mut uas = String::from("# id: 8100003\n");
    for i in 0..2000 {
        if i % 10 == 0 {
            uas.push_str(&format!("re:^{}/[0-9]+\\.[0-9]+\n", rng.word(8)));
        } else {
            uas.push_str(&format!("{}-{}/\n", rng.word(6), rng.word(5)));
        }
    }
    std::fs::write(dir.join("bench.useragents"), uas).expect("write");
    (rng, names)
}

/// 100,000 names to look up, one in ten listed (a subdomain of a listed suffix), in one
/// contiguous buffer as they would be in packet buffers: (buffer, spans).
pub fn domain_probes(rng: &mut Rng, names: &[String]) -> (String, Vec<(usize, usize)>) {
    let mut buf = String::new();
    let mut spans = Vec::new();
    for i in 0..100_000 {
        let n = if i % 10 == 0 {
            names[i % names.len()].clone()
        } else {
            let l = 5 + (rng.next() % 8) as usize;
            format!("cdn.{}.{}", rng.word(l), TLDS[i % TLDS.len()])
        };
        spans.push((buf.len(), n.len()));
        buf.push_str(&n);
    }
    (buf, spans)
}

/// 100,000 addresses, uniformly random, one in five IPv6.
pub fn ip_probes(rng: &mut Rng) -> Vec<IpAddr> {
    (0..100_000)
        .map(|i| {
            let r = rng.next();
            if i % 5 == 0 {
                IpAddr::V6(Ipv6Addr::from((u128::from(r) << 64) | u128::from(r)))
            } else {
                IpAddr::V4(Ipv4Addr::from(r as u32))
            }
        })
        .collect()
}
