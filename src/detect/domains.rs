//! Domain table: exact and suffix entries in one open-addressing hash table keyed by the
//! hash of a whole normalised name.
//!
//! Why this shape: a lookup must test every label-boundary suffix of a name
//! (`a.b.example.com`, `b.example.com`, `example.com`, `com`). One right-to-left pass over the
//! name yields the hash of every such suffix at once, so the probes are independent memory
//! loads the CPU overlaps, and a probe that misses touches one 8-byte slot, never a string.
//! Names live in one arena and entries in one flat vector, so a million entries cost tens of
//! megabytes rather than a heap allocation each.

use super::hugevec::HugeVec;

/// Longest name we normalise on the stack (DNS names are at most 253 characters).
pub const MAX_NAME: usize = 256;
const EMPTY: u64 = u64::MAX;
const NO_PATTERN: u32 = u32::MAX;

/// One signature value on one distinct name.
#[derive(Debug, Clone, Copy)]
pub struct DomEntry {
    pub sig: u32,
    pub label: u32,
    /// Index into `patterns` when the value as written differs from the normalised name.
    pattern: u32,
    pub fields: u16,
    pub exact: bool,
}

/// A value waiting to be compiled, with where it came from (for conflict reports).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    name_off: u32,
    name_len: u8,
    pub entry: DomEntry,
    pub origin: u32,
}

/// Collects values; `build` turns them into a [`DomainTable`].
#[derive(Debug, Default)]
pub struct DomainBuilder {
    arena: String,
    patterns: Vec<Box<str>>,
    pending: Vec<Pending>,
}

/// One byte into the running hash (right to left). `| 0x20` folds ASCII case (and merges a
/// few punctuation pairs, which the byte comparison on a hit tells apart); shift-add-xor
/// keeps the dependency chain short, `finish` does the mixing.
#[inline]
fn step(h: u64, b: u8) -> u64 {
    (h << 5).wrapping_add(h) ^ u64::from(b | 0x20)
}

/// Final mix, so that the low bits (slot index) and high bits (tag) both depend on every byte.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

const SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Hash of a whole normalised name, as lookups compute it for each suffix.
fn hash_name(n: &[u8]) -> u64 {
    finish(n.iter().rev().fold(SEED, |h, b| step(h, *b)))
}

impl DomainBuilder {
    /// Adds `name` (already normalised: lower case, no trailing dot, wire form).
    /// `written` is the value as the pack spelled it, kept when it differs.
    pub fn add(&mut self, name: &str, written: &str, mut entry: DomEntry, origin: u32) {
        entry.pattern = if written == name {
            NO_PATTERN
        } else {
            self.patterns.push(written.into());
            (self.patterns.len() - 1) as u32
        };
        let name_off = self.arena.len() as u32;
        self.arena.push_str(name);
        self.pending.push(Pending {
            name_off,
            name_len: name.len().min(255) as u8,
            entry,
            origin,
        });
    }

    pub fn entry(sig: u32, label: u32, fields: u16, exact: bool) -> DomEntry {
        DomEntry {
            sig,
            label,
            pattern: NO_PATTERN,
            fields,
            exact,
        }
    }

