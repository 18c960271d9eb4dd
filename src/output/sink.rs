//! Where EVE lines go: a file (reopened on SIGHUP, for logrotate) or any writer (standard
//! output, a test's buffer). The writer thread serialises each event once and writes the
//! line here.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// An EVE destination.
pub struct EveSink {
    out: Box<dyn Write + Send>,
    /// The file's path, when it is a file (then it can be reopened).
    path: Option<PathBuf>,
    /// Times the file was reopened.
    pub reopened: u64,
}

impl EveSink {
    /// Any writer; `reopen` does nothing.
    pub fn writer(w: Box<dyn Write + Send>) -> EveSink {
        EveSink {
            out: w,
            path: None,
            reopened: 0,
        }
    }

    /// A file: truncated (`append` false: an offline run writes the file afresh) or appended
    /// to (a live sensor restarting keeps what it wrote before).
    pub fn file(path: PathBuf, append: bool) -> io::Result<EveSink> {
        let f = open(&path, append)?;
        Ok(EveSink {
            out: Box::new(f),
            path: Some(path),
            reopened: 0,
        })
    }

    /// Opens the path again (after logrotate renamed the file): later lines go to a new file
    /// of that name. The caller flushes first. On error the old file stays in use.
    pub fn reopen(&mut self) -> io::Result<()> {
        let Some(p) = &self.path else {
            return Ok(());
        };
        let f = open(p, true)?;
        self.out.flush()?;
        self.out = Box::new(f);
        self.reopened += 1;
        Ok(())
    }

    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }
}

fn open(p: &PathBuf, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(p)
}

impl Write for EveSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
