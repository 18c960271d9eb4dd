//! Kafka transport: `kafka://HOST:PORT[,HOST:PORT...]/TOPIC?key=...&compression=...`, a
//! librdkafka producer (the `rdkafka` crate's `BaseProducer`, polled on the sink's own
//! thread: no async runtime, no extra polling thread).
//!
//! Rules (docs/kafka.md is the user's copy):
//! * An event counts as delivered only when its delivery report says so. librdkafka's
//!   `flush` returning `Ok` only means its queue drained (a message that failed also leaves
//!   the queue), so `send` counts reports per message and never trusts `flush`.
//! * Every report carries the batch's generation and the message's index, so a late report
//!   of an earlier batch (one that timed out) can never be counted for the current one.
//! * `send` waits at most `timeout_ms` for the batch's reports, then purges what librdkafka
//!   still holds so it does not go out later behind the sink's own retry (fewer duplicates;
//!   the sink re-sends the rest: at-least-once).
//! * `delivered` is the leading run of successful reports: the sink re-sends everything
//!   after it, including later messages that did get through (duplicates, never loss).
//! * Defaults: `acks=all` and `enable.idempotence=true` (no loss or reordering within a
//!   partition across librdkafka's own retries), `compression.codec=lz4`.
//! * Options the transport does not know are refused, except `rdkafka.NAME=VALUE`, which
//!   goes to librdkafka verbatim (and is validated by it in `open`).

use super::{Out, Partial, SendError, Transport};
use crate::output::url::{Scheme, SinkSpec};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `timeout_ms` when not given: how long `send` waits for a batch's delivery reports, and
/// `connect` for the topic's metadata.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Upper bound of `timeout_ms` (one hour): a larger value is a typo, not a wish.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// How long `send` polls for the reports of purged messages after its deadline. librdkafka
/// reports purged messages at once; this only bounds a misbehaving case.
const PURGE_GRACE: Duration = Duration::from_secs(2);
/// One poll of the producer's event queue. `BaseProducer::poll` blocks for the whole
/// duration it is given, so `send` polls in short slices and checks its count in between.
const POLL_SLICE: Duration = Duration::from_millis(2);
/// The last librdkafka error text kept for messages is cut to this many bytes.
const MAX_ERROR_TEXT: usize = 512;

/// The message key (`key=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// The flow id as decimal text: one flow's events land in one partition, in order.
    Flow,
    /// The source address as text (`10.0.0.1`, `2001:db8::1`); no key when the event has
    /// none.
    Src,
    /// No key: librdkafka's partitioner spreads the events.
    None,
}

/// `compression=`: librdkafka's `compression.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KafkaOptError {
    #[error("unknown option {0:?} (kafka takes key, compression, timeout_ms and rdkafka.NAME)")]
    Unknown(String),
    #[error("{key}={value:?}: expected {expected}")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{key}: {why}")]
    Refused { key: String, why: &'static str },
    #[error("librdkafka refused the configuration: {0}")]
    Librdkafka(String),
    #[error("not a kafka:// sink")]
    NotKafka,
}

/// The transport's own options, parsed from the sink URL's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOpts {
    pub key: KeyMode,
    pub compression: Compression,
    pub timeout: Duration,
    /// `rdkafka.NAME=VALUE` options, `rdkafka.` stripped, in name order.
    pub passthrough: BTreeMap<String, String>,
}

/// librdkafka properties the URL must not set through `rdkafka.`, and why: each would
/// break a rule of this transport or name a thing the URL already names.
const REFUSED: &[(&str, &str)] = &[
    ("bootstrap.servers", "the URL names the brokers"),
    ("metadata.broker.list", "the URL names the brokers"),
    ("compression.codec", "use compression="),
    ("compression.type", "use compression="),
    (
        "delivery.report.only.error",
        "the transport counts every success report",
    ),
    (
        "transactional.id",
        "the transport produces outside transactions",
    ),
];

/// Aliases librdkafka accepts for one property. The transport's default is set only when
/// the user sets none of the group, and the user may set only one of a group (librdkafka
/// would apply them in an unspecified order).
const ALIASES: &[&[&str]] = &[
    &["acks", "request.required.acks"],
    &["message.timeout.ms", "delivery.timeout.ms"],
    &["enable.idempotence"],
];