    /// Compiles the table. `sig_key` orders entries of one name (lower signature id first,
    /// so the most specific match is chosen whatever the file order). `conflict` is called
    /// for every pair of entries on the same name and kind whose fields overlap (first, then
    /// the later one), so the loader can report them.
    pub fn build(
        self,
        sig_key: impl Fn(u32) -> u32,
        mut conflict: impl FnMut(&str, &Pending, &Pending),
    ) -> DomainTable {
        let DomainBuilder {
            arena,
            patterns,
            pending,
        } = self;
        let name =
            |p: &Pending| &arena[p.name_off as usize..p.name_off as usize + p.name_len as usize];
        let mut order: Vec<(u64, u32)> = pending
            .iter()
            .enumerate()
            .map(|(i, p)| (hash_name(name(p).as_bytes()), i as u32))
            .collect();
        // Group equal names together: by hash, then (for the rare collisions) by name.
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let (pa, pb) = (&pending[a.1 as usize], &pending[b.1 as usize]);
                name(pa)
                    .cmp(name(pb))
                    .then(pb.entry.exact.cmp(&pa.entry.exact))
                    .then(sig_key(pa.entry.sig).cmp(&sig_key(pb.entry.sig)))
                    .then(a.1.cmp(&b.1))
            })
        });
        let mut t = DomainTable {
            slots: HugeVec::zeroed(0),
            mask: 0,
            filter: HugeVec::zeroed(0),
            filter_mask: 0,
            recs: HugeVec::zeroed(0),
            names: 0,
            entries: 0,
            patterns,
            suffix_labels: 0,
            any_exact: false,
        };
        let mut heads: Vec<(u64, usize)> = Vec::new();
        let mut recs: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let h = order[i].0;
            let first = &pending[order[i].1 as usize];
            let n = name(first);
            let mut j = i + 1;
            while j < order.len() && order[j].0 == h && name(&pending[order[j].1 as usize]) == n {
                j += 1;
            }
            let group = &order[i..j];
            for (a, ia) in group.iter().enumerate() {
                for ib in &group[a + 1..] {
                    let (pa, pb) = (&pending[ia.1 as usize], &pending[ib.1 as usize]);
                    if pa.entry.exact == pb.entry.exact
                        && pa.entry.fields & pb.entry.fields != 0
                        && pa.entry.sig != pb.entry.sig
                    {
                        conflict(n, pa, pb);
                    }
                }
            }
            // Record: name length, entry count, exact count, name, entries.
            let at = recs.len();
            let n_exact = group
                .iter()
                .filter(|k| pending[k.1 as usize].entry.exact)
                .count();
            recs.push(n.len() as u8);
            recs.extend_from_slice(&(group.len() as u32).to_le_bytes());
            recs.extend_from_slice(&(n_exact as u32).to_le_bytes());
            recs.extend_from_slice(n.as_bytes());
            for (_, k) in group {
                let e = pending[*k as usize].entry;
                if e.exact {
                    t.any_exact = true;
                } else {
                    t.suffix_labels |= label_bit(n.bytes().filter(|b| *b == b'.').count() + 1);
                }
                recs.extend_from_slice(&e.sig.to_le_bytes());
                recs.extend_from_slice(&e.label.to_le_bytes());
                recs.extend_from_slice(&e.pattern.to_le_bytes());
                // Domain entries carry only the four domain-field bits (`Field::is_domain`,
                // bits 0-3), so one byte holds them.
                recs.push(e.fields as u8);
            }
            heads.push((hash_name(n.as_bytes()), at));
            t.names += 1;
            t.entries += group.len();
            i = j;
        }
        let cap = (heads.len() * 2).next_power_of_two().max(16);
        t.slots = HugeVec::zeroed(cap);
        t.slots.fill(EMPTY);
        t.mask = cap - 1;
        // 8 to 16 filter bits per name, three of them set per name in one word (a blocked
        // Bloom filter): 1 to 3% of absent suffixes get past it, at one cache line per probe,
        // and a million names fit in 1 MiB, which stays in cache.
        let bits = (heads.len() * 8).next_power_of_two().max(64);
        t.filter = HugeVec::zeroed(bits / 64);
        t.filter_mask = bits / 64 - 1;
        for (h, at) in heads {
            let mut s = (h as usize) & t.mask;
            while t.slots[s] != EMPTY {
                s = (s + 1) & t.mask;
            }
            t.slots[s] = (h & TAG) | at as u64;
            let (w, m) = t.filter_pos(h);
            t.filter[w] |= m;
        }
        t.recs = HugeVec::from_slice(&recs);
        t
    }
}

/// High 24 bits of a slot: hash tag. Low 40 bits: offset of the record in `recs`.
const TAG: u64 = 0xffff_ff00_0000_0000;
const OFF: u64 = !TAG;
/// Bytes of one entry in a record: sig, label, pattern (u32 each), fields.
const ENTRY: usize = 13;

fn label_bit(labels: usize) -> u64 {
    1u64 << labels.min(63)
}

