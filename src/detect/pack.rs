//! Loading a signature directory: TOML packs (format 1; see docs/signatures.md) with their
//! `[[import]]`s of providers' range files, plain lists, Zeek Intel files and exception files.
//! Every problem is reported as `file:line: message`; a set with any problem is refused whole.

use super::exceptions::{Exception, ExceptionFile};
use super::import;
use super::lists::{self, ListEntry, ListHeader};
use super::matcher::{parse_cidr, Builder, MatchKind};
use super::source::{SourceFile, SourceSet};
use super::special;
use super::{Action, Field, Ruleset, Signature};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

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
    #[error("{0}: no signature packs or lists found")]
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
    #[serde(default)]
    import: Vec<Spanned<ImportDef>>,
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
    service_category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SigDef {
    id: u32,
    rev: u32,
    msg: String,
    category: Option<String>,
    severity: Option<u8>,
    action: Option<String>,
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
    service_category: Option<String>,
    rationale: Option<String>,
    confidence: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportDef {
    id: u32,
    #[serde(default = "one")]
    rev: u32,
    msg: String,
    format: Spanned<String>,
    path: Spanned<String>,
    provider: String,
    service: Option<String>,
    category: Option<String>,
    severity: Option<u8>,
    action: Option<String>,
    next_step: Option<String>,
    service_category: Option<String>,
}

fn one() -> u32 {
    1
}

/// Line number (1-based) of a byte offset. Files are asked many times (every value of a
/// large pack), so the newline positions of the last text are kept.
fn line_of(text: &str, offset: usize) -> usize {
    thread_local! {
        static INDEX: std::cell::RefCell<(usize, usize, Vec<usize>)> =
            const { std::cell::RefCell::new((0, 0, Vec::new())) };
    }
    INDEX.with(|cell| {
        let mut idx = cell.borrow_mut();
        let key = (text.as_ptr() as usize, text.len());
        if (idx.0, idx.1) != key {
            let nl: Vec<usize> = memchr_all(text.as_bytes());
            *idx = (key.0, key.1, nl);
        }
        idx.2.partition_point(|p| *p < offset) + 1
    })
}

fn memchr_all(b: &[u8]) -> Vec<usize> {
    b.iter()
        .enumerate()
        .filter(|(_, c)| **c == b'\n')
        .map(|(i, _)| i)
        .collect()
}

/// Loads a signature directory from disk.
pub fn load_dir(dir: &Path) -> Result<Ruleset, LoadError> {
    let set = SourceSet::from_dir(dir)?;
    if set.packs().next().is_none() {
        return Err(LoadError::Empty(dir.to_path_buf()));
    }
    load_set(&set)
}

/// Loads the packs compiled into the binary from `signatures/`.
pub fn load_bundled() -> Result<Ruleset, LoadError> {
    load_set(&SourceSet::bundled())
}

/// Parses, validates and compiles TOML packs given as (file name, contents) (tests).
pub fn load_texts(texts: &[(String, String)]) -> Result<Ruleset, LoadError> {
    let set = SourceSet {
        files: texts
            .iter()
            .map(|(n, t)| SourceFile {
                rel: n.clone(),
                display: n.clone(),
                data: std::borrow::Cow::Owned(t.clone().into_bytes()),
            })
            .collect(),
        origin: String::new(),
    };
    load_set(&set)
}

/// State of one load: the builder and everything that must be unique across files.
struct Ctx {
    errors: Vec<String>,
    builder: Builder,
    seen_ids: HashMap<u32, String>,
    seen_packs: HashMap<String, String>,
}

impl Ctx {
    fn claim_id(&mut self, id: u32, at: String) {
        if let Some(prev) = self.seen_ids.insert(id, at.clone()) {
            self.errors.push(format!(
                "{at}: duplicate signature id {id} (first defined at {prev})"
            ));
        }
    }
}

/// Loads every pack, list, Zeek Intel and exception file of a source set.
pub fn load_set(set: &SourceSet) -> Result<Ruleset, LoadError> {
    let mut ctx = Ctx {
        errors: Vec::new(),
        builder: Builder::default(),
        seen_ids: HashMap::new(),
        seen_packs: HashMap::new(),
    };
    for f in set.packs() {
        let Ok(text) = std::str::from_utf8(&f.data) else {
            ctx.errors.push(format!("{}: not UTF-8 text", f.display));
            continue;
        };
        let ext = f.rel.rsplit_once('.').map_or("", |(_, x)| x);
        match ext {
            "toml" => load_toml(&mut ctx, set, f, text),
            "intel" => {
                let h = lists::header(text, &mut ctx.errors, &f.display);
                let entries = lists::zeek_intel(text, &f.display, &mut ctx.errors);
                load_list(&mut ctx, f, h, entries, "intel");
            }
            _ => {
                let h = lists::header(text, &mut ctx.errors, &f.display);
                let entries = lists::entries(ext, text, &f.display, &mut ctx.errors);
                load_list(&mut ctx, f, h, entries, ext);
            }
        }
    }
    if !ctx.errors.is_empty() {
        return Err(LoadError::Invalid(ctx.errors));
    }
    ctx.builder.build().map_err(|e| LoadError::Invalid(vec![e]))
}

/// A signature's or import's severity (3 when neither it nor `[defaults]` sets one),
/// reporting a value outside 1..=4 at `at`.
fn checked_severity(ctx: &mut Ctx, severity: Option<u8>, at: &str) -> u8 {
    let severity = severity.unwrap_or(3);
    if !(1..=4).contains(&severity) {
        ctx.errors
            .push(format!("{at}: severity {severity} must be 1 to 4"));
    }
    severity
}

fn parse_action(a: Option<&str>, default: Action) -> Result<Action, String> {
    match a {
        None => Ok(default),
        Some("alert") => Ok(Action::Alert),
        Some("label") => Ok(Action::Label),
        Some(other) => Err(format!("action {other:?} must be \"alert\" or \"label\"")),
    }
}

/// A stable id for a list that does not set one: 8,000,000 + a hash of the file name.
fn derived_id(name: &str, group: &str) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in name.bytes().chain([0]).chain(group.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(16_777_619);
    }
    8_000_000 + h % 900_000
}