/// Parses the transport's options (pure: no librdkafka call).
pub fn parse_opts(opts: &BTreeMap<String, String>) -> Result<KafkaOpts, KafkaOptError> {
    let mut out = KafkaOpts {
        key: KeyMode::Flow,
        compression: Compression::Lz4,
        timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        passthrough: BTreeMap::new(),
    };
    for (k, v) in opts {
        match k.as_str() {
            "key" => {
                out.key = match v.as_str() {
                    "flow" => KeyMode::Flow,
                    "src" => KeyMode::Src,
                    "none" => KeyMode::None,
                    _ => {
                        return Err(KafkaOptError::Value {
                            key: k.clone(),
                            value: v.clone(),
                            expected: "flow, src or none",
                        })
                    }
                }
            }
            "compression" => {
                out.compression = match v.as_str() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "snappy" => Compression::Snappy,
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    _ => {
                        return Err(KafkaOptError::Value {
                            key: k.clone(),
                            value: v.clone(),
                            expected: "none, gzip, snappy, lz4 or zstd",
                        })
                    }
                }
            }
            "timeout_ms" => {
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                    .ok_or_else(|| KafkaOptError::Value {
                        key: k.clone(),
                        value: v.clone(),
                        expected: "milliseconds, 1 to 3600000",
                    })?;
                out.timeout = Duration::from_millis(ms);
            }
            other => {
                let Some(name) = other.strip_prefix("rdkafka.") else {
                    return Err(KafkaOptError::Unknown(other.into()));
                };
                if name.is_empty() {
                    return Err(KafkaOptError::Unknown(other.into()));
                }
                if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
                    return Err(KafkaOptError::Refused {
                        key: other.into(),
                        why,
                    });
                }
                out.passthrough.insert(name.into(), v.clone());
            }
        }
    }
    for group in ALIASES {
        if group
            .iter()
            .filter(|n| out.passthrough.contains_key(**n))
            .count()
            > 1
        {
            return Err(KafkaOptError::Refused {
                key: format!("rdkafka.{}", group.join(" / rdkafka.")),
                why: "aliases of one librdkafka property: give one",
            });
        }
    }
    Ok(out)
}

/// `bootstrap.servers` for the URL's brokers (IPv6 literals in brackets).
pub fn bootstrap_servers(brokers: &[(String, u16)]) -> String {
    let mut s = String::new();
    for (i, (host, port)) in brokers.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if host.contains(':') {
            s.push_str(&format!("[{host}]:{port}"));
        } else {
            s.push_str(&format!("{host}:{port}"));
        }
    }
    s
}

/// The producer's librdkafka properties: the transport's defaults, then the user's
/// `rdkafka.` options (which win, see [`ALIASES`]).
pub fn client_config(
    brokers: &[(String, u16)],
    name: &str,
    o: &KafkaOpts,
) -> BTreeMap<String, String> {
    let mut c = BTreeMap::new();
    c.insert("bootstrap.servers".into(), bootstrap_servers(brokers));
    c.insert("client.id".into(), format!("cloudtap-{name}"));
    c.insert("compression.codec".into(), o.compression.name().into());
    let defaults = [
        // Every in-sync replica has the record before the report says delivered.
        ("acks", "all".to_string()),
        // librdkafka's own retries neither duplicate nor reorder within a partition.
        ("enable.idempotence", "true".to_string()),
        // librdkafka gives up on a message when `send` would: nothing lingers behind the
        // sink's retry.
        ("message.timeout.ms", o.timeout.as_millis().to_string()),
    ];
    for (k, v) in defaults {
        let group = ALIASES.iter().find(|g| g.contains(&k));
        let user_sets = group.is_some_and(|g| g.iter().any(|n| o.passthrough.contains_key(*n)));
        if !user_sets {
            c.insert(k.into(), v);
        }
    }
    for (k, v) in &o.passthrough {
        c.insert(k.clone(), v.clone());
    }
    c
}

/// Appends `v` in decimal (the `key=flow` text) without allocating.
pub fn push_decimal(buf: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        buf.push(char::from(*d));
    }
}

/// Which batch and which message of it a delivery report is for.
#[derive(Debug)]
pub struct Tag {
    generation: u64,
    index: usize,
}

#[derive(Debug, Default)]
struct Reports {
    /// The batch being sent; reports of other generations are stale and ignored.
    generation: u64,
    /// Per message of the batch: `None` until its report arrives.
    results: Vec<Option<Result<(), RDKafkaErrorCode>>>,
    /// Reports received for this generation.
    received: usize,
    /// Reports of earlier batches that arrived late (counted, not used).
    stale: u64,
    /// librdkafka's last global error (connection refused, all brokers down, ...), for
    /// messages.
    last_error: Option<String>,
}

