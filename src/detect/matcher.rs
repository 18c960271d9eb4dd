//! Compiled matchers. Built once per signature set; matching allocates nothing unless a
//! regex matches.

use super::{Field, Signature};
use aho_corasick::AhoCorasick;
use regex::RegexSet;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Suffix,
    Substring,
    Regex,
    Cidr,
}

/// One value of one signature, as compiled.
#[derive(Debug, Clone)]
struct Entry {
    sig: u32,
    fields: u8,
    pattern: Box<str>,
}

/// A signature value that matched.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'r> {
    pub sig: &'r Signature,
    /// The signature value (pattern) that matched, as written in the pack.
    pub pattern: &'r str,
}

/// Longest name we normalise on the stack (DNS names are at most 253 characters).
const MAX_NAME: usize = 256;

/// Lower-cases a domain and strips one trailing dot, into `buf`. `None` if too long.
pub fn normalize_domain<'b>(name: &str, buf: &'b mut [u8; MAX_NAME]) -> Option<&'b str> {
    let n = name.strip_suffix('.').unwrap_or(name).as_bytes();
    if n.len() > MAX_NAME {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(n) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(&buf[..n.len()]).ok()
}

/// Parses `addr/len` or a bare address into (family-tagged network as u128, prefix length).
pub fn parse_cidr(v: &str) -> Result<(bool, u128, u8), String> {
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not an IP address or CIDR prefix"))?;
    let (v4, bits, max) = match ip {
        IpAddr::V4(a) => (true, u128::from(u32::from(a)), 32u8),
        IpAddr::V6(a) => (false, u128::from(a), 128u8),
    };
    let len = match len {
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{v:?}: prefix length must be 0 to {max}"))?,
        None => max,
    };
    Ok((v4, mask(bits, len, max), len))
}

fn mask(bits: u128, len: u8, max: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let shift = u32::from(max - len);
        (bits >> shift) << shift
    }
}

#[derive(Default)]
pub struct Builder {
    sigs: Vec<Signature>,
    exact_domain: FxHashMap<Box<str>, Vec<Entry>>,
    suffix: FxHashMap<Box<str>, Vec<Entry>>,
    exact_raw: FxHashMap<Box<str>, Vec<Entry>>,
    substrings: Vec<Entry>,
    regexes: Vec<Entry>,
    cidrs: Vec<(bool, u128, u8, Entry)>,
}

impl Builder {
    pub fn add_signature(&mut self, s: Signature) -> u32 {
        self.sigs.push(s);
        (self.sigs.len() - 1) as u32
    }

    pub fn add_value(
        &mut self,
        sig: u32,
        kind: MatchKind,
        fields: u8,
        v: &str,
    ) -> Result<(), String> {
        let entry = Entry {
            sig,
            fields,
            pattern: v.into(),
        };
        let domain_mask = fields
            & (Field::DnsQuery.bit()
                | Field::DnsAnswer.bit()
                | Field::TlsSni.bit()
                | Field::HttpHost.bit());
        let raw_mask = fields & !domain_mask;
        match kind {
            MatchKind::Exact => {
                if domain_mask != 0 {
                    let mut buf = [0u8; MAX_NAME];
                    let n = normalize_domain(v, &mut buf).ok_or("name too long")?;
                    self.exact_domain.entry(n.into()).or_default().push(Entry {
                        fields: domain_mask,
                        ..entry.clone()
                    });
                }
                if raw_mask != 0 {
                    self.exact_raw.entry(v.into()).or_default().push(Entry {
                        fields: raw_mask,
                        ..entry
                    });
                }
            }
            MatchKind::Suffix => {
                let mut buf = [0u8; MAX_NAME];
                let n = normalize_domain(v, &mut buf).ok_or("name too long")?;
                self.suffix.entry(n.into()).or_default().push(entry);
            }
            MatchKind::Substring => self.substrings.push(entry),
            MatchKind::Regex => {
                // Compile alone first, for a precise per-value error message.
                regex::Regex::new(v).map_err(|e| format!("bad regex {v:?}: {e}"))?;
                self.regexes.push(entry);
            }
            MatchKind::Cidr => {
                let (v4, net, len) = parse_cidr(v)?;
                self.cidrs.push((v4, net, len, entry));
            }
        }
        Ok(())
    }

