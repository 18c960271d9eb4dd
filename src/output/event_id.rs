//! `cloudtap.event_id`: a unique id on every event, so a SIEM can drop the duplicates that
//! at-least-once delivery allows (a batch replayed from the spool after a crash).
//!
//! Rule: 32 lowercase hex digits = a 64-bit random run prefix (from the kernel's random
//! source, read once per run) followed by a 64-bit counter. Ids never repeat within a run,
//! and two runs share a prefix with odds of 2^-64 per pair; no coordination between sensors
//! is needed. Ids are assigned when an event is serialised, once, before any sink sees it,
//! so every sink (and every replay) carries the same id for the same event.

use std::io::Read;

pub struct EventIds {
    prefix: u64,
    next: u64,
}

impl EventIds {
    pub fn new() -> EventIds {
        EventIds {
            prefix: run_prefix(),
            next: 0,
        }
    }

    /// The next id, as 32 hex digits.
    pub fn next_id(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex(self.prefix, &mut out[..16]);
        hex(self.next, &mut out[16..]);
        self.next = self.next.wrapping_add(1);
        out
    }
}

impl Default for EventIds {
    fn default() -> Self {
        EventIds::new()
    }
}

fn hex(v: u64, out: &mut [u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate() {
        *o = D[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// 64 random bits from the kernel; should /dev/urandom be unreadable (a chroot without it),
/// the clock, the process id and a stack address mixed by SplitMix64, still distinct per run.
fn run_prefix() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let mut z = t ^ ((std::process::id() as u64) << 32) ^ (&local as *const u8 as u64);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_hex_ids() {
        let mut a = EventIds::new();
        let mut b = EventIds::new();
        let x = a.next_id();
        let y = a.next_id();
        assert_ne!(x, y);
        assert_eq!(x[..16], y[..16]);
        assert_ne!(x[..16], b.next_id()[..16]);
        assert!(x
            .iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(&x[16..], b"0000000000000000");
        assert_eq!(&y[16..], b"0000000000000001");
    }
}
