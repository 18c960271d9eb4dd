//! The Kafka transport against librdkafka's in-process mock cluster (`MockCluster`: a real
//! Kafka-protocol broker on an ephemeral loopback port, with error injection), and, with
//! `--ignored` and `CLOUDTAP_REAL_KAFKA=HOST:PORT`, against a real broker.
//!
//! Every wait is bounded; events are consumed back with an rdkafka `BaseConsumer` and
//! compared byte for byte.

use cloudtap::output::transport::{open, Kind, Out, OutMeta, Partial, SendError, Transport};
use cloudtap::output::url::parse_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

type Mock = MockCluster<'static, DefaultProducerContext>;

/// A mock cluster of one broker (id 1) with `topics` created (1 partition each).
fn mock(topics: &[&str]) -> Mock {
    let m = MockCluster::new(1).expect("mock cluster");
    for t in topics {
        m.create_topic(t, 1, 1).expect("create topic");
    }
    m
}

fn transport(url: &str) -> Box<dyn Transport> {
    let spec = parse_all(&[url]).expect("url").remove(0);
    open(&spec).expect("open")
}

fn open_err(url: &str) -> String {
    let spec = parse_all(&[url]).expect("url").remove(0);
    match open(&spec) {
        Ok(_) => panic!("{url}: opened"),
        Err(e) => e,
    }
}

/// Connects, retrying (bounded) while the cluster comes up.
fn connect(t: &mut dyn Transport) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match t.connect() {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

fn src_of(i: usize) -> Option<IpAddr> {
    match i % 3 {
        0 => Some(format!("10.0.{}.{}", i / 250, i % 250 + 1).parse().unwrap()),
        1 => Some(format!("2001:db8::{:x}", i + 1).parse().unwrap()),
        _ => None,
    }
}

fn event(i: usize, pad: usize) -> Out {
    let line = format!(
        "{{\"event_type\":\"alert\",\"n\":{i},\"pad\":\"{}\"}}",
        "abcdefgh".repeat(pad)
    );
    Out {
        line: Arc::from(line.into_bytes()),
        meta: OutMeta {
            kind: Kind::Alert,
            severity: 2,
            flow_id: 1_000_000_007 * (i as u64 + 1),
            src: src_of(i),
            ts_ns: 1_700_000_000_000_000_000 + i as u64,
        },
    }
}

fn events(range: std::ops::Range<usize>, pad: usize) -> Vec<Out> {
    range.map(|i| event(i, pad)).collect()
}

type Record = (Option<Vec<u8>>, Vec<u8>);

/// Reads partition 0 of `topic` from the beginning until `want` records are in (then
/// `extra` longer, to see any duplicate), or 20 s pass.
fn consume(bootstrap: &str, topic: &str, want: usize, extra: Duration) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cloudtap-test")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut until = deadline;
    while Instant::now() < until {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or(&[]).to_vec(),
                ));
                if out.len() == want {
                    until = Instant::now() + extra;
                }
            }
            Some(Err(e)) => eprintln!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

fn payloads(batch: &[Out]) -> Vec<Vec<u8>> {
    batch.iter().map(|o| o.line.to_vec()).collect()
}

fn send_all(t: &mut dyn Transport, batch: &[Out], chunk: usize) {
    for part in batch.chunks(chunk) {
        if let Err(p) = t.send(part) {
            panic!("send: delivered {} then {}", p.delivered, p.error);
        }
    }
}

#[test]
fn delivers_every_event_with_its_key() {
    let m = mock(&["k-flow", "k-src", "k-none"]);
    let b = m.bootstrap_servers();
    let batch = events(0..60, 3);
    for (mode, topic) in [("flow", "k-flow"), ("src", "k-src"), ("none", "k-none")] {
        let mut t = transport(&format!("kafka://{b}/{topic}?key={mode}"));
        connect(t.as_mut());
        send_all(t.as_mut(), &batch, 25);
        t.flush().expect("flush");
        let got = consume(&b, topic, batch.len(), Duration::from_millis(300));
        assert_eq!(got.len(), batch.len(), "key={mode}: records");
        for (i, ((key, payload), ev)) in got.iter().zip(&batch).enumerate() {
            assert_eq!(payload, &ev.line.to_vec(), "key={mode} record {i}");
            let want: Option<Vec<u8>> = match mode {
                "flow" => Some(ev.meta.flow_id.to_string().into_bytes()),
                "src" => ev.meta.src.map(|a| a.to_string().into_bytes()),
                _ => None,
            };
            assert_eq!(key, &want, "key={mode} record {i}");
        }
    }
    // The default is key=flow.
    let mut t = transport(&format!("kafka://{b}/k-default"));
    m.create_topic("k-default", 1, 1).unwrap();
    connect(t.as_mut());
    send_all(t.as_mut(), &batch[..3], 10);
    let got = consume(&b, "k-default", 3, Duration::ZERO);
    assert_eq!(
        got[2].0,
        Some(batch[2].meta.flow_id.to_string().into_bytes())
    );
}

