//! Bench binary (no harness): `cargo bench --bench throughput [-- REPEAT]`.
//!
//! 1. Micro-benchmarks of the hot functions on real bytes from captures/: the decoder, the DNS,
//!    TLS and HTTP extractors, and the domain / user-agent matchers with the bundled packs.
//! 2. The whole pipeline over a capture built by replaying captures/eth-malicious.pcap REPEAT
//!    times (default 3000) with shifted ports and times, at 1 and 2 threads: Gbit/s, Mpkt/s
//!    and the process's peak RSS.

use cloudtap::decode::{self, Outcome, Transport};
use cloudtap::detect::{self, Field};
use cloudtap::extract::{dns, http, tls};
use cloudtap::pipeline::{self, Config};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn time<F: FnMut()>(name: &str, iters: u64, mut f: F) {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
    println!("{name:<44} {ns:>9.1} ns/op {:>9.2} M op/s", 1e3 / ns);
}

#[path = "common/frames.rs"]
mod common_frames;
use common_frames::frames;

/// Replays a classic little-endian pcap `repeat` times with the client ports and timestamps
/// shifted per round, so every round is new flows.
fn replicate(src: &Path, repeat: u32, dst: &Path) -> u64 {
    let d = std::fs::read(src).expect("read");
    let mut out = d[..24].to_vec();
    let mut n = 0;
    for round in 0..repeat {
        let mut pos = 24;
        while pos + 16 <= d.len() {
            let cl =
                u32::from_le_bytes([d[pos + 8], d[pos + 9], d[pos + 10], d[pos + 11]]) as usize;
            let ts = u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]]);
            let mut hdr = d[pos..pos + 16].to_vec();
            hdr[..4].copy_from_slice(&(ts + round * 2).to_le_bytes());
            let mut pkt = d[pos + 16..pos + 16 + cl].to_vec();
            if pkt.len() > 38 && pkt[12..14] == [8, 0] {
                let l4 = 14 + usize::from(pkt[14] & 15) * 4;
                for at in [l4, l4 + 2] {
                    let p = u16::from_be_bytes([pkt[at], pkt[at + 1]]);
                    if p > 1024 {
                        let q = 1025 + ((u32::from(p) + round * 7) % 64_000) as u16;
                        pkt[at..at + 2].copy_from_slice(&q.to_be_bytes());
                    }
                }
            }
            out.extend_from_slice(&hdr);
            out.extend_from_slice(&pkt);
            pos += 16 + cl;
            n += 1;
        }
    }
    std::fs::write(dst, out).expect("write");
    n
}

#[path = "common/scale.rs"]
mod scale_lists;

/// Timed rounds per lookup figure: this VM's memory latency moves with its neighbours, by
/// half or more from one second to the next, so one timing says little.
const ROUNDS: usize = 9;

/// Lookup rate of `f` (which does `n` lookups) over `ROUNDS` rounds: "median (min–max) M/s".
fn rounds(n: usize, mut f: impl FnMut()) -> String {
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            n as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    format!(
        "{:.1} M/s median of {ROUNDS} rounds ({:.1}-{:.1})",
        rates[ROUNDS / 2],
        rates[0],
        rates[ROUNDS - 1]
    )
}

