//! The on-disk spool: round trip, damage found and counted, cursor across reopen, size cap,
//! drop_oldest.

use cloudtap::output::spool::{Spool, SpoolError};
use cloudtap::output::transport::{Kind, Out, OutMeta};
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

fn ev(i: u64, src: Option<IpAddr>, kind: Kind) -> Out {
    Out {
        line: Arc::from(format!("{{\"event_id\":{i},\"pad\":\"{}\"}}", "x".repeat(40)).as_bytes()),
        meta: OutMeta {
            kind,
            severity: (i % 4) as u8,
            flow_id: i * 7919,
            src,
            ts_ns: 1_700_000_000_000_000_000 + i,
        },
    }
}

fn ids(v: &[Out]) -> Vec<u64> {
    v.iter()
        .map(|o| {
            let j: serde_json::Value = serde_json::from_slice(&o.line).unwrap();
            j["event_id"].as_u64().unwrap()
        })
        .collect()
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_every_meta_variant() {
    let d = tempfile::tempdir().unwrap();
    let srcs: [Option<IpAddr>; 3] = [
        None,
        Some("192.0.2.7".parse().unwrap()),
        Some("2001:db8::1".parse().unwrap()),
    ];
    let mut want = Vec::new();
    {
        let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(rep.events, 0);
        let mut i = 0;
        for k in Kind::ALL {
            for s in srcs {
                let o = ev(i, s, k);
                sp.append(&o).unwrap();
                want.push(o);
                i += 1;
            }
        }
        assert_eq!(sp.len(), want.len() as u64);
        sp.sync().unwrap();
    }
    let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!((rep.events, rep.corrupt), (want.len() as u64, 0));
    assert_eq!(rep.bytes, sp.bytes());
    let got = sp.peek_batch(1000).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.meta, w.meta);
        assert_eq!(&g.line[..], &w.line[..]);
    }
    sp.consume(got.len()).unwrap();
    assert!(sp.is_empty());
    assert_eq!(sp.bytes(), 0);
    // An empty spool keeps no segment on disk.
    assert!(segments(d.path()).is_empty());
}

#[test]
fn torn_tail_and_flipped_byte_are_counted_and_the_rest_survive() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut sp, _) = Spool::open(d.path(), 1 << 20).unwrap();
        for i in 0..10 {
            sp.append(&ev(i, None, Kind::Alert)).unwrap();
        }
    }
    let seg = segments(d.path()).pop().unwrap();
    let mut b = fs::read(&seg).unwrap();
    let rec = b.len() / 10;
    // Flip one byte in the payload of record 3; tear record 9 in half.
    b[3 * rec + 30] ^= 0x55;
    b.truncate(9 * rec + rec / 2);
    fs::write(&seg, &b).unwrap();
    let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(rep.corrupt, 2, "{rep:?}");
    assert_eq!(rep.events, 8);
    let got = ids(&sp.peek_batch(100).unwrap());
    assert_eq!(got, [0, 1, 2, 4, 5, 6, 7, 8]);
    // The damage was cut out: opening again finds none.
    drop(sp);
    let (_sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!((rep.events, rep.corrupt), (8, 0));
}

#[test]
fn flipped_length_field_resyncs_to_the_next_record() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut sp, _) = Spool::open(d.path(), 1 << 20).unwrap();
        for i in 0..6 {
            sp.append(&ev(i, None, Kind::Dns)).unwrap();
        }
    }
    let seg = segments(d.path()).pop().unwrap();
    let mut b = fs::read(&seg).unwrap();
    let rec = b.len() / 6;
    b[2 * rec + 1] ^= 0x10; // record 2's length
    fs::write(&seg, &b).unwrap();
    let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(rep.corrupt, 1);
    assert_eq!(ids(&sp.peek_batch(100).unwrap()), [0, 1, 3, 4, 5]);
}

