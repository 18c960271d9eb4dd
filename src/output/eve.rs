//! EVE JSON serialisation, key for key in Suricata 7's order (see
//! ../shared/reference/eve-format.md): timestamp, flow_id, in_iface, event_type, vlan, src_ip,
//! src_port, dest_ip, dest_port, proto, pkt_src, tx_id, alert, <app object>, app_proto,
//! direction. cloudtap's own additions live in `alert.metadata` (arrays of strings, as
//! Suricata's metadata), never as new top-level keys.

use super::{AlertInfo, Event, FlowRecord};
use crate::extract::{dns, tls, Record};
use crate::timefmt::eve_timestamp;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use std::borrow::Cow;
use std::net::IpAddr;

// Every object below is written entry by entry, straight into the line: building a
// `serde_json::Value` tree first (an IndexMap, a SipHash per key, a free per node) made the
// writer thread the bottleneck once DNS records were logged: 7 us an event, 1.0 s of CPU
// for the 147k events of the benchmark capture, longer than all the packet work.

fn proto_name(p: u8) -> Cow<'static, str> {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "IPv6-ICMP".into(),
        other => other.to_string().into(),
    }
}

/// One DNS question, as Suricata writes it (`version` last when it stands alone).
struct DnsQuery<'a> {
    m: &'a dns::Message,
    q: &'a dns::Question,
    tx_id: u64,
    version: bool,
}

impl Serialize for DnsQuery<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("type", "query")?;
        o.serialize_entry("id", &self.m.id)?;
        o.serialize_entry("rrname", &self.q.name)?;
        o.serialize_entry("rrtype", &dns::rrtype_name(self.q.qtype))?;
        o.serialize_entry("tx_id", &self.tx_id)?;
        o.serialize_entry("opcode", &self.m.opcode())?;
        if self.version {
            o.serialize_entry("version", &2)?;
        }
        o.end()
    }
}

/// The questions of a query, inside an alert.
struct DnsQueries<'a> {
    m: &'a dns::Message,
    tx_id: u64,
}

impl Serialize for DnsQueries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.m.questions.len()))?;
        for q in &self.m.questions {
            seq.serialize_element(&DnsQuery {
                m: self.m,
                q,
                tx_id: self.tx_id,
                version: false,
            })?;
        }
        seq.end()
    }
}

/// A DNS response in Suricata's version 2 answer format (`answers` and `grouped`).
struct DnsAnswer<'a>(&'a dns::Message);

/// (rrtype, rdata) of each answer record.
type AnswerRow<'a> = (Cow<'static, str>, Option<Cow<'a, str>>);

/// `grouped`: rdata by rrtype, types in the order they first appear.
struct Grouped<'r, 'a>(&'r [AnswerRow<'a>]);

impl Serialize for Grouped<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (t, rdata) in self.0 {
            let Some(r) = rdata else { continue };
            match groups.iter_mut().find(|g| g.0 == t.as_ref()) {
                Some(g) => g.1.push(r),
                None => groups.push((t, vec![r])),
            }
        }
        let mut o = s.serialize_map(Some(groups.len()))?;
        for (t, rs) in &groups {
            o.serialize_entry(t, rs)?;
        }
        o.end()
    }
}

impl Serialize for DnsAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("version", &2)?;
        o.serialize_entry("type", "answer")?;
        o.serialize_entry("id", &m.id)?;
        o.serialize_entry("flags", &format!("{:x}", m.flags))?;
        o.serialize_entry("qr", &true)?;
        for (bit, name) in [
            (0x0400, "aa"),
            (0x0200, "tc"),
            (0x0100, "rd"),
            (0x0080, "ra"),
        ] {
            if m.flags & bit != 0 {
                o.serialize_entry(name, &true)?;
            }
        }
        o.serialize_entry("opcode", &m.opcode())?;
        if let Some(q) = m.questions.first() {
            o.serialize_entry("rrname", &q.name)?;
            o.serialize_entry("rrtype", &dns::rrtype_name(q.qtype))?;
        }
        o.serialize_entry("rcode", dns::rcode_name(m.rcode()))?;
        if !m.answers.is_empty() {
            let rows: Vec<AnswerRow<'_>> = m
                .answers
                .iter()
                .map(|a| {
                    let rdata: Option<Cow<'_, str>> = match &a.rdata {
                        dns::Rdata::A(ip) => Some(ip.to_string().into()),
                        dns::Rdata::Aaaa(ip) => Some(ip.to_string().into()),
                        dns::Rdata::Name(n) => Some(n.as_str().into()),
                        dns::Rdata::Other => None,
                    };
                    (dns::rrtype_name(a.rtype), rdata)
                })
                .collect();
            o.serialize_entry("answers", &Answers { m, rows: &rows })?;
            o.serialize_entry("grouped", &Grouped(&rows))?;
        }
        o.end()
    }
}

