//! Live capture, end to end: each test makes its own pair of network namespaces joined by a
//! veth, replays the project's own captures (made in namespaces, so every address is a test
//! address) into one end with tcpreplay, and captures on the other with each back end.
//!
//! These need root (namespaces, AF_PACKET) and tcpreplay; CI runs as root and installs it.
//! Without them they fail loudly; `CLOUDTAP_SKIP_NETNS_TESTS=1` skips them explicitly.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cloudtap");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn skip() -> bool {
    if std::env::var_os("CLOUDTAP_SKIP_NETNS_TESTS").is_some_and(|v| v == "1") {
        eprintln!("skipped: CLOUDTAP_SKIP_NETNS_TESTS=1");
        return true;
    }
    false
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloudtap-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn run(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (live tests need iproute2, tcpreplay and root; CLOUDTAP_SKIP_NETNS_TESTS=1 skips them)"))
}

fn must(cmd: &[&str]) {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {} (live tests need root; CLOUDTAP_SKIP_NETNS_TESTS=1 skips them)",
        String::from_utf8_lossy(&o.stderr)
    );
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth: `tx` (replay side) and `rx` (capture side). Removed on
/// drop.
struct Net {
    tx: String,
    rx: String,
    if_tx: String,
    if_rx: String,
}

impl Net {
    fn new() -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let net = Net {
            tx: format!("ct-tx-{id}"),
            rx: format!("ct-rx-{id}"),
            if_tx: format!("ctt{id}"),
            if_rx: format!("ctr{id}"),
        };
        must(&["ip", "netns", "add", &net.tx]);
        must(&["ip", "netns", "add", &net.rx]);
        must(&[
            "ip", "link", "add", &net.if_tx, "netns", &net.tx, "type", "veth", "peer", "name",
            &net.if_rx, "netns", &net.rx,
        ]);
        for (ns, i) in [(&net.tx, &net.if_tx), (&net.rx, &net.if_rx)] {
            // No IPv6 on the test link: the namespace's own router solicitations and
            // duplicate address probes would be traffic of its own.
            let _ = run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{i}.disable_ipv6=1"),
            ]);
            must(&["ip", "-n", ns, "link", "set", i, "up"]);
            // Offloads off, as on a tap (README: deployment).
            let _ = run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", i, "gro", "off", "tso", "off", "gso",
                "off",
            ]);
        }
        net
    }

    /// Replays `files` into the link at `mbps` (blocking, bounded by tcpreplay's own run).
    fn replay(&self, files: &[PathBuf], extra: &[&str]) {
        let mut cmd = vec![
            "ip",
            "netns",
            "exec",
            &self.tx,
            "tcpreplay",
            "-q",
            "-i",
            &self.if_tx,
        ];
        cmd.extend_from_slice(extra);
        let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        cmd.extend(paths.iter().map(String::as_str));
        let o = run(&cmd);
        assert!(
            o.status.success(),
            "tcpreplay failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Starts cloudtap in the capture namespace; returns once it says it is capturing.
    fn sensor(&self, args: &[&str], err: &Path) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.rx, BIN, "-i", &self.if_rx])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(err).expect("stderr file"));
        let mut child = cmd.spawn().expect("start cloudtap");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            let s = std::fs::read_to_string(err).unwrap_or_default();
            if s.contains("cloudtap: capturing on") {
                return child;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "cloudtap did not start capturing: {}",
            std::fs::read_to_string(err).unwrap_or_default()
        );
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.tx]);
        let _ = run(&["ip", "netns", "del", &self.rx]);
    }
}

fn signal(child: &Child, sig: &str) {
    must(&["kill", &format!("-{sig}"), &child.id().to_string()]);
}

/// Waits (bounded) for the sensor to exit; returns its status code.
fn wait(mut child: Child, limit: Duration) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("cloudtap did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: last line is cut",
        p.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn EVE line {l:?}: {e}")))
        .collect()
}

/// What a record says, without what differs between a replay and the file (time, flow id,
/// interface).
fn key(e: &Value) -> String {
    let mut k = vec![
        e["event_type"].to_string(),
        e["src_ip"].to_string(),
        e["src_port"].to_string(),
        e["dest_ip"].to_string(),
        e["dest_port"].to_string(),
        e["proto"].to_string(),
        e["vlan"].to_string(),
    ];
    for f in ["alert", "dns", "tls", "http", "quic"] {
        if !e[f].is_null() {
            k.push(e[f].to_string());
        }
    }
    k.join("|")
}

