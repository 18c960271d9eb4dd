//! Baseline of normal use (issue 11): which web services the organisation and each internal host
//! use, and at which hours each host is usually active; kept in `--state DIR` across runs.
//!
//! # Rules
//! - **Learning.** A fresh state starts learning at the first packet time it sees and stops
//!   `learning_ns` later (packet time, default 24 h). The end is stored with the state, so a restart
//!   or a different `--learning` does not restart it. While learning, uses are recorded and
//!   [`Use::Learning`] is returned; afterwards a service nobody used is [`Use::NewForOrg`] (an alert),
//!   one that other hosts use is [`Use::NewForHost`] (context), otherwise [`Use::Known`].
//! - **Usual hours.** Per host, 2 x 24 counters (weekday / weekend hour of local day) hold on how many
//!   distinct days the host was active in that hour (several contacts in one hour of one day count
//!   once, so one busy night does not look usual). Counters of a class are halved when it reaches 56
//!   days, so habits older than ~2 months fade. [`Baseline::odd_hour`] documents the decision.
//! - **Ageing and caps.** Entries unseen for `max_age_ns` (packet time, default 30 days) are dropped
//!   by [`Baseline::age_out`]. Every table has a cap (hosts, services per host, host-service pairs in
//!   total, organisation services); inserting into a full table evicts the least recently seen
//!   1/16 of it (amortised cost), and every removed entry is counted in [`BaselineStats`].
//!   Service names longer than [`MAX_SERVICE_LEN`] bytes are cut. Memory is thus bounded
//!   (about 100 bytes per pair plus the name, 300 per host: some 60 MB at the default caps with
//!   short names, under 150 MB with 255-byte ones; the file is about half that, so save every
//!   minute or so, not per packet). One DIR serves one sensor process.
//! - **Durability.** [`Baseline::save`] writes a temp file in DIR, fsyncs it, renames it over
//!   `baseline.json` and fsyncs DIR, so a `kill -9` or a crash leaves either the old or the new file,
//!   never a torn one. A file that does not parse or validate (including an unknown `version`) is
//!   renamed to `baseline.json.corrupt-<unix secs>` and a fresh state starts ([`OpenReport`]); other
//!   I/O errors are returned, since starting fresh over a file we merely cannot read would lose it.
//! - Runtime counters (evictions, writes) are not persisted; the baseline itself is.
//!
//! # File and export format (version 1)
//! The file is exactly [`Baseline::export_json`] (compact, one line). Keys are written in
//! alphabetical order, arrays sorted (hosts by address, IPv4 first; services by name). Times are
//! RFC 3339 UTC strings (`2026-03-02T09:15:00Z`, fraction only when not whole seconds: lossless).
//! ```text
//! {"format":"cloudtap-baseline",
//!  "hosts":[{"activity":{"contacts":N,"current_day":"2026-03-02"|null,"current_day_mask":N,"days":N,
//!            "weekday":[24 x days active in that hour],"weekday_days":N,"weekend":[24],"weekend_days":N},
//!            "count":N,"first_seen":T,"host":"10.0.0.5","last_seen":T,
//!            "services":[{"count":N,"first_seen":T,"last_seen":T,"service":"dropbox"}]}],
//!  "last_seen":T|null,"learning_started":T|null,"learning_until":T|null,
//!  "org_services":[{"count":N,"first_seen":T,"last_seen":T,"service":"dropbox"}],
//!  "version":1}
//! ```
//! `current_day_mask` remembers which (class, hour) counters were already bumped on `current_day`
//! (bits 0-23 weekday hours, 24-47 weekend hours, 48 weekday day, 49 weekend day, 50 any day).
//! [`Baseline::import_json`] checks every field (all keys required, no unknown keys) and names the
//! JSON path of the first error (`$.hosts[3].services[0].first_seen: ...`); nothing is merged
//! unless all is valid. [`Baseline::open`] reads the file with typed serde structs (compact in
//! memory; a type error gives line and column) and then the same checks of times, addresses,
//! names and ranges (JSON path).

use crate::timefmt::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fs::{self, File};
use std::hash::Hash;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Value of the `format` key.
pub const FORMAT: &str = "cloudtap-baseline";
/// File format version this build reads and writes.
pub const VERSION: u64 = 1;
/// File name inside the state directory.
pub const FILE_NAME: &str = "baseline.json";
const TMP_PREFIX: &str = "baseline.json.tmp";
/// Longest service name kept (bytes); longer names are cut at a character boundary.
pub const MAX_SERVICE_LEN: usize = 255;
/// A host with this many distinct days of activity has a usable hour profile.
pub const MIN_DAYS: u32 = 3;
/// ...or, once learning is over, with at least this many contacts (on at least one day).
pub const MIN_CONTACTS: u64 = 20;
/// The weekend (or weekday) profile is used alone once it has this many days; before, both merged.
pub const MIN_CLASS_DAYS: u16 = 2;
/// An hour is usual when the host was active in it (or the hour either side) on at least
/// 1 in `USUAL_ONE_IN` of its days.
pub const USUAL_ONE_IN: u32 = 10;
/// A host with at least this many usual hours of the day is busy around the clock: never odd.
pub const ROUND_THE_CLOCK_HOURS: usize = 20;
const HALVE_AT_DAYS: u16 = 56;
const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_DAY: u64 = 86_400 * NS_PER_SEC;

/// Limits of the baseline. Defaults: 24 h learning, 30 days age, caps as below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineOpts {
    /// Learning period of a fresh state, packet time (default 24 h).
    pub learning_ns: u64,
    /// Entries unseen this long (packet time) are aged out (default 30 days).
    pub max_age_ns: u64,
    /// Hosts kept (default 65 536).
    pub max_hosts: usize,
    /// Services kept per host (default 512).
    pub max_services_per_host: usize,
    /// Services kept for the organisation (default 65 536).
    pub max_services: usize,
    /// Host-service pairs kept over all hosts (default 262 144).
    pub max_pairs: usize,
}

impl Default for BaselineOpts {
    fn default() -> Self {
        BaselineOpts {
            learning_ns: 24 * 3600 * NS_PER_SEC,
            max_age_ns: 30 * NS_PER_DAY,
            max_hosts: 65_536,
            max_services_per_host: 512,
            max_services: 65_536,
            max_pairs: 262_144,
        }
    }
}

/// What one use of a service was, from [`Baseline::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Use {
    /// The state is still learning: recorded, never a signal.
    Learning,
    /// This host used this service before.
    Known,
    /// First use by this host of a service others in the organisation already use (context).
    NewForHost,
    /// First use of this service by anyone in the organisation (an alert).
    NewForOrg,
}

/// Errors of the state store; messages name the file or the JSON path.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// A file-system operation failed.
    #[error("{what} {}: {err}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    /// A JSON document (file or import) is invalid at `path`.
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
}

/// What [`Baseline::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// True when the state starts empty (no file, or a corrupt one set aside).
    pub fresh: bool,
    /// Where a corrupt file was moved, and why it was judged corrupt.
    pub set_aside: Option<(PathBuf, String)>,
}

/// Counters and sizes for the stats output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineStats {
    pub hosts: usize,
    /// Host-service pairs.
    pub services: usize,
    pub org_services: usize,
    pub evicted_age: u64,
    pub evicted_cap: u64,
    pub writes: u64,
    pub write_errors: u64,
    pub learning_until_ns: Option<u64>,
}

/// What [`Baseline::import_json`] read and what the caps then removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub hosts: usize,
    pub services: usize,
    pub org_services: usize,
    pub evicted_cap: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    first: u64,
    last: u64,
    count: u64,
}

