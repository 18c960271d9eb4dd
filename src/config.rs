//! One configuration, settled once: the command line over the configuration file (`--config
//! FILE`, TOML) over the defaults, validated here and nowhere later. Every command-line option
//! has a key of the same name (dashes as underscores); the detection stage's policy, hours,
//! thresholds and windows live only in the file. Errors name the file and line.

use crate::capture::live::{Backend, LiveCfg, DEFAULT_BUFFER_MB, DEFAULT_SNAPLEN};
use crate::cli::Cli;
use crate::correlate::{
    BurstCfg, Hours, Policy, StageCfg, Suppress, Threshold, ThresholdType, Track, UploadCfg,
};
use crate::decode::defrag::{DEFAULT_MAX_BYTES, DEFAULT_MAX_DATAGRAMS};
use crate::flow::{DEFAULT_MAX_FLOWS, DEFAULT_MAX_REASSEMBLY_BYTES};
use crate::output::fanout::FanoutCfg;
use crate::output::transport::Kind;
use crate::output::url::{Scheme, SinkSpec, WhenFull};
use crate::output::Types;
use crate::pipeline;
use crate::wire::Cidr;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Default `--shutdown-timeout`, seconds.
pub const DEFAULT_SHUTDOWN_S: f64 = 10.0;

/// Default alert window: one alert per (host, detection, service) per hour.
pub const DEFAULT_WINDOW_NS: u64 = 3_600_000_000_000;
/// Default learning period of a new `--state`: one day of packet time.
pub const DEFAULT_LEARNING_NS: u64 = 86_400_000_000_000;

/// How alerts are raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertMode {
    /// The playbook's detections, per entity and window (the default).
    Entity,
    /// Every list hit of an alert-tier signature, once per flow (the engine benchmark's mode,
    /// comparable with Suricata's per-flow rules).
    Flow,
}

/// The settled configuration of a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub run: pipeline::Config,
    pub signatures: Option<PathBuf>,
    /// Every sink, settled: `--eve` (when given, or when nothing else is) first, then each
    /// `--output`; each with explicit `types` (a sink without `types=` takes `--types`).
    pub outputs: Vec<SinkSpec>,
    pub fanout: FanoutCfg,
    pub watch: bool,
    pub quiet: bool,
    pub stage: StageCfg,
    /// Live capture (`-i`), when asked for instead of files.
    pub live: Option<LiveCfg>,
    /// `--user`: run as this user once the capture is open.
    pub user: Option<String>,
    /// Time allowed to drain at a stop signal.
    pub shutdown_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read --config {path}: {err}")]
    Read { path: String, err: std::io::Error },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    read: Option<Vec<PathBuf>>,
    interface: Option<Vec<String>>,
    bpf: Option<String>,
    snaplen: Option<Spanned<u32>>,
    promisc: Option<bool>,
    buffer_size: Option<Spanned<usize>>,
    capture: Option<Spanned<String>>,
    user: Option<String>,
    shutdown_timeout: Option<Spanned<f64>>,
    signatures: Option<PathBuf>,
    eve: Option<String>,
    output: Option<Vec<String>>,
    spool: Option<PathBuf>,
    spool_max: Option<Spanned<SizeFile>>,
    when_full: Option<Spanned<String>>,
    flush_timeout: Option<Spanned<f64>>,
    watch: Option<bool>,
    types: Option<Spanned<String>>,
    stats_interval: Option<Spanned<f64>>,
    max_flows: Option<Spanned<usize>>,
    reassembly_memcap: Option<usize>,
    max_fragment_datagrams: Option<Spanned<usize>>,
    fragment_memcap: Option<usize>,
    threads: Option<Spanned<usize>>,
    quiet: Option<bool>,
    state: Option<PathBuf>,
    learning: Option<Spanned<String>>,
    alert_mode: Option<Spanned<String>>,
    home_net: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    alerts: AlertsFile,
    hours: Option<HoursFile>,
    #[serde(default)]
    burst: BurstFile,
    #[serde(default)]
    upload: UploadFile,
    #[serde(default)]
    baseline: BaselineFile,
    #[serde(default)]
    policy: Vec<PolicyFile>,
}

