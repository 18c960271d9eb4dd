//! Longest-prefix match over many IPv4/IPv6 ranges, answering "which ranges contain this
//! address, most specific first" with one binary search.
//!
//! CIDR prefixes are either nested or disjoint, so the address space splits into elementary
//! segments, each covered by a fixed stack of prefixes. The table keeps the segment starts
//! sorted and, per segment, an interned list of the prefixes covering it.

use super::hugevec::HugeVec;
use rustc_hash::FxHashMap;

/// Address width of a table: IPv4 keys are stored as `u32` so a block of segment starts is a
/// quarter of the size (and of the cache lines) it would be as `u128`.
pub trait Key: Copy + Ord + Default + std::fmt::Debug {
    fn from_u128(v: u128) -> Self;
    /// The top 16 bits: the bucket an address falls in.
    fn top16(self) -> usize;
}
impl Key for u32 {
    fn from_u128(v: u128) -> Self {
        v as u32
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
}
impl Key for u128 {
    fn from_u128(v: u128) -> Self {
        v
    }
    #[inline]
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
}

const NONE: u32 = u32::MAX;
/// A segment value with this bit set is the one entry covering it (most segments), so a
/// lookup skips the set array.
const ONE: u32 = 1 << 31;

/// Entries covering an address, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    None,
    One(u32),
    Many(&'a [u32]),
}

#[cfg(test)]
impl Found<'_> {
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (one, many): (Option<u32>, &[u32]) = match *self {
            Found::None => (None, &[]),
            Found::One(i) => (Some(i), &[]),
            Found::Many(s) => (None, s),
        };
        one.into_iter().chain(many.iter().copied())
    }
}

pub struct IpTable<K: Key> {
    /// For each value of the address's top 16 bits (65,537 entries): the first segment
    /// starting at or after that block, and the set in force at the block's first address.
    /// The binary search then runs within one block, in cache; an address in a block where
    /// no segment starts, or before its first one, needs no segment at all (about a third of
    /// random IPv4 lookups with 200,000 ranges, and nearly every IPv6 one).
    buckets: HugeVec<(u32, u32)>,
    /// Segment start, and where its covering entries are in `sets` (`NONE`: uncovered).
    /// Kept side by side so finding a segment and its set costs one cache line.
    segs: HugeVec<(K, u32)>,
    /// Interned covering lists, flat: at an offset, the count, then the entry ids most
    /// specific first.
    sets: HugeVec<u32>,
}

impl<K: Key> std::fmt::Debug for IpTable<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IpTable({} segments)", self.segs.len())
    }
}

impl<K: Key> IpTable<K> {
    /// `prefixes`: (network, length, entry id) in load order, for an address family of
    /// `bits` bits.
    pub fn build(mut prefixes: Vec<(u128, u8, u32)>, bits: u8) -> IpTable<K> {
        let last_of = |net: u128, len: u8| -> u128 {
            let host = u32::from(bits - len);
            net | if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            }
        };
        // Wider first at one start: prefixes are nested or disjoint, so one pass with a stack
        // of the open ones yields the segments in order. The same prefix listed twice keeps
        // the order given (the later one is listed first), whatever the ids.
        prefixes.sort_by_key(|p| (p.0, p.1));
        let mut b = Build::default();
        let mut stack: Vec<(u128, u32)> = Vec::new(); // (last address, id)
        let top = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        for &(net, len, id) in &prefixes {
            // Close what ends before this prefix starts.
            while let Some(&(last, _)) = stack.last() {
                if last >= net {
                    break;
                }
                while stack.last().is_some_and(|e| e.0 == last) {
                    stack.pop();
                }
                b.emit(last + 1, &stack);
            }
            stack.push((last_of(net, len), id));
            b.emit(net, &stack);
        }
        while let Some(&(last, _)) = stack.last() {
            while stack.last().is_some_and(|e| e.0 == last) {
                stack.pop();
            }
            if last >= top {
                break;
            }
            b.emit(last + 1, &stack);
        }
        let shift = u32::from(bits - 16);
        // One merge pass over the sorted segments (a binary search per block was a third of
        // the start-up time with the benchmark's 5,000 CIDRs).
        let mut first = 0usize;
        let buckets: Vec<(u32, u32)> = (0..=65_536u128)
            .map(|k| {
                while b.segs.get(first).is_some_and(|s| (s.0 >> shift) < k) {
                    first += 1;
                }
                let at_start = match first.checked_sub(1).and_then(|i| b.segs.get(i)) {
                    Some(s) => s.1,
                    None => NONE,
                };
                (first as u32, at_start)
            })
            .collect();
        let segs: Vec<(K, u32)> = b.segs.iter().map(|(p, s)| (K::from_u128(*p), *s)).collect();
        IpTable {
            buckets: HugeVec::from_slice(&buckets),
            segs: HugeVec::from_slice(&segs),
            sets: HugeVec::from_slice(&b.sets),
        }
    }

    /// Entries whose range contains `addr`, most specific first.
    #[inline]
    pub fn lookup(&self, key: K) -> Found<'_> {
        let b = key.top16();
        let (lo, hi, at_start) = match (self.buckets.get(b), self.buckets.get(b + 1)) {
            (Some(lo), Some(hi)) => (lo.0 as usize, hi.0 as usize, lo.1),
            _ => return Found::None,
        };
        let set = match self.segs.get(lo..hi) {
            Some(block) if lo < hi => match block.partition_point(|s| s.0 <= key) {
                0 => at_start,
                n => block.get(n - 1).map_or(NONE, |s| s.1),
            },
            _ => at_start,
        };
        if set == NONE {
            return Found::None;
        }
        if set & ONE != 0 {
            return Found::One(set & !ONE);
        }
        let at = set as usize;
        let n = self.sets.get(at).copied().unwrap_or(0) as usize;
        Found::Many(self.sets.get(at + 1..at + 1 + n).unwrap_or(&[]))
    }
}