impl Seen {
    fn new(ts: u64) -> Seen {
        Seen {
            first: ts,
            last: ts,
            count: 1,
        }
    }
    fn hit(&mut self, ts: u64) {
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
        self.count = self.count.saturating_add(1);
    }
    /// Idempotent merge: importing the same export twice changes nothing.
    fn merge(&mut self, o: &Seen) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
        self.count = self.count.max(o.count);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Activity {
    contacts: u64,
    days: u32,
    class_days: [u16; 2],
    slots: [[u16; 24]; 2],
    cur_day: Option<u32>,
    mask: u64,
}

impl Activity {
    fn note(&mut self, how: u8, ts: u64) {
        let (class, hour) = (usize::from(how / 24 >= 5), usize::from(how % 24));
        self.contacts = self.contacts.saturating_add(1);
        let day = (ts / NS_PER_DAY) as u32;
        match self.cur_day {
            Some(d) if day < d => return, // late packet from a day already closed
            Some(d) if day == d => {}
            _ => (self.cur_day, self.mask) = (Some(day), 0),
        }
        if self.bit(50) {
            self.days = self.days.saturating_add(1);
        }
        if self.bit(48 + class) {
            self.class_days[class] = self.class_days[class].saturating_add(1);
            if self.class_days[class] >= HALVE_AT_DAYS {
                self.class_days[class] /= 2;
                self.slots[class].iter_mut().for_each(|c| *c /= 2);
            }
        }
        if self.bit(class * 24 + hour) {
            self.slots[class][hour] = self.slots[class][hour].saturating_add(1);
        }
    }
    /// Sets bit `b` of today's mask; true if it was not set.
    fn bit(&mut self, b: usize) -> bool {
        let was = self.mask & (1 << b) != 0;
        self.mask |= 1 << b;
        !was
    }
    fn merge(&mut self, o: &Activity) {
        self.contacts = self.contacts.max(o.contacts);
        self.days = self.days.max(o.days);
        for c in 0..2 {
            self.class_days[c] = self.class_days[c].max(o.class_days[c]);
            for h in 0..24 {
                self.slots[c][h] = self.slots[c][h].max(o.slots[c][h]);
            }
        }
        match (self.cur_day, o.cur_day) {
            (Some(a), Some(b)) if a == b => self.mask |= o.mask,
            (a, Some(b)) if !matches!(a, Some(a) if a >= b) => {
                (self.cur_day, self.mask) = (Some(b), o.mask)
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone)]
struct Host {
    seen: Seen,
    services: HashMap<Box<str>, Seen>,
    act: Activity,
}

/// The baseline: organisation services, per-host services and per-host usual hours.
#[derive(Debug)]
pub struct Baseline {
    opts: BaselineOpts,
    dir: Option<PathBuf>,
    hosts: HashMap<IpAddr, Host>,
    org: HashMap<Box<str>, Seen>,
    pairs: usize,
    learning_started: Option<u64>,
    learning_until: Option<u64>,
    last_ts: Option<u64>,
    dirty: bool,
    evicted_age: u64,
    evicted_cap: u64,
    writes: u64,
    write_errors: u64,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BaselineError + 'a {
    move |err| BaselineError::Io {
        what,
        path: path.to_path_buf(),
        err,
    }
}

/// Size of one eviction batch for a table capped at `cap`.
fn batch(cap: usize) -> usize {
    (cap / 16).max(1)
}

/// Removes the `n` least recently seen entries of `map`; returns how many it removed.
fn evict_lru<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    n: usize,
    last: impl Fn(&V) -> u64,
) -> usize {
    let mut lasts: Vec<u64> = map.values().map(&last).collect();
    let Some((t, mut eq_left)) = threshold(&mut lasts, n) else {
        return 0;
    };
    let before = map.len();
    map.retain(|_, v| keep(last(v), t, &mut eq_left));
    before - map.len()
}

/// For removing the `n` smallest of `lasts`: the cut value and how many equal to it go.
fn threshold(lasts: &mut [u64], n: usize) -> Option<(u64, usize)> {
    let n = n.min(lasts.len());
    if n == 0 {
        return None;
    }
    let t = *lasts.select_nth_unstable(n - 1).1;
    Some((t, n - lasts.iter().filter(|&&l| l < t).count()))
}

fn keep(l: u64, t: u64, eq_left: &mut usize) -> bool {
    if l < t {
        return false;
    }
    if l == t && *eq_left > 0 {
        *eq_left -= 1;
        return false;
    }
    true
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(MAX_SERVICE_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Baseline {
    /// Opens DIR/baseline.json, creating DIR. A missing file gives a fresh state; a corrupt one
    /// (bad JSON, failed validation, unknown version) is renamed to `baseline.json.corrupt-<unix
    /// secs>` and reported in [`OpenReport::set_aside`] with the reason, and a fresh state starts.
    /// Other I/O errors (permission denied, DIR is a file) are returned.
    pub fn open(dir: &Path, opts: BaselineOpts) -> Result<(Baseline, OpenReport), BaselineError> {
        if dir.exists() && !dir.is_dir() {
            let err = io::Error::other("exists and is not a directory");
            return Err(io_err("state directory", dir)(err));
        }
        fs::create_dir_all(dir).map_err(io_err("cannot create state directory", dir))?;
        // Temp files left over by an interrupted save.
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(e.path());
            }
        }
        let path = dir.join(FILE_NAME);
        let mut b = Baseline::in_memory(opts);
        b.dir = Some(dir.to_path_buf());
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((
                    b,
                    OpenReport {
                        fresh: true,
                        set_aside: None,
                    },
                ));
            }
            Err(e) => return Err(io_err("cannot read state file", &path)(e)),
        };
        let why = match doc_from_slice(&bytes) {
            Ok(doc) => {
                drop(bytes);
                b.dirty = b.merge(doc).evicted_cap > 0;
                let report = OpenReport {
                    fresh: false,
                    set_aside: None,
                };
                return Ok((b, report));
            }
            Err(why) => why,
        };
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = dir.join(format!("{FILE_NAME}.corrupt-{secs}"));
        for i in 1.. {
            if !aside.exists() {
                break;
            }
            aside = dir.join(format!("{FILE_NAME}.corrupt-{secs}-{i}"));
        }
        fs::rename(&path, &aside).map_err(io_err("cannot set aside corrupt state file", &path))?;
        let why = format!(
            "{} is corrupt ({why}); moved to {}, starting a fresh state",
            path.display(),
            aside.display()
        );
        Ok((
            b,
            OpenReport {
                fresh: true,
                set_aside: Some((aside, why)),
            },
        ))
    }

    /// A state that lives only in memory ([`Baseline::save`] does nothing).
    pub fn in_memory(opts: BaselineOpts) -> Baseline {
        Baseline {
            opts,
            dir: None,
            hosts: HashMap::new(),
            org: HashMap::new(),
            pairs: 0,
            learning_started: None,
            learning_until: None,
            last_ts: None,
            dirty: false,
            evicted_age: 0,
            evicted_cap: 0,
            writes: 0,
            write_errors: 0,
        }
    }

    fn touch(&mut self, ts: u64) {
        if self.learning_until.is_none() {
            self.learning_started = Some(ts);
            self.learning_until = Some(ts.saturating_add(self.opts.learning_ns));
        }
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        self.dirty = true;
    }

