//! Per-direction TCP reassembly: in-order delivery of payload to the application parser,
//! retransmissions trimmed, a bounded out-of-order queue, and a counted gap skip when the
//! queue fills (a lost segment must not stall a stream forever) or when the peer acknowledges
//! bytes the capture never had.
//!
//! Data on a SYN or SYN-ACK (TCP Fast Open, RFC 7413) is stream data: it starts one sequence
//! number after the SYN's own, and enters reassembly like any other segment.

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
    /// Sequence number of the SYN while nothing has been delivered yet: a segment carrying
    /// this number is the SYN itself (with Fast Open data), whose data starts at ISN + 1.
    syn_seq: Option<u32>,
    ooo: Vec<(u32, Vec<u8>)>,
    ooo_bytes: usize,
}

/// Sequence-space comparison: `a - b` as a signed distance.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// What the reassembler hands to the application parser, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// New in-order bytes.
    Data(&'a [u8]),
    /// This many bytes were skipped (lost to the capture); the next `Data` follows the hole.
    Gap(u32),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SegmentOutcome {
    pub ooo_dropped: u64,
    pub gaps: u64,
}

impl TcpStream {
    pub fn on_syn(&mut self, seq: u32) {
        self.next = Some(seq.wrapping_add(1));
        self.syn_seq = Some(seq);
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

    /// Accepts a segment; calls `deliver` with each contiguous run of new bytes in order
    /// (holes skipped silently; [`TcpStream::segment_events`] reports them).
    pub fn segment<F: FnMut(&[u8])>(
        &mut self,
        seq: u32,
        payload: &[u8],
        mut deliver: F,
    ) -> SegmentOutcome {
        self.segment_events(seq, payload, |d| {
            if let Delivery::Data(b) = d {
                deliver(b);
            }
        })
    }

    /// Accepts a segment (the SYN or SYN-ACK's own included, for Fast Open data); calls
    /// `deliver` with each contiguous run of new bytes in order, and with `Gap` before bytes
    /// that follow a skipped hole.
    pub fn segment_events<F: FnMut(Delivery<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        mut deliver: F,
    ) -> SegmentOutcome {
        let mut out = SegmentOutcome::default();
        if payload.is_empty() {
            return out;
        }
        // The SYN occupies its own sequence number; its data (TFO) starts right after.
        let seq = if self.syn_seq == Some(seq) {
            seq.wrapping_add(1)
        } else {
            seq
        };
        let next = *self.next.get_or_insert(seq);
        let d = seq_diff(seq, next);
        if d <= 0 {
            let skip = (-d) as usize;
            if skip >= payload.len() {
                return out; // pure retransmission
            }
            let fresh = &payload[skip..];
            self.syn_seq = None;
            deliver(Delivery::Data(fresh));
            self.next = Some(next.wrapping_add(fresh.len() as u32));
            self.drain(&mut deliver);
        } else {
            // Future segment: hold it, bounded.
            if self.ooo.len() >= MAX_OOO_SEGMENTS || self.ooo_bytes + payload.len() > MAX_OOO_BYTES
            {
                // Give up on the hole: jump to the earliest held segment.
                out.gaps += 1;
                self.skip_to_held(&mut deliver);
                if self.ooo.len() >= MAX_OOO_SEGMENTS
                    || self.ooo_bytes + payload.len() > MAX_OOO_BYTES
                {
                    out.ooo_dropped += 1;
                    return out;
                }
                let inner = self.segment_events(seq, payload, deliver);
                out.gaps += inner.gaps;
                out.ooo_dropped += inner.ooo_dropped;
                return out;
            }
            self.ooo_bytes += payload.len();
            self.ooo.push((seq, payload.to_vec()));
        }
        out
    }

    /// The other direction acknowledged `ack`. When bytes we hold lie at or below it while a
    /// hole sits before them, the receiver has the hole's bytes and the sender will not send
    /// them again: the capture lost them. Skip the hole now (reported as `Gap`) rather than
    /// wait for the out-of-order queue to fill. Held data above `ack` does not count: the
    /// acknowledgement may simply have been captured before the data.
    #[inline]
    pub fn on_peer_ack<F: FnMut(Delivery<'_>)>(&mut self, ack: u32, deliver: F) -> SegmentOutcome {
        // Nothing held, no hole to skip: the common case, on every ACK, kept inline.
        if self.ooo.is_empty() {
            return SegmentOutcome::default();
        }
        self.on_peer_ack_held(ack, deliver)
    }

    fn on_peer_ack_held<F: FnMut(Delivery<'_>)>(
        &mut self,
        ack: u32,
        mut deliver: F,
    ) -> SegmentOutcome {
        let mut out = SegmentOutcome::default();
        let Some(next) = self.next else {
            return out;
        };
        if seq_diff(ack, next) <= 0 {
            return out;
        }
        let proven = self
            .ooo
            .iter()
            .any(|(s, _)| seq_diff(*s, next) > 0 && seq_diff(*s, ack) < 0);
        if proven {
            out.gaps += 1;
            self.skip_to_held(&mut deliver);
        }
        out
    }

    /// Jumps `next` to the earliest held segment (a `Gap` of the skipped length) and delivers
    /// what is then in order.
    fn skip_to_held<F: FnMut(Delivery<'_>)>(&mut self, deliver: &mut F) {
        let Some(next) = self.next else { return };
        if let Some(min) = self
            .ooo
            .iter()
            .map(|(s, _)| *s)
            .min_by(|a, b| seq_diff(*a, next).cmp(&seq_diff(*b, next)))
        {
            deliver(Delivery::Gap(min.wrapping_sub(next)));
            self.syn_seq = None;
            self.next = Some(min);
            self.drain(deliver);
        }
    }

    fn drain<F: FnMut(Delivery<'_>)>(&mut self, deliver: &mut F) {
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
                deliver(Delivery::Data(&data[skip..]));
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
