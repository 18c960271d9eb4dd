//! Stats beside the pipeline: each worker keeps its own counters (no sharing on the hot path)
//! and they are merged when the run ends, for the summary and the EVE `stats` record.

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Counted, named skips: malformed packets, unparseable records, caps hit.
#[derive(Debug, Default, Clone)]
pub struct Skips {
    map: FxHashMap<&'static str, u64>,
}

impl Skips {
    pub fn add(&mut self, reason: &'static str) {
        *self.map.entry(reason).or_insert(0) += 1;
    }

    pub fn add_n(&mut self, reason: &'static str, n: u64) {
        if n > 0 {
            *self.map.entry(reason).or_insert(0) += n;
        }
    }

    pub fn get(&self, reason: &str) -> u64 {
        self.map.get(reason).copied().unwrap_or(0)
    }

    pub fn merge(&mut self, other: &Skips) {
        for (k, v) in &other.map {
            *self.map.entry(k).or_insert(0) += v;
        }
    }

    pub fn sorted(&self) -> BTreeMap<&'static str, u64> {
        self.map.iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub fn total(&self) -> u64 {
        self.map.values().sum()
    }
}

/// Counters of one worker (or, merged, of the run).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub not_ip: u64,
    pub decoded: u64,
    pub tunnelled: u64,
    pub flows: u64,
    /// Flows in the table when the counters were taken.
    pub flows_active: u64,
    /// Bytes held for reassembly when the counters were taken.
    pub reassembly_bytes: u64,
    pub flows_evicted_cap: u64,
    pub flows_timed_out: u64,
    pub bypassed_packets: u64,
    pub tcp_ooo_dropped: u64,
    pub tcp_gaps: u64,
    pub dns_records: u64,
    pub tls_records: u64,
    pub http_records: u64,
    pub quic_records: u64,
    pub alerts: u64,
    pub labels: u64,
    /// New flows whose server address matched an address signature (checked once per flow).
    pub flow_address_hits: u64,
    pub fragments: u64,
    pub reassembled: u64,
    pub frag_evicted: u64,
    /// Live capture: packets the kernel passed to the capture (drops included).
    pub kernel_packets: u64,
    /// Live capture: packets lost because the ring or buffer was full.
    pub kernel_drops: u64,
    /// libpcap: packets the interface or its driver dropped.
    pub kernel_ifdrops: u64,
    /// AF_PACKET: times the ring froze with every block held.
    pub ring_freezes: u64,
    /// Live capture: packets dropped because a worker's queue was full.
    pub queue_drops: u64,
    pub alerts_by_sig: BTreeMap<u32, (String, u64)>,
    pub skips: Skips,
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.not_ip += o.not_ip;
        self.decoded += o.decoded;
        self.tunnelled += o.tunnelled;
        self.flows += o.flows;
        self.flows_active += o.flows_active;
        self.reassembly_bytes += o.reassembly_bytes;
        self.flows_evicted_cap += o.flows_evicted_cap;
        self.flows_timed_out += o.flows_timed_out;
        self.bypassed_packets += o.bypassed_packets;
        self.tcp_ooo_dropped += o.tcp_ooo_dropped;
        self.tcp_gaps += o.tcp_gaps;
        self.dns_records += o.dns_records;
        self.tls_records += o.tls_records;
        self.http_records += o.http_records;
        self.quic_records += o.quic_records;
        self.alerts += o.alerts;
        self.labels += o.labels;
        self.flow_address_hits += o.flow_address_hits;
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.frag_evicted += o.frag_evicted;
        self.kernel_packets += o.kernel_packets;
        self.kernel_drops += o.kernel_drops;
        self.kernel_ifdrops += o.kernel_ifdrops;
        self.ring_freezes += o.ring_freezes;
        self.queue_drops += o.queue_drops;
        for (id, (msg, n)) in &o.alerts_by_sig {
            let e = self
                .alerts_by_sig
                .entry(*id)
                .or_insert_with(|| (msg.clone(), 0));
            e.1 += n;
        }
        self.skips.merge(&o.skips);
    }
}

/// A latency/time histogram: 1 unit to one hour in nanoseconds (or microseconds), two
/// significant figures (about 30 KB), saturating at the top instead of failing.
#[derive(Debug, Clone)]
pub struct Hist(hdrhistogram::Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist::new()
    }
}

