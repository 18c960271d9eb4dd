//! Wires the stages to threads: one reader per run processes some flows itself and hands
//! batches of the other packets to N-1 workers, through bounded crossbeam channels. Flows
//! are bucketed by a symmetric hash of the innermost address pair, and each bucket's owner
//! is chosen by load the first time it is seen (see `flow::ShardTable`); each
//! worker owns its flow table and defragmenter (nothing shared on the hot path); one writer
//! thread serialises and writes EVE.

use crate::capture::live::Input;
use crate::capture::{Batch, CaptureError, FileReader, PacketRef};
use crate::config::AlertMode;
use crate::correlate::{FlowEnd, Observation, Stage, StageCfg, StageStats};
use crate::decode::defrag::{DefragConfig, Defragmenter};
use crate::decode::{self, Decoded, Outcome, Transport};
use crate::detect::{Action, Field, FlowContext, Hit, Ruleset, SeenHit};
use crate::extract::{self, Record};
use crate::flow::Delivery;
use crate::flow::{
    shard_hash, Ended, FlowKey, FlowTable, ShardTable, DEFAULT_MAX_FLOWS,
    DEFAULT_MAX_REASSEMBLY_BYTES,
};
use crate::output::event_id::EventIds;
use crate::output::fanout::{Fanout, FanoutCfg, SinkStats};
use crate::output::transport::{self as out_transport, Kind, OutMeta};
use crate::output::url::{SinkSpec, WhenFull};
use crate::output::{ecs, eve, stats as eve_stats, AlertInfo, Event, FlowRecord, Meta, Types};
use crate::signals::Control;
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
    /// SIGHUPs passed to the sinks (file sinks reopen their paths).
    pub reopened: u64,
    /// Every sink's final counters (delivered, spooled, lost with the cause).
    pub sinks: Vec<SinkStats>,
    /// The input was a live capture.
    pub live: bool,
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
    let outputs = match writer_fanout(sink) {
        Ok(f) => f,
        Err(e) => {
            return RunReport {
                write_error: Some(e),
                ..RunReport::default()
            }
        }
    };
    run_input(
        cfg,
        shared,
        outputs,
        stage,
        Input::Files(cfg.files.clone()),
        &Control::default(),
    )
}

/// One sink over any writer (standard output, a test's buffer): every event type, nothing
/// dropped (`block`), no spool.
pub fn writer_fanout(w: Box<dyn Write + Send>) -> Result<Fanout, String> {
    let spec = SinkSpec {
        name: "eve".into(),
        scheme: crate::output::url::Scheme::Stdout,
        format: crate::output::url::Format::Eve,
        types: None,
        when_full: Some(WhenFull::Block),
        opts: Default::default(),
        url: "-".into(),
    };
    Fanout::start_with(
        vec![(spec, out_transport::file::writer(w))],
        FanoutCfg {
            spool: None,
            spool_max: crate::config::DEFAULT_SPOOL_MAX,
            when_full: WhenFull::Block,
            flush_timeout: Duration::from_secs(60),
            queue_cap: crate::config::SINK_QUEUE_EVENTS,
        },
    )
}

