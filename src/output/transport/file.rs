//! `file:PATH` and `-` (standard output): JSON lines, one event per line.
//!
//! Each batch is assembled in memory and written with as few `write` calls as the kernel
//! allows (one, normally), so `send` returning `Ok` means the lines are in the file (the
//! page cache), per the transport rule; `flush` flushes the underlying writer (standard
//! output, a test's buffer).
//!
//! Options (`file:PATH?key=value`): `append=true|false` (default false: an offline run
//! writes its file afresh; the pipeline passes `append=true` for live runs),
//! `rotate_bytes=N` (before a line would take the file past N bytes, PATH is renamed PATH.1,
//! PATH.1 to PATH.2 ... up to `rotate_keep=K`, default 5, and a new PATH is started),
//! `rotate_keep=K`. Unknown keys are an error naming them. `-` takes no options.

use super::{Out, Partial, SendError, Transport};
use crate::output::url::{Scheme, SinkSpec};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file transport's options, parsed from `SinkSpec::opts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOpts {
    pub append: bool,
    pub rotate_bytes: Option<u64>,
    pub rotate_keep: u32,
}

impl Default for FileOpts {
    fn default() -> Self {
        FileOpts {
            append: false,
            rotate_bytes: None,
            rotate_keep: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileOptError {
    #[error("unknown option(s) {0} (file takes append, rotate_bytes, rotate_keep)")]
    Unknown(String),
    #[error("unknown option(s) {0} (- takes none)")]
    UnknownStdout(String),
    #[error("{key}={value:?}: expected {expected}")]
    Value {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Parses the file options; every key must be known (a misspelt option is an error).
pub fn parse_opts(opts: &BTreeMap<String, String>) -> Result<FileOpts, FileOptError> {
    let mut o = FileOpts::default();
    let unknown: Vec<&str> = opts
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "append" | "rotate_bytes" | "rotate_keep"))
        .collect();
    if !unknown.is_empty() {
        return Err(FileOptError::Unknown(unknown.join(", ")));
    }
    if let Some(v) = opts.get("append") {
        o.append = match v.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(FileOptError::Value {
                    key: "append",
                    value: v.clone(),
                    expected: "true or false",
                })
            }
        };
    }
    if let Some(v) = opts.get("rotate_bytes") {
        let n: u64 = v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| FileOptError::Value {
                key: "rotate_bytes",
                value: v.clone(),
                expected: "a byte count above 0",
            })?;
        o.rotate_bytes = Some(n);
    }
    if let Some(v) = opts.get("rotate_keep") {
        o.rotate_keep =
            v.parse()
                .ok()
                .filter(|n| *n <= 1000)
                .ok_or_else(|| FileOptError::Value {
                    key: "rotate_keep",
                    value: v.clone(),
                    expected: "a count from 0 to 1000",
                })?;
    }
    Ok(o)
}

enum Dest {
    File(File),
    Writer(Box<dyn Write + Send>),
}

pub struct FileTransport {
    /// `None`: a writer given by the caller (cannot be reopened).
    path: Option<PathBuf>,
    opts: FileOpts,
    /// `None` while closed (before `connect`, after a write error).
    out: Option<Dest>,
    /// Bytes in the current file (for rotation, and for cutting a partial line).
    size: u64,
    /// The first open honours `append`; every later one appends (never wipe what this run
    /// wrote).
    opened: bool,
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Times the file was reopened (SIGHUP) and rotated.
    pub reopened: u64,
    pub rotated: u64,
}

/// Builds the transport for `file:PATH` or `-` (not opened yet).
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Transport>, String> {
    match &spec.scheme {
        Scheme::Stdout => {
            if !spec.opts.is_empty() {
                let keys: Vec<&str> = spec.opts.keys().map(String::as_str).collect();
                return Err(format!(
                    "{}: {}",
                    spec.url,
                    FileOptError::UnknownStdout(keys.join(", "))
                ));
            }
            Ok(writer(Box::new(io::stdout())))
        }
        Scheme::File { path } => {
            let opts = parse_opts(&spec.opts).map_err(|e| format!("{}: {e}", spec.url))?;
            // A missing folder is a typo, not an outage: refuse at start.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    return Err(format!(
                        "{}: folder {} does not exist",
                        spec.url,
                        parent.display()
                    ));
                }
            }
            Ok(Box::new(FileTransport::file(path.clone(), opts)))
        }
        _ => Err(format!("{}: not a file sink", spec.url)),
    }
}

/// Any writer (standard output, a test's buffer): `reopen` only flushes.
pub fn writer(w: Box<dyn Write + Send>) -> Box<dyn Transport> {
    Box::new(FileTransport {
        path: None,
        opts: FileOpts::default(),
        out: Some(Dest::Writer(w)),
        size: 0,
        opened: true,
        buf: Vec::new(),
        ends: Vec::new(),
        reopened: 0,
        rotated: 0,
    })
}

impl FileTransport {
    pub fn file(path: PathBuf, opts: FileOpts) -> FileTransport {
        FileTransport {
            path: Some(path),
            opts,
            out: None,
            size: 0,
            opened: false,
            buf: Vec::new(),
            ends: Vec::new(),
            reopened: 0,
            rotated: 0,
        }
    }

    fn open_path(&mut self, p: &Path, append: bool) -> io::Result<()> {
        let f = open_file(p, append)?;
        self.size = f.metadata()?.len();
        self.out = Some(Dest::File(f));
        self.opened = true;
        Ok(())
    }

