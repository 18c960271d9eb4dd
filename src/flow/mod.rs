//! Flow stage: a bounded flow table keyed by the 5-tuple (both directions one flow, plus VLAN
//! ids), per-direction TCP reassembly, and bypass once a flow has told us what it can.

mod tcp;

pub use tcp::{TcpStream, MAX_OOO_BYTES, MAX_OOO_SEGMENTS};

use crate::extract::AppStream;
use rustc_hash::{FxHashMap, FxHasher};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Default cap on flows tracked per worker.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// Idle timeouts (packet time), by state.
pub const TIMEOUT_TCP_NS: u64 = 600_000_000_000;
pub const TIMEOUT_TCP_CLOSED_NS: u64 = 30_000_000_000;
pub const TIMEOUT_UDP_NS: u64 = 120_000_000_000;
/// How often (packet time) the table is swept for idle flows.
const SWEEP_EVERY_NS: u64 = 5_000_000_000;
/// Default cap on bytes held for reassembly (out-of-order segments and parser buffers) by all
/// the flows of one worker together.
pub const DEFAULT_MAX_REASSEMBLY_BYTES: usize = 128 << 20;
/// Most distinct (signature, value) alerts remembered per flow for de-duplication.
pub const MAX_ALERT_KEYS: usize = 256;

/// Canonical flow key: endpoint `a` is the lower (address, port) of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub a: IpAddr,
    pub b: IpAddr,
    pub pa: u16,
    pub pb: u16,
    pub proto: u8,
    pub vlan: [u16; 2],
}

impl FlowKey {
    /// Key and direction (0: src is endpoint a, 1: src is endpoint b).
    pub fn new(
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        vlan: [u16; 2],
    ) -> (FlowKey, usize) {
        if (src, sport) <= (dst, dport) {
            (
                FlowKey {
                    a: src,
                    b: dst,
                    pa: sport,
                    pb: dport,
                    proto,
                    vlan,
                },
                0,
            )
        } else {
            (
                FlowKey {
                    a: dst,
                    b: src,
                    pa: dport,
                    pb: sport,
                    proto,
                    vlan,
                },
                1,
            )
        }
    }

    /// Flow id as EVE writes it: deterministic (same capture, same id, whatever the thread
    /// count), masked to 51 bits so JavaScript-based SIEM code keeps it exact.
    pub fn flow_id(&self, first_ns: u64) -> u64 {
        let mut h = FxHasher::default();
        self.hash(&mut h);
        first_ns.hash(&mut h);
        let v = h.finish();
        // Fx mixes weakly in the high bits; fold them in before masking.
        let v = v ^ (v >> 29) ^ (v >> 47);
        let id = v & ((1u64 << 51) - 1);
        id.max(1)
    }
}

/// Symmetric hash of an address pair, used to pick the worker. Ports are left out on
/// purpose: IP fragments carry none, and must reach the same worker as the rest of their flow.
pub fn shard_hash(src: IpAddr, dst: IpAddr) -> u64 {
    let (lo, hi) = if src <= dst { (src, dst) } else { (dst, src) };
    let mut h = FxHasher::default();
    lo.hash(&mut h);
    hi.hash(&mut h);
    let v = h.finish();
    v ^ (v >> 32)
}

/// One flow.
#[derive(Debug)]
pub struct Flow {
    pub id: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// Per direction (index = direction as returned by [`FlowKey::new`]).
    pub tcp: [TcpStream; 2],
    pub app: [AppStream; 2],
    /// Once true, later packets are only counted.
    pub bypass: bool,
    pub closed: bool,
    /// (signature id, hash of matched value) already alerted.
    pub alerted: Vec<(u32, u64)>,
    /// UDP: number of packets looked at without finding anything.
    pub udp_misses: u8,
    /// QUIC: the client's Initial packets gathered so far.
    pub quic: Option<Box<crate::extract::quic::QuicClient>>,
}

impl Flow {
    fn new(id: u64, ts: u64) -> Self {
        Flow {
            id,
            first_ns: ts,
            last_ns: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp: [TcpStream::default(), TcpStream::default()],
            app: [AppStream::new(false), AppStream::new(false)],
            bypass: false,
            closed: false,
            alerted: Vec::new(),
            udp_misses: 0,
            quic: None,
        }
    }

    /// True the first time (signature, value) is seen on this flow.
    pub fn first_alert(&mut self, sig: u32, value: &str) -> bool {
        let mut h = FxHasher::default();
        value.hash(&mut h);
        let k = (sig, h.finish());
        if self.alerted.contains(&k) {
            return false;
        }
        if self.alerted.len() < MAX_ALERT_KEYS {
            self.alerted.push(k);
        }
        true
    }

