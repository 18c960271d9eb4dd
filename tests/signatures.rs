//! Signature packs at scale: plain lists, Zeek Intel, provider importers on real publisher
//! excerpts, exceptions, domain semantics against a naive reference, reload on SIGHUP, and
//! end-to-end alerts for each bundled pack family.

use proptest::prelude::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudtap"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cloudtap-sig-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmpdir");
    d
}

/// `cloudtap signatures test VALUE --signatures DIR`: (exit code, stdout).
fn sig_test(dir: &Path, value: &str) -> (i32, String) {
    let o = bin()
        .args(["signatures", "test", value, "--signatures"])
        .arg(dir)
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// `signatures check DIR` must refuse the set (exit 2) and name every `file:line` given.
fn check_fails_with(dir: &Path, needles: &[&str]) {
    let o = bin()
        .args(["signatures", "check"])
        .arg(dir)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "{n} not in {err}");
    }
}

#[test]
fn plain_lists_load_match_and_report_bad_lines() {
    let d = tmpdir("lists");
    std::fs::write(
        d.join("feed.domains"),
        "# id: 8200001\n# message: CLOUDTAP test feed\n# severity: 1\n\npastebin.com\n=exact.example.net  # only the apex\nbücher.example\n",
    )
    .expect("w");
    std::fs::write(
        d.join("ranges.cidrs"),
        "# a feed\n203.0.113.0/24\n2001:db8::/32\n198.51.100.7\n",
    )
    .expect("w");
    std::fs::write(
        d.join("tools.useragents"),
        "# id: 8200003\nEvilTool/\nre:^sqlmap/[0-9]\n",
    )
    .expect("w");
    let (code, out) = sig_test(&d, "x.pastebin.com");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8200001"), "{out}");
    assert_eq!(sig_test(&d, "badpastebin.com").0, 1);
    assert_eq!(sig_test(&d, "exact.example.net").0, 0);
    assert_eq!(sig_test(&d, "www.exact.example.net").0, 1);
    assert_eq!(
        sig_test(&d, "XN--BCHER-KVA.example.").0,
        0,
        "IDN entry matches its punycode"
    );
    assert_eq!(sig_test(&d, "203.0.113.77").0, 0);
    assert_eq!(sig_test(&d, "2001:db8:1::1").0, 0);
    assert_eq!(sig_test(&d, "198.51.100.8").0, 1);
    assert_eq!(sig_test(&d, "Mozilla/5.0 EvilTool/2.1").0, 0);
    assert_eq!(sig_test(&d, "sqlmap/1.8").0, 0);
    assert_eq!(sig_test(&d, "nosqlmap/1.8").0, 1);
    // Broken entries: every problem with file and line; the sensor refuses to start.
    std::fs::write(d.join("bad.domains"), "ok.example\nnot a domain\n").expect("w");
    std::fs::write(d.join("bad.cidrs"), "10.0.0.0/33\n").expect("w");
    std::fs::write(d.join("bad.useragents"), "re:(unclosed\n").expect("w");
    check_fails_with(&d, &["bad.domains:2:", "bad.cidrs:1:", "bad.useragents:1:"]);
    let o = bin()
        .args(["-q", "-r"])
        .arg(root().join("captures/eth-benign.pcap"))
        .arg("--signatures")
        .arg(&d)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "refuses to start on a broken set");
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.domains:2:"));
}