    /// Makes sure `host` has an entry (evicting if the host table is full); false if it cannot.
    fn ensure_host(&mut self, host: IpAddr, ts: u64) -> bool {
        if let Some(h) = self.hosts.get_mut(&host) {
            h.seen.hit(ts);
            return true;
        }
        let cap = self.opts.max_hosts;
        if cap == 0 {
            return false;
        }
        if self.hosts.len() >= cap {
            let n = self.hosts.len() - cap + batch(cap);
            self.evicted_cap += evict_lru(&mut self.hosts, n, |h| h.seen.last) as u64;
            self.pairs = self.hosts.values().map(|h| h.services.len()).sum();
        }
        let h = Host {
            seen: Seen::new(ts),
            services: HashMap::new(),
            act: Activity::default(),
        };
        self.hosts.insert(host, h);
        true
    }

    /// Records that `host` used `service` at packet time `ts_ns` and says what that use was.
    /// The learning period starts at the first time seen by a fresh state.
    pub fn observe(&mut self, host: IpAddr, service: &str, ts_ns: u64) -> Use {
        let service = clip(service);
        self.touch(ts_ns);
        let learning = self.learning(ts_ns);
        let org_known = match self.org.get_mut(service) {
            Some(s) => {
                s.hit(ts_ns);
                true
            }
            None => {
                let cap = self.opts.max_services;
                if cap > 0 {
                    if self.org.len() >= cap {
                        let n = self.org.len() - cap + batch(cap);
                        self.evicted_cap += evict_lru(&mut self.org, n, |s| s.last) as u64;
                    }
                    self.org.insert(service.into(), Seen::new(ts_ns));
                }
                false
            }
        };
        let host_known = self
            .hosts
            .get(&host)
            .is_some_and(|h| h.services.contains_key(service));
        let (cap, max_pairs) = (self.opts.max_services_per_host, self.opts.max_pairs);
        if !host_known && cap > 0 && max_pairs > 0 && self.pairs >= max_pairs {
            let n = self.pairs - max_pairs + batch(max_pairs);
            self.evicted_cap += self.evict_pairs(n) as u64;
        }
        let h = match self.ensure_host(host, ts_ns) {
            true => self.hosts.get_mut(&host),
            false => None,
        };
        if let Some(h) = h {
            if let Some(s) = h.services.get_mut(service) {
                s.hit(ts_ns);
            } else if cap > 0 && max_pairs > 0 {
                if h.services.len() >= cap {
                    let n = h.services.len() - cap + batch(cap);
                    let n = evict_lru(&mut h.services, n, |s| s.last);
                    self.evicted_cap += n as u64;
                    self.pairs -= n;
                }
                h.services.insert(service.into(), Seen::new(ts_ns));
                self.pairs += 1;
            }
        }
        match (learning, host_known, org_known) {
            (true, _, _) => Use::Learning,
            (false, true, _) => Use::Known,
            (false, false, true) => Use::NewForHost,
            (false, false, false) => Use::NewForOrg,
        }
    }

    /// Removes the `n` least recently seen host-service pairs over all hosts; returns how many.
    fn evict_pairs(&mut self, n: usize) -> usize {
        let mut lasts: Vec<u64> = self
            .hosts
            .values()
            .flat_map(|h| h.services.values().map(|s| s.last))
            .collect();
        let Some((t, mut eq_left)) = threshold(&mut lasts, n) else {
            return 0;
        };
        for h in self.hosts.values_mut() {
            h.services.retain(|_, s| keep(s.last, t, &mut eq_left));
        }
        let before = self.pairs;
        self.pairs = self.hosts.values().map(|h| h.services.len()).sum();
        before - self.pairs
    }

    /// True while the state is learning at packet time `ts_ns` (also before any packet was seen).
    pub fn learning(&self, ts_ns: u64) -> bool {
        !matches!(self.learning_until, Some(until) if ts_ns >= until)
    }

    /// Records one contact by `host` in `hour_of_week` (0 = Monday 00:00-00:59 local time, ...,
    /// 167 = Sunday 23:00; Saturday and Sunday, 120..168, are the weekend). Values >= 168 are ignored.
    pub fn note_activity(&mut self, host: IpAddr, hour_of_week: u8, ts_ns: u64) {
        if hour_of_week >= 168 {
            return;
        }
        self.touch(ts_ns);
        if self.ensure_host(host, ts_ns) {
            if let Some(h) = self.hosts.get_mut(&host) {
                h.act.note(hour_of_week, ts_ns);
            }
        }
    }

    /// Whether `hour_of_week` is unusual for `host`. Rule:
    /// 1. The host needs a profile: at least [`MIN_DAYS`] distinct days of activity, or learning
    ///    over and at least [`MIN_CONTACTS`] contacts. Otherwise (and for unknown hosts): false.
    /// 2. The profile is the hour-of-day counters of the hour's class (weekday or weekend) if that
    ///    class has [`MIN_CLASS_DAYS`] days, else weekday and weekend added (so a Saturday is judged
    ///    by the weekday habits until the host has a weekend history).
    /// 3. An hour of the day is usual when the host was active in it on at least 1 in
    ///    [`USUAL_ONE_IN`] of the profile's days. A host with [`ROUND_THE_CLOCK_HOURS`] usual hours
    ///    (a CI runner, a server) is never odd.
    /// 4. Odd = neither the hour nor the hour either side of it is usual (a 9-to-5 workstation is
    ///    not odd at 8:00 or 17:00, it is at 3:00 or 21:00).
    pub fn odd_hour(&self, host: IpAddr, hour_of_week: u8) -> bool {
        self.hour_verdict(host, hour_of_week) == Some(true)
    }

    /// Whether the host's own profile says it is usually active at this hour (a CI runner at
    /// night): false without a profile. The detection stage lets such a host's off-hours
    /// activity pass as ordinary.
    pub fn usual_hour(&self, host: IpAddr, hour_of_week: u8) -> bool {
        self.hour_verdict(host, hour_of_week) == Some(false)
    }

    /// `Some(odd)` once the host has a profile (rules above), `None` before.
    fn hour_verdict(&self, host: IpAddr, hour_of_week: u8) -> Option<bool> {
        let a = self.hosts.get(&host).map(|h| &h.act)?;
        if hour_of_week >= 168 {
            return None;
        }
        let over = !self.learning(self.last_ts.unwrap_or(0));
        if a.days < MIN_DAYS && !(over && a.days >= 1 && a.contacts >= MIN_CONTACTS) {
            return None;
        }
        let class = usize::from(hour_of_week / 24 >= 5);
        let (counts, days): ([u32; 24], u32) = if a.class_days[class] >= MIN_CLASS_DAYS {
            (
                a.slots[class].map(u32::from),
                u32::from(a.class_days[class]),
            )
        } else {
            let mut c = [0u32; 24];
            for (h, v) in c.iter_mut().enumerate() {
                *v = u32::from(a.slots[0][h]) + u32::from(a.slots[1][h]);
            }
            (c, u32::from(a.class_days[0]) + u32::from(a.class_days[1]))
        };
        let usual = |c: u32| c > 0 && c * USUAL_ONE_IN >= days;
        if counts.iter().filter(|&&c| usual(c)).count() >= ROUND_THE_CLOCK_HOURS {
            return Some(false);
        }
        let h = usize::from(hour_of_week % 24);
        Some(!(usual(counts[(h + 23) % 24]) || usual(counts[h]) || usual(counts[(h + 1) % 24])))
    }

    /// Drops entries unseen since `now_ns - max_age_ns` (packet time) and enforces the caps
    /// (least recently seen first); both counted in [`BaselineStats`].
    pub fn age_out(&mut self, now_ns: u64) {
        let cutoff = now_ns.saturating_sub(self.opts.max_age_ns);
        let before = self.pairs + self.hosts.len() + self.org.len();
        for h in self.hosts.values_mut() {
            h.services.retain(|_, s| s.last >= cutoff);
        }
        self.hosts.retain(|_, h| h.seen.last >= cutoff);
        self.org.retain(|_, s| s.last >= cutoff);
        self.pairs = self.hosts.values().map(|h| h.services.len()).sum();
        let aged = before - (self.pairs + self.hosts.len() + self.org.len());
        self.evicted_age += aged as u64;
        let capped = self.enforce_caps();
        self.dirty |= aged > 0 || capped > 0;
    }

