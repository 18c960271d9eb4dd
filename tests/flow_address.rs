//! Issue 14: every flow's server address is checked once, whatever it carries (NTP, a QUIC
//! datagram the sensor cannot read, a refused TCP connection); special-purpose ranges are
//! dropped from provider lists with a warning; hidden DNS (a host that uses the local
//! resolver switching to DoH/DoT). Captures: captures/scenarios/sc-udp-provider.pcap and
//! sc-hidden-dns.pcap, made by real programs (python sockets, dig, curl, openssl s_client)
//! in the project's namespaces by captures/scenarios/make-scenarios.sh.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloudtap-fa-{name}-{}", std::process::id()));
    if d.exists() {
        std::fs::remove_dir_all(&d).expect("clear temp dir");
    }
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn scenario(name: &str) -> PathBuf {
    root().join("captures/scenarios").join(name)
}

/// Runs cloudtap; returns every EVE event.
fn run(capture: &Path, args: &[&str]) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["-q", "--threads", "2", "-r"])
        .arg(capture)
        .args(args)
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
        .map(|l| serde_json::from_str::<Value>(l).expect("every line is JSON"))
        .collect()
}

fn of_type<'a>(evs: &'a [Value], t: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["event_type"] == t).collect()
}

/// (proto, server port) of an event, oriented client to server.
fn proto_port(e: &Value) -> (String, u64) {
    (
        e["proto"].as_str().unwrap_or("").to_string(),
        e["dest_port"].as_u64().unwrap_or(0),
    )
}

#[test]
fn flows_without_a_record_are_checked_once_in_flow_mode() {
    let sigs = tmpdir("sigs");
    std::fs::write(
        sigs.join("aws-test.cidrs"),
        "# id: 8999001\n# message: TEST provider address\n3.5.140.0/22\n",
    )
    .expect("write list");
    let cap = scenario("sc-udp-provider.pcap");
    let evs = run(
        &cap,
        &[
            "--alert-mode",
            "flow",
            "--types",
            "alert,flow,dns,tls,http,quic",
            "--signatures",
            sigs.to_str().expect("utf-8"),
        ],
    );
    let alerts = of_type(&evs, "alert");
    let mut got: Vec<(String, u64)> = alerts.iter().map(|a| proto_port(a)).collect();
    got.sort();
    // NTP (UDP 123), the unreadable QUIC-like datagram (UDP 443), the refused SSH (TCP 22):
    // one alert each, none of them carrying a record.
    assert_eq!(
        got,
        [
            ("TCP".to_string(), 22),
            ("UDP".to_string(), 123),
            ("UDP".to_string(), 443)
        ],
        "{alerts:#?}"
    );
    for a in &alerts {
        assert_eq!(a["dest_ip"], "3.5.140.10");
        assert_eq!(a["src_ip"], "10.20.0.11");
        assert_eq!(a["alert"]["signature_id"], 8_999_001);
        assert_eq!(a["alert"]["metadata"]["cloudtap_field"][0], "ip.dst");
        assert!(a.get("tls").is_none() && a.get("dns").is_none() && a.get("http").is_none());
    }
    // No record came of these flows: the address check is what found them.
    for t in ["dns", "tls", "http", "quic"] {
        assert!(of_type(&evs, t).is_empty(), "unexpected {t} record");
    }
    // Every flow to the listed server alerted exactly once (flow records say which flows
    // there were; the ICMP errors come from the server and are flows of their own, to the
    // client, which is not listed).
    let to_server: Vec<&Value> = of_type(&evs, "flow")
        .into_iter()
        .filter(|f| f["dest_ip"] == "3.5.140.10")
        .collect();
    assert_eq!(to_server.len(), 3, "{to_server:#?}");
    assert!(to_server.iter().all(|f| f["flow"]["alerted"] == true));
}

#[test]
fn flow_records_carry_the_address_labels() {
    // The bundled packs: 3.5.140.0/22 is an AWS range (a label, never an alert on its own).
    let evs = run(
        &scenario("sc-udp-provider.pcap"),
        &["--types", "alert,flow"],
    );
    let flows: Vec<&Value> = of_type(&evs, "flow")
        .into_iter()
        .filter(|f| f["dest_ip"] == "3.5.140.10")
        .collect();
    assert_eq!(flows.len(), 3);
    for f in flows {
        let labels = f["cloudtap"]["labels"].to_string();
        assert!(labels.contains("ip.dst=AWS"), "{f}");
    }
    assert!(of_type(&evs, "alert").is_empty());
}

