//! Bad input never panics: property tests feeding random bytes, and mutated bytes of the real
//! captures, to the decoder and to each extractor; plus hostile files through the binary.

use cloudtap::capture::FileReader;
use cloudtap::decode::{self, Outcome};
use cloudtap::extract::{dns, http, tls};
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

const LINKTYPES: [u16; 20] = [
    0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 119, 127, 163, 192, 228, 229, 239, 276,
];

/// Every frame of a few real captures, with its link type.
fn real_frames() -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for name in [
        "eth-malicious.pcap",
        "vxlan-malicious.pcap",
        "erspan3-malicious.pcap",
        "sll2-malicious.pcap",
        "frag-ipv6-dns.pcap",
        "eth-edge-cases.pcap",
        "wlan-radiotap-malicious.pcap",
        "gtpu-malicious.pcap",
        "nflog-malicious.pcap",
    ] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name);
        let mut r = FileReader::open(&p).expect("capture opens");
        r.for_each(|pkt| out.push((pkt.linktype, pkt.data.to_vec())))
            .expect("capture reads");
    }
    out
}

fn exercise_payload(d: &[u8]) {
    let _ = dns::parse(d);
    let _ = tls::scan_client_stream(d);
    let mut s = http::RequestStream::new(false);
    let (mut out, mut sk) = (Vec::new(), Vec::new());
    s.feed(d, &mut out, &mut sk);
    let mut s = http::RequestStream::new(true);
    s.feed(d, &mut out, &mut sk);
}

fn exercise_frame(lt: u16, f: &[u8]) {
    if let Ok(Outcome::Packet(p)) = decode::decode(lt, f) {
        match p.transport {
            decode::Transport::Tcp(t) => exercise_payload(t.payload),
            decode::Transport::Udp { payload, .. } => exercise_payload(payload),
            decode::Transport::Other(_) => {}
        }
    }
}

/// The reader's shortcut to a packet's worker must agree with the full decoder on every
/// real frame it takes (tunnels included: VXLAN must not be sharded on the outer pair).
#[test]
fn fast_shard_agrees_with_the_decoder() {
    let (mut tcp, mut udp, mut declined_tunnels) = (0, 0, 0);
    for (lt, f) in real_frames() {
        let fast = decode::fast_shard(lt, &f);
        let Ok(Outcome::Packet(d)) = decode::decode(lt, &f) else {
            continue;
        };
        match fast {
            Some(h) => {
                assert_eq!(
                    h,
                    cloudtap::flow::shard_hash(d.src, d.dst),
                    "frame {f:02x?}"
                );
                match d.transport {
                    decode::Transport::Tcp(_) => tcp += 1,
                    decode::Transport::Udp { .. } => udp += 1,
                    decode::Transport::Other(_) => {}
                }
            }
            None if d.encap.tunnels > 0 => declined_tunnels += 1,
            None => {}
        }
    }
    assert!(
        tcp > 10 && udp > 10,
        "fast path taken: {tcp} TCP, {udp} UDP"
    );
    assert!(declined_tunnels > 0, "tunnelled frames seen");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn random_bytes_never_panic(lt in prop::sample::select(LINKTYPES.to_vec()), data in prop::collection::vec(any::<u8>(), 0..1600)) {
        exercise_frame(lt, &data);
        exercise_payload(&data);
    }

    #[test]
    fn mutated_real_frames_never_panic(idx in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        thread_local!(static FRAMES: Vec<(u16, Vec<u8>)> = real_frames());
        FRAMES.with(|frames| {
            let (lt, f) = &frames[idx.index(frames.len())];
            let mut f = f.clone();
            for (i, b) in &flips {
                let n = f.len();
                if n > 0 { f[i.index(n)] = *b; }
            }
            let keep = cut.index(f.len() + 1);
            exercise_frame(*lt, &f[..keep]);
            exercise_frame(*lt, &f);
        });
    }

    #[test]
    fn http_split_anywhere_gives_same_requests(split in 1usize..200) {
        let stream = b"GET /a HTTP/1.1\r\nHost: pastebin.com\r\nUser-Agent: curl/8.0\r\n\r\nPOST /b HTTP/1.1\r\nHost: x.org:8080\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.0\r\nUser-Agent: Wget/1.21\r\n\r\n";
        let split = split.min(stream.len());
        let mut s = http::RequestStream::new(true);
        let (mut out, mut sk) = (Vec::new(), Vec::new());
        s.feed(&stream[..split], &mut out, &mut sk);
        s.feed(&stream[split..], &mut out, &mut sk);
        prop_assert_eq!(out.len(), 3);
        prop_assert_eq!(out[0].host.as_deref(), Some("pastebin.com"));
        prop_assert_eq!(out[1].host_port, Some(8080));
        prop_assert_eq!(out[2].user_agent.as_deref(), Some("Wget/1.21"));
        prop_assert!(sk.is_empty());
    }
}

