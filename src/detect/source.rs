//! Where signature files come from: a directory on disk, or the copy of signatures/ compiled
//! into the binary. Top-level files are packs and lists; files in sub-folders are data that
//! packs import (providers' native range files).

use super::LoadError;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// Largest signature file read (a provider file is a few MB; a user list of a million
/// domains about 25 MB).
const MAX_FILE: u64 = 256 << 20;

pub struct SourceFile {
    /// Path relative to the signature directory, with `/` separators.
    pub rel: String,
    /// How messages name the file.
    pub display: String,
    pub data: Cow<'static, [u8]>,
}

pub struct SourceSet {
    pub files: Vec<SourceFile>,
    pub origin: String,
}

/// Extensions of the files that define signatures (at the top level of the directory).
pub const PACK_EXTENSIONS: &[&str] = &["toml", "domains", "cidrs", "useragents", "intel"];

impl SourceSet {
    pub fn bundled() -> SourceSet {
        SourceSet {
            files: BUNDLED
                .iter()
                .map(|(rel, data)| SourceFile {
                    rel: (*rel).to_string(),
                    display: format!("(bundled) signatures/{rel}"),
                    data: Cow::Borrowed(*data),
                })
                .collect(),
            origin: "(bundled) signatures/".into(),
        }
    }

    pub fn from_dir(dir: &Path) -> Result<SourceSet, LoadError> {
        let mut files = Vec::new();
        walk(dir, dir, &mut files, 0)?;
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(SourceSet {
            files,
            origin: dir.display().to_string(),
        })
    }

    /// The top-level files that define signatures, in name order.
    pub fn packs(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().filter(|f| {
            !f.rel.contains('/')
                && PACK_EXTENSIONS
                    .iter()
                    .any(|e| f.rel.rsplit_once('.').is_some_and(|(_, x)| x == *e))
        })
    }

    /// A file by path relative to the directory.
    pub fn get(&self, rel: &str) -> Option<&SourceFile> {
        let rel = rel.trim_start_matches("./");
        self.files.iter().find(|f| f.rel == rel)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>, depth: u8) -> Result<(), LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in rd.flatten() {
        let p: PathBuf = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name == "tools"
            || name.ends_with(".md")
            || name.ends_with(".py")
        {
            continue;
        }
        let meta = std::fs::metadata(&p).map_err(|source| LoadError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            if depth < 4 {
                walk(root, &p, out, depth + 1)?;
            }
            continue;
        }
        let rel = p
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().replace('\\', "/"))
            .unwrap_or(name.clone());
        // Data files in sub-folders are read only if some pack imports them; reading them
        // all is simpler and they are small, but stay bounded.
        if meta.len() > MAX_FILE {
            return Err(LoadError::Invalid(vec![format!(
                "{}: file larger than {} MB",
                p.display(),
                MAX_FILE >> 20
            )]));
        }
        let data = std::fs::read(&p).map_err(|source| LoadError::Io {
            path: p.clone(),
            source,
        })?;
        out.push(SourceFile {
            rel,
            display: p.display().to_string(),
            data: Cow::Owned(data),
        });
    }
    Ok(())
}