#[test]
fn cursor_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut sp, _) = Spool::open(d.path(), 1 << 20).unwrap();
        for i in 0..20 {
            sp.append(&ev(i, None, Kind::Tls)).unwrap();
        }
        assert_eq!(ids(&sp.peek_batch(7).unwrap()), (0..7).collect::<Vec<_>>());
        sp.consume(7).unwrap();
        // No sync: the cursor is written at each consume (a kill -9 here replays nothing).
    }
    let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!((rep.events, rep.corrupt), (13, 0));
    assert_eq!(
        ids(&sp.peek_batch(100).unwrap()),
        (7..20).collect::<Vec<_>>()
    );
    // Appending after reopen keeps the order.
    sp.append(&ev(20, None, Kind::Tls)).unwrap();
    sp.consume(5).unwrap();
    assert_eq!(
        ids(&sp.peek_batch(100).unwrap()),
        (12..21).collect::<Vec<_>>()
    );
}

#[test]
fn segments_rotate_and_are_deleted_when_read() {
    let d = tempfile::tempdir().unwrap();
    // 64 KiB cap: segments of 16 KiB.
    let (mut sp, _) = Spool::open(d.path(), 64 << 10).unwrap();
    let mut n = 0;
    while sp.append(&ev(n, None, Kind::Http)).is_ok() {
        n += 1;
        assert!(n < 10_000);
    }
    assert!(segments(d.path()).len() >= 4, "{:?}", segments(d.path()));
    let mut seen = Vec::new();
    for _ in 0..100 {
        let b = sp.peek_batch(50).unwrap();
        if b.is_empty() {
            break;
        }
        seen.extend(ids(&b));
        sp.consume(b.len()).unwrap();
        if seen.len() as u64 == n / 2 {
            break;
        }
    }
    assert!(segments(d.path()).len() <= 3);
    drop(sp);
    let (mut sp, rep) = Spool::open(d.path(), 64 << 10).unwrap();
    assert_eq!(rep.events + seen.len() as u64, n);
    for _ in 0..100 {
        let b = sp.peek_batch(50).unwrap();
        if b.is_empty() {
            break;
        }
        seen.extend(ids(&b));
        sp.consume(b.len()).unwrap();
    }
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
}

#[test]
fn size_cap_full_and_drop_oldest() {
    let d = tempfile::tempdir().unwrap();
    let (mut sp, _) = Spool::open(d.path(), 4096).unwrap();
    let mut n = 0;
    let err = loop {
        match sp.append(&ev(n, None, Kind::Alert)) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000);
    };
    assert!(matches!(err, SpoolError::Full { .. }), "{err}");
    assert!(sp.bytes() <= 4096);
    assert_eq!(sp.len(), n);
    assert_eq!(sp.drop_oldest(3).unwrap(), 3);
    assert_eq!(sp.len(), n - 3);
    sp.append(&ev(n, None, Kind::Alert)).unwrap();
    let got = ids(&sp.peek_batch(1000).unwrap());
    assert_eq!(got, (3..=n).collect::<Vec<_>>());
    assert_eq!(sp.drop_oldest(10_000).unwrap(), n - 2);
    assert!(sp.is_empty());
}

#[test]
fn one_process_per_spool() {
    let d = tempfile::tempdir().unwrap();
    let (_a, _) = Spool::open(d.path(), 4096).unwrap();
    assert!(matches!(
        Spool::open(d.path(), 4096),
        Err(SpoolError::Locked(_))
    ));
}

#[test]
fn prepend_puts_older_events_first_and_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut sp, _) = Spool::open(d.path(), 1 << 20).unwrap();
        for i in 0..5 {
            sp.append(&ev(i, None, Kind::Alert)).unwrap();
        }
        sp.consume(2).unwrap();
        sp.prepend(&[ev(100, None, Kind::Alert), ev(101, None, Kind::Alert)])
            .unwrap();
        assert_eq!(sp.len(), 5);
        // Appends after a prepend go to the rewritten segment's end.
        sp.append(&ev(5, None, Kind::Alert)).unwrap();
        assert_eq!(ids(&sp.peek_batch(100).unwrap()), [100, 101, 2, 3, 4, 5]);
    }
    let (mut sp, rep) = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!((rep.events, rep.corrupt), (6, 0));
    assert_eq!(ids(&sp.peek_batch(100).unwrap()), [100, 101, 2, 3, 4, 5]);
}
