//! Plain lists and Zeek Intel files: the formats feeds already come in.
//!
//! `.domains` (a name matches itself and its subdomains; `=name` only itself), `.cidrs`
//! (prefixes or addresses), `.useragents` (case-sensitive substrings; `re:` before a regex);
//! `#` starts a comment. Leading `# key: value` lines set the signature (id, message,
//! category, severity, action, mitre_*, service, next_step, pack, version, source, license).
//! `.intel`: Zeek Intel framework files (`#fields indicator indicator_type meta.source ...`).

use super::matcher::MatchKind;
use super::Field;

/// What the header of a list sets.
#[derive(Debug, Default, Clone)]
pub struct ListHeader {
    pub id: Option<u32>,
    pub message: Option<String>,
    pub category: Option<String>,
    pub severity: Option<u8>,
    pub action: Option<String>,
    pub mitre_tactic_id: Option<String>,
    pub mitre_tactic_name: Option<String>,
    pub mitre_technique_id: Option<String>,
    pub mitre_technique_name: Option<String>,
    pub service: Option<String>,
    pub next_step: Option<String>,
    pub service_category: Option<String>,
    pub rationale: Option<String>,
    pub pack: Option<String>,
    pub version: Option<String>,
    pub source: Option<String>,
}

/// One entry of a list: what to match, how, where, and the line it came from.
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub line: usize,
    pub kind: MatchKind,
    pub fields: u16,
    pub value: String,
    /// For Zeek Intel: the meta.source column (one signature per source).
    pub group: String,
}

pub const DOMAIN_FIELDS: u16 = 1 << (Field::DnsQuery as u16)
    | 1 << (Field::DnsAnswer as u16)
    | 1 << (Field::TlsSni as u16)
    | 1 << (Field::HttpHost as u16);

/// Parses the `# key: value` header (only lines before the first entry).
pub fn header(text: &str, errors: &mut Vec<String>, file: &str) -> ListHeader {
    let mut h = ListHeader::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let Some(c) = t.strip_prefix('#') else { break };
        let Some((k, v)) = c.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        let line_no = i + 1;
        match k.as_str() {
            "id" => match v.parse() {
                Ok(id) => h.id = Some(id),
                Err(_) => errors.push(format!("{file}:{line_no}: id {v:?} is not a number")),
            },
            "message" | "msg" => h.message = Some(v),
            "category" => h.category = Some(v),
            "severity" => match v.parse() {
                Ok(s) if (1..=4).contains(&s) => h.severity = Some(s),
                _ => errors.push(format!("{file}:{line_no}: severity {v:?} must be 1 to 4")),
            },
            "action" => h.action = Some(v),
            "mitre_tactic_id" => h.mitre_tactic_id = Some(v),
            "mitre_tactic_name" => h.mitre_tactic_name = Some(v),
            "mitre_technique_id" => h.mitre_technique_id = Some(v),
            "mitre_technique_name" => h.mitre_technique_name = Some(v),
            "service" => h.service = Some(v),
            "next_step" => h.next_step = Some(v),
            "service_category" => h.service_category = Some(v),
            "rationale" => h.rationale = Some(v),
            "pack" => h.pack = Some(v),
            "version" => h.version = Some(v),
            "source" => h.source = Some(v),
            _ => {} // prose comments that happen to contain a colon
        }
    }
    h
}

/// Parses the entries of a `.domains`, `.cidrs` or `.useragents` list.
pub fn entries(ext: &str, text: &str, file: &str, errors: &mut Vec<String>) -> Vec<ListEntry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(p) if ext != "useragents" || raw.trim_start().starts_with('#') => &raw[..p],
            _ => raw,
        };
        let v = line.trim();
        if v.is_empty() {
            continue;
        }
        let n = i + 1;
        let entry = |kind, fields, value: &str| ListEntry {
            line: n,
            kind,
            fields,
            value: value.to_string(),
            group: String::new(),
        };
        match ext {
            "domains" => {
                let (kind, name) = match v.strip_prefix('=') {
                    Some(n) => (MatchKind::Exact, n),
                    None => (MatchKind::Suffix, v.strip_prefix("*.").unwrap_or(v)),
                };
                if !plausible_domain(name) {
                    errors.push(format!("{file}:{n}: {v:?} is not a domain name"));
                    continue;
                }
                out.push(entry(kind, DOMAIN_FIELDS, name));
            }
            "cidrs" => out.push(entry(MatchKind::Cidr, Field::IpDst.bit(), v)),
            "useragents" => match v.strip_prefix("re:") {
                Some(re) => out.push(entry(
                    MatchKind::Regex,
                    Field::HttpUserAgent.bit(),
                    re.trim(),
                )),
                None => out.push(entry(MatchKind::Substring, Field::HttpUserAgent.bit(), v)),
            },
            _ => {}
        }
    }
    out
}

/// A name made of labels of letters, digits, '-' and '_' (or an IDN in Unicode).
pub fn plausible_domain(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

/// Parses a Zeek Intel file.
pub fn zeek_intel(text: &str, file: &str, errors: &mut Vec<String>) -> Vec<ListEntry> {
    let mut out = Vec::new();
    let mut cols: Option<(usize, usize, Option<usize>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(f) = line.strip_prefix("#fields") {
            let names: Vec<&str> = f
                .split('\t')
                .filter(|s| !s.is_empty())
                .map(str::trim)
                .collect();
            let pos = |k: &str| names.iter().position(|x| *x == k);
            match (pos("indicator"), pos("indicator_type")) {
                (Some(a), Some(b)) => cols = Some((a, b, pos("meta.source"))),
                _ => errors.push(format!(
                    "{file}:{n}: #fields must name indicator and indicator_type"
                )),
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((ci, ct, cs)) = cols else {
            errors.push(format!("{file}:{n}: data before the #fields line"));
            return out;
        };
        let f: Vec<&str> = line.split('\t').collect();
        let (Some(ind), Some(typ)) = (f.get(ci), f.get(ct)) else {
            errors.push(format!("{file}:{n}: fewer columns than #fields names"));
            continue;
        };
        let group = cs
            .and_then(|c| f.get(c))
            .map_or("", |s| s.trim())
            .to_string();
        let (kind, fields, value) = match typ.trim() {
            "Intel::DOMAIN" => (MatchKind::Exact, DOMAIN_FIELDS, ind.trim().to_string()),
            "Intel::ADDR" | "Intel::SUBNET" => {
                (MatchKind::Cidr, Field::IpDst.bit(), ind.trim().to_string())
            }
            "Intel::SOFTWARE" => (
                MatchKind::Substring,
                Field::HttpUserAgent.bit(),
                ind.trim().to_string(),
            ),
            "Intel::URL" => {
                let u = ind.trim();
                let u = u.split_once("://").map_or(u, |(_, r)| r);
                (MatchKind::Exact, Field::HttpFullUrl.bit(), u.to_string())
            }
            // Types cloudtap does not see on the wire (EMAIL, FILE_HASH, CERT_HASH, ...).
            _ => continue,
        };
        if kind == MatchKind::Exact && fields == DOMAIN_FIELDS && !plausible_domain(&value) {
            errors.push(format!("{file}:{n}: {value:?} is not a domain name"));
            continue;
        }
        out.push(ListEntry {
            line: n,
            kind,
            fields,
            value,
            group,
        });
    }
    out
}
