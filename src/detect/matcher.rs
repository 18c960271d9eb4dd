//! Compiled matchers. Built once per signature set; matching allocates nothing unless a
//! regex matches.

use super::domains::{DomEntry, DomainBuilder, DomainTable, Pending, MAX_NAME};
use super::exceptions::Exception;
use super::hugevec::HugeVec;
use super::iptable::{Found, IpTable};
use super::{Action, Field, Signature};
use aho_corasick::AhoCorasick;
use regex::RegexSet;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

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
    fields: u16,
    pattern: Box<str>,
    /// Index into `Ruleset::labels` (provider/service/region of an imported range).
    label: u32,
}

const NO_LABEL: u32 = u32::MAX;

/// What address ranges share: signature, label and fields, a few distinct combinations
/// even in the cloud packs. Range ids are numbered kind by kind, so a range's kind follows
/// from its id (`Ruleset::kind_starts`) and a lookup reads nothing per range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CidrKind {
    sig: u32,
    label: u32,
    fields: u16,
}

/// What a label signature says about an address or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub provider: String,
    pub service: String,
    pub region: String,
}

/// A signature value that matched.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'r> {
    pub sig: &'r Arc<Signature>,
    pattern: Pattern<'r>,
    pub label: Option<&'r Label>,
}

impl<'r> Hit<'r> {
    /// The signature value (pattern) that matched, as written in the pack.
    pub fn pattern(&self) -> &'r str {
        match self.pattern {
            Pattern::Text(t) => t,
            Pattern::Cidr(rs, id) => rs.cidr_pattern(id as usize),
        }
    }
}

/// Where a hit's pattern text is. An address range's text is found only when asked for:
/// most address hits only label a flow and never need it, and on a large table finding it
/// is a cache miss as costly as the lookup itself.
#[derive(Clone, Copy)]
enum Pattern<'r> {
    Text(&'r str),
    Cidr(&'r Ruleset, u32),
}

impl std::fmt::Debug for Pattern<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Pattern::Text(t) => t.fmt(f),
            Pattern::Cidr(rs, id) => rs.cidr_pattern(id as usize).fmt(f),
        }
    }
}

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

/// A signature's domain value in the form names have on the wire: IDNs as punycode.
pub fn to_wire_domain(v: &str) -> Result<String, String> {
    if v.is_ascii() {
        return Ok(v.to_string());
    }
    idna::domain_to_ascii(v)
        .map_err(|_| format!("{v:?} is not a valid internationalised domain name"))
}

/// Parses `addr/len` or a bare address into (is IPv4, network as u128, prefix length).
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
    domains: DomainBuilder,
    exact_raw: FxHashMap<Box<str>, Vec<Entry>>,
    substrings: Vec<(Entry, u32)>,
    regexes: Vec<(Entry, u32)>,
    cidrs: Vec<(bool, u128, u8, Entry, u32)>,
    labels: Vec<Label>,
    /// Where values came from: (file index, line), for conflict reports.
    origins: Vec<(u32, u32)>,
    files: Vec<String>,
    origin: u32,
    /// Hash of (provider, service, region) -> label indexes with that hash.
    label_ids: FxHashMap<u64, Vec<u32>>,
    pub exceptions: Vec<Exception>,
    /// Problems the loader fixed on its own (special-purpose ranges dropped from provider
    /// lists): `file:line: warning: ...`, shown by `signatures check`.
    load_warnings: Vec<String>,
}

const DOMAIN_MASK: u16 = 1 << (Field::DnsQuery as u16)
    | 1 << (Field::DnsAnswer as u16)
    | 1 << (Field::TlsSni as u16)
    | 1 << (Field::HttpHost as u16);

impl Builder {
    /// Records a warning about the data (the set still loads).
    pub fn warn(&mut self, w: String) {
        if self.load_warnings.len() < MAX_WARNINGS {
            self.load_warnings.push(w);
        }
    }