    /// Brings every table down to its cap exactly; returns how many entries went.
    fn enforce_caps(&mut self) -> u64 {
        let o = self.opts.clone();
        let mut n = 0;
        for h in self.hosts.values_mut() {
            let excess = h.services.len().saturating_sub(o.max_services_per_host);
            n += evict_lru(&mut h.services, excess, |s| s.last);
        }
        self.pairs = self.hosts.values().map(|h| h.services.len()).sum();
        if self.pairs > o.max_pairs {
            n += self.evict_pairs(self.pairs - o.max_pairs);
        }
        let excess = self.hosts.len().saturating_sub(o.max_hosts);
        n += evict_lru(&mut self.hosts, excess, |h| h.seen.last);
        let excess = self.org.len().saturating_sub(o.max_services);
        n += evict_lru(&mut self.org, excess, |s| s.last);
        self.pairs = self.hosts.values().map(|h| h.services.len()).sum();
        self.evicted_cap += n as u64;
        n as u64
    }

    /// Sizes and counters.
    pub fn stats(&self) -> BaselineStats {
        BaselineStats {
            hosts: self.hosts.len(),
            services: self.pairs,
            org_services: self.org.len(),
            evicted_age: self.evicted_age,
            evicted_cap: self.evicted_cap,
            writes: self.writes,
            write_errors: self.write_errors,
            learning_until_ns: self.learning_until,
        }
    }

    /// Whether anyone in the organisation used `service` (still in the baseline).
    pub fn org_uses(&self, service: &str) -> bool {
        self.org.contains_key(clip(service))
    }

    /// Whether `host` used `service` (still in the baseline).
    pub fn host_uses(&self, host: IpAddr, service: &str) -> bool {
        self.hosts
            .get(&host)
            .is_some_and(|h| h.services.contains_key(clip(service)))
    }

    /// Writes DIR/baseline.json atomically (temp file in DIR, fsync, rename, fsync DIR), only when
    /// something changed since the last write. Does nothing for an in-memory state. The cost is
    /// that of writing the whole state: call it periodically (e.g. every minute) and at exit.
    pub fn save(&mut self) -> Result<(), BaselineError> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let tmp = dir.join(format!("{TMP_PREFIX}-{}", std::process::id()));
        let path = dir.join(FILE_NAME);
        let r = (|| {
            let f = File::create(&tmp).map_err(io_err("cannot create", &tmp))?;
            let mut w = io::BufWriter::with_capacity(1 << 16, f);
            serde_json::to_writer(&mut w, &self.file_view())
                .map_err(io::Error::from)
                .and_then(|()| w.write_all(b"\n"))
                .map_err(io_err("cannot write", &tmp))?;
            let f = w
                .into_inner()
                .map_err(|e| io_err("cannot write", &tmp)(e.into_error()))?;
            f.sync_all().map_err(io_err("cannot fsync", &tmp))?;
            fs::rename(&tmp, &path).map_err(io_err("cannot rename temp file over", &path))?;
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("cannot fsync directory", &dir))
        })();
        match r {
            Ok(()) => {
                self.writes += 1;
                self.dirty = false;
                Ok(())
            }
            Err(e) => {
                self.write_errors += 1;
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// The whole baseline as JSON, in the documented version-1 shape (see the module docs).
    pub fn export_json(&self) -> Value {
        serde_json::to_value(self.file_view()).unwrap_or(Value::Null)
    }

    /// A borrowed, sorted view that serialises to the version-1 shape without copying the state.
    fn file_view(&self) -> FileView<'_> {
        let mut hosts: Vec<HostView<'_>> = self
            .hosts
            .iter()
            .map(|(ip, h)| HostView {
                activity: ActView {
                    contacts: h.act.contacts,
                    current_day: h.act.cur_day.map(Day),
                    current_day_mask: h.act.mask,
                    days: h.act.days,
                    weekday: &h.act.slots[0],
                    weekday_days: h.act.class_days[0],
                    weekend: &h.act.slots[1],
                    weekend_days: h.act.class_days[1],
                },
                count: h.seen.count,
                first_seen: Time(h.seen.first),
                host: *ip,
                last_seen: Time(h.seen.last),
                services: svc_views(&h.services),
            })
            .collect();
        hosts.sort_unstable_by_key(|h| h.host);
        FileView {
            format: FORMAT,
            hosts,
            last_seen: self.last_ts.map(Time),
            learning_started: self.learning_started.map(Time),
            learning_until: self.learning_until.map(Time),
            org_services: svc_views(&self.org),
            version: VERSION,
        }
    }

    /// Merges an export into this baseline: times min/max, counts max (so importing twice changes
    /// nothing), the earlier learning end wins. The whole document is validated first (every field,
    /// errors name the JSON path); on error nothing changes. Caps apply afterwards (counted).
    pub fn import_json(&mut self, v: &Value) -> Result<ImportSummary, BaselineError> {
        let p = doc_from_raw(raw_doc(v)?)?;
        Ok(self.merge(p))
    }

    fn merge(&mut self, p: Doc) -> ImportSummary {
        let mut sum = ImportSummary {
            hosts: p.hosts.len(),
            org_services: p.org.len(),
            ..Default::default()
        };
        let min = |a: Option<u64>, b: Option<u64>| a.into_iter().chain(b).min();
        self.learning_started = min(self.learning_started, p.started);
        self.learning_until = min(self.learning_until, p.until);
        self.last_ts = self.last_ts.into_iter().chain(p.last).max();
        for (name, s) in p.org {
            self.org
                .entry(name)
                .and_modify(|e| e.merge(&s))
                .or_insert(s);
        }
        for (ip, host) in p.hosts {
            sum.services += host.services.len();
            match self.hosts.get_mut(&ip) {
                None => drop(self.hosts.insert(ip, host)),
                Some(e) => {
                    e.seen.merge(&host.seen);
                    e.act.merge(&host.act);
                    for (name, s) in host.services {
                        e.services
                            .entry(name)
                            .and_modify(|e| e.merge(&s))
                            .or_insert(s);
                    }
                }
            }
        }
        sum.evicted_cap = self.enforce_caps();
        self.dirty = true;
        sum
    }
}

struct Doc {
    started: Option<u64>,
    until: Option<u64>,
    last: Option<u64>,
    org: Vec<(Box<str>, Seen)>,
    hosts: Vec<(IpAddr, Host)>,
}

