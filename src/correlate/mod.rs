//! Detection stage (issue 11): after the workers, state per host and over time.
//!
//! Workers keep per-flow matching and send this stage small observations (a record that
//! matched something, with its hits) and flow-end summaries of flows that sent enough to
//! matter. The stage turns them into the playbook's detections:
//! - an alert-tier signature (a tunnel, a raw paste, a file drop, a bot API) alerts alone;
//! - a context match (a label-tier web service: SaaS, storage, a provider's address range)
//!   alerts only when a joining signal comes with it: a script agent, a first use by this
//!   host, an hour that is odd for this host;
//! - a first use by the whole organisation, a use from a source the policy does not allow,
//!   a large upload and a burst of consoles or new services alert alone;
//! - outside business hours, an alert's severity goes up (the hour alone never alerts).
//!
//! Alerts are per (source host, detection, service) per window: repeats are counted into
//! the open window, and the alert is written when the window closes (or at the end of the
//! input) with how many times it was seen, first and last. Every table has a cap, an
//! eviction rule and a counter (`StageStats`).

mod triage;

use crate::baseline::{Baseline, BaselineOpts, Use};
use crate::detect::{Action, Field, PackInfo, Signature};
use crate::extract::Record;
use crate::output::{AlertInfo, Event, Meta};
use crate::wire::{in_any, Cidr};
use chrono::{Datelike, Offset, TimeZone, Timelike};
use rustc_hash::FxHashMap;
use serde_json::json;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Detection ids of the stage's own detections (a listed endpoint keeps its signature's id).
pub const SID_SCRIPT_WEB: u32 = 9_190_001;
pub const SID_CONTEXT_SIGNAL: u32 = 9_190_002;
pub const SID_FIRST_USE_ORG: u32 = 9_190_003;
pub const SID_UNAUTHORISED: u32 = 9_190_004;
pub const SID_UPLOAD: u32 = 9_190_005;
pub const SID_BURST: u32 = 9_190_006;
pub const SID_HIDDEN_DNS: u32 = 9_190_007;
/// The baseline's pseudo-service for "this host sends plain DNS to port 53" (hidden DNS).
pub const LOCAL_DNS: &str = "(local DNS resolver)";
/// Hosts remembered as plain-DNS users, and (host, resolver) first uses, without a
/// baseline (each cleared when full; counted in `hidden_dns_resets`).
const MAX_DNS_HOSTS: usize = 65_536;

/// Open alert windows kept at once; at the cap the oldest is written early (counted).
pub const MAX_OPEN_ALERTS: usize = 65_536;
/// Hosts with a burst window, and entries per host window.
pub const MAX_BURST_HOSTS: usize = 65_536;
const MAX_BURST_ITEMS: usize = 64;
/// Threshold-rule trackers kept at once; at the cap all are reset (counted).
pub const MAX_TRACKERS: usize = 65_536;
/// An upload-heavy flow is routine when the host made this many to the same service in the
/// two hours before it: a CI runner pushing every ten minutes alerts in its first hour only.
const ROUTINE_UPLOADS: usize = 3;
const ROUTINE_NS: u64 = 2 * 3_600_000_000_000;
/// (host, service) pairs with an upload history; at the cap one is evicted (counted).
pub const MAX_UPLOAD_KEYS: usize = 65_536;
/// Evidence lists inside one alert (names, addresses, agents).
const MAX_EVIDENCE: usize = 16;

#[derive(Debug, Clone)]
pub struct Hours {
    pub tz: chrono_tz::Tz,
    pub start_min: u32,
    pub end_min: u32,
    /// Bit 0 Monday .. bit 6 Sunday.
    pub weekdays: u8,
    pub holidays: Vec<chrono::NaiveDate>,
}

impl Hours {
    /// Default business hours: 07:00-19:00, Monday to Friday, in the sensor's own time zone
    /// (`TZ`, else the `/etc/localtime` link, else UTC): a sensor runs where it watches.
    pub fn default_local() -> Hours {
        Hours {
            tz: local_tz(),
            start_min: 7 * 60,
            end_min: 19 * 60,
            weekdays: 0b1_1111,
            holidays: Vec::new(),
        }
    }

    /// Local time of `ts_ns`, and whether it is inside business hours.
    pub fn local(&self, ts_ns: u64) -> (chrono::DateTime<chrono_tz::Tz>, bool) {
        let secs = (ts_ns / 1_000_000_000) as i64;
        let t = self
            .tz
            .timestamp_opt(secs, 0)
            .single()
            .unwrap_or_else(|| self.tz.timestamp_opt(0, 0).unwrap());
        let day = t.weekday().num_days_from_monday();
        let min = t.hour() * 60 + t.minute();
        let inside = self.weekdays & (1 << day) != 0
            && !self.holidays.contains(&t.date_naive())
            && min >= self.start_min
            && min < self.end_min;
        (t, inside)
    }
}

/// The machine's IANA time zone, or UTC when it cannot be told.
pub fn local_tz() -> chrono_tz::Tz {
    let from_env = std::env::var("TZ")
        .ok()
        .map(|t| t.trim_start_matches(':').to_string());
    let from_link = || {
        std::fs::read_link("/etc/localtime").ok().and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })
    };
    let from_file = || {
        std::fs::read_to_string("/etc/timezone")
            .ok()
            .map(|s| s.trim().to_string())
    };
    [from_env, from_link(), from_file()]
        .into_iter()
        .flatten()
        .find_map(|z| z.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub categories: Vec<String>,
    pub services: Vec<String>,
    pub allow: Vec<Cidr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdType {
    Limit,
    Threshold,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByRule,
}

/// A threshold.config-style rule: `sid` 0 is every detection.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub sid: u32,
    pub kind: ThresholdType,
    pub track: Track,
    pub count: u64,
    pub seconds: u64,
}

/// A suppress rule: `sid` 0 is every detection; no track suppresses it everywhere.
#[derive(Debug, Clone)]
pub struct Suppress {
    pub sid: u32,
    pub track: Option<Track>,
    pub ips: Vec<Cidr>,
}

