//! ECS output (docs/ecs.md) end to end: cloudtap runs over the real captures (alerts per
//! flow, and per window with the detection stage's verdicts; every event type), every EVE
//! line is converted with `from_eve`, and every row of the mapping tables in docs/ecs.md,
//! read from the file, is checked against the EVE line it came from: for every line that
//! has the row's EVE field, the document has the ECS field with the value the row's rule
//! gives. The rules are computed here on their own, from the doc's wording, not by calling
//! the converter's helpers. In reverse, every field of every document must be one the doc
//! lists, so the doc and the code cannot drift either way.

use cloudtap::output::ecs::from_eve;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row of a mapping table.
#[derive(Debug, Clone)]
struct Row {
    /// EVE paths (empty for a constant).
    eve: Vec<String>,
    ecs: String,
    rule: String,
    /// `None`: any event type.
    events: Option<Vec<String>>,
}

impl Row {
    fn name(&self) -> String {
        format!("{} -> {} ({})", self.eve.join(" + "), self.ecs, self.rule)
    }
    fn applies(&self, event_type: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|l| l.iter().any(|e| e == event_type))
    }
}

const RULES: &[&str] = &[
    "same",
    "string",
    "lower",
    "time",
    "hex",
    "first",
    "dataset",
    "action-type",
    "version-number",
    "version-protocol",
    "ip-version",
    "sum",
    "duration-ns",
    "distinct",
    "spaces",
    "undotted",
    "dotted",
    "undotted-names",
    "dotted-names",
    "answers",
    "resolved-ip",
    "header-flags",
    "op-code",
];

/// The four-column tables of docs/ecs.md after "## Mapping".
fn doc_rows() -> Vec<Row> {
    let doc = std::fs::read_to_string(root().join("docs/ecs.md")).expect("docs/ecs.md");
    let (_, mapping) = doc.split_once("## Mapping").expect("a Mapping section");
    let unquote = |c: &str| c.trim().trim_matches('`').to_string();
    let mut rows = Vec::new();
    for line in mapping.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() != 4 || cells[0].contains("---") || cells[0].trim() == "EVE field" {
            continue;
        }
        let eve = cells[0].trim();
        let eve: Vec<String> = if eve == "—" {
            Vec::new()
        } else {
            eve.split(" + ").map(unquote).collect()
        };
        let rule = unquote(cells[2]);
        assert!(
            RULES.contains(&rule.as_str()) || rule.starts_with("const "),
            "docs/ecs.md: unknown rule {rule:?} in {line}"
        );
        assert_eq!(eve.is_empty(), rule.starts_with("const "), "{line}");
        let events = cells[3].trim();
        let events = (events != "any").then(|| events.split(", ").map(String::from).collect());
        rows.push(Row {
            eve,
            ecs: unquote(cells[1]),
            rule,
            events,
        });
    }
    rows
}

fn run(capture: &Path, mode: &str) -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["-q", "--alert-mode", mode, "--types"])
        .arg("alert,dns,tls,http,quic,flow,stats")
        .arg("-r")
        .arg(capture)
        .output()
        .expect("cloudtap runs");
    assert!(
        o.status.success(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn pcaps(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("captures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    v
}

/// EVE lines from every capture: the top-level ones with alerts per flow, the scenarios and
/// holdout captures with the detection stage's per-entity windows and verdicts (`--alert-mode entity`).
fn eve_lines() -> Vec<String> {
    let c = root().join("captures");
    let mut lines = Vec::new();
    for p in pcaps(&c) {
        lines.extend(run(&p, "flow"));
    }
    for d in ["scenarios", "holdout"] {
        for p in pcaps(&c.join(d)) {
            lines.extend(run(&p, "entity"));
        }
    }
    lines
}

/// `a.b[0].c` in `v`.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        let (key, idx) = match seg.split_once('[') {
            Some((k, i)) => (k, Some(i.trim_end_matches(']').parse::<usize>().ok()?)),
            None => (seg, None),
        };
        cur = cur.get(key)?;
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur).filter(|v| !v.is_null())
}

/// An EVE field as the doc names it: `dns.` rows read the event's DNS object (an alert's
/// first question, or its answer).
fn eve_at<'a>(eve: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(rest) = path.strip_prefix("dns.") {
        let d = eve.get("dns")?;
        let d = match (d.get("query"), d.get("answer")) {
            (Some(q), _) => q.get(0)?,
            (None, Some(a)) => a,
            (None, None) => d,
        };
        return at(d, rest);
    }
    at(eve, path)
}

