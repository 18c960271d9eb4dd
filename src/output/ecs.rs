//! SKELETON (issue 13): Elastic Common Schema from an EVE line. Owner fills in.

/// Converts one EVE JSON line (no newline) into one ECS JSON line appended to `out`.
pub fn from_eve(eve: &[u8], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let v: serde_json::Value = serde_json::from_slice(eve)?;
    serde_json::to_writer(out, &v)
}