#[test]
fn hidden_dns_alerts_once_for_a_host_that_used_the_local_resolver() {
    let cap = scenario("sc-hidden-dns.pcap");
    let evs = run(&cap, &[]);
    let alerts = of_type(&evs, "alert");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = alerts[0];
    assert_eq!(a["alert"]["signature_id"], 9_190_007);
    assert_eq!(a["cloudtap"]["detection"], "hidden-dns");
    assert_eq!(a["src_ip"], "10.20.0.12");
    assert!(a["cloudtap"]["signals"].to_string().contains("hidden-dns"));
    assert!(a["cloudtap"]["service"]
        .as_str()
        .unwrap_or("")
        .contains("Cloudflare"));
    // Without the host's plain DNS in view (only its flows to 1.1.1.1), nothing says it
    // normally uses the local resolver: no alert.
    let d = tmpdir("hidden");
    let only = d.join("only-1111.pcap");
    let st = Command::new("tshark")
        .args(["-r"])
        .arg(&cap)
        .args(["-Y", "ip.addr == 1.1.1.1", "-F", "pcap", "-w"])
        .arg(&only)
        .status()
        .expect("tshark runs (apt-get install tshark)");
    assert!(st.success());
    let evs = run(&only, &["--types", "alert,tls"]);
    assert!(
        !of_type(&evs, "tls").is_empty(),
        "the DoH/DoT handshakes are there"
    );
    assert!(of_type(&evs, "alert").is_empty());
}

#[test]
fn hidden_dns_with_a_baseline_alerts_on_the_first_switch_only() {
    let state = tmpdir("state");
    let cap = scenario("sc-hidden-dns.pcap");
    let args = [
        "--state",
        state.to_str().expect("utf-8"),
        "--learning",
        "1s",
    ];
    let first = of_type(&run(&cap, &args), "alert")
        .into_iter()
        .filter(|a| a["cloudtap"]["detection"] == "hidden-dns")
        .count();
    assert_eq!(first, 1);
    // The host now uses that resolver routinely: the same traffic again is no news.
    let second = of_type(&run(&cap, &args), "alert")
        .into_iter()
        .filter(|a| a["cloudtap"]["detection"] == "hidden-dns")
        .count();
    assert_eq!(second, 0);
}

#[test]
fn special_purpose_ranges_are_dropped_from_provider_lists_with_a_warning() {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["signatures", "check"])
        .output()
        .expect("runs");
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("signatures/cloud/vultr/ipv4_merged.txt:100: warning: special-purpose range dropped from a provider list: 192.0.2.0/24 is documentation (TEST-NET-1)"),
        "{out}"
    );
    assert!(out.contains("special-purpose ranges dropped from provider lists"));
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["signatures", "test", "192.0.2.1"])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains("Vultr"), "{out}");
    // A public address of the same list still matches.
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["signatures", "test", "3.5.140.10"])
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&o.stdout).contains("AWS"));
    // An import carved around a special range keeps the rest, and names file and line.
    let d = tmpdir("carve");
    std::fs::write(
        d.join("wide.txt"),
        "# a provider list\n8.8.8.0/24\n192.0.0.0/22\n",
    )
    .expect("write");
    std::fs::write(
        d.join("p.toml"),
        "[pack]\nformat = 1\nname = \"p\"\nversion = \"1\"\ndescription = \"d\"\naction = \"label\"\n\n[[import]]\nid = 8999100\nrev = 1\nmsg = \"TEST range\"\nformat = \"cidr-list\"\npath = \"wide.txt\"\nprovider = \"Example\"\n",
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["signatures", "check"])
        .arg(&d)
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("wide.txt:3: warning"), "{out}");
    for (addr, listed) in [
        ("192.0.1.5", true),
        ("192.0.2.5", false),
        ("192.0.3.5", true),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
            .args(["signatures", "test", addr, "--signatures"])
            .arg(&d)
            .output()
            .expect("runs");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.contains("8999100"), listed, "{addr}: {out}");
    }
}

#[test]
fn certificate_names_match_like_an_sni() {
    // captures/tls12-server.pcap: openssl-made certificate for files.example-drop.test with
    // SANs cdn., *.files. and upload.example-drop.test; no client asks for "upload" by SNI,
    // so only the certificate can name it.
    let sigs = tmpdir("cert");
    std::fs::write(
        sigs.join("drop.domains"),
        "# id: 8999200\n# message: TEST upload host\n=upload.example-drop.test\n",
    )
    .expect("write list");
    let cap = root().join("captures/tls12-server.pcap");
    let evs = run(
        &cap,
        &[
            "--alert-mode",
            "flow",
            "--types",
            "alert,tls",
            "--signatures",
            sigs.to_str().expect("utf-8"),
        ],
    );
    let tls = of_type(&evs, "tls");
    assert!(tls
        .iter()
        .all(|t| t["tls"]["sni"] != "upload.example-drop.test"));
    let servers: Vec<&&Value> = tls
        .iter()
        .filter(|t| t["tls"].get("subject").is_some())
        .collect();
    assert!(!servers.is_empty());
    for s in &servers {
        assert_eq!(s["dest_port"], 443, "oriented client to server");
        assert!(s["tls"]["ja3s"]["hash"]
            .as_str()
            .is_some_and(|h| h.len() == 32));
    }
    let alerts = of_type(&evs, "alert");
    assert_eq!(
        alerts.len(),
        servers.len(),
        "one per certificate seen: {alerts:#?}"
    );
    for a in alerts {
        assert_eq!(a["alert"]["signature_id"], 8_999_200);
        assert_eq!(
            a["alert"]["metadata"]["cloudtap_value"][0],
            "upload.example-drop.test"
        );
        assert!(a["tls"]["subjectaltname"]
            .to_string()
            .contains("upload.example-drop.test"));
    }
}
