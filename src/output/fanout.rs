//! The sink interface: one event in, every sink that takes it out, none able to stall the
//! others (docs/sinks.md is the user's account).
//!
//! Each sink has a bounded in-memory queue (`queue_cap` events), a thread that owns its
//! transport, an optional on-disk spool (`--spool DIR`: `DIR/<sink name>/`), and counters
//! shared with `Fanout` ([`SinkStats`]).
//!
//! Order rule: events of one sink are delivered in the order `send` saw them. The thread
//! delivers, in this order, (1) `pending`: the events it took from the queue and has not
//! delivered yet, (2) the queue, (3) the spool. The writer keeps that true: while the spool
//! holds anything, new events go to the spool; otherwise to the queue, and to the spool only
//! when the queue is full. So pending < queue < spool at all times. The spool's mutex is
//! held by the writer for that decision, and by the thread only for spool operations, never
//! while a transport sends.

use crate::output::spool::{self, Spool, SpoolError};
use crate::output::transport::{self, Kind, Out, OutMeta, SendError, Transport};
use crate::output::url::{Format, SinkSpec, WhenFull};
use crossbeam_channel::{
    bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Events per `Transport::send`.
pub const BATCH: usize = 512;
/// Reconnect backoff: doubles from the first to the cap, back to the first after a delivery.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An idle sink thread wakes this often (SIGHUP, spool fsync, stop).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Longest single sleep (backoff, a blocked writer), so stop and progress are seen quickly.
const STEP: Duration = Duration::from_millis(10);
/// After the flush deadline, how long threads get to notice the stop flag before they are
/// left behind.
const GRACE: Duration = Duration::from_millis(250);
/// A `block` writer gives up on a sink that delivered nothing for this long at least (or
/// `flush_timeout` when longer): capture must finish eventually.
const STALL_MIN: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    dropped_oldest: AtomicU64,
    dropped_newest: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    corrupt_at_open: AtomicU64,
    connected: AtomicBool,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

/// What the writer, the sink thread and `finish` share under one mutex.
struct State {
    spool: Option<Spool>,
    /// Taken from the queue, not yet delivered (the batch being sent or retried).
    pending: VecDeque<Out>,
    /// Spool records `[start, start + len)` (logical indexes) being replayed now.
    inflight: Option<(u64, usize)>,
    /// `finish` took over: the thread must not touch events or counters again.
    abandoned: bool,
}

struct Shared {
    name: String,
    c: Counters,
    state: Mutex<State>,
    has_spool: bool,
    reopen_gen: AtomicU64,
    /// Past the flush deadline: stop at the next check.
    stop: AtomicBool,
    /// The thread returned (or panicked).
    done: AtomicBool,
    /// A `block` writer gave up waiting: drop at once until the sink delivers again.
    stalled: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves State half-changed in a way that matters more
        // than losing the sink: carry on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Sink {
    format: Format,
    /// Bit `1 << kind` for each kind the sink takes.
    kinds: u8,
    when_full: WhenFull,
    tx: Option<Sender<Out>>,
    /// A receiver clone: `drop_oldest` without a spool pops the queue's oldest; `finish`
    /// drains leftovers.
    rx: Receiver<Out>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

pub struct Fanout {
    sinks: Vec<Sink>,
    cfg: FanoutCfg,
    ecs: bool,
    kinds: u8,
}

fn kind_bits(spec: &SinkSpec) -> u8 {
    match &spec.types {
        None => Kind::ALL.iter().fold(0, |m, k| m | 1 << (*k as u8)),
        Some(v) => v.iter().fold(0, |m, k| m | 1 << (*k as u8)),
    }
}

impl Fanout {
    /// Opens every sink's transport, spool and thread. Errors name the sink's URL.
    pub fn start(specs: Vec<SinkSpec>, cfg: FanoutCfg) -> Result<Fanout, String> {
        let mut sinks = Vec::with_capacity(specs.len());
        for spec in specs {
            let t = transport::open(&spec)
                .map_err(|e| format!("sink {} ({}): {e}", spec.name, spec.url))?;
            sinks.push((spec, t));
        }
        Fanout::start_with(sinks, cfg)
    }

    /// As `start`, with transports built by the caller (tests, `pipeline::run` over any
    /// writer).
    pub fn start_with(
        sinks: Vec<(SinkSpec, Box<dyn Transport>)>,
        cfg: FanoutCfg,
    ) -> Result<Fanout, String> {
        let mut out = Fanout {
            sinks: Vec::with_capacity(sinks.len()),
            ecs: sinks.iter().any(|(s, _)| s.format == Format::Ecs),
            kinds: sinks.iter().fold(0, |m, (s, _)| m | kind_bits(s)),
            cfg,
        };
        for (spec, t) in sinks {
            let sink = out.start_sink(spec, t)?;
            out.sinks.push(sink);
        }
        Ok(out)
    }

    fn start_sink(&self, spec: SinkSpec, t: Box<dyn Transport>) -> Result<Sink, String> {
        let who = |e: &dyn std::fmt::Display| format!("sink {} ({}): {e}", spec.name, spec.url);
        let c = Counters::default();
        let spool = match &self.cfg.spool {
            None => None,
            Some(dir) => {
                let (sp, rep) =
                    Spool::open(&dir.join(&spec.name), self.cfg.spool_max).map_err(|e| who(&e))?;
                add(&c.corrupt_at_open, rep.corrupt);
                Some(sp)
            }
        };
        let shared = Arc::new(Shared {
            name: spec.name.clone(),
            c,
            has_spool: spool.is_some(),
            state: Mutex::new(State {
                spool,
                pending: VecDeque::new(),
                inflight: None,
                abandoned: false,
            }),
            reopen_gen: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
        });
        let (tx, rx) = bounded(self.cfg.queue_cap.max(1));
        let th = {
            let shared = shared.clone();
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sink-{}", spec.name))
                .spawn(move || {
                    let mut w = Worker::new(shared, t, rx);
                    w.run();
                })
                .map_err(|e| who(&e))?
        };
        Ok(Sink {
            format: spec.format,
            kinds: kind_bits(&spec),
            when_full: spec.when_full.unwrap_or(self.cfg.when_full),
            tx: Some(tx),
            rx,
            shared,
            thread: Some(th),
        })
    }

    /// Some sink wants ECS: the writer makes the ECS line too.
    pub fn needs_ecs(&self) -> bool {
        self.ecs
    }

    /// Hands one event, already serialised (EVE always; ECS when `needs_ecs`), to every sink
    /// that takes its kind. Blocks only for a `block` sink whose spool is full.
    pub fn send(&self, meta: OutMeta, eve: Arc<[u8]>, ecs: Option<Arc<[u8]>>) {
        let bit = 1u8 << (meta.kind as u8);
        for s in &self.sinks {
            if s.kinds & bit == 0 {
                continue;
            }
            let line = match (s.format, &ecs) {
                (Format::Eve, _) => eve.clone(),
                (Format::Ecs, Some(l)) => l.clone(),
                // The caller did not make the ECS line this sink needs: an EVE line would be
                // the wrong schema for it, so the event is refused, counted.
                (Format::Ecs, None) => {
                    add(&s.shared.c.rejected, 1);
                    continue;
                }
            };
            s.offer(Out { line, meta }, &self.cfg);
        }
    }

    /// Some sink takes events of this kind.
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds & (1 << (kind as u8)) != 0
    }

    /// SIGHUP: file sinks reopen their paths.
    pub fn reopen(&self) {
        for s in &self.sinks {
            s.shared.reopen_gen.fetch_add(1, Relaxed);
        }
    }

    /// Every sink's counters now.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(|s| s.stats()).collect()
    }

    /// Flushes every sink for at most `flush_timeout`, leaves what is undelivered in its
    /// spool (or counts it dropped without one), stops the threads, and returns the final
    /// counters.
    pub fn finish(mut self) -> Vec<SinkStats> {
        let deadline = Instant::now() + self.cfg.flush_timeout;
        // Closing the queues tells each thread to deliver what is left and return.
        for s in &mut self.sinks {
            s.tx = None;
        }
        let all_done = |sinks: &[Sink]| sinks.iter().all(|s| s.shared.done.load(Relaxed));
        while !all_done(&self.sinks) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        for s in &self.sinks {
            s.shared.stop.store(true, Relaxed);
        }
        let grace = Instant::now() + GRACE;
        while !all_done(&self.sinks) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut out = Vec::with_capacity(self.sinks.len());
        for s in &mut self.sinks {
            {
                let mut st = s.shared.lock();
                st.abandoned = true;
                let mut left: Vec<Out> = st.pending.drain(..).collect();
                left.extend(s.rx.try_iter());
                let c = &s.shared.c;
                match st.spool.as_mut() {
                    // Delivered by the next start with the same spool folder.
                    Some(sp) => {
                        // Older than anything spooled: put them first, so the next start
                        // delivers in order. Without room, after it (counted as usual).
                        let fallback = match sp.prepend(&left) {
                            Ok(()) => {
                                add(&c.spooled, left.len() as u64);
                                &left[..0]
                            }
                            Err(SpoolError::Full { .. }) => &left[..],
                            Err(e) => {
                                add(&c.errors, 1);
                                eprintln!("cloudtap: sink {}: {e}", s.shared.name);
                                &left[..]
                            }
                        };
                        for o in fallback {
                            if spool_append(&s.shared, sp, o).is_err() {
                                add(&c.dropped_newest, 1);
                            }
                        }
                        if let Err(e) = sp.sync() {
                            add(&c.errors, 1);
                            eprintln!("cloudtap: sink {}: {e}", s.shared.name);
                        }
                    }
                    // No spool: what is still in memory is lost, counted as dropped_newest.
                    None => add(&c.dropped_newest, left.len() as u64),
                }
            }
            out.push(s.stats());
            // Close the spool (its lock too) so a new Fanout may open it.
            s.shared.lock().spool = None;
            if let Some(th) = s.thread.take() {
                if s.shared.done.load(Relaxed) {
                    if th.join().is_err() {
                        eprintln!("cloudtap: sink {}: its thread panicked", s.shared.name);
                    }
                } else {
                    eprintln!(
                        "cloudtap: sink {}: still busy in its transport after the flush timeout; left behind",
                        s.shared.name
                    );
                }
            }
        }
        out
    }
}

