//! Issue 11: the playbook's detections end to end, on captures of real programs (curl,
//! python requests, pip, apt, made in the project's own namespaces by
//! captures/scenarios/make-scenarios.sh and moved to night or weekend with editcap -t), one
//! per detection, and a benign office capture that must raise nothing. Also the baseline
//! across runs (`--state`): restart, corrupt file, export/import.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloudtap-sc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

/// The configuration the scenarios were planned with: Berlin business hours, and cloud
/// storage allowed from the CI subnet only.
const CONFIG: &str = r#"
[hours]
timezone = "Europe/Berlin"
start = "08:00"
end = "18:00"
weekdays = ["mon", "tue", "wed", "thu", "fri"]

[[policy]]
name = "cloud storage only from CI"
categories = ["cloud-storage"]
allow = ["10.99.9.0/24"]
"#;

fn config() -> PathBuf {
    let d = tmpdir("config");
    let p = d.join("cloudtap.toml");
    std::fs::write(&p, CONFIG).expect("write config");
    p
}

/// Runs cloudtap over one scenario capture; returns its alerts.
fn alerts(capture: &str, extra: &[&str]) -> Vec<Value> {
    let cap = root().join("captures/scenarios").join(capture);
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["-q", "--threads", "2", "-r"])
        .arg(&cap)
        .args(extra)
        .output()
        .expect("cloudtap runs");
    assert!(
        o.status.success(),
        "{capture}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("every line is JSON"))
        .filter(|e| e["event_type"] == "alert")
        .collect()
}

fn with_config(capture: &str) -> Vec<Value> {
    let c = config();
    alerts(capture, &["--config", c.to_str().expect("utf-8 path")])
}

fn detection(a: &Value) -> &str {
    a["cloudtap"]["detection"].as_str().unwrap_or("")
}

