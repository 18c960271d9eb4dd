//! Sustained throughput of one sink through the real `Fanout` (issue 13; benches/sinks.sh
//! runs it against real receivers and writes benches/SINKS.md).
//!
//! ```text
//! sink_bench send URL N [--spool DIR] [--flush-timeout SECS]
//!     N alerts through the sink (policy block: the sender waits when the queue is full, so
//!     the rate is what the receiver sustains), timed from the first send to finish().
//! sink_bench replay URL N --spool DIR
//!     starts over DIR's spool with the sink up and times until N events are replayed.
//! sink_bench kafka-mock N
//!     `send` to librdkafka's in-process MockCluster (topic `alerts`).
//! sink_bench kafka-topic HOST:PORT TOPIC
//!     creates TOPIC (1 partition; tansu does not create topics on first use).
//! ```
//!
//! Prints one line: `RESULT events=N secs=S rate=R sent=.. spooled=.. replayed=.. dropped=..
//! rejected=.. errors=..` (rate = events delivered, or spooled for a down sink, per second).
//! The events are a real ~1.6 KB flow-mode alert (from a live pastebin.com DNS query), each
//! with its own `cloudtap.event_id`.

use cloudtap::output::fanout::{Fanout, FanoutCfg, SinkStats};
use cloudtap::output::transport::{Kind, OutMeta};
use cloudtap::output::url::{parse_all, WhenFull};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A real alert as cloudtap writes it (--alert-mode flow, DNS query for pastebin.com on lo);
/// `EVENTID` is replaced per event.
const ALERT: &str = r#"{"timestamp":"2026-12-05T12:40:31.861663+0000","flow_id":708217251277610,"in_iface":"lo","event_type":"alert","src_ip":"127.0.0.1","src_port":53767,"dest_ip":"127.0.0.1","dest_port":15353,"proto":"UDP","pkt_src":"wire/pcap","tx_id":0,"alert":{"action":"allowed","gid":1,"signature_id":9100401,"rev":2,"signature":"CLOUDTAP Paste site pastebin.com contacted","category":"Potentially Bad Traffic","severity":2,"metadata":{"mitre_tactic_id":["TA0042"],"mitre_tactic_name":["Resource_Development"],"mitre_technique_id":["T1583","T1583.006"],"mitre_technique_name":["Acquire_Infrastructure","Web_Services"],"cloudtap_pack":["web-services"],"cloudtap_pack_version":["2026.12.04"],"cloudtap_field":["dns.query"],"cloudtap_indicator":["pastebin.com"],"cloudtap_value":["pastebin.com"],"cloudtap_service":["Pastebin"],"cloudtap_next_step":["Identify the host and process that contacted the paste site (EDR). Pull the paste id from proxy logs (/raw/<id> fetched by a script is a classic dead-drop or stager) and review the paste content if still online; check for data posted to api_post.php (exfiltration)."],"reference":["https://lots-project.com/site/706173746562696e2e636f6d"]}},"dns":{"version":2,"query":[{"type":"query","id":0,"rrname":"pastebin.com","rrtype":"A","tx_id":0,"opcode":0}]},"app_proto":"dns","direction":"to_server","cloudtap":{"event_id":"EVENTID"}}"#;

/// Distinct events prepared before timing (cycled), so the figure is the sink's, not
/// formatting's.
const DISTINCT: usize = 4096;

fn usage() -> ExitCode {
    eprintln!(
        "usage: sink_bench send URL N [--spool DIR] [--flush-timeout SECS]\n       \
         sink_bench replay URL N --spool DIR\n       sink_bench kafka-mock N\n       \
         sink_bench kafka-topic HOST:PORT TOPIC"
    );
    ExitCode::from(2)
}

struct Opts {
    spool: Option<PathBuf>,
    flush: Duration,
}

fn opts(rest: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        spool: None,
        flush: Duration::from_secs(300),
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--spool" => o.spool = Some(PathBuf::from(v)),
            "--flush-timeout" => {
                let s: f64 = v.parse().map_err(|_| format!("bad seconds {v:?}"))?;
                o.flush = Duration::from_secs_f64(s);
            }
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(o)
}

fn start(url: &str, o: &Opts) -> Result<Fanout, String> {
    let specs = parse_all(&[url]).map_err(|e| e.to_string())?;
    Fanout::start(
        specs,
        FanoutCfg {
            spool: o.spool.clone(),
            spool_max: 1 << 30,
            // Backpressure: the sender waits for room, so nothing is dropped and the rate
            // is the receiver's.
            when_full: WhenFull::Block,
            flush_timeout: o.flush,
            queue_cap: 4096,
        },
    )
}