/// `answers`: one object per answer record.
struct Answers<'r, 'a> {
    m: &'a dns::Message,
    rows: &'r [AnswerRow<'a>],
}

impl Serialize for Answers<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for (a, (t, rdata)) in self.m.answers.iter().zip(self.rows) {
            seq.serialize_element(&AnswerOut {
                rrname: &a.name,
                rrtype: t,
                ttl: a.ttl,
                rdata: rdata.as_deref(),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct AnswerOut<'a> {
    rrname: &'a str,
    rrtype: &'a str,
    ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdata: Option<&'a str>,
}

/// The `dns` object of an event: a query (one question, or all of them in an alert) or an
/// answer; inside an alert, wrapped as Suricata does (`{"version":2,"query":[...]}`).
struct DnsOut<'a> {
    m: &'a dns::Message,
    tx_id: u64,
    in_alert: bool,
    /// Which question a query record describes (callers split queries, one per question).
    question: usize,
}

impl Serialize for DnsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (m, tx_id) = (self.m, self.tx_id);
        match (m.is_response(), self.in_alert) {
            (true, false) => DnsAnswer(m).serialize(s),
            (false, false) => match m.questions.get(self.question) {
                Some(q) => DnsQuery {
                    m,
                    q,
                    tx_id,
                    version: true,
                }
                .serialize(s),
                None => {
                    let mut o = s.serialize_map(Some(3))?;
                    o.serialize_entry("version", &2)?;
                    o.serialize_entry("type", "query")?;
                    o.serialize_entry("id", &m.id)?;
                    o.end()
                }
            },
            (true, true) => {
                let mut o = s.serialize_map(Some(2))?;
                o.serialize_entry("version", &2)?;
                o.serialize_entry("answer", &DnsAnswer(m))?;
                o.end()
            }
            (false, true) => {
                let mut o = s.serialize_map(Some(2))?;
                o.serialize_entry("version", &2)?;
                o.serialize_entry("query", &DnsQueries { m, tx_id })?;
                o.end()
            }
        }
    }
}

/// The client fingerprints shared by the tls and quic objects.
fn fingerprints<M: SerializeMap>(
    h: &tls::ClientHello,
    quic: bool,
    o: &mut M,
) -> Result<(), M::Error> {
    o.serialize_entry(
        "ja3",
        &Ja3 {
            hash: h.ja3_hash(),
            string: h.ja3_string(),
        },
    )?;
    o.serialize_entry("ja4", &h.ja4(quic))?;
    if !h.alpn.is_empty() {
        o.serialize_entry("client_alpns", &h.alpn_strings())?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Ja3 {
    hash: String,
    string: String,
}

/// The `tls` object: SNI, the highest version offered, fingerprints.
struct TlsOut<'a>(&'a tls::ClientHello);

impl Serialize for TlsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut o = s.serialize_map(None)?;
        if let Some(sni) = &h.sni {
            o.serialize_entry("sni", sni)?;
        }
        // Suricata reports the negotiated version from the ServerHello (our server-side
        // record does too); from the ClientHello alone the best we can say is the highest
        // version the client offered, drafts and experimental versions named.
        o.serialize_entry("version", &h.version())?;
        if h.ech {
            // The SNI above is ECH's outer (public) name, not the destination.
            o.serialize_entry("ech", &true)?;
        }
        fingerprints(h, false, &mut o)?;
        o.end()
    }
}

/// The `tls` object of a server's flight, with Suricata's field names: the negotiated
/// version, the leaf certificate (`subject`, `issuerdn`, `serial`, `fingerprint`,
/// `notbefore`, `notafter`, and `subjectaltname`), and `ja3s`.
struct TlsServerOut<'a>(&'a tls::ServerInfo);

