//! The 802.11 link types (plain, radiotap, PPI, AVS, Prism), NFLOG, and the GTP-U,
//! GRE-in-UDP, Aruba GRE and AYIYA tunnels, over their captures in captures/ (see
//! captures/README.md): every frame of a rewrapped capture decodes to exactly the packet
//! its Ethernet original (captures/eth-malicious.pcap) decodes to, the real NFLOG capture
//! decodes whole, and the run summary counts what could not be read under its own name.
//! (That each one yields what tshark finds and alerts like eth-malicious is checked by
//! tests/captures.rs over tests/expected/.)

use cloudtap::capture::FileReader;
use cloudtap::decode::{self, Outcome, Transport};
use std::path::{Path, PathBuf};
use std::process::Command;

fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// Every frame of a capture with its link type.
fn frames(name: &str) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut r = FileReader::open(&cap(name)).expect("capture opens");
    r.for_each(|p| out.push((p.linktype, p.data.to_vec())))
        .expect("capture reads");
    out
}

/// What the flow and extraction stages get from a frame: addresses, transport and
/// payload, and the number of tunnels passed through.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    tunnels: u8,
}

fn seen(lt: u16, f: &[u8]) -> Result<Seen, String> {
    match decode::decode(lt, f) {
        Ok(Outcome::Packet(d)) => {
            let (proto, sport, dport, payload) = match d.transport {
                Transport::Tcp(t) => (6, t.sport, t.dport, t.payload.to_vec()),
                Transport::Udp {
                    sport,
                    dport,
                    payload,
                } => (17, sport, dport, payload.to_vec()),
                Transport::Other(p) => (p, 0, 0, Vec::new()),
            };
            Ok(Seen {
                src: d.src,
                dst: d.dst,
                proto,
                sport,
                dport,
                payload,
                tunnels: d.encap.tunnels,
            })
        }
        Ok(Outcome::Fragment(_)) => Err("fragment".into()),
        Ok(Outcome::NotIp) => Err("not ip".into()),
        Err(e) => Err(e.reason().into()),
    }
}

/// (capture, link type in its header, frames before the first rewrapped one, tunnels)
const REWRAPPED: [(&str, u16, usize, u8); 9] = [
    ("wlan-plain-malicious.pcap", 105, 0, 0),
    ("wlan-radiotap-malicious.pcap", 127, 4, 0),
    ("wlan-ppi-malicious.pcap", 192, 0, 0),
    ("wlan-avs-malicious.pcap", 163, 0, 0),
    ("wlan-prism-malicious.pcap", 119, 0, 0),
    ("gtpu-malicious.pcap", 1, 0, 1),
    ("gre-udp-malicious.pcap", 1, 0, 1),
    ("aruba-gre-wlan-malicious.pcap", 1, 0, 1),
    ("ayiya-malicious.pcap", 1, 0, 1),
];

#[test]
fn rewrapped_frames_decode_to_their_ethernet_originals() {
    let originals: Vec<Seen> = frames("eth-malicious.pcap")
        .iter()
        .map(|(lt, f)| seen(*lt, f).expect("the original decodes"))
        .collect();
    assert_eq!(originals.len(), 130);
    for (name, lt, extra, tunnels) in REWRAPPED {
        let got = frames(name);
        assert_eq!(got.len(), originals.len() + extra, "{name}");
        for (i, ((flt, f), orig)) in got[extra..].iter().zip(&originals).enumerate() {
            assert_eq!(*flt, lt, "{name} frame {i}");
            let s = seen(*flt, f).unwrap_or_else(|e| panic!("{name} frame {i}: {e}"));
            assert_eq!(s.tunnels, tunnels, "{name} frame {i}");
            let want = Seen {
                tunnels,
                payload: orig.payload.clone(),
                ..*orig
            };
            assert_eq!(s, want, "{name} frame {i}");
        }
    }
}

#[test]
fn radiotap_capture_frames_without_a_packet_are_skips() {
    let got: Vec<String> = frames("wlan-radiotap-malicious.pcap")[..4]
        .iter()
        .map(|(lt, f)| {
            seen(*lt, f)
                .map(|_| "packet".to_string())
                .unwrap_or_else(|e| e)
        })
        .collect();
    assert_eq!(
        got,
        ["wlan_mgmt", "wlan_ctrl", "wlan_protected", "wlan_null_data"]
    );
}

#[test]
fn real_nflog_capture_decodes_every_packet() {
    let got = frames("nflog-malicious.pcap");
    assert!(got.len() >= 100, "{} frames", got.len());
    let lab: [std::net::IpAddr; 2] = ["10.99.0.1".parse().unwrap(), "10.99.0.2".parse().unwrap()];
    let (mut tcp, mut udp) = (0, 0);
    for (i, (lt, f)) in got.iter().enumerate() {
        assert_eq!(*lt, 239);
        let s = seen(*lt, f).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert!(lab.contains(&s.src) && lab.contains(&s.dst) && s.src != s.dst);
        assert_eq!(s.tunnels, 0);
        match s.proto {
            6 => tcp += 1,
            17 => udp += 1,
            p => panic!("frame {i}: protocol {p}"),
        }
    }
    assert!(tcp > 50 && udp > 10, "{tcp} TCP, {udp} UDP");
}

/// The run summary (stderr without -q): the "decoded" figures and the skip counters.
fn summary(name: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cloudtap"))
        .args(["--types", "alert", "--threads", "2", "-r"])
        .arg(cap(name))
        .output()
        .expect("cloudtap runs");
    assert!(o.status.success(), "{name}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Skip counters of a summary, as (count, reason).
fn skips(s: &str) -> Vec<(u64, String)> {
    let mut v = Vec::new();
    let mut on = false;
    for line in s.lines() {
        if line.trim_start().starts_with("skipped (by reason)") {
            on = true;
            continue;
        }
        if on {
            let mut it = line.split_whitespace();
            match (it.next().and_then(|n| n.parse().ok()), it.next(), it.next()) {
                (Some(n), Some(r), None) => v.push((n, r.to_string())),
                _ => on = false,
            }
        }
    }
    v
}

/// Skips other than the decoder's (the detection stage counts some) are the same as for
/// the Ethernet original; the decoder adds only what a capture holds beyond it.
#[test]
fn run_summary_counts_decoded_packets_and_named_skips() {
    let base = skips(&summary("eth-malicious.pcap"));
    for (name, _, _, tunnels) in REWRAPPED {
        let s = summary(name);
        let want = format!(
            "decoded 130  tunnelled {}  not-ip 0 ",
            if tunnels > 0 { 130 } else { 0 }
        );
        assert!(s.contains(&want), "{name}: {s}");
        let mut want_skips = base.clone();
        if name.contains("radiotap") {
            for r in ["wlan_ctrl", "wlan_mgmt", "wlan_null_data", "wlan_protected"] {
                want_skips.push((1, r.to_string()));
            }
        }
        want_skips.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(skips(&s), want_skips, "{name}: {s}");
    }
    let s = summary("nflog-malicious.pcap");
    let n = frames("nflog-malicious.pcap").len();
    assert!(
        s.contains(&format!("decoded {n}  tunnelled 0  not-ip 0 ")),
        "{s}"
    );
    assert_eq!(skips(&s), base, "{s}");
}