/// Seconds and nanoseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.f][+0000]` (what EVE
/// writes), for durations.
fn epoch_ns(t: &str) -> i128 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Hinnant), as in any calendar library.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let frac = t[19..].strip_prefix('.').map_or(0, |f| {
        let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
        format!("{digits:0<9}").parse::<i128>().expect("fraction")
    });
    assert!(
        t.ends_with("+0000") || t.len() <= 29,
        "EVE time in UTC: {t}"
    );
    i128::from(secs) * 1_000_000_000 + frac
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn version_number(v: &str) -> Option<String> {
    let plain = |s: &str| {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.')).then(|| s.into())
    };
    match v {
        "SSLv2" => Some("2.0".into()),
        "SSLv3" => Some("3.0".into()),
        _ => v
            .strip_prefix("TLS ")
            .or_else(|| v.strip_prefix("HTTP/"))
            .and_then(plain),
    }
}

/// The value a row's rule gives for the EVE sources (all present-or-absent values), or
/// `None` when it gives nothing.
fn expected(rule: &str, src: &[Option<&Value>]) -> Option<Value> {
    if let Some(c) = rule.strip_prefix("const ") {
        return Some(serde_json::from_str(c).expect("const is JSON"));
    }
    let one = src.first().copied().flatten();
    let s = one.and_then(Value::as_str);
    let names_at = |dotted: bool| -> Option<Value> {
        let ids = strings(src.first().copied().flatten()?);
        let names = strings(src.get(1).copied().flatten()?);
        let v: Vec<Value> = ids
            .iter()
            .zip(&names)
            .filter(|(i, _)| i.contains('.') == dotted)
            .map(|(_, n)| Value::from(n.replace('_', " ")))
            .collect();
        (!v.is_empty()).then_some(Value::Array(v))
    };
    let uniq = |items: Vec<String>| -> Option<Value> {
        let mut out: Vec<String> = Vec::new();
        for i in items {
            if !out.contains(&i) {
                out.push(i);
            }
        }
        (!out.is_empty()).then(|| json!(out))
    };
    match rule {
        "same" => one.cloned(),
        "string" => one?.as_u64().map(|n| n.to_string().into()),
        "lower" => s.map(|s| s.to_lowercase().into()),
        "time" => {
            let s = s?;
            let t = match s.strip_suffix("+0000") {
                Some(t) => t.to_string(),
                None => {
                    assert_eq!(s.len(), 19, "EVE time without a zone: {s}");
                    s.to_string()
                }
            };
            Some(format!("{t}Z").into())
        }
        "hex" => s.map(|s| s.replace(':', "").to_uppercase().into()),
        "first" => one?.get(0).cloned(),
        "dataset" => s.map(|s| format!("cloudtap.{s}").into()),
        "action-type" => match s? {
            "allowed" => Some(json!(["allowed"])),
            "blocked" => Some(json!(["denied"])),
            _ => None,
        },
        "version-number" => version_number(s?).map(Value::from),
        "version-protocol" => {
            version_number(s?)?;
            if s?.starts_with("TLS ") {
                Some("tls".into())
            } else if s?.starts_with("SSLv") {
                Some("ssl".into())
            } else {
                None
            }
        }
        "ip-version" => Some(if s?.parse::<std::net::Ipv4Addr>().is_ok() {
            "ipv4".into()
        } else {
            assert!(s?.parse::<std::net::Ipv6Addr>().is_ok());
            "ipv6".into()
        }),
        "sum" => Some((src[0]?.as_u64()? + src[1]?.as_u64()?).into()),
        "duration-ns" => {
            let ns = epoch_ns(src[1]?.as_str()?) - epoch_ns(src[0]?.as_str()?);
            Some(u64::try_from(ns).ok()?.into())
        }
        "distinct" => uniq(src.iter().flatten().flat_map(|v| strings(v)).collect()),
        "spaces" => Some(
            strings(one?)
                .iter()
                .map(|n| n.replace('_', " "))
                .collect::<Vec<_>>()
                .into(),
        ),
        "undotted" => uniq(
            strings(one?)
                .iter()
                .map(|i| i.split('.').next().unwrap_or(i).to_string())
                .collect(),
        ),
        "dotted" => uniq(
            strings(one?)
                .into_iter()
                .filter(|i| i.contains('.'))
                .collect(),
        ),
        "undotted-names" => names_at(false),
        "dotted-names" => names_at(true),
        "answers" => Some(Value::Array(
            one?.as_array()?
                .iter()
                .map(|a| {
                    let mut o = json!({"name": a["rrname"], "type": a["rrtype"], "ttl": a["ttl"]});
                    if let Some(r) = a.get("rdata") {
                        o["data"] = r.clone();
                    }
                    o
                })
                .collect(),
        )),
        "resolved-ip" => uniq(
            one?.as_array()?
                .iter()
                .filter(|a| a["rrtype"] == "A" || a["rrtype"] == "AAAA")
                .filter_map(|a| a["rdata"].as_str().map(String::from))
                .collect(),
        ),
        "header-flags" => {
            let f: Vec<&str> = ["AA", "TC", "RD", "RA"]
                .into_iter()
                .zip(src)
                .filter(|(_, v)| v.and_then(Value::as_bool) == Some(true))
                .map(|(f, _)| f)
                .collect();
            (!f.is_empty()).then(|| json!(f))
        }
        "op-code" => Some(
            match one?.as_u64()? {
                0 => "QUERY".to_string(),
                1 => "IQUERY".into(),
                2 => "STATUS".into(),
                4 => "NOTIFY".into(),
                5 => "UPDATE".into(),
                6 => "DSO".into(),
                n => n.to_string(),
            }
            .into(),
        ),
        other => panic!("rule {other:?} has no check"),
    }
}

