#![no_main]
//! HTTP request stream: fed in two pieces split at a fuzzer-chosen point; bounded buffer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % data.len();
    for synced in [true, false] {
        let mut s = cloudtap::extract::http::RequestStream::new(synced);
        let (mut out, mut skips) = (Vec::new(), Vec::new());
        s.feed(&data[1..=split.max(1).min(data.len() - 1)], &mut out, &mut skips);
        s.feed(&data[split.max(1).min(data.len() - 1) + 1..], &mut out, &mut skips);
        assert!(s.buffered() <= cloudtap::extract::http::MAX_HEADER_BYTES + data.len());
    }
});