/// The compiled domain table.
///
/// A lookup touches a cache-resident filter for each suffix and, only when the filter says
/// maybe, one slot and one record: the record holds the name and its entries side by side,
/// so a hit costs two memory loads that miss the cache, not five.
pub struct DomainTable {
    /// `TAG` bits: hash tag; `OFF` bits: record offset. `EMPTY` when free.
    slots: HugeVec,
    mask: usize,
    filter: HugeVec,
    /// Filter words minus one (a power of two).
    filter_mask: usize,
    /// Records, back to back: name length (u8), entry count (u32), exact count (u32), the
    /// name, then `ENTRY` bytes per entry, exact entries first, then by signature id.
    recs: HugeVec<u8>,
    names: usize,
    entries: usize,
    patterns: Vec<Box<str>>,
    /// Bit n set: some suffix entry has n labels (n >= 63 folded into bit 63). Lookups skip
    /// the label counts no entry has.
    suffix_labels: u64,
    any_exact: bool,
}

impl std::fmt::Debug for DomainTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DomainTable({} names)", self.names)
    }
}

/// A record found by a lookup.
#[derive(Clone, Copy)]
struct Rec<'t> {
    name: &'t str,
    entries: &'t [u8],
    n_exact: usize,
}

impl DomainTable {
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    #[inline]
    fn filter_pos(&self, h: u64) -> (usize, u64) {
        let w = (h >> 24) as usize & self.filter_mask;
        (
            w,
            (1u64 << (h & 63)) | (1u64 << ((h >> 6) & 63)) | (1u64 << ((h >> 12) & 63)),
        )
    }