    pub fn build(self) -> Result<Ruleset, String> {
        let ac = if self.substrings.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::new(self.substrings.iter().map(|e| e.pattern.as_bytes()))
                    .map_err(|e| format!("substring automaton: {e}"))?,
            )
        };
        let set = if self.regexes.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(self.regexes.iter().map(|e| &*e.pattern))
                    .map_err(|e| format!("regex set: {e}"))?,
            )
        };
        let mut v4: FxHashMap<u8, FxHashMap<u128, Vec<Entry>>> = FxHashMap::default();
        let mut v6: FxHashMap<u8, FxHashMap<u128, Vec<Entry>>> = FxHashMap::default();
        for (is4, net, len, e) in self.cidrs {
            let t = if is4 { &mut v4 } else { &mut v6 };
            t.entry(len).or_default().entry(net).or_default().push(e);
        }
        let sort = |m: FxHashMap<u8, FxHashMap<u128, Vec<Entry>>>| {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by_key(|e| std::cmp::Reverse(e.0));
            v
        };
        Ok(Ruleset {
            sigs: self.sigs,
            exact_domain: self.exact_domain,
            suffix: self.suffix,
            exact_raw: self.exact_raw,
            ac,
            substrings: self.substrings,
            set,
            regexes: self.regexes,
            cidr4: sort(v4),
            cidr6: sort(v6),
        })
    }
}

/// The compiled signature set.
pub struct Ruleset {
    sigs: Vec<Signature>,
    exact_domain: FxHashMap<Box<str>, Vec<Entry>>,
    suffix: FxHashMap<Box<str>, Vec<Entry>>,
    exact_raw: FxHashMap<Box<str>, Vec<Entry>>,
    ac: Option<AhoCorasick>,
    substrings: Vec<Entry>,
    set: Option<RegexSet>,
    regexes: Vec<Entry>,
    cidr4: Vec<(u8, FxHashMap<u128, Vec<Entry>>)>,
    cidr6: Vec<(u8, FxHashMap<u128, Vec<Entry>>)>,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("signatures", &self.sigs.len())
            .finish()
    }
}

impl Ruleset {
    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    /// Whether any signature looks at `field` (lets the caller skip work).
    pub fn wants(&self, field: Field) -> bool {
        let b = field.bit();
        let any =
            |m: &FxHashMap<Box<str>, Vec<Entry>>| m.values().flatten().any(|e| e.fields & b != 0);
        any(&self.exact_domain)
            || any(&self.suffix)
            || any(&self.exact_raw)
            || self.substrings.iter().any(|e| e.fields & b != 0)
            || self.regexes.iter().any(|e| e.fields & b != 0)
            || (field == Field::IpDst && !(self.cidr4.is_empty() && self.cidr6.is_empty()))
    }