fn load_list(ctx: &mut Ctx, f: &SourceFile, h: ListHeader, entries: Vec<ListEntry>, ext: &str) {
    let stem = f.rel.rsplit_once('.').map_or(f.rel.as_str(), |(s, _)| s);
    let action = match parse_action(h.action.as_deref(), Action::Alert) {
        Ok(a) => a,
        Err(e) => {
            ctx.errors.push(format!("{}: {e}", f.display));
            Action::Alert
        }
    };
    let info = Arc::new(PackInfo {
        name: h.pack.clone().unwrap_or_else(|| stem.to_string()),
        version: h.version.clone().unwrap_or_else(|| "unversioned".into()),
        file: f.display.clone(),
        description: format!("plain list {}", f.rel),
        sources: h.source.iter().cloned().collect(),
    });
    // One signature per list (per meta.source for Zeek Intel files).
    let mut groups: Vec<(String, u32)> = Vec::new();
    for e in &entries {
        let gi = match groups.iter().position(|g| g.0 == e.group) {
            Some(i) => groups[i].1,
            None => {
                let id = if groups.is_empty() {
                    h.id.unwrap_or_else(|| derived_id(&f.rel, &e.group))
                } else {
                    derived_id(&f.rel, &e.group)
                };
                ctx.claim_id(id, format!("{}:{}", f.display, e.line));
                let msg = match (&h.message, ext, e.group.is_empty()) {
                    (Some(m), _, _) => m.clone(),
                    (None, "intel", false) => format!("CLOUDTAP Intel {} ({})", e.group, f.rel),
                    _ => format!("CLOUDTAP {}", f.rel),
                };
                let sig = Signature {
                    id,
                    rev: 1,
                    msg,
                    category: h
                        .category
                        .clone()
                        .unwrap_or_else(|| "Potentially Bad Traffic".into()),
                    severity: h.severity.unwrap_or(2),
                    mitre_tactic_id: h.mitre_tactic_id.clone().unwrap_or_else(|| "TA0042".into()),
                    mitre_tactic_name: h
                        .mitre_tactic_name
                        .clone()
                        .unwrap_or_else(|| "Resource_Development".into()),
                    mitre_technique_id: h
                        .mitre_technique_id
                        .clone()
                        .unwrap_or_else(|| "T1583.006".into()),
                    mitre_technique_name: h
                        .mitre_technique_name
                        .clone()
                        .unwrap_or_else(|| "Web_Services".into()),
                    service: h.service.clone(),
                    next_step: h.next_step.clone(),
                    reference: None,
                    service_category: checked_category(
                        ctx,
                        h.service_category.as_ref(),
                        &f.display,
                    ),
                    rationale: h.rationale.clone(),
                    confidence: None,
                    action,
                    pack: info.clone(),
                };
                let idx = ctx.builder.add_signature(sig);
                groups.push((e.group.clone(), idx));
                idx
            }
        };
        ctx.builder.at(&f.display, e.line);
        // A plain `.cidrs` list is the user's own (a lab's TEST-NET, an internal range for a
        // policy): taken as written. Only providers' published files are checked below.
        if let Err(p) = ctx.builder.add_value(gi, e.kind, e.fields, &e.value) {
            ctx.errors.push(format!("{}:{}: {p}", f.display, e.line));
        }
    }
}