    /// Sets where the values added next come from (file as displayed, line).
    pub fn at(&mut self, file: &str, line: usize) {
        if self.files.last().map(String::as_str) != Some(file) {
            self.files.push(file.to_string());
        }
        let f = (self.files.len() - 1) as u32;
        let o = (f, line as u32);
        if self.origins.last() != Some(&o) {
            self.origins.push(o);
        }
        self.origin = (self.origins.len() - 1) as u32;
    }

    fn origin_str(&self, o: u32) -> String {
        match self.origins.get(o as usize) {
            Some((f, l)) => format!("{}:{l}", self.files[*f as usize]),
            None => "?".into(),
        }
    }

    pub fn add_signature(&mut self, s: Signature) -> u32 {
        self.sigs.push(s);
        (self.sigs.len() - 1) as u32
    }

    /// Interns a label; returns its index.
    pub fn label(&mut self, provider: &str, service: &str, region: &str) -> u32 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        (provider, service, region).hash(&mut h);
        let slot = self.label_ids.entry(h.finish()).or_default();
        for &i in slot.iter() {
            let l = &self.labels[i as usize];
            if l.provider == provider && l.service == service && l.region == region {
                return i;
            }
        }
        let i = self.labels.len() as u32;
        self.labels.push(Label {
            provider: provider.to_string(),
            service: service.to_string(),
            region: region.to_string(),
        });
        slot.push(i);
        i
    }

    pub fn add_value(
        &mut self,
        sig: u32,
        kind: MatchKind,
        fields: u16,
        v: &str,
    ) -> Result<(), String> {
        self.add_labelled(sig, kind, fields, v, NO_LABEL)
    }

    pub fn add_labelled(
        &mut self,
        sig: u32,
        kind: MatchKind,
        fields: u16,
        v: &str,
        label: u32,
    ) -> Result<(), String> {
        let entry = Entry {
            sig,
            fields,
            pattern: v.into(),
            label,
        };
        let domain_mask = fields & DOMAIN_MASK;
        let raw_mask = fields & !domain_mask;
        match kind {
            MatchKind::Exact => {
                if domain_mask != 0 {
                    self.add_domain(v, sig, label, domain_mask, true)?;
                }
                if raw_mask != 0 {
                    self.exact_raw.entry(v.into()).or_default().push(Entry {
                        fields: raw_mask,
                        ..entry
                    });
                }
            }
            MatchKind::Suffix => self.add_domain(v, sig, label, fields, false)?,
            MatchKind::Substring => self.substrings.push((entry, self.origin)),
            MatchKind::Regex => {
                // Compile alone first, for a precise per-value error message.
                regex::Regex::new(v).map_err(|e| format!("bad regex {v:?}: {e}"))?;
                self.regexes.push((entry, self.origin));
            }
            MatchKind::Cidr => {
                let (v4, net, len) = parse_cidr(v)?;
                self.cidrs.push((v4, net, len, entry, self.origin));
            }
        }
        Ok(())
    }

    /// An address range already parsed by `parse_cidr` (the provider imports parse once to
    /// check it against the special-purpose registry).
    pub fn add_cidr_parsed(
        &mut self,
        sig: u32,
        fields: u16,
        v: &str,
        (v4, net, len): (bool, u128, u8),
        label: u32,
    ) {
        let entry = Entry {
            sig,
            fields,
            pattern: v.into(),
            label,
        };
        self.cidrs.push((v4, net, len, entry, self.origin));
    }

    fn add_domain(
        &mut self,
        v: &str,
        sig: u32,
        label: u32,
        fields: u16,
        exact: bool,
    ) -> Result<(), String> {
        let wire;
        let src = if v.is_ascii() {
            v
        } else {
            wire = to_wire_domain(v)?;
            &wire
        };
        let mut buf = [0u8; MAX_NAME];
        let n = normalize_domain(src, &mut buf)
            .filter(|n| n.len() <= 253 && !n.is_empty())
            .ok_or("a domain name is 1 to 253 characters")?;
        let e = DomainBuilder::entry(sig, label, fields, exact);
        let origin = self.origin;
        self.domains.add(n, v, e, origin);
        Ok(())
    }

    /// A conflict worth reporting: both signatures alert, so only the lower id's alert is
    /// ever raised for this value.
    fn conflict_msg(&self, what: &str, a: (u32, u32), b: (u32, u32)) -> Option<String> {
        let (sa, sb) = (self.sigs.get(a.0 as usize)?, self.sigs.get(b.0 as usize)?);
        if sa.action != Action::Alert || sb.action != Action::Alert || sa.id == sb.id {
            return None;
        }
        let (win, lose, lose_at, other_at) = if sa.id < sb.id {
            (sa, sb, b.1, a.1)
        } else {
            (sb, sa, a.1, b.1)
        };
        Some(format!(
            "{}: warning: conflicting entries: {what} in signature {} is also in signature {} ({}); only signature {} alerts on it",
            self.origin_str(lose_at),
            lose.id,
            win.id,
            self.origin_str(other_at),
            win.id
        ))
    }

    pub fn build(mut self) -> Result<Ruleset, String> {
        // Within one key, lower signature ids first: the most specific match is chosen
        // deterministically whatever the file order.
        for v in self.exact_raw.values_mut() {
            v.sort_by_key(|e| e.sig_id_key(&self.sigs));
        }
        let mut warnings = Vec::new();
        let mut dom_fields = 0u16;
        let domains = std::mem::take(&mut self.domains);
        let domains = {
            let sigs = &self.sigs;
            let mut pairs: Vec<(String, Pending, Pending)> = Vec::new();
            let t = domains.build(
                |s| sigs.get(s as usize).map_or(u32::MAX, |s| s.id),
                |n, a, b| {
                    if pairs.len() < MAX_WARNINGS {
                        pairs.push((n.to_string(), *a, *b));
                    }
                },
            );
            for (n, a, b) in pairs {
                let kind = if a.entry.exact { "exact" } else { "suffix" };
                if let Some(m) = self.conflict_msg(
                    &format!("{kind} domain {n:?}"),
                    (a.entry.sig, a.origin),
                    (b.entry.sig, b.origin),
                ) {
                    warnings.push(m);
                }
            }
            t
        };
        for (_, e) in domains.iter() {
            dom_fields |= e.fields;
        }
        // Same range or pattern in two alerting signatures.
        let mut order: Vec<usize> = (0..self.cidrs.len()).collect();
        order.sort_unstable_by_key(|i| {
            let c = &self.cidrs[*i];
            (c.0, c.1, c.2)
        });
        for w in order.windows(2) {
            let (a, b) = (&self.cidrs[w[0]], &self.cidrs[w[1]]);
            if (a.0, a.1, a.2) == (b.0, b.1, b.2) && warnings.len() < MAX_WARNINGS {
                if let Some(m) = self.conflict_msg(
                    &format!("range {:?}", b.3.pattern),
                    (a.3.sig, a.4),
                    (b.3.sig, b.4),
                ) {
                    warnings.push(m);
                }
            }
        }
        for (list, what) in [(&self.substrings, "substring"), (&self.regexes, "regex")] {
            let mut seen: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
            for (i, (e, _)) in list.iter().enumerate() {
                seen.entry(&e.pattern).or_default().push(i);
            }
            for idx in seen.values() {
                for (k, i) in idx.iter().enumerate() {
                    for j in &idx[k + 1..] {
                        let (a, b) = (&list[*i], &list[*j]);
                        if a.0.fields & b.0.fields != 0 && warnings.len() < MAX_WARNINGS {
                            if let Some(m) = self.conflict_msg(
                                &format!("{what} {:?}", b.0.pattern),
                                (a.0.sig, a.1),
                                (b.0.sig, b.1),
                            ) {
                                warnings.push(m);
                            }
                        }
                    }
                }
            }
        }
        warnings.sort();
        let substrings: Vec<Entry> = self.substrings.into_iter().map(|e| e.0).collect();
        let regexes: Vec<Entry> = self.regexes.into_iter().map(|e| e.0).collect();
        // One automaton and one regex set per field, holding only that field's patterns,
        // so a domain lookup never runs the user-agent patterns.
        let mut groups = Vec::with_capacity(Field::ALL.len());
        for f in Field::ALL {
            let bit = f.bit();
            let subs: Vec<u32> = (0..substrings.len() as u32)
                .filter(|i| substrings[*i as usize].fields & bit != 0)
                .collect();
            let res: Vec<u32> = (0..regexes.len() as u32)
                .filter(|i| regexes[*i as usize].fields & bit != 0)
                .collect();
            let ac = if subs.is_empty() {
                None
            } else {
                Some(
                    AhoCorasick::new(
                        subs.iter()
                            .map(|i| substrings[*i as usize].pattern.as_bytes()),
                    )
                    .map_err(|e| format!("substring automaton: {e}"))?,
                )
            };
            let set = if res.is_empty() {
                None
            } else {
                Some(
                    RegexSet::new(res.iter().map(|i| &*regexes[*i as usize].pattern))
                        .map_err(|e| format!("regex set: {e}"))?,
                )
            };
            groups.push(PatternGroup { ac, subs, set, res });
        }
        let mut cidr_kinds = Vec::new();
        let mut kind_ids: FxHashMap<CidrKind, u32> = FxHashMap::default();
        let kinds: Vec<u32> = self
            .cidrs
            .iter()
            .map(|c| {
                let kind = CidrKind {
                    sig: c.3.sig,
                    label: c.3.label,
                    fields: c.3.fields,
                };
                *kind_ids.entry(kind).or_insert_with(|| {
                    cidr_kinds.push(kind);
                    cidr_kinds.len() as u32 - 1
                })
            })
            .collect();
        // Ids kind by kind; within a kind, and in the tables, ranges keep their load order.
        let mut order: Vec<usize> = (0..self.cidrs.len()).collect();
        order.sort_by_key(|&i| kinds[i]);
        let mut new_id = vec![0u32; self.cidrs.len()];
        let mut kind_starts = Vec::with_capacity(cidr_kinds.len());
        let mut cidr_offs = Vec::with_capacity(self.cidrs.len() + 1);
        let mut cidr_text = String::new();
        for (id, &i) in order.iter().enumerate() {
            if kind_starts.len() <= kinds[i] as usize {
                kind_starts.push(id as u32);
            }
            new_id[i] = id as u32;
            cidr_offs.push(cidr_text.len() as u32);
            cidr_text.push_str(&self.cidrs[i].3.pattern);
        }
        cidr_offs.push(cidr_text.len() as u32);
        let (mut p4, mut p6) = (Vec::new(), Vec::new());
        for ((is4, net, len, _, _), id) in self.cidrs.into_iter().zip(new_id) {
            if is4 {
                p4.push((net, len, id));
            } else {
                p6.push((net, len, id));
            }
        }
        let field_mask = {
            let all = self
                .exact_raw
                .values()
                .flatten()
                .chain(&substrings)
                .chain(&regexes);
            let cidr_fields = cidr_kinds.iter().fold(0, |m, k| m | k.fields);
            all.fold(dom_fields | cidr_fields, |m, e| m | e.fields)
        };
        Ok(Ruleset {
            sigs: self.sigs.into_iter().map(Arc::new).collect(),
            domains,
            exact_raw: self.exact_raw,
            groups,
            substrings,
            regexes,
            warnings,
            load_warnings: self.load_warnings,
            cidr_offs: HugeVec::from_slice(&cidr_offs),
            cidr_kinds,
            kind_starts,
            cidr_text,
            ip4: IpTable::build(p4, 32),
            ip6: IpTable::build(p6, 128),
            field_mask,
            labels: self.labels,
            exceptions: self.exceptions,
        })
    }
}