/// Leaf paths of a document (arrays are leaves).
fn leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(x, &p, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Rows checked on no real event: fields cloudtap does not write yet (`community_id`,
/// `http.status`, `cloudtap.event_id`, a blocked action) or that the captures lack; the unit
/// tests in src/output/ecs.rs feed them synthetic lines.
const NOT_IN_CAPTURES: &[&str] = &[
    "community_id -> network.community_id (same)",
    "http.status -> http.response.status_code (same)",
    "cloudtap.event_id -> event.id (same)",
];

#[test]
fn ecs_documents_follow_the_doc_row_by_row() {
    let rows = doc_rows();
    assert!(rows.len() >= 100, "mapping rows read: {}", rows.len());
    let lines = eve_lines();
    let mut hits: BTreeMap<String, usize> = rows.iter().map(|r| (r.name(), 0)).collect();
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    let mut docs = Vec::with_capacity(lines.len());
    for l in &lines {
        out.clear();
        from_eve(l.as_bytes(), &mut out).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(!out.contains(&b'\n'), "one line: {l}");
        docs.push(out.clone());
    }
    let first = started.elapsed();
    // Conversion cost, best of three more passes (the machine is shared), by event type.
    let mut by_type: BTreeMap<&str, (std::time::Duration, u32)> = BTreeMap::new();
    for _ in 0..3 {
        let mut pass: BTreeMap<&str, (std::time::Duration, u32)> = BTreeMap::new();
        for l in &lines {
            let t = l.split("\"event_type\":\"").nth(1).unwrap_or("?");
            let t = &t[..t.find('"').unwrap_or(0)];
            let s = std::time::Instant::now();
            out.clear();
            from_eve(l.as_bytes(), &mut out).expect("converts");
            let e = pass.entry(t).or_default();
            e.0 += s.elapsed();
            e.1 += 1;
        }
        for (t, v) in pass {
            let e = by_type.entry(t).or_insert(v);
            if v.0 < e.0 {
                *e = v;
            }
        }
    }
    let total: std::time::Duration = by_type.values().map(|v| v.0).sum();
    // For scale: parsing the line into a Value alone, the floor of this design.
    let s = std::time::Instant::now();
    for l in &lines {
        let v: Value = serde_json::from_slice(l.as_bytes()).expect("EVE is JSON");
        std::hint::black_box(&v);
    }
    let parse = s.elapsed() / lines.len().max(1) as u32;
    println!(
        "{} EVE lines converted: first pass {:?} per event, best pass {:?} per event \
         (parsing alone {parse:?})",
        lines.len(),
        first / lines.len().max(1) as u32,
        total / lines.len().max(1) as u32
    );
    for (t, (d, n)) in &by_type {
        println!("  {t}: {:?} per event ({n})", *d / (*n).max(1));
    }

    for (l, o) in lines.iter().zip(&docs) {
        let eve: Value = serde_json::from_str(l).expect("EVE is JSON");
        let ecs: Value = serde_json::from_slice(o).expect("ECS is JSON");
        let et = eve["event_type"].as_str().expect("event_type").to_string();
        *types.entry(et.clone()).or_default() += 1;
        let mut documented: BTreeSet<String> = BTreeSet::new();
        let mut prefixes: Vec<String> = Vec::new();
        for r in rows.iter().filter(|r| r.applies(&et)) {
            if let Some(src) = r.eve.first().and_then(|p| p.strip_suffix('*')) {
                // Wildcard: each key of the EVE object (with the given key prefix) lands
                // under the ECS prefix, value as is.
                // `cloudtap.` -> (cloudtap, ""); `alert.metadata.cloudtap_` -> (alert.metadata,
                // cloudtap_).
                let (obj, key_prefix) = src.rsplit_once('.').unwrap_or((src, ""));
                let to = r.ecs.trim_end_matches('*').trim_end_matches('.');
                let Some(m) = at(&eve, obj).and_then(Value::as_object) else {
                    continue;
                };
                for (k, v) in m {
                    let Some(name) = k.strip_prefix(key_prefix) else {
                        continue;
                    };
                    let p = format!("{to}.{name}");
                    assert_eq!(
                        at(&ecs, &p),
                        Some(v),
                        "{}: {p}\nEVE {l}\nECS {ecs}",
                        r.name()
                    );
                    prefixes.push(p);
                    *hits.get_mut(&r.name()).expect("row") += 1;
                }
                continue;
            }
            let src: Vec<Option<&Value>> = r.eve.iter().map(|p| eve_at(&eve, p)).collect();
            documented.insert(r.ecs.clone());
            if !r.eve.is_empty() && src.iter().all(Option::is_none) {
                continue;
            }
            let Some(want) = expected(&r.rule, &src) else {
                continue;
            };
            assert_eq!(
                at(&ecs, &r.ecs),
                Some(&want),
                "{}\nEVE {l}\nECS {ecs}",
                r.name()
            );
            *hits.get_mut(&r.name()).expect("row") += 1;
        }
        // Every field of the document is one the doc lists for this event type.
        let mut ls = Vec::new();
        leaves(&ecs, "", &mut ls);
        for f in ls {
            let ok = documented.contains(&f)
                || documented
                    .iter()
                    .chain(&prefixes)
                    .any(|d| f == *d || f.starts_with(&format!("{d}.")));
            assert!(ok, "{f} is not in docs/ecs.md (event {et})\nECS {ecs}");
        }
    }
    println!("event types: {types:?}");
    for t in ["alert", "dns", "tls", "http", "quic", "flow", "stats"] {
        assert!(types.get(t).copied().unwrap_or(0) > 0, "no {t} events");
    }
    let unchecked: Vec<&String> = hits
        .iter()
        .filter(|(n, c)| **c == 0 && !NOT_IN_CAPTURES.contains(&n.as_str()))
        .map(|(n, _)| n)
        .collect();
    assert!(
        unchecked.is_empty(),
        "rows no real event exercised: {unchecked:#?}"
    );
    println!(
        "{} rows checked against {} EVE lines",
        rows.len(),
        lines.len()
    );
}

#[test]
fn odd_input_is_an_error_not_a_panic() {
    let good = br#"{"timestamp":"2026-11-27T21:18:38.093732+0000","event_type":"dns","src_ip":"10.0.0.1","dns":{"type":"query","rrname":"a.example"}}"#;
    let mut out = Vec::new();
    from_eve(good, &mut out).expect("a good line converts");
    for cut in 0..good.len() {
        let mut o = Vec::new();
        assert!(from_eve(&good[..cut], &mut o).is_err(), "cut at {cut}");
        assert!(o.is_empty(), "nothing appended on error");
    }
    for odd in [&b""[..], b"[1,2]", b"{\"event_type\":\"dns\"}", b"\x00\x01"] {
        let mut o = Vec::new();
        assert!(from_eve(odd, &mut o).is_err());
        assert!(o.is_empty());
    }
}
