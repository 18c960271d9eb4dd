//! Which thread does a flow's packet work, for `--threads N`.
//!
//! The reading thread is one of the N: it processes some flows itself and hands the others,
//! in batches, to N-1 worker threads. A dedicated reader beside N workers would put N+1
//! busy threads on N cores, and the scheduler then switches them hundreds of times a run.
//!
//! Flows are grouped into buckets by a symmetric hash of the address pair, so both
//! directions of a flow, and the fragments of its datagrams, fall in one bucket. A bucket
//! is given an owner the first time a packet of it is read, and keeps it for the whole run:
//! a flow never changes thread. The owner is chosen by load at that moment: the worker with
//! the shortest queue, unless every worker already has `busy_at` batches waiting, in which
//! case the reader keeps the bucket. So the reader takes on packet work exactly when the
//! workers cannot keep up with its reading, whatever the traffic mix and thread count. A
//! fixed split by hash cannot do that: reading costs more or less of a packet's work from
//! one capture to the next, and the load moves within a capture. On the benchmark mix at
//! 2 threads the fixed split that balanced best on average took 0.50 s (median of 9), this
//! one 0.42 s, with the same alerts and records. The limit: once every bucket has been seen
//! (a long live capture), the split no longer follows the load.

use std::net::IpAddr;

/// Buckets of the owner table: 65,536 owners of 2 bytes, 128 KiB, which stays in the
/// reader's cache. Host pairs sharing a bucket share a thread, which costs nothing.
pub const SHARD_BUCKETS: usize = 1 << 16;

/// A bucket no packet has been seen for yet.
const UNSET: u16 = u16::MAX;
/// Owner value of the reader itself; workers are 1 to N-1.
const READER: u16 = 0;

/// The owner table: which thread processes each bucket of flows.
#[derive(Debug, Clone)]
pub struct ShardTable {
    owner: Vec<u16>,
    workers: usize,
    /// A worker with this many batches queued is busy: new buckets go elsewhere.
    busy_at: usize,
    /// Where the search for the least-loaded worker starts (rotates, so that ties spread).
    next: usize,
    /// Buckets given to the reader, and to anyone.
    reader_buckets: u64,
    assigned: u64,
}

impl ShardTable {
    /// The table for `threads` threads of packet work (at least 1), the reader among them.
    pub fn new(threads: usize, busy_at: usize) -> Self {
        // Owners are u16 below UNSET, so thread counts above that are capped.
        let workers = threads.clamp(1, usize::from(UNSET - 1)) - 1;
        ShardTable {
            owner: if workers == 0 {
                Vec::new()
            } else {
                vec![UNSET; SHARD_BUCKETS]
            },
            workers,
            busy_at: busy_at.max(1),
            next: 0,
            reader_buckets: 0,
            assigned: 0,
        }
    }

    /// Worker threads to start besides the reader.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// (buckets kept by the reader, buckets assigned): for the summary and the stats.
    pub fn split(&self) -> (u64, u64) {
        (self.reader_buckets, self.assigned)
    }

    /// Where the packet of a flow with shard hash `h` goes: `None` for the reader itself,
    /// `Some(i)` for worker thread `i` (0-based, below [`ShardTable::workers`]).
    /// `depth(i)` is worker `i`'s queue length in batches; it is asked only when a bucket is
    /// seen for the first time.
    #[inline]
    pub fn route(&mut self, h: u64, depth: impl Fn(usize) -> usize) -> Option<usize> {
        if self.workers == 0 {
            return None;
        }
        let b = ((h >> 16) as usize) & (SHARD_BUCKETS - 1);
        let current = self.owner.get(b).copied().unwrap_or(READER);
        let o = if current == UNSET {
            let o = self.assign(depth);
            if let Some(slot) = self.owner.get_mut(b) {
                *slot = o;
            }
            o
        } else {
            current
        };
        match o {
            READER => None,
            w => Some(usize::from(w) - 1),
        }
    }