impl Entry {
    fn sig_id_key(&self, sigs: &[Signature]) -> u32 {
        sigs.get(self.sig as usize).map_or(u32::MAX, |s| s.id)
    }
}

/// Conflict warnings kept at most (a feed that overlaps another wholesale would otherwise
/// print a million lines).
const MAX_WARNINGS: usize = 1000;

/// The substring and regex patterns of one field.
struct PatternGroup {
    ac: Option<AhoCorasick>,
    /// Automaton pattern index -> index into `Ruleset::substrings`.
    subs: Vec<u32>,
    set: Option<RegexSet>,
    /// Regex set index -> index into `Ruleset::regexes`.
    res: Vec<u32>,
}

/// The compiled signature set.
pub struct Ruleset {
    sigs: Vec<Arc<Signature>>,
    domains: DomainTable,
    /// Conflicting entries found while compiling (`signatures check` prints them).
    warnings: Vec<String>,
    load_warnings: Vec<String>,
    exact_raw: FxHashMap<Box<str>, Vec<Entry>>,
    groups: Vec<PatternGroup>,
    substrings: Vec<Entry>,
    regexes: Vec<Entry>,
    /// Where each range's text starts in `cidr_text`, plus a last offset that closes it.
    cidr_offs: HugeVec<u32>,
    cidr_kinds: Vec<CidrKind>,
    /// The first range id of each kind, ascending.
    kind_starts: Vec<u32>,
    /// The ranges as written, back to back (`cidr_offs`).
    cidr_text: String,
    ip4: IpTable<u32>,
    ip6: IpTable<u128>,
    labels: Vec<Label>,
    exceptions: Vec<Exception>,
    /// Bit per field that any entry looks at.
    field_mask: u16,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("signatures", &self.sigs.len())
            .finish()
    }
}

