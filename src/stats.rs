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
    pub fragments: u64,
    pub reassembled: u64,
    pub frag_evicted: u64,
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
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.frag_evicted += o.frag_evicted;
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