    fn push<'r>(&'r self, entries: &'r [Entry], bit: u8, out: &mut Vec<Hit<'r>>) {
        for e in entries {
            if e.fields & bit != 0 {
                out.push(Hit {
                    sig: &self.sigs[e.sig as usize],
                    pattern: &e.pattern,
                });
            }
        }
    }

    /// Appends every signature value matching `value` in `field`, most specific domain
    /// match first (exact, then the longest suffix), then substrings and regexes.
    pub fn match_str<'r>(&'r self, field: Field, value: &str, out: &mut Vec<Hit<'r>>) {
        let bit = field.bit();
        let mut buf = [0u8; MAX_NAME];
        let subject = if field.is_domain() {
            let Some(n) = normalize_domain(value, &mut buf) else {
                return;
            };
            if let Some(es) = self.exact_domain.get(n) {
                self.push(es, bit, out);
            }
            // Walk label boundaries from the full name to the last label.
            let mut rest = n;
            loop {
                if let Some(es) = self.suffix.get(rest) {
                    self.push(es, bit, out);
                }
                match rest.find('.') {
                    Some(i) => rest = &rest[i + 1..],
                    None => break,
                }
            }
            n
        } else {
            if let Some(es) = self.exact_raw.get(value) {
                self.push(es, bit, out);
            }
            value
        };
        if let Some(ac) = &self.ac {
            let first = out.len();
            for m in ac.find_overlapping_iter(subject) {
                let e = &self.substrings[m.pattern().as_usize()];
                if e.fields & bit != 0
                    && !out[first..]
                        .iter()
                        .any(|h| std::ptr::eq(h.pattern, &*e.pattern))
                {
                    self.push(std::slice::from_ref(e), bit, out);
                }
            }
        }
        if let Some(set) = &self.set {
            if set.is_match(subject) {
                for i in set.matches(subject).iter() {
                    self.push(std::slice::from_ref(&self.regexes[i]), bit, out);
                }
            }
        }
    }

    /// Appends every CIDR entry containing `ip` (destination address), longest prefix first.
    pub fn match_ip<'r>(&'r self, ip: IpAddr, out: &mut Vec<Hit<'r>>) {
        let (tables, bits, max) = match ip {
            IpAddr::V4(a) => (&self.cidr4, u128::from(u32::from(a)), 32u8),
            IpAddr::V6(a) => (&self.cidr6, u128::from(a), 128u8),
        };
        for (len, t) in tables {
            if let Some(es) = t.get(&mask(bits, *len, max)) {
                self.push(es, Field::IpDst.bit(), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pack::load_texts;
    use super::*;

    fn rs(sigs: &str) -> Ruleset {
        let text = format!(
            "[pack]\nformat = 1\nname = \"t\"\nversion = \"1\"\ndescription = \"d\"\n{sigs}"
        );
        load_texts(&[("t.toml".into(), text)]).expect("valid")
    }

    fn ids(r: &Ruleset, f: Field, v: &str) -> Vec<u32> {
        let mut out = vec![];
        r.match_str(f, v, &mut out);
        out.iter().map(|h| h.sig.id).collect()
    }

    #[test]
    fn domain_semantics() {
        let r = rs(r#"
[[signature]]
id = 1
rev = 1
msg = "suffix"
fields = ["dns.query", "tls.sni"]
match = "suffix"
values = ["pastebin.com"]
[[signature]]
id = 2
rev = 1
msg = "exact"
fields = ["dns.query"]
match = "exact"
values = ["api.telegram.org."]
"#);
        assert_eq!(ids(&r, Field::DnsQuery, "pastebin.com"), vec![1]);
        assert_eq!(ids(&r, Field::DnsQuery, "X.PasteBin.COM."), vec![1]);
        assert!(ids(&r, Field::DnsQuery, "badpastebin.com").is_empty());
        assert!(ids(&r, Field::DnsQuery, "pastebin.com.evil.net").is_empty());
        assert!(
            ids(&r, Field::HttpHost, "pastebin.com").is_empty(),
            "field not listed"
        );
        assert_eq!(ids(&r, Field::DnsQuery, "API.telegram.org"), vec![2]);
        assert!(ids(&r, Field::DnsQuery, "x.api.telegram.org").is_empty());
    }

    #[test]
    fn agents_and_cidrs() {
        let r = rs(r#"
[[signature]]
id = 3
rev = 1
msg = "ua"
fields = ["http.user_agent"]
match = "regex"
values = ["^curl/"]
[[signature]]
id = 4
rev = 1
msg = "ua2"
fields = ["http.user_agent"]
match = "substring"
values = ["python-requests/"]
[[signature]]
id = 5
rev = 1
msg = "net"
fields = ["ip.dst"]
match = "cidr"
values = ["52.0.0.0/8", "2600:1f00::/24", "1.2.3.4"]
"#);
        assert_eq!(ids(&r, Field::HttpUserAgent, "curl/8.5.0"), vec![3]);
        assert!(ids(&r, Field::HttpUserAgent, "Mozilla/5.0 curl/8").is_empty());
        assert_eq!(
            ids(&r, Field::HttpUserAgent, "python-requests/2.31.0"),
            vec![4]
        );
        let ip = |s: &str| {
            let mut out = vec![];
            r.match_ip(s.parse().expect("ip"), &mut out);
            out.len()
        };
        assert_eq!(ip("52.95.1.1"), 1);
        assert_eq!(ip("53.0.0.1"), 0);
        assert_eq!(ip("2600:1f18::1"), 1);
        assert_eq!(ip("1.2.3.4"), 1);
        assert_eq!(ip("1.2.3.5"), 0);
    }
}
