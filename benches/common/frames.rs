//! Shared by the bench targets: every frame of a capture, copied out, with its link type.

use cloudtap::capture::FileReader;
use std::path::Path;

pub fn frames(path: &Path) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut r = FileReader::open(path).expect("capture");
    r.for_each(|p| out.push((p.linktype, p.data.to_vec())))
        .expect("read");
    out
}
