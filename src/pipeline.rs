//! Wires the stages to threads: one reader per run processes some flows itself and hands
//! batches of the other packets to N-1 workers, through bounded crossbeam channels. Flows
//! are bucketed by a symmetric hash of the innermost address pair, and each bucket's owner
//! is chosen by load the first time it is seen (see `flow::ShardTable`); each
//! worker owns its flow table and defragmenter (nothing shared on the hot path); one writer
//! thread serialises and writes EVE.

use crate::capture::{Batch, CaptureError, FileReader, PacketRef};
use crate::config::AlertMode;
use crate::correlate::{FlowEnd, Observation, Stage, StageCfg, StageStats};
use crate::decode::defrag::{DefragConfig, Defragmenter};
use crate::decode::{self, Decoded, Outcome, Transport};
use crate::detect::{Action, Field, FlowContext, Hit, Ruleset, SeenHit};
use crate::extract::{self, Record};
use crate::flow::{
    shard_hash, Ended, FlowKey, FlowTable, ShardTable, DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_REASSEMBLY_BYTES,
};
use crate::output::{eve, stats as eve_stats, AlertInfo, Event, FlowRecord, Meta, Types};
use crate::stats::{Counters, Hist, Perf, PKT_TIME_SAMPLE};
use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Packets per batch handed to a worker. Every handover is a channel operation and often a
/// wake-up of a sleeping worker; at 256 packets those kept the reader, the bottleneck at
/// 2 threads, busy enough to leave the workers idle a third of the time.
const BATCH_PKTS: usize = 1024;
/// Batches queued per worker before the reader waits.
const QUEUE_BATCHES: usize = 8;
/// A flow bucket seen for the first time while every worker has this many batches queued
/// is kept by the reader (see `flow::ShardTable`). Half the queue: on the benchmark mix at
/// 2 threads, 9 interleaved runs each, 4 gave medians of 0.48 s and 0.42 s against 0.50 s
/// for 2 and 0.44 s for 6 (and 0.52 s and 0.50 s for the fixed hash split it replaced).
const READER_TAKES_AT: usize = QUEUE_BATCHES / 2;
/// Default `--stats-interval`, seconds (Suricata's default too).
pub const DEFAULT_STATS_INTERVAL_S: u64 = 8;

#[derive(Debug, Clone)]
pub struct Config {
    pub files: Vec<PathBuf>,
    pub threads: usize,
    pub types: Types,
    pub max_flows: usize,
    /// Cap on reassembly bytes per worker (see `flow::DEFAULT_MAX_REASSEMBLY_BYTES`).
    pub max_reassembly: usize,
    pub defrag: DefragConfig,
    /// Draw a progress line on stderr while reading (when it is a terminal).
    pub progress: bool,
    /// Write an EVE `stats` record this often (when `types.stats`), and one at the end.
    pub stats_interval: Duration,
    /// Per-entity detections (the detection stage) or per-flow list hits.
    pub alert_mode: AlertMode,
    /// Flows that sent at least this many bytes from the client reach the detection stage
    /// when they end (`correlate::UploadCfg::floor`).
    pub upload_floor: u64,
    /// Whether the detection stage uses context-only records (a label hit with no agent):
    /// only a baseline (`--state`) or a `[[policy]]` does anything with them.
    pub context_observations: bool,
}

