//! Holdout: captures made by other programs and scenarios than the main set (node, STARTTLS,
//! CONNECT proxies, QUIC, SSDP, one-sided, mid-stream, loss/reorder, tiny MSS, snaplen 96, ...;
//! see captures/README.md). Everything tshark finds must be found by cloudtap. The only
//! differences allowed are the documented formatting choices listed here.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// (capture, field, value tshark prints, why cloudtap prints it differently)
const KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        "ho-dns-types.pcap",
        "dns_queries",
        "we.ird label.example.com",
        "cloudtap writes RFC 1035 escapes (we\\046ird\\032label): a dot inside a label is not a separator",
    ),
    (
        "ho-http-clients.pcap",
        "http_user_agents",
        "Mozilla/5.0 (caf\u{fffd}\u{fffd}; \u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}) utf8-ua",
        "tshark 4.0 replaces every non-ASCII byte; cloudtap keeps valid UTF-8",
    ),
    (
        "ho-http-clients.pcap",
        "http_user_agents",
        "first-dup-ua/1",
        "repeated User-Agent headers are joined with \", \" as Suricata does (each is matched)",
    ),
    (
        "ho-http-clients.pcap",
        "http_user_agents",
        "second-dup-ua/2",
        "as above",
    ),
    (
        "ho-http-clients.pcap",
        "http_user_agents",
        "tab-and-spaces-ua/3.0   ",
        "trailing white space is not part of a header value (RFC 9110 5.5); httparse drops it",
    ),
];

#[test]
fn holdout_captures_yield_everything_tshark_finds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let report = std::env::temp_dir().join(format!("cloudtap-holdout-{}.json", std::process::id()));
    let o = Command::new("python3")
        .arg(root.join("captures/holdout/compare.py"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_cloudtap"))
        .arg("--json")
        .arg(&report)
        .output()
        .expect("python3 runs compare.py");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let known: BTreeSet<(String, String, String)> = KNOWN
        .iter()
        .map(|(c, f, v, _)| (c.to_string(), f.to_string(), v.to_string()))
        .collect();
    let mut unexpected = Vec::new();
    let obj = r.as_object().expect("object");
    assert!(obj.len() >= 15, "holdout captures present");
    for (cap, res) in obj {
        if res["exit"] != 0 {
            unexpected.push(format!("{cap}: exit {}", res["exit"]));
        }
        for (field, vals) in res["miss"].as_object().into_iter().flatten() {
            for v in vals.as_array().into_iter().flatten() {
                let v = v.as_str().unwrap_or_default().to_string();
                if !known.contains(&(cap.clone(), field.clone(), v.clone())) {
                    unexpected.push(format!("{cap}: missed {field} {v:?}"));
                }
            }
        }
    }
    let _ = std::fs::remove_file(&report);
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