// The document with its JSON types checked but not its meaning: read from a file by serde
// (compact in memory), or from a `Value` by the path-naming walker below (`raw_doc`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    #[allow(dead_code)]
    format: String,
    hosts: Vec<RawHost>,
    last_seen: Option<String>,
    learning_started: Option<String>,
    learning_until: Option<String>,
    org_services: Vec<RawSvc>,
    #[allow(dead_code)]
    version: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    activity: RawAct,
    count: u64,
    first_seen: String,
    host: String,
    last_seen: String,
    services: Vec<RawSvc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAct {
    contacts: u64,
    current_day: Option<String>,
    current_day_mask: u64,
    days: u32,
    weekday: [u16; 24],
    weekday_days: u16,
    weekend: [u16; 24],
    weekend_days: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSvc {
    count: u64,
    first_seen: String,
    last_seen: String,
    service: String,
}

/// Just the keys that say which format a document is in.
#[derive(Deserialize)]
struct Head {
    format: Option<Value>,
    version: Option<Value>,
}

fn check_head(format: Option<&Value>, version: Option<&Value>) -> Result<(), BaselineError> {
    if format.and_then(Value::as_str) != Some(FORMAT) {
        let found = short(format.unwrap_or(&Value::Null));
        return Err(bad(
            "$.format",
            format!("expected \"{FORMAT}\", found {found}"),
        ));
    }
    if version.and_then(Value::as_u64) != Some(VERSION) {
        let found = short(version.unwrap_or(&Value::Null));
        let msg = format!("unsupported version {found} (this build reads version {VERSION})");
        return Err(bad("$.version", msg));
    }
    Ok(())
}

/// Parses a state file: JSON syntax and types by serde (line and column in the message), then
/// the meaning by `doc_from_raw` (JSON path in the message).
fn doc_from_slice(bytes: &[u8]) -> Result<Doc, String> {
    let head: Head = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    check_head(head.format.as_ref(), head.version.as_ref()).map_err(|e| e.to_string())?;
    let raw: RawDoc = serde_json::from_slice(bytes)
        .map_err(|e| format!("does not match the version-{VERSION} format: {e}"))?;
    doc_from_raw(raw).map_err(|e| e.to_string())
}

/// A value for an error message, cut to 60 bytes.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 60 {
        return s;
    }
    let mut end = 57;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn bad(path: &str, msg: impl Into<String>) -> BaselineError {
    BaselineError::Invalid {
        path: path.to_string(),
        msg: msg.into(),
    }
}

fn time_at(s: &str, path: &str) -> Result<u64, BaselineError> {
    parse_time(s).ok_or_else(|| {
        let found = short(&Value::from(s));
        bad(
            path,
            format!("expected an RFC 3339 UTC time like 2026-03-02T09:15:00Z, found {found}"),
        )
    })
}

fn opt_time_at(s: Option<&str>, path: &str) -> Result<Option<u64>, BaselineError> {
    s.map(|s| time_at(s, path)).transpose()
}

fn svc_from_raw(r: RawSvc, path: &str) -> Result<(Box<str>, Seen), BaselineError> {
    let n = &r.service;
    // As lenient as `observe` (which only cuts long names), so every state written reads back.
    if n.len() > MAX_SERVICE_LEN {
        let found = short(&Value::from(n.as_str()));
        let msg =
            format!("expected a service name of at most {MAX_SERVICE_LEN} bytes, found {found}");
        return Err(bad(&format!("{path}.service"), msg));
    }
    let seen = seen_from(&r.first_seen, &r.last_seen, r.count, path)?;
    Ok((r.service.into_boxed_str(), seen))
}

fn seen_from(first: &str, last: &str, count: u64, path: &str) -> Result<Seen, BaselineError> {
    let first = time_at(first, &format!("{path}.first_seen"))?;
    let last = time_at(last, &format!("{path}.last_seen"))?;
    if first > last {
        return Err(bad(&format!("{path}.first_seen"), "is after last_seen"));
    }
    Ok(Seen { first, last, count })
}

/// Checks what the JSON types cannot say: times, addresses, names, ranges.
fn doc_from_raw(r: RawDoc) -> Result<Doc, BaselineError> {
    let mut doc = Doc {
        started: opt_time_at(r.learning_started.as_deref(), "$.learning_started")?,
        until: opt_time_at(r.learning_until.as_deref(), "$.learning_until")?,
        last: opt_time_at(r.last_seen.as_deref(), "$.last_seen")?,
        org: Vec::with_capacity(r.org_services.len()),
        hosts: Vec::with_capacity(r.hosts.len()),
    };
    for (i, s) in r.org_services.into_iter().enumerate() {
        doc.org
            .push(svc_from_raw(s, &format!("$.org_services[{i}]"))?);
    }
    for (i, h) in r.hosts.into_iter().enumerate() {
        let path = format!("$.hosts[{i}]");
        let ip: IpAddr = h.host.parse().map_err(|_| {
            let found = short(&Value::from(h.host.as_str()));
            bad(
                &format!("{path}.host"),
                format!("expected an IPv4 or IPv6 address, found {found}"),
            )
        })?;
        let seen = seen_from(&h.first_seen, &h.last_seen, h.count, &path)?;
        let mut services = HashMap::with_capacity(h.services.len());
        for (j, s) in h.services.into_iter().enumerate() {
            let (name, seen) = svc_from_raw(s, &format!("{path}.services[{j}]"))?;
            services.insert(name, seen);
        }
        let a = h.activity;
        if a.current_day_mask >= 1 << 51 {
            let msg = format!(
                "expected an integer below 2^51, found {}",
                a.current_day_mask
            );
            return Err(bad(&format!("{path}.activity.current_day_mask"), msg));
        }
        let cur_day = match a.current_day {
            None => None,
            Some(d) => Some(
                parse_time(&format!("{d}T00:00:00Z"))
                    .filter(|_| d.len() == 10)
                    .map(|t| (t / NS_PER_DAY) as u32)
                    .ok_or_else(|| {
                        let found = short(&Value::from(d.as_str()));
                        let msg = format!("expected a date like 2026-03-02 or null, found {found}");
                        bad(&format!("{path}.activity.current_day"), msg)
                    })?,
            ),
        };
        let act = Activity {
            contacts: a.contacts,
            days: a.days,
            class_days: [a.weekday_days, a.weekend_days],
            slots: [a.weekday, a.weekend],
            cur_day,
            mask: a.current_day_mask,
        };
        doc.hosts.push((
            ip,
            Host {
                seen,
                services,
                act,
            },
        ));
    }
    Ok(doc)
}

// The walker: a `Value` to a `RawDoc`, naming the JSON path of the first type error.

/// The object at `path`, which must have exactly `keys`.
fn object<'a>(
    v: &'a Value,
    path: &str,
    keys: &[&str],
) -> Result<&'a Map<String, Value>, BaselineError> {
    let m = v
        .as_object()
        .ok_or_else(|| bad(path, format!("expected an object, found {}", short(v))))?;
    if let Some(k) = m.keys().find(|k| !keys.contains(&k.as_str())) {
        let msg = format!("unknown field (expected: {})", keys.join(", "));
        return Err(bad(&format!("{path}.{k}"), msg));
    }
    if let Some(k) = keys.iter().find(|k| !m.contains_key(**k)) {
        return Err(bad(&format!("{path}.{k}"), "missing field"));
    }
    Ok(m)
}

fn int(m: &Map<String, Value>, key: &str, path: &str, max: u64) -> Result<u64, BaselineError> {
    match m[key].as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => {
            let msg = format!("expected an integer 0..={max}, found {}", short(&m[key]));
            Err(bad(&format!("{path}.{key}"), msg))
        }
    }
}

fn opt_string(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, BaselineError> {
    match &m[key] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(bad(
            &format!("{path}.{key}"),
            format!("expected a string, found {}", short(other)),
        )),
    }
}

fn string(m: &Map<String, Value>, key: &str, path: &str) -> Result<String, BaselineError> {
    opt_string(m, key, path)?
        .ok_or_else(|| bad(&format!("{path}.{key}"), "expected a string, found null"))
}

fn array<'a>(
    m: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Vec<Value>, BaselineError> {
    m[key].as_array().ok_or_else(|| {
        bad(
            &format!("{path}.{key}"),
            format!("expected an array, found {}", short(&m[key])),
        )
    })
}