#[test]
fn oversized_http_head_is_skipped_and_stream_recovers() {
    let mut s = http::RequestStream::new(true);
    let (mut out, mut sk) = (Vec::new(), Vec::new());
    let mut big = b"GET / HTTP/1.1\r\nX-Junk: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', http::MAX_HEADER_BYTES + 10));
    s.feed(&big, &mut out, &mut sk);
    s.feed(
        b"\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
        &mut sk,
    );
    assert_eq!(sk[0], http::HttpSkip::HeaderTooLarge);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].uri, "/next");
    assert!(s.buffered() < 64);
}

#[test]
fn bogus_tls_lengths_are_rejected() {
    // record claims 65535 bytes
    assert!(matches!(
        tls::scan_client_stream(&[0x16, 3, 1, 0xff, 0xff, 1, 0, 0]),
        tls::Progress::Error(tls::TlsError::BadRecordLength(65535))
    ));
    // handshake claims 16 MB
    assert!(matches!(
        tls::scan_client_stream(&[0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]),
        tls::Progress::Error(tls::TlsError::HandshakeTooLong(_))
    ));
}

// ---- hostile files through the binary ----

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudtap"))
}

fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cloudtap-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmpdir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = vec![];
    h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&262_144u32.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

fn record(data: &[u8], caplen: u32) -> Vec<u8> {
    let mut r = vec![];
    r.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    r.extend_from_slice(&0u32.to_le_bytes());
    r.extend_from_slice(&caplen.to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(data);
    r
}

#[test]
fn bad_magic_and_empty_files_exit_1_with_a_message() {
    for (name, bytes) in [
        ("garbage.pcap", b"this is not a capture at all".to_vec()),
        ("empty.pcap", vec![]),
    ] {
        let p = tmp(name, &bytes);
        let o = bin().arg("-q").arg("-r").arg(&p).output().expect("runs");
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(name), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = bin()
        .args(["-q", "-r", "/nonexistent/x.pcap"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn truncated_captures_keep_what_was_read() {
    let full =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/eth-malicious.pcap"))
            .expect("read");
    let whole = bin()
        .args(["-q", "--types", "dns", "-r"])
        .arg(tmp("whole.pcap", &full))
        .output()
        .expect("runs");
    let whole_n = whole.stdout.iter().filter(|b| **b == b'\n').count();
    let mut last = 0;
    for cut in [30, 100, full.len() / 3, full.len() / 2, full.len() - 7] {
        let p = tmp(&format!("cut{cut}.pcap"), &full[..cut]);
        let o = bin()
            .args(["-q", "--types", "dns", "-r"])
            .arg(&p)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(1),
            "{err}"
        );
        let n = o.stdout.iter().filter(|b| **b == b'\n').count();
        assert!(n >= last && n <= whole_n, "records grow with the prefix");
        if cut > 24 {
            assert!(
                err.contains("warning") || n == whole_n,
                "truncation reported: {err}"
            );
        }
        last = n;
    }
}

#[test]
fn zero_length_oversized_and_garbage_packets_are_counted_not_fatal() {
    let mut f = pcap_header(1);
    f.extend(record(&[], 0));
    // Ethernet/IPv4/UDP to port 53 with garbage, TCP to 80 and 443 with garbage
    let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    for (proto, dport) in [(17u8, 53u16), (6, 80), (6, 443), (17, 443)] {
        let mut pkt = vec![0u8; 12];
        pkt.extend_from_slice(&[0x08, 0x00]);
        let l4len = if proto == 6 { 20 } else { 8 };
        let total = 20 + l4len + garbage.len();
        pkt.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            proto,
            0,
            0,
            127,
            0,
            0,
            1,
            127,
            0,
            0,
            2,
        ]);
        pkt.extend_from_slice(&40000u16.to_be_bytes());
        pkt.extend_from_slice(&dport.to_be_bytes());
        if proto == 6 {
            pkt.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            pkt.extend_from_slice(&((8 + garbage.len()) as u16).to_be_bytes());
            pkt.extend_from_slice(&[0, 0]);
        }
        pkt.extend_from_slice(&garbage);
        f.extend(record(&pkt, pkt.len() as u32));
    }
    let good = tmp("garbage-payloads.pcap", &f);
    let o = bin()
        .args(["--types", "alert,dns,tls,http", "-r"])
        .arg(&good)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("packets 5"), "{err}");
    assert!(o.stdout.is_empty(), "garbage yields no records");
    // A record that claims 100 MB is corruption: exit 1, position named, earlier packets kept.
    let mut bad = f.clone();
    bad.extend(record(&[0u8; 16], 100 << 20));
    let p = tmp("oversized.pcap", &bad);
    let o = bin().args(["-r"]).arg(&p).output().expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("packets 5") || err.contains("byte offset"),
        "{err}"
    );
}

