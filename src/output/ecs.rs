//! Elastic Common Schema (ECS 8.11) documents from EVE lines, for sinks that ask for
//! `format=ecs`. The mapping, field by field, is the table in docs/ecs.md; tests/ecs.rs reads
//! that table and checks every row against real EVE output, so the two cannot drift.
//!
//! Rules kept throughout:
//! - The input is one EVE line as cloudtap writes it (src/output/eve.rs, src/output/stats.rs).
//!   It is parsed into a `serde_json::Value`: this runs only when an ECS sink exists, and the
//!   few hundred bytes of an event parse in about a microsecond.
//! - Only a line that is not a JSON object, or has no usable `timestamp` or `event_type`, is an
//!   error (an ECS document needs `@timestamp` and `event.dataset`). A field of another type
//!   than EVE writes (a port as a string, say) is left out, never guessed at.
//! - Nothing here panics, whatever the input: every lookup is checked, every number is
//!   range-checked, arithmetic on dates is done in i64/i128 and checked.
//! - What ECS has no field for stays in the custom `cloudtap.*` namespace (ECS's advice for
//!   custom fields: a name ECS will not take), including the whole EVE `cloudtap` object
//!   (the detection stage's verdict, labels, `event_id`).

use crate::timefmt::{civil_from_days, days_from_civil};
use serde_json::{Map, Value};

/// The ECS release this mapping follows (`ecs.version` of every document).
pub const ECS_VERSION: &str = "8.11.0";

/// Why an EVE line cannot become an ECS document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EcsError {
    #[error("EVE line is not a JSON object")]
    NotObject,
    #[error("EVE line has no `timestamp` string")]
    NoTimestamp,
    #[error("EVE timestamp {0:?} is not an ISO 8601 date and time")]
    BadTimestamp(String),
    #[error("EVE line has no `event_type` string")]
    NoEventType,
}

/// Converts one EVE JSON line (no newline) into one ECS JSON document appended to `out` (no
/// newline). On an error nothing is appended.
pub fn from_eve(eve: &[u8], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let v: Value = serde_json::from_slice(eve)?;
    let doc = to_ecs(v).map_err(<serde_json::Error as serde::de::Error>::custom)?;
    serde_json::to_writer(out, &doc)
}