/// Largest value a [`Hist`] tells apart (one hour in nanoseconds); larger values count here.
const HIST_MAX: u64 = 3_600_000_000_000;

impl Hist {
    pub fn new() -> Hist {
        // Bounds are constants within hdrhistogram's limits, so this cannot fail; fall back
        // to an auto-resizing histogram all the same rather than panic.
        let h = hdrhistogram::Histogram::new_with_bounds(1, HIST_MAX, 2)
            .or_else(|_| hdrhistogram::Histogram::new(2))
            .unwrap_or_else(|_| hdrhistogram::Histogram::new(1).expect("1 sigfig is valid"));
        Hist(h)
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        self.0.saturating_record(v.clamp(1, HIST_MAX));
    }

    pub fn merge(&mut self, o: &Hist) {
        // Same bounds on both sides: `add` only fails on incompatible ranges.
        let _ = self.0.add(&o.0);
    }

    pub fn quantiles(&self) -> Quantiles {
        let h = &self.0;
        if h.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// p50, p99, p99.9 and max of a histogram, and how many values it holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Quantiles {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

/// Packets whose processing time is measured: one in this many (the clock read costs about
/// as much as a bypassed packet, so timing every packet would distort what it measures).
pub const PKT_TIME_SAMPLE: u64 = 16;

/// Timing beside the counters: per-packet processing time (workers, sampled), capture-to-
/// alert latency (writer), queue depth seen by the reader when it hands over a batch.
#[derive(Debug, Default, Clone)]
pub struct Perf {
    /// Nanoseconds a worker spent on one packet (decode to queued events), 1 in
    /// `PKT_TIME_SAMPLE` packets.
    pub pkt_ns: Hist,
    /// Microseconds from the reader taking a packet's batch to its alert being written.
    pub alert_latency_us: Hist,
    /// Batches already queued for the worker when the reader hands it one more.
    pub queue_depth: Hist,
    /// Times the reader found a worker's queue full and waited (offline input is never
    /// dropped: the reader waits; a live capture would count drops here).
    pub reader_waits: u64,
    pub drops: u64,
    /// Capacity of each worker queue, in batches.
    pub queue_capacity: u64,
    /// The input is a live capture (the kernel's counters are the capture's).
    pub live: bool,
}

impl Perf {
    pub fn merge(&mut self, o: &Perf) {
        self.pkt_ns.merge(&o.pkt_ns);
        self.alert_latency_us.merge(&o.alert_latency_us);
        self.queue_depth.merge(&o.queue_depth);
        self.reader_waits += o.reader_waits;
        self.drops += o.drops;
        self.queue_capacity = self.queue_capacity.max(o.queue_capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_and_merge() {
        let mut a = Hist::new();
        for v in 1..=1000u64 {
            a.record(v * 1000);
        }
        let q = a.quantiles();
        assert_eq!(q.count, 1000);
        // two significant figures: within 1%
        assert!((495_000..=505_000).contains(&q.p50), "{q:?}");
        assert!((985_000..=1_000_000).contains(&q.p99), "{q:?}");
        assert!(q.max >= 995_000 && q.max <= 1_010_000, "{q:?}");
        let mut b = Hist::new();
        b.record(u64::MAX); // saturates, never panics
        b.record(0);
        a.merge(&b);
        assert_eq!(a.quantiles().count, 1002);
        assert_eq!(Hist::new().quantiles(), Quantiles::default());
    }
}

/// Counters of the stage, for the stats record and the summary.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct StageStats {
    pub observations: u64,
    pub flow_ends: u64,
    pub alerts: u64,
    pub repeats: u64,
    pub context_only: u64,
    pub suppressed: u64,
    pub thresholded: u64,
    pub open_flushed_early: u64,
    pub burst_hosts_evicted: u64,
    pub trackers_reset: u64,
    pub learning_first_uses: u64,
    pub uploads_routine: u64,
    /// Sightings that arrived after their window was written (counted, not written).
    pub late_repeats: u64,
    pub closed_reset: u64,
    pub uploads_context: u64,
    pub fresh_reset: u64,
    pub upload_keys_evicted: u64,
    /// Hidden-DNS tables cleared at their cap (hosts using the local resolver, first uses).
    pub hidden_dns_resets: u64,
}