#[test]
fn zeek_intel_files_load_as_they_are() {
    let d = tmpdir("intel");
    std::fs::write(
        d.join("feed.intel"),
        "#separator \\x09\n#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n\
         paste.example.org\tIntel::DOMAIN\tmyfeed\tpaste site\n\
         192.0.2.10\tIntel::ADDR\tmyfeed\tc2\n\
         198.51.100.0/24\tIntel::SUBNET\totherfeed\tstaging\n\
         EvilAgent\tIntel::SOFTWARE\tmyfeed\tagent\n\
         drop.example.org/x/y\tIntel::URL\tmyfeed\turl\n\
         deadbeef\tIntel::FILE_HASH\tmyfeed\tnot on the wire\n",
    )
    .expect("w");
    for v in [
        "paste.example.org",
        "192.0.2.10",
        "198.51.100.99",
        "EvilAgent 1.0",
    ] {
        let (code, out) = sig_test(&d, v);
        assert_eq!(code, 0, "{v}: {out}");
    }
    assert_eq!(
        sig_test(&d, "www.paste.example.org").0,
        1,
        "Intel::DOMAIN is exact, as in Zeek"
    );
    let (_, out) = sig_test(&d, "drop.example.org/x/y");
    assert!(out.contains("http.full_url"), "{out}");
    let o = bin()
        .args(["signatures", "check"])
        .arg(&d)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn provider_files_import_with_service_and_region_labels() {
    let d = tmpdir("providers");
    let src = root().join("tests/data/providers");
    std::fs::create_dir_all(d.join("cloud")).expect("mk");
    for e in std::fs::read_dir(&src).expect("dir").flatten() {
        std::fs::copy(e.path(), d.join("cloud").join(e.file_name())).expect("copy");
    }
    let imports = [
        ("aws-ip-ranges", "aws-ip-ranges.json", "AWS"),
        ("google-ip-ranges", "google-cloud.json", "Google Cloud"),
        ("azure-service-tags", "azure-service-tags.json", "Azure"),
        ("oracle-ip-ranges", "oracle-public-ip-ranges.json", "Oracle"),
        ("github-meta", "github-meta.json", "GitHub"),
        ("fastly-ip-list", "fastly-ip-list.json", "Fastly"),
        ("cidr-list", "cloudflare-ips-v4.txt", "Cloudflare"),
        ("geofeed", "linode-geofeed.txt", "Linode"),
    ];
    let mut toml = String::from(
        "[pack]\nformat = 1\nname = \"clouds\"\nversion = \"1\"\ndescription = \"d\"\naction = \"label\"\n",
    );
    for (i, (fmt, file, prov)) in imports.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[import]]\nid = {}\nmsg = \"range\"\nformat = \"{fmt}\"\npath = \"cloud/{file}\"\nprovider = \"{prov}\"\n",
            9_900_001 + i
        ));
    }
    std::fs::write(d.join("clouds.toml"), toml).expect("w");
    // Ranges of many labels, interleaved in the files: each hit names its own range.
    let expect = [
        ("52.218.0.1", "52.218.0.0/17 [AWS S3 eu-west-1]"),
        (
            "13.69.40.17",
            "13.69.40.16/28 [Azure AzureStorage westeurope]",
        ),
        ("2600:3c00::1", "2600:3c00::/32 [Linode  US/US-TX]"),
    ];
    for (ip, label) in expect {
        let (code, out) = sig_test(&d, ip);
        assert_eq!(code, 0, "{ip}: {out}");
        assert!(out.contains(label), "{ip}: want {label} in {out}");
        assert!(out.contains("\tlabel\t"), "{out}");
    }
    let o = bin()
        .args(["signatures", "check"])
        .arg(&d)
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("address ranges"), "{out}");
    // A missing file or a file in the wrong format is an error naming the pack line.
    std::fs::write(
        d.join("broken.toml"),
        "[pack]\nformat = 1\nname = \"broken\"\nversion = \"1\"\ndescription = \"d\"\n\n[[import]]\nid = 9900100\nmsg = \"m\"\nformat = \"aws-ip-ranges\"\npath = \"cloud/linode-geofeed.txt\"\nprovider = \"X\"\n",
    )
    .expect("w");
    check_fails_with(&d, &["broken.toml:"]);
}

fn alerts_with(sigdir: Option<&Path>, capture: &Path) -> Vec<Value> {
    let mut c = bin();
    // Per-flow alerts: these tests are about the matching machinery (exceptions, packs).
    c.args(["-q", "--alert-mode", "flow", "--types", "alert", "-r"])
        .arg(capture);
    if let Some(d) = sigdir {
        c.arg("--signatures").arg(d);
    }
    let o = c.output().expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn copy_bundled(to: &Path) {
    let src = root().join("signatures");
    let mut stack = vec![(src.clone(), to.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        std::fs::create_dir_all(&d).expect("mk");
        for e in std::fs::read_dir(&s).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push((p, d.join(e.file_name())));
            } else {
                std::fs::copy(&p, d.join(e.file_name())).expect("copy");
            }
        }
    }
}