fn events() -> Vec<Arc<[u8]>> {
    (0..DISTINCT)
        .map(|i| {
            let id = format!("{:032x}", 0x5ee0_0000_0000_0000_u128 + i as u128);
            Arc::from(
                ALERT
                    .replace("EVENTID", &id)
                    .into_bytes()
                    .into_boxed_slice(),
            )
        })
        .collect()
}

fn meta(i: usize) -> OutMeta {
    OutMeta {
        kind: Kind::Alert,
        severity: 2,
        flow_id: i as u64,
        src: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ts_ns: 1_764_938_431_861_663_000 + i as u64 * 1000,
    }
}

fn report(n: usize, secs: f64, s: &[SinkStats]) {
    let sum = |f: fn(&SinkStats) -> u64| s.iter().map(f).sum::<u64>();
    let moved = sum(|k| k.sent).max(sum(|k| k.spooled));
    println!(
        "RESULT events={n} secs={secs:.3} rate={:.0} sent={} spooled={} replayed={} dropped={} \
         rejected={} errors={} left_in_spool={}",
        moved as f64 / secs.max(1e-9),
        sum(|k| k.sent),
        sum(|k| k.spooled),
        sum(|k| k.replayed),
        sum(|k| k.dropped_oldest + k.dropped_newest),
        sum(|k| k.rejected),
        sum(|k| k.errors),
        sum(|k| k.spool_events),
    );
}

fn send(url: &str, n: usize, o: &Opts) -> Result<(), String> {
    let ev = events();
    let f = start(url, o)?;
    let t = Instant::now();
    for i in 0..n {
        f.send(meta(i), ev[i % DISTINCT].clone(), None);
    }
    let s = f.finish();
    report(n, t.elapsed().as_secs_f64(), &s);
    Ok(())
}

fn replay(url: &str, n: usize, o: &Opts) -> Result<(), String> {
    if o.spool.is_none() {
        return Err("replay needs --spool DIR".into());
    }
    let t = Instant::now();
    let f = start(url, o)?;
    // Bounded: 10 minutes at most, polled every 5 ms.
    let limit = Duration::from_secs(600);
    loop {
        let done: u64 = f.stats().iter().map(|k| k.replayed).sum();
        if done >= n as u64 || t.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = t.elapsed().as_secs_f64();
    let s = f.finish();
    let replayed: u64 = s.iter().map(|k| k.replayed).sum();
    println!(
        "RESULT events={n} secs={secs:.3} rate={:.0} sent={} spooled={} replayed={replayed} \
         dropped={} rejected={} errors={} left_in_spool={}",
        replayed as f64 / secs.max(1e-9),
        s.iter().map(|k| k.sent).sum::<u64>(),
        s.iter().map(|k| k.spooled).sum::<u64>(),
        s.iter()
            .map(|k| k.dropped_oldest + k.dropped_newest)
            .sum::<u64>(),
        s.iter().map(|k| k.rejected).sum::<u64>(),
        s.iter().map(|k| k.errors).sum::<u64>(),
        s.iter().map(|k| k.spool_events).sum::<u64>(),
    );
    Ok(())
}

fn kafka_mock(n: usize) -> Result<(), String> {
    let mc = rdkafka::mocking::MockCluster::new(1).map_err(|e| e.to_string())?;
    mc.create_topic("alerts", 1, 1).map_err(|e| e.to_string())?;
    let url = format!("kafka://{}/alerts", mc.bootstrap_servers());
    eprintln!("sink_bench: MockCluster at {url}");
    send(
        &url,
        n,
        &Opts {
            spool: None,
            flush: Duration::from_secs(300),
        },
    )
}

/// Runs a future to completion on this thread (the admin API is async; no runtime needed).
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Park(std::thread::Thread);
    impl Wake for Park {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Park(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

fn kafka_topic(brokers: &str, topic: &str) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let r = block_on(admin.create_topics([&t], &opts)).map_err(|e| e.to_string())?;
    for x in r {
        x.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &String| s.parse::<usize>().map_err(|_| format!("bad count {s:?}"));
    let r = match a.first().map(String::as_str) {
        Some("send") if a.len() >= 3 => {
            num(&a[2]).and_then(|n| opts(&a[3..]).and_then(|o| send(&a[1], n, &o)))
        }
        Some("replay") if a.len() >= 3 => {
            num(&a[2]).and_then(|n| opts(&a[3..]).and_then(|o| replay(&a[1], n, &o)))
        }
        Some("kafka-mock") if a.len() == 2 => num(&a[1]).and_then(kafka_mock),
        Some("kafka-topic") if a.len() == 3 => kafka_topic(&a[1], &a[2]),
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sink_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