/// Runs the pipeline over any input (files, libpcap, AF_PACKET rings) until it ends or
/// `ctl.stop` is set, then drains every queue and writes every pending event.
pub fn run_input(
    cfg: &Config,
    shared: Arc<ArcSwap<Ruleset>>,
    outputs: Fanout,
    stage: Stage,
    input: Input,
    ctl: &Control,
) -> RunReport {
    let start = Instant::now();
    let live = input.is_live();
    let n = match &input {
        #[cfg(target_os = "linux")]
        Input::Rings(r) => r.len().max(1),
        _ => cfg.threads.max(1),
    };
    let (ev_tx, ev_rx) = bounded::<Msg>(n * 8);
    let wcfg = WriterCfg {
        stats: cfg.types.stats,
        interval: cfg.stats_interval.max(Duration::from_millis(100)),
        workers: n,
        start,
        live,
        reopen: ctl.reopen.clone(),
    };
    let writer = thread::spawn(move || writer_loop(ev_rx, outputs, wcfg, stage));
    let mut report = RunReport::default();
    match input {
        Input::Files(files) => {
            let mut rd = Reader::start(cfg, &shared, &ev_tx, false);
            for path in &files {
                if ctl.stopping() {
                    break;
                }
                rd.file(path, cfg, &mut report, &ctl.stop);
            }
            rd.finish(&mut report, ev_tx);
        }
        Input::Pcap(mut p) => {
            let mut rd = Reader::start(cfg, &shared, &ev_tx, true);
            let res = p.for_each_or_wait(&ctl.stop, IDLE_WAIT_MS, |pkt, src| match pkt {
                Some(pkt) => rd.packet(pkt, src),
                None => rd.idle(),
            });
            if let Err(e) = res {
                report.files_failed.push(e);
            }
            let t = p.stats();
            rd.inline.c.kernel_packets = t.packets;
            rd.inline.c.kernel_drops = t.drops;
            rd.inline.c.kernel_ifdrops = t.ifdrops;
            rd.finish(&mut report, ev_tx);
        }
        #[cfg(target_os = "linux")]
        Input::Rings(rings) => {
            let handles: Vec<_> = rings
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let (shared, ev_tx, cfg) = (shared.clone(), ev_tx.clone(), cfg.clone());
                    let stop = ctl.stop.clone();
                    thread::spawn(move || ring_worker(i, r, &shared, &cfg, ev_tx, &stop))
                })
                .collect();
            drop(ev_tx);
            for h in handles {
                match h.join() {
                    Ok(c) => report.counters.merge(&c),
                    Err(_) => report.files_failed.push("a capture worker failed".into()),
                }
            }
        }
    }
    match writer.join() {
        Ok(w) => {
            report.events_written = w.written;
            report.perf = w.perf;
            report.write_error = w.error;
            report.sinks = w.sinks;
            report.stage = w.stage;
            report.stage_log = w.stage_log;
            report.baseline = w.baseline;
            report.reopened = w.reopened;
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
    report.live = live;
    report.elapsed_s = start.elapsed().as_secs_f64();
    report
}

/// Milliseconds a live reader or ring worker waits for packets before it looks at the clock
/// (flow timeouts, stats) and at the stop flag again.
const IDLE_WAIT_MS: i32 = 100;
/// How often a live worker expires idle flows by the clock (a quiet link has no packet
/// times to do it).
const IDLE_EVERY: Duration = Duration::from_secs(1);

/// Nanoseconds since the Unix epoch now: the clock of a live capture, whose packets carry
/// the kernel's receive time.
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One AF_PACKET worker: reads its rings (one per interface, all in the interface's fanout
/// group) and does all the packet work for the flows the kernel hashes to it. On stop, it
/// closes its sockets to new packets and drains what the rings hold, so that the kernel's
/// count and what was processed agree.
#[cfg(target_os = "linux")]
fn ring_worker(
    index: usize,
    mut rings: Vec<crate::capture::afpacket::Ring>,
    shared: &Arc<ArcSwap<Ruleset>>,
    cfg: &Config,
    tx: Sender<Msg>,
    stop: &std::sync::atomic::AtomicBool,
) -> Counters {
    use crate::capture::afpacket::RETIRE_MS;
    use std::sync::atomic::Ordering;
    let mut w = Worker::new(shared.load_full(), cfg, tx);
    let fds: Vec<libc::c_int> = rings.iter().map(|r| r.fd()).collect();
    let (mut last_idle, mut last_snapshot) = (Instant::now(), Instant::now());
    // Once stopping: when the last packet came, and the time limit of the drain.
    let mut drain: Option<(Instant, Instant)> = None;
    let quiet = Duration::from_millis(u64::from(RETIRE_MS) * 3 + 20);
    loop {
        if drain.is_none() && stop.load(Ordering::Relaxed) {
            for r in &mut rings {
                if r.stop_receiving().is_err() {
                    w.c.skips.add("capture_stop_filter_failed");
                }
            }
            drain = Some((Instant::now(), Instant::now() + Duration::from_secs(2)));
        }
        w.refresh_rules(shared);
        w.batch_at = Instant::now();
        let mut got = 0;
        for r in &mut rings {
            let name = r.name.clone();
            got += r.for_each_ready(&mut |p| w.timed_packet(p, &name));
        }
        if w.has_pending() {
            w.flush();
        }
        let now = Instant::now();
        if let Some((last, until)) = &mut drain {
            if got > 0 {
                *last = now;
            } else if now.duration_since(*last) >= quiet || now >= *until {
                break;
            }
        }
        if now.duration_since(last_idle) >= IDLE_EVERY {
            last_idle = now;
            w.idle(wall_ns());
            ring_stats(&mut rings, &mut w.c);
        }
        if now.duration_since(last_snapshot) >= cfg.stats_interval {
            last_snapshot = now;
            w.send_snapshot(index);
        }
        if got == 0 {
            let ms = if drain.is_some() { 5 } else { IDLE_WAIT_MS };
            crate::capture::wait_readable(&fds, ms);
        }
    }
    ring_stats(&mut rings, &mut w.c);
    w.send_snapshot(index);
    w.counters()
}

/// The kernel's counters of a worker's rings, as its capture counters.
#[cfg(target_os = "linux")]
fn ring_stats(rings: &mut [crate::capture::afpacket::Ring], c: &mut Counters) {
    let (mut p, mut d, mut f) = (0, 0, 0);
    for r in rings {
        let s = r.stats();
        p += s.packets;
        d += s.drops;
        f += s.freezes;
    }
    c.kernel_packets = p;
    c.kernel_drops = d;
    c.ring_freezes = f;
}

/// The reader thread of file and libpcap input: processes some flows itself and hands
/// batches of the others' packets to the worker threads.
struct Reader {
    plan: ShardTable,
    txs: Vec<Sender<WorkBatch>>,
    workers: Vec<thread::JoinHandle<Counters>>,
    spare_rx: Receiver<Batch>,
    inline: Worker,
    inline_snapshot: Instant,
    inline_pkts: u64,
    last_idle: Instant,
    batches: Vec<Batch>,
    /// The source of each held batch's packets (a batch has one).
    batch_src: Vec<Arc<str>>,
    read_at: Vec<Instant>,
    /// Byte capacity of a fresh batch (0 when batches refer to shared chunks).
    bytes: usize,
    perf: Perf,
    /// A live source: a full worker queue drops the batch (counted) instead of waiting,
    /// and the clock expires flows on a quiet link.
    live: bool,
    shared: Arc<ArcSwap<Ruleset>>,
    stats_interval: Duration,
    reader_tx: Sender<Msg>,
}

impl Reader {
    fn start(
        cfg: &Config,
        shared: &Arc<ArcSwap<Ruleset>>,
        ev_tx: &Sender<Msg>,
        live: bool,
    ) -> Reader {
        let n = cfg.threads.max(1);
        let plan = ShardTable::new(n, READER_TAKES_AT);
        let mut txs = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        // Emptied batches go back to the reader: no allocation per batch, and no memory
        // freed on one thread that another allocated (glibc then contends for the arena lock).
        let (spare_tx, spare_rx) = bounded::<Batch>(plan.workers().max(1) * (QUEUE_BATCHES + 2));
        for _ in 0..plan.workers() {
            let (tx, rx) = bounded::<WorkBatch>(QUEUE_BATCHES);
            txs.push(tx);
            let shared = shared.clone();
            let ev_tx = ev_tx.clone();
            let cfg = cfg.clone();
            let index = workers.len() + 1;
            let spare_tx = spare_tx.clone();
            workers.push(thread::spawn(move || {
                batch_worker(index, rx, &shared, &cfg, ev_tx, spare_tx, live)
            }));
        }
        // The reader thread does packet work itself (all of it with one thread, as
        // Suricata's single runmode; with more, the flows the workers cannot take on):
        // `--threads N` is N busy threads on N cores, not a reader beside N workers. Its
        // stats index is 0; the worker threads' are 1 to N-1.
        let inline = Worker::new(shared.load_full(), cfg, ev_tx.clone());
        let bytes = if live { BATCH_PKTS * 1600 } else { 0 };
        let nw = plan.workers();
        Reader {
            plan,
            txs,
            workers,
            spare_rx,
            inline,
            inline_snapshot: Instant::now(),
            inline_pkts: 0,
            last_idle: Instant::now(),
            batches: (0..nw)
                .map(|_| Batch::with_capacity(bytes, BATCH_PKTS))
                .collect(),
            batch_src: vec![Arc::from(""); nw],
            read_at: vec![Instant::now(); nw],
            bytes,
            perf: Perf {
                queue_capacity: QUEUE_BATCHES as u64,
                ..Perf::default()
            },
            live,
            shared: shared.clone(),
            stats_interval: cfg.stats_interval,
            reader_tx: ev_tx.clone(),
        }
    }

    /// Reads one capture file to its end (or until `stop`).
    fn file(
        &mut self,
        path: &std::path::Path,
        cfg: &Config,
        report: &mut RunReport,
        stop: &Arc<std::sync::atomic::AtomicBool>,
    ) {
        let source: Arc<str> = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
            .into();
        let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut progress = Progress::new(cfg.progress && file_size > 32 << 20, &source, file_size);
        let result = FileReader::open(path).and_then(|mut r| {
            r.set_stop(stop.clone());
            // Batches of shared chunks hold references, not bytes.
            self.bytes = if r.shares_buffers() { 0 } else { BATCH_PKTS * 1600 };
            let res = r.for_each_or_wait(|p: Option<&PacketRef<'_>>| match p {
                Some(p) => {
                    progress.tick(p.data.len() as u64 + 16);
                    self.packet(p, &source);
                }
                // The next read may block (a pipe, a file being written): hand on the
                // packets held back for batching, so that their alerts do not wait for
                // traffic that may not come.
                None => self.idle(),
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
        self.hand_on_held();
        if let Err(e) = result {
            report.files_failed.push(match &e {
                CaptureError::Corrupt { .. } => format!("{e} (packets before it were processed)"),
                _ => e.to_string(),
            });
        }
    }

    /// One packet: processed by the reader itself, or batched for its flow's worker.
    #[inline]
    fn packet(&mut self, p: &PacketRef<'_>, source: &Arc<str>) {
        let route = match self.plan.workers() {
            0 => None,
            _ => {
                let txs = &self.txs;
                self.plan
                    .route(shard_of(p), |w| txs.get(w).map_or(0, |t| t.len()))
            }
        };
        let Some(w) = route else {
            let inl = &mut self.inline;
            self.inline_pkts += 1;
            if self.inline_pkts % INLINE_BATCH == 1 {
                inl.refresh_rules(&self.shared);
                inl.batch_at = Instant::now();
                if self.inline_snapshot.elapsed() >= self.stats_interval {
                    self.inline_snapshot = Instant::now();
                    inl.send_snapshot(0);
                }
            }
            inl.timed_packet(p, source);
            // Events and observations go out at once: the next read may block (a pipe, a
            // live source), an alert must not wait for traffic that may not come, and the
            // detection stage's clock must not run ahead of what the reader's own flows saw
            // (their windows would close early).
            if inl.has_pending() {
                inl.flush();
            }
            return;
        };
        if !Arc::ptr_eq(&self.batch_src[w], source) {
            if !self.batches[w].is_empty() {
                self.hand_on(w);
            }
            self.batch_src[w] = source.clone();
        }
        if self.batches[w].is_empty() {
            self.read_at[w] = Instant::now();
        }
        self.batches[w].push(p);
        if self.batches[w].len() >= BATCH_PKTS {
            self.hand_on(w);
        }
    }

    /// The source has nothing right now: hand on what is held; a live source also lets
    /// the clock expire the reader's idle flows.
    fn idle(&mut self) {
        self.hand_on_held();
        if self.live && self.last_idle.elapsed() >= IDLE_EVERY {
            self.last_idle = Instant::now();
            self.inline.idle(wall_ns());
            if self.inline_snapshot.elapsed() >= self.stats_interval {
                self.inline_snapshot = Instant::now();
                self.inline.send_snapshot(0);
            }
        }
    }

    fn hand_on_held(&mut self) {
        for w in 0..self.batches.len() {
            if !self.batches[w].is_empty() {
                self.hand_on(w);
            }
        }
    }

    fn hand_on(&mut self, w: usize) {
        let fresh = self
            .spare_rx
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(self.bytes, BATCH_PKTS));
        let batch = std::mem::replace(&mut self.batches[w], fresh);
        let wb = WorkBatch {
            source: self.batch_src[w].clone(),
            batch,
            read_at: self.read_at[w],
        };
        hand_over(&self.txs[w], wb, &mut self.perf, self.live);
    }

    /// End of input: the workers finish, and everything they and the reader hold goes to
    /// the writer.
    fn finish(mut self, report: &mut RunReport, ev_tx: Sender<Msg>) {
        self.hand_on_held();
        let Reader {
            txs,
            workers,
            mut inline,
            perf,
            plan,
            reader_tx,
            ..
        } = self;
        drop(txs);
        drop(ev_tx);
        inline.flush();
        inline.send_snapshot(0);
        report.counters.merge(&inline.counters());
        report.counters.queue_drops += perf.drops;
        if reader_tx.send(Msg::Reader(Box::new(perf))).is_err() {
            report
                .stage_log
                .push("the writer stopped before the reader's queue figures reached it".into());
        }
        drop(reader_tx);
        for w in workers {
            match w.join() {
                Ok(c) => report.counters.merge(&c),
                Err(_) => report.files_failed.push("a worker thread failed".into()),
            }
        }
        report.shard_split = plan.split();
    }
}

/// A worker thread of file and libpcap input: takes batches from the reader.
fn batch_worker(
    index: usize,
    rx: Receiver<WorkBatch>,
    shared: &Arc<ArcSwap<Ruleset>>,
    cfg: &Config,
    ev_tx: Sender<Msg>,
    spare_tx: Sender<Batch>,
    live: bool,
) -> Counters {
    let mut w = Worker::new(shared.load_full(), cfg, ev_tx);
    let (mut last_snapshot, mut last_idle) = (Instant::now(), Instant::now());
    loop {
        let wb = match rx.recv_timeout(if live {
            IDLE_EVERY
        } else {
            Duration::from_secs(3600)
        }) {
            Ok(wb) => wb,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if live {
                    last_idle = Instant::now();
                    w.idle(wall_ns());
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        w.refresh_rules(shared);
        w.batch_at = wb.read_at;
        for i in 0..wb.batch.len() {
            // The packet bytes were written by the reader's core a while ago and are likely
            // out of cache by now: ask for a later packet's headers while this one is
            // processed.
            if let Some(ahead) = wb.batch.bytes(i + PREFETCH_AHEAD) {
                prefetch(ahead);
            }
            w.timed_packet(&wb.batch.get(i), &wb.source);
        }
        w.flush();
        let mut spare = wb.batch;
        spare.clear();
        // The reader allocates a fresh batch when none comes back: a full return queue
        // only costs an allocation.
        if spare_tx.try_send(spare).is_err() {
            w.c.skips.add("batch_not_recycled");
        }
        if live && last_idle.elapsed() >= IDLE_EVERY {
            last_idle = Instant::now();
            w.idle(wall_ns());
        }
        if last_snapshot.elapsed() >= cfg.stats_interval {
            last_snapshot = Instant::now();
            w.send_snapshot(index);
        }
    }
    w.send_snapshot(index);
    w.counters()
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
/// The meta of an event of this packet's flow: as the packet travelled, or (`swap`) the
/// other way round.
fn packet_meta(
    d: &Decoded<'_>,
    ts_ns: u64,
    flow_id: u64,
    iface: &Arc<str>,
    swap: bool,
    to_server: bool,
) -> Meta {
    let (sport, dport) = match d.transport {
        Transport::Tcp(t) => (t.sport, t.dport),
        Transport::Udp { sport, dport, .. } => (sport, dport),
        Transport::Other(_) => (0, 0),
    };
    let proto = match d.transport {
        Transport::Tcp(_) => 6,
        Transport::Udp { .. } => 17,
        Transport::Other(p) => p,
    };
    let ((src, sport), (dst, dport)) = if swap {
        ((d.dst, dport), (d.src, sport))
    } else {
        ((d.src, sport), (d.dst, dport))
    };
    Meta {
        ts_ns,
        flow_id,
        iface: iface.clone(),
        src,
        sport,
        dst,
        dport,
        proto,
        vlan: d.encap.vlan,
        tx_id: 0,
        to_server,
    }
}

/// Certificate names matched like an SNI: the subject alternative DNS names, and the
/// subject's CN when it is not among them; `*.` dropped (a wildcard is for its parent's
/// subdomains, which suffix entries match); at most `MAX_CERT_NAMES` (a CDN certificate
/// lists hundreds, and the first ones name the service).
fn cert_names(info: &extract::tls::ServerInfo) -> Vec<&str> {
    let Some(c) = &info.cert else {
        return Vec::new();
    };
    let cn = c
        .subject
        .split(", ")
        .filter_map(|p| p.strip_prefix("CN="))
        .last();
    let mut out: Vec<&str> = Vec::new();
    for n in c.sans.iter().map(String::as_str).chain(cn) {
        let n = n.strip_prefix("*.").unwrap_or(n);
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
        if out.len() >= MAX_CERT_NAMES {
            break;
        }
    }
    out
}

const MAX_CERT_NAMES: usize = 10;

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

/// Hands a batch to a worker, counting how full its queue was. Offline input waits for
/// room (nothing is lost); a live source drops the batch instead, counted, since waiting
/// would stall the capture and lose packets in the kernel, uncounted by us.
fn hand_over(tx: &Sender<WorkBatch>, wb: WorkBatch, perf: &mut Perf, live: bool) {
    perf.queue_depth.record(tx.len() as u64);
    match tx.try_send(wb) {
        Ok(()) => {}
        Err(crossbeam_channel::TrySendError::Full(wb)) if live => {
            perf.drops += wb.batch.len() as u64;
        }
        Err(crossbeam_channel::TrySendError::Full(wb)) => {
            perf.reader_waits += 1;
            if let Err(e) = tx.send(wb) {
                perf.drops += e.0.batch.len() as u64;
            }
        }
        Err(crossbeam_channel::TrySendError::Disconnected(wb)) => {
            perf.drops += wb.batch.len() as u64
        }
    }
}

struct WriterCfg {
    stats: bool,
    interval: Duration,
    workers: usize,
    start: Instant,
    /// A live source: the detection stage's clock follows the wall clock on a quiet link.
    live: bool,
    /// Bumped on SIGHUP: the output file is reopened.
    reopen: Arc<std::sync::atomic::AtomicU64>,
}

/// Longest the writer waits for a message before it looks at the clock and the reopen flag.
const WRITER_TICK: Duration = Duration::from_millis(250);

/// What the writer thread hands back at the end.
struct WriterEnd {
    written: u64,
    perf: Perf,
    /// Events lost at a sink (dropped or rejected), per sink: the run's exit status says so.
    error: Option<String>,
    stage: StageStats,
    stage_log: Vec<String>,
    baseline: Option<String>,
    /// Alerts the detection stage raised, by signature.
    alerts_by_sig: std::collections::BTreeMap<u32, (String, u64)>,
    /// SIGHUPs passed to the sinks.
    reopened: u64,
    sinks: Vec<SinkStats>,
}

/// The event's kind, severity and addresses, as sinks need them beside the line.
fn out_meta(ev: &Event) -> OutMeta {
    let kind = match (&ev.alert, ev.record.as_deref()) {
        (Some(_), _) => Kind::Alert,
        (None, Some(Record::Dns(_))) => Kind::Dns,
        (None, Some(Record::Tls(_) | Record::TlsServer(_))) => Kind::Tls,
        (None, Some(Record::Http(_))) => Kind::Http,
        (None, Some(Record::Quic(..))) => Kind::Quic,
        (None, None) => Kind::Flow,
    };
    OutMeta {
        kind,
        severity: ev.alert.as_ref().map_or(0, |a| a.sig.severity),
        flow_id: ev.meta.flow_id,
        src: Some(ev.meta.src),
        ts_ns: ev.meta.ts_ns,
    }
}

/// Serialises each event once (EVE; ECS too when a sink wants it), with its unique id, and
/// hands it to the sinks.
struct Serialiser {
    ids: EventIds,
    line: Vec<u8>,
    ecs_line: Vec<u8>,
    written: u64,
    /// EVE lines the ECS mapping could not read (never expected: counted, not hidden).
    ecs_errors: u64,
}

impl Serialiser {
    fn emit(&mut self, out: &Fanout, meta: OutMeta, ecs_wanted: bool) {
        let eve: Arc<[u8]> = Arc::from(self.line.as_slice());
        let ecs_out = if ecs_wanted {
            self.ecs_line.clear();
            match ecs::from_eve(&self.line, &mut self.ecs_line) {
                Ok(()) => Some(Arc::from(self.ecs_line.as_slice())),
                Err(_) => {
                    self.ecs_errors += 1;
                    None
                }
            }
        } else {
            None
        };
        out.send(meta, eve, ecs_out);
        self.written += 1;
    }

    fn events(&mut self, events: &[Event], out: &Fanout, perf: &mut Perf) {
        let ecs_wanted = out.needs_ecs();
        for ev in events {
            if ev.alert.is_some() {
                if let Some(born) = ev.born {
                    perf.alert_latency_us
                        .record(born.elapsed().as_micros() as u64);
                }
            }
            let meta = out_meta(ev);
            if !out.wants(meta.kind) {
                continue;
            }
            let id = self.ids.next_id();
            self.line.clear();
            // Hex digits only: always UTF-8.
            eve::write_event(
                ev,
                std::str::from_utf8(&id).unwrap_or_default(),
                &mut self.line,
            );
            self.emit(out, meta, ecs_wanted);
        }
    }
}

/// The writer thread: runs the detection stage on the workers' observations, serialises
/// events once and hands them to the sinks (each with its own queue, thread and spool),
/// merges the workers' snapshots, writes `stats` records every interval and at the end,
/// and measures capture-to-alert latency.
fn writer_loop(rx: Receiver<Msg>, out: Fanout, cfg: WriterCfg, mut stage: Stage) -> WriterEnd {
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
    let mut ser = Serialiser {
        ids: EventIds::new(),
        line: Vec::with_capacity(2048),
        ecs_line: Vec::with_capacity(2048),
        written: 0,
        ecs_errors: 0,
    };
    let mut snaps: Vec<Option<(Counters, Hist)>> = vec![None; cfg.workers];
    let mut perf = Perf {
        live: cfg.live,
        ..Perf::default()
    };
    let mut last_stats = Instant::now();
    let mut prev = eve_stats::Totals::default();
    let write_stats = |snaps: &[Option<(Counters, Hist)>],
                       perf: &Perf,
                       stage: &StageStats,
                       prev: &mut eve_stats::Totals,
                       ser: &mut Serialiser,
                       out: &Fanout| {
        if !out.wants(Kind::Stats) {
            return;
        }
        let (mut c, p) = merged(snaps, perf);
        c.alerts += stage.alerts;
        let id = ser.ids.next_id();
        ser.line.clear();
        *prev = eve_stats::write_record(
            &c,
            &p,
            stage,
            cfg.start.elapsed(),
            *prev,
            &out.stats(),
            std::str::from_utf8(&id).unwrap_or_default(),
            &mut ser.line,
        );
        let meta = OutMeta {
            kind: Kind::Stats,
            severity: 0,
            flow_id: 0,
            src: None,
            ts_ns: wall_ns(),
        };
        ser.emit(out, meta, out.needs_ecs());
    };
    let mut reopen_seen = cfg.reopen.load(std::sync::atomic::Ordering::SeqCst);
    let mut reopened = 0u64;
    loop {
        let wait = if cfg.stats {
            cfg.interval
                .saturating_sub(last_stats.elapsed())
                .min(WRITER_TICK)
        } else {
            WRITER_TICK
        };
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if cfg.live {
                    // Windows close on a quiet link too.
                    stage.tick(wall_ns());
                }
                None
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let gen = cfg.reopen.load(std::sync::atomic::Ordering::SeqCst);
        if gen != reopen_seen {
            // Everything so far goes to the old file; what follows to the new one (each file
            // sink's thread flushes, then reopens, in its queue's order).
            reopen_seen = gen;
            out.reopen();
            reopened += 1;
        }
        match msg {
            Some(Msg::Events(events)) => ser.events(&events, &out, &mut perf),
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
            ser.events(&ready, &out, &mut perf);
        }
        if let Some(e) = stage.maybe_save() {
            stage_log.push(e);
        }
        if cfg.stats && last_stats.elapsed() >= cfg.interval {
            last_stats = Instant::now();
            write_stats(&snaps, &perf, &stage.stats, &mut prev, &mut ser, &out);
        }
    }
    // End of input: every open alert window is written, and the baseline saved.
    if let Some(e) = stage.finish() {
        stage_log.push(e);
    }
    let ready = stage.drain();
    count_stage(&ready);
    ser.events(&ready, &out, &mut perf);
    if cfg.stats {
        write_stats(&snaps, &perf, &stage.stats, &mut prev, &mut ser, &out);
    }
    if ser.ecs_errors > 0 {
        stage_log.push(format!(
            "{} events could not be mapped to ECS (sent to EVE sinks only)",
            ser.ecs_errors
        ));
    }
    // Every sink delivers what it holds within --flush-timeout; the rest stays in its spool.
    let sinks = out.finish();
    let mut lost = Vec::new();
    for k in &sinks {
        let n = k.dropped_oldest + k.dropped_newest + k.rejected;
        if n > 0 {
            lost.push(format!(
                "sink {} lost {n} events (dropped_oldest {}, dropped_newest {}, rejected {})",
                k.name, k.dropped_oldest, k.dropped_newest, k.rejected
            ));
        }
        if k.spool_events > 0 {
            stage_log.push(format!(
                "sink {}: {} events wait in its spool for the next start with the same --spool",
                k.name, k.spool_events
            ));
        }
    }
    let (_, p) = merged(&snaps, &perf);
    WriterEnd {
        reopened,
        written: ser.written,
        perf: p,
        error: (!lost.is_empty()).then(|| lost.join("; ")),
        stage: stage.stats,
        stage_log,
        baseline: stage.baseline_summary(),
        alerts_by_sig: by_sig,
        sinks,
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
    /// Records of the other direction, read when this packet's ACK skipped a capture hole.
    peer_records: Vec<Record>,
    /// When the reader started the batch being processed (latency origin of its events).
    batch_at: Instant,
    /// Processing time of sampled packets, nanoseconds.
    pkt_ns: Hist,
    /// Hosts seen sending a plain DNS query to port 53, and when this worker last told the
    /// stage (hidden-DNS detection: a host that normally uses the local resolver).
    dns_hosts: rustc_hash::FxHashMap<std::net::IpAddr, u64>,
}

/// A host's plain DNS use is reported to the stage at most once per this interval per worker.
const LOCAL_DNS_NOTE_NS: u64 = 600 * 1_000_000_000;
/// Hosts remembered for that (cleared when full, counted as `local_dns_hosts_reset`).
const MAX_DNS_HOSTS: usize = 65_536;

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
            peer_records: Vec::new(),
            batch_at: Instant::now(),
            pkt_ns: Hist::new(),
            dns_hosts: Default::default(),
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

    /// A live capture's clock: flows idle past their timeout end now, though no packet
    /// came to move packet time on.
    fn idle(&mut self, now_ns: u64) {
        self.flows.expire_idle(now_ns);
        self.ended();
        self.flush();
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
            let labels = e.ctx.as_ref().map(|x| x.labels.clone()).unwrap_or_default();
            self.pending.push(Event {
                meta: meta.clone(),
                record: None,
                alert: None,
                question: 0,
                labels: Arc::new(labels),
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
            // The server of a new flow: a SYN-ACK's sender; a SYN's receiver; otherwise the
            // side on a well-known port when only one is, else the receiver (the first
            // packet seen usually comes from the client).
            let server_is_src = match d.transport {
                Transport::Tcp(t) if t.syn => t.ack_flag,
                _ => sport < 1024 && dport >= 1024,
            };
            if server_is_src {
                flow.client = 1 - dir as u8;
            }
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
                // The peer acknowledged bytes of the other direction that the capture never
                // had: that hole will not be filled; skip it now so what follows is read
                // (HTTP resynchronises on the next request line).
                if t.ack_flag && !flow.app[1 - dir].is_finished() {
                    let app = &mut flow.app;
                    let skips = &mut self.c.skips;
                    let peer = &mut self.peer_records;
                    let o = flow.tcp[1 - dir].on_peer_ack(t.ack, |d| match d {
                        Delivery::Data(data) => {
                            extract::feed_pair(app, 1 - dir, data, (dport, sport), peer, skips)
                        }
                        Delivery::Gap(_) => app[1 - dir].gap(skips),
                    });
                    self.c.tcp_ooo_dropped += o.ooo_dropped;
                    self.c.tcp_gaps += o.gaps;
                }
                if !t.payload.is_empty() {
                    // A server's certificate is read for the `tls` record (`--types tls`),
                    // or to name the destination of a client that sent no SNI.
                    if flow.sni_seen && !self.types.tls && dir != usize::from(flow.client) {
                        flow.app[dir].skip_server_flight();
                    }
                    let before = flow.buffered(dir);
                    // Both directions: a server's first hello tells the client's stream how
                    // many ClientHellos are left to read (extract::feed_pair).
                    let app = &mut flow.app;
                    let skips = &mut self.c.skips;
                    let o = flow.tcp[dir].segment_events(t.seq, t.payload, |d| match d {
                        Delivery::Data(data) => {
                            extract::feed_pair(app, dir, data, (sport, dport), &mut records, skips)
                        }
                        Delivery::Gap(_) => app[dir].gap(skips),
                    });
                    self.c.tcp_ooo_dropped += o.ooo_dropped;
                    self.c.tcp_gaps += o.gaps;
                    if records
                        .iter()
                        .any(|r| matches!(r, Record::Tls(h) if h.sni.is_some()))
                    {
                        flow.sni_seen = true;
                    }
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
        if created {
            // Every flow's server address is checked once, whatever its protocol and
            // whether or not a record comes of it (QUIC it cannot read, NTP, VPNs ...):
            // the playbook's "connections to known web-service IP ranges".
            let server_is_src = flow.client != dir as u8;
            let meta = packet_meta(&d, ts, flow_id, source, server_is_src, true);
            self.flow_address(key, meta);
        }
        if records.is_empty() && self.peer_records.is_empty() {
            self.records = records;
            return;
        }
        let mut peer = std::mem::take(&mut self.peer_records);
        let this = records.drain(..).map(|r| (r, false));
        let other = peer.drain(..).map(|r| (r, true));
        for (rec, from_peer) in this.chain(other) {
            // A record is oriented as its sender sent it (a DNS response to the client),
            // except a server's TLS flight, oriented client to server like its ClientHello.
            let swap = from_peer != matches!(rec, Record::TlsServer(_));
            let to_server = !matches!(&rec, Record::Dns(m) if m.is_response());
            let meta = packet_meta(&d, ts, flow_id, source, swap, to_server);
            self.emit(key, meta, rec);
        }
        self.peer_records = peer;
        self.records = records;
    }

    /// Matches a record against the signatures and queues its events.
    fn emit(&mut self, key: FlowKey, meta: Meta, rec: Record) {
        match &rec {
            Record::Dns(_) => self.c.dns_records += 1,
            Record::Tls(_) => self.c.tls_records += 1,
            Record::Http(_) => self.c.http_records += 1,
            Record::Quic(..) => self.c.quic_records += 1,
            Record::TlsServer(_) => self.c.tls_records += 1,
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
                // The names a server's certificate is for are matched like an SNI: this
                // catches clients that send none (an IP literal, old tools, malware).
                Record::TlsServer(info) => {
                    for name in cert_names(info) {
                        check(Field::TlsSni, name);
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
        let labels = Arc::new(self.label_texts(&hits));
        if self.alert_mode == AlertMode::Entity {
            if self.types.alert && !hits.is_empty() {
                self.observe(key, &meta, Some(&record), &hits, &labels);
            } else if self.types.alert {
                self.note_local_dns(&meta, &record);
            }
            self.record_events(&meta, &record, &labels, Vec::new());
            return;
        }
        let events = self.flow_alerts(key, &meta, Some(&record), &hits, &labels);
        self.record_events(&meta, &record, &labels, events);
    }

    /// Labels (cloud provider ranges, label packs): carried on the events, no alert.
    fn label_texts(&mut self, hits: &[(Field, String, Hit<'_>)]) -> Vec<String> {
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
        labels
    }

    /// A new flow's server address against the address signatures (once per flow): labels
    /// go on the flow, alert-tier hits alert per the mode (`flow`: one alert with the flow's
    /// 5-tuple, as Suricata's IP-reputation rules; `entity`: an observation for the stage).
    fn flow_address(&mut self, key: FlowKey, meta: Meta) {
        let rules = self.rules.clone();
        let mut found = Vec::new();
        rules.match_ip(meta.dst, &mut found);
        if found.is_empty() {
            return;
        }
        self.c.flow_address_hits += 1;
        // Most listed addresses are provider ranges (labels): they are written on the flow
        // record when there is one, and otherwise matter only to a baseline or a policy
        // (or as an encrypted resolver); nothing is built for the rest (the packet path's
        // budget: one table lookup per new flow).
        let alerting = self.types.alert
            && found.iter().any(|h| {
                h.sig.action == Action::Alert
                    || (self.alert_mode == AlertMode::Entity
                        && (self.context_observations
                            || h.sig.service_category.as_deref() == Some("encrypted-dns")))
            });
        if !alerting && !self.types.flow {
            return;
        }
        let value = meta.dst.to_string();
        let hits: Vec<(Field, String, Hit<'_>)> = found
            .into_iter()
            .map(|h| (Field::IpDst, value.clone(), h))
            .collect();
        let labels = self.label_texts(&hits);
        {
            let (flow, _) = self.flows.get(key, meta.ts_ns);
            let ctx = flow.ctx.get_or_insert_with(Box::<FlowContext>::default);
            ctx.labels.clone_from(&labels);
        }
        let labels = Arc::new(labels);
        if !alerting {
            return;
        }
        if self.alert_mode == AlertMode::Entity {
            self.observe(key, &meta, None, &hits, &labels);
            return;
        }
        let events = self.flow_alerts(key, &meta, None, &hits, &labels);
        self.pending.extend(events);
        if self.pending.len() >= 256 {
            self.flush();
        }
    }

    /// `--alert-mode flow`: the alert events of one record's (or a flow address's) hits.
    fn flow_alerts(
        &mut self,
        key: FlowKey,
        meta: &Meta,
        record: Option<&Arc<Record>>,
        hits: &[(Field, String, Hit<'_>)],
        labels: &Arc<Vec<String>>,
    ) -> Vec<Event> {
        let rules = self.rules.clone();
        let (flow, _) = self.flows.get(key, meta.ts_ns);
        let mut events = Vec::new();
        // One alert per (field, value): the most specific matching signature (hits come most
        // specific first), unless an exception covers it.
        let mut decided: Vec<(Field, &str)> = Vec::new();
        for (field, value, hit) in hits {
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
                record: record.cloned(),
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
        events
    }

    /// Hands the detection stage a record's hits (exceptions applied), and remembers on the
    /// flow which web service and agent it carried (for the upload check at its end).
    fn observe(
        &mut self,
        key: FlowKey,
        meta: &Meta,
        record: Option<&Arc<Record>>,
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
                    || matches!(
                        h.sig.service_category.as_deref(),
                        Some("cloud-console" | "encrypted-dns")
                    )
            });
        if !needed {
            self.c.skips.add("observation_context_only");
            return;
        }
        self.pending_obs.push(Observation {
            meta: meta.clone(),
            born: Some(self.batch_at),
            record: record.cloned(),
            hits: seen_hits,
            labels: labels.clone(),
        });
        if self.pending_obs.len() >= 256 {
            self.flush();
        }
    }

    /// A plain DNS query to port 53 that matched nothing: the stage only needs to know the
    /// host uses the local resolver, so it is sent once per host per `LOCAL_DNS_NOTE_NS`.
    fn note_local_dns(&mut self, meta: &Meta, record: &Arc<Record>) {
        let Record::Dns(m) = &**record else { return };
        if m.is_response() || meta.dport != 53 {
            return;
        }
        let now = meta.ts_ns;
        if let Some(t) = self.dns_hosts.get(&meta.src) {
            if now.saturating_sub(*t) < LOCAL_DNS_NOTE_NS {
                return;
            }
        }
        if self.dns_hosts.len() >= MAX_DNS_HOSTS && !self.dns_hosts.contains_key(&meta.src) {
            self.dns_hosts.clear();
            self.c.skips.add("local_dns_hosts_reset");
        }
        self.dns_hosts.insert(meta.src, now);
        self.pending_obs.push(Observation {
            meta: meta.clone(),
            born: Some(self.batch_at),
            record: Some(record.clone()),
            hits: Vec::new(),
            labels: Arc::new(Vec::new()),
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