#[test]
fn exceptions_and_allowlists_suppress_alerts() {
    let cap = root().join("captures/eth-malicious.pcap");
    let base = alerts_with(None, &cap);
    let count = |v: &[Value], needle: &str| {
        v.iter()
            .filter(|e| e["alert"]["metadata"]["cloudtap_value"][0].as_str() == Some(needle))
            .count()
    };
    assert!(count(&base, "pastebin.com") > 0 && count(&base, "transfer.sh") > 0);
    let d = tmpdir("exceptions");
    copy_bundled(&d);
    std::fs::write(
        d.join("local-exceptions.toml"),
        "[[exception]]\nreason = \"our paste mirror\"\ndomain = [\"pastebin.com\"]\n\n\
         [[exception]]\nreason = \"build server fetches from transfer.sh\"\nsrc = [\"10.99.0.0/24\"]\nsignature_id = [9100501]\n\n\
         [[exception]]\nreason = \"other network\"\nsrc = [\"192.0.2.0/24\"]\nsignature_id = [9100301]\n",
    )
    .expect("w");
    let tuned = alerts_with(Some(&d), &cap);
    assert_eq!(count(&tuned, "pastebin.com"), 0);
    assert_eq!(count(&tuned, "transfer.sh"), 0);
    assert!(count(&base, "abcd1234.ngrok-free.app") > 0);
    assert_eq!(
        count(&tuned, "abcd1234.ngrok-free.app"),
        count(&base, "abcd1234.ngrok-free.app"),
        "exception for another source does not apply"
    );
    assert_eq!(
        count(&tuned, "api.telegram.org"),
        count(&base, "api.telegram.org")
    );
    std::fs::write(
        d.join("bad-exceptions.toml"),
        "[[exception]]\nreason = \"nothing\"\n",
    )
    .expect("w");
    check_fails_with(&d, &["bad-exceptions.toml:1:"]);
}

/// Builds a pcap of DNS queries (one flow each) for `names`.
fn dns_capture(path: &Path, names: &[&str], first_port: u16) {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, n) in names.iter().enumerate() {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in n.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 53], 64)
            .udp(first_port + i as u16, 53);
        let mut pkt = Vec::new();
        b.write(&mut pkt, &q).expect("build");
        f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&pkt);
    }
    std::fs::write(path, f).expect("write");
}

#[test]
fn every_bundled_pack_family_alerts_or_labels_end_to_end() {
    let d = tmpdir("families");
    let cap = d.join("families.pcap");
    // (name, the pack that alerts, or the label a context entry writes)
    let names = [
        ("www.000webhostapp.com", Err("Hostinger")), // abused-lots: context
        ("x.burrow.io", Ok("abused-tunnels")),
        ("dropmefiles.com", Ok("abused-filehosting")),
        ("files.4shared.com", Err("4shared")), // a popular site: context
        ("pastebin.com", Ok("web-services")),
        ("myapp.amplifyapp.com", Err("AWS Amplify")), // cloud-providers: label only
    ];
    let list: Vec<&str> = names.iter().map(|n| n.0).collect();
    dns_capture(&cap, &list, 40_000);
    let o = bin()
        .args(["-q", "--alert-mode", "flow", "--types", "alert,dns", "-r"])
        .arg(&cap)
        .output()
        .expect("runs");
    assert!(o.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for (name, pack) in names {
        let alerts: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "alert" && e["dns"]["query"][0]["rrname"] == name)
            .collect();
        match pack {
            Ok(p) => {
                assert_eq!(alerts.len(), 1, "{name}: exactly one alert");
                assert_eq!(
                    alerts[0]["alert"]["metadata"]["cloudtap_pack"][0], p,
                    "{name}"
                );
            }
            Err(label) => {
                assert!(alerts.is_empty(), "{name}: labels do not alert");
                let rec = events
                    .iter()
                    .find(|e| e["event_type"] == "dns" && e["dns"]["rrname"] == name)
                    .expect("dns record");
                let labels = rec["cloudtap"]["labels"].to_string();
                assert!(labels.contains(label), "{name}: {labels}");
            }
        }
    }
}