/// The producer's context: records delivery reports and global errors. Called on the
/// sink's thread from `poll`/`flush`, so the lock is never contended.
#[derive(Debug, Default)]
pub struct Ctx {
    reports: Mutex<Reports>,
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, Reports> {
        // A panic elsewhere while holding the lock leaves plain counters: still usable.
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        let mut text = format!("{error}: {reason}");
        if text.len() > MAX_ERROR_TEXT {
            let mut cut = MAX_ERROR_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        self.lock().last_error = Some(text);
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Tag>;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: Box<Tag>) {
        let mut r = self.lock();
        if tag.generation != r.generation {
            r.stale += 1;
            return;
        }
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
        };
        if let Some(slot @ None) = r.results.get_mut(tag.index) {
            *slot = Some(outcome);
            r.received += 1;
        }
    }
}

/// Errors the broker (or librdkafka, before sending) gives for a message that can never
/// be taken: counted rejected, not retried. Everything else is the cluster being down,
/// slow or misconfigured, which a retry after reconnecting may cure.
pub fn is_permanent(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidTimestamp
    )
}

pub struct Kafka {
    url: String,
    topic: String,
    key: KeyMode,
    timeout: Duration,
    config: ClientConfig,
    producer: Option<BaseProducer<Ctx>>,
    /// Scratch for the key text (flow id, address): reused per message.
    key_buf: String,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("url", &self.url)
            .field("topic", &self.topic)
            .field("key", &self.key)
            .field("connected", &self.producer.is_some())
            .finish()
    }
}

/// Builds the transport; librdkafka checks every property name and value here, so a
/// misspelt `rdkafka.` option fails at start with librdkafka's own message.
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    Kafka::new(spec)
        .map(|k| Box::new(k) as Box<dyn Transport>)
        .map_err(|e| format!("{}: {e}", redact_url(&spec.url)))
}

/// `rdkafka.` options whose value is a secret (passwords, private keys, JAAS and OAuth
/// settings).
fn is_secret(name: &str) -> bool {
    ["password", "secret", "jaas", "ssl.key.pem", "token"]
        .iter()
        .any(|w| name.contains(w))
}

/// The sink URL for messages and logs, with secret `rdkafka.` values replaced by `***`:
/// a password in the URL must not reach the log with every reconnect message.
pub fn redact_url(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.strip_prefix("rdkafka.").is_some_and(is_secret) => {
                format!("{k}=***")
            }
            _ => part.to_string(),
        })
        .collect();
    format!("{head}?{}", parts.join("&"))
}

impl Kafka {
    pub fn new(spec: &SinkSpec) -> Result<Kafka, KafkaOptError> {
        let Scheme::Kafka { brokers, topic } = &spec.scheme else {
            return Err(KafkaOptError::NotKafka);
        };
        let o = parse_opts(&spec.opts)?;
        let mut config = ClientConfig::new();
        for (k, v) in client_config(brokers, &spec.name, &o) {
            config.set(k, v);
        }
        // Validates names and values without starting a client (no thread, no socket).
        config
            .create_native_config()
            .map_err(|e| KafkaOptError::Librdkafka(config_error_text(&e)))?;
        Ok(Kafka {
            url: redact_url(&spec.url),
            topic: topic.clone(),
            key: o.key,
            timeout: o.timeout,
            config,
            producer: None,
            key_buf: String::with_capacity(40),
        })
    }

    /// Reports of purged or late messages of earlier batches that were ignored.
    pub fn stale_reports(&self) -> u64 {
        self.producer
            .as_ref()
            .map_or(0, |p| p.context().lock().stale)
    }

    fn down(&self, what: String) -> SendError {
        let last = self
            .producer
            .as_ref()
            .and_then(|p| p.context().lock().last_error.clone());
        match last {
            Some(l) => {
                SendError::Down(format!("{}: {what} (last librdkafka error: {l})", self.url))
            }
            None => SendError::Down(format!("{}: {what}", self.url)),
        }
    }

    fn classify(&self, code: RDKafkaErrorCode, what: &str) -> SendError {
        if is_permanent(code) {
            SendError::Rejected(format!("{}: {what}: {code}", self.url))
        } else {
            self.down(format!("{what}: {code}"))
        }
    }

    /// Polls until `want` reports of the current batch are in or `until` passes.
    fn wait_reports(producer: &BaseProducer<Ctx>, want: usize, until: Instant) {
        while producer.context().lock().received < want && Instant::now() < until {
            producer.poll(POLL_SLICE);
        }
    }
}

/// librdkafka's description of a refused property (`KafkaError`'s Display adds noise).
fn config_error_text(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, _, _) => desc.clone(),
        other => other.to_string(),
    }
}