/// A provider list's entry minus IANA's special-purpose ranges (see `special`): `None` when
/// nothing is left, with a warning naming the file and line. A value that does not parse is
/// passed on unchanged, for the caller's error.
fn carve(ctx: &mut Ctx, cidr: &str, at: &str) -> Option<Vec<String>> {
    let Ok((v4, net, len)) = parse_cidr(cidr) else {
        return Some(vec![cidr.to_string()]);
    };
    match special::check(v4, net, len) {
        special::Verdict::Keep => Some(vec![cidr.to_string()]),
        special::Verdict::Drop(what) => {
            ctx.builder.warn(format!(
                "{at}: warning: special-purpose range dropped from a provider list: {cidr} is {what} (IANA special-purpose registry)"
            ));
            None
        }
        special::Verdict::Carve(keep, what) => {
            ctx.builder.warn(format!(
                "{at}: warning: special-purpose range dropped from a provider list: {cidr} contains {} (IANA special-purpose registry); kept the other {} pieces",
                what.join(", "),
                keep.len()
            ));
            Some(
                keep.iter()
                    .map(|&(n, l)| special::cidr_text(v4, n, l))
                    .collect(),
            )
        }
    }
}

/// The 1-based line of `needle`'s first occurrence in `data` (1 when absent: a JSON file
/// may escape it).
fn line_in(data: &[u8], needle: &str) -> usize {
    let n = needle.as_bytes();
    if n.is_empty() || n.len() > data.len() {
        return 1;
    }
    // At a boundary: `10.0.0.0/8` is not the tail of `110.0.0.0/8`.
    let part = |b: u8| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b'/';
    let at = data.windows(n.len()).enumerate().position(|(i, w)| {
        w == n && (i == 0 || !part(data[i - 1])) && data.get(i + n.len()).is_none_or(|b| !part(*b))
    });
    match at {
        Some(pos) => 1 + memchr_all(&data[..pos]).len(),
        None => 1,
    }
}

fn load_exceptions(ctx: &mut Ctx, f: &SourceFile, text: &str) {
    let ef: ExceptionFile = match toml::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            ctx.errors
                .push(format!("{}:{line}: {}", f.display, e.message()));
            return;
        }
    };
    for ex in &ef.exception {
        let at = format!("{}:{}", f.display, line_of(text, ex.span().start));
        match Exception::compile(ex.get_ref(), at.clone()) {
            Ok(c) => ctx.builder.exceptions.push(c),
            Err(e) => ctx.errors.push(format!("{at}: {e}")),
        }
    }
}