    #[inline]
    fn rec(&self, at: usize) -> Option<Rec<'_>> {
        let r = self.recs.get(at..)?;
        let len = usize::from(*r.first()?);
        let n = u32::from_le_bytes(r.get(1..5)?.try_into().ok()?) as usize;
        let n_exact = u32::from_le_bytes(r.get(5..9)?.try_into().ok()?) as usize;
        let name = std::str::from_utf8(r.get(9..9 + len)?).ok()?;
        let entries = r.get(9 + len..9 + len + n * ENTRY)?;
        Some(Rec {
            name,
            entries,
            n_exact,
        })
    }

    fn entry(b: &[u8], exact: bool) -> DomEntry {
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        DomEntry {
            sig: u(0),
            label: u(4),
            pattern: u(8),
            fields: u16::from(b[12]),
            exact,
        }
    }

    /// The value as written for an entry found by `lookup`.
    pub fn pattern<'t>(&'t self, e: &DomEntry, name: &'t str) -> &'t str {
        match self.patterns.get(e.pattern as usize) {
            Some(p) => p,
            None => name,
        }
    }

    /// Lower-cases `name`, strips one trailing dot and calls `f(entry, stored name)` for
    /// each matching entry, longest name first: on the whole name its exact entries then its
    /// suffix entries, on shorter suffixes their suffix entries. Returns false if the name is
    /// too long to be a name.
    #[inline]
    pub fn lookup<'t>(&'t self, name: &str, mut f: impl FnMut(DomEntry, &'t str)) -> bool {
        let raw = name.strip_suffix('.').unwrap_or(name).as_bytes();
        if raw.len() >= MAX_NAME {
            return false;
        }
        if self.is_empty() {
            return true;
        }
        // One right-to-left pass computes the hash of each label-boundary suffix (each
        // extends the previous one) and probes it at once: the probes are independent loads
        // the CPU overlaps. Matches (rare) are stacked and reported longest first.
        let mut found = [(0usize, false); 8];
        let mut nfound = 0;
        let mut found_more: Vec<(usize, bool)> = Vec::new();
        let mut h = SEED;
        let mut labels = 1usize;
        let mut hit = |h: u64, start: usize, labels: usize, whole: bool| {
            if self.suffix_labels & label_bit(labels) != 0 || (whole && self.any_exact) {
                if let Some(at) = self.probe(h, &raw[start..]) {
                    if nfound < found.len() {
                        found[nfound] = (at, whole);
                        nfound += 1;
                    } else {
                        // More than 8 listed suffixes of one name: rare enough to allocate.
                        found_more.push((at, whole));
                    }
                }
            }
        };
        for (i, &b) in raw.iter().enumerate().rev() {
            if b == b'.' {
                hit(h, i + 1, labels, false);
                labels += 1;
            }
            h = step(h, b);
        }
        hit(h, 0, labels, true);
        for &(at, whole) in found_more.iter().rev().chain(found[..nfound].iter().rev()) {
            let Some(r) = self.rec(at) else { continue };
            for (k, b) in r.entries.chunks_exact(ENTRY).enumerate() {
                let exact = k < r.n_exact;
                if exact && !whole {
                    continue;
                }
                f(Self::entry(b, exact), r.name);
            }
        }
        true
    }

    /// The record whose name is `sub` (hash `h` before finishing), if any.
    #[inline]
    fn probe(&self, h: u64, sub: &[u8]) -> Option<usize> {
        let h = finish(h);
        let (w, m) = self.filter_pos(h);
        if self.filter.get(w)? & m != m {
            return None;
        }
        let tag = h & TAG;
        let mut s = (h as usize) & self.mask;
        loop {
            let slot = *self.slots.get(s)?;
            if slot == EMPTY {
                return None;
            }
            if slot & TAG == tag {
                let at = (slot & OFF) as usize;
                let r = self.recs.get(at..)?;
                let len = usize::from(*r.first()?);
                if len == sub.len() {
                    let stored = r.get(9..9 + len)?;
                    if stored
                        .iter()
                        .zip(sub)
                        .all(|(a, b)| *a == b.to_ascii_lowercase())
                    {
                        return Some(at);
                    }
                }
            }
            s = (s + 1) & self.mask;
        }
    }

    /// Every (name, entry) in the table, for listings.
    pub fn iter(&self) -> impl Iterator<Item = (&str, DomEntry)> {
        let mut at = 0;
        std::iter::from_fn(move || {
            let r = self.rec(at)?;
            at += 9 + r.name.len() + r.entries.len();
            Some(
                r.entries
                    .chunks_exact(ENTRY)
                    .enumerate()
                    .map(move |(k, b)| (r.name, Self::entry(b, k < r.n_exact)))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(items: &[(&str, bool, u32)]) -> rustc_hash::FxHashMap<String, Vec<(bool, u32)>> {
        let mut m: rustc_hash::FxHashMap<String, Vec<(bool, u32)>> =
            rustc_hash::FxHashMap::default();
        for (n, e, s) in items {
            m.entry(n.to_string()).or_default().push((*e, *s));
        }
        m
    }

    fn table(items: &[(&str, bool, u32)]) -> DomainTable {
        let mut b = DomainBuilder::default();
        for (n, exact, sig) in items {
            b.add(n, n, DomainBuilder::entry(*sig, u32::MAX, 1, *exact), 0);
        }
        b.build(|s| s, |_, _, _| {})
    }

    fn found(t: &DomainTable, q: &str) -> Vec<(String, bool, u32)> {
        let mut out = Vec::new();
        t.lookup(q, |e, n| out.push((n.to_string(), e.exact, e.sig)));
        out
    }

    #[test]
    fn suffixes_exact_and_order() {
        let items = [
            ("example.com", false, 1),
            ("a.example.com", true, 2),
            ("a.example.com", false, 3),
            ("com", false, 4),
        ];
        let t = table(&items);
        assert_eq!(naive(&items).len(), 3);
        assert_eq!(
            found(&t, "A.Example.com."),
            vec![
                ("a.example.com".into(), true, 2),
                ("a.example.com".into(), false, 3),
                ("example.com".into(), false, 1),
                ("com".into(), false, 4)
            ]
        );
        // Exact entries never match a subdomain.
        assert_eq!(
            found(&t, "x.a.example.com"),
            vec![
                ("a.example.com".into(), false, 3),
                ("example.com".into(), false, 1),
                ("com".into(), false, 4)
            ]
        );
        assert_eq!(found(&t, "badexample.com"), vec![("com".into(), false, 4)]);
        assert!(found(&t, "example.org").is_empty());
        assert!(!t.lookup(&"a".repeat(300), |_, _| {}));
    }
}
