//! The expectations in tests/expected/*.json must be what tshark really says about the
//! committed captures: regenerates them with tests/gen-expected.sh into a scratch folder and
//! compares. Needs tshark (the README's test command and .ci/run install it).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn committed_expectations_match_a_fresh_tshark_run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let have_tshark = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(have_tshark, "tshark is needed: apt-get install -y tshark");
    let out = std::env::temp_dir().join(format!("cloudtap-regen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let st = Command::new("bash")
        .arg(root.join("tests/gen-expected.sh"))
        .env("OUTDIR", &out)
        .output()
        .expect("gen-expected.sh runs");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut compared = 0;
    for e in std::fs::read_dir(root.join("tests/expected"))
        .expect("dir")
        .flatten()
    {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let name = p.file_name().expect("name");
        let strip = |path: &std::path::Path| -> serde_json::Value {
            let mut v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
            if let Some(o) = v.as_object_mut() {
                o.remove("tshark_version");
            }
            v
        };
        assert_eq!(strip(&p), strip(&out.join(name)), "{}", p.display());
        compared += 1;
    }
    assert!(compared >= 20);
    let _ = std::fs::remove_dir_all(&out);
}
