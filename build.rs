//! Embeds the bundled signature packs (signatures/*.toml) into the binary, so the default
//! `--signatures` works from any directory.

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = root.join("signatures");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// Bundled packs: (file name, contents).\npub static BUNDLED: &[(&str, &str)] = &[\n",
    );
    let mut names = String::from("const BUNDLED_FILE_NAMES: &[&str] = &[");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
        let _ = write!(names, "{name:?}, ");
    }
    code.push_str("];\n");
    names.push_str("];\n");
    code.push_str(&names);
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("bundled.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