#[derive(Debug, Clone, Copy)]
pub struct BurstCfg {
    pub count: usize,
    pub window_ns: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct UploadCfg {
    pub bytes: u64,
    pub ratio: f64,
    pub min_bytes: u64,
    /// An upload this large to a context service alerts with no other signal.
    pub alone_bytes: u64,
}

impl Default for UploadCfg {
    fn default() -> Self {
        UploadCfg {
            bytes: 5_000_000,
            ratio: 20.0,
            min_bytes: 1_000_000,
            alone_bytes: 50_000_000,
        }
    }
}

impl UploadCfg {
    /// The least a flow must send for its end to reach the stage.
    pub fn floor(&self) -> u64 {
        self.bytes.min(self.min_bytes)
    }
    fn heavy(&self, up: u64, down: u64) -> bool {
        up >= self.bytes || (up >= self.min_bytes && up as f64 >= self.ratio * down.max(1) as f64)
    }
}

#[derive(Debug, Clone)]
pub struct StageCfg {
    pub window_ns: u64,
    pub state: Option<PathBuf>,
    pub learning_ns: u64,
    pub max_age_ns: u64,
    pub max_hosts: usize,
    pub max_services: usize,
    pub max_services_per_host: usize,
    /// Internal networks: the side of a flow in them is the host alerts are about.
    pub home_net: Vec<Cidr>,
    pub hours: Option<Hours>,
    pub burst: BurstCfg,
    pub upload: UploadCfg,
    pub policies: Vec<Policy>,
    pub thresholds: Vec<Threshold>,
    pub suppress: Vec<Suppress>,
}

impl Default for StageCfg {
    fn default() -> Self {
        let o = BaselineOpts::default();
        StageCfg {
            window_ns: crate::config::DEFAULT_WINDOW_NS,
            state: None,
            learning_ns: crate::config::DEFAULT_LEARNING_NS,
            max_age_ns: o.max_age_ns,
            max_hosts: o.max_hosts,
            max_services: o.max_services,
            max_services_per_host: o.max_services_per_host,
            home_net: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
            hours: Some(Hours::default_local()),
            burst: BurstCfg {
                count: 5,
                window_ns: 600_000_000_000,
            },
            upload: UploadCfg::default(),
            policies: Vec::new(),
            thresholds: Vec::new(),
            suppress: Vec::new(),
        }
    }
}

pub use crate::detect::{FlowContext, SeenHit as ObsHit};

/// A record that matched at least one signature (either tier).
#[derive(Debug)]
pub struct Observation {
    pub meta: Meta,
    /// When the reader took the packet's batch (capture-to-alert latency).
    pub born: Option<std::time::Instant>,
    /// `None` for a flow's address check (no record), and for a plain DNS query sent only so
    /// the stage knows the host uses the local resolver.
    pub record: Option<Arc<Record>>,
    pub hits: Vec<ObsHit>,
    pub labels: Arc<Vec<String>>,
}

/// A flow that ended having sent at least `UploadCfg::floor` bytes from its client.
#[derive(Debug)]
pub struct FlowEnd {
    /// Client to server.
    pub meta: Meta,
    pub born: Option<std::time::Instant>,
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub ctx: Option<Box<FlowContext>>,
}

pub use crate::stats::StageStats;

const S_LISTED: u16 = 1;
const S_SCRIPT: u16 = 1 << 1;
const S_FIRST_ORG: u16 = 1 << 2;
const S_FIRST_HOST: u16 = 1 << 3;
const S_ODD_HOST: u16 = 1 << 4;
const S_OFF_HOURS: u16 = 1 << 5;
const S_UNAUTHORISED: u16 = 1 << 6;
const S_UPLOAD: u16 = 1 << 7;
const S_BURST: u16 = 1 << 8;
const S_HIDDEN_DNS: u16 = 1 << 9;
const SIGNAL_NAMES: [(u16, &str, u8); 10] = [
    (S_LISTED, "listed-endpoint", 0),
    (S_SCRIPT, "script-agent", 1),
    (S_FIRST_ORG, "first-use-org", 2),
    (S_FIRST_HOST, "first-use-host", 1),
    (S_ODD_HOST, "odd-hour-for-host", 1),
    (S_OFF_HOURS, "off-business-hours", 0),
    (S_UNAUTHORISED, "unauthorised-source", 2),
    (S_UPLOAD, "upload-volume", 2),
    (S_BURST, "burst", 2),
    (S_HIDDEN_DNS, "hidden-dns", 1),
];

/// Severity from the signals (README: "Severity that adds up"): points per signal, plus the
/// listed signature's own weight (severity 1 = 3 points, 2 = 2, 3 = 1); 4 points or more is
/// severity 1 (high), 2-3 is 2, less is 3; outside business hours one level higher
/// (`severity`).
fn score(signals: u16, listed_severity: Option<u8>) -> u8 {
    let mut p = listed_severity.map_or(0, |s| 4u8.saturating_sub(s.clamp(1, 3)));
    for (bit, _, w) in SIGNAL_NAMES {
        if signals & bit != 0 {
            p += w;
        }
    }
    p
}

fn severity_of(points: u8) -> u8 {
    match points {
        4.. => 1,
        2..=3 => 2,
        _ => 3,
    }
}

/// The alert's severity: from the points, one level higher (a lower number) off hours.
fn severity(points: u8, signals: u16) -> u8 {
    let s = severity_of(points);
    if signals & S_OFF_HOURS != 0 {
        (s - 1).max(1)
    } else {
        s
    }
}

fn signal_names(signals: u16) -> Vec<&'static str> {
    SIGNAL_NAMES
        .iter()
        .filter(|(b, _, _)| signals & b != 0)
        .map(|(_, n, _)| *n)
        .collect()
}

