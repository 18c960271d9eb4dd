#![no_main]
//! DNS message parser: any bytes, no panic; names stay within limits.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = cloudtap::extract::dns::parse(data) {
        for q in &m.questions {
            // Presentation form escapes at most 4 characters per wire byte.
            assert!(q.name.len() <= 255 * 4);
        }
    }
});
