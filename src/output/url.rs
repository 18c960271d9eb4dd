//! Sink URLs (`--output URL`): a pure parser from text to [`SinkSpec`], with typed errors.
//!
//! Spellings (a user's contract; README "Outputs"): `file:PATH`, `-`, `unix+dgram:PATH`,
//! `unix+stream:PATH`, `syslog+udp://HOST:PORT`, `syslog+tcp://HOST:PORT`,
//! `syslog+tls://HOST:PORT`, `redis://HOST:PORT/KEY`, `kafka://HOST:PORT[,HOST:PORT...]/TOPIC`,
//! each followed by `?key=value&...`. The keys every sink takes (`format`, `types`,
//! `when_full`, `name`) are settled here; the rest stay in [`SinkSpec::opts`] for the
//! transport, which rejects keys it does not know (a misspelt option is an error, never
//! silently ignored).

use crate::output::transport::Kind;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Serialisation of a sink's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Suricata 7 EVE JSON (the default).
    Eve,
    /// Elastic Common Schema JSON (docs/ecs.md).
    Ecs,
}

/// What a sink does when its spool (or, without `--spool`, its queue) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room: nothing is dropped, capture slows (offline reads).
    Block,
    /// Discard the oldest queued events for the new ones (live taps: recent alerts matter).
    DropOldest,
    /// Discard the new event.
    DropNewest,
}

impl WhenFull {
    pub fn parse(s: &str) -> Result<WhenFull, UrlError> {
        match s {
            "block" => Ok(WhenFull::Block),
            "drop_oldest" => Ok(WhenFull::DropOldest),
            "drop_newest" => Ok(WhenFull::DropNewest),
            other => Err(UrlError::Value {
                key: "when_full".into(),
                value: other.into(),
                expected: "block, drop_oldest or drop_newest",
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WhenFull::Block => "block",
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::DropNewest => "drop_newest",
        }
    }
}

/// Redis command per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// RPUSH KEY event.
    List,
    /// PUBLISH KEY event.
    Channel,
    /// XADD KEY MAXLEN ~ N * event EVENT.
    Stream,
}

/// Where a sink sends, as its URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `-`: standard output.
    Stdout,
    File {
        path: PathBuf,
    },
    UnixDgram {
        path: PathBuf,
    },
    UnixStream {
        path: PathBuf,
    },
    SyslogUdp {
        host: String,
        port: u16,
    },
    SyslogTcp {
        host: String,
        port: u16,
    },
    SyslogTls {
        host: String,
        port: u16,
    },
    Redis {
        host: String,
        port: u16,
        key: String,
        mode: RedisMode,
    },
    Kafka {
        brokers: Vec<(String, u16)>,
        topic: String,
    },
}

impl Scheme {
    /// The family in sink names and stats keys (`redis-0`, `stats.sinks.redis-0.sent`).
    pub fn family(&self) -> &'static str {
        match self {
            Scheme::Stdout => "stdout",
            Scheme::File { .. } => "file",
            Scheme::UnixDgram { .. } | Scheme::UnixStream { .. } => "unix",
            Scheme::SyslogUdp { .. } | Scheme::SyslogTcp { .. } | Scheme::SyslogTls { .. } => {
                "syslog"
            }
            Scheme::Redis { .. } => "redis",
            Scheme::Kafka { .. } => "kafka",
        }
    }
}

/// One parsed `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// Unique per run: `{family}-{index}` unless `name=` gives one. Names the sink's spool
    /// folder and its stats counters, so it must stay the same across restarts.
    pub name: String,
    pub scheme: Scheme,
    pub format: Format,
    /// Event types this sink takes; `None`: every type the run writes.
    pub types: Option<Vec<Kind>>,
    /// `None`: the run's default (`--when-full`, else by input kind).
    pub when_full: Option<WhenFull>,
    /// The transport's own options (`facility`, `app_name`, `key`, `compression`, ...).
    pub opts: BTreeMap<String, String>,
    /// The URL as given (for messages; never contains more than the user typed).
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("unknown scheme in {0:?} (file:PATH, -, unix+dgram:PATH, unix+stream:PATH, syslog+udp://, syslog+tcp://, syslog+tls://, redis://, kafka://)")]
    Scheme(String),
    #[error("{url:?}: {what}")]
    Bad { url: String, what: String },
    #[error("{key}={value:?}: expected {expected}")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("two sinks are named {0:?}; give one a name= of its own")]
    DuplicateName(String),
}

fn bad(url: &str, what: impl Into<String>) -> UrlError {
    UrlError::Bad {
        url: url.into(),
        what: what.into(),
    }
}

