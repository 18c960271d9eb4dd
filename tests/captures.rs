//! End-to-end over the real captures in captures/: cloudtap must find every DNS query name,
//! CNAME target, SNI, User-Agent and Host that tshark finds (tests/expected/*.json, made by
//! tests/gen-expected.sh), nothing tshark does not, and raise exactly the alerts listed in
//! tests/expected/alerts/*.txt (none on the benign captures), whatever the thread count.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/expected"))
        .expect("tests/expected")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "expected files present");
    v
}

/// Runs with per-flow alerts (`--alert-mode flow`: every alert-tier list hit once per flow),
/// the engine's matching as the expectations list it.
fn run(capture: &Path, threads: usize) -> Vec<Value> {
    run_mode(capture, threads, "flow")
}

fn run_mode(capture: &Path, threads: usize, mode: &str) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args([
            "-q",
            "--alert-mode",
            mode,
            "--types",
            "alert,dns,tls,http,quic",
            "--threads",
        ])
        .arg(threads.to_string())
        .arg("-r")
        .arg(capture)
        .output()
        .expect("cloudtap runs");
    assert!(
        o.status.success(),
        "{}: {}",
        capture.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

#[derive(Default, Debug, PartialEq)]
struct Seen {
    dns_queries: BTreeSet<String>,
    dns_answers: BTreeSet<String>,
    tls_sni: BTreeSet<String>,
    http_user_agents: BTreeSet<String>,
    http_hosts: BTreeSet<String>,
}

fn seen(events: &[Value]) -> Seen {
    let mut s = Seen::default();
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for e in events {
        match e["event_type"].as_str() {
            Some("dns") => {
                let d = &e["dns"];
                if d["type"] == "query" {
                    s.dns_queries.insert(str_of(&d["rrname"]).to_lowercase());
                } else if let Some(ans) = d["answers"].as_array() {
                    for a in ans {
                        if a["rrtype"] == "CNAME" {
                            s.dns_answers.insert(str_of(&a["rdata"]).to_lowercase());
                        }
                    }
                }
            }
            Some(t @ ("tls" | "quic")) => {
                if let Some(sni) = e[t]["sni"].as_str() {
                    s.tls_sni.insert(sni.to_lowercase());
                }
            }
            Some("http") => {
                if let Some(ua) = e["http"]["http_user_agent"].as_str() {
                    s.http_user_agents.insert(ua.to_string());
                }
                if let Some(h) = e["http"]["hostname"].as_str() {
                    s.http_hosts.insert(h.to_lowercase());
                }
            }
            _ => {}
        }
    }
    s
}

fn set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// tests/expected/bytes/<capture>.json: values tshark 4.0 does not extract (or cuts) although
/// the bytes hold them, each explained in the file; `add` joins tshark's sets, `remove`
/// leaves them.
fn apply_byte_overrides(exp_path: &Path, want: &mut Seen) {
    let Some(name) = exp_path.file_name() else {
        return;
    };
    let p = root().join("tests/expected/bytes").join(name);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return;
    };
    let o: Value = serde_json::from_str(&text).expect("override JSON");
    for (op, add) in [("add", true), ("remove", false)] {
        for (field, target) in [
            ("dns_queries", &mut want.dns_queries),
            ("dns_answers", &mut want.dns_answers),
            ("tls_sni", &mut want.tls_sni),
            ("http_user_agents", &mut want.http_user_agents),
            ("http_hosts", &mut want.http_hosts),
        ] {
            for v in set(&o[op][field]) {
                if add {
                    target.insert(v);
                } else {
                    assert!(
                        target.remove(&v),
                        "{}: {v} is not in tshark's set",
                        p.display()
                    );
                }
            }
        }
    }
}