/// The ECS document of one parsed EVE event (the typed-error core of [`from_eve`]).
pub fn to_ecs(mut eve: Value) -> Result<Value, EcsError> {
    let e = eve.as_object_mut().ok_or(EcsError::NotObject)?;
    let ts = e
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or(EcsError::NoTimestamp)?;
    let at = rfc3339_utc(ts).ok_or_else(|| EcsError::BadTimestamp(ts.to_owned()))?;
    let et = e
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or(EcsError::NoEventType)?
        .to_owned();
    let mut d = Map::new();
    let doc = &mut d;
    put(doc, "@timestamp", at.into());
    put(doc, "ecs.version", ECS_VERSION.into());

    // event.*: what kind of record this is. Alerts are `alert`, the sensor's own counters
    // `metric`, every other record an `event` (ECS's allowed values).
    // Moved out of the line, not copied (the line is ours and dropped after).
    let alert = e.get_mut("alert").map(Value::take).filter(Value::is_object);
    let kind = match et.as_str() {
        "alert" => "alert",
        "stats" => "metric",
        _ => "event",
    };
    put(doc, "event.kind", kind.into());
    let category: &[&str] = if et == "alert" {
        &["network", "intrusion_detection"]
    } else {
        &["network"]
    };
    put(doc, "event.category", strs(category));
    let action = alert.as_ref().and_then(|a| s(a, &["action"]));
    let etype: Option<Value> = match et.as_str() {
        "alert" => action.and_then(type_from_action).map(|t| strs(&[t])),
        "flow" => Some(strs(&["connection", "end"])),
        "stats" => Some(strs(&["info"])),
        "dns" | "tls" | "http" | "quic" => Some(strs(&["protocol"])),
        _ => None,
    };
    if let Some(t) = etype {
        put(doc, "event.type", t);
    }
    if let Some(a) = action {
        put(doc, "event.action", a.into());
    }
    put(doc, "event.dataset", format!("cloudtap.{et}").into());
    put(doc, "event.module", "cloudtap".into());
    if let Some(id) = ms(e, &["cloudtap", "event_id"]) {
        put(doc, "event.id", id.into());
    }
    if let Some(sev) = alert
        .as_ref()
        .and_then(|a| a.get("severity"))
        .filter(|v| v.is_u64())
    {
        put(doc, "event.severity", sev.clone());
    }
    // An aggregated alert covers first_seen..last_seen; a flow its start..end.
    let (start, end) = match et.as_str() {
        "flow" => (ms(e, &["flow", "start"]), ms(e, &["flow", "end"])),
        _ => (
            ms(e, &["cloudtap", "first_seen"]),
            ms(e, &["cloudtap", "last_seen"]),
        ),
    };
    if let Some(t) = start.and_then(rfc3339_utc) {
        put(doc, "event.start", t.into());
    }
    if let Some(t) = end.and_then(rfc3339_utc) {
        put(doc, "event.end", t.into());
    }
    if et == "flow" {
        if let Some(ns) = start.zip(end).and_then(|(a, b)| duration_ns(a, b)) {
            put(doc, "event.duration", ns.into());
        }
    }
    if let Some(sig) = alert.as_ref().and_then(|a| s(a, &["signature"])) {
        put(doc, "message", sig.into());
    }

    // observer.*: the sensor, and the interface (or capture file) the packet came in on.
    put(doc, "observer.type", "sensor".into());
    put(doc, "observer.vendor", "cloudtap".into());
    put(doc, "observer.product", "cloudtap".into());
    if let Some(i) = e.get("in_iface").and_then(Value::as_str) {
        put(doc, "observer.ingress.interface.name", i.into());
    }

    // source/destination/network: the EVE 5-tuple, oriented as EVE orients it.
    let src_ip = e.get("src_ip").and_then(Value::as_str).map(str::to_owned);
    let dst_ip = e.get("dest_ip").and_then(Value::as_str).map(str::to_owned);
    if let Some(ip) = &src_ip {
        put(doc, "source.ip", ip.as_str().into());
    }
    if let Some(p) = port(e.get("src_port")) {
        put(doc, "source.port", p.into());
    }
    if let Some(ip) = &dst_ip {
        put(doc, "destination.ip", ip.as_str().into());
    }
    if let Some(p) = port(e.get("dest_port")) {
        put(doc, "destination.port", p.into());
    }
    // destination.domain: the name the client asked the server for (TLS/QUIC SNI, HTTP
    // Host). A DNS question names no destination: the destination is the resolver.
    for path in [["tls", "sni"], ["quic", "sni"], ["http", "hostname"]] {
        if let Some(n) = ms(e, &path) {
            put(doc, "destination.domain", n.into());
            break;
        }
    }
    let flow = e.get_mut("flow").map(Value::take).filter(Value::is_object);
    if let Some(f) = &flow {
        let n = |k: &str| f.get(k).and_then(Value::as_u64);
        if let Some(v) = n("pkts_toserver") {
            put(doc, "source.packets", v.into());
        }
        if let Some(v) = n("bytes_toserver") {
            put(doc, "source.bytes", v.into());
        }
        if let Some(v) = n("pkts_toclient") {
            put(doc, "destination.packets", v.into());
        }
        if let Some(v) = n("bytes_toclient") {
            put(doc, "destination.bytes", v.into());
        }
    }
    if let Some(t) = e.get("proto").and_then(Value::as_str) {
        put(doc, "network.transport", t.to_ascii_lowercase().into());
    }
    if let Some(ip) = &src_ip {
        if let Some(t) = ip_version(ip) {
            put(doc, "network.type", t.into());
        }
    }
    if let Some(p) = e.get("app_proto").and_then(Value::as_str) {
        put(doc, "network.protocol", p.into());
    }
    if let Some(c) = e.get("community_id").and_then(Value::as_str) {
        put(doc, "network.community_id", c.into());
    }
    if let Some(f) = &flow {
        // network.* totals: both directions added (checked: a sum past u64 is left out).
        let sum = |a: &str, b: &str| {
            f.get(a)
                .and_then(Value::as_u64)?
                .checked_add(f.get(b).and_then(Value::as_u64)?)
        };
        if let Some(v) = sum("pkts_toserver", "pkts_toclient") {
            put(doc, "network.packets", v.into());
        }
        if let Some(v) = sum("bytes_toserver", "bytes_toclient") {
            put(doc, "network.bytes", v.into());
        }
    }
    // EVE `vlan` lists the outer tag first; ECS ids are keywords (strings).
    if let Some(vl) = e.get("vlan").and_then(Value::as_array) {
        if let Some(v) = vl.first().and_then(Value::as_u64) {
            put(doc, "network.vlan.id", v.to_string().into());
        }
        if let Some(v) = vl.get(1).and_then(Value::as_u64) {
            put(doc, "network.inner.vlan.id", v.to_string().into());
        }
    }
    let mut related: Vec<Value> = Vec::with_capacity(2);
    for ip in [&src_ip, &dst_ip].into_iter().flatten() {
        let v = Value::from(ip.as_str());
        if !related.contains(&v) {
            related.push(v);
        }
    }
    if !related.is_empty() {
        put(doc, "related.ip", Value::Array(related));
    }

    // rule.* and threat.*: the signature and its ATT&CK mapping.
    if let Some(a) = &alert {
        if let Some(id) = a.get("signature_id").and_then(Value::as_u64) {
            put(doc, "rule.id", id.to_string().into());
        }
        if let Some(v) = s(a, &["signature"]) {
            put(doc, "rule.name", v.into());
        }
        if let Some(v) = s(a, &["category"]) {
            put(doc, "rule.category", v.into());
        }
        if let Some(v) = a.get("rev").and_then(Value::as_u64) {
            put(doc, "rule.version", v.to_string().into());
        }
        let md = a.get("metadata");
        let first = |k: &str| md?.get(k)?.as_array()?.first()?.as_str();
        if let Some(v) = first("cloudtap_pack") {
            put(doc, "rule.ruleset", v.into());
        }
        if let Some(v) = first("reference") {
            put(doc, "rule.reference", v.into());
        }
        threat(doc, md);
    }

    // dns.*: in an alert EVE wraps the DNS object (`query` list, or `answer`); the first
    // question of a query stands for the event (ECS has one question per document).
    if let Some(dns) = e.get("dns").and_then(unwrap_dns) {
        map_dns(doc, dns);
    }

    // tls.*: a ClientHello record (sni, ja3, ja4) or a server flight (cert, ja3s); QUIC's
    // Initial carries a ClientHello, so its fields land in tls.client.* too.
    if let Some(t) = e.get("tls").filter(|t| t.is_object()) {
        map_tls(doc, t);
    }
    if let Some(q) = e.get("quic").filter(|q| q.is_object()) {
        map_client_hello(doc, q);
        if let Some(v) = s(q, &["version"]) {
            put(doc, "cloudtap.quic.version", v.into());
        }
    }

    // url.*, http.*, user_agent.*: the request line and headers.
    if let Some(h) = e.get("http").filter(|h| h.is_object()) {
        map_http(doc, h);
    }

    // tags: every label (record labels, alert labels, the verdict's labels), once each.
    let mut tags: Vec<Value> = Vec::new();
    let label_lists = [
        e.get("cloudtap").and_then(|c| c.get("labels")),
        alert
            .as_ref()
            .and_then(|a| a.get("metadata"))
            .and_then(|m| m.get("cloudtap_labels")),
    ];
    for l in label_lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
    {
        for t in l.iter().filter(|t| t.is_string()) {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
    }
    if !tags.is_empty() {
        put(doc, "tags", Value::Array(tags));
    }

    // cloudtap.*: what ECS has no field for, then EVE's own object as is (verdict, labels,
    // event_id). Where a name is taken by both, EVE's value replaces ours.
    for k in ["flow_id", "tx_id", "direction"] {
        if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
            put_in(doc, &["cloudtap", k], v.clone());
        }
    }
    if let Some(Value::Object(md)) = alert.and_then(|mut a| a.get_mut("metadata").map(Value::take))
    {
        for (k, v) in md {
            if let Some(name) = k.strip_prefix("cloudtap_") {
                put_in(doc, &["cloudtap", "alert", name], v);
            }
        }
    }
    if let Some(f) = flow {
        for k in ["state", "reason", "alerted"] {
            if let Some(v) = f.get(k).filter(|v| !v.is_null()) {
                put_in(doc, &["cloudtap", "flow", k], v.clone());
            }
        }
    }
    if let Some(st) = e.get_mut("stats").map(Value::take).filter(Value::is_object) {
        put(doc, "cloudtap.stats", st);
    }
    if let Some(Value::Object(c)) = e.get_mut("cloudtap").map(Value::take) {
        let slot = d
            .entry("cloudtap")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = slot {
            m.extend(c);
        }
    }
    Ok(Value::Object(d))
}

