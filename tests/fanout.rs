//! The sink fan-out with transports the test controls (down, partial, slow, hung, rejecting)
//! and the file transport. Every wait is bounded.

use cloudtap::output::fanout::{Fanout, FanoutCfg, SinkStats};
use cloudtap::output::transport::{self, Kind, Out, OutMeta, Partial, SendError, Transport};
use cloudtap::output::url::{self, SinkSpec, WhenFull};
use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Ctl {
    /// Lines delivered, in order.
    got: Vec<Vec<u8>>,
    /// connect and send fail while set.
    down: bool,
    /// The next N sends deliver at most 2 events, then fail Down.
    fail_sends: u32,
    /// Each send takes this long.
    delay: Duration,
    /// Event ids refused for good.
    reject: HashSet<u64>,
    sends: u64,
}

#[derive(Clone, Default)]
struct Handle {
    ctl: Arc<Mutex<Ctl>>,
    /// send blocks while set (a receiver that stopped answering).
    hang: Arc<AtomicBool>,
}

impl Handle {
    fn set(&self, f: impl FnOnce(&mut Ctl)) {
        f(&mut self.ctl.lock().unwrap())
    }
    fn ids(&self) -> Vec<u64> {
        self.ctl.lock().unwrap().got.iter().map(|l| id(l)).collect()
    }
    fn lines(&self) -> Vec<String> {
        let c = self.ctl.lock().unwrap();
        c.got
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect()
    }
    fn transport(&self) -> Box<dyn Transport> {
        Box::new(TestT(self.clone()))
    }
}

struct TestT(Handle);