/// Decodes `%XX` escapes (a `?`, `&` or `=` inside a path or value is written `%3F`, `%26`,
/// `%3D`).
fn unescape(url: &str, s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(url, format!("bad %-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(url, "escapes do not form UTF-8"))
}

/// `HOST:PORT`, with `[v6]:PORT` for IPv6 literals.
fn host_port(url: &str, s: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| bad(url, "unclosed [ in host"))?;
        let p = p
            .strip_prefix(':')
            .ok_or_else(|| bad(url, "missing :PORT after [ADDRESS]"))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| bad(url, format!("{s:?} is not HOST:PORT")))?
    };
    if host.is_empty() {
        return Err(bad(url, "empty host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(url, format!("bad port {port:?}")))?;
    Ok((host.to_string(), port))
}

/// Parses one URL; `name` is filled in by [`parse_all`] when the URL does not give one.
pub fn parse(url: &str) -> Result<SinkSpec, UrlError> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut opts = BTreeMap::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(url, format!("query part {pair:?} is not key=value")))?;
            let k = unescape(url, k)?;
            if opts.insert(k.clone(), unescape(url, v)?).is_some() {
                return Err(bad(url, format!("{k} given twice")));
            }
        }
    }
    let path_of = |rest: &str| -> Result<PathBuf, UrlError> {
        // `file:///var/log/x` and `file:/var/log/x` both name /var/log/x.
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad(url, "empty path"));
        }
        Ok(PathBuf::from(unescape(url, rest)?))
    };
    let scheme = if head == "-" {
        Scheme::Stdout
    } else if let Some(r) = head.strip_prefix("file:") {
        Scheme::File { path: path_of(r)? }
    } else if let Some(r) = head.strip_prefix("unix+dgram:") {
        Scheme::UnixDgram { path: path_of(r)? }
    } else if let Some(r) = head.strip_prefix("unix+stream:") {
        Scheme::UnixStream { path: path_of(r)? }
    } else if let Some(r) = head.strip_prefix("syslog+udp://") {
        let (host, port) = host_port(url, r.trim_end_matches('/'))?;
        Scheme::SyslogUdp { host, port }
    } else if let Some(r) = head.strip_prefix("syslog+tcp://") {
        let (host, port) = host_port(url, r.trim_end_matches('/'))?;
        Scheme::SyslogTcp { host, port }
    } else if let Some(r) = head.strip_prefix("syslog+tls://") {
        let (host, port) = host_port(url, r.trim_end_matches('/'))?;
        Scheme::SyslogTls { host, port }
    } else if let Some(r) = head.strip_prefix("redis://") {
        let (hp, key) = r.split_once('/').ok_or_else(|| bad(url, "missing /KEY"))?;
        let key = unescape(url, key)?;
        if key.is_empty() {
            return Err(bad(url, "empty KEY"));
        }
        let (host, port) = host_port(url, hp)?;
        let mode = match opts.remove("mode").as_deref() {
            None | Some("list") => RedisMode::List,
            Some("channel") => RedisMode::Channel,
            Some("stream") => RedisMode::Stream,
            Some(o) => {
                return Err(UrlError::Value {
                    key: "mode".into(),
                    value: o.into(),
                    expected: "list, channel or stream",
                })
            }
        };
        Scheme::Redis {
            host,
            port,
            key,
            mode,
        }
    } else if let Some(r) = head.strip_prefix("kafka://") {
        let (hosts, topic) = r
            .split_once('/')
            .ok_or_else(|| bad(url, "missing /TOPIC"))?;
        let topic = unescape(url, topic)?;
        if topic.is_empty() {
            return Err(bad(url, "empty TOPIC"));
        }
        let brokers = hosts
            .split(',')
            .map(|h| host_port(url, h))
            .collect::<Result<Vec<_>, _>>()?;
        Scheme::Kafka { brokers, topic }
    } else {
        return Err(UrlError::Scheme(url.into()));
    };
    let format = match opts.remove("format").as_deref() {
        None | Some("eve") => Format::Eve,
        Some("ecs") => Format::Ecs,
        Some(o) => {
            return Err(UrlError::Value {
                key: "format".into(),
                value: o.into(),
                expected: "eve or ecs",
            })
        }
    };
    let types = match opts.remove("types") {
        None => None,
        Some(t) => {
            let mut v = Vec::new();
            for part in t.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let k = Kind::from_name(part).ok_or_else(|| UrlError::Value {
                    key: "types".into(),
                    value: part.into(),
                    expected: "alert, dns, tls, http, quic, flow or stats",
                })?;
                if !v.contains(&k) {
                    v.push(k);
                }
            }
            if v.is_empty() {
                return Err(bad(url, "types= is empty"));
            }
            Some(v)
        }
    };
    let when_full = opts
        .remove("when_full")
        .map(|w| WhenFull::parse(&w))
        .transpose()?;
    let name = opts.remove("name").unwrap_or_default();
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(bad(url, "name= takes letters, digits, - and _ only"));
    }
    Ok(SinkSpec {
        name,
        scheme,
        format,
        types,
        when_full,
        opts,
        url: url.into(),
    })
}