fn raw_svcs(m: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<RawSvc>, BaselineError> {
    let mut out = Vec::new();
    for (i, v) in array(m, key, path)?.iter().enumerate() {
        let path = format!("{path}.{key}[{i}]");
        let s = object(v, &path, &["count", "first_seen", "last_seen", "service"])?;
        out.push(RawSvc {
            count: int(s, "count", &path, u64::MAX)?,
            first_seen: string(s, "first_seen", &path)?,
            last_seen: string(s, "last_seen", &path)?,
            service: string(s, "service", &path)?,
        });
    }
    Ok(out)
}

fn raw_act(v: &Value, path: &str) -> Result<RawAct, BaselineError> {
    let keys = [
        "contacts",
        "current_day",
        "current_day_mask",
        "days",
        "weekday",
        "weekday_days",
        "weekend",
        "weekend_days",
    ];
    let m = object(v, path, &keys)?;
    let mut a = RawAct {
        contacts: int(m, "contacts", path, u64::MAX)?,
        current_day: opt_string(m, "current_day", path)?,
        current_day_mask: int(m, "current_day_mask", path, u64::MAX)?,
        days: int(m, "days", path, u32::MAX.into())? as u32,
        weekday_days: int(m, "weekday_days", path, u16::MAX.into())? as u16,
        weekend_days: int(m, "weekend_days", path, u16::MAX.into())? as u16,
        ..Default::default()
    };
    for (name, slots) in [("weekday", &mut a.weekday), ("weekend", &mut a.weekend)] {
        let arr = array(m, name, path)?;
        if arr.len() != 24 {
            let msg = format!("expected 24 counters, found {}", arr.len());
            return Err(bad(&format!("{path}.{name}"), msg));
        }
        for (h, x) in arr.iter().enumerate() {
            slots[h] = x
                .as_u64()
                .filter(|&n| n <= u16::MAX.into())
                .ok_or_else(|| {
                    let msg = format!("expected an integer 0..=65535, found {}", short(x));
                    bad(&format!("{path}.{name}[{h}]"), msg)
                })? as u16;
        }
    }
    Ok(a)
}

fn raw_doc(v: &Value) -> Result<RawDoc, BaselineError> {
    let root = v
        .as_object()
        .ok_or_else(|| bad("$", "expected a JSON object"))?;
    check_head(root.get("format"), root.get("version"))?;
    let keys = [
        "format",
        "hosts",
        "last_seen",
        "learning_started",
        "learning_until",
        "org_services",
        "version",
    ];
    let m = object(v, "$", &keys)?;
    let mut hosts = Vec::new();
    for (i, hv) in array(m, "hosts", "$")?.iter().enumerate() {
        let path = format!("$.hosts[{i}]");
        let keys = [
            "activity",
            "count",
            "first_seen",
            "host",
            "last_seen",
            "services",
        ];
        let h = object(hv, &path, &keys)?;
        hosts.push(RawHost {
            activity: raw_act(&h["activity"], &format!("{path}.activity"))?,
            count: int(h, "count", &path, u64::MAX)?,
            first_seen: string(h, "first_seen", &path)?,
            host: string(h, "host", &path)?,
            last_seen: string(h, "last_seen", &path)?,
            services: raw_svcs(h, "services", &path)?,
        });
    }
    Ok(RawDoc {
        format: FORMAT.to_string(),
        hosts,
        last_seen: opt_string(m, "last_seen", "$")?,
        learning_started: opt_string(m, "learning_started", "$")?,
        learning_until: opt_string(m, "learning_until", "$")?,
        org_services: raw_svcs(m, "org_services", "$")?,
        version: VERSION,
    })
}

/// Formats ns since the epoch as RFC 3339 UTC (`2026-03-02T09:15:00Z`, or with a fraction).
pub fn fmt_time(ns: u64) -> String {
    Time(ns).to_string()
}

/// A time (ns since the epoch) that displays and serialises as RFC 3339 UTC.
#[derive(Clone, Copy)]
struct Time(u64);

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (secs, frac) = (self.0 / NS_PER_SEC, self.0 % NS_PER_SEC);
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let sod = secs % 86_400;
        let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
        write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")?;
        if frac != 0 {
            let mut frac = format!("{frac:09}");
            frac.truncate(frac.trim_end_matches('0').len());
            write!(f, ".{frac}")?;
        }
        f.write_str("Z")
    }
}

/// A day (days since the epoch) that serialises as `2026-03-02`.
struct Day(u32);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Time(u64::from(self.0) * NS_PER_DAY).to_string()[..10])
    }
}

// Borrowed views written by `save` and `export_json`; field order is the (alphabetical) key order.
#[derive(Serialize)]
struct FileView<'a> {
    format: &'static str,
    hosts: Vec<HostView<'a>>,
    last_seen: Option<Time>,
    learning_started: Option<Time>,
    learning_until: Option<Time>,
    org_services: Vec<SvcView<'a>>,
    version: u64,
}

#[derive(Serialize)]
struct HostView<'a> {
    activity: ActView<'a>,
    count: u64,
    first_seen: Time,
    host: IpAddr,
    last_seen: Time,
    services: Vec<SvcView<'a>>,
}

#[derive(Serialize)]
struct ActView<'a> {
    contacts: u64,
    current_day: Option<Day>,
    current_day_mask: u64,
    days: u32,
    weekday: &'a [u16; 24],
    weekday_days: u16,
    weekend: &'a [u16; 24],
    weekend_days: u16,
}

fn svc_views(m: &HashMap<Box<str>, Seen>) -> Vec<SvcView<'_>> {
    let mut v: Vec<SvcView<'_>> = m
        .iter()
        .map(|(k, s)| SvcView {
            count: s.count,
            first_seen: Time(s.first),
            last_seen: Time(s.last),
            service: k,
        })
        .collect();
    v.sort_unstable_by(|a, b| a.service.cmp(b.service));
    v
}

