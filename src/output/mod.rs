//! Output stage: events serialised once (EVE JSON lines, optionally ECS) and fanned out to
//! every sink, each with its own bounded queue, spool and thread (fanout.rs).

pub mod ecs;
pub mod eve;
pub mod event_id;
pub mod fanout;
pub mod spool;
pub mod stats;
pub mod transport;
pub mod url;

use crate::detect::{Field, Signature};
use crate::extract::Record;
use std::net::IpAddr;
use std::sync::Arc;

/// EVE event types the user can ask for with `--types`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Types {
    pub alert: bool,
    pub dns: bool,
    pub tls: bool,
    pub http: bool,
    pub quic: bool,
    pub stats: bool,
    pub flow: bool,
}

impl Types {
    /// Parses `alert,dns,tls,http,quic,stats` (any subset, comma separated).
    pub fn parse(s: &str) -> Result<Types, String> {
        let mut t = Types::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "alert" => t.alert = true,
                "dns" => t.dns = true,
                "tls" => t.tls = true,
                "http" => t.http = true,
                "quic" => t.quic = true,
                "stats" => t.stats = true,
                "flow" => t.flow = true,
                other => {
                    return Err(format!(
                    "unknown event type {other:?} in --types (alert, dns, tls, http, quic, flow, stats)"
                ))
                }
            }
        }
        if t == Types::default() {
            return Err("--types is empty".into());
        }
        Ok(t)
    }

    pub fn wants_record(&self, r: &Record) -> bool {
        match r {
            Record::Dns(_) => self.dns,
            Record::Tls(_) => self.tls,
            Record::Http(_) => self.http,
            Record::Quic(..) => self.quic,
            Record::TlsServer(_) => self.tls,
        }
    }
}

/// Where and when an event happened: the packet that carried it.
#[derive(Debug, Clone)]
pub struct Meta {
    pub ts_ns: u64,
    pub flow_id: u64,
    pub iface: Arc<str>,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub proto: u8,
    pub vlan: [u16; 2],
    pub tx_id: u64,
    pub to_server: bool,
}

/// What matched, for an alert.
#[derive(Debug, Clone)]
pub struct AlertInfo {
    pub sig: Arc<Signature>,
    pub field: Field,
    /// The value seen on the wire.
    pub value: String,
    /// The signature entry that matched it.
    pub pattern: String,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub meta: Meta,
    pub record: Option<Arc<Record>>,
    pub alert: Option<Box<AlertInfo>>,
    /// For a DNS query record: which question it describes (one record per question).
    pub question: usize,
    /// Labels from label signatures (`field=provider service region`).
    pub labels: Arc<Vec<String>>,
    /// When the reader took the packet's batch (for capture-to-alert latency).
    pub born: Option<std::time::Instant>,
    /// The detection stage's verdict on an alert (the `cloudtap` object).
    pub verdict: Option<Box<serde_json::Value>>,
    /// A flow that ended (`event_type` `flow`).
    pub flow: Option<Box<FlowRecord>>,
}

/// Why a flow ended, as Suricata names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Idle past its timeout.
    Timeout,
    /// Evicted at the flow table's cap.
    Forced,
    /// Still open at the end of the input.
    Shutdown,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// A Suricata-style `flow` record: the meta is oriented client to server.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub reason: EndReason,
    /// TCP: a FIN or RST was seen.
    pub closed: bool,
    pub alerted: bool,
}
