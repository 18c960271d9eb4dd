//! Bounded IPv4/IPv6 fragment reassembly.
//!
//! Memory is capped twice: by the number of datagrams being reassembled and by the bytes they
//! hold. Under pressure the oldest datagram is dropped first; datagrams that stay incomplete
//! longer than the timeout are dropped as time (packet time) advances. Every drop is counted.

use super::{Encap, Fragment};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Default cap on datagrams under reassembly at once (per worker).
pub const DEFAULT_MAX_DATAGRAMS: usize = 4096;
/// Default cap on bytes held by datagrams under reassembly (per worker).
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;
/// Default time after which an incomplete datagram is dropped, in nanoseconds (as Linux).
pub const DEFAULT_TIMEOUT_NS: u64 = 30_000_000_000;
/// Largest reassembled IP payload: an IP datagram cannot be larger.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, Clone, Copy)]
pub struct DefragConfig {
    pub max_datagrams: usize,
    pub max_bytes: usize,
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: DEFAULT_MAX_DATAGRAMS,
            max_bytes: DEFAULT_MAX_BYTES,
            timeout_ns: DEFAULT_TIMEOUT_NS,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub evicted_cap: u64,
    pub evicted_timeout: u64,
    pub oversize: u64,
    pub overlaps: u64,
}

#[derive(Hash, PartialEq, Eq, Clone, Copy, Debug)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
    vlan: [u16; 2],
}

struct Pending {
    created_ns: u64,
    buf: Vec<u8>,
    /// Byte ranges received so far, unsorted (a datagram has a handful).
    ranges: Vec<(u32, u32)>,
    total: Option<u32>,
    encap: Encap,
    depth: u8,
}

impl Pending {
    fn complete(&mut self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        self.ranges.sort_unstable();
        let mut covered = 0u32;
        for &(s, e) in &self.ranges {
            if s > covered {
                return false;
            }
            covered = covered.max(e);
        }
        covered >= total
    }
}

/// A datagram whose fragments have all arrived.
#[derive(Debug)]
pub struct Reassembled {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub data: Vec<u8>,
    pub encap: Encap,
    pub depth: u8,
}

pub struct Defragmenter {
    cfg: DefragConfig,
    map: FxHashMap<Key, Pending>,
    /// Creation order, for oldest-first eviction and timeouts. May hold keys already
    /// completed; those are skipped when popped.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    pub stats: DefragStats,
}

impl Defragmenter {
    pub fn new(cfg: DefragConfig) -> Self {
        Defragmenter {
            cfg,
            map: FxHashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            stats: DefragStats::default(),
        }
    }