#[derive(Serialize)]
struct SvcView<'a> {
    count: u64,
    first_seen: Time,
    last_seen: Time,
    service: &'a str,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC, 1970 or later) to ns since the epoch.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0, |n, c| n * 10 + u64::from(c - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970
        || !(1..=12).contains(&mo)
        || d < 1
        || d > mdays[mo as usize - 1]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let rest = &s[19..];
    let frac = match rest.strip_prefix('.') {
        None if rest == "Z" => 0,
        Some(f) if f.len() >= 2 && f.len() <= 10 && f.ends_with('Z') => {
            let digits = &f[..f.len() - 1];
            let n: u64 = digits
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| digits.parse().ok())??;
            n * 10u64.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let secs = days_from_civil(y as i64, mo, d) as u64 * 86_400 + hh * 3600 + mm * 60 + ss;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::Ipv4Addr;

    const H: u64 = 3600 * NS_PER_SEC;
    /// 2026-03-02 00:00 UTC, a Monday.
    const MON: u64 = 1_772_409_600 * NS_PER_SEC;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }
    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("baseline-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }
    fn opts() -> BaselineOpts {
        BaselineOpts {
            learning_ns: 24 * H,
            ..Default::default()
        }
    }
    /// A small but varied baseline.
    fn sample() -> Baseline {
        let mut b = Baseline::in_memory(opts());
        for i in 0..50u64 {
            let t = MON + i * H + i * 1_234_567;
            b.observe(ip(i as u32 % 7), &format!("svc-{}", i % 11), t);
            b.note_activity(ip(i as u32 % 7), (i % 168) as u8, t);
        }
        b.observe("fd00::1".parse().unwrap(), "dropbox", MON + 80 * H);
        b
    }

    #[test]
    fn time_format_round_trips() {
        assert_eq!(fmt_time(MON), "2026-03-02T00:00:00Z");
        assert_eq!(fmt_time(MON + 1_500_000_000), "2026-03-02T00:00:01.5Z");
        for t in [0, MON, MON + 1, MON + 123_456_789, u64::MAX / 2, u64::MAX] {
            assert_eq!(parse_time(&fmt_time(t)), Some(t));
        }
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-03-02T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-03-02T00:00:00",
            "2026-03-02T00:00:00.Z",
            "2026-03-02T00:00:00.1234567890Z",
            "9999-12-31T23:59:59Z",
            "2026-03-02T00:00:00+01:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn learning_then_first_use() {
        let mut b = Baseline::in_memory(opts());
        assert!(b.learning(0));
        assert_eq!(b.observe(ip(1), "github", MON), Use::Learning);
        assert_eq!(b.observe(ip(2), "pypi", MON + 23 * H), Use::Learning);
        assert!(b.learning(MON + 24 * H - 1) && !b.learning(MON + 24 * H));
        assert_eq!(b.stats().learning_until_ns, Some(MON + 24 * H));
        let t = MON + 25 * H;
        assert_eq!(b.observe(ip(1), "github", t), Use::Known);
        assert_eq!(b.observe(ip(3), "github", t), Use::NewForHost);
        assert_eq!(b.observe(ip(3), "github", t + 1), Use::Known);
        assert_eq!(b.observe(ip(3), "trycloudflare", t), Use::NewForOrg);
        assert_eq!(b.observe(ip(4), "trycloudflare", t), Use::NewForHost);
        assert!(b.org_uses("pypi") && b.host_uses(ip(2), "pypi") && !b.host_uses(ip(1), "pypi"));
        let s = b.stats();
        assert_eq!((s.hosts, s.services, s.org_services), (4, 5, 3));
        // Bad input does not panic: huge names are cut, odd names are a service like any other,
        // and all of it reads back.
        let long = "é".repeat(400);
        b.observe(ip(5), &long, t);
        b.observe(ip(5), "", t);
        b.observe(ip(5), "\u{0}\n", u64::MAX);
        let mut again = Baseline::in_memory(opts());
        again.import_json(&b.export_json()).unwrap();
        assert_eq!(again.export_json(), b.export_json());
        assert!(b.org_uses(&long) && clip(&long).len() <= MAX_SERVICE_LEN);
        b.note_activity(ip(5), 200, t);
        assert!(!b.odd_hour(ip(5), 255));
    }

    #[test]
    fn aging_out() {
        let mut b = Baseline::in_memory(BaselineOpts {
            max_age_ns: 10 * H,
            ..opts()
        });
        b.observe(ip(1), "old", MON);
        b.observe(ip(2), "new", MON + 5 * H);
        b.observe(ip(1), "new", MON + 5 * H);
        b.age_out(MON + 12 * H);
        let s = b.stats();
        assert_eq!(
            (s.hosts, s.services, s.org_services, s.evicted_age),
            (2, 2, 1, 2)
        );
        assert!(!b.org_uses("old") && b.host_uses(ip(1), "new"));
        b.age_out(MON + 100 * H);
        let s = b.stats();
        assert_eq!(
            (s.hosts, s.services, s.org_services, s.evicted_age),
            (0, 0, 0, 7)
        );
    }

    #[test]
    fn caps_with_counted_evictions() {
        let o = BaselineOpts {
            max_hosts: 32,
            max_services_per_host: 16,
            max_services: 64,
            max_pairs: 100,
            ..opts()
        };
        let mut b = Baseline::in_memory(o.clone());
        let mut t = MON;
        for i in 0..2000u32 {
            t += 1000;
            b.observe(ip(i % 50), &format!("s{}", i % 97), t);
            let s = b.stats();
            assert!(
                s.hosts <= 32 && s.org_services <= 64 && s.services <= 100,
                "{s:?}"
            );
            assert!(b.hosts.values().all(|h| h.services.len() <= 16));
            assert_eq!(
                s.services,
                b.hosts.values().map(|h| h.services.len()).sum::<usize>()
            );
        }
        assert!(b.stats().evicted_cap > 1000);
        // The most recent use survives eviction; a burst on one host evicts its own oldest first.
        assert!(b.host_uses(ip(1999 % 50), &format!("s{}", 1999 % 97)));
        let before = b.stats().evicted_cap;
        for i in 0..40 {
            t += 1000;
            b.observe(ip(7), &format!("burst{i}"), t);
        }
        assert!(b.host_uses(ip(7), "burst39") && b.stats().evicted_cap > before);
        // Lower caps on an existing state: enforced exactly by age_out, counted.
        b.opts = BaselineOpts {
            max_hosts: 3,
            max_services: 5,
            max_pairs: 4,
            ..o
        };
        let before = b.stats().evicted_cap;
        b.age_out(t);
        let s = b.stats();
        assert_eq!((s.hosts, s.org_services), (3, 5));
        assert!(s.services <= 4 && s.evicted_cap > before);
        // Zero caps: nothing stored, nothing panics.
        let mut z = Baseline::in_memory(BaselineOpts {
            max_hosts: 0,
            max_services: 0,
            max_pairs: 0,
            max_services_per_host: 0,
            ..opts()
        });
        z.observe(ip(1), "x", MON);
        z.note_activity(ip(1), 3, MON);
        assert_eq!(z.stats().hosts + z.stats().services, 0);
    }

    #[test]
    fn save_reopen_keeps_everything() {
        let dir = tmpdir("reopen");
        let (mut b, rep) = Baseline::open(&dir, opts()).unwrap();
        assert_eq!(
            rep,
            OpenReport {
                fresh: true,
                set_aside: None
            }
        );
        let s = sample();
        b.import_json(&s.export_json()).unwrap();
        b.save().unwrap();
        b.save().unwrap(); // not dirty: no write
        assert_eq!(b.stats().writes, 1);
        let (b2, rep) = Baseline::open(&dir, opts()).unwrap();
        assert_eq!(
            rep,
            OpenReport {
                fresh: false,
                set_aside: None
            }
        );
        assert_eq!(b2.export_json(), s.export_json());
        assert_eq!(b2.stats().learning_until_ns, s.stats().learning_until_ns);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME], "no temp file left");
        // Errors that are not corruption are errors.
        let file = dir.join(FILE_NAME);
        let e = Baseline::open(&file, opts()).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_file_set_aside() {
        let good = serde_json::to_string(&sample().export_json()).unwrap();
        let cases = [
            (
                r#"{"format":"cloudtap-baseline","hosts":["#.to_string(),
                "not valid JSON",
            ),
            (
                r#"{"format":"cloudtap-baseline","version":7}"#.into(),
                "unsupported version 7",
            ),
            ("\u{0}\u{ff}garbage".into(), "not valid JSON"),
            (String::new(), "not valid JSON: EOF"),
            (
                good.replacen("\"10.0.0.1\"", "\"10.0.0.x\"", 1),
                "$.hosts[1].host: expected an IPv4",
            ),
            (
                good.replacen("\"count\":", "\"count\":-", 1),
                "does not match the version-1 format",
            ),
        ];
        for (i, (text, why)) in cases.iter().enumerate() {
            let dir = tmpdir(&format!("corrupt{i}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(FILE_NAME), text).unwrap();
            let (mut b, rep) = Baseline::open(&dir, opts()).unwrap();
            let (aside, reason) = rep.set_aside.expect("set aside");
            assert!(
                rep.fresh && reason.contains(why) && reason.contains("fresh"),
                "{reason}"
            );
            assert_eq!(fs::read_to_string(&aside).unwrap(), *text);
            eprintln!("set aside: {reason}");
            assert!(aside
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("baseline.json.corrupt-"));
            assert_eq!(b.stats().hosts, 0);
            b.observe(ip(1), "x", MON);
            b.save().unwrap();
            assert!(Baseline::open(&dir, opts()).unwrap().1.set_aside.is_none());
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn export_import_round_trip_and_validation() {
        let s = sample();
        let e = s.export_json();
        let mut fresh = Baseline::in_memory(opts());
        let sum = fresh.import_json(&e).unwrap();
        assert_eq!((sum.hosts, sum.org_services, sum.evicted_cap), (8, 12, 0));
        assert_eq!(fresh.export_json(), e);
        fresh.import_json(&e).unwrap(); // idempotent
        assert_eq!(
            serde_json::to_string(&fresh.export_json()).unwrap(),
            serde_json::to_string(&e).unwrap()
        );
        assert_eq!(e["hosts"][0]["host"], "10.0.0.0");
        assert_eq!(e["learning_until"], "2026-03-03T00:00:00Z");
        // Every error names its path; nothing is merged from an invalid document.
        let broken = |path: &[&str], val: Value| {
            let mut v = e.clone();
            let mut cur = &mut v;
            for k in path {
                cur = match k.parse::<usize>() {
                    Ok(i) => &mut cur[i],
                    Err(_) => &mut cur[*k],
                };
            }
            *cur = val;
            let mut b = Baseline::in_memory(opts());
            let err = b.import_json(&v).unwrap_err().to_string();
            assert_eq!(b.stats().hosts, 0);
            err
        };
        let err = broken(
            &["hosts", "2", "services", "0", "first_seen"],
            json!("yesterday"),
        );
        assert!(
            err.starts_with("$.hosts[2].services[0].first_seen: expected an RFC 3339"),
            "{err}"
        );
        let err = broken(&["hosts", "1", "host"], json!("10.0.0.300"));
        assert!(
            err.starts_with("$.hosts[1].host: expected an IPv4 or IPv6"),
            "{err}"
        );
        let err = broken(&["hosts", "0", "activity", "weekday", "3"], json!(-1));
        assert!(err.starts_with("$.hosts[0].activity.weekday[3]:"), "{err}");
        let err = broken(&["org_services", "0", "colour"], json!(1));
        assert!(
            err.starts_with("$.org_services[0].colour: unknown field"),
            "{err}"
        );
        let err = broken(&["org_services", "1", "service"], json!("x".repeat(300)));
        assert!(err.starts_with("$.org_services[1].service:"), "{err}");
        let err = broken(&["version"], json!(2));
        assert!(err.contains("unsupported version 2"), "{err}");
        let err = broken(&["hosts"], json!({}));
        assert!(err.starts_with("$.hosts: expected an array"), "{err}");
    }

    /// Contacts at `hours` of the day on the given days (0 = Monday 2026-03-02), `per_hour` each.
    fn activity_on(b: &mut Baseline, host: IpAddr, days: &[u64], hours: &[u64], per_hour: u64) {
        for &d in days {
            for &h in hours {
                for k in 0..per_hour {
                    b.note_activity(
                        host,
                        ((d % 7) * 24 + h) as u8,
                        MON + d * 24 * H + h * H + k * (H / per_hour),
                    );
                }
            }
        }
    }

    #[test]
    fn odd_hour_workstation_vs_ci_runner() {
        let mut b = Baseline::in_memory(opts());
        let (ws, ci, new) = (ip(10), ip(20), ip(30));
        activity_on(
            &mut b,
            ws,
            &[0, 1, 2, 3, 4],
            &(9..17).collect::<Vec<_>>(),
            4,
        );
        activity_on(&mut b, ci, &[0, 1, 2], &(0..24).collect::<Vec<_>>(), 6);
        // One day of history while learning: no profile yet, never odd.
        activity_on(&mut b, new, &[2], &[10], 3);
        let (tue, sat) = (24u8, 5 * 24u8);
        assert!(b.odd_hour(ws, tue + 3) && b.odd_hour(ws, tue + 21) && b.odd_hour(ws, sat + 3));
        assert!(!b.odd_hour(ws, tue + 8) && !b.odd_hour(ws, tue + 12) && !b.odd_hour(ws, tue + 17));
        assert!(
            !b.odd_hour(ws, sat + 11),
            "no weekend history: judged by weekday habits"
        );
        assert!(
            (0..168).all(|h| !b.odd_hour(ci, h)),
            "busy around the clock: never odd"
        );
        assert!(!b.odd_hour(new, tue + 3) && !b.odd_hour(ip(99), tue + 3));
        // One night at 3 a.m. in 30 working days stays odd; a regular night shift becomes usual.
        let days: Vec<u64> = (7..49).filter(|d| d % 7 < 5).collect();
        activity_on(&mut b, ws, &days, &(9..17).collect::<Vec<_>>(), 2);
        activity_on(&mut b, ws, &[10], &[3], 20);
        assert!(b.odd_hour(ws, tue + 3));
        activity_on(
            &mut b,
            ws,
            &(50..60).filter(|d| d % 7 < 5).collect::<Vec<_>>(),
            &[3],
            1,
        );
        assert!(!b.odd_hour(ws, tue + 3));
        // Learning over + 20 contacts on one day is enough for a profile.
        let mut b = Baseline::in_memory(opts());
        activity_on(&mut b, new, &[0], &[10, 11], 12);
        assert!(!b.odd_hour(new, 3));
        b.observe(ip(1), "x", MON + 40 * H);
        assert!(b.odd_hour(new, 3) && !b.odd_hour(new, 10));
    }

    const CHILD_ENV: &str = "CLOUDTAP_BASELINE_KILL9_DIR";

    /// Child side of `kill9_durability`: does nothing unless started by it.
    #[test]
    fn kill9_child() {
        let Ok(dir) = std::env::var(CHILD_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let (mut b, rep) = Baseline::open(&dir, opts()).unwrap();
        assert!(rep.set_aside.is_none());
        let mut n: u64 =
            fs::read_to_string(dir.join("marker")).map_or(0, |s| s.trim().parse().unwrap());
        let start = std::time::Instant::now();
        while start.elapsed().as_secs() < 20 {
            n += 1;
            b.observe(
                ip((n % 250) as u32),
                &format!("svc-{n}"),
                MON + n * NS_PER_SEC,
            );
            b.note_activity(ip((n % 250) as u32), (n % 168) as u8, MON + n * NS_PER_SEC);
            b.save().unwrap();
            fs::write(dir.join("marker.tmp"), n.to_string()).unwrap();
            fs::rename(dir.join("marker.tmp"), dir.join("marker")).unwrap();
        }
    }

    #[test]
    fn kill9_durability() {
        let dir = tmpdir("kill9");
        fs::create_dir_all(&dir).unwrap();
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, m)| m);
        let mut seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        let mut last = 0;
        for round in 0..20 {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    &format!("{module}::kill9_child"),
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, &dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(std::time::Duration::from_millis(20 + seed % 120));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let (b, rep) = Baseline::open(&dir, opts()).unwrap();
            assert!(rep.set_aside.is_none(), "round {round}: {rep:?}");
            let n: u64 =
                fs::read_to_string(dir.join("marker")).map_or(0, |s| s.trim().parse().unwrap());
            for i in 1..=n {
                assert!(
                    b.org_uses(&format!("svc-{i}")),
                    "round {round}: svc-{i} of {n} lost"
                );
            }
            assert!(n >= last);
            last = n;
        }
        assert!(last > 0, "the child never completed a save");
        eprintln!("kill9_durability: 20 kills, {last} committed saves checked");
        fs::remove_dir_all(&dir).unwrap();
    }
}
