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

pub use exceptions::Exception;
pub use matcher::{normalize_domain, Hit, Label, Ruleset, Sizes};
pub use pack::{load_bundled, load_dir, load_set, load_texts, LoadError, PackInfo};
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
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::DnsQuery,
        Field::DnsAnswer,
        Field::TlsSni,
        Field::HttpHost,
        Field::HttpUserAgent,
        Field::HttpUrl,
        Field::IpDst,
        Field::HttpFullUrl,
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
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
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
    pub action: Action,
    pub pack: Arc<PackInfo>,
}