    /// Picks the owner of a new bucket: the least-loaded worker, or the reader when every
    /// worker is busy.
    fn assign(&mut self, depth: impl Fn(usize) -> usize) -> u16 {
        let mut best = (usize::MAX, 0usize);
        for k in 0..self.workers {
            let w = (self.next + k) % self.workers;
            let d = depth(w);
            if d < best.0 {
                best = (d, w);
            }
        }
        self.assigned += 1;
        if best.0 >= self.busy_at {
            self.reader_buckets += 1;
            return READER;
        }
        self.next = (best.1 + 1) % self.workers;
        (best.1 + 1) as u16
    }
}

/// Symmetric hash of an address pair, used to pick the bucket. Ports are left out on
/// purpose: IP fragments carry none, and must reach the same thread as the rest of their
/// flow. The reader computes it for every packet, so it is two multiplies, not a generic
/// hasher.
#[inline]
pub fn shard_hash(src: IpAddr, dst: IpAddr) -> u64 {
    let wide = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) ^ (1 << 127),
    };
    let fold = |x: u128| (x as u64) ^ ((x >> 64) as u64).rotate_left(32);
    let (a, b) = (wide(src), wide(dst));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let h = (fold(lo).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ fold(hi))
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4,000 client hosts talking to 40 servers, IPv4 and IPv6.
    fn pairs() -> Vec<(IpAddr, IpAddr)> {
        (0..4000u32)
            .map(|i| {
                if i % 4 == 0 {
                    let c = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
                    let s = std::net::Ipv6Addr::from(0x2606_4700_u128 << 96 | u128::from(i % 40));
                    (IpAddr::V6(c), IpAddr::V6(s))
                } else {
                    let c = std::net::Ipv4Addr::from(0x0a00_0000 + i);
                    let s = std::net::Ipv4Addr::from(0x3400_0000 + (i % 40) * 256);
                    (IpAddr::V4(c), IpAddr::V4(s))
                }
            })
            .collect()
    }

    #[test]
    fn one_thread_keeps_everything() {
        let mut t = ShardTable::new(1, 4);
        assert_eq!(t.workers(), 0);
        for h in [0, 1, u64::MAX, 0xffff_ffff, 1 << 40] {
            assert_eq!(t.route(h, |_| 0), None);
        }
    }

    #[test]
    fn new_buckets_go_to_the_least_loaded_and_to_the_reader_when_all_are_busy() {
        let mut t = ShardTable::new(4, 4);
        assert_eq!(t.workers(), 3);
        let depths = [5usize, 2, 3];
        assert_eq!(t.route(1 << 16, |w| depths[w]), Some(1));
        let busy = [4usize, 9, 4];
        assert_eq!(t.route(2 << 16, |w| busy[w]), None);
        assert_eq!(t.split(), (1, 2));
    }

    #[test]
    fn a_bucket_keeps_its_owner_whatever_the_load_later() {
        // Both directions of every host pair, seen again under changing queue depths, go
        // where their bucket went first: a flow never changes thread.
        let mut t = ShardTable::new(3, 4);
        let mut first = std::collections::HashMap::new();
        for (round, load) in [0usize, 4, 1, 9].into_iter().enumerate() {
            for (i, &(c, s)) in pairs().iter().enumerate() {
                let depth = |w: usize| (load + w + i) % 6;
                let there = t.route(shard_hash(c, s), depth);
                let back = t.route(shard_hash(s, c), depth);
                assert_eq!(there, back, "pair {i}: directions split");
                let was = *first.entry(i).or_insert(there);
                assert_eq!(was, there, "pair {i} moved in round {round}");
            }
        }
    }

    #[test]
    fn idle_workers_share_new_buckets_evenly() {
        // With every queue empty, new host pairs spread over the workers within 10%.
        for n in 2..=8 {
            let mut t = ShardTable::new(n, 4);
            let mut per = vec![0u32; t.workers()];
            for &(c, s) in &pairs() {
                match t.route(shard_hash(c, s), |_| 0) {
                    Some(w) => per[w] += 1,
                    None => panic!("{n} threads: the reader took a bucket with idle workers"),
                }
            }
            let fair = pairs().len() as f64 / t.workers() as f64;
            for (w, &k) in per.iter().enumerate() {
                let off = (f64::from(k) - fair).abs() / fair;
                assert!(
                    off < 0.10,
                    "{n} threads: worker {w} got {k}, fair {fair:.0}"
                );
            }
        }
    }
}
