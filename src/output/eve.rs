//! EVE JSON serialisation, key for key in Suricata 7's order (see
//! ../shared/reference/eve-format.md): timestamp, flow_id, in_iface, event_type, vlan, src_ip,
//! src_port, dest_ip, dest_port, proto, pkt_src, tx_id, alert, <app object>, app_proto,
//! direction. cloudtap's own additions live in `alert.metadata` (arrays of strings, as
//! Suricata's metadata), never as new top-level keys.

use super::{AlertInfo, Event};
use crate::extract::{dns, http, tls, Record};
use crate::timefmt::eve_timestamp;
use serde_json::{json, Map, Value};

fn proto_name(p: u8) -> Value {
    match p {
        6 => json!("TCP"),
        17 => json!("UDP"),
        1 => json!("ICMP"),
        58 => json!("IPv6-ICMP"),
        other => json!(other.to_string()),
    }
}

fn dns_query_obj(m: &dns::Message, q: &dns::Question, tx_id: u64) -> Value {
    json!({
        "type": "query",
        "id": m.id,
        "rrname": q.name,
        "rrtype": dns::rrtype_name(q.qtype),
        "tx_id": tx_id,
        "opcode": m.opcode(),
    })
}

fn dns_answer_obj(m: &dns::Message) -> Value {
    let mut o = Map::new();
    o.insert("version".into(), json!(2));
    o.insert("type".into(), json!("answer"));
    o.insert("id".into(), json!(m.id));
    o.insert("flags".into(), json!(format!("{:x}", m.flags)));
    o.insert("qr".into(), json!(true));
    if m.flags & 0x0400 != 0 {
        o.insert("aa".into(), json!(true));
    }
    if m.flags & 0x0200 != 0 {
        o.insert("tc".into(), json!(true));
    }
    if m.flags & 0x0100 != 0 {
        o.insert("rd".into(), json!(true));
    }
    if m.flags & 0x0080 != 0 {
        o.insert("ra".into(), json!(true));
    }
    o.insert("opcode".into(), json!(m.opcode()));
    if let Some(q) = m.questions.first() {
        o.insert("rrname".into(), json!(q.name));
        o.insert("rrtype".into(), json!(dns::rrtype_name(q.qtype)));
    }
    o.insert("rcode".into(), json!(dns::rcode_name(m.rcode())));
    if !m.answers.is_empty() {
        let mut answers = Vec::new();
        let mut grouped: Map<String, Value> = Map::new();
        for a in &m.answers {
            let rdata = match &a.rdata {
                dns::Rdata::A(ip) => Some(ip.to_string()),
                dns::Rdata::Aaaa(ip) => Some(ip.to_string()),
                dns::Rdata::Name(n) => Some(n.clone()),
                dns::Rdata::Other => None,
            };
            let t = dns::rrtype_name(a.rtype).into_owned();
            let mut ao = Map::new();
            ao.insert("rrname".into(), json!(a.name));
            ao.insert("rrtype".into(), json!(t));
            ao.insert("ttl".into(), json!(a.ttl));
            if let Some(r) = &rdata {
                ao.insert("rdata".into(), json!(r));
                if let Value::Array(v) = grouped.entry(t).or_insert_with(|| json!([])) {
                    v.push(json!(r));
                }
            }
            answers.push(Value::Object(ao));
        }
        o.insert("answers".into(), Value::Array(answers));
        o.insert("grouped".into(), Value::Object(grouped));
    }
    Value::Object(o)
}

fn tls_obj(h: &tls::ClientHello) -> Value {
    let mut o = Map::new();
    if let Some(sni) = &h.sni {
        o.insert("sni".into(), json!(sni));
    }
    // Suricata reports the negotiated version from the ServerHello; from the ClientHello
    // alone the best we can say is the highest version the client offered.
    o.insert("version".into(), json!(tls::version_name(h.max_version())));
    fingerprints(h, false, &mut o);
    Value::Object(o)
}

/// The client fingerprints shared by the tls and quic objects.
fn fingerprints(h: &tls::ClientHello, quic: bool, o: &mut Map<String, Value>) {
    o.insert(
        "ja3".into(),
        json!({"hash": h.ja3_hash(), "string": h.ja3_string()}),
    );
    o.insert("ja4".into(), json!(h.ja4(quic)));
    if !h.alpn.is_empty() {
        o.insert("client_alpns".into(), json!(h.alpn_strings()));
    }
}

fn http_obj(r: &http::Request) -> Value {
    let mut o = Map::new();
    if let Some(h) = &r.host {
        o.insert("hostname".into(), json!(h));
    }
    if let Some(p) = r.host_port {
        o.insert("http_port".into(), json!(p));
    }
    o.insert("url".into(), json!(r.uri));
    if let Some(ua) = &r.user_agent {
        o.insert("http_user_agent".into(), json!(ua));
    }
    if let Some(ct) = &r.content_type {
        o.insert("http_content_type".into(), json!(ct));
    }
    o.insert("http_method".into(), json!(r.method));
    o.insert("protocol".into(), json!(r.protocol));
    Value::Object(o)
}

