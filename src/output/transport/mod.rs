//! Transports: how one sink hands serialised events to its receiver (a file, a socket, syslog,
//! Redis, Kafka). A transport knows nothing about queues, spooling or retries: the sink's
//! thread (`output::fanout`) owns those and calls the transport with batches in order.
//!
//! Rule: `send` returns `Ok` only when every event of the batch was handed over with the
//! transport's own guarantee (written to the file, accepted by the socket, replied to by
//! Redis, acknowledged in a Kafka delivery report). On error it says how many of the batch,
//! from the front, were delivered, so the sink spools exactly the rest.

pub mod file;
pub mod kafka;
pub mod redis;
pub mod syslog;
pub mod unix;

use crate::output::url::{Scheme, SinkSpec};
use std::net::IpAddr;
use std::sync::Arc;

/// The EVE `event_type` of an event, for the per-sink `types=` filter and syslog/Kafka
/// metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Alert = 0,
    Dns = 1,
    Tls = 2,
    Http = 3,
    Quic = 4,
    Flow = 5,
    Stats = 6,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Alert,
        Kind::Dns,
        Kind::Tls,
        Kind::Http,
        Kind::Quic,
        Kind::Flow,
        Kind::Stats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::Http => "http",
            Kind::Quic => "quic",
            Kind::Flow => "flow",
            Kind::Stats => "stats",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn from_u8(v: u8) -> Option<Kind> {
        Kind::ALL.get(v as usize).copied()
    }
}

/// What a transport may need besides the serialised line: small, fixed, and stored beside
/// the line in the spool so a replayed event is sent exactly as it would have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutMeta {
    pub kind: Kind,
    /// The alert's severity (1 high .. 3 low, Suricata's scale); 0 for other events.
    pub severity: u8,
    pub flow_id: u64,
    /// The event's source address (Kafka `key=src`), when it has one.
    pub src: Option<IpAddr>,
    /// Event time, ns since the Unix epoch (syslog TIMESTAMP).
    pub ts_ns: u64,
}

/// One event in the sink's format (EVE or ECS JSON, no trailing newline), shared by every
/// sink of that format: serialised once.
#[derive(Debug, Clone)]
pub struct Out {
    pub line: Arc<[u8]>,
    pub meta: OutMeta,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The receiver is unreachable or failed: reconnect with backoff, keep the events.
    #[error("{0}")]
    Down(String),
    /// The receiver can never take this event (too big for a datagram, refused by the
    /// broker as invalid): counted as rejected, never retried.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// A failed `send`: `delivered` events from the front of the batch got through.
#[derive(Debug)]
pub struct Partial {
    pub delivered: usize,
    pub error: SendError,
}

pub trait Transport: Send {
    /// Connects, or reconnects after a `Down`. Called before the first send.
    fn connect(&mut self) -> Result<(), SendError>;
    /// Delivers `batch` in order (see the module's rule).
    fn send(&mut self, batch: &[Out]) -> Result<(), Partial>;
    /// Pushes out anything buffered; called when the queue is idle and at exit.
    fn flush(&mut self) -> Result<(), SendError>;
    /// SIGHUP: a file transport reopens its path (logrotate). Others do nothing.
    fn reopen(&mut self) -> Result<(), SendError> {
        Ok(())
    }
}

/// Builds the transport a spec names (not yet connected).
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    match &spec.scheme {
        Scheme::File { .. } | Scheme::Stdout => file::open(spec),
        Scheme::UnixDgram { .. } | Scheme::UnixStream { .. } => unix::open(spec),
        Scheme::SyslogUdp { .. } | Scheme::SyslogTcp { .. } | Scheme::SyslogTls { .. } => {
            syslog::open(spec)
        }
        Scheme::Redis { .. } => redis::open(spec),
        Scheme::Kafka { .. } => kafka::open(spec),
    }
}