/// Counts of what a ruleset holds, for `signatures check` and the load log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sizes {
    pub signatures: usize,
    pub domains: usize,
    pub substrings: usize,
    pub regexes: usize,
    pub cidrs: usize,
    pub exceptions: usize,
}

impl Ruleset {
    pub fn signatures(&self) -> &[Arc<Signature>] {
        &self.sigs
    }

    /// Conflicting entries (`file:line: warning: ...`), at most 1,000.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the loader dropped or carved from provider lists (special-purpose ranges),
    /// `file:line: warning: ...`, at most 1,000.
    pub fn load_warnings(&self) -> &[String] {
        &self.load_warnings
    }

    /// Whether any signature looks at `field`: lets callers skip building a value nothing
    /// would match (e.g. the host+URI string of every HTTP request).
    pub fn wants(&self, field: Field) -> bool {
        self.field_mask & field.bit() != 0
    }

    pub fn sizes(&self) -> Sizes {
        Sizes {
            signatures: self.sigs.len(),
            domains: self.domains.len(),
            substrings: self.substrings.len(),
            regexes: self.regexes.len(),
            cidrs: self.cidr_offs.len().saturating_sub(1),
            exceptions: self.exceptions.len(),
        }
    }

    /// The exception that suppresses this alert, if any.
    pub fn exception(&self, sig: u32, value: &str, src: IpAddr) -> Option<&Exception> {
        self.exceptions.iter().find(|e| e.covers(sig, value, src))
    }