type Key = (IpAddr, &'static str, Arc<str>);

struct Open {
    detection: &'static str,
    sid: u32,
    service: Arc<str>,
    category: Option<String>,
    first_ns: u64,
    last_ns: u64,
    count: u64,
    signals: u16,
    points: u8,
    meta: Meta,
    record: Option<Arc<Record>>,
    alert: AlertInfo,
    labels: Arc<Vec<String>>,
    names: Vec<String>,
    dests: Vec<IpAddr>,
    agents: Vec<String>,
    bytes: Option<(u64, u64)>,
    policy: Option<String>,
    burst: Vec<String>,
    local_time: Option<String>,
    born: Option<std::time::Instant>,
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_EVIDENCE && !v.contains(&x) {
        v.push(x);
    }
}

/// The stage: owns the baseline, the open alert windows, the burst windows and the
/// threshold trackers.
pub struct Stage {
    cfg: StageCfg,
    baseline: Option<Baseline>,
    sigs: FxHashMap<u32, Arc<Signature>>,
    open: FxHashMap<Key, Open>,
    order: VecDeque<(u64, Key)>,
    /// Windows already written, with the packet time they ended: a sighting that arrives
    /// late (a flow that ended long after it started, another worker behind) and falls in
    /// one is a repeat, not a new alert.
    closed: FxHashMap<Key, u64>,
    bursts: FxHashMap<IpAddr, VecDeque<(u64, Arc<str>)>>,
    /// Recent upload-heavy flows per (host, service): routine automation (a CI runner
    /// pushing to its bucket every ten minutes) is told apart from a one-off upload.
    uploads: FxHashMap<(IpAddr, Arc<str>), VecDeque<u64>>,
    /// First uses (by the host or the organisation) in the last hour, for the flows that
    /// carry them: an upload to a service the host just started using.
    fresh: FxHashMap<(IpAddr, Arc<str>), u64>,
    trackers: FxHashMap<(u32, Track, Option<IpAddr>), (u64, u64)>,
    /// Hosts seen using the local resolver in this run (with or without a baseline).
    local_dns: FxHashMap<IpAddr, u64>,
    /// (host, encrypted resolver) already seen in this run, without a baseline.
    hidden_seen: rustc_hash::FxHashSet<(IpAddr, Arc<str>)>,
    now_ns: u64,
    last_save: std::time::Instant,
    pub stats: StageStats,
    out: Vec<Event>,
}

fn detection_sig(sid: u32) -> Signature {
    let (msg, sev) = match sid {
        SID_SCRIPT_WEB => ("CLOUDTAP Script agent reached a web service", 2),
        SID_CONTEXT_SIGNAL => (
            "CLOUDTAP Web service use with a joining signal (first use by this host or an hour odd for it)",
            3,
        ),
        SID_FIRST_USE_ORG => (
            "CLOUDTAP Web service used for the first time in the organisation",
            2,
        ),
        SID_UNAUTHORISED => ("CLOUDTAP Web service used from an unauthorised source", 2),
        SID_UPLOAD => ("CLOUDTAP Large upload to a web service", 2),
        SID_HIDDEN_DNS => (
            "CLOUDTAP Host switched from the local resolver to encrypted DNS (DoH/DoT/DoQ), hiding its lookups",
            3,
        ),
        _ => (
            "CLOUDTAP Burst of cloud console, sign-up or new web service contacts",
            2,
        ),
    };
    // Hidden DNS is command and control's cover (T1071.004) rather than staging; the alert
    // still carries T1583.006 like every cloudtap alert, the technique in `signals`.
    Signature {
        id: sid,
        rev: 1,
        msg: msg.into(),
        category: "Potentially Bad Traffic".into(),
        severity: sev,
        mitre_tactic_id: "TA0042".into(),
        mitre_tactic_name: "Resource_Development".into(),
        mitre_technique_id: "T1583.006".into(),
        mitre_technique_name: "Web_Services".into(),
        service: None,
        next_step: None,
        reference: Some("https://attack.mitre.org/techniques/T1583/006/".into()),
        service_category: None,
        rationale: None,
        confidence: None,
        action: Action::Alert,
        pack: Arc::new(PackInfo {
            name: "cloudtap-detections".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            file: "built in".into(),
            description: "the detection stage's own detections".into(),
            sources: Vec::new(),
        }),
    }
}

/// A public encrypted-DNS resolver (the dns-resolvers pack): its own detection, hidden DNS.
fn encrypted_dns(h: &ObsHit) -> bool {
    h.sig.service_category.as_deref() == Some("encrypted-dns")
}

/// Categories of staging infrastructure: a first use of one by the organisation alerts.
fn staging(category: Option<&str>) -> bool {
    matches!(
        category,
        Some(
            "tunnel"
                | "paste"
                | "file-drop"
                | "messaging-api"
                | "webhook"
                | "dynamic-dns"
                | "oast"
                | "cloud-storage"
                | "cloud-compute"
                | "app-hosting"
                | "code-hosting"
                | "cloud-drive"
                | "cloud-console"
        )
    )
}

/// The web service a record reached: the most specific name hit (a provider's catch-all
/// such as `AWS (generic)` only when nothing more specific matched), else an address range
/// other than a CDN's.
pub fn primary_web(hits: &[ObsHit]) -> Option<&ObsHit> {
    let rank = |h: &ObsHit| -> u8 {
        if h.field == Field::IpDst {
            0
        } else if h
            .sig
            .service
            .as_deref()
            .is_some_and(|s| s.contains("(generic)"))
        {
            1
        } else {
            2
        }
    };
    let mut best: Option<&ObsHit> = None;
    for h in hits.iter().filter(|h| !agent_hit(h)) {
        if h.field == Field::IpDst && h.label.as_deref().is_some_and(is_cdn_label) {
            continue;
        }
        if best.is_none_or(|b| rank(h) > rank(b)) {
            best = Some(h);
        }
    }
    best
}

/// How an agent shows in the evidence: a user agent as sent, a fingerprint with what it
/// names and how sure the pack is.
fn agent_text(a: &ObsHit) -> String {
    match (a.field, &a.sig.service, &a.sig.confidence) {
        (Field::TlsJa3 | Field::TlsJa4, Some(s), Some(c)) => {
            format!("{} {} ({s}, {c} confidence)", a.field.name(), a.value)
        }
        _ => a.value.clone(),
    }
}

/// An agent hit: a script user agent or a script TLS fingerprint.
fn agent_hit(h: &ObsHit) -> bool {
    h.is_agent()
}

/// Provider ranges of content-delivery networks front most of the web: a script reaching
/// one is not reaching a web service anyone staged.
fn is_cdn_label(label: &str) -> bool {
    let l = label.as_bytes();
    [
        &b"cloudflare"[..],
        b"fastly",
        b"cloudfront",
        b"akamai",
        b"github",
    ]
    .iter()
    .any(|c| l.windows(c.len()).any(|w| w.eq_ignore_ascii_case(c)))
}

/// The service name an entry stands for (baseline key, alert key).
fn service_of(h: &ObsHit) -> Arc<str> {
    if let Some(l) = &h.label {
        return l.as_str().into();
    }
    h.sig
        .service
        .clone()
        .unwrap_or_else(|| h.sig.msg.clone())
        .into()
}

impl Stage {
    /// Opens the stage; with `--state`, the baseline (a corrupt file is set aside, logged).
    pub fn new(cfg: StageCfg) -> Result<(Stage, Vec<String>), String> {
        let mut log = Vec::new();
        let baseline = match &cfg.state {
            None => None,
            Some(dir) => {
                let opts = BaselineOpts {
                    learning_ns: cfg.learning_ns,
                    max_age_ns: cfg.max_age_ns,
                    max_hosts: cfg.max_hosts,
                    max_services_per_host: cfg.max_services_per_host,
                    max_services: cfg.max_services,
                    ..BaselineOpts::default()
                };
                let (b, rep) = Baseline::open(dir, opts)
                    .map_err(|e| format!("--state {}: {e}", dir.display()))?;
                if let Some((path, why)) = &rep.set_aside {
                    log.push(format!(
                        "the baseline in {} was unreadable ({why}); it was set aside as {} and a fresh state starts",
                        dir.display(),
                        path.display()
                    ));
                } else if rep.fresh {
                    log.push(format!(
                        "new baseline in {}: learning for {} s of packet time",
                        dir.display(),
                        cfg.learning_ns / 1_000_000_000
                    ));
                }
                Some(b)
            }
        };
        Ok((Stage::with_baseline(cfg, baseline), log))
    }

    fn with_baseline(cfg: StageCfg, baseline: Option<Baseline>) -> Stage {
        let sigs = [
            SID_SCRIPT_WEB,
            SID_CONTEXT_SIGNAL,
            SID_FIRST_USE_ORG,
            SID_UNAUTHORISED,
            SID_UPLOAD,
            SID_BURST,
            SID_HIDDEN_DNS,
        ]
        .into_iter()
        .map(|s| (s, Arc::new(detection_sig(s))))
        .collect();
        Stage {
            cfg,
            baseline,
            sigs,
            open: FxHashMap::default(),
            order: VecDeque::new(),
            closed: FxHashMap::default(),
            bursts: FxHashMap::default(),
            uploads: FxHashMap::default(),
            fresh: FxHashMap::default(),
            trackers: FxHashMap::default(),
            local_dns: FxHashMap::default(),
            hidden_seen: Default::default(),
            now_ns: 0,
            last_save: std::time::Instant::now(),
            stats: StageStats::default(),
            out: Vec::new(),
        }
    }

    /// A stage without a baseline (first-use and host-hour signals off), whatever
    /// `cfg.state` says.
    pub fn without_state(mut cfg: StageCfg) -> Stage {
        cfg.state = None;
        Stage::with_baseline(cfg, None)
    }

    /// Alerts ready to be written.
    pub fn drain(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.out)
    }

    /// The host an event is about: the internal side (the client when both or neither are).
    fn host_of(&self, client: IpAddr, server: IpAddr) -> IpAddr {
        let home = &self.cfg.home_net;
        if !in_any(home, client) && in_any(home, server) {
            server
        } else {
            client
        }
    }

    fn hour_of_week(&self, ts_ns: u64) -> u8 {
        match &self.cfg.hours {
            Some(h) => {
                let (t, _) = h.local(ts_ns);
                (t.weekday().num_days_from_monday() * 24 + t.hour()) as u8
            }
            None => {
                let s = ts_ns / 1_000_000_000;
                // 1970-01-01 was a Thursday (day 3 counted from Monday).
                (((s / 86_400 + 3) % 7) * 24 + (s / 3600) % 24) as u8
            }
        }
    }

    /// Off-hours signal and the local time to show, if business hours are configured.
    fn off_hours(&self, ts_ns: u64) -> (u16, Option<String>) {
        match &self.cfg.hours {
            None => (0, None),
            Some(h) => {
                let (t, inside) = h.local(ts_ns);
                let off = t.offset().fix().local_minus_utc();
                let s = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}{:02} {}",
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                    if off < 0 { '-' } else { '+' },
                    off.abs() / 3600,
                    off.abs() % 3600 / 60,
                    t.weekday()
                );
                (if inside { 0 } else { S_OFF_HOURS }, Some(s))
            }
        }
    }

    fn policy_for(&self, host: IpAddr, service: &str, category: Option<&str>) -> Option<String> {
        self.cfg
            .policies
            .iter()
            .find(|p| {
                let covers = p.services.iter().any(|s| s.eq_ignore_ascii_case(service))
                    || category.is_some_and(|c| p.categories.iter().any(|x| x == c));
                covers && !in_any(&p.allow, host)
            })
            .map(|p| p.name.clone())
    }

    /// Moves the stage's clock to `now_ns` (a live capture's wall clock on a quiet link),
    /// closing the windows that ended by then.
    pub fn tick(&mut self, now_ns: u64) {
        self.advance(now_ns);
    }

    fn advance(&mut self, ts: u64) {
        if ts > self.now_ns {
            self.now_ns = ts;
            self.expire(false);
        }
    }

    /// A record that matched something.
    pub fn observe(&mut self, o: Observation) {
        self.stats.observations += 1;
        let ts = o.meta.ts_ns;
        self.advance(ts);
        let (client, server) = if o.meta.to_server {
            (o.meta.src, o.meta.dst)
        } else {
            (o.meta.dst, o.meta.src)
        };
        let host = self.host_of(client, server);
        let how = self.hour_of_week(ts);
        let odd = match &mut self.baseline {
            Some(b) => {
                let odd = !b.learning(ts) && b.odd_hour(host, how);
                b.note_activity(host, how, ts);
                odd
            }
            None => false,
        };
        if let Some(Record::Dns(m)) = o.record.as_deref() {
            if !m.is_response() && o.meta.dport == 53 {
                self.note_local_dns(host, ts);
            }
        }
        self.hidden_dns(host, &o);
        let agent: Option<&ObsHit> = o.hits.iter().find(|h| agent_hit(h));
        // The web service of this record: the most specific name hit, else an address range
        // (a CDN's range only when nothing better is known).
        let web = primary_web(&o.hits);
        // Every listed (alert-tier) name alerts on its own, even beside a more specific
        // context name.
        // One alert-tier hit per (field, value): the most specific (hits come most specific
        // first), as in per-flow mode.
        let mut webs: Vec<&ObsHit> = Vec::new();
        for h in o
            .hits
            .iter()
            .filter(|h| !agent_hit(h) && h.sig.action == Action::Alert)
        {
            if !webs
                .iter()
                .any(|w| w.field == h.field && w.value == h.value)
            {
                webs.push(h);
            }
        }
        if let Some(w) = web.filter(|w| !encrypted_dns(w)) {
            if !webs.iter().any(|x| std::ptr::eq(*x, w)) {
                webs.push(w);
            }
        }
        if webs.is_empty() {
            // An agent alone (a script reaching something that is no web service) is context.
            self.stats.context_only += 1;
            return;
        }
        let (off, local) = self.off_hours(ts);
        for w in webs {
            let service = service_of(w);
            let category = w.sig.service_category.clone();
            let mut signals = off;
            if w.sig.action == Action::Alert {
                signals |= S_LISTED;
            }
            if let Some(a) = agent {
                // Library fingerprints (Python, Go, curl/OpenSSL) collide with ordinary
                // software using the same TLS library: only a fingerprint the pack rates
                // `high` joins as a signal; the others are evidence only.
                let weak = matches!(a.field, Field::TlsJa3 | Field::TlsJa4)
                    && a.sig.confidence.as_deref() != Some("high");
                if !weak {
                    signals |= S_SCRIPT;
                }
            }
            if odd {
                signals |= S_ODD_HOST;
            }
            if let Some(b) = &mut self.baseline {
                match b.observe(host, &service, ts) {
                    // A first use by the organisation alerts on its own for staging
                    // infrastructure (storage, hosting, tunnels, ...); for the broad
                    // catalogues (SaaS, social, ad/CDN, shorteners, address ranges that
                    // long-tail sites sit in) it is context like a host's first use.
                    Use::NewForOrg if staging(category.as_deref()) => signals |= S_FIRST_ORG,
                    Use::NewForOrg | Use::NewForHost => signals |= S_FIRST_HOST,
                    Use::Learning => self.stats.learning_first_uses += 1,
                    Use::Known => {}
                }
            }
            if signals & (S_FIRST_ORG | S_FIRST_HOST) != 0 {
                if self.fresh.len() >= MAX_UPLOAD_KEYS {
                    self.fresh.clear();
                    self.stats.fresh_reset += 1;
                }
                self.fresh.insert((host, service.clone()), ts);
            }
            let policy = self.policy_for(host, &service, category.as_deref());
            if policy.is_some() {
                signals |= S_UNAUTHORISED;
            }
            // Burst items: consoles and sign-ups, and first uses of staging infrastructure
            // (a first visit to a popular SaaS or a long-tail site is no account creation).
            let first = signals & (S_FIRST_ORG | S_FIRST_HOST) != 0;
            if category.as_deref() == Some("cloud-console")
                || (first && staging(category.as_deref()))
            {
                self.burst_item(host, &service, ts, &o, w);
            }
            let sid = if signals & S_LISTED != 0 {
                w.sig.id
            } else if signals & S_UNAUTHORISED != 0 {
                SID_UNAUTHORISED
            } else if signals & S_FIRST_ORG != 0 {
                SID_FIRST_USE_ORG
            } else if signals & S_SCRIPT != 0 {
                SID_SCRIPT_WEB
            } else if signals & S_ODD_HOST != 0 {
                // A host's first use of a service others already use is context: it
                // alerts only with another signal (here: an hour odd for this host).
                SID_CONTEXT_SIGNAL
            } else {
                self.stats.context_only += 1;
                continue;
            };
            let detection = match sid {
                SID_UNAUTHORISED => "unauthorised-source",
                SID_FIRST_USE_ORG => "first-use-org",
                SID_SCRIPT_WEB => "script-agent-web-service",
                SID_CONTEXT_SIGNAL => "context-with-signal",
                _ => "listed-endpoint",
            };
            let sig = if signals & S_LISTED != 0 {
                w.sig.clone()
            } else {
                self.sigs[&sid].clone()
            };
            let listed_sev = (signals & S_LISTED != 0).then_some(w.sig.severity);
            let alert = AlertInfo {
                sig,
                field: w.field,
                value: w.value.clone(),
                pattern: w.pattern.clone(),
            };
            let ev = Sighting {
                host,
                sid,
                detection,
                service,
                category,
                signals,
                points: score(signals, listed_sev),
                meta: &o.meta,
                record: o.record.clone(),
                alert,
                labels: o.labels.clone(),
                name: (w.field != Field::IpDst).then(|| w.value.clone()),
                dest: server,
                agent: agent.map(agent_text),
                bytes: None,
                policy,
                burst: Vec::new(),
                local_time: local.clone(),
                born: o.born,
            };
            self.sighting(ev);
        }
    }

    /// Notes that a host sends plain DNS to port 53 (it uses the local resolver).
    fn note_local_dns(&mut self, host: IpAddr, ts: u64) {
        if self.local_dns.len() >= MAX_DNS_HOSTS && !self.local_dns.contains_key(&host) {
            self.local_dns.clear();
            self.stats.hidden_dns_resets += 1;
        }
        self.local_dns.insert(host, ts);
        if let Some(b) = &mut self.baseline {
            b.observe(host, LOCAL_DNS, ts);
        }
    }

    /// Hidden DNS: a host that uses the local resolver (seen in this run, or in the
    /// baseline) reaches an encrypted resolver (DoH/DoT/DoQ, by name in TLS/QUIC or by
    /// address on any port but 53) for the first time: its lookups are now invisible to the
    /// sensor and to the resolver's logs. Resolving the resolver's name is not use of it.
    fn hidden_dns(&mut self, host: IpAddr, o: &Observation) {
        let Some(h) = o.hits.iter().find(|h| {
            encrypted_dns(h)
                && !matches!(h.field, Field::DnsQuery | Field::DnsAnswer)
                && !(h.field == Field::IpDst && o.meta.dport == 53)
        }) else {
            return;
        };
        let ts = o.meta.ts_ns;
        let service = service_of(h);
        let uses_local = self.local_dns.contains_key(&host)
            || self
                .baseline
                .as_ref()
                .is_some_and(|b| b.host_uses(host, LOCAL_DNS));
        let first = match &mut self.baseline {
            Some(b) => matches!(
                b.observe(host, &service, ts),
                Use::NewForHost | Use::NewForOrg
            ),
            None => {
                if self.hidden_seen.len() >= MAX_DNS_HOSTS {
                    self.hidden_seen.clear();
                    self.stats.hidden_dns_resets += 1;
                }
                self.hidden_seen.insert((host, service.clone()))
            }
        };
        if !(uses_local && first) {
            return;
        }
        let (off, local) = self.off_hours(ts);
        let signals = off | S_HIDDEN_DNS | S_FIRST_HOST;
        let server = if o.meta.to_server {
            o.meta.dst
        } else {
            o.meta.src
        };
        let ev = Sighting {
            host,
            sid: SID_HIDDEN_DNS,
            detection: "hidden-dns",
            service: service.clone(),
            category: h.sig.service_category.clone(),
            signals,
            points: score(signals, None),
            meta: &o.meta,
            record: o.record.clone(),
            alert: AlertInfo {
                sig: self.sigs[&SID_HIDDEN_DNS].clone(),
                field: h.field,
                value: h.value.clone(),
                pattern: h.pattern.clone(),
            },
            labels: o.labels.clone(),
            name: (h.field != Field::IpDst).then(|| h.value.clone()),
            dest: server,
            agent: None,
            bytes: None,
            policy: None,
            burst: Vec::new(),
            local_time: local,
            born: o.born,
        };
        self.sighting(ev);
    }

    fn burst_item(
        &mut self,
        host: IpAddr,
        service: &Arc<str>,
        ts: u64,
        o: &Observation,
        w: &ObsHit,
    ) {
        if !self.bursts.contains_key(&host) && self.bursts.len() >= MAX_BURST_HOSTS {
            // Evict an arbitrary host's window (counted): bounded memory under a flood of
            // sources.
            if let Some(k) = self.bursts.keys().next().copied() {
                self.bursts.remove(&k);
                self.stats.burst_hosts_evicted += 1;
            }
        }
        let win = self.cfg.burst.window_ns;
        let q = self.bursts.entry(host).or_default();
        while q.front().is_some_and(|(t, _)| t + win < ts) {
            q.pop_front();
        }
        if q.iter().any(|(_, s)| s == service) {
            return;
        }
        if q.len() >= MAX_BURST_ITEMS {
            q.pop_front();
        }
        q.push_back((ts, service.clone()));
        if q.len() < self.cfg.burst.count {
            return;
        }
        let items: Vec<String> = q.drain(..).map(|(_, s)| s.to_string()).collect();
        let (off, local) = self.off_hours(ts);
        let signals = S_BURST | off;
        let server = if o.meta.to_server {
            o.meta.dst
        } else {
            o.meta.src
        };
        let ev = Sighting {
            host,
            sid: SID_BURST,
            detection: "burst",
            service: "cloud consoles and new web services".into(),
            category: None,
            signals,
            points: score(signals, None),
            meta: &o.meta,
            record: o.record.clone(),
            alert: AlertInfo {
                sig: self.sigs[&SID_BURST].clone(),
                field: w.field,
                value: w.value.clone(),
                pattern: w.pattern.clone(),
            },
            labels: o.labels.clone(),
            name: None,
            dest: server,
            agent: None,
            bytes: None,
            policy: None,
            burst: items,
            local_time: local,
            born: o.born,
        };
        self.sighting(ev);
    }

    /// A flow that sent at least `UploadCfg::floor` bytes ended.
    pub fn flow_end(&mut self, f: FlowEnd) {
        self.stats.flow_ends += 1;
        self.advance(f.last_ns);
        if !self.cfg.upload.heavy(f.bytes_toserver, f.bytes_toclient) {
            return;
        }
        let Some(ctx) = f.ctx.as_deref() else {
            return;
        };
        let Some(w) = &ctx.web else { return };
        let host = self.host_of(f.meta.src, f.meta.dst);
        let service = service_of(w);
        let category = w.sig.service_category.clone();
        if self.routine_upload(host, &service, f.first_ns) {
            self.stats.uploads_routine += 1;
            return;
        }
        let (mut off, local) = self.off_hours(f.first_ns);
        let mut signals = S_UPLOAD;
        if w.sig.action == Action::Alert {
            signals |= S_LISTED;
        }
        if ctx.agent.is_some() {
            signals |= S_SCRIPT;
        }
        let policy = self.policy_for(host, &service, category.as_deref());
        if policy.is_some() {
            signals |= S_UNAUTHORISED;
        }
        let how = self.hour_of_week(f.first_ns);
        if let Some(b) = &self.baseline {
            if b.usual_hour(host, how) {
                // A host whose own hours include this one (a CI runner at night): the
                // business hours say nothing about it.
                off = 0;
            } else if !b.learning(f.first_ns) && b.odd_hour(host, how) {
                signals |= S_ODD_HOST;
            }
        }
        signals |= off;
        let fresh = self
            .fresh
            .get(&(host, service.clone()))
            .is_some_and(|t| f.first_ns.saturating_sub(*t) <= 3_600_000_000_000);
        if fresh {
            signals |= S_FIRST_HOST;
        }
        // An upload to a listed endpoint alerts; to a context service (SharePoint, Dropbox,
        // S3) only with another signal (off hours or an hour odd for the host, a script, a
        // policy breach, a service the host just started using) or when it is very large:
        // office work uploads documents all day.
        let joined = signals
            & (S_LISTED | S_SCRIPT | S_UNAUTHORISED | S_OFF_HOURS | S_ODD_HOST | S_FIRST_HOST)
            != 0;
        if !joined && f.bytes_toserver < self.cfg.upload.alone_bytes {
            self.stats.uploads_context += 1;
            return;
        }
        let mut points = score(signals, None);
        if f.bytes_toserver >= 4 * self.cfg.upload.bytes {
            points += 1;
        }
        let mut meta = f.meta.clone();
        meta.ts_ns = f.first_ns;
        let ev = Sighting {
            host,
            sid: SID_UPLOAD,
            detection: "upload-volume",
            service,
            category,
            signals,
            points,
            meta: &meta,
            record: None,
            alert: AlertInfo {
                sig: self.sigs[&SID_UPLOAD].clone(),
                field: w.field,
                value: w.value.clone(),
                pattern: w.pattern.clone(),
            },
            labels: Arc::new(Vec::new()),
            name: (w.field != Field::IpDst).then(|| w.value.clone()),
            dest: f.meta.dst,
            agent: ctx.agent.clone(),
            bytes: Some((f.bytes_toserver, f.bytes_toclient)),
            policy,
            burst: Vec::new(),
            local_time: local,
            born: f.born,
        };
        self.sighting(ev);
    }

    /// Records an upload-heavy flow and says whether it is routine: the host made at least
    /// `ROUTINE_UPLOADS` others to the same service in the `ROUTINE_NS` before it.
    fn routine_upload(&mut self, host: IpAddr, service: &Arc<str>, ts: u64) -> bool {
        let key = (host, service.clone());
        if !self.uploads.contains_key(&key) && self.uploads.len() >= MAX_UPLOAD_KEYS {
            if let Some(k) = self.uploads.keys().next().cloned() {
                self.uploads.remove(&k);
                self.stats.upload_keys_evicted += 1;
            }
        }
        let q = self.uploads.entry(key).or_default();
        let before = q
            .iter()
            .filter(|t| **t < ts && ts - **t <= ROUTINE_NS)
            .count();
        if q.len() >= 8 {
            q.pop_front();
        }
        q.push_back(ts);
        before >= ROUTINE_UPLOADS
    }

    fn suppressed(&self, sid: u32, host: IpAddr, dest: IpAddr) -> bool {
        self.cfg.suppress.iter().any(|s| {
            (s.sid == 0 || s.sid == sid)
                && match s.track {
                    None => s.ips.is_empty() || in_any(&s.ips, host),
                    Some(Track::BySrc) => in_any(&s.ips, host),
                    Some(Track::ByDst) => in_any(&s.ips, dest),
                    Some(Track::ByRule) => true,
                }
        })
    }

    fn sighting(&mut self, s: Sighting<'_>) {
        if self.suppressed(s.sid, s.host, s.dest) {
            self.stats.suppressed += 1;
            return;
        }
        let ts = s.meta.ts_ns;
        let key: Key = (s.host, s.detection, s.service.clone());
        if let Some(o) = self.open.get_mut(&key) {
            self.stats.repeats += 1;
            o.count += 1;
            o.first_ns = o.first_ns.min(ts);
            o.last_ns = o.last_ns.max(ts);
            o.signals |= s.signals;
            o.points = o.points.max(s.points);
            if let Some(n) = s.name {
                push_unique(&mut o.names, n);
            }
            push_unique(&mut o.dests, s.dest);
            if let Some(a) = s.agent {
                push_unique(&mut o.agents, a);
            }
            if let (Some((u, d)), Some((ou, od))) = (s.bytes, o.bytes.as_mut()) {
                *ou += u;
                *od += d;
            }
            if o.policy.is_none() {
                o.policy = s.policy;
            }
            return;
        }
        if self.closed.get(&key).is_some_and(|end| ts < *end) {
            self.stats.repeats += 1;
            self.stats.late_repeats += 1;
            return;
        }
        if self.open.len() >= MAX_OPEN_ALERTS {
            self.stats.open_flushed_early += 1;
            self.pop_oldest();
        }
        let mut names = Vec::new();
        if let Some(n) = s.name {
            names.push(n);
        }
        let open = Open {
            detection: s.detection,
            sid: s.sid,
            service: s.service,
            category: s.category,
            first_ns: ts,
            last_ns: ts,
            count: 1,
            signals: s.signals,
            points: s.points,
            meta: s.meta.clone(),
            record: s.record,
            alert: s.alert,
            labels: s.labels,
            names,
            dests: vec![s.dest],
            agents: s.agent.into_iter().collect(),
            bytes: s.bytes,
            policy: s.policy,
            burst: s.burst,
            local_time: s.local_time,
            born: s.born,
        };
        self.order.push_back((ts, key.clone()));
        self.open.insert(key, open);
    }

    fn pop_oldest(&mut self) {
        while let Some((_, k)) = self.order.pop_front() {
            if let Some(o) = self.open.remove(&k) {
                self.close(k, o);
                return;
            }
        }
    }

    /// Writes a window and remembers until when it covered its key.
    fn close(&mut self, k: Key, o: Open) {
        if self.closed.len() >= MAX_OPEN_ALERTS {
            // Forget the windows that ended (and those in the oldest half) first.
            let now = self.now_ns;
            self.closed.retain(|_, end| *end > now);
            if self.closed.len() >= MAX_OPEN_ALERTS {
                self.closed.clear();
                self.stats.closed_reset += 1;
            }
        }
        self.closed
            .insert(k.clone(), o.first_ns.saturating_add(self.cfg.window_ns));
        self.emit(k.0, o);
    }

    /// Writes the windows that have closed (all of them when `all`).
    fn expire(&mut self, all: bool) {
        let w = self.cfg.window_ns;
        while let Some((t, _)) = self.order.front() {
            if !all && t.saturating_add(w) > self.now_ns {
                break;
            }
            let Some((_, k)) = self.order.pop_front() else {
                break;
            };
            if let Some(o) = self.open.remove(&k) {
                self.close(k, o);
            }
        }
    }

    /// Threshold rules (threshold.config semantics, applied to whole windows).
    fn passes_thresholds(&mut self, host: IpAddr, o: &Open) -> bool {
        for i in 0..self.cfg.thresholds.len() {
            let t = self.cfg.thresholds[i].clone();
            if t.sid != 0 && t.sid != o.sid {
                continue;
            }
            if matches!(t.kind, ThresholdType::Threshold | ThresholdType::Both) && o.count < t.count
            {
                return false;
            }
            if matches!(t.kind, ThresholdType::Limit | ThresholdType::Both) {
                let who = match t.track {
                    Track::BySrc => Some(host),
                    Track::ByDst => o.dests.first().copied(),
                    Track::ByRule => None,
                };
                let limit = if t.kind == ThresholdType::Both {
                    1
                } else {
                    t.count
                };
                if self.trackers.len() >= MAX_TRACKERS {
                    self.trackers.clear();
                    self.stats.trackers_reset += 1;
                }
                let e = self
                    .trackers
                    .entry((o.sid, t.track, who))
                    .or_insert((o.first_ns, 0));
                if o.first_ns.saturating_sub(e.0) >= t.seconds * 1_000_000_000 {
                    *e = (o.first_ns, 0);
                }
                if e.1 >= limit {
                    return false;
                }
                e.1 += 1;
            }
        }
        true
    }

    fn emit(&mut self, host: IpAddr, o: Open) {
        if !self.passes_thresholds(host, &o) {
            self.stats.thresholded += 1;
            return;
        }
        self.stats.alerts += 1;
        let mut first = String::new();
        crate::timefmt::eve_timestamp(o.first_ns, &mut first);
        let mut last = String::new();
        crate::timefmt::eve_timestamp(o.last_ns, &mut last);
        let severity = severity(o.points, o.signals);
        let mut evidence = json!({
            "host": host.to_string(),
            "names": o.names,
            "dest_ips": o.dests.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        });
        if !o.agents.is_empty() {
            evidence["agents"] = json!(o.agents);
        }
        if let Some((up, down)) = o.bytes {
            evidence["bytes_toserver"] = json!(up);
            evidence["bytes_toclient"] = json!(down);
        }
        if let Some(p) = &o.policy {
            evidence["policy"] = json!(p);
        }
        if !o.burst.is_empty() {
            evidence["burst"] = json!(o.burst);
        }
        let mut v = json!({
            "detection": o.detection,
            "service": &*o.service,
            "signals": signal_names(o.signals),
            "severity_points": o.points,
            "count": o.count,
            "first_seen": first,
            "last_seen": last,
            "window_s": self.cfg.window_ns / 1_000_000_000,
            "evidence": evidence,
            "triage": triage::for_detection(o.detection),
        });
        if let Some(c) = &o.category {
            v["service_category"] = json!(c);
        }
        if let Some(t) = &o.local_time {
            v["local_time"] = json!(t);
        }
        if !o.labels.is_empty() {
            v["labels"] = json!(*o.labels);
        }
        let mut alert = o.alert;
        if alert.sig.severity != severity {
            let mut s = (*alert.sig).clone();
            s.severity = severity;
            alert.sig = Arc::new(s);
        }
        self.out.push(Event {
            meta: o.meta,
            record: o.record,
            alert: Some(Box::new(alert)),
            question: 0,
            labels: o.labels,
            born: o.born,
            verdict: Some(Box::new(v)),
            flow: None,
        });
    }

    /// Saves the baseline if a minute of wall time has passed since the last save.
    pub fn maybe_save(&mut self) -> Option<String> {
        if self.last_save.elapsed() < std::time::Duration::from_secs(60) {
            return None;
        }
        self.save()
    }

    fn save(&mut self) -> Option<String> {
        self.last_save = std::time::Instant::now();
        let now = self.now_ns;
        let b = self.baseline.as_mut()?;
        b.age_out(now);
        b.save()
            .err()
            .map(|e| format!("cannot save the baseline: {e}"))
    }

    /// End of input: every open window is written and the baseline saved.
    pub fn finish(&mut self) -> Option<String> {
        self.expire(true);
        self.save()
    }

    /// One line on the baseline for the summary: its size, what its caps and age limit
    /// evicted, and whether it is still learning.
    pub fn baseline_summary(&self) -> Option<String> {
        let b = self.baseline.as_ref()?;
        let st = b.stats();
        let learning = match st.learning_until_ns {
            Some(t) if b.learning(self.now_ns) => {
                let mut s = String::new();
                crate::timefmt::eve_timestamp(t, &mut s);
                format!("learning until {s}")
            }
            Some(_) => "learned".to_string(),
            None => "empty".to_string(),
        };
        Some(format!(
            "baseline: {} hosts, {} host-service pairs, {} services in the organisation, {learning}; evicted by age {}, at caps {}; writes {} (errors {})",
            st.hosts, st.services, st.org_services, st.evicted_age, st.evicted_cap, st.writes, st.write_errors
        ))
    }
}

