//! Per-direction TCP reassembly: in-order delivery of payload to the application parser,
//! retransmissions trimmed, a bounded out-of-order queue, and a counted gap skip when the
//! queue fills (a lost segment must not stall a stream forever).

/// Most out-of-order segments held per direction.
pub const MAX_OOO_SEGMENTS: usize = 32;
/// Most out-of-order bytes held per direction.
pub const MAX_OOO_BYTES: usize = 128 * 1024;

#[derive(Debug, Default)]
pub struct TcpStream {
    /// Next expected sequence number; `None` until the first SYN or data segment.
    next: Option<u32>,
    /// Whether the stream start (SYN) was seen.
    pub synced: bool,
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
}

/// Sequence-space comparison: `a - b` as a signed distance.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SegmentOutcome {
    pub ooo_dropped: u64,
    pub gaps: u64,
}

impl TcpStream {
    pub fn on_syn(&mut self, seq: u32) {
        self.next = Some(seq.wrapping_add(1));
        self.synced = true;
        self.ooo.clear();
        self.ooo_bytes = 0;
    }

    /// Drops the out-of-order queue (memory pressure); the stream continues from `next`.
    pub fn drop_ooo(&mut self) -> usize {
        let n = self.ooo.len();
        self.ooo = Vec::new();
        self.ooo_bytes = 0;
        n
    }

    pub fn buffered(&self) -> usize {
        self.ooo_bytes
    }

    /// Accepts a segment; calls `deliver` with each contiguous run of new bytes in order.
    pub fn segment<F: FnMut(&[u8])>(
        &mut self,
        seq: u32,
        payload: &[u8],
        mut deliver: F,
    ) -> SegmentOutcome {
        let mut out = SegmentOutcome::default();
        if payload.is_empty() {
            return out;
        }
        let next = *self.next.get_or_insert(seq);
        let d = seq_diff(seq, next);
        if d <= 0 {
            let skip = (-d) as usize;
            if skip >= payload.len() {
                return out; // pure retransmission
            }
            let fresh = &payload[skip..];
            deliver(fresh);
            self.next = Some(next.wrapping_add(fresh.len() as u32));
            self.drain(&mut deliver);
        } else {
            // Future segment: hold it, bounded.
            if self.ooo.len() >= MAX_OOO_SEGMENTS || self.ooo_bytes + payload.len() > MAX_OOO_BYTES
            {
                // Give up on the hole: jump to the earliest held segment.
                out.gaps += 1;
                if let Some(min) = self
                    .ooo
                    .iter()
                    .map(|(s, _)| *s)
                    .min_by(|a, b| seq_diff(*a, next).cmp(&seq_diff(*b, next)))
                {
                    self.next = Some(min);
                    self.drain(&mut deliver);
                }
                if self.ooo.len() >= MAX_OOO_SEGMENTS
                    || self.ooo_bytes + payload.len() > MAX_OOO_BYTES
                {
                    out.ooo_dropped += 1;
                    return out;
                }
                let inner = self.segment(seq, payload, deliver);
                out.gaps += inner.gaps;
                out.ooo_dropped += inner.ooo_dropped;
                return out;
            }
            self.ooo_bytes += payload.len();
            self.ooo.push((seq, payload.to_vec()));
        }
        out
    }

    fn drain<F: FnMut(&[u8])>(&mut self, deliver: &mut F) {
        // Each pass removes one held segment, so this ends.
        loop {
            let Some(next) = self.next else { return };
            let Some(i) = self.ooo.iter().position(|(s, _)| seq_diff(*s, next) <= 0) else {
                return;
            };
            let (s, data) = self.ooo.swap_remove(i);
            self.ooo_bytes -= data.len();
            let skip = seq_diff(next, s) as usize;
            if skip < data.len() {
                deliver(&data[skip..]);
                self.next = Some(next.wrapping_add((data.len() - skip) as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segs: &[(u32, &[u8])]) -> Vec<u8> {
        let mut s = TcpStream::default();
        s.on_syn(99);
        let mut got = vec![];
        for (seq, p) in segs {
            s.segment(*seq, p, |d| got.extend_from_slice(d));
        }
        got
    }

    #[test]
    fn reorders_and_trims() {
        assert_eq!(run(&[(100, b"abc"), (103, b"def")]), b"abcdef");
        assert_eq!(run(&[(103, b"def"), (100, b"abc")]), b"abcdef");
        assert_eq!(
            run(&[(100, b"abc"), (100, b"abc"), (102, b"cde")]),
            b"abcde"
        );
        assert_eq!(
            run(&[(106, b"ghi"), (103, b"def"), (100, b"abc")]),
            b"abcdefghi"
        );
    }

    #[test]
    fn gap_is_skipped_when_queue_is_full() {
        let mut s = TcpStream::default();
        s.on_syn(0);
        let mut got = 0usize;
        let mut gaps = 0;
        // segment 1..=10 missing; then many future segments
        for i in 0..(MAX_OOO_SEGMENTS as u32 + 5) {
            let o = s.segment(100 + i * 10, &[b'x'; 10], |d| got += d.len());
            gaps += o.gaps;
        }
        assert!(gaps >= 1);
        assert!(got > 0);
        assert!(s.buffered() <= MAX_OOO_BYTES);
    }
}