/// Adds the record's app object under its key (`dns`, `tls`, `http`).
fn app_object(
    o: &mut Map<String, Value>,
    record: &Record,
    tx_id: u64,
    in_alert: bool,
    question: usize,
) {
    match record {
        Record::Dns(m) => {
            let v = if m.is_response() {
                if in_alert {
                    json!({"version": 2, "answer": dns_answer_obj(m)})
                } else {
                    dns_answer_obj(m)
                }
            } else if in_alert {
                let qs: Vec<Value> = m
                    .questions
                    .iter()
                    .map(|q| dns_query_obj(m, q, tx_id))
                    .collect();
                json!({"version": 2, "query": qs})
            } else {
                // Callers split queries: one record per question.
                let q = m.questions.get(question);
                match q {
                    Some(q) => {
                        let mut v = dns_query_obj(m, q, tx_id);
                        if let Value::Object(map) = &mut v {
                            map.insert("version".into(), json!(2));
                        }
                        v
                    }
                    None => json!({"version": 2, "type": "query", "id": m.id}),
                }
            };
            o.insert("dns".into(), v);
        }
        Record::Tls(h) => {
            o.insert("tls".into(), tls_obj(h));
        }
        Record::Http(r) => {
            o.insert("http".into(), http_obj(r));
        }
        Record::Quic(h, version) => {
            let mut q = Map::new();
            q.insert("version".into(), json!(format!("{version:x}")));
            if let Some(sni) = &h.sni {
                q.insert("sni".into(), json!(sni));
            }
            fingerprints(h, true, &mut q);
            o.insert("quic".into(), Value::Object(q));
        }
    }
}

fn alert_obj(a: &AlertInfo, labels: &[String]) -> Value {
    let s = &a.sig;
    let mut md = Map::new();
    let mut put = |k: &str, v: &str| {
        md.insert(k.into(), json!([v]));
    };
    put("mitre_tactic_id", &s.mitre_tactic_id);
    put("mitre_tactic_name", &s.mitre_tactic_name);
    put("mitre_technique_id", &s.mitre_technique_id);
    put("mitre_technique_name", &s.mitre_technique_name);
    put("cloudtap_pack", &s.pack.name);
    put("cloudtap_pack_version", &s.pack.version);
    put("cloudtap_field", a.field.name());
    put("cloudtap_indicator", &a.pattern);
    put("cloudtap_value", &a.value);
    if let Some(v) = &s.service {
        put("cloudtap_service", v);
    }
    if let Some(v) = &s.next_step {
        put("cloudtap_next_step", v);
    }
    if let Some(v) = &s.reference {
        put("reference", v);
    }
    if !labels.is_empty() {
        md.insert("cloudtap_labels".into(), json!(labels));
    }
    json!({
        "action": "allowed",
        "gid": 1,
        "signature_id": s.id,
        "rev": s.rev,
        "signature": s.msg,
        "category": s.category,
        "severity": s.severity,
        "metadata": Value::Object(md),
    })
}

/// Serialises one event as a JSON line (without the newline) into `out`.
pub fn write_event(ev: &Event, out: &mut Vec<u8>) {
    let m = &ev.meta;
    let mut o = Map::new();
    let mut ts = String::with_capacity(32);
    eve_timestamp(m.ts_ns, &mut ts);
    o.insert("timestamp".into(), json!(ts));
    o.insert("flow_id".into(), json!(m.flow_id));
    o.insert("in_iface".into(), json!(&*m.iface));
    let event_type = match (&ev.alert, ev.record.as_deref()) {
        (Some(_), _) => "alert",
        (None, Some(r)) => r.app_proto(),
        (None, None) => "flow",
    };
    o.insert("event_type".into(), json!(event_type));
    if m.vlan[0] != 0 {
        let v: Vec<u16> = m.vlan.iter().copied().filter(|v| *v != 0).collect();
        o.insert("vlan".into(), json!(v));
    }
    o.insert("src_ip".into(), json!(m.src.to_string()));
    o.insert("src_port".into(), json!(m.sport));
    o.insert("dest_ip".into(), json!(m.dst.to_string()));
    o.insert("dest_port".into(), json!(m.dport));
    o.insert("proto".into(), proto_name(m.proto));
    o.insert("pkt_src".into(), json!("wire/pcap"));
    if ev.record.is_some() {
        o.insert("tx_id".into(), json!(m.tx_id));
    }
    if let Some(a) = &ev.alert {
        o.insert("alert".into(), alert_obj(a, &ev.labels));
    }
    if let Some(r) = ev.record.as_deref() {
        app_object(&mut o, r, m.tx_id, ev.alert.is_some(), ev.question);
        if ev.alert.is_none() && !ev.labels.is_empty() {
            // Our one namespaced object (never new top-level EVE keys).
            o.insert("cloudtap".into(), json!({ "labels": &*ev.labels }));
        }
        o.insert("app_proto".into(), json!(r.app_proto()));
    }
    o.insert(
        "direction".into(),
        json!(if m.to_server {
            "to_server"
        } else {
            "to_client"
        }),
    );
    // serde_json::Map keeps insertion order only with preserve_order; we enable it.
    let _ = serde_json::to_writer(&mut *out, &Value::Object(o));
}