/// Parses every `--output`, names them `{family}-{index}` (index counted per family, in the
/// order given) unless named, and refuses duplicate names.
pub fn parse_all<S: AsRef<str>>(urls: &[S]) -> Result<Vec<SinkSpec>, UrlError> {
    let mut out: Vec<SinkSpec> = Vec::new();
    let mut per_family: BTreeMap<&'static str, usize> = BTreeMap::new();
    for u in urls {
        let mut s = parse(u.as_ref())?;
        let fam = s.scheme.family();
        let i = per_family.entry(fam).or_insert(0);
        if s.name.is_empty() {
            s.name = format!("{fam}-{i}");
        }
        *i += 1;
        if out.iter().any(|o| o.name == s.name) {
            return Err(UrlError::DuplicateName(s.name));
        }
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme() {
        let s = parse("file:/var/log/eve.json?format=ecs&types=alert,dns").unwrap();
        assert_eq!(
            s.scheme,
            Scheme::File {
                path: "/var/log/eve.json".into()
            }
        );
        assert_eq!(s.format, Format::Ecs);
        assert_eq!(s.types, Some(vec![Kind::Alert, Kind::Dns]));
        assert_eq!(parse("-").unwrap().scheme, Scheme::Stdout);
        assert_eq!(
            parse("unix+dgram:/run/x.sock").unwrap().scheme,
            Scheme::UnixDgram {
                path: "/run/x.sock".into()
            }
        );
        assert_eq!(
            parse("syslog+tls://[::1]:6514?facility=local3").unwrap(),
            SinkSpec {
                name: String::new(),
                scheme: Scheme::SyslogTls {
                    host: "::1".into(),
                    port: 6514
                },
                format: Format::Eve,
                types: None,
                when_full: None,
                opts: [("facility".to_string(), "local3".to_string())].into(),
                url: "syslog+tls://[::1]:6514?facility=local3".into(),
            }
        );
        match parse("redis://127.0.0.1:6379/cloudtap?mode=stream&maxlen=1000")
            .unwrap()
            .scheme
        {
            Scheme::Redis {
                key, mode, port, ..
            } => {
                assert_eq!(
                    (key.as_str(), mode, port),
                    ("cloudtap", RedisMode::Stream, 6379)
                )
            }
            o => panic!("{o:?}"),
        }
        match parse("kafka://a:9092,b:9093/alerts?when_full=drop_oldest").unwrap() {
            SinkSpec {
                scheme: Scheme::Kafka { brokers, topic },
                when_full,
                ..
            } => {
                assert_eq!(brokers, vec![("a".into(), 9092), ("b".into(), 9093)]);
                assert_eq!(topic, "alerts");
                assert_eq!(when_full, Some(WhenFull::DropOldest));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(parse("http://x"), Err(UrlError::Scheme(_))));
        assert!(matches!(parse("redis://h:1"), Err(UrlError::Bad { .. })));
        assert!(matches!(
            parse("syslog+udp://h:0"),
            Err(UrlError::Bad { .. })
        ));
        assert!(matches!(
            parse("syslog+udp://h:70000"),
            Err(UrlError::Bad { .. })
        ));
        assert!(matches!(parse("-?format=xml"), Err(UrlError::Value { .. })));
        assert!(matches!(
            parse("-?types=alert,foo"),
            Err(UrlError::Value { .. })
        ));
        assert!(matches!(parse("file:x?a=1&a=2"), Err(UrlError::Bad { .. })));
        assert!(matches!(parse("file:%zz"), Err(UrlError::Bad { .. })));
    }

    #[test]
    fn names_per_family_and_unique() {
        let v = parse_all(&["file:a", "redis://h:1/k", "file:b", "-", "file:c?name=arch"]).unwrap();
        let names: Vec<_> = v.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["file-0", "redis-0", "file-1", "stdout-0", "arch"]);
        assert!(matches!(
            parse_all(&["file:a?name=x", "file:b?name=x"]),
            Err(UrlError::DuplicateName(_))
        ));
        assert_eq!(
            parse("file:/tmp/a%3Fb").unwrap().scheme,
            Scheme::File {
                path: "/tmp/a?b".into()
            }
        );
    }
}
