//! Flow stage: a bounded flow table keyed by the 5-tuple (both directions one flow, plus VLAN
//! ids), per-direction TCP reassembly, and bypass once a flow has told us what it can.

mod shard;
mod tcp;

pub use shard::{shard_hash, ShardTable, SHARD_BUCKETS};
pub use tcp::{Delivery, SegmentOutcome, TcpStream, MAX_OOO_BYTES, MAX_OOO_SEGMENTS};

use crate::detect::FlowContext;
use crate::extract::AppStream;
use crate::output::EndReason;
use rustc_hash::FxHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Default cap on flows tracked per worker.
pub const DEFAULT_MAX_FLOWS: usize = 262_144;
/// Idle timeouts (packet time), by state.
pub const TIMEOUT_TCP_NS: u64 = 600_000_000_000;
pub const TIMEOUT_TCP_CLOSED_NS: u64 = 30_000_000_000;
pub const TIMEOUT_UDP_NS: u64 = 120_000_000_000;
/// Incremental sweep (see `FlowTable::maybe_sweep`): one slab slot every this many packets,
const SWEEP_EVERY_PACKETS: u32 = 4;
/// and this many slots whenever packet time has advanced by `SWEEP_STEP_NS`.
const SWEEP_SLOTS_PER_STEP: usize = 256;
const SWEEP_STEP_NS: u64 = 1_000_000_000;
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
    /// Direction index of the client: the first packet's sender, corrected by a SYN or
    /// SYN-ACK.
    pub client: u8,
    /// Whether an observation for the detection stage came from this flow.
    pub observed: bool,
    /// A ClientHello of this flow named its server (SNI): the certificate need not be read
    /// to know where the client went.
    pub sni_seen: bool,
    /// The web service and agent seen on it, for the upload check at its end.
    pub ctx: Option<Box<FlowContext>>,
}

/// A flow that left the table, summarised for flow records and the upload check.
#[derive(Debug)]
pub struct Ended {
    pub key: FlowKey,
    pub id: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub client: u8,
    pub closed: bool,
    pub alerted: bool,
    pub reason: EndReason,
    pub ctx: Option<Box<FlowContext>>,
}

