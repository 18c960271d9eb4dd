#![no_main]
//! Packet decoder over every supported link type; fragments go through the defragmenter.
use cloudtap::decode::defrag::{DefragConfig, Defragmenter};
use cloudtap::decode::{decode, decode_ip_payload, Outcome};
use libfuzzer_sys::fuzz_target;

// 105 802.11, 119 Prism, 127 radiotap, 163 AVS, 192 PPI, 239 NFLOG (issue 14).
const LINKTYPES: [u16; 20] = [
    0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 119, 127, 163, 192, 228, 229, 239, 276,
];

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let lt = LINKTYPES[usize::from(data[0]) % LINKTYPES.len()];
    let mut d = Defragmenter::new(DefragConfig::default());
    if let Ok(Outcome::Fragment(f)) = decode(lt, &data[1..]) {
        if let Some(r) = d.push(&f, 0) {
            let _ = decode_ip_payload(r.src, r.dst, r.proto, &r.data, r.encap, r.depth);
        }
    }
});