/// The string at `path` in the top-level EVE object.
fn ms<'a>(e: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (first, rest) = path.split_first()?;
    s(e.get(*first)?, rest)
}

/// The string at `path` under `v`, if it is one.
fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_str()
}

/// A port number: an integer in 0..=65535 (anything else is left out).
fn port(v: Option<&Value>) -> Option<u64> {
    v?.as_u64().filter(|p| *p <= 65_535)
}

fn strs(v: &[&str]) -> Value {
    Value::Array(v.iter().map(|s| Value::from(*s)).collect())
}

/// ECS `event.type` of an alert from EVE's `alert.action`: Suricata writes `allowed`, or
/// `blocked` when IPS mode dropped the packet (ECS calls that `denied`).
fn type_from_action(a: &str) -> Option<&'static str> {
    match a {
        "allowed" => Some("allowed"),
        "blocked" => Some("denied"),
        _ => None,
    }
}

/// `ipv4`/`ipv6` for an address string (ECS `network.type`).
fn ip_version(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) => Some("ipv4"),
        std::net::IpAddr::V6(_) => Some("ipv6"),
    }
}

/// Sets `path` (dotted) in `doc`, making the objects on the way. A null is not written, and
/// a non-object already on the way stays as it is (the value is dropped).
fn put(doc: &mut Map<String, Value>, path: &str, v: Value) {
    put_iter(doc, path.split('.'), v);
}

