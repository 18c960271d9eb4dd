//! Signature pack files (TOML, format 1; see docs/signatures.md): parsing and validation with
//! file and line in every message. A pack with any problem is refused whole.

use super::matcher::{parse_cidr, Builder, MatchKind};
use super::{Action, Field, Ruleset, Signature};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// Names of the packs compiled into the binary.
pub const BUNDLED_NAMES: &[&str] = BUNDLED_FILE_NAMES;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub name: String,
    pub version: String,
    pub file: String,
    pub description: String,
    pub sources: Vec<String>,
}

/// Every problem found in the signature set, each as `file:line: message`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: no signature packs (*.toml) found")]
    Empty(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    pack: PackHeader,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    signature: Vec<Spanned<SigDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackHeader {
    format: u32,
    name: String,
    version: String,
    description: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    license_note: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Defaults {
    category: Option<String>,
    severity: Option<u8>,
    mitre_tactic_id: Option<String>,
    mitre_tactic_name: Option<String>,
    mitre_technique_id: Option<String>,
    mitre_technique_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigDef {
    id: u32,
    rev: u32,
    msg: String,
    category: Option<String>,
    severity: Option<u8>,
    mitre_tactic_id: Option<String>,
    mitre_tactic_name: Option<String>,
    mitre_technique_id: Option<String>,
    mitre_technique_name: Option<String>,
    fields: Vec<Spanned<String>>,
    #[serde(rename = "match")]
    match_kind: Spanned<String>,
    values: Vec<Spanned<String>>,
    service: Option<String>,
    next_step: Option<String>,
    reference: Option<String>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Loads every `*.toml` pack in `dir` (sorted by name).
pub fn load_dir(dir: &Path) -> Result<Ruleset, LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LoadError::Empty(dir.to_path_buf()));
    }
    let mut texts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Io {
            path: f.clone(),
            source,
        })?;
        texts.push((f.display().to_string(), text));
    }
    load_texts(&texts)
}

/// Loads the packs compiled into the binary from `signatures/`.
pub fn load_bundled() -> Result<Ruleset, LoadError> {
    let texts: Vec<(String, String)> = BUNDLED
        .iter()
        .map(|(n, t)| (format!("(bundled) signatures/{n}"), (*t).to_string()))
        .collect();
    load_texts(&texts)
}