impl Serialize for TlsServerOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        let mut o = s.serialize_map(None)?;
        if let Some(c) = &i.cert {
            o.serialize_entry("subject", &c.subject)?;
            o.serialize_entry("issuerdn", &c.issuerdn)?;
            o.serialize_entry("serial", &c.serial)?;
            o.serialize_entry("fingerprint", &c.fingerprint)?;
        }
        o.serialize_entry("version", &i.version())?;
        if let Some(c) = &i.cert {
            o.serialize_entry("notbefore", &c.notbefore)?;
            o.serialize_entry("notafter", &c.notafter)?;
            if !c.sans.is_empty() {
                o.serialize_entry("subjectaltname", &c.sans)?;
            }
        }
        o.serialize_entry(
            "ja3s",
            &Ja3 {
                hash: i.ja3s_hash(),
                string: i.ja3s_string(),
            },
        )?;
        o.end()
    }
}

/// The `quic` object: version (hex), SNI, fingerprints.
struct QuicOut<'a>(&'a tls::ClientHello, u32);

impl Serialize for QuicOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let h = self.0;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("version", &format!("{:x}", self.1))?;
        if let Some(sni) = &h.sni {
            o.serialize_entry("sni", sni)?;
        }
        fingerprints(h, true, &mut o)?;
        o.end()
    }
}

/// The `alert` object, with cloudtap's evidence and MITRE mapping in `metadata` (arrays
/// of strings, as Suricata writes rule metadata).
struct AlertOut<'a> {
    a: &'a AlertInfo,
    labels: &'a [String],
}

impl Serialize for AlertOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sig = &self.a.sig;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("action", "allowed")?;
        o.serialize_entry("gid", &1)?;
        o.serialize_entry("signature_id", &sig.id)?;
        o.serialize_entry("rev", &sig.rev)?;
        o.serialize_entry("signature", &sig.msg)?;
        o.serialize_entry("category", &sig.category)?;
        o.serialize_entry("severity", &sig.severity)?;
        o.serialize_entry("metadata", &AlertMetadata(self))?;
        o.end()
    }
}

struct AlertMetadata<'r, 'a>(&'r AlertOut<'a>);

impl Serialize for AlertMetadata<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, labels) = (self.0.a, self.0.labels);
        let sig = &a.sig;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("mitre_tactic_id", &[&sig.mitre_tactic_id])?;
        o.serialize_entry("mitre_tactic_name", &[&sig.mitre_tactic_name])?;
        // A sub-technique is written with its parent first (T1583 Acquire_Infrastructure,
        // then T1583.006 Web_Services), as parallel arrays, so a SIEM filtering on either
        // finds it.
        match parent_technique(&sig.mitre_technique_id) {
            Some((pid, pname)) => {
                o.serialize_entry("mitre_technique_id", &[pid, &sig.mitre_technique_id])?;
                o.serialize_entry("mitre_technique_name", &[pname, &sig.mitre_technique_name])?;
            }
            None => {
                o.serialize_entry("mitre_technique_id", &[&sig.mitre_technique_id])?;
                o.serialize_entry("mitre_technique_name", &[&sig.mitre_technique_name])?;
            }
        }
        let fixed: [(&str, &str); 5] = [
            ("cloudtap_pack", &sig.pack.name),
            ("cloudtap_pack_version", &sig.pack.version),
            ("cloudtap_field", a.field.name()),
            ("cloudtap_indicator", &a.pattern),
            ("cloudtap_value", &a.value),
        ];
        for (k, v) in fixed {
            o.serialize_entry(k, &[v])?;
        }
        let optional = [
            ("cloudtap_service", &sig.service),
            ("cloudtap_next_step", &sig.next_step),
            ("reference", &sig.reference),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                o.serialize_entry(k, &[v])?;
            }
        }
        if !labels.is_empty() {
            o.serialize_entry("cloudtap_labels", labels)?;
        }
        o.end()
    }
}

