//! Criterion micro-benchmarks: `cargo bench --bench micro` (add a filter such as `match_scale`
//! to run one group).
//!
//! - `decode`, `extract`: the decoder and each extractor on real bytes from captures/.
//! - `match_bundled`: the matchers with the bundled packs.
//! - `match_scale`: the matchers with issue 3's scale set (1,000,000 domain suffixes, 200,000
//!   CIDRs, 2,000 user-agent patterns); throughput is reported in lookups per second.
//! - `load`: compiling the bundled packs, and the scale set from its plain lists.

use cloudtap::decode::{self, Outcome, Transport};
use cloudtap::detect::{self, Field};
use cloudtap::extract::{dns, http, tls};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

#[path = "common/scale.rs"]
mod scale_lists;

#[path = "common/frames.rs"]
mod common_frames;
use common_frames::frames;

fn capture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

fn decode_and_extract(c: &mut Criterion) {
    let fr = frames(&capture("eth-malicious.pcap"));
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(fr.len() as u64));
    g.bench_function("every frame of eth-malicious", |b| {
        b.iter(|| {
            for (lt, f) in &fr {
                black_box(decode::decode(*lt, f).is_ok());
            }
        })
    });
    g.finish();

    let (mut dns_q, mut dns_r, mut hellos, mut reqs) = (None, None, None, None);
    for (lt, f) in &fr {
        if let Ok(Outcome::Packet(p)) = decode::decode(*lt, f) {
            match p.transport {
                Transport::Udp { payload, .. } => {
                    if let Ok(m) = dns::parse(payload) {
                        let slot = if m.is_response() {
                            &mut dns_r
                        } else {
                            &mut dns_q
                        };
                        slot.get_or_insert_with(|| payload.to_vec());
                    }
                }
                Transport::Tcp(t)
                    if tls::looks_like_tls(t.payload) && t.payload.get(5) == Some(&1) =>
                {
                    hellos.get_or_insert_with(|| t.payload.to_vec());
                }
                Transport::Tcp(t) if http::starts_with_request(t.payload) == Some(true) => {
                    reqs.get_or_insert_with(|| t.payload.to_vec());
                }
                _ => {}
            }
        }
    }
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    if let Some(m) = &dns_q {
        g.bench_function("dns::parse query", |b| {
            b.iter(|| black_box(dns::parse(m).is_ok()))
        });
    }
    if let Some(m) = &dns_r {
        g.bench_function("dns::parse response", |b| {
            b.iter(|| black_box(dns::parse(m).is_ok()))
        });
    }
    if let Some(h) = &hellos {
        g.bench_function("tls ClientHello + JA3/JA4", |b| {
            b.iter(|| {
                black_box(matches!(
                    tls::scan_client_stream(h),
                    tls::Progress::Hello(_)
                ))
            })
        });
    }
    if let Some(r) = &reqs {
        g.bench_function("http request head", |b| {
            b.iter(|| {
                let mut s = http::RequestStream::new(true);
                let (mut o, mut k) = (Vec::new(), Vec::new());
                s.feed(r, &mut o, &mut k);
                black_box(o.len())
            })
        });
    }
    g.finish();
}

fn match_bundled(c: &mut Criterion) {
    let rules = detect::load_bundled().expect("bundled packs");
    let mut g = c.benchmark_group("match_bundled");
    g.throughput(Throughput::Elements(1));
    let mut hits = Vec::with_capacity(8);
    for (name, field, v) in [
        ("dns.query miss", Field::DnsQuery, "www.example.org"),
        ("dns.query hit", Field::DnsQuery, "a.b.pastebin.com"),
        (
            "user_agent browser (miss)",
            Field::HttpUserAgent,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
        ),
        ("user_agent hit", Field::HttpUserAgent, "python-requests/2.31.0"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                hits.clear();
                rules.match_str(field, black_box(v), &mut hits);
                hits.len()
            })
        });
    }
    for (name, ip) in [("ip cloud range", "52.95.110.1"), ("ip miss", "192.0.2.1")] {
        let ip: std::net::IpAddr = ip.parse().expect("ip");
        g.bench_function(name, |b| {
            b.iter(|| {
                hits.clear();
                rules.match_ip(black_box(ip), &mut hits);
                hits.len()
            })
        });
    }
    g.finish();
}

fn match_scale(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("cloudtap-criterion-lists");
    let (mut rng, names) = scale_lists::write_scale_lists(&dir);
    let rules = detect::load_dir(&dir).expect("scale lists");
    let (buf, spans) = scale_lists::domain_probes(&mut rng, &names);
    let addrs = scale_lists::ip_probes(&mut rng);
    let mut g = c.benchmark_group("match_scale");
    g.measurement_time(Duration::from_secs(4));
    let mut hits = Vec::with_capacity(8);
    g.throughput(Throughput::Elements(spans.len() as u64));
    g.bench_function("domain: 100k names, 1 in 10 listed", |b| {
        b.iter(|| {
            let mut n = 0;
            for &(at, len) in &spans {
                hits.clear();
                rules.match_str(Field::DnsQuery, black_box(&buf[at..at + len]), &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(addrs.len() as u64));
    g.bench_function("ip: 100k random addresses", |b| {
        b.iter(|| {
            let mut n = 0;
            for a in &addrs {
                hits.clear();
                rules.match_ip(black_box(*a), &mut hits);
                n += hits.len();
            }
            n
        })
    });
    let hot = &addrs[..2000];
    g.throughput(Throughput::Elements(hot.len() as u64));
    g.bench_function("ip: 2k distinct destinations", |b| {
        b.iter(|| {
            let mut n = 0;
            for a in hot {
                hits.clear();
                rules.match_ip(black_box(*a), &mut hits);
                n += hits.len();
            }
            n
        })
    });
    g.throughput(Throughput::Elements(1));
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    g.bench_function("user_agent: browser vs 2,000 patterns", |b| {
        b.iter(|| {
            hits.clear();
            rules.match_str(Field::HttpUserAgent, black_box(browser), &mut hits);
            hits.len()
        })
    });
    g.finish();
    drop(rules);

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("bundled packs", |b| {
        b.iter(|| detect::load_bundled().expect("bundled"))
    });
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("scale lists (1M domains, 200k CIDRs, 2k agents)", |b| {
        b.iter_batched(
            || (),
            |_| detect::load_dir(&dir).expect("scale"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, decode_and_extract, match_bundled, match_scale);
criterion_main!(benches);