fn put_in(doc: &mut Map<String, Value>, path: &[&str], v: Value) {
    put_iter(doc, path.iter().copied(), v);
}

fn put_iter<'p>(doc: &mut Map<String, Value>, mut parts: impl Iterator<Item = &'p str>, v: Value) {
    if v.is_null() {
        return;
    }
    let Some(mut key) = parts.next() else {
        return;
    };
    let mut cur = doc;
    for next in parts {
        // Looked up before inserting: most objects exist already, and a key is only
        // allocated for a new one.
        if !cur.contains_key(key) {
            cur.insert(key.to_owned(), Value::Object(Map::new()));
        }
        match cur.get_mut(key) {
            Some(Value::Object(m)) => cur = m,
            _ => return,
        }
        key = next;
    }
    if !cur.contains_key(key) {
        cur.insert(key.to_owned(), v);
    }
}

/// threat.*: EVE writes ATT&CK as parallel arrays in `alert.metadata`, a sub-technique after
/// its parent (`["T1583", "T1583.006"]`) with names in ET Open's spelling (underscores for
/// spaces). ECS keeps techniques and sub-techniques apart: `threat.technique.id` takes each
/// id's part before the dot (once), `threat.technique.subtechnique.id` the dotted ids; names
/// follow their ids, underscores turned back into spaces.
fn threat(doc: &mut Map<String, Value>, md: Option<&Value>) {
    let list = |k: &str| -> Vec<&str> {
        md.and_then(|m| m.get(k))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let (tac_id, tac_name) = (list("mitre_tactic_id"), list("mitre_tactic_name"));
    let (tech_id, tech_name) = (list("mitre_technique_id"), list("mitre_technique_name"));
    if tac_id.is_empty() && tech_id.is_empty() {
        return;
    }
    put(doc, "threat.framework", "MITRE ATT&CK".into());
    let spaced = |v: &[&str]| -> Value {
        Value::Array(v.iter().map(|n| Value::from(n.replace('_', " "))).collect())
    };
    if !tac_id.is_empty() {
        put(doc, "threat.tactic.id", strs(&tac_id));
    }
    if !tac_name.is_empty() {
        put(doc, "threat.tactic.name", spaced(&tac_name));
    }
    let mut parents: Vec<&str> = Vec::new();
    for id in &tech_id {
        let p = id.split('.').next().unwrap_or(id);
        if !parents.contains(&p) {
            parents.push(p);
        }
    }
    let named = |dotted: bool| -> Vec<&str> {
        tech_id
            .iter()
            .zip(&tech_name)
            .filter(|(id, _)| id.contains('.') == dotted)
            .map(|(_, n)| *n)
            .collect()
    };
    let subs: Vec<&str> = tech_id
        .iter()
        .copied()
        .filter(|i| i.contains('.'))
        .collect();
    if !parents.is_empty() {
        put(doc, "threat.technique.id", strs(&parents));
    }
    let n = named(false);
    if !n.is_empty() {
        put(doc, "threat.technique.name", spaced(&n));
    }
    if !subs.is_empty() {
        put(doc, "threat.technique.subtechnique.id", strs(&subs));
    }
    let n = named(true);
    if !n.is_empty() {
        put(doc, "threat.technique.subtechnique.name", spaced(&n));
    }
}

/// The DNS object an event describes: a record's as is, an alert's unwrapped (first
/// question of `query`, or `answer`).
fn unwrap_dns(d: &Value) -> Option<&Value> {
    if let Some(q) = d.get("query") {
        return q.as_array()?.first().filter(|q| q.is_object());
    }
    if let Some(a) = d.get("answer") {
        return a.is_object().then_some(a);
    }
    d.is_object().then_some(d)
}

/// ECS `dns.op_code` names (RFC 6895's registry) for EVE's numeric opcode.
fn op_code(n: u64) -> String {
    match n {
        0 => "QUERY".into(),
        1 => "IQUERY".into(),
        2 => "STATUS".into(),
        4 => "NOTIFY".into(),
        5 => "UPDATE".into(),
        6 => "DSO".into(),
        other => other.to_string(),
    }
}

fn map_dns(doc: &mut Map<String, Value>, d: &Value) {
    if let Some(t) = s(d, &["type"]).filter(|t| *t == "query" || *t == "answer") {
        put(doc, "dns.type", t.into());
    }
    if let Some(id) = d.get("id").and_then(Value::as_u64) {
        put(doc, "dns.id", id.to_string().into());
    }
    if let Some(op) = d.get("opcode").and_then(Value::as_u64) {
        put(doc, "dns.op_code", op_code(op).into());
    }
    // ECS header flags, upper case, from EVE's booleans (answers carry them).
    let flags: Vec<&str> = [("aa", "AA"), ("tc", "TC"), ("rd", "RD"), ("ra", "RA")]
        .into_iter()
        .filter(|(k, _)| d.get(*k).and_then(Value::as_bool) == Some(true))
        .map(|(_, f)| f)
        .collect();
    if !flags.is_empty() {
        put(doc, "dns.header_flags", strs(&flags));
    }
    if let Some(rc) = s(d, &["rcode"]) {
        put(doc, "dns.response_code", rc.into());
    }
    if let Some(n) = s(d, &["rrname"]) {
        put(doc, "dns.question.name", n.into());
    }
    if let Some(t) = s(d, &["rrtype"]) {
        put(doc, "dns.question.type", t.into());
    }
    if let Some(ans) = d.get("answers").and_then(Value::as_array) {
        let mut out = Vec::with_capacity(ans.len());
        let mut ips: Vec<Value> = Vec::new();
        for a in ans.iter().filter(|a| a.is_object()) {
            let mut o = Map::new();
            for (from, to) in [("rrname", "name"), ("rrtype", "type"), ("ttl", "ttl")] {
                if let Some(v) = a.get(from).filter(|v| v.is_string() || v.is_u64()) {
                    o.insert(to.into(), v.clone());
                }
            }
            if let Some(r) = a.get("rdata").filter(|v| v.is_string()) {
                o.insert("data".into(), r.clone());
                if matches!(s(a, &["rrtype"]), Some("A" | "AAAA")) && !ips.contains(r) {
                    ips.push(r.clone());
                }
            }
            out.push(Value::Object(o));
        }
        put(doc, "dns.answers", Value::Array(out));
        if !ips.is_empty() {
            put(doc, "dns.resolved_ip", Value::Array(ips));
        }
    }
}

/// `1.3` from `TLS 1.3`, `3.0` from `SSLv3`, `1.1` from `HTTP/1.1`; drafts and other names
/// have no ECS version number.
fn version_number(v: &str) -> Option<String> {
    let plain = |n: &str| {
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')).then(|| n.into())
    };
    if let Some(n) = v.strip_prefix("TLS ").or_else(|| v.strip_prefix("HTTP/")) {
        return plain(n);
    }
    let n = v.strip_prefix("SSLv")?;
    (n.len() == 1 && n.as_bytes()[0].is_ascii_digit()).then(|| format!("{n}.0"))
}

/// `tls` or `ssl`: the protocol half of a TLS version name.
fn version_protocol(v: &str) -> Option<&'static str> {
    version_number(v)?;
    if v.starts_with("TLS ") {
        Some("tls")
    } else if v.starts_with("SSLv") {
        Some("ssl")
    } else {
        None
    }
}

