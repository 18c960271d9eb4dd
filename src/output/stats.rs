//! EVE `stats` records, in Suricata's shape (`event_type: "stats"`, counters grouped under
//! `stats.capture`, `stats.decoder`, `stats.flow`, `stats.app_layer`, `stats.detect`) so the
//! same dashboards read them, with cloudtap's own figures (rates, histograms, queues, skips)
//! under `stats.cloudtap`.

use crate::output::fanout::SinkStats;
use crate::stats::{Counters, Perf, Quantiles, StageStats};
use crate::timefmt::eve_timestamp;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Totals at the previous record, for per-interval rates.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub at: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
}

fn q(v: Quantiles) -> Value {
    json!({"count": v.count, "p50": v.p50, "p99": v.p99, "p99_9": v.p99_9, "max": v.max})
}

/// Writes one stats record for the run so far (`uptime` since start) into `out`, without a
/// newline; returns the totals to pass to the next call.
#[allow(clippy::too_many_arguments)] // one stats record: every part of it is one argument
pub fn write_record(
    c: &Counters,
    p: &Perf,
    stage: &StageStats,
    uptime: Duration,
    prev: Totals,
    sinks: &[SinkStats],
    event_id: &str,
    out: &mut Vec<u8>,
) -> Totals {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut ts = String::new();
    eve_timestamp(now_ns, &mut ts);
    let dt = uptime.saturating_sub(prev.at).as_secs_f64().max(1e-9);
    let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / dt).round() as u64;
    let skips: Map<String, Value> = c
        .skips
        .sorted()
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    // Per sink, by its name: what was delivered, spooled, replayed, and every event lost
    // with its cause (docs/sinks.md).
    let sinks: Map<String, Value> = sinks
        .iter()
        .map(|k| {
            (
                k.name.clone(),
                json!({
                    "sent": k.sent,
                    "spooled": k.spooled,
                    "replayed": k.replayed,
                    "dropped_oldest": k.dropped_oldest,
                    "dropped_newest": k.dropped_newest,
                    "rejected": k.rejected,
                    "errors": k.errors,
                    "reconnects": k.reconnects,
                    "queued": k.queued,
                    "spool_events": k.spool_events,
                    "spool_bytes": k.spool_bytes,
                    "spool_corrupt": k.spool_corrupt,
                    "up": k.up,
                }),
            )
        })
        .collect();
    let rec = json!({
        "timestamp": ts,
        "event_type": "stats",
        "stats": {
            "uptime": uptime.as_secs(),
            // Suricata's names: what the kernel handed the capture and what it lost; then
            // cloudtap's own causes of loss, each apart (never a silent drop).
            "capture": {
                "kernel_packets": if p.live { c.kernel_packets } else { c.packets },
                "kernel_drops": c.kernel_drops,
                "kernel_ifdrops": c.kernel_ifdrops,
                "ring_freezes": c.ring_freezes,
                "queue_drops": c.queue_drops + p.drops,
                "decode_errors": c.skips.total(),
            },
            "decoder": {
                "pkts": c.packets,
                "bytes": c.bytes,
                "invalid": c.skips.total(),
                "not_ip": c.not_ip,
                "tunnelled": c.tunnelled,
                "fragments": c.fragments,
                "reassembled": c.reassembled,
            },
            "flow": {
                "total": c.flows,
                "active": c.flows_active,
                "evicted_cap": c.flows_evicted_cap,
                "timed_out": c.flows_timed_out,
                "bypassed_pkts": c.bypassed_packets,
                "tcp_gaps": c.tcp_gaps,
                "tcp_ooo_dropped": c.tcp_ooo_dropped,
                "reassembly_bytes": c.reassembly_bytes,
                "frag_evicted": c.frag_evicted,
            },
            "app_layer": {
                "tx": {
                    "dns": c.dns_records,
                    "tls": c.tls_records,
                    "http": c.http_records,
                    "quic": c.quic_records,
                }
            },
            "detect": {
                "alert": c.alerts,
                "label": c.labels,
                "flow_address": c.flow_address_hits,
            },
            "cloudtap": {
                "pkts_per_s": rate(c.packets, prev.packets),
                "bits_per_s": rate(c.bytes, prev.bytes) * 8,
                "flows_per_s": rate(c.flows, prev.flows),
                "pkt_time_ns": q(p.pkt_ns.quantiles()),
                "alert_latency_us": q(p.alert_latency_us.quantiles()),
                "queue": {
                    "capacity_batches": p.queue_capacity,
                    "depth": q(p.queue_depth.quantiles()),
                    "reader_waits": p.reader_waits,
                    "drops": p.drops,
                },
                "skips": skips,
                "stage": stage,
            },
            "sinks": sinks,
        },
        "cloudtap": { "event_id": event_id },
    });
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &rec);
    Totals {
        at: uptime,
        packets: c.packets,
        bytes: c.bytes,
        flows: c.flows,
    }
}