/// A size in the file: a number of bytes or a string with a K, M or G suffix.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum SizeFile {
    Bytes(u64),
    Text(String),
}

/// Default `--spool-max`: 1 GiB per sink.
pub const DEFAULT_SPOOL_MAX: u64 = 1 << 30;
/// Default `--flush-timeout`, seconds.
pub const DEFAULT_FLUSH_S: f64 = 10.0;
/// Events each sink's in-memory queue holds before it spools (or applies its when_full).
pub const SINK_QUEUE_EVENTS: usize = 16_384;

/// Parses `1073741824`, `512M`, `1G`, `64KiB`, `2GB` (suffixes are powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M, 1G)"))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown size unit (K, M, G, T)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    window: Option<Spanned<String>>,
    #[serde(default)]
    threshold: Vec<ThresholdFile>,
    #[serde(default)]
    suppress: Vec<SuppressFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdFile {
    #[serde(default)]
    signature_id: u32,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    track: Spanned<String>,
    count: u64,
    seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressFile {
    #[serde(default)]
    signature_id: u32,
    track: Option<Spanned<String>>,
    #[serde(default)]
    ip: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    timezone: Option<Spanned<String>>,
    start: Option<Spanned<String>>,
    end: Option<Spanned<String>>,
    weekdays: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    holidays: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BurstFile {
    count: Option<usize>,
    window: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadFile {
    bytes: Option<u64>,
    ratio: Option<f64>,
    min_bytes: Option<u64>,
    alone_bytes: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    max_age: Option<Spanned<String>>,
    max_hosts: Option<usize>,
    max_services: Option<usize>,
    max_services_per_host: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    #[serde(default)]
    categories: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<String>,
    allow: Vec<Spanned<String>>,
}

/// Reads the file named by `--config`, if any, and settles the configuration.
pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
    match &cli.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|err| ConfigError::Read {
                path: p.display().to_string(),
                err,
            })?;
            Config::from(cli, Some((p.as_path(), &text)))
        }
        None => Config::from(cli, None),
    }
}

/// Parses `24h`, `10m`, `30d`, `90s`, `1h30m` (units s, m, h, d; whole numbers).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{s:?}: unit {c:?} is not one of s, m, h, d")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?}: a number must come before {c:?}"))?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?} is too long"))?;
    }
    if !num.is_empty() {
        return Err(format!("{s:?}: give a unit (s, m, h or d), e.g. {num}s"));
    }
    total
        .checked_mul(1_000_000_000)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{s:?} must be between 1 s and 500 years"))
}

struct Ctx<'a> {
    name: String,
    text: &'a str,
    errors: Vec<String>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }
    fn err<T>(&mut self, s: &Spanned<T>, msg: impl std::fmt::Display) {
        let l = self.line(s.span().start);
        self.errors.push(format!("{}:{l}: {msg}", self.name));
    }
    fn duration(&mut self, s: &Option<Spanned<String>>, default: u64) -> u64 {
        match s {
            None => default,
            Some(v) => parse_duration(v.get_ref()).unwrap_or_else(|e| {
                self.err(v, e);
                default
            }),
        }
    }
    fn cidrs(&mut self, v: &[Spanned<String>]) -> Vec<Cidr> {
        let mut out = Vec::new();
        for c in v {
            match Cidr::parse(c.get_ref()) {
                Ok(x) => out.push(x),
                Err(e) => self.err(c, e),
            }
        }
        out
    }
}