    /// Datagrams currently held.
    pub fn pending(&self) -> usize {
        self.map.len()
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn drop_key(&mut self, key: &Key) -> bool {
        if let Some(p) = self.map.remove(key) {
            self.bytes -= p.buf.capacity();
            true
        } else {
            false
        }
    }

    /// Drops datagrams older than the timeout, relative to packet time `now_ns`.
    pub fn expire(&mut self, now_ns: u64) {
        while let Some(&(key, created)) = self.order.front() {
            if now_ns.saturating_sub(created) < self.cfg.timeout_ns {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|p| p.created_ns == created) && self.drop_key(&key) {
                self.stats.evicted_timeout += 1;
            }
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((key, created)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|p| p.created_ns == created) {
                self.drop_key(&key);
                self.stats.evicted_cap += 1;
                return;
            }
        }
    }

    /// Adds a fragment; returns the datagram when this fragment completes it.
    pub fn push(&mut self, f: &Fragment<'_>, now_ns: u64) -> Option<Reassembled> {
        self.stats.fragments += 1;
        self.expire(now_ns);
        let start = f.offset as usize;
        let end = start + f.payload.len();
        let key = Key {
            src: f.src,
            dst: f.dst,
            id: f.id,
            proto: f.proto,
            vlan: f.encap.vlan,
        };
        if end > MAX_DATAGRAM {
            self.stats.oversize += 1;
            self.drop_key(&key);
            return None;
        }
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cfg.max_datagrams {
                self.evict_oldest();
            }
            self.map.insert(
                key,
                Pending {
                    created_ns: now_ns,
                    buf: Vec::new(),
                    ranges: Vec::new(),
                    total: None,
                    encap: f.encap,
                    depth: f.depth,
                },
            );
            self.order.push_back((key, now_ns));
        }
        // Grow the buffer, keeping the byte cap (evicting older datagrams, never this one).
        let grow = {
            let p = self.map.get(&key)?;
            end.saturating_sub(p.buf.len())
        };
        while grow > 0 && self.bytes + grow > self.cfg.max_bytes && self.map.len() > 1 {
            let before = self.map.len();
            self.evict_oldest_except(&key);
            if self.map.len() == before {
                break;
            }
        }
        if self.bytes + grow > self.cfg.max_bytes {
            self.stats.evicted_cap += 1;
            self.drop_key(&key);
            return None;
        }
        let p = self.map.get_mut(&key)?;
        let before_cap = p.buf.capacity();
        if p.buf.len() < end {
            p.buf.resize(end, 0);
        }
        self.bytes += p.buf.capacity() - before_cap;
        if p.ranges
            .iter()
            .any(|&(s, e)| (start as u32) < e && s < end as u32)
        {
            self.stats.overlaps += 1;
        }
        p.buf[start..end].copy_from_slice(f.payload);
        p.ranges.push((start as u32, end as u32));
        if !f.more {
            p.total = Some(end as u32);
        }
        if p.complete() {
            let total = p.total.unwrap_or(0) as usize;
            let p = self.map.remove(&key)?;
            self.bytes -= p.buf.capacity();
            let mut data = p.buf;
            data.truncate(total);
            self.stats.reassembled += 1;
            return Some(Reassembled {
                src: f.src,
                dst: f.dst,
                proto: f.proto,
                data,
                encap: p.encap,
                depth: p.depth,
            });
        }
        None
    }

    fn evict_oldest_except(&mut self, keep: &Key) {
        let n = self.order.len();
        for _ in 0..n {
            let Some((key, created)) = self.order.pop_front() else {
                return;
            };
            if &key == keep {
                self.order.push_back((key, created));
                continue;
            }
            if self.map.get(&key).is_some_and(|p| p.created_ns == created) {
                self.drop_key(&key);
                self.stats.evicted_cap += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn frag(id: u32, offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            proto: 17,
            offset,
            more,
            payload,
            encap: Encap::default(),
            depth: 0,
        }
    }

    #[test]
    fn reassembles_out_of_order() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let a = [1u8; 16];
        let b = [2u8; 8];
        assert!(d.push(&frag(7, 16, false, &b), 0).is_none());
        let r = d.push(&frag(7, 0, true, &a), 1).expect("complete");
        assert_eq!(r.data.len(), 24);
        assert_eq!(&r.data[16..], &b);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.bytes(), 0);
    }

    #[test]
    fn caps_datagrams_and_bytes() {
        let cfg = DefragConfig {
            max_datagrams: 4,
            max_bytes: 64 * 1024,
            timeout_ns: u64::MAX,
        };
        let mut d = Defragmenter::new(cfg);
        let p = [0u8; 1024];
        for id in 0..1000 {
            d.push(&frag(id, 0, true, &p), u64::from(id));
            assert!(d.pending() <= 4);
            assert!(d.bytes() <= 64 * 1024);
        }
        assert_eq!(d.stats.evicted_cap, 996);
    }

    #[test]
    fn times_out_and_rejects_oversize() {
        let mut d = Defragmenter::new(DefragConfig::default());
        d.push(&frag(1, 0, true, &[0u8; 8]), 0);
        d.expire(DEFAULT_TIMEOUT_NS + 1);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.stats.evicted_timeout, 1);
        assert!(d.push(&frag(2, 65_528, false, &[0u8; 16]), 0).is_none());
        assert_eq!(d.stats.oversize, 1);
    }
}