impl Transport for Kafka {
    /// Creates the producer once (librdkafka reconnects by itself afterwards) and checks
    /// that the cluster answers with the topic's metadata within `timeout_ms`. A producer
    /// with a fatal error (idempotence state lost) is dropped and replaced, never kept
    /// beside a new one.
    fn connect(&mut self) -> Result<(), SendError> {
        let fatal = self
            .producer
            .as_ref()
            .and_then(|p| p.client().fatal_error());
        if fatal.is_some() {
            // Dropping purges and flushes (bounded: 500 ms inside rdkafka).
            self.producer = None;
        }
        if self.producer.is_none() {
            self.connect_new()?;
        }
        self.check_topic()
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        if batch.is_empty() {
            return Ok(());
        }
        let Some(producer) = self.producer.as_ref() else {
            return Err(Partial {
                delivered: 0,
                error: self.down("not connected".into()),
            });
        };
        let generation = {
            let mut r = producer.context().lock();
            r.generation = r.generation.wrapping_add(1);
            r.results.clear();
            r.results.resize(batch.len(), None);
            r.received = 0;
            r.generation
        };
        let deadline = Instant::now() + self.timeout;
        // Hand every message to librdkafka, in order. On a refusal at hand-over, stop: later
        // messages would only be sent twice once the sink retries from the refused one.
        let mut produced = 0usize;
        let mut produce_err: Option<SendError> = None;
        'batch: for (index, out) in batch.iter().enumerate() {
            self.key_buf.clear();
            let has_key = match self.key {
                KeyMode::Flow => {
                    push_decimal(&mut self.key_buf, out.meta.flow_id);
                    true
                }
                KeyMode::Src => match out.meta.src {
                    Some(ip) => {
                        self.key_buf.push_str(&ip.to_string());
                        true
                    }
                    None => false,
                },
                KeyMode::None => false,
            };
            loop {
                let rec = BaseRecord::<[u8], [u8], Box<Tag>>::with_opaque_to(
                    &self.topic,
                    Box::new(Tag { generation, index }),
                )
                .payload(&out.line[..]);
                let rec = if has_key {
                    rec.key(self.key_buf.as_bytes())
                } else {
                    rec
                };
                match producer.send(rec) {
                    Ok(()) => break,
                    // librdkafka's queue is full: serve reports to make room, until the
                    // batch's deadline.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if Instant::now() < deadline =>
                    {
                        producer.poll(POLL_SLICE);
                    }
                    Err((e, _)) => {
                        let code = e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                        produce_err = Some(self.classify(code, "produce"));
                        break 'batch;
                    }
                }
            }
            produced += 1;
        }
        Self::wait_reports(producer, produced, deadline);
        if producer.context().lock().received < produced {
            // Deadline passed: take back what librdkafka still holds (reported as purged)
            // so it is not sent later behind the sink's retry.
            producer.purge(PurgeConfig::default().queue().inflight());
            Self::wait_reports(producer, produced, Instant::now() + PURGE_GRACE);
        }
        let (delivered, first_failure) = {
            let r = producer.context().lock();
            let delivered = r.results[..produced]
                .iter()
                .take_while(|x| matches!(x, Some(Ok(()))))
                .count();
            (delivered, r.results.get(delivered).copied().flatten())
        };
        if delivered == batch.len() {
            return Ok(());
        }
        let error = if delivered < produced {
            match first_failure {
                Some(Err(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight))
                | None => self.down(format!(
                    "no delivery report within {} ms",
                    self.timeout.as_millis()
                )),
                Some(Err(code)) => self.classify(code, "delivery"),
                Some(Ok(())) => self.down("delivery report lost".into()),
            }
        } else {
            produce_err.unwrap_or_else(|| self.down("message not produced".into()))
        };
        Err(Partial { delivered, error })
    }

    /// Waits (at most `timeout_ms`) until librdkafka's queue is empty. `send` already waits
    /// for every report, so this has work only after a timed-out batch.
    fn flush(&mut self) -> Result<(), SendError> {
        let Some(p) = self.producer.as_ref() else {
            return Ok(());
        };
        p.flush(self.timeout)
            .map_err(|e| self.down(format!("flush: {e}")))
    }
}

impl Kafka {
    fn connect_new(&mut self) -> Result<(), SendError> {
        let p: BaseProducer<Ctx> = self
            .config
            .create_with_context(Ctx::default())
            .map_err(|e| SendError::Down(format!("{}: {}", self.url, config_error_text(&e))))?;
        self.producer = Some(p);
        Ok(())
    }