impl Transport for TestT {
    fn connect(&mut self) -> Result<(), SendError> {
        if self.0.ctl.lock().unwrap().down {
            return Err(SendError::Down("test: connection refused".into()));
        }
        Ok(())
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        // Hung: at most 20 s, so a broken test never wedges the run.
        let t0 = Instant::now();
        while self.0.hang.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = self.0.ctl.lock().unwrap().delay;
        std::thread::sleep(delay);
        let mut c = self.0.ctl.lock().unwrap();
        c.sends += 1;
        let (limit, fail) = if c.down {
            (0, true)
        } else if c.fail_sends > 0 {
            c.fail_sends -= 1;
            (2.min(batch.len()), true)
        } else {
            (batch.len(), false)
        };
        for (i, o) in batch[..limit].iter().enumerate() {
            if c.reject.contains(&id(&o.line)) {
                return Err(Partial {
                    delivered: i,
                    error: SendError::Rejected("test: refused".into()),
                });
            }
            c.got.push(o.line.to_vec());
        }
        if fail {
            return Err(Partial {
                delivered: limit,
                error: SendError::Down("test: connection reset".into()),
            });
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

fn id(line: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
    v["event_id"].as_u64().unwrap()
}

fn spec(url: &str) -> SinkSpec {
    url::parse(url).unwrap()
}

fn cfg(spool: Option<PathBuf>, spool_max: u64, queue_cap: usize, flush_ms: u64) -> FanoutCfg {
    FanoutCfg {
        spool,
        spool_max,
        when_full: WhenFull::Block,
        flush_timeout: Duration::from_millis(flush_ms),
        queue_cap,
    }
}

fn meta(kind: Kind, i: u64) -> OutMeta {
    OutMeta {
        kind,
        severity: 2,
        flow_id: i,
        src: Some("198.51.100.9".parse().unwrap()),
        ts_ns: i,
    }
}

fn send(f: &Fanout, kind: Kind, i: u64) {
    let eve: Arc<[u8]> = Arc::from(format!("{{\"event_id\":{i},\"f\":\"eve\"}}").as_bytes());
    let ecs = f
        .needs_ecs()
        .then(|| Arc::from(format!("{{\"event_id\":{i},\"f\":\"ecs\"}}").as_bytes()));
    f.send(meta(kind, i), eve, ecs);
}

fn by_name<'a>(v: &'a [SinkStats], n: &str) -> &'a SinkStats {
    v.iter().find(|s| s.name == n).unwrap()
}

/// Waits (bounded) for `cond`.
fn wait_for(mut cond: impl FnMut() -> bool, max: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < max {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn order_kept_through_a_down_period_with_spool() {
    let d = tempfile::tempdir().unwrap();
    let h = Handle::default();
    h.set(|c| c.fail_sends = 3);
    let f = Fanout::start_with(
        vec![(spec("-?name=siem"), h.transport())],
        cfg(Some(d.path().into()), 64 << 20, 16, 10_000),
    )
    .unwrap();
    for i in 0..3000u64 {
        if i == 500 {
            h.set(|c| c.down = true);
        }
        if i == 2000 {
            // The outage lasted a while: the spool holds what came meanwhile.
            let s = &f.stats()[0];
            assert!(s.spool_events > 0 && !s.up, "{s:?}");
            h.set(|c| c.down = false);
        }
        send(&f, Kind::Alert, i);
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let st = f.finish();
    let s = &st[0];
    // Exactly once, in order: partial sends, the outage and the replay kept everything.
    assert_eq!(h.ids(), (0..3000).collect::<Vec<_>>());
    assert_eq!(s.sent, 3000, "{s:?}");
    assert!(s.spooled > 0 && s.replayed > 0, "{s:?}");
    assert!(s.errors >= 4 && s.reconnects >= 1, "{s:?}");
    assert_eq!(
        (s.dropped_newest, s.dropped_oldest, s.spool_events),
        (0, 0, 0)
    );
}

#[test]
fn order_kept_without_spool_through_partial_failures() {
    let h = Handle::default();
    h.set(|c| c.fail_sends = 5);
    let f = Fanout::start_with(
        vec![(spec("-?name=a&when_full=block"), h.transport())],
        cfg(None, 0, 8, 10_000),
    )
    .unwrap();
    for i in 0..1000 {
        send(&f, Kind::Dns, i);
    }
    let s = f.finish();
    assert_eq!(h.ids(), (0..1000).collect::<Vec<_>>());
    assert_eq!(s[0].sent, 1000);
    assert_eq!(s[0].errors, 5);
}

#[test]
fn slow_sink_does_not_stall_a_fast_one() {
    let slow = Handle::default();
    slow.set(|c| c.delay = Duration::from_millis(200));
    let fast = Handle::default();
    let f = Fanout::start_with(
        vec![
            (spec("-?name=slow&when_full=drop_oldest"), slow.transport()),
            (spec("-?name=fast&when_full=block"), fast.transport()),
        ],
        cfg(None, 0, 64, 1_000),
    )
    .unwrap();
    let t0 = Instant::now();
    for i in 0..5000 {
        send(&f, Kind::Alert, i);
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the writer waited {took:?} on a slow drop_oldest sink"
    );
    assert!(wait_for(
        || fast.ids().len() == 5000,
        Duration::from_secs(5)
    ));
    let st = f.finish();
    let s = by_name(&st, "slow");
    assert_eq!(fast.ids(), (0..5000).collect::<Vec<_>>());
    assert_eq!(by_name(&st, "fast").sent, 5000);
    // Every event is delivered or counted dropped, none twice.
    let got = slow.ids();
    assert_eq!(got.len() as u64, s.sent);
    assert_eq!(s.sent + s.dropped_oldest + s.dropped_newest, 5000, "{s:?}");
    assert!(s.dropped_oldest > 0, "{s:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn block_writer_gives_up_on_a_dead_sink() {
    let h = Handle::default();
    h.set(|c| c.down = true);
    let f = Fanout::start_with(
        vec![(spec("-?name=dead&when_full=block"), h.transport())],
        cfg(None, 0, 8, 300),
    )
    .unwrap();
    let t0 = Instant::now();
    for i in 0..200 {
        send(&f, Kind::Alert, i);
    }
    // One wait of max(flush_timeout, 0.5 s), then drops at once while it delivers nothing.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let s = f.finish();
    assert_eq!(s[0].sent, 0);
    assert_eq!(s[0].dropped_newest, 200, "{:?}", s[0]);
}

/// A sink down for the whole run with a small spool: what is kept is delivered by the next
/// start with the same spool, before anything new, and the rest is counted.
fn small_spool(policy: &str) {
    let d = tempfile::tempdir().unwrap();
    let down = Handle::default();
    down.set(|c| c.down = true);
    let url = format!("-?name=s&when_full={policy}");
    let f = Fanout::start_with(
        vec![(spec(&url), down.transport())],
        cfg(Some(d.path().into()), 8 << 10, 16, 200),
    )
    .unwrap();
    for i in 0..500 {
        send(&f, Kind::Alert, i);
    }
    let s1 = f.finish()[0].clone();
    assert_eq!(s1.sent, 0);
    assert!(s1.spool_events > 0 && s1.spool_events < 500, "{s1:?}");
    assert_eq!(
        s1.spool_events + s1.dropped_newest + s1.dropped_oldest,
        500,
        "{s1:?}"
    );
    if policy == "drop_oldest" {
        assert!(s1.dropped_oldest > 0, "{s1:?}");
    } else {
        assert_eq!(s1.dropped_oldest, 0, "{s1:?}");
    }
    // Restart, receiver back, room for new events: leftovers first, then the new ones.
    let up = Handle::default();
    let f = Fanout::start_with(
        vec![(spec(&url), up.transport())],
        cfg(Some(d.path().into()), 1 << 20, 16, 5_000),
    )
    .unwrap();
    for i in 1000..1010 {
        send(&f, Kind::Alert, i);
    }
    let s2 = f.finish()[0].clone();
    let got = up.ids();
    assert_eq!(got.len() as u64, s1.spool_events + 10, "{s2:?}");
    assert_eq!(&got[got.len() - 10..], (1000..1010).collect::<Vec<_>>());
    let old = &got[..got.len() - 10];
    assert!(old.iter().all(|i| *i < 500));
    assert_eq!(old.iter().collect::<HashSet<_>>().len(), old.len());
    // The new events queued behind the leftovers in the spool: replayed too.
    assert!(s2.replayed as usize >= old.len(), "{s2:?}");
    assert_eq!(s2.sent as usize, got.len());
    assert_eq!((s2.spool_events, s2.spool_corrupt), (0, 0));
}

#[test]
fn small_spool_drop_newest() {
    small_spool("drop_newest");
}

#[test]
fn small_spool_drop_oldest() {
    small_spool("drop_oldest");
}

#[test]
fn finish_within_flush_timeout_with_a_hung_sink() {
    let d = tempfile::tempdir().unwrap();
    let hung = Handle::default();
    hung.hang.store(true, Ordering::Relaxed);
    let ok = Handle::default();
    let f = Fanout::start_with(
        vec![
            (spec("-?name=hung"), hung.transport()),
            (spec("-?name=ok"), ok.transport()),
        ],
        cfg(Some(d.path().into()), 1 << 20, 32, 300),
    )
    .unwrap();
    for i in 0..100 {
        send(&f, Kind::Alert, i);
    }
    let t0 = Instant::now();
    let st = f.finish();
    let took = t0.elapsed();
    hung.hang.store(false, Ordering::Relaxed);
    assert!(took < Duration::from_millis(1_000), "finish took {took:?}");
    let h = by_name(&st, "hung");
    // Nothing lost: everything is in the spool for the next start.
    assert_eq!((h.sent, h.spool_events), (0, 100), "{h:?}");
    assert_eq!(by_name(&st, "ok").sent, 100);
    assert_eq!(ok.ids(), (0..100).collect::<Vec<_>>());
    // The left-behind thread gives the spool up: the next start delivers it.
    let again = Handle::default();
    let f = Fanout::start_with(
        vec![(spec("-?name=hung"), again.transport())],
        cfg(Some(d.path().into()), 1 << 20, 32, 5_000),
    )
    .unwrap();
    let st = f.finish();
    assert_eq!(again.ids(), (0..100).collect::<Vec<_>>());
    assert_eq!(st[0].replayed, 100);
}

#[test]
fn types_filter_and_format_selection() {
    let a = Handle::default();
    let b = Handle::default();
    let f = Fanout::start_with(
        vec![
            (spec("-?name=alerts&types=alert"), a.transport()),
            (spec("-?name=ecs&format=ecs&types=alert,dns"), b.transport()),
        ],
        cfg(None, 0, 64, 5_000),
    )
    .unwrap();
    assert!(f.needs_ecs());
    assert!(f.wants(Kind::Alert) && f.wants(Kind::Dns));
    assert!(!f.wants(Kind::Flow) && !f.wants(Kind::Stats));
    send(&f, Kind::Alert, 1);
    send(&f, Kind::Dns, 2);
    send(&f, Kind::Flow, 3);
    f.finish();
    assert_eq!(a.lines(), [r#"{"event_id":1,"f":"eve"}"#]);
    assert_eq!(
        b.lines(),
        [r#"{"event_id":1,"f":"ecs"}"#, r#"{"event_id":2,"f":"ecs"}"#]
    );
    let only_eve = Fanout::start_with(
        vec![(spec("-?types=dns"), Handle::default().transport())],
        cfg(None, 0, 4, 1_000),
    )
    .unwrap();
    assert!(!only_eve.needs_ecs());
    assert!(only_eve.wants(Kind::Dns) && !only_eve.wants(Kind::Alert));
    only_eve.finish();
}

#[test]
fn rejected_events_are_counted_and_skipped() {
    let h = Handle::default();
    h.set(|c| c.reject = [5, 6, 77].into());
    let f = Fanout::start_with(
        vec![(spec("-?name=r"), h.transport())],
        cfg(None, 0, 1024, 5_000),
    )
    .unwrap();
    for i in 0..100 {
        send(&f, Kind::Alert, i);
    }
    let s = f.finish();
    let want: Vec<u64> = (0..100).filter(|i| ![5, 6, 77].contains(i)).collect();
    assert_eq!(h.ids(), want);
    assert_eq!((s[0].sent, s[0].rejected), (97, 3));
}

fn file_spec(path: &std::path::Path, q: &str) -> SinkSpec {
    let mut s = spec(&format!("file:{}{q}", path.display()));
    s.name = "file-0".into();
    s
}

#[test]
fn file_sink_lines_rotation_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("eve.json");
    fs::write(&p, "old\n").unwrap();
    let f = Fanout::start(
        vec![file_spec(&p, "?rotate_bytes=1000&rotate_keep=3")],
        cfg(None, 0, 4096, 5_000),
    )
    .unwrap();
    for i in 0..200 {
        send(&f, Kind::Alert, i);
    }
    let s = f.finish();
    assert_eq!(s[0].sent, 200);
    // append=false: the old content is gone; PATH.3 is the oldest kept, PATH the newest.
    let read = |p: PathBuf| fs::read_to_string(p).unwrap_or_default();
    let mut all = String::new();
    for k in (1..=3).rev() {
        let part = read(PathBuf::from(format!("{}.{k}", p.display())));
        assert!(
            !part.is_empty() && part.len() <= 1000,
            "part {k}: {}",
            part.len()
        );
        all.push_str(&part);
    }
    all.push_str(&read(p.clone()));
    assert!(!PathBuf::from(format!("{}.4", p.display())).exists());
    let ids: Vec<u64> = all.lines().map(|l| id(l.as_bytes())).collect();
    // The files hold the newest lines, in order, each line whole.
    assert!(!ids.is_empty() && *ids.last().unwrap() == 199);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");

    // append=true and SIGHUP after a logrotate-style rename.
    let q = d.path().join("live.json");
    fs::write(&q, "{\"event_id\":0}\n").unwrap();
    let f = Fanout::start(vec![file_spec(&q, "?append=true")], cfg(None, 0, 64, 5_000)).unwrap();
    send(&f, Kind::Alert, 1);
    assert!(wait_for(
        || read(q.clone()).lines().count() == 2,
        Duration::from_secs(5)
    ));
    let rotated = d.path().join("live.json.1");
    fs::rename(&q, &rotated).unwrap();
    f.reopen();
    // The reopen is seen within the sink thread's idle wake-up.
    std::thread::sleep(Duration::from_millis(200));
    send(&f, Kind::Alert, 2);
    f.finish();
    assert_eq!(
        read(rotated),
        "{\"event_id\":0}\n{\"event_id\":1,\"f\":\"eve\"}\n"
    );
    assert_eq!(read(q), "{\"event_id\":2,\"f\":\"eve\"}\n");
}

#[test]
fn file_options_are_checked() {
    let e = transport::open(&spec("file:/tmp/x.json?rotate_byte=5&zz=1"))
        .err()
        .unwrap();
    assert!(e.contains("rotate_byte, zz"), "{e}");
    let e = transport::open(&spec("-?append=true")).err().unwrap();
    assert!(e.contains("append"), "{e}");
    let e = transport::open(&spec("file:/no/such/dir/x.json"))
        .err()
        .unwrap();
    assert!(e.contains("does not exist"), "{e}");
    assert!(transport::open(&spec("file:/tmp/x.json?append=maybe")).is_err());
}

#[test]
fn writer_transport_writes_json_lines() {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let b = Buf::default();
    let f = Fanout::start_with(
        vec![(spec("-"), transport::file::writer(Box::new(b.clone())))],
        cfg(None, 0, 16, 5_000),
    )
    .unwrap();
    for i in 0..3 {
        send(&f, Kind::Http, i);
    }
    f.finish();
    let s = String::from_utf8(b.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        s,
        "{\"event_id\":0,\"f\":\"eve\"}\n{\"event_id\":1,\"f\":\"eve\"}\n{\"event_id\":2,\"f\":\"eve\"}\n"
    );
}
