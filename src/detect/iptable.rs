//! Longest-prefix match over many IPv4/IPv6 ranges, answering "which ranges contain this
//! address, most specific first" with one binary search.
//!
//! CIDR prefixes are either nested or disjoint, so the address space splits into elementary
//! segments, each covered by a fixed stack of prefixes. The table keeps the segment starts
//! sorted and, per segment, an interned list of the prefixes covering it.

use rustc_hash::FxHashMap;

pub struct IpTable {
    starts: Vec<u128>,
    /// Per segment: index into `sets`, or u32::MAX when nothing covers it.
    seg_set: Vec<u32>,
    /// Covering entries, most specific first.
    sets: Vec<Box<[u32]>>,
}

impl std::fmt::Debug for IpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IpTable({} segments)", self.starts.len())
    }
}

impl IpTable {
    /// `prefixes`: (network, length, entry id), for an address family of `bits` bits.
    pub fn build(mut prefixes: Vec<(u128, u8, u32)>, bits: u8) -> IpTable {
        let span = |net: u128, len: u8| -> (u128, Option<u128>) {
            let host = u32::from(bits - len);
            let size_minus_1 = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
            let end = net + size_minus_1;
            let max = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
            (net, if end >= max { None } else { Some(end + 1) })
        };
        // Events: opens sorted wider-first, closes narrower-first; at one position closes
        // come before opens.
        let mut events: Vec<(u128, u8, u8, u32)> = Vec::with_capacity(prefixes.len() * 2);
        prefixes.sort_unstable();
        for &(net, len, id) in &prefixes {
            let (start, close) = span(net, len);
            events.push((start, 1, len, id));
            if let Some(c) = close {
                events.push((c, 0, 255 - len, id));
            }
        }
        events.sort_unstable();
        let mut stack: Vec<(u8, u32)> = Vec::new();
        let mut starts = Vec::new();
        let mut seg_set = Vec::new();
        let mut sets: Vec<Box<[u32]>> = Vec::new();
        let mut interned: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        let mut i = 0;
        while i < events.len() {
            let pos = events[i].0;
            while i < events.len() && events[i].0 == pos {
                let (_, kind, _, id) = events[i];
                if kind == 0 {
                    if let Some(k) = stack.iter().rposition(|e| e.1 == id) {
                        stack.remove(k);
                    }
                } else {
                    let len = events[i].2;
                    stack.push((len, id));
                }
                i += 1;
            }
            let set = if stack.is_empty() {
                u32::MAX
            } else {
                let mut ids: Vec<(u8, u32)> = stack.clone();
                // most specific (longest) first; stable by id for determinism
                ids.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                let key: Vec<u32> = ids.into_iter().map(|e| e.1).collect();
                let n = sets.len() as u32;
                *interned.entry(key.clone()).or_insert_with(|| {
                    sets.push(key.into_boxed_slice());
                    n
                })
            };
            if seg_set.last() == Some(&set) {
                continue; // same coverage as the previous segment
            }
            starts.push(pos);
            seg_set.push(set);
        }
        IpTable { starts, seg_set, sets }
    }

    /// Entries whose range contains `addr`, most specific first.
    #[inline]
    pub fn lookup(&self, addr: u128) -> &[u32] {
        let i = self.starts.partition_point(|s| *s <= addr);
        if i == 0 {
            return &[];
        }
        match self.seg_set[i - 1] {
            u32::MAX => &[],
            s => &self.sets[s as usize],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    #[test]
    fn nested_and_disjoint() {
        let t = IpTable::build(
            vec![
                (v4(10, 0, 0, 0), 8, 1),
                (v4(10, 1, 0, 0), 16, 2),
                (v4(10, 1, 2, 0), 24, 3),
                (v4(192, 168, 0, 0), 16, 4),
                (v4(255, 255, 255, 255), 32, 5),
                (0, 0, 6),
            ],
            32,
        );
        assert_eq!(t.lookup(v4(10, 1, 2, 3)), &[3, 2, 1, 6]);
        assert_eq!(t.lookup(v4(10, 1, 3, 3)), &[2, 1, 6]);
        assert_eq!(t.lookup(v4(10, 2, 0, 0)), &[1, 6]);
        assert_eq!(t.lookup(v4(11, 0, 0, 0)), &[6]);
        assert_eq!(t.lookup(v4(192, 168, 255, 255)), &[4, 6]);
        assert_eq!(t.lookup(v4(255, 255, 255, 255)), &[5, 6]);
        let t = IpTable::build(vec![(u128::MAX, 128, 9), (1u128 << 127, 1, 8)], 128);
        assert_eq!(t.lookup(u128::MAX), &[9, 8]);
        assert_eq!(t.lookup(0), &[] as &[u32]);
    }
}
