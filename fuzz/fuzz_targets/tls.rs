#![no_main]
//! ClientHello scanner over a client stream, whole and split at every record.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let cloudtap::extract::tls::Progress::Hello(h) =
        cloudtap::extract::tls::scan_client_stream(data)
    {
        let _ = h.ja3_hash();
        let _ = h.ja4(false);
        let _ = h.ja4(true);
    }
});