impl Config {
    /// Settles the command line over the file's text (path, contents) over the defaults.
    pub fn from(cli: &Cli, file: Option<(&Path, &str)>) -> Result<Config, ConfigError> {
        let (f, mut cx) = match file {
            Some((path, text)) => {
                let name = path.display().to_string();
                let f: File = toml::from_str(text).map_err(|e| {
                    let line = e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                    let msg = e.message().trim_end().to_string();
                    ConfigError::Invalid(match line {
                        Some(l) => format!("{name}:{l}: {msg}"),
                        None => format!("{name}: {msg}"),
                    })
                })?;
                (
                    f,
                    Ctx {
                        name,
                        text,
                        errors: Vec::new(),
                    },
                )
            }
            None => (
                File::default(),
                Ctx {
                    name: "--config".into(),
                    text: "",
                    errors: Vec::new(),
                },
            ),
        };
        let mut cli_err = Vec::new();
        let files = if cli.read.is_empty() {
            f.read.clone().unwrap_or_default()
        } else {
            cli.read.clone()
        };
        let types_s = cli
            .types
            .clone()
            .or_else(|| f.types.as_ref().map(|t| t.get_ref().clone()))
            .unwrap_or_else(|| "alert".into());
        let types = match Types::parse(&types_s) {
            Ok(t) => t,
            Err(e) => {
                match (&cli.types, &f.types) {
                    (None, Some(t)) => cx.err(t, e),
                    _ => cli_err.push(e),
                }
                Types::default()
            }
        };
        let threads = match (cli.threads, &f.threads) {
            (Some(0), _) => {
                cli_err.push("--threads must be at least 1".into());
                1
            }
            (Some(n), _) => n,
            (None, Some(t)) if *t.get_ref() == 0 => {
                cx.err(t, "threads must be at least 1");
                1
            }
            (None, Some(t)) => *t.get_ref(),
            (None, None) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let stats_interval = cli
            .stats_interval
            .or(f.stats_interval.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(pipeline::DEFAULT_STATS_INTERVAL_S as f64);
        if !(stats_interval.is_finite() && (0.1..=1e6).contains(&stats_interval)) {
            cli_err.push("--stats-interval must be between 0.1 and 1000000 seconds".into());
        }
        let max_flows = cli
            .max_flows
            .or(f.max_flows.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_MAX_FLOWS);
        let max_dgrams = cli
            .max_fragment_datagrams
            .or(f.max_fragment_datagrams.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_MAX_DATAGRAMS);
        if max_flows == 0 {
            cli_err.push("--max-flows must be at least 1".into());
        }
        if max_dgrams == 0 {
            cli_err.push("--max-fragment-datagrams must be at least 1".into());
        }
        let mut run = pipeline::Config::new(files);
        run.threads = threads;
        run.types = types;
        run.stats_interval = Duration::from_secs_f64(stats_interval.clamp(0.1, 1e6));
        run.max_flows = max_flows.max(1);
        run.max_reassembly = cli
            .reassembly_memcap
            .or(f.reassembly_memcap)
            .unwrap_or(DEFAULT_MAX_REASSEMBLY_BYTES);
        run.defrag.max_datagrams = max_dgrams.max(1);
        run.defrag.max_bytes = cli
            .fragment_memcap
            .or(f.fragment_memcap)
            .unwrap_or(DEFAULT_MAX_BYTES);
        let quiet = cli.quiet || f.quiet.unwrap_or(false);
        run.progress = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());

        // Detection stage.
        let mut stage = StageCfg::default();
        let mode = cli
            .alert_mode
            .clone()
            .or_else(|| f.alert_mode.as_ref().map(|m| m.get_ref().clone()));
        run.alert_mode = match mode.as_deref() {
            None | Some("entity") => AlertMode::Entity,
            Some("flow") => AlertMode::Flow,
            Some(other) => {
                let msg = format!("alert mode {other:?} must be \"entity\" or \"flow\"");
                match (&cli.alert_mode, &f.alert_mode) {
                    (None, Some(m)) => cx.err(m, msg),
                    _ => cli_err.push(format!("--{msg}")),
                }
                AlertMode::Entity
            }
        };
        stage.state = cli.state.clone().or(f.state.clone());
        stage.learning_ns = match (&cli.learning, &f.learning) {
            (Some(s), _) => parse_duration(s).unwrap_or_else(|e| {
                cli_err.push(format!("--learning: {e}"));
                DEFAULT_LEARNING_NS
            }),
            (None, l) => cx.duration(l, DEFAULT_LEARNING_NS),
        };
        if let Some(h) = &f.home_net {
            stage.home_net = cx.cidrs(h);
        }
        stage.window_ns = cx.duration(&f.alerts.window, DEFAULT_WINDOW_NS);
        for t in &f.alerts.threshold {
            let kind = match t.kind.get_ref().as_str() {
                "limit" => ThresholdType::Limit,
                "threshold" => ThresholdType::Threshold,
                "both" => ThresholdType::Both,
                other => {
                    cx.err(
                        &t.kind,
                        format!("type {other:?} must be limit, threshold or both"),
                    );
                    continue;
                }
            };
            let Some(track) = parse_track(&mut cx, &t.track) else {
                continue;
            };
            if t.count == 0 || t.seconds == 0 {
                cx.err(&t.kind, "count and seconds must be at least 1");
                continue;
            }
            stage.thresholds.push(Threshold {
                sid: t.signature_id,
                kind,
                track,
                count: t.count,
                seconds: t.seconds,
            });
        }
        for s in &f.alerts.suppress {
            let track = match &s.track {
                Some(t) => match parse_track(&mut cx, t) {
                    Some(Track::ByRule) => {
                        cx.err(t, "suppress tracks by_src or by_dst");
                        continue;
                    }
                    Some(t) => Some(t),
                    None => continue,
                },
                None => None,
            };
            if track.is_some() && s.ip.is_empty() {
                if let Some(t) = &s.track {
                    cx.err(t, "a suppress rule with track needs ip = [...]");
                }
                continue;
            }
            stage.suppress.push(Suppress {
                sid: s.signature_id,
                track,
                ips: cx.cidrs(&s.ip),
            });
        }
        if let Some(h) = &f.hours {
            if let Some(h) = hours(&mut cx, h) {
                stage.hours = Some(h);
            }
        }
        stage.burst = BurstCfg {
            count: f.burst.count.unwrap_or(5).max(2),
            window_ns: cx.duration(&f.burst.window, 600_000_000_000),
        };
        let up = UploadCfg::default();
        stage.upload = UploadCfg {
            bytes: f.upload.bytes.unwrap_or(up.bytes),
            ratio: f.upload.ratio.unwrap_or(up.ratio),
            min_bytes: f.upload.min_bytes.unwrap_or(up.min_bytes),
            alone_bytes: f.upload.alone_bytes.unwrap_or(up.alone_bytes),
        };
        if !(stage.upload.ratio.is_finite() && stage.upload.ratio > 1.0) {
            cx.errors.push(format!(
                "{}: upload.ratio must be a number above 1",
                cx.name
            ));
        }
        stage.max_age_ns = cx.duration(&f.baseline.max_age, 30 * 86_400_000_000_000);
        if let Some(n) = f.baseline.max_hosts {
            stage.max_hosts = n.max(1);
        }
        if let Some(n) = f.baseline.max_services {
            stage.max_services = n.max(1);
        }
        if let Some(n) = f.baseline.max_services_per_host {
            stage.max_services_per_host = n.max(1);
        }
        for p in &f.policy {
            for c in &p.categories {
                if !crate::detect::SERVICE_CATEGORIES.contains(&c.get_ref().as_str()) {
                    cx.err(
                        c,
                        format!(
                            "category {:?} is not one of {}",
                            c.get_ref(),
                            crate::detect::SERVICE_CATEGORIES.join(", ")
                        ),
                    );
                }
            }
            let allow = cx.cidrs(&p.allow);
            stage.policies.push(Policy {
                name: p.name.clone(),
                categories: p.categories.iter().map(|c| c.get_ref().clone()).collect(),
                services: p.services.clone(),
                allow,
            });
        }
        run.upload_floor = stage.upload.floor();
        run.context_observations = stage.state.is_some() || !stage.policies.is_empty();
        let interfaces = if cli.interface.is_empty() {
            f.interface.clone().unwrap_or_default()
        } else {
            cli.interface.clone()
        };
        if !interfaces.is_empty() && !run.files.is_empty() {
            cli_err.push("give either capture files (-r) or interfaces (-i), not both".into());
        }
        let backend = match (&cli.capture, &f.capture) {
            (Some(c), _) => Backend::parse(c).unwrap_or_else(|e| {
                cli_err.push(e);
                Backend::default()
            }),
            (None, Some(c)) => Backend::parse(c.get_ref()).unwrap_or_else(|e| {
                cx.err(c, e);
                Backend::default()
            }),
            (None, None) => Backend::default(),
        };
        let snaplen = cli
            .snaplen
            .or(f.snaplen.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_SNAPLEN);
        if !(64..=262_144).contains(&snaplen) {
            cli_err.push(format!(
                "--snaplen {snaplen}: must be between 64 and 262144"
            ));
        }
        let buffer_mb = cli
            .buffer_size
            .or(f.buffer_size.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_BUFFER_MB);
        if !(1..=65_536).contains(&buffer_mb) {
            cli_err.push(format!(
                "--buffer-size {buffer_mb}: must be between 1 and 65536 MiB"
            ));
        }
        let promisc = if cli.no_promisc {
            false
        } else if cli.promisc {
            true
        } else {
            f.promisc.unwrap_or(true)
        };
        let live = (!interfaces.is_empty()).then(|| LiveCfg {
            interfaces,
            bpf: cli.bpf.clone().or(f.bpf.clone()),
            snaplen,
            promisc,
            buffer_mb,
            backend,
        });
        if live.is_none() && (cli.bpf.is_some() || cli.capture.is_some()) {
            cli_err.push("--bpf and --capture apply to live capture (-i)".into());
        }
        let shutdown = cli
            .shutdown_timeout
            .or(f.shutdown_timeout.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_SHUTDOWN_S);
        if !(shutdown.is_finite() && (0.1..=3600.0).contains(&shutdown)) {
            cli_err.push("--shutdown-timeout must be between 0.1 and 3600 seconds".into());
        }
        let signatures = cli.signatures.clone().or(f.signatures.clone());
        let watch = cli.watch || f.watch.unwrap_or(false);
        if watch && signatures.is_none() {
            cli_err.push("--watch needs --signatures DIR".into());
        }
        // Sinks: `--eve` is the shorthand for a file or standard output; with neither it nor
        // `--output`, events go to standard output as before.
        let eve = cli.eve.clone().or(f.eve.clone());
        let mut urls: Vec<String> = Vec::new();
        let out_urls = if cli.output.is_empty() {
            f.output.clone().unwrap_or_default()
        } else {
            cli.output.clone()
        };
        match eve {
            Some(e) if e == "-" => urls.push("-".into()),
            Some(e) => urls.push(format!("file:{}", url_escape_path(&e))),
            None if out_urls.is_empty() => urls.push("-".into()),
            None => {}
        }
        urls.extend(out_urls);
        let mut outputs = match crate::output::url::parse_all(&urls) {
            Ok(o) => o,
            Err(e) => {
                cli_err.push(format!("--output: {e}"));
                Vec::new()
            }
        };
        // The run writes every type some sink takes; a sink without types= takes --types.
        let mut run_types = run.types;
        for o in &mut outputs {
            let t = o.types.get_or_insert_with(|| kinds_of(&run.types));
            for k in t.iter() {
                set_kind(&mut run_types, *k);
            }
            if live.is_some() {
                if let Scheme::File { .. } = o.scheme {
                    // A live sensor that restarts appends to what it wrote before; an offline
                    // run writes its file afresh.
                    o.opts
                        .entry("append".into())
                        .or_insert_with(|| "true".into());
                }
            }
        }
        run.types = run_types;
        let when_full = match (&cli.when_full, &f.when_full) {
            (Some(w), _) => WhenFull::parse(w)
                .map_err(|e| cli_err.push(format!("--when-full: {e}")))
                .ok(),
            (None, Some(w)) => match WhenFull::parse(w.get_ref()) {
                Ok(p) => Some(p),
                Err(e) => {
                    cx.err(w, e.to_string());
                    None
                }
            },
            (None, None) => None,
        }
        .unwrap_or(if live.is_some() {
            WhenFull::DropOldest
        } else {
            WhenFull::Block
        });
        let spool_max = match (&cli.spool_max, &f.spool_max) {
            (Some(s), _) => parse_size(s)
                .map_err(|e| cli_err.push(format!("--spool-max: {e}")))
                .ok(),
            (None, Some(s)) => match s.get_ref() {
                SizeFile::Bytes(n) => Some(*n),
                SizeFile::Text(t) => match parse_size(t) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        cx.err(s, e);
                        None
                    }
                },
            },
            (None, None) => None,
        }
        .unwrap_or(DEFAULT_SPOOL_MAX);
        if spool_max < 1 << 20 {
            cli_err.push("--spool-max must be at least 1M".into());
        }
        let flush = cli
            .flush_timeout
            .or(f.flush_timeout.as_ref().map(|s| *s.get_ref()))
            .unwrap_or(DEFAULT_FLUSH_S);
        if !(flush.is_finite() && (0.0..=3600.0).contains(&flush)) {
            cli_err.push("--flush-timeout must be between 0 and 3600 seconds".into());
        }
        let fanout = FanoutCfg {
            spool: cli.spool.clone().or(f.spool.clone()),
            spool_max,
            when_full,
            flush_timeout: Duration::from_secs_f64(if flush.is_finite() {
                flush.clamp(0.0, 3600.0)
            } else {
                DEFAULT_FLUSH_S
            }),
            queue_cap: SINK_QUEUE_EVENTS,
        };
        let mut all = cx.errors;
        all.extend(cli_err.into_iter().map(|e| format!("command line: {e}")));
        if !all.is_empty() {
            return Err(ConfigError::Invalid(all.join("\n")));
        }
        Ok(Config {
            run,
            signatures,
            outputs,
            fanout,
            watch,
            quiet,
            stage,
            live,
            user: cli.user.clone().or(f.user.clone()),
            shutdown_timeout: Duration::from_secs_f64(shutdown.clamp(0.1, 3600.0)),
        })
    }
}

