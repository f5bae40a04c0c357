//! Progress messages for long steps (loading a big snapshot, analysing it), on stderr and only
//! when stderr is a terminal, so piped output and logs stay clean; and notes, one line each on
//! stderr, terminal or not, for what a user may need to know afterwards (how `heaplens attach`
//! reached a process). `--quiet` silences both.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    enabled: bool,
    notes: bool,
}

impl Progress {
    pub fn new(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            notes: wanted,
        }
    }

    /// Writes `heaplens: {text}` on a line of stderr, unless `--quiet`.
    pub fn note(&self, text: &str) {
        if self.notes {
            let _ = writeln!(std::io::stderr().lock(), "heaplens: {text}");
        }
    }

    /// Runs `work`, announcing `what` before and the time it took after.
    pub fn step<T>(&self, what: &str, work: impl FnOnce() -> T) -> T {
        if !self.enabled {
            return work();
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{what}... ");
        let _ = err.flush();
        drop(err);
        let started = Instant::now();
        let result = work();
        let _ = writeln!(
            std::io::stderr(),
            "{:.1} s",
            started.elapsed().as_secs_f64()
        );
        result
    }
}

impl Progress {
    /// A message for a wait of unknown length, that counts the seconds in place:
    /// `waiting for process 42 to reach a safe point... 3 s`.
    pub fn waiting(&self, what: impl Into<String>) -> Waiting {
        let mut waiting = Waiting {
            enabled: self.enabled,
            what: what.into(),
            started: Instant::now(),
            shown: None,
        };
        waiting.tick();
        waiting
    }
}

/// A wait in progress (see [`Progress::waiting`]); the line ends when it is finished or dropped.
pub struct Waiting {
    enabled: bool,
    what: String,
    started: Instant,
    /// The whole seconds last shown, when a line is open.
    shown: Option<u64>,
}

impl Waiting {
    /// Shows the elapsed seconds, when they changed.
    pub fn tick(&mut self) {
        let seconds = self.started.elapsed().as_secs();
        if !self.enabled || self.shown == Some(seconds) {
            return;
        }
        self.shown = Some(seconds);
        // Rewrites the line in place: carriage return, then erase to its end.
        let _ = write!(std::io::stderr(), "\r{}... {seconds} s\x1b[K", self.what);
        let _ = std::io::stderr().flush();
    }

    /// Changes the message (the count goes on).
    pub fn set(&mut self, what: impl Into<String>) {
        self.what = what.into();
        self.shown = None;
        self.tick();
    }

    /// Ends the line.
    pub fn finish(&mut self) {
        if self.shown.take().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.finish();
    }
}