#[test]
fn extracts_exactly_what_tshark_finds() {
    let mut failures = Vec::new();
    for exp_path in expected_files() {
        let exp: Value = serde_json::from_str(&std::fs::read_to_string(&exp_path).expect("read"))
            .expect("expected JSON");
        let cap = root()
            .join("captures")
            .join(exp["capture"].as_str().expect("capture"));
        let got = seen(&run(&cap, 2));
        let mut want = Seen {
            dns_queries: set(&exp["dns_queries"]),
            dns_answers: set(&exp["dns_answers"]),
            tls_sni: set(&exp["tls_sni"]),
            http_user_agents: set(&exp["http_user_agents"]),
            http_hosts: set(&exp["http_hosts"]),
        };
        apply_byte_overrides(&exp_path, &mut want);
        if got != want {
            failures.push(format!(
                "{}:\n  tshark: {want:?}\n  cloudtap: {got:?}",
                cap.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (signature_id, matched value) -> number of alerts.
fn alerts(events: &[Value]) -> BTreeMap<(u64, String), usize> {
    let mut m = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "alert") {
        let a = &e["alert"];
        let v = a["metadata"]["cloudtap_value"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *m.entry((a["signature_id"].as_u64().unwrap_or(0), v))
            .or_insert(0) += 1;
    }
    m
}

fn expected_alerts(capture: &str) -> BTreeMap<(u64, String), usize> {
    let p = root()
        .join("tests/expected/alerts")
        .join(format!("{capture}.txt"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|_| panic!("{} missing", p.display()));
    let mut m = BTreeMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut it = line.split_whitespace();
        let (Some(n), Some(id), Some(v)) = (it.next(), it.next(), it.next()) else {
            panic!("{}: bad line {line:?}", p.display());
        };
        m.insert(
            (id.parse().expect("id"), v.to_string()),
            n.parse().expect("count"),
        );
    }
    m
}

#[test]
fn raises_exactly_the_expected_alerts_with_any_thread_count() {
    let mut failures = Vec::new();
    for exp_path in expected_files() {
        let name = exp_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .expect("name")
            .to_string();
        let cap = root().join("captures").join(&name);
        let want = expected_alerts(&name);
        for threads in [1, 2, 4] {
            let got = alerts(&run(&cap, threads));
            if got != want {
                failures.push(format!(
                    "{name} ({threads} threads):\n  want {want:?}\n  got  {got:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn alerts_are_suricata_eve_shaped() {
    let events = run(&root().join("captures/eth-malicious.pcap"), 2);
    let alert = events
        .iter()
        .find(|e| e["event_type"] == "alert" && e.get("http").is_some())
        .expect("an HTTP alert");
    let keys: Vec<&str> = alert
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "timestamp",
            "flow_id",
            "in_iface",
            "event_type",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "proto",
            "pkt_src",
            "tx_id",
            "alert",
            "http",
            "cloudtap",
            "app_proto",
            "direction"
        ]
    );
    // The SIEM deduplicates on it (delivery is at-least-once): 32 hex digits, first.
    let id = alert["cloudtap"]["event_id"]
        .as_str()
        .expect("cloudtap.event_id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        alert["cloudtap"]
            .as_object()
            .and_then(|o| o.keys().next())
            .map(String::as_str),
        Some("event_id")
    );
    let ts = alert["timestamp"].as_str().expect("ts");
    assert_eq!(ts.len(), "2024-05-01T12:00:00.123456+0000".len(), "{ts}");
    assert!(ts.ends_with("+0000"));
    let fid = alert["flow_id"].as_u64().expect("flow_id");
    assert!(fid > 0 && fid < 1 << 51);
    let md = alert["alert"]["metadata"].as_object().expect("metadata");
    for (k, v) in md {
        assert!(
            v.as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string())),
            "{k}"
        );
    }
    for k in [
        "mitre_tactic_id",
        "mitre_technique_id",
        "cloudtap_pack",
        "cloudtap_pack_version",
        "cloudtap_indicator",
    ] {
        assert!(md.contains_key(k), "{k}");
    }
    // Every record of one flow carries the same flow_id.
    let http_fid = events
        .iter()
        .find(|e| e["event_type"] == "http" && e["http"]["hostname"] == alert["http"]["hostname"])
        .expect("the http record")["flow_id"]
        .as_u64();
    assert_eq!(http_fid, Some(fid));
    // A DNS alert carries the dns object as Suricata 7 writes it.
    let dns = events
        .iter()
        .find(|e| e["event_type"] == "alert" && e["dns"]["query"].is_array())
        .expect("a DNS query alert");
    let q = &dns["dns"]["query"][0];
    assert_eq!(dns["dns"]["version"], 2);
    for k in ["type", "id", "rrname", "rrtype", "tx_id", "opcode"] {
        assert!(q.get(k).is_some(), "{k}");
    }
}

#[test]
fn several_files_in_one_run_and_usage_errors() {
    let a = root().join("captures/eth-malicious.pcap");
    let b = root().join("captures/eth-benign.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["--alert-mode", "flow", "--types", "alert", "-r"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("runs");
    assert!(o.status.success());
    let single = run(&a, 2)
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .count();
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), single);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("alerts by signature"), "{err}");
    for args in [
        vec!["--types", "bogus", "-r", "x"],
        vec!["--threads", "0", "-r", "x"],
        vec![],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
            .args(&args)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}
