//! Longest-prefix match over many IPv4/IPv6 ranges, answering "which ranges contain this
//! address, most specific first" with one binary search.
//!
//! CIDR prefixes are either nested or disjoint, so the address space splits into elementary
//! segments, each covered by a fixed stack of prefixes. The table keeps the segment starts
//! sorted and, per segment, an interned list of the prefixes covering it.

use rustc_hash::FxHashMap;

pub struct IpTable {
    /// For each value of the address's top 16 bits, the first segment starting at or after
    /// that block (65,537 entries): the binary search then runs within one block, in cache.
    buckets: Vec<u32>,
    /// Address width (32 or 128).
    bits: u8,
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
        let last_of = |net: u128, len: u8| -> u128 {
            let host = u32::from(bits - len);
            net | if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            }
        };
        // Wider first at one start: prefixes are nested or disjoint, so one pass with a stack
        // of the open ones yields the segments in order.
        prefixes.sort_unstable_by_key(|p| (p.0, p.1, p.2));
        let mut t = IpTable {
            buckets: Vec::new(),
            bits,
            starts: Vec::new(),
            seg_set: Vec::new(),
            sets: Vec::new(),
        };
        let mut interned: FxHashMap<Vec<u32>, u32> = FxHashMap::default();
        let mut stack: Vec<(u128, u32)> = Vec::new(); // (last address, id)
        for &(net, len, id) in &prefixes {
            // Close what ends before this prefix starts.
            while let Some(&(last, _)) = stack.last() {
                if last >= net {
                    break;
                }
                while stack.last().is_some_and(|e| e.0 == last) {
                    stack.pop();
                }
                t.emit(last + 1, &stack, &mut interned);
            }
            stack.push((last_of(net, len), id));
            t.emit(net, &stack, &mut interned);
        }
        while let Some(&(last, _)) = stack.last() {
            while stack.last().is_some_and(|e| e.0 == last) {
                stack.pop();
            }
            if last == u128::MAX {
                break;
            }
            t.emit(last + 1, &stack, &mut interned);
        }
        let shift = u32::from(bits - 16);
        t.buckets = (0..=65_536u128)
            .map(|b| t.starts.partition_point(|s| (*s >> shift) < b) as u32)
            .collect();
        t
    }

    /// Starts a segment at `pos` covered by `stack` (innermost last).
    fn emit(&mut self, pos: u128, stack: &[(u128, u32)], interned: &mut FxHashMap<Vec<u32>, u32>) {
        let set = if stack.is_empty() {
            u32::MAX
        } else {
            let key: Vec<u32> = stack.iter().rev().map(|e| e.1).collect();
            let n = self.sets.len() as u32;
            match interned.get(&key) {
                Some(i) => *i,
                None => {
                    self.sets.push(key.clone().into_boxed_slice());
                    interned.insert(key, n);
                    n
                }
            }
        };
        if self.starts.last() == Some(&pos) {
            // Several prefixes start (or end) here: the last state wins.
            if let Some(s) = self.seg_set.last_mut() {
                *s = set;
            }
            return;
        }
        if self.seg_set.last() == Some(&set) {
            return; // same coverage as the previous segment
        }
        self.starts.push(pos);
        self.seg_set.push(set);
    }

    /// Entries whose range contains `addr`, most specific first.
    #[inline]
    pub fn lookup(&self, addr: u128) -> &[u32] {
        let b = (addr >> u32::from(self.bits - 16)) as usize;
        let (lo, hi) = match (self.buckets.get(b), self.buckets.get(b + 1)) {
            (Some(lo), Some(hi)) => (*lo as usize, *hi as usize),
            _ => (0, self.starts.len()),
        };
        let i = lo + self.starts[lo..hi].partition_point(|s| *s <= addr);
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
