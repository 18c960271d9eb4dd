//! Keeps docs/pack-schema.json honest: every bundled pack validates against it, broken packs are
//! rejected by it (and by the loader), and its keys and enums follow the Rust code (the serde
//! structs of pack.rs, `Field::name`, the accepted `match` kinds and actions, the import
//! formats), read as text so that code drifting away from the schema breaks this test.

use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn schema() -> Value {
    serde_json::from_str(&read("docs/pack-schema.json")).expect("docs/pack-schema.json is JSON")
}

/// A TOML document as its JSON equivalent (tables become objects).
fn toml_to_json(text: &str) -> Value {
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    serde_json::to_value(toml::Value::Table(table)).expect("TOML converts to JSON")
}

/// A minimal JSON Schema (2020-12) validator for the keywords the pack schema uses. It panics
/// on any other keyword, so the schema cannot grow a constraint this test silently ignores.
fn check(root: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = schema.as_object().expect("every schema is an object");
    let props = s.get("properties").and_then(Value::as_object);
    for (kw, arg) in s {
        let kw = kw.as_str();
        let err = match kw {
            "$schema" | "$id" | "$defs" | "examples" => None,
            "title" | "description" | "default" => None,
            "$ref" => {
                // Editors that read the schema as draft 4 (Taplo) ignore keywords beside $ref.
                assert_eq!(s.len(), 1, "$ref at {at} has sibling keywords");
                let r = arg.as_str().expect("$ref is a string");
                let target = root.pointer(r.trim_start_matches('#'));
                check(root, target.expect("$ref into this document"), v, at, errs);
                None
            }
            "type" => {
                let t = match v {
                    Value::Object(_) => "object",
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Bool(_) => "boolean",
                    Value::Number(n) if n.is_f64() => "number",
                    Value::Number(_) => "integer",
                    Value::Null => "null",
                };
                (arg != t).then(|| format!("{v} is not of type {arg}"))
            }
            "enum" => {
                let allowed = arg.as_array().expect("enum is an array");
                (!allowed.contains(v)).then(|| format!("{v} is not one of {arg}"))
            }
            "minimum" | "maximum" | "minLength" | "minItems" => {
                let bound = arg.as_f64().expect("numeric bound");
                let x = match kw {
                    "minLength" => v.as_str().map(|x| x.chars().count() as f64),
                    "minItems" => v.as_array().map(|a| a.len() as f64),
                    _ => v.as_f64(),
                };
                let sign = if kw == "maximum" { -1.0 } else { 1.0 };
                let bad = x.is_some_and(|x| sign * (x - bound) < 0.0);
                bad.then(|| format!("{v} violates {kw} {arg}"))
            }
            "pattern" => {
                let re = Regex::new(arg.as_str().expect("pattern")).expect("pattern compiles");
                let bad = v.as_str().is_some_and(|x| !re.is_match(x));
                bad.then(|| format!("{v} does not match {arg}"))
            }
            "uniqueItems" => {
                assert_eq!(arg, true, "only uniqueItems: true is implemented");
                let a: &[Value] = v.as_array().map_or(&[][..], Vec::as_slice);
                let dup = (1..a.len()).find(|&i| a[..i].contains(&a[i]));
                dup.map(|i| format!("{} repeated", a[i]))
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    check(root, arg, x, &format!("{at}[{i}]"), errs);
                }
                None
            }
            "properties" => {
                for (k, x) in v.as_object().into_iter().flatten() {
                    if let Some(sub) = arg.get(k) {
                        check(root, sub, x, &format!("{at}.{k}"), errs);
                    }
                }
                None
            }
            "required" => {
                let names = arg.as_array().expect("required is an array");
                for r in names.iter().filter_map(Value::as_str) {
                    if v.as_object().is_some_and(|o| !o.contains_key(r)) {
                        errs.push(format!("{at}: missing required key {r:?}"));
                    }
                }
                None
            }
            "additionalProperties" => {
                assert_eq!(arg, false, "only additionalProperties: false");
                for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !props.is_some_and(|p| p.contains_key(k)) {
                        errs.push(format!("{at}: unknown key {k:?}"));
                    }
                }
                None
            }
            other => panic!("keyword {other:?} (schema of {at}) is not implemented here"),
        };
        errs.extend(err.map(|e| format!("{at}: {e}")));
    }
}

fn validate(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(schema, schema, doc, "$", &mut errs);
    errs
}