impl Ended {
    fn of(key: FlowKey, f: &mut Flow, reason: EndReason) -> Ended {
        Ended {
            key,
            id: f.id,
            first_ns: f.first_ns,
            last_ns: f.last_ns,
            pkts: f.pkts,
            bytes: f.bytes,
            client: f.client,
            closed: f.closed,
            alerted: f.observed || !f.alerted.is_empty(),
            reason,
            ctx: f.ctx.take(),
        }
    }
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
            client: 0,
            observed: false,
            sni_seen: false,
            ctx: None,
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

/// Recently used flows remembered per table. Traffic comes in trains: on a realistic mix,
/// half the packets belong to the previous packet's flow and nine in ten to one of the last
/// eight, so checking these first skips the hash table for most packets.
const RECENT: usize = 8;

/// Hash of a flow key, computed once per packet and used both for the recent-flow check and
/// the table (which keeps no hasher of its own).
#[inline]
fn key_hash(k: &FlowKey) -> u64 {
    let bits = |ip: IpAddr| -> u128 {
        match ip {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    };
    let (a, b) = (bits(k.a), bits(k.b));
    let mut x = (a as u64)
        ^ ((a >> 64) as u64).rotate_left(17)
        ^ (b as u64).rotate_left(31)
        ^ ((b >> 64) as u64).rotate_left(47)
        ^ (u64::from(k.pa) << 48
            | u64::from(k.pb) << 32
            | u64::from(k.proto) << 24
            | u64::from(k.vlan[0]) << 12
            | u64::from(k.vlan[1]));
    // fmix64: spreads the bits so both the table index and the tag are good.
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Bounded flow table: at the cap, the oldest flow (by creation) is evicted.
///
/// Flows live in a slab (`Vec<Slot>` plus a free list) and the hash table holds only slot
/// indexes, so it stays small enough for the cache and a slot can be remembered between
/// packets.
pub struct FlowTable {
    map: hashbrown::HashTable<u32>,
    slab: Vec<Slot>,
    free: Vec<u32>,
    /// (key hash, slot) of recently used flows.
    recent: [(u64, u32); RECENT],
    recent_next: usize,
    order: VecDeque<(FlowKey, u64)>,
    max: usize,
    /// Next slab slot the incremental sweep looks at, and the bytes counted so far this pass.
    sweep_at: usize,
    sweep_buffered: usize,
    /// Packet counter and packet time of the last sweep step.
    sweep_tick: u32,
    sweep_ts: u64,
    /// Reassembly bytes held by all flows: exact after each sweep pass, kept up to date in
    /// between by the worker (flows that went away are subtracted at the end of the next
    /// pass, so between passes it can only overestimate).
    pub buffered: usize,
    pub stats: TableStats,
    /// Keep a summary of every flow that leaves the table in `ended` (flow records, the
    /// upload check); the worker drains it after each packet.
    pub track_ends: bool,
    pub ended: Vec<Ended>,
}

/// Whether slab slot `i` holds the flow filed under `key`.
#[inline]
fn holds(slab: &[Slot], i: u32, key: &FlowKey) -> bool {
    slab.get(i as usize)
        .is_some_and(|s| s.key.as_ref() == Some(key))
}

/// A slab slot: the flow, the key it is filed under (`None` when free) and the key's hash.
struct Slot {
    key: Option<FlowKey>,
    hash: u64,
    flow: Flow,
}

impl FlowTable {
    pub fn new(max: usize) -> Self {
        FlowTable {
            map: hashbrown::HashTable::new(),
            slab: Vec::new(),
            free: Vec::new(),
            recent: [(0, u32::MAX); RECENT],
            recent_next: 0,
            order: VecDeque::new(),
            max: max.max(1),
            sweep_at: 0,
            sweep_buffered: 0,
            sweep_tick: 0,
            sweep_ts: 0,
            buffered: 0,
            stats: TableStats::default(),
            track_ends: false,
            ended: Vec::new(),
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

    #[inline]
    fn find(&mut self, key: &FlowKey, h: u64) -> Option<u32> {
        for &(rh, i) in &self.recent {
            if rh == h && holds(&self.slab, i, key) {
                return Some(i);
            }
        }
        let slab = &self.slab;
        let i = *self.map.find(h, |i| holds(slab, *i, key))?;
        self.remember(h, i);
        Some(i)
    }

    #[inline]
    fn remember(&mut self, h: u64, i: u32) {
        self.recent[self.recent_next] = (h, i);
        self.recent_next = (self.recent_next + 1) % RECENT;
    }

    fn slot_of(&self, key: &FlowKey) -> Option<u32> {
        let h = key_hash(key);
        self.map.find(h, |i| holds(&self.slab, *i, key)).copied()
    }

    fn remove(&mut self, key: &FlowKey, reason: EndReason) {
        let h = key_hash(key);
        let slab = &self.slab;
        let Ok(entry) = self.map.find_entry(h, |i| holds(slab, *i, key)) else {
            return;
        };
        let (i, _) = entry.remove();
        if let Some(s) = self.slab.get_mut(i as usize) {
            s.key = None;
            if self.track_ends {
                self.ended.push(Ended::of(*key, &mut s.flow, reason));
            }
            // Free the flow's buffers now; the slot is reused by the next new flow.
            s.flow = Flow::new(0, 0);
        }
        self.free.push(i);
    }

    /// Ends every flow still in the table (end of input), into `ended` when tracked.
    pub fn end_all(&mut self) {
        if !self.track_ends {
            return;
        }
        for s in &mut self.slab {
            if let Some(k) = s.key {
                self.ended
                    .push(Ended::of(k, &mut s.flow, EndReason::Shutdown));
            }
        }
    }

    /// As [`FlowTable::get`], with the table's reassembly byte count beside the flow.
    pub fn get_with_budget(&mut self, key: FlowKey, ts: u64) -> (&mut Flow, bool, &mut usize) {
        self.maybe_sweep(ts);
        let h = key_hash(&key);
        let mut created = false;
        let idx = match self.find(&key, h) {
            Some(i) => i,
            None => {
                while self.map.len() >= self.max {
                    match self.order.pop_front() {
                        Some((k, first)) => {
                            let same = self
                                .slot_of(&k)
                                .and_then(|i| self.slab.get(i as usize))
                                .is_some_and(|s| s.flow.first_ns == first);
                            if same {
                                self.remove(&k, EndReason::Forced);
                                self.stats.evicted_cap += 1;
                            }
                        }
                        None => break,
                    }
                }
                let slot = Slot {
                    key: Some(key),
                    hash: h,
                    flow: Flow::new(key.flow_id(ts), ts),
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slab[i as usize] = slot;
                        i
                    }
                    None => {
                        self.slab.push(slot);
                        (self.slab.len() - 1) as u32
                    }
                };
                let slab = &self.slab;
                self.map
                    .insert_unique(h, i, |j| slab.get(*j as usize).map_or(0, |s| s.hash));
                self.remember(h, i);
                self.order.push_back((key, ts));
                self.stats.created += 1;
                created = true;
                i
            }
        };
        let flow = &mut self.slab[idx as usize].flow;
        if ts > flow.last_ns {
            flow.last_ns = ts;
        }
        (flow, created, &mut self.buffered)
    }

    /// Expires idle flows a few slab slots at a time: every packet advances a cursor over
    /// the slab, so a full pass costs one sequential slot visit per packet instead of a
    /// pause that walks every flow at random.
    /// Ends every flow idle past its timeout at `now`: a live capture's clock, when a quiet
    /// link brings no packets to move packet time on. A whole pass over the table.
    pub fn expire_idle(&mut self, now: u64) {
        for i in 0..self.slab.len() {
            let Some(slot) = self.slab.get(i) else {
                continue;
            };
            let Some(k) = slot.key else {
                continue;
            };
            let f = &slot.flow;
            let limit = match (k.proto, f.closed) {
                (6, true) => TIMEOUT_TCP_CLOSED_NS,
                (6, false) => TIMEOUT_TCP_NS,
                _ => TIMEOUT_UDP_NS,
            };
            if now.saturating_sub(f.last_ns) >= limit {
                self.remove(&k, EndReason::Timeout);
                self.stats.timed_out += 1;
            }
        }
    }

    fn maybe_sweep(&mut self, now: u64) {
        if self.slab.is_empty() {
            return;
        }
        // One slot every few packets, and a larger step when packet time has moved on (a
        // quiet link still expires its flows).
        self.sweep_tick = self.sweep_tick.wrapping_add(1);
        let steps = if now >= self.sweep_ts + SWEEP_STEP_NS {
            self.sweep_ts = now;
            SWEEP_SLOTS_PER_STEP
        } else if self.sweep_tick % SWEEP_EVERY_PACKETS == 0 {
            1
        } else {
            return;
        };
        for _ in 0..steps {
            if self.sweep_at >= self.slab.len() {
                // A pass is complete: its byte count is the table's.
                self.sweep_at = 0;
                self.buffered = std::mem::take(&mut self.sweep_buffered);
            }
            let i = self.sweep_at;
            self.sweep_at += 1;
            let Some(slot) = self.slab.get(i) else {
                continue;
            };
            let Some(k) = slot.key else {
                continue;
            };
            let f = &slot.flow;
            let idle = now.saturating_sub(f.last_ns);
            let limit = match (k.proto, f.closed) {
                (6, true) => TIMEOUT_TCP_CLOSED_NS,
                (6, false) => TIMEOUT_TCP_NS,
                _ => TIMEOUT_UDP_NS,
            };
            if idle < limit {
                self.sweep_buffered += f.buffered(0) + f.buffered(1);
            } else {
                self.remove(&k, EndReason::Timeout);
                self.stats.timed_out += 1;
            }
        }
        // The eviction queue keeps entries of flows already gone; compact it when it holds
        // twice the cap, so it stays bounded (amortised: at most once per `max` new flows).
        if self.order.len() > 2 * self.max + 64 {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(k, first)| {
                self.slot_of(k)
                    .and_then(|i| self.slab.get(i as usize))
                    .is_some_and(|s| s.flow.first_ns == *first)
            });
            self.order = order;
        }
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