/// `--eve PATH` as a `file:` URL: `%`, `?` escaped so the path is taken as given.
fn url_escape_path(p: &str) -> String {
    p.replace('%', "%25").replace('?', "%3F")
}

/// The event kinds a `--types` set names.
fn kinds_of(t: &Types) -> Vec<Kind> {
    let pairs = [
        (t.alert, Kind::Alert),
        (t.dns, Kind::Dns),
        (t.tls, Kind::Tls),
        (t.http, Kind::Http),
        (t.quic, Kind::Quic),
        (t.flow, Kind::Flow),
        (t.stats, Kind::Stats),
    ];
    pairs
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, k)| k)
        .collect()
}

fn set_kind(t: &mut Types, k: Kind) {
    match k {
        Kind::Alert => t.alert = true,
        Kind::Dns => t.dns = true,
        Kind::Tls => t.tls = true,
        Kind::Http => t.http = true,
        Kind::Quic => t.quic = true,
        Kind::Flow => t.flow = true,
        Kind::Stats => t.stats = true,
    }
}

fn parse_track(cx: &mut Ctx<'_>, t: &Spanned<String>) -> Option<Track> {
    match t.get_ref().as_str() {
        "by_src" => Some(Track::BySrc),
        "by_dst" => Some(Track::ByDst),
        "by_rule" => Some(Track::ByRule),
        other => {
            cx.err(
                t,
                format!("track {other:?} must be by_src, by_dst or by_rule"),
            );
            None
        }
    }
}