impl Config {
    pub fn new(files: Vec<PathBuf>) -> Self {
        Config {
            files,
            threads: 1,
            types: Types {
                alert: true,
                ..Types::default()
            },
            max_flows: DEFAULT_MAX_FLOWS,
            max_reassembly: DEFAULT_MAX_REASSEMBLY_BYTES,
            defrag: DefragConfig::default(),
            progress: false,
            stats_interval: Duration::from_secs(DEFAULT_STATS_INTERVAL_S),
            alert_mode: AlertMode::Entity,
            upload_floor: crate::correlate::UploadCfg::default().floor(),
            context_observations: true,
        }
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    pub counters: Counters,
    pub files_failed: Vec<String>,
    pub truncated_files: Vec<String>,
    pub elapsed_s: f64,
    pub events_written: u64,
    pub write_error: Option<String>,
    /// Histograms and queue figures of the run.
    pub perf: Perf,
    /// Flow buckets kept by the reader, and buckets assigned in all (`flow::ShardTable`).
    pub shard_split: (u64, u64),
    /// The detection stage's counters.
    pub stage: StageStats,
    /// What the detection stage logged (baseline set aside, save errors).
    pub stage_log: Vec<String>,
    /// The baseline's size, evictions and learning state (with `--state`).
    pub baseline: Option<String>,
}

struct WorkBatch {
    source: Arc<str>,
    batch: Batch,
    /// When the reader started filling this batch: the start of capture-to-alert latency.
    read_at: Instant,
}

/// What workers and the reader send to the writer thread.
enum Msg {
    Events(Vec<Event>),
    /// A worker's counters and packet-time histogram so far (periodically, and at its end).
    Worker(usize, Box<(Counters, Hist)>),
    /// The reader's queue figures (at the end of the input).
    Reader(Box<Perf>),
    /// Records that matched something, for the detection stage.
    Observations(Vec<Observation>),
    /// Flows that ended having sent enough to matter, for the detection stage.
    FlowEnds(Vec<FlowEnd>),
}

/// Runs the offline pipeline over `cfg.files`, writing EVE lines to `sink`, with the
/// detection stage's defaults and no baseline.
pub fn run(cfg: &Config, rules: Arc<Ruleset>, sink: Box<dyn Write + Send>) -> RunReport {
    let stage = Stage::without_state(StageCfg::default());
    run_shared(cfg, Arc::new(ArcSwap::new(rules)), sink, stage)
}

/// As [`run`], with signatures that may be swapped while it runs (reload): each worker picks
/// up the current set at its next batch, without locking.
pub fn run_shared(
    cfg: &Config,
    shared: Arc<ArcSwap<Ruleset>>,
    sink: Box<dyn Write + Send>,
    stage: Stage,
) -> RunReport {
    let start = Instant::now();
    let n = cfg.threads.max(1);
    let mut plan = ShardTable::new(n, READER_TAKES_AT);
    let (ev_tx, ev_rx) = bounded::<Msg>(n * 8);
    let wcfg = WriterCfg {
        stats: cfg.types.stats,
        interval: cfg.stats_interval.max(Duration::from_millis(100)),
        workers: n,
        start,
    };
    let writer = thread::spawn(move || writer_loop(ev_rx, sink, wcfg, stage));
    let mut txs = Vec::with_capacity(n);
    let mut workers = Vec::with_capacity(n);
    // Emptied batches go back to the reader: no allocation per batch, and no memory freed
    // on one thread that another allocated (glibc then contends for the arena lock).
    let (spare_tx, spare_rx) = bounded::<Batch>(plan.workers().max(1) * (QUEUE_BATCHES + 2));
    // The reader thread does packet work itself (all of it with one thread, as Suricata's
    // single runmode; with more, the flows the workers cannot take on): `--threads N` is N
    // busy threads on N cores, not a reader beside N workers. Its stats index is 0; the
    // worker threads' are 1 to N-1.
    let mut inline = Worker::new(shared.load_full(), cfg, ev_tx.clone());
    let mut inline_snapshot = Instant::now();
    let mut inline_pkts = 0u64;
    for _ in 0..plan.workers() {
        let (tx, rx) = bounded::<WorkBatch>(QUEUE_BATCHES);
        txs.push(tx);
        let shared = shared.clone();
        let ev_tx = ev_tx.clone();
        let cfg = cfg.clone();
        let index = workers.len() + 1;
        let interval = cfg.stats_interval;
        let spare_tx = spare_tx.clone();
        workers.push(thread::spawn(move || {
            let mut w = Worker::new(shared.load_full(), &cfg, ev_tx);
            let mut last_snapshot = Instant::now();
            for wb in rx {
                w.refresh_rules(&shared);
                w.batch_at = wb.read_at;
                for i in 0..wb.batch.len() {
                    // The packet bytes were written by the reader's core a while ago and
                    // are likely out of cache by now: ask for a later packet's headers
                    // while this one is processed.
                    if let Some(ahead) = wb.batch.bytes(i + PREFETCH_AHEAD) {
                        prefetch(ahead);
                    }
                    w.timed_packet(&wb.batch.get(i), &wb.source);
                }
                w.flush();
                let mut spare = wb.batch;
                spare.clear();
                let _ = spare_tx.try_send(spare);
                if last_snapshot.elapsed() >= interval {
                    last_snapshot = Instant::now();
                    w.send_snapshot(index);
                }
            }
            w.send_snapshot(index);
            w.counters()
        }));
    }
    let reader_tx = ev_tx;
    let mut reader_perf = Perf {
        queue_capacity: QUEUE_BATCHES as u64,
        ..Perf::default()
    };
    let mut report = RunReport::default();
    for path in &cfg.files {
        let source: Arc<str> = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into();
        let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut progress = Progress::new(cfg.progress && file_size > 32 << 20, &source, file_size);
        let mut batches: Vec<Batch> = Vec::new();
        let mut read_at = vec![Instant::now(); plan.workers()];
        let result = FileReader::open(path).and_then(|mut r| {
            // Batches of shared chunks hold references, not bytes.
            let bytes = if r.shares_buffers() { 0 } else { BATCH_PKTS * 1600 };
            batches = (0..plan.workers())
                .map(|_| Batch::with_capacity(bytes, BATCH_PKTS))
                .collect();
            let res = r.for_each_or_wait(|p: Option<&PacketRef<'_>>| {
                let Some(p) = p else {
                    // The next read may block (a pipe, a file being written): hand on the
                    // packets held back for batching, so that their alerts do not wait
                    // for traffic that may not come.
                    for (w, tx) in txs.iter().enumerate() {
                        if !batches[w].is_empty() {
                            let part = swap_out(&mut batches[w], &spare_rx, bytes);
                            let wb = WorkBatch {
                                source: source.clone(),
                                batch: part,
                                read_at: read_at[w],
                            };
                            hand_over(tx, wb, &mut reader_perf);
                        }
                    }
                    return;
                };
                progress.tick(p.data.len() as u64 + 16);
                let route = match plan.workers() {
                    0 => None,
                    _ => plan.route(shard_of(p), |w| txs.get(w).map_or(0, |t| t.len())),
                };
                let Some(w) = route else {
                    let w = &mut inline;
                    inline_pkts += 1;
                    if inline_pkts % INLINE_BATCH == 1 {
                        w.refresh_rules(&shared);
                        w.batch_at = Instant::now();
                        if inline_snapshot.elapsed() >= cfg.stats_interval {
                            inline_snapshot = Instant::now();
                            w.send_snapshot(0);
                        }
                    }
                    w.timed_packet(p, &source);
                    // Events and observations go out at once: the next read may block (a
                    // pipe, a live source), an alert must not wait for traffic that may not
                    // come, and the detection stage's clock must not run ahead of what the
                    // reader's own flows saw (their windows would close early).
                    if w.has_pending() {
                        w.flush();
                    }
                    return;
                };
                if batches[w].is_empty() {
                    read_at[w] = Instant::now();
                }
                batches[w].push(p);
                if batches[w].len() >= BATCH_PKTS {
                    let full = swap_out(&mut batches[w], &spare_rx, bytes);
                    hand_over(
                        &txs[w],
                        WorkBatch {
                            source: source.clone(),
                            batch: full,
                            read_at: read_at[w],
                        },
                        &mut reader_perf,
                    );
                }
            });
            if r.truncated_tail {
                report.truncated_files.push(format!(
                    "{}: file ends inside a record after packet {} (byte offset {}); the partial record was skipped",
                    path.display(),
                    r.packets(),
                    r.offset()
                ));
            }
            res
        });
        progress.finish();
        for (w, b) in batches.into_iter().enumerate() {
            if !b.is_empty() {
                hand_over(
                    &txs[w],
                    WorkBatch {
                        source: source.clone(),
                        batch: b,
                        read_at: read_at[w],
                    },
                    &mut reader_perf,
                );
            }
        }
        if let Err(e) = result {
            report.files_failed.push(match &e {
                CaptureError::Corrupt { .. } => format!("{e} (packets before it were processed)"),
                _ => e.to_string(),
            });
        }
    }
    drop(txs);
    inline.flush();
    inline.send_snapshot(0);
    report.counters.merge(&inline.counters());
    let _ = reader_tx.send(Msg::Reader(Box::new(reader_perf)));
    drop(reader_tx);
    for w in workers {
        if let Ok(c) = w.join() {
            report.counters.merge(&c);
        }
    }
    match writer.join() {
        Ok(w) => {
            report.events_written = w.written;
            report.perf = w.perf;
            report.write_error = w.error.map(|e| e.to_string());
            report.stage = w.stage;
            report.stage_log = w.stage_log;
            report.baseline = w.baseline;
            for (id, (msg, n)) in w.alerts_by_sig {
                report.counters.alerts += n;
                let e = report
                    .counters
                    .alerts_by_sig
                    .entry(id)
                    .or_insert_with(|| (msg, 0));
                e.1 += n;
            }
        }
        Err(_) => report.write_error = Some("writer thread failed".into()),
    }
    report.shard_split = plan.split();
    report.elapsed_s = start.elapsed().as_secs_f64();
    report
}