/// Parent technique of the sub-techniques the packs use (ATT&CK names, underscores for
/// spaces as ET Open writes them).
fn parent_technique(id: &str) -> Option<(&'static str, &'static str)> {
    let (parent, _) = id.split_once('.')?;
    Some(match parent {
        "T1583" => ("T1583", "Acquire_Infrastructure"),
        "T1584" => ("T1584", "Compromise_Infrastructure"),
        "T1102" => ("T1102", "Web_Service"),
        "T1567" => ("T1567", "Exfiltration_Over_Web_Service"),
        "T1071" => ("T1071", "Application_Layer_Protocol"),
        "T1090" => ("T1090", "Proxy"),
        _ => return None,
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
    proto: Cow<'static, str>,
    pkt_src: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<AlertOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<DnsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "tls")]
    tls_server: Option<TlsServerOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<HttpOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quic: Option<QuicOut<'a>>,
    cloudtap: Cloudtap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'a str>,
    direction: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowOut<'a>>,
}

/// Our one namespaced object: the event's unique id on every event, then labels on a record
/// or the detection stage's verdict on an alert.
struct Cloudtap<'a> {
    event_id: &'a str,
    labels: Option<&'a [String]>,
    verdict: Option<&'a serde_json::Value>,
}

impl Serialize for Cloudtap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("event_id", self.event_id)?;
        match self.verdict {
            Some(serde_json::Value::Object(m)) => {
                for (k, v) in m {
                    if k != "event_id" {
                        o.serialize_entry(k, v)?;
                    }
                }
            }
            Some(other) => o.serialize_entry("verdict", other)?,
            None => {}
        }
        if let Some(l) = self.labels {
            o.serialize_entry("labels", l)?;
        }
        o.end()
    }
}

struct FlowOut<'a>(&'a FlowRecord);

impl Serialize for FlowOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut o = s.serialize_map(None)?;
        o.serialize_entry("pkts_toserver", &f.pkts_toserver)?;
        o.serialize_entry("pkts_toclient", &f.pkts_toclient)?;
        o.serialize_entry("bytes_toserver", &f.bytes_toserver)?;
        o.serialize_entry("bytes_toclient", &f.bytes_toclient)?;
        let mut t = String::with_capacity(32);
        eve_timestamp(f.start_ns, &mut t);
        o.serialize_entry("start", &t)?;
        t.clear();
        eve_timestamp(f.end_ns, &mut t);
        o.serialize_entry("end", &t)?;
        o.serialize_entry(
            "age",
            &(f.end_ns.saturating_sub(f.start_ns) / 1_000_000_000),
        )?;
        o.serialize_entry("state", if f.closed { "closed" } else { "established" })?;
        o.serialize_entry("reason", f.reason.name())?;
        o.serialize_entry("alerted", &f.alerted)?;
        o.end()
    }
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

/// Serialises one event as a JSON line (without the newline) into `out`, with its unique
/// `cloudtap.event_id` (`output::event_id`).
pub fn write_event(ev: &Event, event_id: &str, out: &mut Vec<u8>) {
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
        alert: ev.alert.as_deref().map(|a| AlertOut {
            a,
            labels: &ev.labels,
        }),
        dns: None,
        tls: None,
        tls_server: None,
        http: None,
        quic: None,
        cloudtap: Cloudtap {
            event_id,
            labels: None,
            verdict: ev.verdict.as_deref(),
        },
        app_proto: record.map(Record::app_proto),
        direction: if m.to_server {
            "to_server"
        } else {
            "to_client"
        },
        flow: ev.flow.as_deref().map(FlowOut),
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
            Record::Dns(dm) => {
                env.dns = Some(DnsOut {
                    m: dm,
                    tx_id: m.tx_id,
                    in_alert: ev.alert.is_some(),
                    question: ev.question,
                })
            }
            Record::Tls(h) => env.tls = Some(TlsOut(h)),
            Record::Quic(h, version) => env.quic = Some(QuicOut(h, *version)),
            Record::TlsServer(i) => env.tls_server = Some(TlsServerOut(i)),
        }
    }
    if ev.alert.is_none() && !ev.labels.is_empty() {
        // Our one namespaced object (never new top-level EVE keys); on records and on flow
        // records (the flow's address check).
        env.cloudtap.labels = Some(&ev.labels);
    }
    let _ = serde_json::to_writer(&mut *out, &env);
}