/// Issue figures: 1,000,000 domain suffixes, 200,000 CIDRs and 2,000 user-agent patterns as
/// plain lists; load time and memory, then lookups per second on one core.
fn scale() {
    println!(
        "== signature scale: 1,000,000 domain suffixes, 200,000 CIDRs, 2,000 user-agent patterns"
    );
    let dir = std::env::temp_dir().join("cloudtap-bench-lists");
    let (mut rng, names) = scale_lists::write_scale_lists(&dir);
    let rss0 = peak_rss_mb();
    let t = Instant::now();
    let rs = detect::load_dir(&dir).expect("load");
    let load_s = t.elapsed().as_secs_f64();
    println!(
        "  load {:.2} s, peak RSS {:.0} MB (before loading {:.0} MB)  {:?}",
        load_s,
        peak_rss_mb(),
        rss0,
        rs.sizes()
    );
    let (buf, spans) = scale_lists::domain_probes(&mut rng, &names);
    let mut hits = Vec::with_capacity(8);
    let mut found = 0usize;
    let dom = rounds(spans.len() * 4, || {
        for _ in 0..4 {
            for &(at, len) in &spans {
                hits.clear();
                rs.match_str(Field::DnsQuery, black_box(&buf[at..at + len]), &mut hits);
                found += hits.len();
            }
        }
    });
    println!(
        "  domain lookups: {dom} ({} hits per 100k)",
        found / 4 / ROUNDS
    );
    let addrs = scale_lists::ip_probes(&mut rng);
    let mut found = 0usize;
    let ip = rounds(addrs.len() * 10, || {
        for _ in 0..10 {
            for a in &addrs {
                hits.clear();
                rs.match_ip(black_box(*a), &mut hits);
                found += hits.len();
            }
        }
    });
    println!(
        "  IP lookups, uniformly random addresses: {ip} ({} hits per 100k)",
        found / 10 / ROUNDS
    );
    // Traffic repeats its destinations: 2,000 distinct addresses, looked up in turn.
    let hot: Vec<std::net::IpAddr> = addrs.iter().take(2000).copied().collect();
    let ip_hot = rounds(hot.len() * 500, || {
        for _ in 0..500 {
            for a in &hot {
                hits.clear();
                rs.match_ip(black_box(*a), &mut hits);
            }
        }
    });
    println!("  IP lookups, 2,000 distinct destinations: {ip_hot}");
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let t = Instant::now();
    for _ in 0..200_000 {
        hits.clear();
        rs.match_str(Field::HttpUserAgent, black_box(browser), &mut hits);
    }
    println!(
        "  user-agent lookups (2,000 patterns, browser UA): {:.2} M/s",
        0.2 / t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    if std::env::args().any(|a| a == "scale") {
        scale();
        return;
    }
    {
        let t = Instant::now();
        let r = detect::load_bundled().expect("bundled");
        println!(
            "== bundled signatures: loaded in {:.0} ms  {:?}",
            t.elapsed().as_secs_f64() * 1e3,
            r.sizes()
        );
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repeat: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
    let cap = root.join("captures/eth-malicious.pcap");
    let fr = frames(&cap);
    let rules = detect::load_bundled().expect("bundled packs");

    println!("== micro-benchmarks (one core)");
    let n = fr.len() as u64;
    time("decode: every frame of eth-malicious", 2000, || {
        for (lt, f) in &fr {
            black_box(decode::decode(*lt, f).is_ok());
        }
    });
    println!("  (that is per {n} frames)");
    let mut dns_msgs = Vec::new();
    let mut hellos = Vec::new();
    let mut reqs = Vec::new();
    for (lt, f) in &fr {
        if let Ok(Outcome::Packet(p)) = decode::decode(*lt, f) {
            match p.transport {
                Transport::Udp { payload, .. } if dns::parse(payload).is_ok() => {
                    dns_msgs.push(payload.to_vec())
                }
                Transport::Tcp(t)
                    if tls::looks_like_tls(t.payload) && t.payload.get(5) == Some(&1) =>
                {
                    hellos.push(t.payload.to_vec())
                }
                Transport::Tcp(t) if http::starts_with_request(t.payload) == Some(true) => {
                    reqs.push(t.payload.to_vec())
                }
                _ => {}
            }
        }
    }
    time("dns::parse (query or response)", 200_000, || {
        for m in &dns_msgs[..1] {
            black_box(dns::parse(m).is_ok());
        }
    });
    if let Some(h) = hellos.first() {
        time("tls::scan_client_stream (ClientHello)", 200_000, || {
            black_box(matches!(
                tls::scan_client_stream(h),
                tls::Progress::Hello(_)
            ));
        });
    }
    if let Some(r) = reqs.first() {
        time("http request stream (one request)", 200_000, || {
            let mut s = http::RequestStream::new(true);
            let (mut o, mut k) = (Vec::new(), Vec::new());
            s.feed(r, &mut o, &mut k);
            black_box(o.len());
        });
    }
    let mut hits = Vec::with_capacity(8);
    time("match dns.query: miss (www.example.org)", 2_000_000, || {
        hits.clear();
        rules.match_str(Field::DnsQuery, black_box("www.example.org"), &mut hits);
    });
    time("match dns.query: hit (a.b.pastebin.com)", 2_000_000, || {
        hits.clear();
        rules.match_str(Field::DnsQuery, black_box("a.b.pastebin.com"), &mut hits);
    });
    let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";
    time("match http.user_agent: browser (miss)", 1_000_000, || {
        hits.clear();
        rules.match_str(Field::HttpUserAgent, black_box(browser), &mut hits);
    });

    println!("== pipeline: eth-malicious.pcap replayed {repeat} times");
    let big = std::env::temp_dir().join("cloudtap-bench.pcap");
    let pkts = replicate(&cap, repeat, &big);
    let bytes = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    println!("  {pkts} packets, {:.1} MB", bytes as f64 / 1e6);
    let rules = Arc::new(rules);
    for threads in [1usize, 2] {
        let mut cfg = Config::new(vec![big.clone()]);
        cfg.threads = threads;
        let r = pipeline::run(&cfg, rules.clone(), Box::new(std::io::sink()));
        let c = &r.counters;
        println!(
            "  threads {threads}: {:.3} s  {:.3} Gbit/s  {:.3} Mpkt/s  alerts {}  records dns {} tls {} http {}  peak RSS so far {:.0} MB",
            r.elapsed_s,
            c.bytes as f64 * 8.0 / r.elapsed_s / 1e9,
            c.packets as f64 / r.elapsed_s / 1e6,
            c.alerts,
            c.dns_records,
            c.tls_records,
            c.http_records,
            peak_rss_mb()
        );
    }
    let _ = std::fs::remove_file(&big);
}