#[test]
fn bundled_packs_validate() {
    let schema = schema();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("signatures");
    let mut packs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("signatures/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    packs.sort();
    assert!(packs.len() >= 2, "no bundled packs found: {packs:?}");
    let mut problems = Vec::new();
    for path in &packs {
        let doc = toml_to_json(&std::fs::read_to_string(path).expect("pack is readable"));
        if doc.get("pack").is_none() && doc.get("exception").is_some() {
            continue; // an exception file, not a pack (the loader decides the same way)
        }
        let errs = validate(&schema, &doc).into_iter();
        problems.extend(errs.map(|e| format!("{}: {e}", path.display())));
    }
    let problems = problems.join("\n");
    assert!(problems.is_empty(), "packs vs the schema:\n{problems}");
}

#[test]
fn schema_metadata_and_examples() {
    let schema = schema();
    let draft = "https://json-schema.org/draft/2020-12/schema";
    assert_eq!(schema["$schema"], draft);
    for k in ["$id", "title", "description"] {
        assert!(schema[k].is_string(), "schema has no {k}");
    }
    for ex in schema["examples"].as_array().expect("schema has examples") {
        let errs = validate(&schema, ex);
        assert!(errs.is_empty(), "example: {errs:?}");
    }
}

/// A pack both the schema and the loader accept (x.txt is given to the loader beside it).
const GOOD: &str = r#"[pack]
format = 1
name = "t"
version = "1"
description = "d"

[defaults]
severity = 3

[[signature]]
id = 1
rev = 1
msg = "CLOUDTAP test"
fields = ["dns.query", "tls.sni"]
match = "suffix"
values = ["bad.example"]

[[import]]
id = 2
msg = "m"
format = "cidr-list"
path = "x.txt"
provider = "P"
"#;

/// Broken variants of GOOD: (text replaced, replacement).
const BROKEN: [(&str, &str); 21] = [
    ("rev = 1\n", "rev = 1\ncolour = 1\n"), // unknown key in [[signature]]
    ("rev = 1\n", "rev = 1\nseverity = 7\n"), // severity out of range
    ("severity = 3", "severity = 0"),       // ... in [defaults]
    ("\"suffix\"", "\"glob\""),             // unknown match kind
    ("\"tls.sni\"", "\"tls.cert\""),        // unknown field
    ("values = [\"bad.example\"]\n", ""),   // missing values
    ("[\"bad.example\"]", "[]"),            // empty values
    ("\"bad.example\"]", "\"bad.example\", \"bad.example\"]"),
    ("[\"dns.query\", \"tls.sni\"]", "[]"), // empty fields
    ("\"CLOUDTAP test\"", "\"  \""),        // blank msg
    ("rev = 1", "rev = \"1\""),             // string for an integer
    ("id = 1\n", "id = -1\n"),              // not a u32
    ("rev = 1\n", "rev = 1\naction = \"drop\"\n"),
    ("format = 1\n", "format = 1\nauthor = \"me\"\n"),
    ("name = \"t\"", "name = \"T\""), // pack name not [a-z0-9-]+
    ("format = 1", "format = 2"),     // unsupported format
    ("version = \"1\"\n", ""),        // missing [pack] version
    ("severity = 3\n", "severity = 3\nservice = \"x\"\n"),
    ("[defaults]", "[extra]\nx = 1\n\n[defaults]"),
    ("\"cidr-list\"", "\"bogus\""), // unknown import format
    ("provider = \"P\"\n", ""),     // import without provider
];

fn load(text: &str) -> Result<(), String> {
    let texts = [("t.toml", text), ("x.txt", "192.0.2.0/24\n")];
    let texts = texts.map(|(n, t)| (n.to_string(), t.to_string()));
    let set = cloudtap::detect::load_texts(&texts);
    set.map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn broken_packs_are_rejected() {
    let schema = schema();
    let errs = validate(&schema, &toml_to_json(GOOD));
    assert!(errs.is_empty(), "schema rejects the good pack: {errs:?}");
    load(GOOD).unwrap_or_else(|e| panic!("loader rejects the good pack: {e}"));
    for (from, to) in BROKEN {
        assert_eq!(GOOD.matches(from).count(), 1, "{from:?} is not unique");
        let text = GOOD.replace(from, to);
        let errs = validate(&schema, &toml_to_json(&text));
        assert!(!errs.is_empty(), "schema accepts {from:?} -> {to:?}");
        assert!(load(&text).is_err(), "loader accepts {from:?} -> {to:?}");
    }
}

/// Keys of `struct name` in pack.rs (TOML key -> required) and whether it denies unknown keys.
fn rust_keys(src: &str, name: &str) -> (BTreeMap<String, bool>, bool) {
    let head = format!("struct {name} {{");
    let start = src.find(&head).expect("struct in pack.rs");
    let deny = src[..start].trim_end().ends_with("(deny_unknown_fields)]");
    let lines = between(&src[start..], "{", "\n}").lines().map(str::trim);
    let (mut keys, mut attrs) = (BTreeMap::new(), String::new());
    for line in lines.filter(|l| !l.starts_with("//")) {
        if line.starts_with("#[") {
            attrs.push_str(line);
        } else if let Some((field, ty)) = line.split_once(':') {
            let renamed = attrs.split_once("rename = \"").map(|(_, r)| r);
            let key = renamed.and_then(|r| r.split('"').next());
            let optional = ty.trim().starts_with("Option<") || attrs.contains("default");
            keys.insert(key.unwrap_or(field).trim().to_string(), !optional);
            attrs.clear();
        }
    }
    (keys, deny)
}

/// Keys of the schema object at `ptr` (key -> required) and whether it denies unknown keys.
fn schema_keys(schema: &Value, ptr: &str) -> (BTreeMap<String, bool>, bool) {
    let node = schema.pointer(ptr).expect("pointer into the schema");
    let req = node["required"].as_array().map_or(&[][..], Vec::as_slice);
    let mut keys = BTreeMap::new();
    for k in node["properties"].as_object().expect("properties").keys() {
        keys.insert(k.clone(), req.iter().any(|r| r == k));
    }
    (keys, node["additionalProperties"] == false)
}

#[test]
fn schema_keys_follow_pack_rs() {
    let (schema, src) = (schema(), read("src/detect/pack.rs"));
    for (st, ptr) in [
        ("PackFile", ""),
        ("PackHeader", "/$defs/pack"),
        ("Defaults", "/$defs/defaults"),
        ("SigDef", "/$defs/signature"),
        ("ImportDef", "/$defs/import"),
    ] {
        let (rust, json) = (rust_keys(&src, st), schema_keys(&schema, ptr));
        let what = "(key -> required, deny_unknown_fields)";
        assert_eq!(rust, json, "{what} of pack.rs {st} vs schema {ptr:?}");
    }
}

/// Asserts that the enum of `$defs/{def}` is `code`.
fn assert_enum(schema: &Value, def: &str, code: &BTreeSet<String>) {
    let e = schema["$defs"][def]["enum"].as_array().expect("an enum");
    let e: BTreeSet<&str> = e.iter().filter_map(Value::as_str).collect();
    let code: BTreeSet<&str> = code.iter().map(String::as_str).collect();
    assert_eq!(e, code, "schema $defs/{def} vs the Rust code");
}

/// Group 1 of every match of `re` in `text`.
fn captures(re: &str, text: &str) -> BTreeSet<String> {
    let re = Regex::new(re).expect("test regex");
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

/// `text` from the first `from` up to the next `to` after it.
fn between<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let rest = &text[text.find(from).unwrap_or_else(|| panic!("no {from:?}"))..];
    let end = rest
        .find(to)
        .unwrap_or_else(|| panic!("no {to:?} after {from:?}"));
    &rest[..end]
}

#[test]
fn schema_enums_follow_code() {
    let schema = schema();
    let (mod_rs, pack_rs) = (read("src/detect/mod.rs"), read("src/detect/pack.rs"));
    let name_fn = between(&mod_rs, "fn name(self)", "\n    }");
    let fields = captures(r#"=> "([^"]+)""#, name_fn);
    let api = cloudtap::detect::Field::ALL.map(|f| f.name().to_string());
    assert_eq!(fields, BTreeSet::from(api), "Field::name vs Field::ALL");
    assert_enum(&schema, "field", &fields);
    let kinds = captures(r#""([a-z]+)" => Some\(MatchKind::"#, &pack_rs);
    assert_enum(&schema, "matchKind", &kinds);
    let actions = captures(r#"Some\("([a-z]+)"\) => Ok\(Action::"#, &pack_rs);
    assert_enum(&schema, "action", &actions);
    let import_rs = read("src/detect/import.rs");
    let formats_const = between(&import_rs, "pub const FORMATS", "];");
    let formats = captures(r#""([^"]+)""#, formats_const);
    assert_enum(&schema, "importFormat", &formats);
    let sev = Regex::new(r"\((\d+)\.\.=(\d+)\)\.contains\(&severity\)").expect("regex");
    let c = sev.captures(&pack_rs).expect("severity range check");
    let s = &schema["$defs"]["severity"];
    let json = format!("{}..={}", s["minimum"], s["maximum"]);
    assert_eq!(json, format!("{}..={}", &c[1], &c[2]), "severity range");
}