    /// Bytes this flow holds for reassembly in direction `dir`.
    pub fn buffered(&self, dir: usize) -> usize {
        self.tcp[dir].buffered() + self.app[dir].buffered()
    }

    /// Updates bypass: both directions have nothing more to give.
    pub fn update_bypass(&mut self) {
        if self.app[0].is_finished() && self.app[1].is_finished() {
            self.bypass = true;
            self.tcp = [TcpStream::default(), TcpStream::default()];
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TableStats {
    pub created: u64,
    pub evicted_cap: u64,
    pub timed_out: u64,
}

/// Bounded flow table: at the cap, the oldest flow (by creation) is evicted.
pub struct FlowTable {
    map: FxHashMap<FlowKey, Flow>,
    order: VecDeque<(FlowKey, u64)>,
    max: usize,
    last_sweep: u64,
    /// Reassembly bytes held by all flows: exact after each sweep, kept up to date in
    /// between by the worker (evicted flows are subtracted at the next sweep, so between
    /// sweeps it can only overestimate).
    pub buffered: usize,
    pub stats: TableStats,
}

impl FlowTable {
    pub fn new(max: usize) -> Self {
        FlowTable {
            map: FxHashMap::default(),
            order: VecDeque::new(),
            max: max.max(1),
            last_sweep: 0,
            buffered: 0,
            stats: TableStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Finds or creates the flow. `created` tells whether it is new.
    pub fn get(&mut self, key: FlowKey, ts: u64) -> (&mut Flow, bool) {
        let (f, c, _) = self.get_with_budget(key, ts);
        (f, c)
    }

    /// As [`FlowTable::get`], with the table's reassembly byte count beside the flow.
    pub fn get_with_budget(&mut self, key: FlowKey, ts: u64) -> (&mut Flow, bool, &mut usize) {
        self.maybe_sweep(ts);
        let mut created = false;
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.max {
                match self.order.pop_front() {
                    Some((k, first)) => {
                        if self.map.get(&k).is_some_and(|f| f.first_ns == first) {
                            self.map.remove(&k);
                            self.stats.evicted_cap += 1;
                        }
                    }
                    None => break,
                }
            }
            self.map.insert(key, Flow::new(key.flow_id(ts), ts));
            self.order.push_back((key, ts));
            self.stats.created += 1;
            created = true;
        }
        // The entry exists: inserted above if it was missing.
        let flow = self
            .map
            .entry(key)
            .or_insert_with(|| Flow::new(key.flow_id(ts), ts));
        if ts > flow.last_ns {
            flow.last_ns = ts;
        }
        (flow, created, &mut self.buffered)
    }

    fn maybe_sweep(&mut self, now: u64) {
        if now < self.last_sweep + SWEEP_EVERY_NS {
            return;
        }
        self.last_sweep = now;
        let before = self.map.len();
        let mut buffered = 0;
        self.map.retain(|k, f| {
            let idle = now.saturating_sub(f.last_ns);
            let limit = match (k.proto, f.closed) {
                (6, true) => TIMEOUT_TCP_CLOSED_NS,
                (6, false) => TIMEOUT_TCP_NS,
                _ => TIMEOUT_UDP_NS,
            };
            let keep = idle < limit;
            if keep {
                buffered += f.buffered(0) + f.buffered(1);
            }
            keep
        });
        self.buffered = buffered;
        self.stats.timed_out += (before - self.map.len()) as u64;
        // Drop order entries of flows that are gone, so the queue stays bounded.
        let map = &self.map;
        self.order
            .retain(|(k, first)| map.get(k).is_some_and(|f| f.first_ns == *first));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_symmetric_and_id_stable() {
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let (k1, d1) = FlowKey::new(a, b, 1234, 443, 6, [0, 0]);
        let (k2, d2) = FlowKey::new(b, a, 443, 1234, 6, [0, 0]);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        assert_eq!(k1.flow_id(5), k2.flow_id(5));
        assert!(k1.flow_id(5) < 1 << 51);
        assert_eq!(shard_hash(a, b), shard_hash(b, a));
    }

    #[test]
    fn table_is_capped() {
        let mut t = FlowTable::new(100);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        for p in 0..10_000u16 {
            let (k, _) = FlowKey::new(a, a, p, 80, 6, [0, 0]);
            t.get(k, u64::from(p));
            assert!(t.len() <= 100);
        }
        assert_eq!(t.stats.evicted_cap, 9_900);
    }
}
