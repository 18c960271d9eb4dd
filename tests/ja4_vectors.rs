//! JA4 and SNI on third-party captures (FoxIO's JA4 test vectors, tests/data/ja4): browsers,
//! GREASE, HelloRetryRequest, no SNI, non-ASCII ALPN, HTTP CONNECT and SOCKS tunnels, IPv6 on
//! DLT_NULL, handshake-only captures without SYN, and QUIC Initials with the ClientHello
//! split over several CRYPTO frames. Every expected ClientHello must be found, with its JA4.

use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn ja4_and_sni_match_the_reference_for_every_client_hello() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ja4");
    let tsv = std::fs::read_to_string(dir.join("expected-ja4.tsv")).expect("expected-ja4.tsv");
    let mut by_capture: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<String> = line.split('\t').map(String::from).collect();
        assert_eq!(cols.len(), 7, "{line}");
        by_capture.entry(cols[0].clone()).or_default().push(cols);
    }
    assert!(by_capture.len() >= 10);
    let mut checked = 0;
    let mut failures = Vec::new();
    for (capture, rows) in &by_capture {
        let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
            .args(["-q", "--types", "tls,quic", "-r"])
            .arg(dir.join(capture))
            .output()
            .expect("runs");
        assert!(
            o.status.success(),
            "{capture}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // (client ip, client port, server port) -> (ja4, sni) of the first ClientHello
        let mut got: HashMap<(String, u64, u64), (String, String)> = HashMap::new();
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let e: Value = serde_json::from_str(l).expect("json");
            let obj = &e[e["event_type"].as_str().expect("type")];
            let key = (
                e["src_ip"].as_str().unwrap_or_default().to_string(),
                e["src_port"].as_u64().unwrap_or(0),
                e["dest_port"].as_u64().unwrap_or(0),
            );
            got.entry(key).or_insert((
                obj["ja4"].as_str().unwrap_or_default().to_string(),
                obj["sni"].as_str().unwrap_or("-").to_string(),
            ));
        }
        for r in rows {
            checked += 1;
            let key = (
                r[2].clone(),
                r[3].parse().expect("port"),
                r[4].parse().expect("port"),
            );
            match got.get(&key) {
                Some((ja4, sni)) if *ja4 == r[6] && *sni == r[5] => {}
                other => failures.push(format!(
                    "{capture} {key:?}: want {} {} got {other:?}",
                    r[6], r[5]
                )),
            }
        }
    }
    assert!(checked >= 90, "{checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