fn load_toml(ctx: &mut Ctx, set: &SourceSet, f: &SourceFile, text: &str) {
    let file = &f.display;
    // A TOML file with only [[exception]] tables is an exception file.
    if let Ok(v) = text.parse::<toml::Table>() {
        if !v.contains_key("pack") && v.contains_key("exception") {
            load_exceptions(ctx, f, text);
            return;
        }
    }
    let pf: PackFile = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            ctx.errors.push(format!("{file}:{line}: {}", e.message()));
            return;
        }
    };
    let h = &pf.pack;
    if h.format != 1 {
        ctx.errors.push(format!(
            "{file}: [pack] format = {} is not supported (this cloudtap reads format 1)",
            h.format
        ));
        return;
    }
    if h.name.is_empty()
        || !h
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        ctx.errors.push(format!(
            "{file}: [pack] name {:?} must be lower-case letters, digits and '-'",
            h.name
        ));
    }
    if let Some(prev) = ctx.seen_packs.insert(h.name.clone(), file.clone()) {
        ctx.errors.push(format!(
            "{file}: pack name {:?} already used by {prev}",
            h.name
        ));
    }
    let pack_action = match parse_action(h.action.as_deref(), Action::Alert) {
        Ok(a) => a,
        Err(e) => {
            ctx.errors.push(format!("{file}: [pack] {e}"));
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
        ctx.claim_id(s.id, at(line));
        let severity = checked_severity(ctx, s.severity.or(d.severity), &at(line));
        if s.msg.trim().is_empty() {
            ctx.errors.push(format!("{}: msg is empty", at(line)));
        }
        let action = parse_action(s.action.as_deref(), pack_action).unwrap_or_else(|e| {
            ctx.errors.push(format!("{}: {e}", at(line)));
            pack_action
        });
        let kind = match s.match_kind.get_ref().as_str() {
            "exact" => Some(MatchKind::Exact),
            "suffix" => Some(MatchKind::Suffix),
            "substring" => Some(MatchKind::Substring),
            "regex" => Some(MatchKind::Regex),
            "cidr" => Some(MatchKind::Cidr),
            other => {
                ctx.errors.push(format!(
                    "{}: unknown match {other:?} (exact, suffix, substring, regex, cidr)",
                    at(line_of(text, s.match_kind.span().start))
                ));
                None
            }
        };
        let mut mask = 0u16;
        for fld in &s.fields {
            match Field::parse(fld.get_ref()) {
                Some(field) => {
                    let ok = match kind {
                        Some(MatchKind::Cidr) => field == Field::IpDst,
                        Some(_) => field != Field::IpDst,
                        None => true,
                    };
                    if !ok {
                        ctx.errors.push(format!(
                            "{}: field {} cannot be used with match {:?}",
                            at(line_of(text, fld.span().start)),
                            fld.get_ref(),
                            s.match_kind.get_ref()
                        ));
                    }
                    mask |= field.bit();
                }
                None => ctx.errors.push(format!(
                    "{}: unknown field {:?} (dns.query, dns.answer, tls.sni, http.host, http.user_agent, http.url, http.full_url, ip.dst, tls.ja3, tls.ja4)",
                    at(line_of(text, fld.span().start)),
                    fld.get_ref()
                )),
            }
        }
        if s.fields.is_empty() {
            ctx.errors.push(format!("{}: fields is empty", at(line)));
        }
        if s.values.is_empty() {
            ctx.errors.push(format!("{}: values is empty", at(line)));
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
            service_category: checked_category(
                ctx,
                s.service_category.as_ref().or(d.service_category.as_ref()),
                &at(line),
            ),
            rationale: s.rationale.clone(),
            confidence: checked_confidence(ctx, s.confidence.as_ref(), &at(line)),
            action,
            pack: info.clone(),
        };
        let idx = ctx.builder.add_signature(sig);
        let Some(kind) = kind else { continue };
        let mut seen_values: HashMap<&str, usize> = HashMap::new();
        for v in &s.values {
            let vl = line_of(text, v.span().start);
            let value = v.get_ref();
            if let Some(prev) = seen_values.insert(value.as_str(), vl) {
                ctx.errors.push(format!(
                    "{}: value {value:?} repeated (also at line {prev})",
                    at(vl)
                ));
                continue;
            }
            if let Some(p) = validate_value(kind, value, mask) {
                ctx.errors.push(format!("{}: {p}", at(vl)));
                continue;
            }
            ctx.builder.at(&f.display, vl);
            if let Err(p) = ctx.builder.add_value(idx, kind, mask, value) {
                ctx.errors.push(format!("{}: {p}", at(vl)));
            }
        }
    }
    for imp in &pf.import {
        load_import(ctx, set, f, text, imp, &info, d, pack_action);
    }
}