    /// PATH.(K-1) -> PATH.K ... PATH -> PATH.1, then a new PATH (K = 0: PATH is removed).
    fn rotate(&mut self) -> io::Result<()> {
        let Some(p) = self.path.clone() else {
            return Ok(());
        };
        self.out = None;
        let numbered = |i: u32| {
            let mut s = p.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        let keep = self.opts.rotate_keep;
        if keep == 0 {
            ignore_missing(fs::remove_file(&p))?;
        } else {
            for i in (1..keep).rev() {
                ignore_missing(fs::rename(numbered(i), numbered(i + 1)))?;
            }
            ignore_missing(fs::rename(&p, numbered(1)))?;
        }
        self.rotated += 1;
        self.open_path(&p, false)
    }
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        o => o,
    }
}

fn open_file(p: &Path, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(p)
}

/// Writes all of `buf`; on error, how much got written.
fn write_counted(w: &mut dyn Write, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match w.write(&buf[done..]) {
            Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

impl Transport for FileTransport {
    fn connect(&mut self) -> Result<(), SendError> {
        if self.out.is_some() {
            return Ok(());
        }
        let Some(p) = self.path.clone() else {
            return Ok(());
        };
        let append = self.opened || self.opts.append;
        self.open_path(&p, append)
            .map_err(|e| SendError::Down(format!("{}: {e}", p.display())))
    }

    fn send(&mut self, batch: &[Out]) -> Result<(), Partial> {
        let mut delivered = 0;
        let mut i = 0;
        while i < batch.len() {
            let mut buf = std::mem::take(&mut self.buf);
            let mut ends = std::mem::take(&mut self.ends);
            buf.clear();
            ends.clear();
            let mut rotate = false;
            while let Some(o) = batch.get(i) {
                let l = o.line.len() as u64 + 1;
                if let Some(rb) = self.opts.rotate_bytes {
                    let size = self.size + buf.len() as u64;
                    // Rotate before a line would take a non-empty file past the limit.
                    if self.path.is_some() && size > 0 && size + l > rb {
                        rotate = true;
                        break;
                    }
                }
                buf.extend_from_slice(&o.line);
                buf.push(b'\n');
                ends.push(buf.len());
                i += 1;
            }
            let res = match self.out.as_mut() {
                None => Err((0, io::Error::other("not open"))),
                Some(Dest::File(f)) => write_counted(f, &buf),
                Some(Dest::Writer(w)) => write_counted(w.as_mut(), &buf),
            };
            let n_lines = ends.len();
            let whole = match &res {
                Ok(()) => buf.len(),
                Err((w, _)) => ends.iter().copied().filter(|e| *e <= *w).max().unwrap_or(0),
            };
            let lines_ok = ends.iter().filter(|e| **e <= whole).count();
            self.buf = buf;
            self.ends = ends;
            delivered += lines_ok;
            if let Err((_, e)) = res {
                // Cut a partial line so the retry does not follow a torn one; close so the
                // next `connect` reopens.
                if let Some(Dest::File(f)) = &self.out {
                    if let Err(e2) = f.set_len(self.size + whole as u64) {
                        self.out = None;
                        return Err(Partial {
                            delivered,
                            error: SendError::Down(format!("{e}; cutting the partial line: {e2}")),
                        });
                    }
                    self.out = None;
                }
                self.size += whole as u64;
                let what = self
                    .path
                    .as_ref()
                    .map_or_else(|| "output".to_string(), |p| p.display().to_string());
                return Err(Partial {
                    delivered,
                    error: SendError::Down(format!("{what}: {e}")),
                });
            }
            debug_assert_eq!(lines_ok, n_lines);
            self.size += whole as u64;
            if rotate {
                if let Err(e) = self.rotate() {
                    return Err(Partial {
                        delivered,
                        error: SendError::Down(format!("rotating: {e}")),
                    });
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SendError> {
        match self.out.as_mut() {
            Some(Dest::Writer(w)) => w.flush().map_err(|e| SendError::Down(e.to_string())),
            _ => Ok(()),
        }
    }

    fn reopen(&mut self) -> Result<(), SendError> {
        self.flush()?;
        let Some(p) = self.path.clone() else {
            return Ok(());
        };
        // On error the old file stays in use.
        let f =
            open_file(&p, true).map_err(|e| SendError::Down(format!("{}: {e}", p.display())))?;
        self.size = f
            .metadata()
            .map_err(|e| SendError::Down(format!("{}: {e}", p.display())))?
            .len();
        self.out = Some(Dest::File(f));
        self.opened = true;
        self.reopened += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let m = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(parse_opts(&m(&[])).unwrap(), FileOpts::default());
        assert_eq!(
            parse_opts(&m(&[
                ("append", "true"),
                ("rotate_bytes", "100"),
                ("rotate_keep", "2")
            ]))
            .unwrap(),
            FileOpts {
                append: true,
                rotate_bytes: Some(100),
                rotate_keep: 2
            }
        );
        assert_eq!(
            parse_opts(&m(&[("apend", "true"), ("zz", "1")])),
            Err(FileOptError::Unknown("apend, zz".into()))
        );
        assert!(parse_opts(&m(&[("append", "yes")])).is_err());
        assert!(parse_opts(&m(&[("rotate_bytes", "0")])).is_err());
    }
}