#[derive(Default)]
struct Build {
    segs: Vec<(u128, u32)>,
    sets: Vec<u32>,
    interned: FxHashMap<Vec<u32>, u32>,
}

impl Build {
    /// Starts a segment at `pos` covered by `stack` (innermost last).
    fn emit(&mut self, pos: u128, stack: &[(u128, u32)]) {
        let set = if stack.is_empty() {
            NONE
        } else if let [(_, id)] = stack {
            if *id < ONE {
                ONE | *id
            } else {
                self.intern(stack)
            }
        } else {
            self.intern(stack)
        };
        if let Some(last) = self.segs.last_mut() {
            if last.0 == pos {
                // Several prefixes start (or end) here: the last state wins.
                last.1 = set;
                return;
            }
            if last.1 == set {
                return; // same coverage as the previous segment
            }
        }
        self.segs.push((pos, set));
    }

    /// The set offset of a stack of covering entries (innermost last), interned.
    fn intern(&mut self, stack: &[(u128, u32)]) -> u32 {
        let key: Vec<u32> = stack.iter().rev().map(|e| e.1).collect();
        match self.interned.get(&key) {
            Some(i) => *i,
            None => {
                let at = self.sets.len() as u32;
                self.sets.push(key.len() as u32);
                self.sets.extend_from_slice(&key);
                self.interned.insert(key, at);
                at
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
        u128::from(u32::from_be_bytes([a, b, c, d]))
    }

    fn ids<K: Key>(t: &IpTable<K>, a: u128) -> Vec<u32> {
        t.lookup(K::from_u128(a)).iter().collect()
    }

    #[test]
    fn nested_and_disjoint() {
        let t = IpTable::<u32>::build(
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
        assert_eq!(ids(&t, v4(10, 1, 2, 3)), &[3, 2, 1, 6]);
        assert_eq!(ids(&t, v4(10, 1, 3, 3)), &[2, 1, 6]);
        assert_eq!(ids(&t, v4(10, 2, 0, 0)), &[1, 6]);
        assert_eq!(ids(&t, v4(11, 0, 0, 0)), &[6]);
        assert_eq!(ids(&t, v4(192, 168, 255, 255)), &[4, 6]);
        assert_eq!(ids(&t, v4(255, 255, 255, 255)), &[5, 6]);
        // Blocks (top 16 bits) where nothing starts take the set in force at their first
        // address; so do addresses before a block's first segment.
        let t = IpTable::<u32>::build(
            vec![(v4(10, 0, 0, 0), 8, 1), (v4(10, 5, 128, 0), 24, 2)],
            32,
        );
        assert_eq!(ids(&t, v4(10, 4, 255, 255)), &[1]);
        assert_eq!(ids(&t, v4(10, 5, 0, 1)), &[1]);
        assert_eq!(ids(&t, v4(10, 5, 128, 9)), &[2, 1]);
        assert_eq!(ids(&t, v4(10, 5, 129, 0)), &[1]);
        assert_eq!(ids(&t, v4(10, 255, 255, 255)), &[1]);
        assert_eq!(ids(&t, v4(11, 0, 0, 0)), &[] as &[u32]);
        assert_eq!(ids(&t, v4(9, 255, 255, 255)), &[] as &[u32]);
        let t = IpTable::<u128>::build(vec![(u128::MAX, 128, 9), (1u128 << 127, 1, 8)], 128);
        assert_eq!(ids(&t, u128::MAX), &[9, 8]);
        assert_eq!(ids(&t, 0), &[] as &[u32]);
    }
}