    #[inline]
    fn push_dom<'r>(&'r self, e: DomEntry, name: &'r str, bit: u16, out: &mut Vec<Hit<'r>>) {
        if e.fields & bit != 0 {
            if let Some(sig) = self.sigs.get(e.sig as usize) {
                out.push(Hit {
                    sig,
                    pattern: Pattern::Text(self.domains.pattern(&e, name)),
                    label: self.labels.get(e.label as usize),
                });
            }
        }
    }

    fn push<'r>(&'r self, entries: &'r [Entry], bit: u16, out: &mut Vec<Hit<'r>>) {
        for e in entries {
            if e.fields & bit != 0 {
                out.push(Hit {
                    sig: &self.sigs[e.sig as usize],
                    pattern: Pattern::Text(&e.pattern),
                    label: self.labels.get(e.label as usize),
                });
            }
        }
    }

    /// Appends every signature value matching `value` in `field`, most specific first:
    /// exact domain, then suffixes from the longest, then substrings, then regexes.
    pub fn match_str<'r>(&'r self, field: Field, value: &str, out: &mut Vec<Hit<'r>>) {
        let bit = field.bit();
        // Filled only for a name that pattern groups look at: zeroing 256 bytes on every
        // DNS lookup cost up to a tenth of it.
        let mut buf;
        let idn;
        let subject = if field.is_domain() {
            let wire = if value.is_ascii() {
                value
            } else {
                idn = to_wire_domain(value).unwrap_or_default();
                &idn
            };
            if !self
                .domains
                .lookup(wire, |e, name| self.push_dom(e, name, bit, out))
            {
                return;
            }
            let g = &self.groups[field as usize];
            if g.ac.is_none() && g.set.is_none() {
                return;
            }
            buf = [0u8; MAX_NAME];
            let Some(n) = normalize_domain(wire, &mut buf) else {
                return;
            };
            n
        } else {
            if let Some(es) = self.exact_raw.get(value) {
                self.push(es, bit, out);
            }
            value
        };
        let g = &self.groups[field as usize];
        if let Some(ac) = &g.ac {
            let first = out.len();
            for m in ac.find_overlapping_iter(subject) {
                let e = &self.substrings[g.subs[m.pattern().as_usize()] as usize];
                if !out[first..]
                    .iter()
                    .any(|h| std::ptr::eq(h.pattern(), &*e.pattern))
                {
                    self.push(std::slice::from_ref(e), bit, out);
                }
            }
        }
        if let Some(set) = &g.set {
            if set.is_match(subject) {
                for i in set.matches(subject).iter() {
                    self.push(
                        std::slice::from_ref(&self.regexes[g.res[i] as usize]),
                        bit,
                        out,
                    );
                }
            }
        }
    }

    /// Range `id` as written in its list or pack.
    fn cidr_pattern(&self, id: usize) -> &str {
        match (self.cidr_offs.get(id), self.cidr_offs.get(id + 1)) {
            (Some(&a), Some(&b)) => self.cidr_text.get(a as usize..b as usize).unwrap_or(""),
            _ => "",
        }
    }

    /// Appends every range containing `ip`, longest prefix first.
    pub fn match_ip<'r>(&'r self, ip: IpAddr, out: &mut Vec<Hit<'r>>) {
        let found = match ip {
            IpAddr::V4(a) => self.ip4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.ip6.lookup(u128::from(a)),
        };
        // Most addresses are in no range, and most covered ones in exactly one.
        match found {
            Found::None => {}
            Found::One(id) => self.push_cidr(id, out),
            Found::Many(ids) => {
                for &id in ids {
                    self.push_cidr(id, out);
                }
            }
        }
    }

    #[inline]
    fn push_cidr<'r>(&'r self, id: u32, out: &mut Vec<Hit<'r>>) {
        let kind = self.kind_starts.partition_point(|&s| s <= id);
        let Some(k) = kind.checked_sub(1).and_then(|k| self.cidr_kinds.get(k)) else {
            return;
        };
        if k.fields & Field::IpDst.bit() == 0 {
            return;
        }
        let Some(sig) = self.sigs.get(k.sig as usize) else {
            return;
        };
        out.push(Hit {
            sig,
            pattern: Pattern::Cidr(self, id),
            label: self.labels.get(k.label as usize),
        });
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
        assert!(r.wants(Field::DnsQuery) && r.wants(Field::TlsSni));
        assert!(!r.wants(Field::HttpFullUrl) && !r.wants(Field::IpDst));
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