    /// The cluster answers with the topic's metadata (it exists and has partitions).
    fn check_topic(&self) -> Result<(), SendError> {
        let Some(p) = self.producer.as_ref() else {
            return Err(self.down("not connected".into()));
        };
        let md = p
            .client()
            .fetch_metadata(Some(&self.topic), self.timeout)
            .map_err(|e| self.down(format!("metadata for topic {:?}: {e}", self.topic)))?;
        let Some(t) = md.topics().iter().find(|t| t.name() == self.topic) else {
            return Err(self.down(format!("topic {:?} not in metadata", self.topic)));
        };
        if let Some(err) = t.error() {
            let code = RDKafkaErrorCode::from(err);
            return Err(self.down(format!("topic {:?}: {code}", self.topic)));
        }
        if t.partitions().is_empty() {
            return Err(self.down(format!("topic {:?} has no partitions", self.topic)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(q: &[(&str, &str)]) -> BTreeMap<String, String> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_values() {
        let o = parse_opts(&opts(&[])).unwrap();
        assert_eq!(o.key, KeyMode::Flow);
        assert_eq!(o.compression, Compression::Lz4);
        assert_eq!(o.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        let o = parse_opts(&opts(&[
            ("key", "src"),
            ("compression", "zstd"),
            ("timeout_ms", "250"),
            ("rdkafka.security.protocol", "SSL"),
        ]))
        .unwrap();
        assert_eq!(o.key, KeyMode::Src);
        assert_eq!(o.compression, Compression::Zstd);
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.passthrough.get("security.protocol").unwrap(), "SSL");
    }

    #[test]
    fn refusals() {
        for (k, v) in [
            ("bogus", "1"),
            ("rdkafka.", "1"),
            ("key", "dst"),
            ("compression", "brotli"),
            ("timeout_ms", "0"),
            ("timeout_ms", "abc"),
            ("timeout_ms", "3600001"),
            ("rdkafka.bootstrap.servers", "x:1"),
            ("rdkafka.compression.type", "gzip"),
            ("rdkafka.delivery.report.only.error", "true"),
            ("rdkafka.transactional.id", "t"),
        ] {
            assert!(parse_opts(&opts(&[(k, v)])).is_err(), "{k}={v}");
        }
        assert!(parse_opts(&opts(&[
            ("rdkafka.acks", "1"),
            ("rdkafka.request.required.acks", "1")
        ]))
        .is_err());
    }

    #[test]
    fn config_defaults_and_overrides() {
        let b = vec![("a".to_string(), 9092), ("::1".to_string(), 9093)];
        let c = client_config(&b, "kafka-0", &parse_opts(&opts(&[])).unwrap());
        assert_eq!(c["bootstrap.servers"], "a:9092,[::1]:9093");
        assert_eq!(c["acks"], "all");
        assert_eq!(c["enable.idempotence"], "true");
        assert_eq!(c["compression.codec"], "lz4");
        assert_eq!(c["message.timeout.ms"], "10000");
        let o = parse_opts(&opts(&[
            ("rdkafka.request.required.acks", "1"),
            ("rdkafka.enable.idempotence", "false"),
            ("rdkafka.delivery.timeout.ms", "5000"),
        ]))
        .unwrap();
        let c = client_config(&b, "k", &o);
        assert!(!c.contains_key("acks"));
        assert!(!c.contains_key("message.timeout.ms"));
        assert_eq!(c["request.required.acks"], "1");
        assert_eq!(c["enable.idempotence"], "false");
        assert_eq!(c["delivery.timeout.ms"], "5000");
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact_url("kafka://a:1/t?key=src&rdkafka.sasl.password=hunter2&rdkafka.ssl.key.password=x&rdkafka.sasl.username=u"),
            "kafka://a:1/t?key=src&rdkafka.sasl.password=***&rdkafka.ssl.key.password=***&rdkafka.sasl.username=u"
        );
        assert_eq!(redact_url("kafka://a:1/t"), "kafka://a:1/t");
    }

    #[test]
    fn decimal() {
        for v in [0u64, 7, 10, 1234567890123, u64::MAX] {
            let mut s = String::from("x");
            push_decimal(&mut s, v);
            assert_eq!(s, format!("x{v}"));
        }
    }

    #[test]
    fn permanent_errors() {
        assert!(is_permanent(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(!is_permanent(RDKafkaErrorCode::MessageTimedOut));
        assert!(!is_permanent(RDKafkaErrorCode::AllBrokersDown));
    }
}