#[test]
fn every_compression_round_trips() {
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let topics: Vec<String> = codecs.iter().map(|c| format!("c-{c}")).collect();
    let m = mock(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    let b = m.bootstrap_servers();
    // Large, repetitive lines: compression has work to do.
    let batch = events(0..40, 200);
    for (codec, topic) in codecs.iter().zip(&topics) {
        let mut t = transport(&format!("kafka://{b}/{topic}?compression={codec}"));
        connect(t.as_mut());
        send_all(t.as_mut(), &batch, 40);
        let got = consume(&b, topic, batch.len(), Duration::from_millis(200));
        let got: Vec<Vec<u8>> = got.into_iter().map(|r| r.1).collect();
        assert_eq!(got, payloads(&batch), "compression={codec}");
    }
}

#[test]
fn broker_down_is_down_then_recovery_loses_nothing() {
    let m = mock(&["down"]);
    let b = m.bootstrap_servers();
    let mut t = transport(&format!(
        "kafka://{b}/down?timeout_ms=1500&rdkafka.reconnect.backoff.ms=50&rdkafka.reconnect.backoff.max.ms=200"
    ));
    connect(t.as_mut());
    let first = events(0..10, 2);
    send_all(t.as_mut(), &first, 10);

    m.broker_down(1).expect("broker down");
    let second = events(10..30, 2);
    let started = Instant::now();
    let delivered = match t.send(&second) {
        Err(Partial {
            delivered,
            error: SendError::Down(msg),
        }) => {
            eprintln!("send while down: delivered {delivered}: {msg}");
            delivered
        }
        other => panic!("send while down: {other:?}"),
    };
    assert!(delivered < second.len());
    // Bounded by timeout_ms plus the purge grace.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match t.connect() {
        Err(SendError::Down(msg)) => eprintln!("connect while down: {msg}"),
        other => panic!("connect while down: {other:?}"),
    }

    m.broker_up(1).expect("broker up");
    connect(t.as_mut());
    // The sink re-sends from the first undelivered event.
    let rest = &second[delivered..];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut from = 0;
    while from < rest.len() {
        match t.send(&rest[from..]) {
            Ok(()) => from = rest.len(),
            Err(p) if Instant::now() < deadline => {
                eprintln!("resend: delivered {} then {}", p.delivered, p.error);
                from += p.delivered;
                if let Err(e) = t.connect() {
                    eprintln!("reconnect: {e}");
                }
            }
            Err(p) => panic!("resend: {} then {}", p.delivered, p.error),
        }
    }
    t.flush().expect("flush");

    // Every event is there, in order of first appearance; duplicates only of events the
    // failed send may have delivered after all (at-least-once).
    let all = payloads(&first.iter().chain(&second).cloned().collect::<Vec<_>>());
    let got: Vec<Vec<u8>> = consume(&b, "down", all.len(), Duration::from_millis(500))
        .into_iter()
        .map(|r| r.1)
        .collect();
    let mut seen = BTreeSet::new();
    let firsts: Vec<Vec<u8>> = got
        .iter()
        .filter(|p| seen.insert((*p).clone()))
        .cloned()
        .collect();
    assert_eq!(firsts, all, "every event, in order");
    eprintln!("records {} for {} events", got.len(), all.len());
    for p in &got[..first.len()] {
        assert!(
            payloads(&first).contains(p),
            "no duplicate before the outage"
        );
    }
}

#[test]
fn retriable_produce_errors_are_retried_without_duplicates() {
    let m = mock(&["retry"]);
    let b = m.bootstrap_servers();
    let mut t = transport(&format!("kafka://{b}/retry?timeout_ms=8000"));
    connect(t.as_mut());
    m.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let batch = events(0..50, 2);
    send_all(t.as_mut(), &batch, 50);
    let got: Vec<Vec<u8>> = consume(&b, "retry", batch.len(), Duration::from_millis(500))
        .into_iter()
        .map(|r| r.1)
        .collect();
    // Idempotence: librdkafka's retries neither duplicate nor reorder.
    assert_eq!(got, payloads(&batch));
}

#[test]
fn broker_refusing_a_batch_as_too_large_is_rejected() {
    let m = mock(&["big"]);
    let b = m.bootstrap_servers();
    let mut t = transport(&format!("kafka://{b}/big?timeout_ms=5000"));
    connect(t.as_mut());
    m.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let batch = events(0..5, 2);
    match t.send(&batch) {
        Err(Partial {
            delivered: 0,
            error: SendError::Rejected(msg),
        }) => eprintln!("rejected: {msg}"),
        other => panic!("{other:?}"),
    }
    // The producer goes on: the next batch is delivered.
    let next = events(5..10, 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match t.send(&next) {
            Ok(()) => break,
            Err(p) if p.delivered == 0 && Instant::now() < deadline => {
                eprintln!("after reject: {}", p.error);
                if let Err(e) = t.connect() {
                    eprintln!("reconnect: {e}");
                }
            }
            Err(p) => panic!("after reject: {} then {}", p.delivered, p.error),
        }
    }
    let got: Vec<Vec<u8>> = consume(&b, "big", next.len(), Duration::from_millis(300))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(got, payloads(&next));
}

