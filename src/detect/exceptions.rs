//! Allowlists and exceptions: tune false positives without editing packs.
//!
//! A TOML file in the signature directory holding only `[[exception]]` tables. Each names
//! why (`reason`) and any of: `domain` (matched value at or under these domains), `value`
//! (matched value exactly, e.g. a user agent), `src` (source address in these prefixes),
//! `signature_id`. An alert is suppressed when every criterion an exception gives holds; an
//! exception with only `domain` is a global allowlist entry.

use super::matcher::{normalize_domain, parse_cidr};
use serde::Deserialize;
use std::net::IpAddr;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFile {
    pub exception: Vec<Spanned<ExceptionDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionDef {
    pub reason: String,
    #[serde(default)]
    pub domain: Vec<String>,
    #[serde(default)]
    pub value: Vec<String>,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub signature_id: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Exception {
    pub reason: String,
    pub where_: String,
    domains: Vec<String>,
    values: Vec<String>,
    src: Vec<(bool, u128, u8)>,
    ids: Vec<u32>,
}

impl Exception {
    pub fn compile(d: &ExceptionDef, where_: String) -> Result<Exception, String> {
        if d.domain.is_empty()
            && d.value.is_empty()
            && d.src.is_empty()
            && d.signature_id.is_empty()
        {
            return Err(
                "an exception needs at least one of domain, value, src, signature_id".into(),
            );
        }
        let mut domains = Vec::new();
        for x in &d.domain {
            let mut buf = [0u8; 256];
            domains.push(
                normalize_domain(x, &mut buf)
                    .ok_or("domain too long")?
                    .to_string(),
            );
        }
        let src = d
            .src
            .iter()
            .map(|c| parse_cidr(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Exception {
            reason: d.reason.clone(),
            where_,
            domains,
            values: d.value.clone(),
            src,
            ids: d.signature_id.clone(),
        })
    }

    /// Whether this exception suppresses an alert.
    pub fn covers(&self, sig: u32, value: &str, src: IpAddr) -> bool {
        if !self.ids.is_empty() && !self.ids.contains(&sig) {
            return false;
        }
        if !self.values.is_empty() && !self.values.iter().any(|v| v == value) {
            return false;
        }
        if !self.domains.is_empty() {
            let mut buf = [0u8; 256];
            let Some(n) = normalize_domain(value, &mut buf) else {
                return false;
            };
            let under = self.domains.iter().any(|d| {
                n == d
                    || (n.len() > d.len()
                        && n.ends_with(d.as_str())
                        && n.as_bytes()[n.len() - d.len() - 1] == b'.')
            });
            if !under {
                return false;
            }
        }
        if !self.src.is_empty() {
            let (v4, bits, max) = match src {
                IpAddr::V4(a) => (true, u128::from(u32::from(a)), 32u8),
                IpAddr::V6(a) => (false, u128::from(a), 128u8),
            };
            let inside = self.src.iter().any(|&(f4, net, len)| {
                f4 == v4
                    && (len == 0 || (bits >> u32::from(max - len)) == (net >> u32::from(max - len)))
            });
            if !inside {
                return false;
            }
        }
        true
    }
}
