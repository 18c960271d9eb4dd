//! EVE `stats` records and the exit summary: counts agree with the run, histograms are
//! filled, records come every `--stats-interval` while input trickles in.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudtap"))
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn stats_records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event_type"] == "stats")
        .collect()
}

/// A fresh directory holding a FIFO named in.pcap: (directory, FIFO).
fn fifo_in(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("cloudtap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("in.pcap");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    (dir, fifo)
}

#[test]
fn final_stats_record_matches_the_run() {
    for threads in ["1", "2"] {
        let o = bin()
            .args(["--types", "alert,stats", "--threads", threads, "-r"])
            .arg(capture("eth-malicious.pcap"))
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0));
        let out = String::from_utf8_lossy(&o.stdout);
        let alerts = out
            .lines()
            .filter(|l| l.contains(r#""event_type":"alert""#))
            .count();
        let recs = stats_records(&o.stdout);
        let last = recs.last().expect("a stats record at the end");
        let s = &last["stats"];
        let err = String::from_utf8_lossy(&o.stderr);
        let pkts = s["decoder"]["pkts"].as_u64().expect("pkts");
        assert!(err.contains(&format!("packets {pkts} ")), "{err}");
        assert_eq!(s["detect"]["alert"].as_u64(), Some(alerts as u64));
        // The default entity alerts come from the detection stage, whose counters ride along.
        assert_eq!(
            s["cloudtap"]["stage"]["alerts"].as_u64(),
            Some(alerts as u64)
        );
        assert!(s["cloudtap"]["stage"]["observations"].as_u64() >= Some(alerts as u64));
        assert!(alerts > 0);
        let c = &s["cloudtap"];
        assert_eq!(c["alert_latency_us"]["count"].as_u64(), Some(alerts as u64));
        assert!(c["alert_latency_us"]["max"].as_u64() >= c["alert_latency_us"]["p50"].as_u64());
        // one packet in 16 is timed
        let timed = c["pkt_time_ns"]["count"].as_u64().expect("count");
        assert!(
            timed >= pkts / 16 && timed <= pkts / 16 + 2,
            "{timed} of {pkts}: {c}"
        );
        assert!(c["pkt_time_ns"]["p50"].as_u64() > Some(0));
        assert_eq!(c["queue"]["capacity_batches"].as_u64(), Some(8));
        assert!(s["flow"]["total"].as_u64() > Some(0));
        assert!(err.contains("capture-to-alert latency us"), "{err}");
        assert!(err.contains("packet time ns"), "{err}");
    }
}

#[test]
fn stats_records_arrive_every_interval() {
    let (dir, fifo) = fifo_in("stats");
    let data = std::fs::read(capture("eth-malicious.pcap")).expect("read");
    let mut child = bin()
        .args([
            "--types",
            "stats",
            "--stats-interval",
            "0.3",
            "--threads",
            "2",
            "-q",
            "-r",
        ])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open fifo");
        let half = data.len() / 2;
        w.write_all(&data[..half]).expect("write");
        w.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(1500));
        w.write_all(&data[half..]).expect("write");
    }
    let start = Instant::now();
    let o = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break child.wait_with_output().expect("output");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "cloudtap did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let recs = stats_records(&o.stdout);
    assert!(recs.len() >= 3, "{} stats records", recs.len());
    let pkts: Vec<u64> = recs
        .iter()
        .map(|r| r["stats"]["decoder"]["pkts"].as_u64().unwrap_or(0))
        .collect();
    assert!(pkts.windows(2).all(|w| w[0] <= w[1]), "{pkts:?}");
    assert!(pkts[0] < *pkts.last().unwrap_or(&0), "{pkts:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stats_interval_is_validated() {
    let o = bin()
        .args(["--stats-interval", "0", "-r"])
        .arg(capture("eth-malicious.pcap"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn caps_are_configurable_and_counted() {
    let run = |extra: &[&str]| {
        let o = bin()
            .args(["--types", "stats", "--threads", "1", "-q"])
            .args(extra)
            .arg("-r")
            .arg(capture("eth-malicious.pcap"))
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0));
        let recs = stats_records(&o.stdout);
        recs.last().expect("stats record")["stats"]["flow"].clone()
    };
    let free = run(&[]);
    assert_eq!(free["evicted_cap"].as_u64(), Some(0), "{free}");
    let capped = run(&["--max-flows", "2"]);
    assert!(capped["evicted_cap"].as_u64() > Some(0), "{capped}");
    assert!(capped["active"].as_u64() <= Some(2), "{capped}");
    assert_eq!(
        capped["total"],
        free["total"]
            .as_u64()
            .map_or(Value::Null, |_| capped["total"].clone())
    );
}

/// Workers get packets in batches; on a pipe the reader hands on a part-filled batch before
/// a read that may block, so an alert never waits for traffic that may not come.
#[test]
fn alerts_from_a_pipe_arrive_while_it_is_still_open() {
    use std::io::BufRead;
    let data = std::fs::read(capture("eth-malicious.pcap")).expect("read");
    for threads in ["1", "2"] {
        let (dir, fifo) = fifo_in(&format!("pipe-{threads}"));
        // Per-flow alerts go out as soon as they are matched; entity alerts wait for their
        // window to close (end of input here).
        let mut child = bin()
            .args(["--alert-mode", "flow", "--threads", threads, "-q", "-r"])
            .arg(&fifo)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open fifo");
        w.write_all(&data).expect("write");
        w.flush().expect("flush");
        // Far fewer packets than a batch, and the pipe stays open.
        let first = rx.recv_timeout(Duration::from_secs(10));
        drop(w);
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "cloudtap did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = lines.join();
        let first = first
            .unwrap_or_else(|_| panic!("no alert while the pipe was open ({threads} threads)"));
        assert!(first.contains(r#""event_type":"alert""#), "{first}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