fn multiset(v: &[Value]) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for e in v.iter().filter(|e| e["event_type"] != "stats") {
        *m.entry(key(e)).or_insert(0) += 1;
    }
    m
}

/// The number in the summary line `  capture: kernel packets N  kernel drops N ...`.
fn summary_field(err: &str, name: &str) -> u64 {
    let line = err
        .lines()
        .find(|l| l.trim_start().starts_with("capture:"))
        .unwrap_or_else(|| panic!("no capture line in {err}"));
    let rest = line
        .split(name)
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad {name} in {line}"))
}

fn captures() -> Vec<PathBuf> {
    [
        "captures/eth-malicious.pcap",
        "captures/vlan-malicious.pcap",
        "captures/ipv6-malicious.pcap",
        "captures/frag-ipv4-dns.pcap",
        "captures/eth-benign.pcap",
    ]
    .iter()
    .map(|p| root().join(p))
    .collect()
}

const TYPES: &[&str] = &["--types", "alert,dns,tls,http", "--alert-mode", "flow"];

fn offline(files: &[PathBuf], out: &Path) -> Vec<Value> {
    let mut cmd = Command::new(BIN);
    cmd.arg("-q")
        .arg("-r")
        .args(files)
        .arg("--eve")
        .arg(out)
        .args(TYPES);
    let o = cmd.output().expect("offline run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    lines(out)
}

/// Live capture on `backend` gives what `-r` gives on the same files, but for what the
/// drop counters account for.
fn same_as_offline(backend: &str) {
    if skip() {
        return;
    }
    let d = tmpdir(backend);
    let files = captures();
    let want = offline(&files, &d.join("offline.json"));
    assert!(want.len() > 40, "the captures give records: {}", want.len());
    let net = Net::new();
    let (eve, err) = (d.join("live.json"), d.join("live.err"));
    let eve_s = eve.display().to_string();
    let mut args = vec!["--capture", backend, "--threads", "2", "--eve", &eve_s];
    args.extend_from_slice(TYPES);
    let child = net.sensor(&args, &err);
    // A modest rate: this test is about what is seen, the benchmark about how fast.
    net.replay(&files, &["--mbps", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    assert_eq!(
        wait(child, Duration::from_secs(15)),
        0,
        "{}",
        std::fs::read_to_string(&err).unwrap()
    );
    let stderr = std::fs::read_to_string(&err).unwrap();
    let got = lines(&eve);
    let drops = summary_field(&stderr, "kernel drops") + summary_field(&stderr, "queue drops");
    let (w, g) = (multiset(&want), multiset(&got));
    let missing: i64 = w
        .iter()
        .map(|(k, n)| (n - g.get(k).copied().unwrap_or(0)).max(0))
        .sum();
    let extra: Vec<_> = g
        .iter()
        .filter(|(k, n)| w.get(*k).copied().unwrap_or(0) < **n)
        .collect();
    assert!(
        extra.is_empty(),
        "{backend}: records the files do not give: {extra:?}"
    );
    assert!(
        missing as u64 <= drops,
        "{backend}: {missing} records missing with {drops} drops counted\n{stderr}"
    );
    // In a replay this slow, nothing is dropped, so everything is there.
    assert_eq!(drops, 0, "{stderr}");
    assert_eq!(missing, 0);
    // Live records name the interface, and the packet source as Suricata does.
    assert!(got
        .iter()
        .all(|e| e["in_iface"] == net.if_rx.as_str() && e["pkt_src"] == "wire/pcap"));
    assert!(
        got.iter().any(|e| e["vlan"].is_array()),
        "VLAN tags are put back"
    );
}

#[test]
fn afpacket_sees_what_the_files_hold() {
    same_as_offline("afpacket");
}

#[test]
fn libpcap_sees_what_the_files_hold() {
    same_as_offline("pcap");
}

/// A stop signal in the middle of a replay: every record for the packets the counters say
/// were captured is written, the last line is whole, and the exit status is 0.
fn stop_mid_replay(backend: &str, sig: &str) {
    if skip() {
        return;
    }
    let d = tmpdir(&format!("{backend}-{sig}"));
    let net = Net::new();
    let (eve, err) = (d.join("eve.json"), d.join("err"));
    let eve_s = eve.display().to_string();
    let child = net.sensor(
        &[
            "--capture",
            backend,
            "--threads",
            "2",
            "--eve",
            &eve_s,
            "--types",
            "alert,dns,stats",
            "--alert-mode",
            "flow",
            "--stats-interval",
            "60",
        ],
        &err,
    );
    let replay = {
        let (tx, ift) = (net.tx.clone(), net.if_tx.clone());
        let f = root().join("captures/eth-malicious.pcap");
        std::thread::spawn(move || {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &tx,
                    "tcpreplay",
                    "-q",
                    "-i",
                    &ift,
                    "--loop",
                    "60",
                    "--pps",
                    "3000",
                ])
                .arg(f)
                .output()
        })
    };
    std::thread::sleep(Duration::from_millis(1200));
    signal(&child, sig);
    let code = wait(child, Duration::from_secs(15));
    let _ = replay.join();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&format!("stopped by SIG{sig}")), "{stderr}");
    let ev = lines(&eve);
    let stats = ev.last().expect("records");
    assert_eq!(
        stats["event_type"], "stats",
        "the final stats record is last"
    );
    let s = &stats["stats"];
    let captured = s["capture"]["kernel_packets"].as_u64().unwrap();
    let lost = s["capture"]["kernel_drops"].as_u64().unwrap()
        + s["capture"]["queue_drops"].as_u64().unwrap();
    let processed = s["decoder"]["pkts"].as_u64().unwrap();
    assert!(
        captured > 500 && captured < 60 * 136,
        "stopped in the middle: {captured} packets"
    );
    assert_eq!(
        processed + lost,
        captured,
        "every captured packet was processed or counted as dropped"
    );
    let alerts = ev.iter().filter(|e| e["event_type"] == "alert").count() as u64;
    assert_eq!(
        alerts,
        s["detect"]["alert"].as_u64().unwrap(),
        "every alert raised was written"
    );
    let dns = ev.iter().filter(|e| e["event_type"] == "dns").count() as u64;
    assert!(
        dns >= s["app_layer"]["tx"]["dns"].as_u64().unwrap(),
        "every DNS record was written"
    );
}

