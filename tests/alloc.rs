//! Per-packet work that yields nothing allocates nothing: packets of a TCP stream and a UDP
//! exchange carrying nothing cloudtap inspects (first probed, then bypassed) never touch the
//! allocator. Measured with a counting global allocator: the
//! same flows with 2,000 more such packets must cost no more allocations.
//!
//! With one thread the reader does all packet work on the calling thread (Suricata's single
//! runmode), so the allocations counted are that thread's: the writer and the sink threads
//! run on their own clocks (queue wake-ups, channel wakers), which is not per-packet work.

use cloudtap::detect;
use cloudtap::pipeline::{self, Config};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the thread that runs the packet path; only its allocations are counted.
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.with(|c| c.get()) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// relaxed atomic with no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];

fn tcp(from_client: bool, seq: u32, ack: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp) = if from_client {
        (CLIENT, SERVER, 40_000, 7_000)
    } else {
        (SERVER, CLIENT, 7_000, 40_000)
    };
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(s, d, 64)
        .tcp(sp, dp, seq, 65_535);
    let b = if syn { b.syn() } else { b.ack(ack).psh() };
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("frame");
    out
}

fn udp(from_client: bool, payload: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp) = if from_client {
        (CLIENT, SERVER, 41_000, 9_000)
    } else {
        (SERVER, CLIENT, 9_000, 41_000)
    };
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(s, d, 64)
        .udp(sp, dp);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("frame");
    out
}

/// A classic pcap: one TCP and one UDP flow carrying opaque bytes, then `extra` more
/// packets of each, one millisecond apart.
fn capture(extra: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    let opaque: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(97) | 0x80).collect();
    let mut frames = vec![
        tcp(true, 1000, 0, true, &[]),
        tcp(false, 5000, 0, true, &[]),
    ];
    let (mut cseq, mut sseq) = (1001u32, 5001u32);
    for i in 0..(4 + extra) {
        let from_client = i % 2 == 0;
        if from_client {
            frames.push(tcp(true, cseq, sseq, false, &opaque));
            cseq += opaque.len() as u32;
        } else {
            frames.push(tcp(false, sseq, cseq, false, &opaque));
            sseq += opaque.len() as u32;
        }
        frames.push(udp(from_client, &opaque));
    }
    for (i, fr) in frames.iter().enumerate() {
        let us = i as u32 * 1000;
        f.extend_from_slice(&(1_700_000_000 + us / 1_000_000).to_le_bytes());
        f.extend_from_slice(&(us % 1_000_000).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        f.extend_from_slice(fr);
    }
    f
}

fn allocations(extra: u32, rules: &Arc<detect::Ruleset>) -> (u64, u64) {
    let path = std::env::temp_dir().join(format!(
        "cloudtap-alloc-{}-{extra}.pcap",
        std::process::id()
    ));
    std::fs::write(&path, capture(extra)).expect("write");
    let mut cfg = Config::new(vec![path.clone()]);
    cfg.threads = 1;
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTED.with(|c| c.set(true));
    let r = pipeline::run(&cfg, rules.clone(), Box::new(std::io::sink()));
    COUNTED.with(|c| c.set(false));
    let n = ALLOCS.load(Ordering::Relaxed) - before;
    let _ = std::fs::remove_file(&path);
    assert!(r.files_failed.is_empty(), "{:?}", r.files_failed);
    (n, r.counters.bypassed_packets)
}

#[test]
fn bypassed_packets_allocate_nothing() {
    let rules = Arc::new(detect::load_bundled().expect("bundled"));
    // Warm up once (lazy statics, thread-local buffers of the runtime).
    let _ = allocations(10, &rules);
    let (few, bypassed_few) = allocations(10, &rules);
    let (many, bypassed_many) = allocations(2_010, &rules);
    eprintln!("allocations: {few} with 10 extra packets per flow, {many} with 2,010; bypassed {bypassed_few} / {bypassed_many}");
    // The TCP stream is watched for a late ClientHello or request for its first 16 KiB per
    // direction (about 820 of these packets), then bypassed; the UDP flow after 4 misses.
    // Neither the watching nor the bypassed packets may allocate.
    assert!(
        bypassed_many >= bypassed_few + 3_000,
        "the extra packets were bypassed: {bypassed_few} -> {bypassed_many}"
    );
    assert!(
        many <= few + 2,
        "4,000 more bypassed packets cost {} more allocations ({few} -> {many})",
        many.saturating_sub(few)
    );
}
