//! Process control by signal: SIGTERM and SIGINT stop the capture and let every queue drain
//! (a second one, or the shutdown time running out, ends the process at once); SIGHUP asks
//! for a signature reload and for output files to be reopened (logrotate). Handlers only set
//! flags (signal-hook's self-pipe); a thread of its own acts on them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Flags the pipeline looks at; cheap to clone and to read on the packet path.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Set by SIGTERM/SIGINT: stop reading, drain, write everything, exit.
    pub stop: Arc<AtomicBool>,
    /// Bumped by SIGHUP: output files are reopened when it changes.
    pub reopen: Arc<AtomicU64>,
    /// The signal that stopped the run, for the summary (0 when none).
    pub stopped_by: Arc<AtomicU64>,
}

impl Control {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Name of the signal that stopped the run, if one did.
    pub fn stop_signal(&self) -> Option<&'static str> {
        match self.stopped_by.load(Ordering::Relaxed) as i32 {
            0 => None,
            libc::SIGTERM => Some("SIGTERM"),
            libc::SIGINT => Some("SIGINT"),
            _ => Some("a signal"),
        }
    }
}

/// Starts the signal thread. `on_hup` runs on the signal thread for each SIGHUP (the
/// signature reload), before the reopen flag is bumped. `grace` bounds the shutdown: when
/// it has passed since the first stop signal, the process exits with status 1 and says so.
pub fn install(
    ctl: &Control,
    mut on_hup: impl FnMut() + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let ctl = ctl.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                match sig {
                    SIGHUP => {
                        on_hup();
                        ctl.reopen.fetch_add(1, Ordering::SeqCst);
                    }
                    _ if ctl.stop.swap(true, Ordering::SeqCst) => {
                        eprintln!("cloudtap: second stop signal: exiting now, without draining");
                        std::process::exit(1);
                    }
                    _ => {
                        ctl.stopped_by.store(sig as u64, Ordering::SeqCst);
                        // The watchdog: a drain that cannot finish (a sink that blocks, a
                        // pipe with no writer) must not keep a service manager waiting.
                        let watchdog = std::thread::Builder::new()
                            .name("shutdown-watchdog".into())
                            .spawn(move || {
                                std::thread::sleep(grace);
                                eprintln!(
                                    "cloudtap: shutdown did not finish within {:.1} s (--shutdown-timeout + --flush-timeout + 1 s); exiting with output undelivered",
                                    grace.as_secs_f64()
                                );
                                std::process::exit(1);
                            });
                        if let Err(e) = watchdog {
                            eprintln!("cloudtap: cannot start the shutdown watchdog ({e}); the drain is not time-bounded");
                        }
                    }
                }
            }
        })?;
    Ok(())
}
