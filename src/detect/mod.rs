//! Detect stage: signature packs (data in `signatures/`) compiled once into matchers built for
//! the hot path, and the per-flow alert de-duplication rule.
//!
//! Domains: exact and suffix entries in one hash table probed at every label boundary of the
//! normalised name (so `pastebin.com` matches `x.pastebin.com` but never `badpastebin.com`).
//! Substrings: one Aho-Corasick automaton per field. Regexes: one `RegexSet` per field.
//! Addresses: a longest-prefix table of elementary segments (`iptable`).

mod domains;
mod exceptions;
mod hugevec;
mod import;
mod iptable;
mod lists;
mod matcher;
mod pack;
pub mod reload;
mod source;
mod special;

pub use exceptions::Exception;
pub use matcher::{normalize_domain, Hit, Label, Ruleset, Sizes};
pub use pack::{
    load_bundled, load_dir, load_set, load_texts, LoadError, PackInfo, SERVICE_CATEGORIES,
};
pub use source::SourceSet;

use std::sync::Arc;

/// Where in the traffic a signature looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    DnsQuery,
    DnsAnswer,
    TlsSni,
    HttpHost,
    HttpUserAgent,
    HttpUrl,
    IpDst,
    /// Host and URI without scheme (`pastebin.com/raw/x`), as Zeek's Intel::URL.
    HttpFullUrl,
    /// JA3 of a TLS or QUIC ClientHello (MD5 hex).
    TlsJa3,
    /// JA4 of a TLS or QUIC ClientHello; an entry of only the first section (`t13d1516h2`)
    /// matches every JA4 that starts with it (the section that names the TLS library's
    /// choices, stable across cipher-list reorderings of one client).
    TlsJa4,
}

impl Field {
    pub const ALL: [Field; 10] = [
        Field::DnsQuery,
        Field::DnsAnswer,
        Field::TlsSni,
        Field::HttpHost,
        Field::HttpUserAgent,
        Field::HttpUrl,
        Field::IpDst,
        Field::HttpFullUrl,
        Field::TlsJa3,
        Field::TlsJa4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::DnsQuery => "dns.query",
            Field::DnsAnswer => "dns.answer",
            Field::TlsSni => "tls.sni",
            Field::HttpHost => "http.host",
            Field::HttpUserAgent => "http.user_agent",
            Field::HttpUrl => "http.url",
            Field::IpDst => "ip.dst",
            Field::HttpFullUrl => "http.full_url",
            Field::TlsJa3 => "tls.ja3",
            Field::TlsJa4 => "tls.ja4",
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Fields that hold domain names (normalised before matching).
    pub fn is_domain(self) -> bool {
        matches!(
            self,
            Field::DnsQuery | Field::DnsAnswer | Field::TlsSni | Field::HttpHost
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Raise an alert.
    Alert,
    /// Only label the flow (for detections built on top); no alert.
    Label,
}

/// A compiled signature: what to say when one of its values matches.
#[derive(Debug, Clone)]
pub struct Signature {
    pub id: u32,
    pub rev: u32,
    pub msg: String,
    pub category: String,
    pub severity: u8,
    pub mitre_tactic_id: String,
    pub mitre_tactic_name: String,
    pub mitre_technique_id: String,
    pub mitre_technique_name: String,
    pub service: Option<String>,
    pub next_step: Option<String>,
    pub reference: Option<String>,
    /// What kind of web service (or agent) the signature names: `tunnel`, `paste`,
    /// `cloud-storage`, `script-agent`, ... (docs/signatures.md lists the vocabulary). The
    /// detection stage's policies, bursts and first-use baseline work on it.
    pub service_category: Option<String>,
    /// Why an alert-tier signature alerts on its own (bundled packs must say).
    pub rationale: Option<String>,
    /// For fingerprint entries: how sure a match is (`high`, `medium`, `low`).
    pub confidence: Option<String>,
    pub action: Action,
    pub pack: Arc<PackInfo>,
}

/// A hit that outlives the ruleset borrow: what a worker hands the detection stage.
#[derive(Debug, Clone)]
pub struct SeenHit {
    pub sig: Arc<Signature>,
    pub field: Field,
    /// What was on the wire.
    pub value: String,
    /// The signature entry that matched it.
    pub pattern: String,
    /// Provider, service and region of an address range.
    pub label: Option<String>,
}

impl SeenHit {
    /// An agent, not a service: a script user agent or a TLS fingerprint of one. Agents
    /// join a web service as a signal; they are not one.
    pub fn is_agent(&self) -> bool {
        matches!(
            self.sig.service_category.as_deref(),
            Some("script-agent" | "script-fingerprint")
        ) || matches!(
            self.field,
            Field::HttpUserAgent | Field::TlsJa3 | Field::TlsJa4
        )
    }
}

/// What a flow was about, kept on the flow for its end (upload volume).
#[derive(Debug, Clone, Default)]
pub struct FlowContext {
    /// The web service it reached (a name, else a provider range).
    pub web: Option<SeenHit>,
    /// A script agent seen on it (user agent or TLS fingerprint).
    pub agent: Option<String>,
    /// Context labels from the flow's address check (`ip.dst=provider service region`),
    /// written on its `flow` record.
    pub labels: Vec<String>,
}