#[test]
fn reload_on_sighup_swaps_signatures_and_keeps_them_on_a_broken_update() {
    let d = tmpdir("reload");
    let sigs = d.join("sigs");
    std::fs::create_dir_all(&sigs).expect("mk");
    std::fs::write(sigs.join("watch.domains"), "# id: 8300001\nalpha.example\n").expect("w");
    let fifo = d.join("live.pcap");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let mut child = bin()
        .args([
            "--alert-mode",
            "flow",
            "--types",
            "alert",
            "--threads",
            "1",
            "-r",
        ])
        .arg(&fifo)
        .arg("--signatures")
        .arg(&sigs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id().to_string();
    // stdout lines too, so each phase can wait until its alerts are out.
    let (otx, orx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = otx.send(l);
        }
    });
    let mut lines: Vec<String> = Vec::new();
    let wait_alerts = |n: usize, lines: &mut Vec<String>| {
        let t = Instant::now();
        while lines.len() < n && t.elapsed() < Duration::from_secs(20) {
            if let Ok(l) = orx.recv_timeout(Duration::from_millis(200)) {
                lines.push(l);
            }
        }
    };
    // stderr lines arrive on a channel so the test can wait for "reloaded" without blocking.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let wait_for = |what: &str| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                if l.contains(what) {
                    return;
                }
            }
        }
        panic!("no {what:?} on stderr within 20 s");
    };
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open fifo");
    // A batch is 256 packets: each phase sends 256 queries so it reaches the worker.
    let phase = |w: &mut std::fs::File, header: bool, port: u16, names: &[&str]| {
        let p = d.join(format!("phase{port}.pcap"));
        let many: Vec<&str> = (0..256).map(|i| names[i % names.len()]).collect();
        dns_capture(&p, &many, port);
        let bytes = std::fs::read(&p).expect("read");
        if header {
            // The file header alone first: the capture reader's opening reads then see it
            // apart from the packets (it reads twice before parsing anything).
            w.write_all(&bytes[..24]).expect("write fifo");
            w.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(300));
        }
        w.write_all(&bytes[24..]).expect("write fifo");
        w.flush().expect("flush");
    };
    phase(&mut w, true, 10_000, &["alpha.example", "beta.example"]);
    wait_alerts(128, &mut lines);
    std::fs::write(sigs.join("watch.domains"), "# id: 8300001\nbeta.example\n").expect("w");
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    wait_for("signatures reloaded");
    phase(&mut w, false, 20_000, &["alpha.example", "beta.example"]);
    wait_alerts(256, &mut lines);
    std::fs::write(sigs.join("watch.domains"), "# id: 8300001\nnot a domain\n").expect("w");
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill")
        .success());
    wait_for("keeping the previous set");
    phase(&mut w, false, 30_000, &["alpha.example", "beta.example"]);
    drop(w);
    let status = child.wait().expect("wait");
    assert!(status.success());
    wait_alerts(384, &mut lines);
    let alerts: Vec<(u64, String)> = lines
        .iter()
        .map(|l| {
            let e: Value = serde_json::from_str(l).expect("json");
            (
                e["src_port"].as_u64().unwrap_or(0),
                e["alert"]["metadata"]["cloudtap_value"][0]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let phase_of = |port: u64| port / 10_000;
    let seen = |ph: u64, v: &str| {
        alerts
            .iter()
            .filter(|(p, n)| phase_of(*p) == ph && n == v)
            .count()
    };
    assert_eq!(
        (seen(1, "alpha.example"), seen(1, "beta.example")),
        (128, 0),
        "before reload"
    );
    assert_eq!(
        (seen(2, "alpha.example"), seen(2, "beta.example")),
        (0, 128),
        "after reload: deleted entries are gone"
    );
    assert_eq!(
        (seen(3, "alpha.example"), seen(3, "beta.example")),
        (0, 128),
        "broken update kept the last good set"
    );
}

// ---- the matchers agree with a naive reference ----

fn naive_suffix(name: &str, suffix: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix('.').unwrap_or(&n);
    n == suffix
        || (n.len() > suffix.len()
            && n.ends_with(suffix)
            && n.as_bytes()[n.len() - suffix.len() - 1] == b'.')
}

fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "ab", "ba", "aa", "com", "x-y"]).prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn domain_suffixes_agree_with_naive(
        sufs in prop::collection::vec(prop::collection::vec(label(), 1..3).prop_map(|l| l.join(".")), 1..6),
        names in prop::collection::vec(prop::collection::vec(label(), 1..5).prop_map(|l| l.join(".")), 1..20),
    ) {
        let mut toml = String::from("[pack]\nformat = 1\nname = \"p\"\nversion = \"1\"\ndescription = \"d\"\n");
        let mut uniq = sufs.clone();
        uniq.sort();
        uniq.dedup();
        for (i, s) in uniq.iter().enumerate() {
            toml.push_str(&format!("[[signature]]\nid = {}\nrev = 1\nmsg = \"m\"\nfields = [\"dns.query\"]\nmatch = \"suffix\"\nvalues = [\"{s}\"]\n", i + 1));
        }
        let rs = cloudtap::detect::load_texts(&[("p.toml".into(), toml)]).expect("valid");
        for n in &names {
            let mut hits = Vec::new();
            rs.match_str(cloudtap::detect::Field::DnsQuery, n, &mut hits);
            let mut got: Vec<String> = hits.iter().map(|h| h.pattern().to_string()).collect();
            got.sort();
            let want: Vec<String> = uniq.iter().filter(|s| naive_suffix(n, s)).cloned().collect();
            prop_assert_eq!(got, want, "name {}", n);
            // most specific first
            if hits.len() > 1 {
                prop_assert!(hits[0].pattern().len() >= hits[1].pattern().len());
            }
        }
    }

    #[test]
    fn cidrs_agree_with_naive(
        nets in prop::collection::vec((any::<u32>(), 0u8..=32, 1u32..=3), 1..40),
        addrs in prop::collection::vec(any::<u32>(), 1..60),
    ) {
        // Three signatures, so ranges of several kinds interleave in the table; each range
        // belongs to the signature it was first drawn for.
        let mut uniq: Vec<(u32, u8, u32)> = Vec::new();
        for &(a, l, sig) in &nets {
            let net = if l == 0 { 0 } else { a & (u32::MAX << (32 - l)) };
            if !uniq.iter().any(|u| (u.0, u.1) == (net, l)) {
                uniq.push((net, l, sig));
            }
        }
        let mut toml = String::from("[pack]\nformat = 1\nname = \"p\"\nversion = \"1\"\ndescription = \"d\"\n");
        for sig in [3u32, 1, 2] {
            let vals: Vec<String> = uniq.iter().filter(|u| u.2 == sig).map(|(a, l, _)| format!("\"{}/{l}\"", std::net::Ipv4Addr::from(*a))).collect();
            if !vals.is_empty() {
                toml.push_str(&format!("[[signature]]\nid = {sig}\nrev = 1\nmsg = \"m\"\nfields = [\"ip.dst\"]\nmatch = \"cidr\"\nvalues = [{}]\n", vals.join(",")));
            }
        }
        let rs = cloudtap::detect::load_texts(&[("p.toml".into(), toml)]).expect("valid");
        for a in addrs.iter().chain(uniq.iter().map(|u| &u.0)) {
            let mut hits = Vec::new();
            rs.match_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::from(*a)), &mut hits);
            let want: Vec<(String, u32)> = {
                let mut w: Vec<&(u32, u8, u32)> = uniq.iter().filter(|(n, l, _)| *l == 0 || (a >> (32 - l)) == (n >> (32 - l))).collect();
                w.sort_by_key(|u| std::cmp::Reverse(u.1));
                w.iter().map(|(n, l, sig)| (format!("{}/{l}", std::net::Ipv4Addr::from(*n)), *sig)).collect()
            };
            let got: Vec<(String, u32)> = hits.iter().map(|h| (h.pattern().to_string(), h.sig.id)).collect();
            prop_assert_eq!(got, want, "addr {}", std::net::Ipv4Addr::from(*a));
        }
    }
}
