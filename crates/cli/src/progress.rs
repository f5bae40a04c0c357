//! Progress messages for long steps (loading a big snapshot, analysing it), on stderr and only
//! when stderr is a terminal, so piped output and logs stay clean.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
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
