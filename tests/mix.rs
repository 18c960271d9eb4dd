//! End-to-end over a generated traffic mix (benches/gen_mix.py at 3% of the benchmark's
//! size: about 50 MB, 1,269 host pairs): large enough that, at 2 threads, the reader keeps
//! some flows itself while the worker takes the others (`flow::ShardTable`). Whatever the
//! thread count, the alerts must be exactly the matches the generator planted, and every
//! EVE record (alerts, DNS, TLS, HTTP) must be the same, flow_id and content alike.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs cloudtap; returns (sorted EVE lines, the summary's first line).
const ID_KEY: &str = "\"event_id\":\"";

fn run(pcap: &Path, lists: &Path, eve: &Path, threads: usize) -> (Vec<String>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args([
            "--alert-mode",
            "flow",
            "--types",
            "alert,dns,tls,http",
            "--threads",
        ])
        .arg(threads.to_string())
        .arg("-r")
        .arg(pcap)
        .arg("--signatures")
        .arg(lists)
        .arg("--eve")
        .arg(eve)
        .output()
        .expect("cloudtap runs");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{threads} threads: {stderr}");
    let mut lines: Vec<String> = std::fs::read_to_string(eve)
        .expect("EVE written")
        .lines()
        .map(str::to_owned)
        .collect();
    // Every event carries its own id (unique per run, random per run): check that, then
    // blank it so runs with different thread counts compare record for record.
    let mut ids = std::collections::HashSet::new();
    for l in &mut lines {
        let at = l.find(ID_KEY).expect("cloudtap.event_id on every record") + ID_KEY.len();
        let id = l.get(at..at + 32).expect("a 32-digit event id").to_owned();
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "event id {id}");
        assert!(ids.insert(id.clone()), "event id {id} twice in one run");
        l.replace_range(at..at + 32, &"0".repeat(32));
    }
    lines.sort();
    let head = stderr.lines().next().unwrap_or_default().to_owned();
    (lines, head)
}

#[test]
fn every_thread_count_finds_the_planted_matches_and_writes_the_same_records() {
    let dir = std::env::temp_dir().join(format!("cloudtap-mix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (pcap, lists) = (dir.join("mix.pcap"), dir.join("lists"));
    let gen = Command::new("python3")
        .arg(root().join("benches/gen_mix.py"))
        .arg("--out")
        .arg(&pcap)
        .args(["--scale", "0.03", "--seed", "3", "--quiet", "--lists-dir"])
        .arg(&lists)
        .status()
        .expect("python3 runs benches/gen_mix.py");
    assert!(gen.success(), "gen_mix.py failed");

    let (one, _) = run(&pcap, &lists, &dir.join("t1.json"), 1);
    let alerts = one
        .iter()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count();
    assert!(alerts > 300, "only {alerts} alerts from the mix");
    for threads in [2, 3] {
        let eve = dir.join(format!("t{threads}.json"));
        let (lines, head) = run(&pcap, &lists, &eve, threads);
        assert!(head.contains("flow buckets"), "summary: {head}");
        println!("{head}");
        assert_eq!(lines.len(), one.len(), "{threads} threads: record count");
        if let Some((a, b)) = one.iter().zip(&lines).find(|(a, b)| a != b) {
            panic!("{threads} threads differ from 1:\n  1: {a}\n  {threads}: {b}");
        }
        // The alerts are exactly the planted matches (benches/compare_alerts.py, the same
        // check as the end-to-end benchmark's).
        let cmp = Command::new("python3")
            .arg(root().join("benches/compare_alerts.py"))
            .arg("--expected")
            .arg(lists.join("expected.json"))
            .arg("--cloudtap")
            .arg(&eve)
            .output()
            .expect("python3 runs benches/compare_alerts.py");
        assert!(
            cmp.status.success(),
            "{threads} threads: alerts differ from the planted matches:\n{}",
            String::from_utf8_lossy(&cmp.stdout)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
