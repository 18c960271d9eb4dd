//! EVE JSON serialisation, key for key in Suricata 7's order (see
//! ../shared/reference/eve-format.md): timestamp, flow_id, in_iface, event_type, vlan, src_ip,
//! src_port, dest_ip, dest_port, proto, pkt_src, tx_id, alert, <app object>, app_proto,
//! direction. cloudtap's own additions live in `alert.metadata` (arrays of strings, as
//! Suricata's metadata), never as new top-level keys.

use super::{AlertInfo, Event};
use crate::extract::{dns, http, tls, Record};
use crate::timefmt::eve_timestamp;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

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

/// The EVE envelope, serialised field by field in Suricata's order without building an
/// intermediate JSON tree (most of the cost of writing an event).
#[derive(Serialize)]
struct Envelope<'a> {
    timestamp: &'a str,
    flow_id: u64,
    in_iface: &'a str,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<Vec<u16>>,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: Value,
    pkt_src: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quic: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloudtap: Option<Labels<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'a str>,
    direction: &'a str,
}

#[derive(Serialize)]
struct Labels<'a> {
    labels: &'a [String],
}

#[derive(Serialize)]
struct HttpOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_port: Option<u16>,
    url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_content_type: Option<&'a str>,
    http_method: &'a str,
    protocol: &'a str,
}

/// Serialises one event as a JSON line (without the newline) into `out`.
pub fn write_event(ev: &Event, out: &mut Vec<u8>) {
    let m = &ev.meta;
    let mut ts = String::with_capacity(32);
    eve_timestamp(m.ts_ns, &mut ts);
    let record = ev.record.as_deref();
    let event_type = match (&ev.alert, record) {
        (Some(_), _) => "alert",
        (None, Some(r)) => r.app_proto(),
        (None, None) => "flow",
    };
    let mut env = Envelope {
        timestamp: &ts,
        flow_id: m.flow_id,
        in_iface: &m.iface,
        event_type,
        vlan: (m.vlan[0] != 0).then(|| m.vlan.iter().copied().filter(|v| *v != 0).collect()),
        src_ip: m.src,
        src_port: m.sport,
        dest_ip: m.dst,
        dest_port: m.dport,
        proto: proto_name(m.proto),
        pkt_src: "wire/pcap",
        tx_id: record.map(|_| m.tx_id),
        alert: ev.alert.as_ref().map(|a| alert_obj(a, &ev.labels)),
        dns: None,
        tls: None,
        http: None,
        quic: None,
        cloudtap: None,
        app_proto: record.map(Record::app_proto),
        direction: if m.to_server {
            "to_server"
        } else {
            "to_client"
        },
    };
    if let Some(r) = record {
        match r {
            Record::Http(h) => {
                env.http = Some(HttpOut {
                    hostname: h.host.as_deref(),
                    http_port: h.host_port,
                    url: &h.uri,
                    http_user_agent: h.user_agent.as_deref(),
                    http_content_type: h.content_type.as_deref(),
                    http_method: &h.method,
                    protocol: h.protocol,
                })
            }
            other => {
                let mut o = Map::new();
                app_object(&mut o, other, m.tx_id, ev.alert.is_some(), ev.question);
                env.dns = o.remove("dns");
                env.tls = o.remove("tls");
                env.quic = o.remove("quic");
            }
        }
        if ev.alert.is_none() && !ev.labels.is_empty() {
            // Our one namespaced object (never new top-level EVE keys).
            env.cloudtap = Some(Labels { labels: &ev.labels });
        }
    }
    let _ = serde_json::to_writer(&mut *out, &env);
}