/// Writes a classic pcap of Ethernet frames.
fn write_pcap(name: &str, frames: &[Vec<u8>]) -> std::path::PathBuf {
    let mut f = pcap_header(1);
    for (i, fr) in frames.iter().enumerate() {
        let mut r = record(fr, fr.len() as u32);
        // distinct, increasing timestamps (microseconds)
        r[4..8].copy_from_slice(&((i % 1_000_000) as u32).to_le_bytes());
        f.extend(r);
    }
    tmp(name, &f)
}

fn tcp_frame(sport: u16, dport: u16, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        [127, 0, 0, 1],
        [127, 0, 0, 2],
        64,
    );
    let b = if syn {
        b.tcp(sport, dport, seq, 65_535).syn()
    } else {
        b.tcp(sport, dport, seq, 65_535).ack(1).psh()
    };
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build frame");
    out
}

#[test]
fn out_of_order_flood_is_held_within_the_reassembly_cap() {
    // 400 connections, each opening with a SYN and then sending only future segments (the
    // first segment never arrives), 20 KB each: 8 MB of would-be buffered data.
    let mut frames = Vec::new();
    for c in 0..400u16 {
        frames.push(tcp_frame(20_000 + c, 80, 1000, true, &[]));
        for s in 0..20u32 {
            frames.push(tcp_frame(
                20_000 + c,
                80,
                1000 + 2000 + s * 1000,
                false,
                &[b'A'; 1000],
            ));
        }
    }
    let p = write_pcap("ooo-flood.pcap", &frames);
    let rules = std::sync::Arc::new(cloudtap::detect::load_bundled().expect("rules"));
    let mut cfg = cloudtap::pipeline::Config::new(vec![p]);
    cfg.threads = 1;
    cfg.max_reassembly = 1 << 20;
    let report = cloudtap::pipeline::run(&cfg, rules, Box::new(std::io::sink()));
    let c = &report.counters;
    assert_eq!(c.packets, 400 * 21);
    assert!(
        c.skips.get("reassembly_memcap") > 0,
        "{:?}",
        c.skips.sorted()
    );
    assert!(report.files_failed.is_empty());
}

#[test]
fn flow_flood_is_capped_and_counted() {
    let frames: Vec<Vec<u8>> = (0..5000u16)
        .map(|c| tcp_frame(1024 + c, 443, 7, true, &[]))
        .collect();
    let p = write_pcap("flow-flood.pcap", &frames);
    let rules = std::sync::Arc::new(cloudtap::detect::load_bundled().expect("rules"));
    let mut cfg = cloudtap::pipeline::Config::new(vec![p]);
    cfg.threads = 1;
    cfg.max_flows = 1000;
    let report = cloudtap::pipeline::run(&cfg, rules, Box::new(std::io::sink()));
    assert_eq!(report.counters.flows, 5000);
    assert_eq!(report.counters.flows_evicted_cap, 4000);
}