fn hours(cx: &mut Ctx<'_>, h: &HoursFile) -> Option<Hours> {
    let tz: chrono_tz::Tz = match &h.timezone {
        None => crate::correlate::local_tz(),
        Some(z) => match z.get_ref().parse() {
            Ok(t) => t,
            Err(_) => {
                cx.err(
                    z,
                    format!(
                        "{:?} is not an IANA time zone (e.g. Europe/Berlin)",
                        z.get_ref()
                    ),
                );
                return None;
            }
        },
    };
    let hm = |cx: &mut Ctx<'_>, v: &Option<Spanned<String>>, d: u32| -> u32 {
        let Some(v) = v else { return d };
        let s = v.get_ref();
        let parsed = s.split_once(':').and_then(|(a, b)| {
            let (h, m) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        });
        parsed.unwrap_or_else(|| {
            cx.err(v, format!("{s:?} is not a time of day HH:MM"));
            d
        })
    };
    let start = hm(cx, &h.start, 7 * 60);
    let end = hm(cx, &h.end, 19 * 60);
    let mut weekdays = 0u8;
    match &h.weekdays {
        None => weekdays = 0b0001_1111,
        Some(ds) => {
            for d in ds {
                let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(d.get_ref()));
                match i {
                    Some(i) => weekdays |= 1 << i,
                    None => cx.err(d, format!("{:?} is not mon..sun", d.get_ref())),
                }
            }
        }
    }
    let mut holidays = Vec::new();
    for d in &h.holidays {
        match chrono::NaiveDate::parse_from_str(d.get_ref(), "%Y-%m-%d") {
            Ok(x) => holidays.push(x),
            Err(_) => cx.err(d, format!("{:?} is not a date YYYY-MM-DD", d.get_ref())),
        }
    }
    if start >= end {
        match (&h.end, &h.start) {
            (Some(e), _) | (None, Some(e)) => cx.err(e, "hours.start must be before hours.end"),
            (None, None) => {}
        }
    }
    Some(Hours {
        tz,
        start_min: start,
        end_min: end,
        weekdays,
        holidays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("cloudtap").chain(args.iter().copied()))
    }

    fn from(args: &[&str], text: &str) -> Result<Config, String> {
        Config::from(&cli(args), Some((Path::new("t.toml"), text))).map_err(|e| e.to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86_400_000_000_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("90s"), Ok(90_000_000_000));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn command_line_wins_over_the_file() {
        let text =
            "threads = 3\neve = \"from-file.json\"\ntypes = \"alert,dns\"\nlearning = \"2h\"\n";
        let c = from(&["-r", "x.pcap", "--threads", "1"], text).unwrap();
        assert_eq!(c.run.threads, 1);
        assert_eq!(c.outputs.len(), 1);
        assert_eq!(
            c.outputs[0].scheme,
            Scheme::File {
                path: "from-file.json".into()
            }
        );
        assert!(c.run.types.dns);
        assert_eq!(c.stage.learning_ns, 7_200_000_000_000);
        let c = from(&["-r", "x.pcap", "--eve", "-", "--learning", "1d"], text).unwrap();
        assert_eq!(c.outputs[0].scheme, Scheme::Stdout);
        assert_eq!(c.run.threads, 3);
        assert_eq!(c.stage.learning_ns, 86_400_000_000_000);
    }

    #[test]
    fn outputs_settled_once() {
        // No --eve and no --output: standard output, as before.
        let c = from(&["-r", "x.pcap"], "").unwrap();
        assert_eq!(c.outputs.len(), 1);
        assert_eq!(c.outputs[0].scheme, Scheme::Stdout);
        assert_eq!(c.fanout.when_full, WhenFull::Block);
        assert_eq!(c.fanout.spool_max, DEFAULT_SPOOL_MAX);
        // --output alone replaces standard output; a sink's types widen the run's types,
        // and a sink without types= takes --types.
        let c = from(
            &[
                "-r",
                "x.pcap",
                "--types",
                "alert",
                "--output",
                "redis://127.0.0.1:6379/k?types=dns",
                "--output",
                "file:/tmp/a%3Fb.json",
                "--spool-max",
                "64M",
                "--when-full",
                "drop_newest",
            ],
            "",
        )
        .unwrap();
        let names: Vec<_> = c.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["redis-0", "file-0"]);
        assert_eq!(c.outputs[0].types, Some(vec![Kind::Dns]));
        assert_eq!(c.outputs[1].types, Some(vec![Kind::Alert]));
        assert!(c.run.types.alert && c.run.types.dns && !c.run.types.tls);
        assert_eq!(c.fanout.spool_max, 64 << 20);
        assert_eq!(c.fanout.when_full, WhenFull::DropNewest);
        // The file's keys, with errors naming the line.
        let c = from(
            &["-r", "x.pcap"],
            "output = [\"-\", \"syslog+udp://127.0.0.1:514\"]\nspool = \"/tmp/sp\"\nspool_max = 2097152\nflush_timeout = 2.5\n",
        )
        .unwrap();
        assert_eq!(c.outputs.len(), 2);
        assert_eq!(c.fanout.spool, Some(PathBuf::from("/tmp/sp")));
        assert_eq!(c.fanout.spool_max, 2 << 20);
        assert_eq!(c.fanout.flush_timeout, Duration::from_millis(2500));
        let e = from(&["-r", "x.pcap"], "when_full = \"sometimes\"\n").unwrap_err();
        assert!(e.to_string().contains(":1:"), "{e}");
        assert!(from(&["-r", "x.pcap", "--output", "gopher://x"], "").is_err());
        assert!(from(&["-r", "x.pcap", "--spool-max", "12Q"], "").is_err());
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let text = "threads = 2\n\n[hours]\ntimezone = \"Mars/Olympus\"\n";
        let e = from(&["-r", "x"], text).unwrap_err();
        assert!(e.starts_with("t.toml:4: "), "{e}");
        let text = "[[policy]]\nname = \"ci\"\ncategories = [\"cloud-storage\"]\nallow = [\n  \"10.99.9.0/24\",\n  \"10.300.0.0/8\",\n]\n";
        let e = from(&["-r", "x"], text).unwrap_err();
        assert!(e.starts_with("t.toml:6: "), "{e}");
        let e = from(&["-r", "x"], "[alerts]\nwindow = \"soon\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:2: "), "{e}");
        // Unknown keys and TOML syntax errors carry the line too.
        let e = from(&["-r", "x"], "threads = 2\nthreds = 3\n").unwrap_err();
        assert!(e.starts_with("t.toml:2: "), "{e}");
        let e = from(&["-r", "x"], "threads = 2\n[hours\n").unwrap_err();
        assert!(e.starts_with("t.toml:2: "), "{e}");
        let e = from(
            &["-r", "x"],
            "[[policy]]\nname = \"p\"\ncategories = [\"clod-storage\"]\nallow = []\n",
        )
        .unwrap_err();
        assert!(e.starts_with("t.toml:3: "), "{e}");
    }

    #[test]
    fn full_example_settles() {
        let text = r#"
signatures = "signatures"
types = "alert,flow"
home_net = ["10.0.0.0/8"]
[alerts]
window = "30m"
[[alerts.threshold]]
signature_id = 9190001
type = "limit"
track = "by_src"
count = 1
seconds = 3600
[[alerts.suppress]]
signature_id = 9100001
track = "by_src"
ip = ["10.99.0.0/24"]
[hours]
timezone = "Europe/Berlin"
start = "08:00"
end = "18:00"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
holidays = ["2026-12-25"]
[burst]
count = 4
window = "5m"
[upload]
bytes = 1000000
[[policy]]
name = "cloud storage only from CI"
categories = ["cloud-storage"]
allow = ["10.99.9.0/24"]
"#;
        let c = from(&["-r", "x"], text).unwrap();
        assert_eq!(c.stage.window_ns, 1_800_000_000_000);
        assert_eq!(c.stage.thresholds.len(), 1);
        assert_eq!(c.stage.suppress.len(), 1);
        assert_eq!(c.stage.burst.count, 4);
        assert_eq!(c.stage.upload.bytes, 1_000_000);
        assert_eq!(c.stage.policies[0].name, "cloud storage only from CI");
        assert!(c.run.types.flow);
        assert_eq!(c.signatures.as_deref(), Some(Path::new("signatures")));
        assert_eq!(c.stage.home_net.len(), 1);
    }

    #[test]
    fn live_capture_keys() {
        let text = "interface = [\"eth1\", \"eth2\"]\ncapture = \"pcap\"\nbpf = \"not port 22\"\nsnaplen = 1600\npromisc = false\nbuffer_size = 16\nuser = \"cloudtap\"\nshutdown_timeout = 3.5\n";
        let c = from(&[], text).unwrap();
        let l = c.live.expect("live");
        assert_eq!(l.interfaces, ["eth1", "eth2"]);
        assert_eq!(l.backend, Backend::Pcap);
        assert_eq!(l.bpf.as_deref(), Some("not port 22"));
        assert_eq!((l.snaplen, l.promisc, l.buffer_mb), (1600, false, 16));
        assert_eq!(c.user.as_deref(), Some("cloudtap"));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(3500));
        // The command line wins.
        let c = from(&["-i", "eth9", "--capture", "afpacket", "--promisc"], text).unwrap();
        let l = c.live.unwrap();
        assert_eq!(
            (l.interfaces, l.backend, l.promisc),
            (vec!["eth9".to_string()], Backend::AfPacket, true)
        );
        let e = from(&[], "interface = [\"eth1\"]\ncapture = \"netmap\"\n").unwrap_err();
        assert!(e.starts_with("t.toml:2:"), "{e}");
        let e = from(&["-r", "x.pcap", "-i", "eth1"], "").unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = from(&["-i", "eth1", "--snaplen", "10"], "").unwrap_err();
        assert!(e.contains("--snaplen"), "{e}");
    }
}
