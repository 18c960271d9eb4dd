//! Which thread does a flow's packet work, for `--threads N`.
//!
//! The reading thread is one of the N: it processes a share of the flows itself and hands
//! the rest, in batches, to N-1 worker threads. A dedicated reader beside N workers would
//! put N+1 busy threads on N cores, and the scheduler then switches them hundreds of times
//! a second (measured at 2 threads on 2 cores: about 800 involuntary switches a run and
//! 8% longer wall time than this split). Reading also costs real work per packet (record
//! walk, page faults, the shard hash, batching), so the reader's share is smaller than a
//! worker's: what makes both loads equal.

use std::net::IpAddr;

/// Cost of reading one packet relative to the packet work of processing it (decode, flow
/// lookup, extract, detect). Measured on the benchmark mix (benches/e2e.sh) at 2 threads
/// from each thread's CPU time, 7 runs per share: with the reader keeping 32% of the flows
/// the worker used 0.02-0.07 s more CPU than the reader, with 37.5% 0.01-0.07 s less, with
/// 35% they were even (-0.03 to +0.05 s). A share of 35% at 2 threads means r = 0.30; the
/// reader then keeps 13% at 3 threads, 2.5% at 4 and none from 5.
pub const READ_COST: f64 = 0.30;

/// The split of flows between the reading thread and the worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPlan {
    /// Worker threads besides the reader (`threads - 1`).
    workers: usize,
    /// A packet whose 32-bit shard position is below this is the reader's (2^32 = all).
    reader_below: u64,
}

const SPAN: u64 = 1 << 32;

impl ShardPlan {
    /// The split for `threads` threads of packet work (at least 1), the reader among them.
    ///
    /// With reading cost r per packet (in units of packet work) and reader share s, the
    /// reader's load is r + s and each worker's is (1 - s) / (N - 1); they are equal at
    /// s = (1 - (N - 1) r) / N. From 5 threads on, reading alone is about a worker's load,
    /// and the reader keeps no share.
    pub fn new(threads: usize) -> Self {
        let n = threads.max(1);
        let share = ((1.0 - (n - 1) as f64 * READ_COST) / n as f64).clamp(0.0, 1.0);
        ShardPlan {
            workers: n - 1,
            reader_below: ((share * SPAN as f64) as u64).min(SPAN),
        }
    }

    /// Worker threads to start besides the reader.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The reader's share of flows, 0.0 to 1.0 (for the summary and the README's figures).
    pub fn reader_share(&self) -> f64 {
        self.reader_below as f64 / SPAN as f64
    }

    /// Where the packet of a flow with shard hash `h` goes: `None` for the reader itself,
    /// `Some(i)` for worker thread `i` (0-based, below [`ShardPlan::workers`]).
    #[inline]
    pub fn route(&self, h: u64) -> Option<usize> {
        let pos = h & (SPAN - 1);
        if pos < self.reader_below {
            return None;
        }
        // Positions at or above `reader_below` are spread evenly over the workers; there is
        // at least one, since a reader share below 1 needs 2 threads or more.
        let rest = SPAN - self.reader_below;
        Some(((pos - self.reader_below) * self.workers as u64 / rest) as usize)
    }
}

/// Symmetric hash of an address pair, used to pick the thread. Ports are left out on
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

    #[test]
    fn one_thread_keeps_everything_and_five_give_the_reader_nothing() {
        let one = ShardPlan::new(1);
        assert_eq!(one.workers(), 0);
        for h in [0, 1, u64::MAX, 0xffff_ffff, 1 << 40] {
            assert_eq!(one.route(h), None);
        }
        let five = ShardPlan::new(5);
        assert_eq!((five.workers(), five.reader_share()), (4, 0.0));
        assert_eq!(five.route(0), Some(0));
        assert_eq!(five.route(u64::MAX), Some(3));
        let two = ShardPlan::new(2);
        assert!((two.reader_share() - 0.35).abs() < 0.001, "{two:?}");
        assert_eq!(two.route(0), None);
        assert_eq!(two.route(u64::MAX), Some(0));
    }

    #[test]
    fn shards_spread_host_pairs_as_planned() {
        // 4,000 client hosts talking to 40 servers, IPv4 and IPv6: for every thread count up
        // to 8, the reader and each worker get their planned share within 10%.
        let pairs: Vec<(IpAddr, IpAddr)> = (0..4000u32)
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
            .collect();
        for n in 2..=8 {
            let plan = ShardPlan::new(n);
            let mut reader = 0u32;
            let mut per = vec![0u32; plan.workers()];
            for &(c, s) in &pairs {
                match plan.route(shard_hash(c, s)) {
                    None => reader += 1,
                    Some(w) => per[w] += 1,
                }
            }
            let total = pairs.len() as f64;
            let want_reader = total * plan.reader_share();
            assert!(
                (f64::from(reader) - want_reader).abs() <= total * 0.01 + want_reader * 0.1,
                "{n} threads: reader got {reader}, planned {want_reader:.0}"
            );
            let fair = (total - want_reader) / plan.workers() as f64;
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