/// A one-line progress display for large files, redrawn at most five times a second.
struct Progress {
    on: bool,
    name: Arc<str>,
    total: u64,
    done: u64,
    ticks: u32,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool, name: &Arc<str>, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            on,
            name: name.clone(),
            total: total.max(1),
            done: 0,
            ticks: 0,
            start: now,
            last: now,
        }
    }

    fn tick(&mut self, bytes: u64) {
        if !self.on {
            return;
        }
        self.done += bytes;
        self.ticks += 1;
        if self.ticks % 4096 != 0 || self.last.elapsed().as_millis() < 200 {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{}: {:>3}%  {} / {} MB  {:.2} Gbit/s   ",
            self.name,
            (self.done * 100 / self.total).min(100),
            self.done >> 20,
            self.total >> 20,
            self.done as f64 * 8.0 / secs / 1e9
        );
    }

    fn finish(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// An owned copy of a hit, for the detection stage.
fn seen(hit: &Hit<'_>, field: Field, value: &str) -> SeenHit {
    SeenHit {
        sig: hit.sig.clone(),
        field,
        value: value.to_string(),
        pattern: hit.pattern().to_string(),
        // Provider and service, without the region: one service for the baseline and the
        // alert windows, whichever region's range was hit.
        label: hit.label.map(|l| {
            [l.provider.as_str(), l.service.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        }),
    }
}

/// Worker choice for a packet: symmetric over the innermost address pair.
fn shard_of(p: &PacketRef<'_>) -> u64 {
    if let Some(h) = decode::fast_shard(p.linktype, p.data) {
        return h;
    }
    match decode::decode(p.linktype, p.data) {
        Ok(Outcome::Packet(d)) => shard_hash(d.src, d.dst),
        Ok(Outcome::Fragment(f)) => shard_hash(f.src, f.dst),
        _ => 0,
    }
}

/// Packets the reader processes itself between reload checks, latency clock reads and
/// stats snapshots.
const INLINE_BATCH: u64 = 64;

/// Packets ahead whose headers a worker prefetches.
const PREFETCH_AHEAD: usize = 4;

/// Starts loading the first two cache lines of `d` (the headers) without waiting for them.
#[inline]
fn prefetch(d: &[u8]) {
    crate::capture::prefetch(d, 2);
}

/// Takes the batch out of `slot`, leaving an empty one (recycled if a worker gave one back).
fn swap_out(slot: &mut Batch, spare: &Receiver<Batch>, bytes: usize) -> Batch {
    let fresh = spare
        .try_recv()
        .unwrap_or_else(|_| Batch::with_capacity(bytes, BATCH_PKTS));
    std::mem::replace(slot, fresh)
}

/// Hands a batch to a worker, counting how full its queue was and whether the reader had
/// to wait (offline input waits rather than drops).
fn hand_over(tx: &Sender<WorkBatch>, wb: WorkBatch, perf: &mut Perf) {
    perf.queue_depth.record(tx.len() as u64);
    match tx.try_send(wb) {
        Ok(()) => {}
        Err(crossbeam_channel::TrySendError::Full(wb)) => {
            perf.reader_waits += 1;
            let _ = tx.send(wb);
        }
        Err(crossbeam_channel::TrySendError::Disconnected(_)) => perf.drops += 1,
    }
}

struct WriterCfg {
    stats: bool,
    interval: Duration,
    workers: usize,
    start: Instant,
}

/// What the writer thread hands back at the end.
struct WriterEnd {
    written: u64,
    perf: Perf,
    error: Option<std::io::Error>,
    stage: StageStats,
    stage_log: Vec<String>,
    baseline: Option<String>,
    /// Alerts the detection stage raised, by signature.
    alerts_by_sig: std::collections::BTreeMap<u32, (String, u64)>,
}

/// Writes events as EVE lines, counting them; stops at the first write error.
fn write_events(
    events: &[Event],
    out: &mut impl Write,
    line: &mut Vec<u8>,
    perf: &mut Perf,
    n: &mut u64,
) -> std::io::Result<()> {
    for ev in events {
        if ev.alert.is_some() {
            if let Some(born) = ev.born {
                perf.alert_latency_us
                    .record(born.elapsed().as_micros() as u64);
            }
        }
        line.clear();
        eve::write_event(ev, line);
        line.push(b'\n');
        out.write_all(line)?;
        *n += 1;
    }
    Ok(())
}

/// The writer thread: runs the detection stage on the workers' observations, serialises
/// events, merges the workers' snapshots, writes `stats` records every interval and at the
/// end, and measures capture-to-alert latency.
fn writer_loop(
    rx: Receiver<Msg>,
    sink: Box<dyn Write + Send>,
    cfg: WriterCfg,
    mut stage: Stage,
) -> WriterEnd {
    let mut stage_log = Vec::new();
    let mut by_sig: std::collections::BTreeMap<u32, (String, u64)> = Default::default();
    let mut count_stage = |evs: &[Event]| {
        for e in evs {
            if let Some(a) = &e.alert {
                let v = by_sig
                    .entry(a.sig.id)
                    .or_insert_with(|| (a.sig.msg.clone(), 0));
                v.1 += 1;
            }
        }
    };
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, sink);
    let mut line = Vec::with_capacity(2048);
    let mut n = 0u64;
    let mut result: std::io::Result<()> = Ok(());
    let mut snaps: Vec<Option<(Counters, Hist)>> = vec![None; cfg.workers];
    let mut perf = Perf::default();
    let mut last_stats = Instant::now();
    let mut prev = eve_stats::Totals::default();
    let write_stats = |snaps: &[Option<(Counters, Hist)>],
                       perf: &Perf,
                       stage: &StageStats,
                       prev: &mut eve_stats::Totals,
                       line: &mut Vec<u8>| {
        let (mut c, p) = merged(snaps, perf);
        c.alerts += stage.alerts;
        line.clear();
        *prev = eve_stats::write_record(&c, &p, stage, cfg.start.elapsed(), *prev, line);
        line.push(b'\n');
    };
    loop {
        let msg = if cfg.stats {
            let wait = cfg.interval.saturating_sub(last_stats.elapsed());
            match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        };
        match msg {
            Some(Msg::Events(events)) if result.is_ok() => {
                result = write_events(&events, &mut out, &mut line, &mut perf, &mut n);
            }
            Some(Msg::Events(_)) => {} // keep draining so workers never block
            Some(Msg::Observations(obs)) => {
                for o in obs {
                    stage.observe(o);
                }
            }
            Some(Msg::FlowEnds(ends)) => {
                for f in ends {
                    stage.flow_end(f);
                }
            }
            Some(Msg::Worker(i, snap)) => {
                if let Some(s) = snaps.get_mut(i) {
                    *s = Some(*snap);
                }
            }
            Some(Msg::Reader(p)) => perf.merge(&p),
            None => {}
        }
        let ready = stage.drain();
        if !ready.is_empty() {
            count_stage(&ready);
            if result.is_ok() {
                result = write_events(&ready, &mut out, &mut line, &mut perf, &mut n);
            }
        }
        if let Some(e) = stage.maybe_save() {
            stage_log.push(e);
        }
        if cfg.stats && result.is_ok() && last_stats.elapsed() >= cfg.interval {
            last_stats = Instant::now();
            write_stats(&snaps, &perf, &stage.stats, &mut prev, &mut line);
            if let Err(e) = out.write_all(&line) {
                result = Err(e);
            }
            n += 1;
        }
        // Nothing else queued: flush, so a live or slow input shows its events promptly.
        if rx.is_empty() && result.is_ok() {
            if let Err(e) = out.flush() {
                result = Err(e);
            }
        }
    }
    // End of input: every open alert window is written, and the baseline saved.
    if let Some(e) = stage.finish() {
        stage_log.push(e);
    }
    let ready = stage.drain();
    count_stage(&ready);
    if result.is_ok() {
        result = write_events(&ready, &mut out, &mut line, &mut perf, &mut n);
    }
    if cfg.stats && result.is_ok() {
        write_stats(&snaps, &perf, &stage.stats, &mut prev, &mut line);
        match out.write_all(&line) {
            Ok(()) => n += 1,
            Err(e) => result = Err(e),
        }
    }
    if result.is_ok() {
        if let Err(e) = out.flush() {
            result = Err(e);
        }
    }
    let (_, p) = merged(&snaps, &perf);
    WriterEnd {
        written: n,
        perf: p,
        error: result.err(),
        stage: stage.stats,
        stage_log,
        baseline: stage.baseline_summary(),
        alerts_by_sig: by_sig,
    }
}

/// The workers' latest snapshots merged with the writer's and reader's figures.
fn merged(snaps: &[Option<(Counters, Hist)>], perf: &Perf) -> (Counters, Perf) {
    let mut c = Counters::default();
    let mut p = perf.clone();
    for (wc, h) in snaps.iter().flatten() {
        c.merge(wc);
        p.pkt_ns.merge(h);
    }
    (c, p)
}

/// One worker: owns a flow table, a defragmenter and its counters.
pub struct Worker {
    rules: Arc<Ruleset>,
    types: Types,
    flows: FlowTable,
    max_reassembly: usize,
    defrag: Defragmenter,
    c: Counters,
    tx: Sender<Msg>,
    pending: Vec<Event>,
    pending_obs: Vec<Observation>,
    pending_ends: Vec<FlowEnd>,
    alert_mode: AlertMode,
    upload_floor: u64,
    context_observations: bool,
    /// The capture the last packet came from (`in_iface` of flow records).
    source: Arc<str>,
    records: Vec<Record>,
    /// When the reader started the batch being processed (latency origin of its events).
    batch_at: Instant,
    /// Processing time of sampled packets, nanoseconds.
    pkt_ns: Hist,
}

impl Worker {
    fn new(rules: Arc<Ruleset>, cfg: &Config, tx: Sender<Msg>) -> Self {
        let mut flows = FlowTable::new(cfg.max_flows);
        flows.track_ends = cfg.types.flow || cfg.alert_mode == AlertMode::Entity;
        Worker {
            rules,
            types: cfg.types,
            flows,
            max_reassembly: cfg.max_reassembly,
            defrag: Defragmenter::new(cfg.defrag),
            c: Counters::default(),
            tx,
            pending: Vec::new(),
            pending_obs: Vec::new(),
            pending_ends: Vec::new(),
            alert_mode: cfg.alert_mode,
            upload_floor: cfg.upload_floor,
            context_observations: cfg.context_observations,
            source: Arc::from(""),
            records: Vec::new(),
            batch_at: Instant::now(),
            pkt_ns: Hist::new(),
        }
    }

    /// Picks up a reloaded signature set, if any (one atomic load, no lock).
    fn refresh_rules(&mut self, shared: &ArcSwap<Ruleset>) {
        let current = shared.load();
        if !Arc::ptr_eq(&current, &self.rules) {
            self.rules = current.clone();
        }
    }

    /// Sends the writer this worker's counters and packet-time histogram so far.
    fn send_snapshot(&self, index: usize) {
        let snap = Box::new((self.snapshot(), self.pkt_ns.clone()));
        let _ = self.tx.send(Msg::Worker(index, snap));
    }

    /// Processes one packet, timing one in `PKT_TIME_SAMPLE`.
    #[inline]
    fn timed_packet(&mut self, p: &PacketRef<'_>, source: &Arc<str>) {
        if self.c.packets % PKT_TIME_SAMPLE == 0 {
            let t = Instant::now();
            self.packet(p, source);
            self.pkt_ns.record(t.elapsed().as_nanos() as u64);
        } else {
            self.packet(p, source);
        }
    }

    fn has_pending(&self) -> bool {
        !(self.pending.is_empty() && self.pending_obs.is_empty() && self.pending_ends.is_empty())
    }

    pub fn flush(&mut self) {
        // A send fails only when the writer has gone (it stopped on a write error, which
        // the run reports); what could not be sent is counted.
        if !self.pending.is_empty() {
            let evs = std::mem::take(&mut self.pending);
            if let Err(e) = self.tx.send(Msg::Events(evs)) {
                if let Msg::Events(v) = e.0 {
                    self.c.skips.add_n("events_writer_gone", v.len() as u64);
                }
            }
        }
        if !self.pending_obs.is_empty() {
            let obs = std::mem::take(&mut self.pending_obs);
            if let Err(e) = self.tx.send(Msg::Observations(obs)) {
                if let Msg::Observations(v) = e.0 {
                    self.c
                        .skips
                        .add_n("observations_writer_gone", v.len() as u64);
                }
            }
        }
        if !self.pending_ends.is_empty() {
            let ends = std::mem::take(&mut self.pending_ends);
            if let Err(e) = self.tx.send(Msg::FlowEnds(ends)) {
                if let Msg::FlowEnds(v) = e.0 {
                    self.c.skips.add_n("flow_ends_writer_gone", v.len() as u64);
                }
            }
        }
    }

    pub fn counters(mut self) -> Counters {
        // Flows still open at the end of the input end now (flow records, uploads).
        self.flows.end_all();
        self.ended();
        self.flush();
        self.snapshot()
    }

    /// Flow records and flow-end summaries of the flows that left the table.
    fn ended(&mut self) {
        let ended = std::mem::take(&mut self.flows.ended);
        for e in ended {
            self.flow_ended(e);
        }
    }

    fn flow_ended(&mut self, e: Ended) {
        let c = usize::from(e.client.min(1));
        let s = 1 - c;
        // Most flows need neither a record nor the upload check: nothing is built for them.
        let upload = self.alert_mode == AlertMode::Entity && e.bytes[c] >= self.upload_floor;
        if !self.types.flow && !upload {
            return;
        }
        let (ends_a, ends_b) = ((e.key.a, e.key.pa), (e.key.b, e.key.pb));
        let ((src, sport), (dst, dport)) = if c == 0 {
            (ends_a, ends_b)
        } else {
            (ends_b, ends_a)
        };
        let meta = Meta {
            ts_ns: e.first_ns,
            flow_id: e.id,
            iface: self.source.clone(),
            src,
            sport,
            dst,
            dport,
            proto: e.key.proto,
            vlan: e.key.vlan,
            tx_id: 0,
            to_server: true,
        };
        if self.types.flow {
            self.pending.push(Event {
                meta: meta.clone(),
                record: None,
                alert: None,
                question: 0,
                labels: Arc::new(Vec::new()),
                born: None,
                verdict: None,
                flow: Some(Box::new(FlowRecord {
                    pkts_toserver: e.pkts[c],
                    pkts_toclient: e.pkts[s],
                    bytes_toserver: e.bytes[c],
                    bytes_toclient: e.bytes[s],
                    start_ns: e.first_ns,
                    end_ns: e.last_ns,
                    reason: e.reason,
                    closed: e.closed,
                    alerted: e.alerted,
                })),
            });
        }
        if !upload {
            return;
        }
        let mut ctx = e.ctx;
        if ctx.as_ref().is_none_or(|x| x.web.is_none()) {
            // No name was seen on it: the server's provider range, if any, is the service.
            let mut h = Vec::new();
            self.rules.match_ip(dst, &mut h);
            if let Some(hit) = h.first() {
                let x = ctx.get_or_insert_with(Box::default);
                x.web = Some(seen(hit, Field::IpDst, &dst.to_string()));
            }
        }
        self.pending_ends.push(FlowEnd {
            meta,
            born: Some(self.batch_at),
            first_ns: e.first_ns,
            last_ns: e.last_ns,
            bytes_toserver: e.bytes[c],
            bytes_toclient: e.bytes[s],
            ctx,
        });
    }

    /// The worker's counters so far, with the flow table's and defragmenter's folded in.
    fn snapshot(&self) -> Counters {
        let mut c = self.c.clone();
        c.flows = self.flows.stats.created;
        c.flows_active = self.flows.len() as u64;
        c.flows_evicted_cap = self.flows.stats.evicted_cap;
        c.flows_timed_out = self.flows.stats.timed_out;
        c.reassembly_bytes = self.flows.buffered as u64;
        let d = self.defrag.stats;
        c.fragments = d.fragments;
        c.reassembled = d.reassembled;
        c.frag_evicted = d.evicted_cap + d.evicted_timeout;
        c.skips.add_n("frag_evicted_cap", d.evicted_cap);
        c.skips.add_n("frag_evicted_timeout", d.evicted_timeout);
        c.skips.add_n("frag_oversize", d.oversize);
        c.skips.add_n("frag_overlap", d.overlaps);
        c
    }

    pub fn packet(&mut self, p: &PacketRef<'_>, source: &Arc<str>) {
        self.c.packets += 1;
        let wire = u64::from(p.orig_len.max(p.data.len() as u32));
        self.c.bytes += wire;
        if !Arc::ptr_eq(&self.source, source) {
            self.source = source.clone();
        }
        self.packet_inner(p, source, wire);
        if !self.flows.ended.is_empty() {
            self.ended();
        }
    }

    fn packet_inner(&mut self, p: &PacketRef<'_>, source: &Arc<str>, wire: u64) {
        match decode::decode(p.linktype, p.data) {
            Ok(Outcome::Packet(d)) => self.decoded(d, p.ts_ns, source, wire),
            Ok(Outcome::Fragment(f)) => {
                if let Some(r) = self.defrag.push(&f, p.ts_ns) {
                    match decode::decode_ip_payload(
                        r.src, r.dst, r.proto, &r.data, r.encap, r.depth,
                    ) {
                        Ok(Outcome::Packet(d)) => self.decoded(d, p.ts_ns, source, wire),
                        Ok(Outcome::Fragment(_)) => self.c.skips.add("nested_fragment"),
                        Ok(Outcome::NotIp) => self.c.not_ip += 1,
                        Err(e) => self.c.skips.add(e.reason()),
                    }
                }
            }
            Ok(Outcome::NotIp) => self.c.not_ip += 1,
            Err(e) => self.c.skips.add(e.reason()),
        }
    }

    fn decoded(&mut self, d: Decoded<'_>, ts: u64, source: &Arc<str>, wire: u64) {
        self.c.decoded += 1;
        if d.encap.tunnels > 0 {
            self.c.tunnelled += 1;
        }
        let (proto, sport, dport) = match d.transport {
            Transport::Tcp(t) => (6u8, t.sport, t.dport),
            Transport::Udp { sport, dport, .. } => (17u8, sport, dport),
            Transport::Other(p) => (p, 0, 0),
        };
        let (key, dir) = FlowKey::new(d.src, d.dst, sport, dport, proto, d.encap.vlan);
        let (flow, created, held) = self.flows.get_with_budget(key, ts);
        if created {
            flow.client = dir as u8;
        }
        flow.pkts[dir] += 1;
        // Wire bytes, as Suricata's flow records count them.
        flow.bytes[dir] += wire;
        if flow.bypass {
            self.c.bypassed_packets += 1;
            return;
        }
        let flow_id = flow.id;
        let mut records = std::mem::take(&mut self.records);
        match d.transport {
            Transport::Tcp(t) => {
                if t.syn {
                    // A SYN comes from the client, a SYN-ACK from the server.
                    flow.client = if t.ack_flag { 1 - dir as u8 } else { dir as u8 };
                    // SYN or SYN-ACK: this direction's stream starts here.
                    flow.tcp[dir].on_syn(t.seq);
                    flow.app[dir] = extract::AppStream::new(true);
                }
                if t.fin || t.rst {
                    flow.closed = true;
                }
                if !t.payload.is_empty() {
                    let before = flow.buffered(dir);
                    let app = &mut flow.app[dir];
                    let skips = &mut self.c.skips;
                    let o = flow.tcp[dir].segment(t.seq, t.payload, |data| {
                        app.feed(data, (sport, dport), &mut records, skips);
                    });
                    self.c.tcp_ooo_dropped += o.ooo_dropped;
                    self.c.tcp_gaps += o.gaps;
                    let after = flow.buffered(dir);
                    let total = (*held + after).saturating_sub(before);
                    if total > self.max_reassembly {
                        // Over the memory cap: this direction gives up what it holds.
                        flow.tcp[dir].drop_ooo();
                        flow.app[dir] = extract::AppStream::Finished;
                        self.c.skips.add("reassembly_memcap");
                        *held = total - after;
                    } else {
                        *held = total;
                    }
                    flow.update_bypass();
                }
            }
            Transport::Udp { payload, .. } => {
                if extract::quic::looks_like_quic(payload) {
                    let q = flow.quic.get_or_insert_with(Box::default);
                    if let Some(h) = q.datagram(payload) {
                        records.push(Record::Quic(Box::new(h), q.version));
                    }
                    if q.done {
                        flow.bypass = true;
                    }
                } else if let Some(m) = extract::udp_dns(payload, sport, dport, &mut self.c.skips) {
                    records.push(Record::Dns(m));
                } else if let reqs @ [_, ..] = &extract::udp_http(payload, &mut self.c.skips)[..] {
                    records.extend(reqs.iter().cloned().map(Record::Http));
                } else {
                    flow.udp_misses = flow.udp_misses.saturating_add(1);
                    if flow.udp_misses >= 4
                        && !extract::is_dns_port(sport)
                        && !extract::is_dns_port(dport)
                    {
                        flow.bypass = true;
                    }
                }
            }
            Transport::Other(_) => flow.bypass = true,
        }
        if records.is_empty() {
            self.records = records;
            return;
        }
        let iface = source.clone();
        for rec in records.drain(..) {
            let meta = Meta {
                ts_ns: ts,
                flow_id,
                iface: iface.clone(),
                src: d.src,
                sport,
                dst: d.dst,
                dport,
                proto,
                vlan: d.encap.vlan,
                tx_id: 0,
                to_server: !matches!(&rec, Record::Dns(m) if m.is_response()),
            };
            self.emit(key, meta, rec);
        }
        self.records = records;
    }

    /// Matches a record against the signatures and queues its events.
    fn emit(&mut self, key: FlowKey, meta: Meta, rec: Record) {
        match &rec {
            Record::Dns(_) => self.c.dns_records += 1,
            Record::Tls(_) => self.c.tls_records += 1,
            Record::Http(_) => self.c.http_records += 1,
            Record::Quic(..) => self.c.quic_records += 1,
        }
        let rules = self.rules.clone();
        let mut hits: Vec<(Field, String, Hit<'_>)> = Vec::new();
        {
            let mut found = Vec::new();
            let mut check = |field: Field, value: &str| {
                found.clear();
                rules.match_str(field, value, &mut found);
                for hit in found.drain(..) {
                    hits.push((field, value.to_string(), hit));
                }
            };
            match &rec {
                Record::Dns(m) => {
                    for q in &m.questions {
                        check(Field::DnsQuery, &q.name);
                    }
                    for a in &m.answers {
                        if let extract::dns::Rdata::Name(n) = &a.rdata {
                            check(Field::DnsAnswer, n);
                        }
                    }
                }
                Record::Tls(h) | Record::Quic(h, _) => {
                    if let Some(sni) = &h.sni {
                        check(Field::TlsSni, sni);
                    }
                }
                Record::Http(r) => {
                    if let Some(h) = &r.host {
                        check(Field::HttpHost, h);
                    }
                    if r.user_agents.len() > 1 {
                        for ua in &r.user_agents {
                            check(Field::HttpUserAgent, ua);
                        }
                    } else if let Some(ua) = &r.user_agent {
                        check(Field::HttpUserAgent, ua);
                    }
                    check(Field::HttpUrl, &r.uri);
                    if let (Some(h), true) = (&r.host, rules.wants(Field::HttpFullUrl)) {
                        check(Field::HttpFullUrl, &format!("{h}{}", r.uri));
                    }
                }
            }
        }
        // Address signatures: checked against the server of a TLS/HTTP exchange (a DNS
        // record's destination is the resolver, not the web service).
        if !matches!(&rec, Record::Dns(_)) {
            let mut h = Vec::new();
            rules.match_ip(meta.dst, &mut h);
            for hit in h {
                hits.push((Field::IpDst, meta.dst.to_string(), hit));
            }
        }
        // TLS fingerprints: context that only joins a web service, so they are computed
        // (an MD5 and two SHA-256 per ClientHello) only for a hello that reached one.
        if let (Record::Tls(h) | Record::Quic(h, _), false) = (&rec, hits.is_empty()) {
            let mut found = Vec::new();
            if rules.wants(Field::TlsJa3) {
                let ja3 = h.ja3_hash();
                rules.match_str(Field::TlsJa3, &ja3, &mut found);
                hits.extend(found.drain(..).map(|hit| (Field::TlsJa3, ja3.clone(), hit)));
            }
            if rules.wants(Field::TlsJa4) {
                let ja4 = h.ja4(matches!(&rec, Record::Quic(..)));
                rules.match_str(Field::TlsJa4, &ja4, &mut found);
                // An entry of only the first section matches every JA4 with it.
                if let Some((a, _)) = ja4.split_once('_') {
                    rules.match_str(Field::TlsJa4, a, &mut found);
                }
                hits.extend(found.drain(..).map(|hit| (Field::TlsJa4, ja4.clone(), hit)));
            }
        }
        let record = Arc::new(rec);
        // Labels (cloud provider ranges, label packs): carried on the events, no alert.
        let mut labels: Vec<String> = Vec::new();
        for (field, _, hit) in hits.iter().filter(|h| h.2.sig.action == Action::Label) {
            self.c.labels += 1;
            let text = match hit.label {
                Some(l) => [l.provider.as_str(), l.service.as_str(), l.region.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
                None => hit
                    .sig
                    .service
                    .clone()
                    .unwrap_or_else(|| hit.sig.msg.clone()),
            };
            let text = format!("{}={text}", field.name());
            if !labels.contains(&text) {
                labels.push(text);
            }
        }
        let labels = Arc::new(labels);
        if self.alert_mode == AlertMode::Entity {
            if self.types.alert && !hits.is_empty() {
                self.observe(key, &meta, &record, &hits, &labels);
            }
            self.record_events(&meta, &record, &labels, Vec::new());
            return;
        }
        let (flow, _) = self.flows.get(key, meta.ts_ns);
        let mut events = Vec::new();
        // One alert per (field, value): the most specific matching signature (hits come most
        // specific first), unless an exception covers it.
        let mut decided: Vec<(Field, &str)> = Vec::new();
        for (field, value, hit) in &hits {
            if hit.sig.action == Action::Label || decided.contains(&(*field, value.as_str())) {
                continue;
            }
            if let Some(_ex) = rules.exception(hit.sig.id, value, meta.src) {
                self.c.skips.add("alert_suppressed_by_exception");
                continue;
            }
            decided.push((*field, value.as_str()));
            if !self.types.alert || !flow.first_alert(hit.sig.id, value) {
                continue;
            }
            self.c.alerts += 1;
            let e = self
                .c
                .alerts_by_sig
                .entry(hit.sig.id)
                .or_insert_with(|| (hit.sig.msg.clone(), 0));
            e.1 += 1;
            events.push(Event {
                meta: meta.clone(),
                record: Some(record.clone()),
                alert: Some(Box::new(AlertInfo {
                    sig: hit.sig.clone(),
                    field: *field,
                    pattern: hit.pattern().to_string(),
                    value: value.clone(),
                })),
                question: 0,
                labels: labels.clone(),
                born: Some(self.batch_at),
                verdict: None,
                flow: None,
            });
        }
        self.record_events(&meta, &record, &labels, events);
    }

    /// Hands the detection stage a record's hits (exceptions applied), and remembers on the
    /// flow which web service and agent it carried (for the upload check at its end).
    fn observe(
        &mut self,
        key: FlowKey,
        meta: &Meta,
        record: &Arc<Record>,
        hits: &[(Field, String, Hit<'_>)],
        labels: &Arc<Vec<String>>,
    ) {
        let mut seen_hits: Vec<SeenHit> = Vec::with_capacity(hits.len());
        for (field, value, hit) in hits {
            if self.rules.exception(hit.sig.id, value, meta.src).is_some() {
                self.c.skips.add("alert_suppressed_by_exception");
                continue;
            }
            seen_hits.push(seen(hit, *field, value));
        }
        if seen_hits.is_empty() {
            return;
        }
        let (flow, _) = self.flows.get(key, meta.ts_ns);
        flow.observed = true;
        let ctx = flow.ctx.get_or_insert_with(Box::<FlowContext>::default);
        if ctx.agent.is_none() {
            // A user agent, or a fingerprint the pack rates high (library fingerprints are
            // shared with ordinary software).
            ctx.agent = seen_hits
                .iter()
                .find(|h| {
                    h.is_agent()
                        && (h.field == Field::HttpUserAgent
                            || h.sig.confidence.as_deref() == Some("high"))
                })
                .map(|h| h.value.clone());
        }
        if ctx.web.as_ref().is_none_or(|w| w.field == Field::IpDst) {
            if let Some(w) = crate::correlate::primary_web(&seen_hits) {
                ctx.web = Some(w.clone());
            }
        }
        // Context alone (labels, no agent, no console) can only feed a baseline or a policy;
        // without either the stage would drop it, so it is not sent (most records with a
        // hit are provider-range labels).
        let needed = self.context_observations
            || seen_hits.iter().any(|h| {
                h.sig.action == Action::Alert
                    || h.is_agent()
                    || h.sig.service_category.as_deref() == Some("cloud-console")
            });
        if !needed {
            self.c.skips.add("observation_context_only");
            return;
        }
        self.pending_obs.push(Observation {
            meta: meta.clone(),
            born: Some(self.batch_at),
            record: record.clone(),
            hits: seen_hits,
            labels: labels.clone(),
        });
        if self.pending_obs.len() >= 256 {
            self.flush();
        }
    }

    /// Queues the record events `--types` asks for after `events` (alerts).
    fn record_events(
        &mut self,
        meta: &Meta,
        record: &Arc<Record>,
        labels: &Arc<Vec<String>>,
        mut events: Vec<Event>,
    ) {
        if self.types.wants_record(record) {
            let n = match &**record {
                Record::Dns(m) if !m.is_response() => m.questions.len().max(1),
                _ => 1,
            };
            for q in 0..n {
                events.push(Event {
                    meta: meta.clone(),
                    record: Some(record.clone()),
                    alert: None,
                    question: q,
                    labels: labels.clone(),
                    born: Some(self.batch_at),
                    verdict: None,
                    flow: None,
                });
            }
        }
        self.pending.extend(events);
        if self.pending.len() >= 256 {
            self.flush();
        }
    }
}