fn signals(a: &Value) -> Vec<String> {
    a["cloudtap"]["signals"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(all: &'a [Value], det: &str, service_part: &str) -> &'a Value {
    all.iter()
        .find(|a| {
            detection(a) == det
                && a["cloudtap"]["service"]
                    .as_str()
                    .is_some_and(|s| s.contains(service_part))
        })
        .unwrap_or_else(|| {
            panic!(
                "no {det} alert for {service_part:?} in {:#?}",
                all.iter()
                    .map(|a| (detection(a), a["cloudtap"]["service"].clone()))
                    .collect::<Vec<_>>()
            )
        })
}

/// Every alert has the EVE shape, the MITRE mapping, the evidence and the triage text.
fn check_shape(a: &Value) {
    let m = &a["alert"]["metadata"];
    assert_eq!(m["mitre_tactic_id"][0], "TA0042");
    assert_eq!(m["mitre_tactic_name"][0], "Resource_Development");
    assert_eq!(
        m["mitre_technique_id"],
        serde_json::json!(["T1583", "T1583.006"])
    );
    assert_eq!(
        m["mitre_technique_name"],
        serde_json::json!(["Acquire_Infrastructure", "Web_Services"])
    );
    let c = &a["cloudtap"];
    assert!(c["count"].as_u64().unwrap_or(0) >= 1);
    assert!(c["first_seen"].as_str().unwrap_or("") <= c["last_seen"].as_str().unwrap_or(""));
    assert!(c["evidence"]["host"].is_string());
    assert!(c["evidence"]["dest_ips"].is_array());
    assert!(!c["signals"].as_array().expect("signals").is_empty());
    let t = &c["triage"];
    assert!(t["questions"].as_array().is_some_and(|q| q.len() >= 2));
    assert!(t["escalation"]
        .as_str()
        .is_some_and(|s| s.contains("Escalate")));
    assert!(t["containment"].as_str().is_some_and(|s| !s.is_empty()));
    for k in ["signature_id", "signature", "severity", "category"] {
        assert!(a["alert"].get(k).is_some(), "alert.{k}");
    }
}

#[test]
fn benign_office_traffic_raises_nothing() {
    // Browsers to YouTube, Google, DoubleClick, SharePoint, Drive, LinkedIn, t.co, bit.ly,
    // GitHub, Dropbox, Atlassian; a real pip and apt-get.
    for extra in [true, false] {
        let got = if extra {
            with_config("sc-benign-office.pcap")
        } else {
            alerts("sc-benign-office.pcap", &[])
        };
        assert!(got.is_empty(), "benign alerts: {got:#?}");
    }
    // The CI runner pushing to its bucket (allowed by the policy, and routine) too.
    assert!(with_config("sc-ci-s3.pcap").is_empty());
    assert!(alerts("sc-ci-s3.pcap", &[]).is_empty());
}

#[test]
fn script_fetching_a_paste() {
    let got = with_config("sc-script-paste.pcap");
    assert_eq!(
        got.len(),
        1,
        "one alert per host, detection and service: {got:#?}"
    );
    let a = find(&got, "listed-endpoint", "Pastebin");
    check_shape(a);
    assert!(signals(a).contains(&"script-agent".to_string()));
    assert!(a["cloudtap"]["evidence"]["agents"]
        .to_string()
        .contains("curl/7.88.1"));
    assert!(
        a["cloudtap"]["count"].as_u64() > Some(1),
        "repeats are counted"
    );
    assert_eq!(a["src_ip"], "10.20.0.11");
    // python requests over TLS hides its user agent; its JA4 is in the fingerprint pack
    // (Python's ssl library: medium confidence, evidence only).
    assert!(
        a["cloudtap"]["evidence"]["agents"]
            .to_string()
            .contains("tls.ja4 t13d4312h1_c7886603b240_b26ce05bbdd6 (Python, medium confidence)"),
        "{a}"
    );
}

#[test]
fn packs_match_ja3_and_ja4_and_the_first_ja4_section() {
    // Python's ssl (requests over TLS to pastebin.com): JA3 from tshark, JA4 computed by
    // captures/scenarios/check.py (scenarios.json, tls_fingerprints).
    let d = tmpdir("fingerprints");
    std::fs::write(
        d.join("fp.toml"),
        r#"[pack]
format = 1
name = "fp"
version = "1"
description = "test fingerprints"
action = "alert"

[[signature]]
id = 8800001
rev = 1
msg = "python JA3"
fields = ["tls.ja3"]
match = "exact"
values = ["07ff1e545ef8ab3fcf8a4dc9272221c2"]

[[signature]]
id = 8800002
rev = 1
msg = "python JA4 first section"
fields = ["tls.ja4"]
match = "exact"
values = ["t13d4312h1"]

[[signature]]
id = 8800003
rev = 1
msg = "pastebin"
fields = ["tls.sni"]
match = "suffix"
values = ["pastebin.com"]
"#,
    )
    .expect("w");
    let got = alerts(
        "sc-script-paste.pcap",
        &[
            "--alert-mode",
            "flow",
            "--signatures",
            d.to_str().expect("d"),
        ],
    );
    let ids: Vec<u64> = got
        .iter()
        .filter_map(|a| a["alert"]["signature_id"].as_u64())
        .collect();
    for id in [8_800_001, 8_800_002, 8_800_003] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let ja4 = got
        .iter()
        .find(|a| a["alert"]["signature_id"] == 8_800_002)
        .expect("ja4 alert");
    assert_eq!(
        ja4["alert"]["metadata"]["cloudtap_value"][0],
        "t13d4312h1_c7886603b240_b26ce05bbdd6"
    );
    assert_eq!(ja4["tls"]["ja4"], "t13d4312h1_c7886603b240_b26ce05bbdd6");
}

#[test]
fn tunnel_at_night_gets_a_higher_severity_and_the_local_time() {
    let night = with_config("sc-tunnel-night.pcap");
    let a = find(&night, "listed-endpoint", "Quick Tunnel");
    check_shape(a);
    assert!(signals(a).contains(&"off-business-hours".to_string()));
    let local = a["cloudtap"]["local_time"].as_str().expect("local time");
    assert!(local.starts_with("2026-12-02T03:10:00+0100"), "{local}");
    // With business hours round the clock the same tunnel alerts at its signature's own
    // severity.
    let d = tmpdir("always-open");
    let p = d.join("always.toml");
    std::fs::write(
        &p,
        "[hours]\ntimezone = \"Europe/Berlin\"\nstart = \"00:00\"\nend = \"24:00\"\n\
         weekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n",
    )
    .expect("w");
    let plain = alerts(
        "sc-tunnel-night.pcap",
        &["--config", p.to_str().expect("p")],
    );
    let p = find(&plain, "listed-endpoint", "Quick Tunnel");
    assert!(
        a["alert"]["severity"].as_u64() < p["alert"]["severity"].as_u64(),
        "night {} vs plain {}",
        a["alert"]["severity"],
        p["alert"]["severity"]
    );
    assert_eq!(night.len(), 1, "four contacts, one alert");
}

#[test]
fn file_drop_upload_by_a_script() {
    let got = with_config("sc-filedrop-upload.pcap");
    let listed = find(&got, "listed-endpoint", "transfer.sh");
    assert!(signals(listed).contains(&"script-agent".to_string()));
    for service in ["transfer.sh", "file-drop"] {
        let up = find(&got, "upload-volume", service);
        check_shape(up);
        let sent = up["cloudtap"]["evidence"]["bytes_toserver"]
            .as_u64()
            .expect("bytes");
        assert!(sent > 6_000_000, "{service}: {sent}");
        assert!(up["cloudtap"]["evidence"]["bytes_toclient"].as_u64() < Some(sent / 20));
    }
}

#[test]
fn bot_api_calls() {
    let got = with_config("sc-bot-api.pcap");
    let a = find(&got, "listed-endpoint", "Telegram");
    check_shape(a);
    assert!(
        a["cloudtap"]["count"].as_u64() >= Some(3),
        "three calls: {a}"
    );
}

#[test]
fn burst_of_cloud_consoles() {
    let got = with_config("sc-console-burst.pcap");
    let a = find(&got, "burst", "");
    check_shape(a);
    let items = a["cloudtap"]["evidence"]["burst"].as_array().expect("list");
    assert!(items.len() >= 5, "{items:?}");
    assert!(items
        .iter()
        .any(|i| i.as_str() == Some("AWS Management Console")));
    // Without the burst, none of the consoles alerts alone (they are context).
    assert!(got.iter().all(|a| detection(a) == "burst"), "{got:#?}");
}

#[test]
fn odd_hours_upload_to_cloud_storage() {
    // No policy: the upload alone alerts, one level higher at night on a Saturday.
    let c = tmpdir("hours-only");
    let p = c.join("hours.toml");
    std::fs::write(
        &p,
        "[hours]\ntimezone = \"Europe/Berlin\"\nstart = \"08:00\"\nend = \"18:00\"\n",
    )
    .expect("w");
    let got = alerts(
        "sc-night-upload-s3.pcap",
        &["--config", p.to_str().expect("p")],
    );
    let a = find(&got, "upload-volume", "S3");
    check_shape(a);
    assert_eq!(a["alert"]["severity"], 1);
    assert!(a["cloudtap"]["local_time"]
        .as_str()
        .is_some_and(|t| t.ends_with("Sat")));
    assert!(a["cloudtap"]["evidence"]["bytes_toserver"].as_u64() > Some(8_000_000));
    assert!(a["cloudtap"]["evidence"]["names"]
        .to_string()
        .contains("backup-7731.s3.amazonaws.com"));
    // Without any configuration it still alerts (the default needs no baseline).
    let plain = alerts("sc-night-upload-s3.pcap", &[]);
    find(&plain, "upload-volume", "S3");
}

#[test]
fn script_agent_to_a_provider_address() {
    let got = with_config("sc-script-provider-ip.pcap");
    assert_eq!(got.len(), 1, "{got:#?}");
    let a = find(&got, "script-agent-web-service", "AWS");
    check_shape(a);
    assert_eq!(a["dest_ip"], "3.5.140.10");
    let agents = a["cloudtap"]["evidence"]["agents"].to_string();
    assert!(agents.contains("python-requests"), "{agents}");
    assert!(agents.contains("curl"), "{agents}");
}

#[test]
fn unauthorised_source_names_the_policy_rule() {
    let got = with_config("sc-unauthorised-storage.pcap");
    let a = find(&got, "unauthorised-source", "S3");
    check_shape(a);
    assert_eq!(a["src_ip"], "10.20.0.11");
    assert_eq!(
        a["cloudtap"]["evidence"]["policy"],
        "cloud storage only from CI"
    );
    // Without the policy the same traffic is ordinary use of S3.
    assert!(alerts("sc-unauthorised-storage.pcap", &[]).is_empty());
}

#[test]
fn threshold_and_suppress_rules() {
    let d = tmpdir("thresholds");
    let p = d.join("t.toml");
    // Suppress the paste site for the scenario host; require 50 sightings for file drops.
    std::fs::write(
        &p,
        "[[alerts.suppress]]\nsignature_id = 9100401\ntrack = \"by_src\"\nip = [\"10.20.0.0/24\"]\n\n\
         [[alerts.threshold]]\nsignature_id = 9100501\ntype = \"threshold\"\ntrack = \"by_src\"\ncount = 50\nseconds = 3600\n",
    )
    .expect("w");
    let arg = ["--config", p.to_str().expect("p")];
    assert!(alerts("sc-script-paste.pcap", &arg).is_empty());
    let drops = alerts("sc-filedrop-upload.pcap", &arg);
    assert!(
        drops.iter().all(|a| a["alert"]["signature_id"] != 9100501),
        "{drops:#?}"
    );
    assert!(!drops.is_empty(), "the other detections stand");
}

fn run_state(state: &Path, capture: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let cap = root().join("captures/scenarios").join(capture);
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["-q", "-r"])
        .arg(&cap)
        .arg("--state")
        .arg(state)
        .args(extra)
        .output()
        .expect("cloudtap runs");
    assert!(
        o.status.success(),
        "{capture}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn baseline_first_use_survives_restarts() {
    let d = tmpdir("state");
    let state = d.join("state");
    // Day 1 (learning, 5 minutes of packet time): the CI runner uses S3.
    let (a, err) = run_state(&state, "sc-ci-s3.pcap", &["--learning", "5m"]);
    assert!(a.is_empty(), "{a:#?}");
    assert!(err.contains("new baseline"), "{err}");
    assert!(state.join("baseline.json").exists());
    // Later, a workstation opens seven cloud consoles nobody used: first uses by the
    // organisation, and the burst.
    let (a, _) = run_state(&state, "sc-console-burst.pcap", &[]);
    let firsts: Vec<&Value> = a
        .iter()
        .filter(|e| detection(e) == "first-use-org")
        .collect();
    assert!(firsts.len() >= 5, "{a:#?}");
    check_shape(firsts[0]);
    find(&a, "burst", "");
    // A restart keeps the baseline: the same consoles again are no longer new.
    let (a, _) = run_state(&state, "sc-console-burst.pcap", &[]);
    assert!(a.iter().all(|e| detection(e) != "first-use-org"), "{a:#?}");
    // Export, import into a fresh state, export again: the same JSON.
    let export = |dir: &Path| -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
            .args(["state", "export", "--state"])
            .arg(dir)
            .output()
            .expect("export");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let first = export(&state);
    let v: Value = serde_json::from_str(&first).expect("export is JSON");
    assert!(first.contains("AWS Management Console"), "{first}");
    assert!(v.is_object());
    let file = d.join("export.json");
    std::fs::write(&file, &first).expect("w");
    let other = d.join("other");
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["state", "import", "--state"])
        .arg(&other)
        .arg(&file)
        .output()
        .expect("import");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(export(&other), first);
    // A broken import names the problem and changes nothing.
    std::fs::write(&file, "{\"version\": 1, \"hosts\": 3}").expect("w");
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["state", "import", "--state"])
        .arg(&other)
        .arg(&file)
        .output()
        .expect("import");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(export(&other), first);
}

#[test]
fn corrupt_baseline_is_set_aside_and_a_fresh_state_starts() {
    let d = tmpdir("corrupt");
    let state = d.join("state");
    std::fs::create_dir_all(&state).expect("mk");
    std::fs::write(
        state.join("baseline.json"),
        "{\"format\": \"cloudtap-baseline\", tru",
    )
    .expect("w");
    let (_, err) = run_state(&state, "sc-ci-s3.pcap", &[]);
    assert!(err.contains("set aside"), "{err}");
    let names: Vec<String> = std::fs::read_dir(&state)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("baseline.json.corrupt-")),
        "{names:?}"
    );
    // The fresh state was written and reads back.
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["state", "export", "--state"])
        .arg(&state)
        .output()
        .expect("export");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("AWS S3"));
}

#[test]
fn flow_records_carry_the_volumes() {
    let cap = root().join("captures/scenarios/sc-night-upload-s3.pcap");
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["-q", "--types", "flow", "-r"])
        .arg(&cap)
        .output()
        .expect("runs");
    assert!(o.status.success());
    let flows: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(flows.iter().all(|f| f["event_type"] == "flow"));
    let up = flows
        .iter()
        .find(|f| f["dest_port"] == 443)
        .expect("the upload flow");
    assert_eq!(up["src_ip"], "10.20.0.12", "oriented client to server");
    let f = &up["flow"];
    assert!(f["bytes_toserver"].as_u64() > Some(8_000_000), "{f}");
    assert!(f["pkts_toserver"].as_u64() > Some(1000));
    assert!(f["pkts_toclient"].as_u64() > Some(0));
    assert_eq!(f["reason"], "shutdown");
    assert!(f["start"].as_str() <= f["end"].as_str());
    for k in ["age", "state", "alerted"] {
        assert!(f.get(k).is_some(), "{k}");
    }
}