struct Sighting<'m> {
    host: IpAddr,
    sid: u32,
    detection: &'static str,
    service: Arc<str>,
    category: Option<String>,
    signals: u16,
    points: u8,
    meta: &'m Meta,
    record: Option<Arc<Record>>,
    alert: AlertInfo,
    labels: Arc<Vec<String>>,
    name: Option<String>,
    dest: IpAddr,
    agent: Option<String>,
    bytes: Option<(u64, u64)>,
    policy: Option<String>,
    burst: Vec<String>,
    local_time: Option<String>,
    born: Option<std::time::Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_adds_up() {
        // A script agent + a first-used service + odd hours outranks any one of them.
        let sev = |s: u16, listed: Option<u8>| severity(score(s, listed), s);
        for s in [S_SCRIPT, S_FIRST_HOST, S_ODD_HOST] {
            assert!(sev(s, None) >= 2, "{s}");
        }
        // Off hours alone raise what was raised for other reasons by one level.
        assert_eq!(sev(S_SCRIPT | S_OFF_HOURS, None), 2);
        assert_eq!(sev(S_SCRIPT | S_FIRST_HOST | S_ODD_HOST, None), 2);
        assert_eq!(
            sev(S_SCRIPT | S_FIRST_HOST | S_ODD_HOST | S_OFF_HOURS, None),
            1
        );
        assert_eq!(sev(S_SCRIPT | S_FIRST_ORG | S_ODD_HOST, None), 1);
        assert_eq!(sev(S_LISTED, Some(2)), 2);
        assert_eq!(sev(S_LISTED | S_OFF_HOURS, Some(2)), 1);
        assert_eq!(sev(S_UPLOAD, None), 2);
        assert_eq!(sev(S_UPLOAD | S_OFF_HOURS, None), 1);
    }

    fn upload_end(host: &str, first_min: u64, sig: &Arc<Signature>) -> FlowEnd {
        let ns = first_min * 60_000_000_000;
        FlowEnd {
            meta: Meta {
                ts_ns: ns,
                flow_id: 1,
                iface: Arc::from("t"),
                src: host.parse().unwrap(),
                sport: 40000,
                dst: "198.18.0.10".parse().unwrap(),
                dport: 443,
                proto: 6,
                vlan: [0, 0],
                tx_id: 0,
                to_server: true,
            },
            born: None,
            first_ns: ns,
            last_ns: ns + 1_000_000_000,
            bytes_toserver: 9_000_000,
            bytes_toclient: 10_000,
            ctx: Some(Box::new(FlowContext {
                web: Some(ObsHit {
                    sig: sig.clone(),
                    field: Field::TlsSni,
                    value: "x.transfer.sh".into(),
                    pattern: "transfer.sh".into(),
                    label: None,
                }),
                agent: None,
                labels: Vec::new(),
            })),
        }
    }

    #[test]
    fn one_alert_per_window_even_for_late_sightings() {
        let mut sig = detection_sig(SID_UPLOAD);
        sig.id = 42;
        sig.service = Some("transfer.sh".into());
        let sig = Arc::new(sig);
        let mut st = Stage::without_state(StageCfg {
            hours: None,
            ..StageCfg::default()
        });
        st.flow_end(upload_end("10.0.0.1", 0, &sig));
        st.flow_end(upload_end("10.0.0.1", 20, &sig));
        assert!(st.drain().is_empty(), "the window is open");
        // Another host two hours later moves packet time on: the first window is written.
        st.flow_end(upload_end("10.0.0.2", 120, &sig));
        let out = st.drain();
        assert_eq!(out.len(), 1);
        let v = out[0].verdict.as_deref().unwrap();
        assert_eq!(v["count"], 2);
        assert_eq!(v["evidence"]["bytes_toserver"], 18_000_000);
        // A flow of the first host that started inside the written window but ended late
        // is a repeat, not a second alert.
        st.flow_end(upload_end("10.0.0.1", 30, &sig));
        assert_eq!(st.stats.late_repeats, 1);
        st.finish();
        let out = st.drain();
        assert_eq!(out.len(), 1, "only the second host's window");
        assert_eq!(out[0].meta.src.to_string(), "10.0.0.2");
    }

    #[test]
    fn local_time_zone_falls_back_to_utc() {
        // Whatever the machine says, the answer is a zone chrono-tz knows.
        let tz = local_tz();
        assert!(!tz.name().is_empty());
    }

    #[test]
    fn upload_rule() {
        let u = UploadCfg::default();
        assert!(u.heavy(5_000_000, 100_000_000));
        assert!(u.heavy(2_000_000, 50_000));
        assert!(!u.heavy(2_000_000, 1_000_000));
        assert!(!u.heavy(900_000, 0));
    }

    #[test]
    fn business_hours_in_berlin() {
        let h = Hours {
            tz: "Europe/Berlin".parse().unwrap(),
            start_min: 8 * 60,
            end_min: 18 * 60,
            weekdays: 0b1_1111,
            holidays: vec![chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()],
        };
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp() as u64 * 1_000_000_000
        };
        assert!(h.local(at("2026-12-01T09:00:00Z")).1, "Tue 10:00 local");
        assert!(!h.local(at("2026-12-02T02:10:00Z")).1, "Wed 03:10 local");
        assert!(!h.local(at("2026-12-05T10:00:00Z")).1, "Saturday");
        assert!(!h.local(at("2026-12-25T10:00:00Z")).1, "holiday");
        assert!(!h.local(at("2026-12-01T17:30:00Z")).1, "18:30 local");
        // Summer time: 07:30 UTC is 09:30 in Berlin.
        assert!(h.local(at("2026-07-01T07:30:00Z")).1);
    }
}