/// Hex as ECS writes hashes and serials: colons out, upper case.
fn hex_upper(v: &str) -> String {
    v.chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A ClientHello's fields (TLS record or QUIC Initial).
fn map_client_hello(doc: &mut Map<String, Value>, t: &Value) {
    if let Some(n) = s(t, &["sni"]) {
        put(doc, "tls.client.server_name", n.into());
    }
    if let Some(h) = s(t, &["ja3", "hash"]) {
        put(doc, "tls.client.ja3", h.into());
    }
    // ECS 8.11 has no JA4 field: custom namespace.
    if let Some(h) = s(t, &["ja4"]) {
        put(doc, "cloudtap.tls.client.ja4", h.into());
    }
    if let Some(h) = s(t, &["ja3", "string"]) {
        put(doc, "cloudtap.tls.client.ja3_string", h.into());
    }
    if let Some(a) = t.get("client_alpns").filter(|a| a.is_array()) {
        put(doc, "cloudtap.tls.client.alpns", a.clone());
    }
    if let Some(b) = t.get("ech").filter(|b| b.is_boolean()) {
        put(doc, "cloudtap.tls.client.ech", b.clone());
    }
}

fn map_tls(doc: &mut Map<String, Value>, t: &Value) {
    if let Some(v) = s(t, &["version"]) {
        if let Some(n) = version_number(v) {
            put(doc, "tls.version", n.into());
        }
        if let Some(p) = version_protocol(v) {
            put(doc, "tls.version_protocol", p.into());
        }
        put(doc, "cloudtap.tls.version", v.into());
    }
    map_client_hello(doc, t);
    if let Some(v) = s(t, &["subject"]) {
        put(doc, "tls.server.subject", v.into());
        put(doc, "tls.server.x509.subject.distinguished_name", v.into());
    }
    if let Some(v) = s(t, &["issuerdn"]) {
        put(doc, "tls.server.issuer", v.into());
        put(doc, "tls.server.x509.issuer.distinguished_name", v.into());
    }
    if let Some(v) = s(t, &["serial"]) {
        put(doc, "tls.server.x509.serial_number", hex_upper(v).into());
    }
    if let Some(v) = s(t, &["fingerprint"]) {
        put(doc, "tls.server.hash.sha1", hex_upper(v).into());
    }
    // Certificate dates: EVE writes them in UTC without a zone (as Suricata does).
    for (from, to) in [("notbefore", "not_before"), ("notafter", "not_after")] {
        if let Some(v) = s(t, &[from]).and_then(rfc3339_utc) {
            put(doc, &format!("tls.server.{to}"), v.clone().into());
            put(doc, &format!("tls.server.x509.{to}"), v.into());
        }
    }
    if let Some(a) = t.get("subjectaltname").filter(|a| a.is_array()) {
        put(doc, "tls.server.x509.alternative_names", a.clone());
    }
    if let Some(h) = s(t, &["ja3s", "hash"]) {
        put(doc, "tls.server.ja3s", h.into());
    }
    if let Some(h) = s(t, &["ja3s", "string"]) {
        put(doc, "cloudtap.tls.server.ja3s_string", h.into());
    }
}

fn map_http(doc: &mut Map<String, Value>, h: &Value) {
    if let Some(v) = s(h, &["url"]) {
        put(doc, "url.original", v.into());
    }
    if let Some(v) = s(h, &["hostname"]) {
        put(doc, "url.domain", v.into());
    }
    if let Some(p) = port(h.get("http_port")) {
        put(doc, "url.port", p.into());
    }
    if let Some(v) = s(h, &["http_method"]) {
        put(doc, "http.request.method", v.into());
    }
    if let Some(v) = s(h, &["protocol"]).and_then(version_number) {
        put(doc, "http.version", v.into());
    }
    if let Some(v) = h.get("status").and_then(Value::as_u64) {
        put(doc, "http.response.status_code", v.into());
    }
    if let Some(v) = s(h, &["http_user_agent"]) {
        put(doc, "user_agent.original", v.into());
    }
    // ECS's http.request.mime_type is sniffed from the body, not the header: custom.
    if let Some(v) = s(h, &["http_content_type"]) {
        put(doc, "cloudtap.http.content_type", v.into());
    }
}

/// A parsed date and time: seconds since the epoch (UTC), nanoseconds, digits of fraction
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Instant {
    secs: i64,
    nanos: u32,
    frac_digits: usize,
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z|±HHMM|±HH:MM|±HH]`: EVE's `+0000`, RFC 3339's
/// `Z` or `+00:00`, and no zone at all (EVE certificate dates), which is taken as UTC.
fn parse_time(t: &str) -> Option<Instant> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        d.iter().try_fold(0u32, |n, c| {
            n.checked_mul(10)?.checked_add(u32::from(c - b'0'))
        })
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let mut i = 19;
    let (mut nanos, mut frac_digits) = (0u32, 0usize);
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        frac_digits = end - start;
        if !(1..=9).contains(&frac_digits) {
            return None;
        }
        nanos = num(start..end)? * 10u32.pow((9 - frac_digits) as u32);
        i = end;
    }
    let offset_s: i64 = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (oh, om) = match rest.len() {
                2 => (num(i + 1..i + 3)?, 0),
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                5 if rest[2] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_s;
    Some(Instant {
        secs,
        nanos,
        frac_digits,
    })
}

/// RFC 3339 in UTC (`2024-05-01T12:00:00.123456Z`), the fraction kept to the digits
/// written; `None` when `t` is not a date and time or falls outside years 0..=9999.
pub fn rfc3339_utc(t: &str) -> Option<String> {
    let i = parse_time(t)?;
    let (y, m, d) = civil_from_days(i.secs.div_euclid(86_400));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let sod = i.secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if i.frac_digits > 0 {
        let f = i.nanos / 10u32.pow((9 - i.frac_digits) as u32);
        out.push_str(&format!(".{f:0w$}", w = i.frac_digits));
    }
    out.push('Z');
    Some(out)
}

/// Nanoseconds from `a` to `b` (ECS `event.duration`); `None` if either is not a date or
/// `b` is before `a`.
fn duration_ns(a: &str, b: &str) -> Option<u64> {
    let (a, b) = (parse_time(a)?, parse_time(b)?);
    let ns = (i128::from(b.secs) - i128::from(a.secs)) * 1_000_000_000 + i128::from(b.nanos)
        - i128::from(a.nanos);
    u64::try_from(ns).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ecs(v: Value) -> Value {
        let mut out = Vec::new();
        from_eve(v.to_string().as_bytes(), &mut out).expect("converts");
        serde_json::from_slice(&out).expect("ECS is JSON")
    }

    #[test]
    fn timestamps_become_rfc3339_utc() {
        let cases = [
            (
                "2024-05-01T12:00:00.123456+0000",
                "2024-05-01T12:00:00.123456Z",
            ),
            ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
            ("2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00Z"),
            ("2026-12-05T07:46:52", "2026-12-05T07:46:52Z"),
            // Offsets are moved into UTC, across a day, a month and a year.
            ("2024-03-01T01:30:00.5+0200", "2024-02-29T23:30:00.5Z"),
            ("2023-12-31T23:00:00-01:30", "2024-01-01T00:30:00Z"),
            (
                "2024-05-01T12:00:00.123456789+05",
                "2024-05-01T07:00:00.123456789Z",
            ),
        ];
        for (eve, want) in cases {
            assert_eq!(rfc3339_utc(eve).as_deref(), Some(want), "{eve}");
        }
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-05-01T12:00:00+2400",
            "2024-05-01T12:00:00Zjunk",
            "0000-01-01T00:00:00+0100",
            "２024-05-01T12:00:00Z",
            "2024-05-01T12:00:00+0é",
        ] {
            assert_eq!(rfc3339_utc(bad), None, "{bad}");
        }
        assert_eq!(
            duration_ns("2024-05-01T12:00:00.5+0000", "2024-05-01T12:00:02.25+0000"),
            Some(1_750_000_000)
        );
        assert_eq!(
            duration_ns("2024-05-01T12:00:02+0000", "2024-05-01T12:00:00+0000"),
            None
        );
    }

    #[test]
    fn bad_lines_are_errors_never_panics() {
        let full = br#"{"timestamp":"2024-05-01T12:00:00.000000+0000","event_type":"alert","src_ip":"10.0.0.1","alert":{"action":"allowed","signature_id":1,"metadata":{"mitre_technique_id":["T1583.006"]}},"dns":{"query":[{"rrname":"x"}]}}"#;
        let mut out = Vec::new();
        // Every truncation of a good line: an error or a document, never a panic.
        for cut in 0..full.len() {
            out.clear();
            if from_eve(&full[..cut], &mut out).is_err() {
                assert!(out.is_empty(), "nothing appended on error");
            }
        }
        for odd in [
            &b"5"[..],
            b"[]",
            b"null",
            b"\"x\"",
            b"{}",
            b"{\"timestamp\":5,\"event_type\":\"dns\"}",
            b"{\"timestamp\":\"yesterday\",\"event_type\":\"dns\"}",
            b"{\"timestamp\":\"2024-05-01T12:00:00Z\"}",
            b"\xff\xfe",
        ] {
            out.clear();
            assert!(from_eve(odd, &mut out).is_err(), "{odd:?}");
            assert!(out.is_empty());
        }
        assert_eq!(to_ecs(json!([1])), Err(EcsError::NotObject));
        assert_eq!(
            to_ecs(json!({"event_type": "dns"})),
            Err(EcsError::NoTimestamp)
        );
        // Wrong types everywhere: a document with what could be read, no panic.
        let odd = json!({
            "timestamp": "2024-05-01T12:00:00Z", "event_type": "alert",
            "src_ip": 5, "src_port": "80", "dest_port": 70000, "vlan": "x", "proto": 6,
            "alert": {"action": 1, "signature_id": -1, "metadata": {"mitre_technique_id": "T1"}},
            "dns": {"query": {"rrname": 1}}, "tls": [], "http": {"url": 5},
            "flow": {"pkts_toserver": u64::MAX, "pkts_toclient": 1, "start": 3},
            "cloudtap": {"labels": "x", "event_id": 7}, "stats": 1,
        });
        let d = ecs(odd);
        assert_eq!(d["event.kind"], Value::Null);
        assert_eq!(d["event"]["kind"], "alert");
        assert!(d["source"].get("ip").is_none() && d["source"].get("port").is_none());
        assert!(
            d["destination"].get("port").is_none(),
            "port 70000 left out"
        );
        assert!(
            d["network"].get("packets").is_none(),
            "overflowing sum left out"
        );
        assert!(d.get("threat").is_none() && d.get("tags").is_none());
    }

    #[test]
    fn synthetic_fields_absent_from_cloudtap_output() {
        // Fields cloudtap does not write today but Suricata's EVE has (community_id,
        // http.status), and the event id.
        let d = ecs(json!({
            "timestamp": "2024-05-01T12:00:00.000001+0000", "event_type": "http",
            "src_ip": "fd00::1", "src_port": 1, "dest_ip": "fd00::2", "dest_port": 80,
            "proto": "TCP", "community_id": "1:abc=", "app_proto": "http",
            "http": {"hostname": "h", "url": "/a", "http_method": "GET", "protocol": "HTTP/1.1",
                     "status": 404, "http_port": 8080},
            "cloudtap": {"event_id": "0123456789abcdef0123456789abcdef"},
        }));
        assert_eq!(d["network"]["community_id"], "1:abc=");
        assert_eq!(d["network"]["type"], "ipv6");
        assert_eq!(d["http"]["response"]["status_code"], 404);
        assert_eq!(d["http"]["version"], "1.1");
        assert_eq!(d["url"]["port"], 8080);
        assert_eq!(d["event"]["id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(
            d["cloudtap"]["event_id"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(d["event"]["type"], json!(["protocol"]));
    }

    #[test]
    fn blocked_alerts_and_subtechniques() {
        let d = ecs(json!({
            "timestamp": "2024-05-01T12:00:00Z", "event_type": "alert",
            "alert": {"action": "blocked", "signature_id": 7, "rev": 3, "severity": 1,
              "metadata": {"mitre_tactic_id": ["TA0011"], "mitre_tactic_name": ["Command_and_Control"],
                "mitre_technique_id": ["T1102.002"], "mitre_technique_name": ["Bidirectional_Communication"]}},
        }));
        assert_eq!(d["event"]["type"], json!(["denied"]));
        assert_eq!(d["event"]["action"], "blocked");
        assert_eq!(
            d["threat"]["tactic"]["name"],
            json!(["Command and Control"])
        );
        // A sub-technique alone: its parent's id (no name known), the sub-technique apart.
        assert_eq!(d["threat"]["technique"]["id"], json!(["T1102"]));
        assert!(d["threat"]["technique"].get("name").is_none());
        assert_eq!(
            d["threat"]["technique"]["subtechnique"]["name"],
            json!(["Bidirectional Communication"])
        );
        assert_eq!(d["rule"]["version"], "3");
    }

    #[test]
    fn versions() {
        assert_eq!(version_number("TLS 1.3").as_deref(), Some("1.3"));
        assert_eq!(version_number("SSLv3").as_deref(), Some("3.0"));
        assert_eq!(version_number("HTTP/1.0").as_deref(), Some("1.0"));
        assert_eq!(version_number("TLS 1.3 draft 23"), None);
        assert_eq!(version_protocol("SSLv2"), Some("ssl"));
        assert_eq!(version_protocol("DTLS 1.2"), None);
        assert_eq!(version_protocol("HTTP/1.1"), None);
    }
}
