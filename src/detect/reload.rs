//! Reloading signatures without a restart: on SIGHUP, and with `--watch` when a file in the
//! signature directory changes. A new set is built off the packet path and swapped in
//! atomically (`ArcSwap`); workers pick it up at their next batch and never wait. A broken
//! update keeps the old set and says why.

use super::{load_dir, Ruleset};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Rebuilds from `dir` and swaps the new set in; on error keeps the old one. Returns whether
/// the swap happened; the message goes to stderr either way.
pub fn reload(dir: &Path, shared: &ArcSwap<Ruleset>, why: &str) -> bool {
    match load_dir(dir) {
        Ok(r) => {
            let n = r.signatures().len();
            shared.store(Arc::new(r));
            eprintln!(
                "cloudtap: signatures reloaded from {} ({why}): {n} signatures",
                dir.display()
            );
            true
        }
        Err(e) => {
            eprintln!(
                "cloudtap: signature reload from {} ({why}) failed; keeping the previous set:\n{e}",
                dir.display()
            );
            false
        }
    }
}

/// What the watcher compares: every file's path, size and modification time.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0u8)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if depth < 4 {
                    stack.push((e.path(), depth + 1));
                }
            } else {
                out.push((e.path(), m.len(), m.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Starts a watcher polling the directory every second, for the life of the process.
/// (SIGHUP is handled by `signals`, which calls [`reload`].)
pub fn spawn_watch(dir: PathBuf, shared: Arc<ArcSwap<Ruleset>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let mut last = fingerprint(&dir);
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = fingerprint(&dir);
                if now != last {
                    // Let an editor or a copy finish writing before reading.
                    std::thread::sleep(Duration::from_millis(200));
                    last = fingerprint(&dir);
                    reload(&dir, &shared, "file change");
                }
            }
        })?;
    Ok(())
}