#[allow(clippy::too_many_arguments)]
fn load_import(
    ctx: &mut Ctx,
    set: &SourceSet,
    f: &SourceFile,
    text: &str,
    imp: &Spanned<ImportDef>,
    info: &Arc<PackInfo>,
    d: &Defaults,
    pack_action: Action,
) {
    let at = format!("{}:{}", f.display, line_of(text, imp.span().start));
    let i = imp.get_ref();
    ctx.claim_id(i.id, at.clone());
    let action = parse_action(i.action.as_deref(), pack_action).unwrap_or_else(|e| {
        ctx.errors.push(format!("{at}: {e}"));
        pack_action
    });
    // `path` is relative to the pack file's folder.
    let base = f.rel.rsplit_once('/').map_or("", |(b, _)| b);
    let rel = if base.is_empty() {
        i.path.get_ref().clone()
    } else {
        format!("{base}/{}", i.path.get_ref())
    };
    let Some(data) = set.get(&rel) else {
        ctx.errors.push(format!(
            "{}:{}: import path {:?} not found in {}",
            f.display,
            line_of(text, i.path.span().start),
            i.path.get_ref(),
            set.origin
        ));
        return;
    };
    let ranges = match import::parse(i.format.get_ref(), &data.data) {
        Ok(r) => r,
        Err(e) => {
            ctx.errors.push(format!(
                "{}:{}: {}: {e}",
                f.display,
                line_of(text, i.format.span().start),
                data.display
            ));
            return;
        }
    };
    let severity = checked_severity(ctx, i.severity.or(d.severity), &at);
    let sig = Signature {
        id: i.id,
        rev: i.rev,
        msg: i.msg.clone(),
        category: i
            .category
            .clone()
            .or_else(|| d.category.clone())
            .unwrap_or_else(|| "Misc activity".into()),
        severity,
        mitre_tactic_id: pick(&None, &d.mitre_tactic_id, "TA0042"),
        mitre_tactic_name: pick(&None, &d.mitre_tactic_name, "Resource_Development"),
        mitre_technique_id: pick(&None, &d.mitre_technique_id, "T1583.006"),
        mitre_technique_name: pick(&None, &d.mitre_technique_name, "Web_Services"),
        service: i.service.clone().or_else(|| Some(i.provider.clone())),
        next_step: i.next_step.clone(),
        reference: None,
        service_category: checked_category(
            ctx,
            i.service_category.as_ref().or(d.service_category.as_ref()),
            &at,
        ),
        rationale: None,
        confidence: None,
        action,
        pack: info.clone(),
    };
    let idx = ctx.builder.add_signature(sig);
    ctx.builder.at(&f.display, line_of(text, imp.span().start));
    let mut bad = 0usize;
    for (n, r) in ranges.iter().enumerate() {
        let service = i.service.as_deref().unwrap_or(&r.service);
        let label = ctx.builder.label(&i.provider, service, &r.region);
        let parsed = match parse_cidr(&r.cidr) {
            Ok(p) => p,
            Err(e) => {
                if bad < 5 {
                    ctx.errors
                        .push(format!("{}: entry {}: {e}", data.display, n + 1));
                }
                bad += 1;
                continue;
            }
        };
        if special::check(parsed.0, parsed.1, parsed.2) == special::Verdict::Keep {
            ctx.builder
                .add_cidr_parsed(idx, Field::IpDst.bit(), &r.cidr, parsed, label);
            continue;
        }
        // Dropped or carved (rare): warn with the file and line.
        let at = format!("{}:{}", data.display, line_in(&data.data, &r.cidr));
        let Some(cidrs) = carve(ctx, &r.cidr, &at) else {
            continue;
        };
        let mut err = None;
        for c in &cidrs {
            if let Err(e) =
                ctx.builder
                    .add_labelled(idx, MatchKind::Cidr, Field::IpDst.bit(), c, label)
            {
                err = Some(e);
            }
        }
        if let Some(e) = err {
            if bad < 5 {
                ctx.errors
                    .push(format!("{}: entry {}: {e}", data.display, n + 1));
            }
            bad += 1;
        }
    }
    if bad > 5 {
        ctx.errors
            .push(format!("{}: {} more bad entries", data.display, bad - 5));
    }
}

/// The `service_category` vocabulary (docs/signatures.md): policies and bursts name these,
/// so a typo would silently make a policy match nothing; it is an error instead.
pub const SERVICE_CATEGORIES: [&str; 22] = [
    "tunnel",
    "paste",
    "file-drop",
    "messaging-api",
    "webhook",
    "dynamic-dns",
    "oast",
    "cloud-storage",
    "cloud-compute",
    "app-hosting",
    "code-hosting",
    "cloud-drive",
    "saas",
    "social",
    "ad-cdn",
    "url-shortener",
    "cloud-console",
    "script-agent",
    "script-fingerprint",
    "provider-range",
    "encrypted-dns",
    "other",
];

fn checked_category(ctx: &mut Ctx, c: Option<&String>, at: &str) -> Option<String> {
    let c = c?;
    if !SERVICE_CATEGORIES.contains(&c.as_str()) {
        ctx.errors.push(format!(
            "{at}: service_category {c:?} is not one of {}",
            SERVICE_CATEGORIES.join(", ")
        ));
    }
    Some(c.clone())
}

fn checked_confidence(ctx: &mut Ctx, c: Option<&String>, at: &str) -> Option<String> {
    let c = c?;
    if !matches!(c.as_str(), "high" | "medium" | "low") {
        ctx.errors.push(format!(
            "{at}: confidence {c:?} must be \"high\", \"medium\" or \"low\""
        ));
    }
    Some(c.clone())
}

fn pick(s: &Option<String>, d: &Option<String>, fallback: &str) -> String {
    s.clone()
        .or_else(|| d.clone())
        .unwrap_or_else(|| fallback.to_string())
}

fn validate_value(kind: MatchKind, v: &str, mask: u16) -> Option<String> {
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
            if !lists::plausible_domain(v) {
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
