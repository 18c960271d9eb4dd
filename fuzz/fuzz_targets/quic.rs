#![no_main]
//! QUIC Initial reader: datagrams of any content never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut q = cloudtap::extract::quic::QuicClient::default();
    for chunk in data.split(|b| *b == 0xff).take(8) {
        let _ = q.datagram(chunk);
    }
});