impl Sink {
    fn stats(&self) -> SinkStats {
        let sh = &self.shared;
        let c = &sh.c;
        let st = sh.lock();
        let (spool_events, spool_bytes, corrupt) = st
            .spool
            .as_ref()
            .map_or((0, 0, 0), |s| (s.len(), s.bytes(), s.corrupt()));
        let queued = (self.rx.len() + st.pending.len()) as u64;
        SinkStats {
            name: sh.name.clone(),
            sent: c.sent.load(Relaxed),
            spooled: c.spooled.load(Relaxed),
            replayed: c.replayed.load(Relaxed),
            dropped_oldest: c.dropped_oldest.load(Relaxed),
            dropped_newest: c.dropped_newest.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            errors: c.errors.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            queued,
            spool_events,
            spool_bytes,
            spool_corrupt: c.corrupt_at_open.load(Relaxed) + corrupt,
            up: c.connected.load(Relaxed) && spool_events == 0 && st.pending.is_empty(),
        }
    }

    fn offer(&self, out: Out, cfg: &FanoutCfg) {
        if self.shared.has_spool {
            self.offer_spooled(out, cfg)
        } else {
            self.offer_queue(out, cfg)
        }
    }

    /// Without a spool: the queue, and `when_full` when it is full.
    fn offer_queue(&self, out: Out, cfg: &FanoutCfg) {
        let c = &self.shared.c;
        let Some(tx) = &self.tx else {
            add(&c.dropped_newest, 1);
            return;
        };
        let mut out = match tx.try_send(out) {
            Ok(()) => return,
            Err(TrySendError::Disconnected(_)) => {
                add(&c.dropped_newest, 1);
                return;
            }
            Err(TrySendError::Full(o)) => o,
        };
        match self.when_full {
            WhenFull::DropNewest => add(&c.dropped_newest, 1),
            WhenFull::DropOldest => {
                // Bounded: the sink thread may refill nothing, but another writer could.
                for _ in 0..8 {
                    if self.rx.try_recv().is_ok() {
                        add(&c.dropped_oldest, 1);
                    }
                    match tx.try_send(out) {
                        Ok(()) => return,
                        Err(TrySendError::Full(o)) => out = o,
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
                add(&c.dropped_newest, 1);
            }
            WhenFull::Block => {
                let mut w = Waiter::new(&self.shared, cfg);
                loop {
                    if w.give_up() {
                        add(&c.dropped_newest, 1);
                        return;
                    }
                    match tx.send_timeout(out, STEP) {
                        Ok(()) => return,
                        Err(SendTimeoutError::Timeout(o)) => out = o,
                        Err(SendTimeoutError::Disconnected(_)) => {
                            add(&c.dropped_newest, 1);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// With a spool: the queue while the spool is empty and the queue has room, else the
    /// spool (keeps the order rule); `when_full` applies when the spool is full.
    fn offer_spooled(&self, out: Out, cfg: &FanoutCfg) {
        let c = &self.shared.c;
        let mut waiter: Option<Waiter> = None;
        let mut out = out;
        loop {
            let mut guard = self.shared.lock();
            let st = &mut *guard;
            let Some(sp) = st.spool.as_mut() else {
                add(&c.dropped_newest, 1);
                return;
            };
            if sp.is_empty() {
                if let Some(tx) = &self.tx {
                    match tx.try_send(out) {
                        Ok(()) => return,
                        Err(TrySendError::Full(o) | TrySendError::Disconnected(o)) => out = o,
                    }
                }
            }
            match spool_append(&self.shared, sp, &out) {
                Ok(()) => return,
                Err(NotSpooled::Full) => {}
                Err(NotSpooled::Failed) => {
                    add(&c.dropped_newest, 1);
                    return;
                }
            }
            match self.when_full {
                WhenFull::DropNewest => {
                    add(&c.dropped_newest, 1);
                    return;
                }
                WhenFull::DropOldest => {
                    make_room(&self.shared, sp, st.inflight, &out);
                    return;
                }
                WhenFull::Block => {}
            }
            // Block: wait for the sink thread to make room, without holding the lock.
            drop(guard);
            let w = waiter.get_or_insert_with(|| Waiter::new(&self.shared, cfg));
            if w.give_up() {
                add(&c.dropped_newest, 1);
                return;
            }
            std::thread::sleep(STEP);
        }
    }
}

/// `drop_oldest` on a full spool: drops the oldest records until `out` fits, then appends
/// it. Records being replayed are counted by the thread (delivered or dropped), not here.
fn make_room(sh: &Shared, sp: &mut Spool, inflight: Option<(u64, usize)>, out: &Out) {
    let c = &sh.c;
    // Each round drops one record; at most every record once, plus one.
    let rounds = sp.len() + 1;
    for _ in 0..rounds {
        if sp.is_empty() {
            break;
        }
        let h0 = sp.head_index();
        let dropped = match sp.drop_oldest(1) {
            Ok(n) => n,
            Err(e) => {
                add(&c.errors, 1);
                eprintln_limited(sh, &e);
                break;
            }
        };
        let h1 = sp.head_index();
        add(
            &c.dropped_oldest,
            dropped.saturating_sub(overlap((h0, h1), inflight)),
        );
        if dropped == 0 && h1 == h0 {
            break;
        }
        match spool_append(sh, sp, out) {
            Ok(()) => return,
            Err(NotSpooled::Full) => {}
            Err(NotSpooled::Failed) => break,
        }
    }
    // Larger than the whole spool, or the spool failed.
    if spool_append(sh, sp, out).is_err() {
        add(&c.dropped_newest, 1);
    }
}

/// How many of the logical indexes `[a, b)` fall in the in-flight range.
fn overlap((a, b): (u64, u64), inflight: Option<(u64, usize)>) -> u64 {
    match inflight {
        None => 0,
        Some((s, n)) => {
            let e = s + n as u64;
            b.min(e).saturating_sub(a.max(s))
        }
    }
}

/// Spool I/O errors on the writer's path: counted always, printed at most a few times.
fn eprintln_limited(sh: &Shared, e: &SpoolError) {
    if sh.c.errors.load(Relaxed) <= 3 {
        eprintln!("cloudtap: sink {}: {e}", sh.name);
    }
}

/// Why [`spool_append`] did not take an event.
#[derive(Debug, PartialEq, Eq)]
enum NotSpooled {
    /// The spool is at `--spool-max`: the caller applies its policy (not counted here).
    Full,
    /// An I/O error, already counted in `errors` and printed (a few times).
    Failed,
}

/// Appends one event to the spool and counts the outcome: `spooled`, or an I/O error.
/// The one place every path (writer, sink thread, exit) spools an event through.
fn spool_append(sh: &Shared, sp: &mut Spool, out: &Out) -> Result<(), NotSpooled> {
    match sp.append(out) {
        Ok(()) => {
            add(&sh.c.spooled, 1);
            Ok(())
        }
        Err(SpoolError::Full { .. }) => Err(NotSpooled::Full),
        Err(e) => {
            add(&sh.c.errors, 1);
            eprintln_limited(sh, &e);
            Err(NotSpooled::Failed)
        }
    }
}

/// A `block` writer's patience: it waits while the sink delivers, and gives up (marking the
/// sink stalled) after no delivery for max(flush_timeout, 0.5 s).
struct Waiter<'a> {
    sh: &'a Shared,
    last_sent: u64,
    since: Instant,
    limit: Duration,
}

impl<'a> Waiter<'a> {
    fn new(sh: &'a Shared, cfg: &FanoutCfg) -> Waiter<'a> {
        Waiter {
            sh,
            last_sent: sh.c.sent.load(Relaxed),
            since: Instant::now(),
            limit: cfg.flush_timeout.max(STALL_MIN),
        }
    }

    fn give_up(&mut self) -> bool {
        if self.sh.stalled.load(Relaxed) {
            return true;
        }
        let sent = self.sh.c.sent.load(Relaxed);
        if sent != self.last_sent {
            self.last_sent = sent;
            self.since = Instant::now();
            return false;
        }
        if self.since.elapsed() >= self.limit {
            self.sh.stalled.store(true, Relaxed);
            return true;
        }
        false
    }
}

/// Sets `done` when the thread returns or unwinds.
struct DoneGuard(Arc<Shared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.c.connected.store(false, Relaxed);
        self.0.done.store(true, Relaxed);
    }
}

/// Where the batch being sent came from.
enum Src {
    Pending,
    Spool { start: u64 },
}

/// The sink thread.
struct Worker {
    sh: Arc<Shared>,
    t: Box<dyn Transport>,
    rx: Receiver<Out>,
    connected: bool,
    ever_connected: bool,
    backoff: Duration,
    retry_at: Instant,
    reopen_gen: u64,
    unflushed: bool,
    closed: bool,
}

enum Step {
    Continue,
    Exit,
}

impl Worker {
    fn new(sh: Arc<Shared>, t: Box<dyn Transport>, rx: Receiver<Out>) -> Worker {
        Worker {
            sh,
            t,
            rx,
            connected: false,
            ever_connected: false,
            backoff: BACKOFF_MIN,
            retry_at: Instant::now(),
            reopen_gen: 0,
            unflushed: false,
            closed: false,
        }
    }

    fn c(&self) -> &Counters {
        &self.sh.c
    }

    fn run(&mut self) {
        let _done = DoneGuard(self.sh.clone());
        loop {
            if self.sh.stop.load(Relaxed) {
                return;
            }
            if let Step::Exit = self.step() {
                return;
            }
        }
    }

    fn down(&mut self, why: &SendError) {
        add(&self.c().errors, 1);
        if self.c().errors.load(Relaxed) <= 3 {
            eprintln!("cloudtap: sink {}: {why}", self.sh.name);
        }
        self.connected = false;
        self.c().connected.store(false, Relaxed);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn delivered(&mut self) {
        self.backoff = BACKOFF_MIN;
        self.unflushed = true;
        self.sh.stalled.store(false, Relaxed);
    }

    /// Nothing left anywhere for this sink.
    fn idle(&self) -> bool {
        let st = self.sh.lock();
        st.pending.is_empty()
            && self.rx.is_empty()
            && st.spool.as_ref().is_none_or(|s| s.is_empty())
    }

    /// fsyncs what the spool says is due, outside the lock.
    fn sync_spool(&mut self) {
        if !self.sh.has_spool {
            return;
        }
        let work = {
            let mut st = self.sh.lock();
            match st.spool.as_mut().map(|s| s.take_sync_work()) {
                None => return,
                Some(w) => w,
            }
        };
        match work {
            Ok(files) => {
                for f in files {
                    if f.sync_data().is_err() {
                        add(&self.c().errors, 1);
                    }
                }
            }
            Err(e) => {
                add(&self.c().errors, 1);
                eprintln_limited(&self.sh, &e);
            }
        }
    }

    fn step(&mut self) -> Step {
        let g = self.sh.reopen_gen.load(Relaxed);
        if g != self.reopen_gen {
            self.reopen_gen = g;
            if let Err(e) = self.t.reopen() {
                self.down(&e);
            }
        }
        self.sync_spool();
        if !self.connected {
            if self.closed && self.idle() {
                return Step::Exit;
            }
            // Down: what sits in memory goes to the spool at once, so a kill -9 while the
            // sink is down loses nothing the queue held (the writer spools directly once
            // the spool is not empty).
            if self.sh.has_spool {
                let mut st = self.sh.lock();
                if !st.abandoned && (!st.pending.is_empty() || !self.rx.is_empty()) {
                    self.spool_rest(&mut st);
                }
            }
            let now = Instant::now();
            if now < self.retry_at {
                std::thread::sleep((self.retry_at - now).min(STEP));
                return Step::Continue;
            }
            match self.t.connect() {
                Ok(()) => {
                    self.connected = true;
                    self.c().connected.store(true, Relaxed);
                    if self.ever_connected {
                        add(&self.c().reconnects, 1);
                    }
                    self.ever_connected = true;
                }
                Err(e) => {
                    self.down(&e);
                    return Step::Continue;
                }
            }
        }
        // 1. What was taken from the queue and not delivered yet.
        let batch: Vec<Out> = {
            let st = self.sh.lock();
            st.pending.iter().take(BATCH).cloned().collect()
        };
        if !batch.is_empty() {
            return self.deliver(batch, Src::Pending);
        }
        // 2. The queue.
        let took = {
            let mut st = self.sh.lock();
            let mut n = 0;
            while n < BATCH {
                match self.rx.try_recv() {
                    Ok(o) => st.pending.push_back(o),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.closed = true;
                        break;
                    }
                }
                n += 1;
            }
            n
        };
        if took > 0 {
            return Step::Continue;
        }
        // 3. The spool, in order.
        if self.sh.has_spool {
            let got = {
                let mut st = self.sh.lock();
                let st = &mut *st;
                match st.spool.as_mut() {
                    None => return Step::Exit,
                    Some(sp) if sp.is_empty() => None,
                    Some(sp) => {
                        let start = sp.head_index();
                        match sp.peek_batch(BATCH) {
                            Ok(b) => {
                                if !b.is_empty() {
                                    st.inflight = Some((start, b.len()));
                                }
                                Some(Ok((start, b)))
                            }
                            Err(e) => Some(Err(e)),
                        }
                    }
                }
            };
            match got {
                None => {}
                Some(Ok((start, b))) => {
                    if b.is_empty() {
                        return Step::Continue;
                    }
                    return self.deliver(b, Src::Spool { start });
                }
                Some(Err(e)) => {
                    add(&self.c().errors, 1);
                    eprintln_limited(&self.sh, &e);
                    std::thread::sleep(IDLE_WAIT);
                    return Step::Continue;
                }
            }
        }
        // 4. Idle: push out what the transport buffers, then wait for the queue.
        if self.unflushed {
            self.unflushed = false;
            if let Err(e) = self.t.flush() {
                self.down(&e);
                return Step::Continue;
            }
        }
        if self.closed {
            return Step::Exit;
        }
        match self.rx.recv_timeout(IDLE_WAIT) {
            Ok(o) => {
                let mut st = self.sh.lock();
                st.pending.push_back(o);
                st.pending.extend(self.rx.try_iter().take(BATCH - 1));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.closed = true,
        }
        Step::Continue
    }

    /// Sends one batch and settles it under the lock.
    fn deliver(&mut self, batch: Vec<Out>, src: Src) -> Step {
        let n = batch.len();
        let res = self.t.send(&batch);
        let (k, err) = match res {
            Ok(()) => (n, None),
            Err(p) => (p.delivered.min(n), Some(p.error)),
        };
        let rejected = matches!(err, Some(SendError::Rejected(_))) && k < n;
        let sh = self.sh.clone();
        let mut guard = sh.lock();
        if guard.abandoned {
            return Step::Exit;
        }
        let st = &mut *guard;
        let c = &sh.c;
        add(&c.sent, k as u64);
        if rejected {
            add(&c.rejected, 1);
        }
        let settled = k + usize::from(rejected);
        match src {
            Src::Pending => {
                st.pending.drain(..settled.min(st.pending.len()));
            }
            Src::Spool { start } => {
                add(&c.replayed, k as u64);
                st.inflight = None;
                if let Some(sp) = st.spool.as_mut() {
                    let head = sp.head_index();
                    let done_to = start + settled as u64;
                    // Dropped by the writer (drop_oldest) while in flight, not delivered.
                    let gone = head.min(start + n as u64).saturating_sub(done_to);
                    add(&c.dropped_oldest, gone);
                    if head < done_to {
                        if let Err(e) = sp.consume((done_to - head) as usize) {
                            add(&c.errors, 1);
                            eprintln_limited(&self.sh, &e);
                        }
                    }
                }
            }
        }
        if k > 0 || rejected {
            self.delivered();
        }
        match err {
            None | Some(SendError::Rejected(_)) => Step::Continue,
            Some(e @ SendError::Down(_)) => {
                if matches!(src, Src::Pending) {
                    self.spool_rest(st);
                }
                self.down(&e);
                Step::Continue
            }
        }
    }

    /// The sink is down with events in memory (taken from the queue, or still in it): they
    /// go to the spool, in order. Both are older than anything spooled (the writer queues
    /// only while the spool is empty), so they go in front of it. Without room they stay in
    /// memory, delivered first after the reconnect (bounded: one batch plus the queue).
    fn spool_rest(&self, st: &mut State) {
        let Some(sp) = st.spool.as_mut() else { return };
        let mut all: Vec<Out> = st.pending.drain(..).collect();
        let room = sp.max_bytes().saturating_sub(sp.bytes());
        let mut need: u64 = all.iter().map(spool::record_size).sum();
        if need > room {
            st.pending.extend(all);
            return;
        }
        // From the queue only what fits: the one that does not stays in memory (first in
        // line after `all`), and the next call takes no more, so memory stays bounded.
        let mut over = None;
        while let Ok(o) = self.rx.try_recv() {
            let n = spool::record_size(&o);
            if need + n > room {
                over = Some(o);
                break;
            }
            need += n;
            all.push(o);
        }
        if all.is_empty() {
            st.pending.extend(over);
            return;
        }
        if sp.is_empty() {
            let mut it = all.into_iter();
            for o in it.by_ref() {
                if spool_append(&self.sh, sp, &o).is_err() {
                    // Keep the order: this one and the rest stay in memory. Only the
                    // records already appended precede them now, which is wrong order
                    // but cannot happen unless the disk fails mid-way.
                    st.pending.push_back(o);
                    break;
                }
            }
            st.pending.extend(it);
        } else {
            match sp.prepend(&all) {
                Ok(()) => add(&self.sh.c.spooled, all.len() as u64),
                Err(e) => {
                    st.pending.extend(all);
                    add(&self.sh.c.errors, 1);
                    eprintln_limited(&self.sh, &e);
                }
            }
        }
        st.pending.extend(over);
    }
}