#[test]
fn too_large_for_the_producer_is_rejected_at_its_index() {
    let m = mock(&["local-big"]);
    let b = m.bootstrap_servers();
    // rdkafka.message.max.bytes reaches librdkafka: a 4 KB event exceeds it.
    let mut t = transport(&format!(
        "kafka://{b}/local-big?rdkafka.message.max.bytes=2000"
    ));
    connect(t.as_mut());
    let batch = vec![event(0, 2), event(1, 2), event(2, 500), event(3, 2)];
    match t.send(&batch) {
        Err(Partial {
            delivered: 2,
            error: SendError::Rejected(msg),
        }) => {
            eprintln!("rejected: {msg}");
            assert!(msg.contains("too large"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // The sink drops the rejected event and sends the rest.
    send_all(t.as_mut(), &batch[3..], 10);
    let got: Vec<Vec<u8>> = consume(&b, "local-big", 3, Duration::from_millis(300))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(
        got,
        payloads(&[batch[0].clone(), batch[1].clone(), batch[3].clone()])
    );
}

#[test]
fn options_are_checked_and_passed_to_librdkafka() {
    let e = open_err("kafka://127.0.0.1:9/t?bogus=1");
    assert!(e.contains("bogus"), "{e}");
    let e = open_err("kafka://127.0.0.1:9/t?key=dst");
    assert!(e.contains("flow, src or none"), "{e}");
    let e = open_err("kafka://127.0.0.1:9/t?compression=brotli");
    assert!(e.contains("brotli"), "{e}");
    let e = open_err("kafka://127.0.0.1:9/t?timeout_ms=-1");
    assert!(e.contains("timeout_ms"), "{e}");
    let e = open_err("kafka://127.0.0.1:9/t?rdkafka.bootstrap.servers=x:1");
    assert!(e.contains("the URL names the brokers"), "{e}");
    // librdkafka's own messages, from its configuration parser.
    let e = open_err("kafka://127.0.0.1:9/t?rdkafka.security.protocol=bogus");
    assert!(
        e.contains("Invalid value \"bogus\" for configuration property \"security.protocol\""),
        "{e}"
    );
    let e = open_err("kafka://127.0.0.1:9/t?rdkafka.no.such.property=1");
    assert!(
        e.contains("No such configuration property: \"no.such.property\""),
        "{e}"
    );
    // Valid pass-through opens (SSL and zstd are compiled in).
    let spec = parse_all(&[
        "kafka://127.0.0.1:9/t?rdkafka.security.protocol=SSL&compression=zstd&rdkafka.linger.ms=1",
    ])
    .unwrap()
    .remove(0);
    assert!(open(&spec).is_ok());
}

#[test]
fn nothing_listening_is_down_and_reconnect_is_bounded() {
    // A port nobody listens on: bind, read, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = transport(&format!("kafka://127.0.0.1:{port}/t?timeout_ms=700"));
    for _ in 0..3 {
        let started = Instant::now();
        match t.connect() {
            Err(SendError::Down(msg)) => eprintln!("{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    match t.send(&events(0..2, 1)) {
        Err(Partial {
            delivered: 0,
            error: SendError::Down(_),
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_topic_is_down() {
    let m = mock(&["present"]);
    let b = m.bootstrap_servers();
    m.topic_error(
        "absent",
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    )
    .unwrap();
    let mut t = transport(&format!("kafka://{b}/absent?timeout_ms=1000"));
    match t.connect() {
        Err(SendError::Down(msg)) => {
            eprintln!("{msg}");
            assert!(msg.contains("absent"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

/// Runs a future to completion on this thread (the admin client's own thread completes
/// it); bounded.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "admin operation timed out");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// `CLOUDTAP_REAL_KAFKA=127.0.0.1:19092 cargo test --release --test kafka -- --ignored`:
/// a real broker (Apache Kafka or tansu, `shared/services/kafka.sh start`).
#[test]
#[ignore = "needs a real broker: CLOUDTAP_REAL_KAFKA=HOST:PORT"]
fn real_kafka_broker_round_trip() {
    let broker = std::env::var("CLOUDTAP_REAL_KAFKA")
        .expect("set CLOUDTAP_REAL_KAFKA=HOST:PORT (a running broker)");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("cloudtap-rt-{nanos}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker)
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let res = block_on(admin.create_topics(
        &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
        &opts,
    ))
    .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }

    let mut t = transport(&format!("kafka://{broker}/{topic}?key=flow"));
    connect(t.as_mut());
    let batch = events(0..42, 4);
    send_all(t.as_mut(), &batch, 20);
    t.flush().expect("flush");
    let got = consume(&broker, &topic, batch.len(), Duration::from_millis(500));
    let payloads_got: Vec<Vec<u8>> = got.iter().map(|r| r.1.clone()).collect();
    assert_eq!(payloads_got, payloads(&batch), "42 events back, in order");
    for ((key, _), ev) in got.iter().zip(&batch) {
        assert_eq!(key, &Some(ev.meta.flow_id.to_string().into_bytes()));
    }
    eprintln!("real broker {broker}: 42 sent, 42 consumed back from {topic}");
}
