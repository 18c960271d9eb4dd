//! SKELETON (issue 13): the sink interface. The API below is the contract the pipeline's
//! writer uses; the owner fills in the bodies (and may add to it, not change it).

use crate::output::transport::{Kind, OutMeta, Transport};
use crate::output::url::{SinkSpec, WhenFull};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settled once by `Config` (`--spool`, `--spool-max`, `--when-full`, `--flush-timeout`).
#[derive(Debug, Clone)]
pub struct FanoutCfg {
    /// `--spool DIR`: each sink spools under `DIR/<sink name>/`.
    pub spool: Option<PathBuf>,
    /// `--spool-max BYTES`, per sink.
    pub spool_max: u64,
    /// For sinks without `when_full=`: `--when-full`, else block offline, drop_oldest live.
    pub when_full: WhenFull,
    /// `--flush-timeout`: at exit, how long sinks may take to deliver what is queued.
    pub flush_timeout: Duration,
    /// Events each sink's in-memory queue holds.
    pub queue_cap: usize,
}

/// One sink's counters (stats records, the exit summary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// Delivered (per the transport's guarantee), replayed ones included.
    pub sent: u64,
    /// Written to the spool (sink down, slow, or queue full).
    pub spooled: u64,
    /// Taken back from the spool and delivered.
    pub replayed: u64,
    pub dropped_oldest: u64,
    pub dropped_newest: u64,
    /// Refused by the receiver for good (too large, invalid): never retried.
    pub rejected: u64,
    /// Send or connect failures.
    pub errors: u64,
    pub reconnects: u64,
    /// Now in the in-memory queue.
    pub queued: u64,
    /// Now in the spool.
    pub spool_events: u64,
    pub spool_bytes: u64,
    /// Spool records found damaged at start (torn write, bad checksum) and skipped.
    pub spool_corrupt: u64,
    /// The transport is connected and the spool empty.
    pub up: bool,
}

pub struct Fanout {}

impl Fanout {
    /// Opens every sink's transport, spool and thread. Errors name the sink's URL.
    pub fn start(specs: Vec<SinkSpec>, cfg: FanoutCfg) -> Result<Fanout, String> {
        let _ = (specs, cfg);
        unimplemented!()
    }

    /// As `start`, with transports built by the caller (tests, `pipeline::run` over any
    /// writer).
    pub fn start_with(
        sinks: Vec<(SinkSpec, Box<dyn Transport>)>,
        cfg: FanoutCfg,
    ) -> Result<Fanout, String> {
        let _ = (sinks, cfg);
        unimplemented!()
    }

    /// Some sink wants ECS: the writer makes the ECS line too.
    pub fn needs_ecs(&self) -> bool {
        unimplemented!()
    }

    /// Hands one event, already serialised (EVE always; ECS when `needs_ecs`), to every sink
    /// that takes its kind. Blocks only for a `block` sink whose spool is full.
    pub fn send(&self, meta: OutMeta, eve: Arc<[u8]>, ecs: Option<Arc<[u8]>>) {
        let _ = (meta, eve, ecs);
        unimplemented!()
    }

    /// Some sink takes events of this kind.
    pub fn wants(&self, kind: Kind) -> bool {
        let _ = kind;
        unimplemented!()
    }

    /// SIGHUP: file sinks reopen their paths.
    pub fn reopen(&self) {
        unimplemented!()
    }

    /// Every sink's counters now.
    pub fn stats(&self) -> Vec<SinkStats> {
        unimplemented!()
    }

    /// Flushes every sink for at most `flush_timeout`, leaves what is undelivered in its
    /// spool (or counts it dropped without one), stops the threads, and returns the final
    /// counters.
    pub fn finish(self) -> Vec<SinkStats> {
        unimplemented!()
    }
}