#[test]
fn sigterm_mid_replay_afpacket() {
    stop_mid_replay("afpacket", "TERM");
}

#[test]
fn sigint_mid_replay_afpacket() {
    stop_mid_replay("afpacket", "INT");
}

#[test]
fn sigterm_mid_replay_libpcap() {
    stop_mid_replay("pcap", "TERM");
}

/// A large file made of the malicious capture repeated, each copy's ports shifted so its
/// flows are new ones.
fn large_capture(path: &Path, copies: u32) {
    let src = std::fs::read(root().join("captures/eth-malicious.pcap")).unwrap();
    assert_eq!(
        &src[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian microsecond pcap"
    );
    let mut out = Vec::with_capacity(src.len() * copies as usize);
    out.extend_from_slice(&src[..24]);
    for c in 0..copies {
        let mut pos = 24;
        while pos + 16 <= src.len() {
            let caplen = u32::from_le_bytes(src[pos + 8..pos + 12].try_into().unwrap()) as usize;
            let mut rec = src[pos..pos + 16 + caplen].to_vec();
            let sec = u32::from_le_bytes(rec[0..4].try_into().unwrap()) + c;
            rec[0..4].copy_from_slice(&sec.to_le_bytes());
            out.extend_from_slice(&rec);
            pos += 16 + caplen;
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn sigterm_during_an_offline_run() {
    let d = tmpdir("offline-term");
    let big = d.join("big.pcap");
    large_capture(&big, 40_000);
    let (eve, err) = (d.join("eve.json"), d.join("err"));
    let child = Command::new(BIN)
        .args([
            "--threads",
            "2",
            "--types",
            "alert,dns,stats",
            "--alert-mode",
            "flow",
            "--eve",
        ])
        .arg(&eve)
        .arg("-r")
        .arg(&big)
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, "TERM");
    let code = wait(child, Duration::from_secs(15));
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM"),
        "the run ended early: {stderr}"
    );
    let ev = lines(&eve);
    let s = &ev.last().unwrap()["stats"];
    let processed = s["decoder"]["pkts"].as_u64().unwrap();
    assert!(
        processed > 0 && processed < 40_000 * 136,
        "stopped in the middle: {processed}"
    );
    let alerts = ev.iter().filter(|e| e["event_type"] == "alert").count() as u64;
    assert_eq!(alerts, s["detect"]["alert"].as_u64().unwrap());
    // The generated file is several hundred MB: not left behind in /tmp.
    let _ = std::fs::remove_dir_all(&d);
}

fn pack(values: &[&str]) -> String {
    format!(
        r#"[pack]
format = 1
name = "live-test"
version = "1"
description = "test pack"
action = "alert"

[defaults]
category = "Potentially Bad Traffic"
severity = 2

[[signature]]
id = 9990001
rev = 1
msg = "LIVE TEST listed name"
fields = ["dns.query", "tls.sni", "http.host"]
match = "exact"
values = [{}]
rationale = "test"
"#,
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn listed(ev: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = ev
        .iter()
        .filter(|e| e["event_type"] == "alert")
        .filter_map(|e| {
            e["alert"]["metadata"]["cloudtap_value"][0]
                .as_str()
                .map(String::from)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn sighup_swaps_signatures_and_reopens_the_eve_file() {
    if skip() {
        return;
    }
    let d = tmpdir("hup");
    let sigs = d.join("sigs");
    std::fs::create_dir_all(&sigs).unwrap();
    std::fs::write(sigs.join("live.toml"), pack(&["pastebin.com"])).unwrap();
    let net = Net::new();
    let (eve, err) = (d.join("eve.json"), d.join("err"));
    let (eve_s, sigs_s) = (eve.display().to_string(), sigs.display().to_string());
    let child = net.sensor(
        &[
            "--threads",
            "2",
            "--eve",
            &eve_s,
            "--signatures",
            &sigs_s,
            "--types",
            "alert,dns",
            "--alert-mode",
            "flow",
        ],
        &err,
    );
    let cap = [root().join("captures/eth-malicious.pcap")];
    net.replay(&cap, &["--mbps", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    // logrotate: rename, then SIGHUP; and a new signature set at the same time.
    std::fs::rename(&eve, d.join("eve.json.1")).unwrap();
    std::fs::write(sigs.join("live.toml"), pack(&["transfer.sh"])).unwrap();
    signal(&child, "HUP");
    let t = Instant::now();
    while !std::fs::read_to_string(&err)
        .unwrap()
        .contains("signatures reloaded")
    {
        assert!(t.elapsed() < Duration::from_secs(10), "no reload");
        std::thread::sleep(Duration::from_millis(20));
    }
    while !eve.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the EVE file was not reopened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    net.replay(&cap, &["--mbps", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    assert_eq!(wait(child, Duration::from_secs(15)), 0);
    let before = lines(&d.join("eve.json.1"));
    let after = lines(&eve);
    assert_eq!(listed(&before), vec!["pastebin.com"]);
    assert_eq!(
        listed(&after),
        vec!["transfer.sh"],
        "a value added alerts, one removed does not"
    );
    // No record lost across the reopen: each replay gives the same DNS records.
    let dns = |v: &[Value]| v.iter().filter(|e| e["event_type"] == "dns").count();
    assert!(dns(&before) > 10);
    assert_eq!(dns(&before), dns(&after));
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(stderr.contains("1 signatures"), "{stderr}");
}

#[test]
fn user_drops_every_capability() {
    if skip() {
        return;
    }
    let d = tmpdir("user");
    let net = Net::new();
    let err = d.join("err");
    let eve = d.join("eve.json");
    let eve_s = eve.display().to_string();
    let child = net.sensor(&["--user", "nobody", "--eve", &eve_s], &err);
    let mut status = String::new();
    std::fs::File::open(format!("/proc/{}/status", child.id()))
        .and_then(|mut f| f.read_to_string(&mut status))
        .unwrap();
    signal(&child, "TERM");
    assert_eq!(
        wait(child, Duration::from_secs(15)),
        0,
        "{}",
        std::fs::read_to_string(&err).unwrap()
    );
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    let nobody = run(&["id", "-u", "nobody"]);
    let uid = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert_eq!(field("Uid:"), vec![uid.as_str(); 4], "runs as nobody");
    for cap in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(field(cap), vec!["0000000000000000"], "{cap} empty");
    }
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(!stderr.contains("capturing as root"), "{stderr}");
}

#[test]
fn an_interface_that_cannot_be_opened_is_one_line() {
    for backend in ["afpacket", "pcap"] {
        let o = Command::new(BIN)
            .args(["-i", "ct-none0", "--capture", backend])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("ct-none0"), "{err}");
    }
}

#[test]
fn a_file_that_is_not_a_capture_is_one_line() {
    let o = Command::new(BIN)
        .arg("-r")
        .arg(root().join("README.md"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("not a pcap or pcapng"), "{err}");
}