/// Parses, validates and compiles packs given as (file name, contents).
pub fn load_texts(texts: &[(String, String)]) -> Result<Ruleset, LoadError> {
    let mut errors = Vec::new();
    let mut builder = Builder::default();
    let mut seen_ids: HashMap<u32, String> = HashMap::new();
    let mut seen_packs: HashMap<String, String> = HashMap::new();
    for (file, text) in texts {
        let pf: PackFile = match toml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
                errors.push(format!("{file}:{line}: {}", e.message()));
                continue;
            }
        };
        let h = &pf.pack;
        if h.format != 1 {
            errors.push(format!(
                "{file}: [pack] format = {} is not supported (this cloudtap reads format 1)",
                h.format
            ));
            continue;
        }
        if h.name.is_empty()
            || !h
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            errors.push(format!(
                "{file}: [pack] name {:?} must be lower-case letters, digits and '-'",
                h.name
            ));
        }
        if let Some(prev) = seen_packs.insert(h.name.clone(), file.clone()) {
            errors.push(format!(
                "{file}: pack name {:?} already used by {prev}",
                h.name
            ));
        }
        let action = match h.action.as_deref() {
            None | Some("alert") => Action::Alert,
            Some("label") => Action::Label,
            Some(other) => {
                errors.push(format!(
                    "{file}: [pack] action {other:?} must be \"alert\" or \"label\""
                ));
                Action::Alert
            }
        };
        let _ = &h.license_note;
        let info = Arc::new(PackInfo {
            name: h.name.clone(),
            version: h.version.clone(),
            file: file.clone(),
            description: h.description.clone(),
            sources: h.sources.clone(),
        });
        let d = &pf.defaults;
        for sd in &pf.signature {
            let line = line_of(text, sd.span().start);
            let s = sd.get_ref();
            let at = |l: usize| format!("{file}:{l}");
            if let Some(prev) = seen_ids.insert(s.id, at(line)) {
                errors.push(format!(
                    "{}: duplicate signature id {} (first defined at {prev})",
                    at(line),
                    s.id
                ));
            }
            let severity = s.severity.or(d.severity).unwrap_or(3);
            if !(1..=4).contains(&severity) {
                errors.push(format!("{}: severity {severity} must be 1 to 4", at(line)));
            }
            if s.msg.trim().is_empty() {
                errors.push(format!("{}: msg is empty", at(line)));
            }
            let kind = match s.match_kind.get_ref().as_str() {
                "exact" => Some(MatchKind::Exact),
                "suffix" => Some(MatchKind::Suffix),
                "substring" => Some(MatchKind::Substring),
                "regex" => Some(MatchKind::Regex),
                "cidr" => Some(MatchKind::Cidr),
                other => {
                    errors.push(format!(
                        "{}: unknown match {other:?} (exact, suffix, substring, regex, cidr)",
                        at(line_of(text, s.match_kind.span().start))
                    ));
                    None
                }
            };
            let mut mask = 0u8;
            for f in &s.fields {
                match Field::parse(f.get_ref()) {
                    Some(field) => {
                        let ok = match kind {
                            Some(MatchKind::Cidr) => field == Field::IpDst,
                            Some(_) => field != Field::IpDst,
                            None => true,
                        };
                        if !ok {
                            errors.push(format!(
                                "{}: field {} cannot be used with match {:?}",
                                at(line_of(text, f.span().start)),
                                f.get_ref(),
                                s.match_kind.get_ref()
                            ));
                        }
                        mask |= field.bit();
                    }
                    None => errors.push(format!(
                        "{}: unknown field {:?} (dns.query, dns.answer, tls.sni, http.host, http.user_agent, http.url, ip.dst)",
                        at(line_of(text, f.span().start)),
                        f.get_ref()
                    )),
                }
            }
            if s.fields.is_empty() {
                errors.push(format!("{}: fields is empty", at(line)));
            }
            if s.values.is_empty() {
                errors.push(format!("{}: values is empty", at(line)));
            }
            let sig = Signature {
                id: s.id,
                rev: s.rev,
                msg: s.msg.clone(),
                category: s
                    .category
                    .clone()
                    .or_else(|| d.category.clone())
                    .unwrap_or_else(|| "Potentially Bad Traffic".into()),
                severity,
                mitre_tactic_id: pick(&s.mitre_tactic_id, &d.mitre_tactic_id, "TA0042"),
                mitre_tactic_name: pick(
                    &s.mitre_tactic_name,
                    &d.mitre_tactic_name,
                    "Resource_Development",
                ),
                mitre_technique_id: pick(&s.mitre_technique_id, &d.mitre_technique_id, "T1583.006"),
                mitre_technique_name: pick(
                    &s.mitre_technique_name,
                    &d.mitre_technique_name,
                    "Web_Services",
                ),
                service: s.service.clone(),
                next_step: s.next_step.clone(),
                reference: s.reference.clone(),
                action,
                pack: info.clone(),
            };
            let idx = builder.add_signature(sig);
            let Some(kind) = kind else { continue };
            for v in &s.values {
                let vl = line_of(text, v.span().start);
                let value = v.get_ref();
                let problem = validate_value(kind, value, mask);
                if let Some(p) = problem {
                    errors.push(format!("{}: {p}", at(vl)));
                    continue;
                }
                if let Err(p) = builder.add_value(idx, kind, mask, value) {
                    errors.push(format!("{}: {p}", at(vl)));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    builder.build().map_err(|e| LoadError::Invalid(vec![e]))
}

fn pick(s: &Option<String>, d: &Option<String>, fallback: &str) -> String {
    s.clone()
        .or_else(|| d.clone())
        .unwrap_or_else(|| fallback.to_string())
}

fn validate_value(kind: MatchKind, v: &str, mask: u8) -> Option<String> {
    if v.is_empty() {
        return Some("empty value".into());
    }
    let domain_only = mask != 0
        && Field::ALL
            .iter()
            .filter(|f| mask & f.bit() != 0)
            .all(|f| f.is_domain());
    match kind {
        MatchKind::Suffix | MatchKind::Exact if domain_only => {
            if v.contains('*') {
                return Some(format!(
                    "{v:?}: wildcards are not needed: a suffix entry already matches every subdomain"
                ));
            }
            if v.contains(char::is_whitespace) || v.contains('/') || v.starts_with('.') {
                return Some(format!("{v:?} is not a domain name"));
            }
            None
        }
        MatchKind::Suffix => Some("match \"suffix\" applies to domain fields only".into()),
        MatchKind::Cidr => parse_cidr(v).err(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Ruleset, LoadError> {
        load_texts(&[("t.toml".into(), text.into())])
    }

    const HEAD: &str = "[pack]\nformat = 1\nname = \"t\"\nversion = \"1\"\ndescription = \"d\"\n";

    #[test]
    fn errors_carry_file_and_line() {
        let text = format!(
            "{HEAD}\n[[signature]]\nid = 1\nrev = 1\nmsg = \"m\"\nfields = [\"ip.dst\"]\nmatch = \"cidr\"\nvalues = [\n  \"10.0.0.0/8\",\n  \"300.1.1.1/8\",\n]\n\n[[signature]]\nid = 1\nrev = 1\nmsg = \"m\"\nfields = [\"http.user_agent\"]\nmatch = \"regex\"\nvalues = [\"(unclosed\"]\nbogus = 1\n"
        );
        let err = one(&text).expect_err("invalid").to_string();
        assert!(err.contains("t.toml:"), "{err}");
        // unknown key is a parse error reported first, with its line
        assert!(err.contains("unknown field `bogus`"), "{err}");
        let text2 = text.replace("bogus = 1\n", "");
        let err = one(&text2).expect_err("invalid").to_string();
        assert!(err.contains("t.toml:15: \"300.1.1.1/8\""), "{err}");
        assert!(err.contains("duplicate signature id 1"), "{err}");
        assert!(err.contains("t.toml:24: "), "{err}");
    }

    #[test]
    fn bundled_packs_load() {
        let rs = load_bundled().expect("bundled packs are valid");
        assert!(rs.signatures().len() > 50);
    }
}
