//! Rust `log` records of heaplens (targets `heaplens.*`) go to Python's `logging`, under the
//! logger of the same name, so they show up wherever the application's logs go.
//!
//! Written by hand rather than with pyo3-log: heaplens logs a couple of records per capture, so
//! asking Python for the logger's level each time costs nothing and a level changed after import
//! is always honoured, with no cache to reset. Records are only emitted after a walk, never
//! during one: handing a record to Python runs Python code.

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::collections::HashMap;
use std::sync::Mutex;

/// Python logger objects by target: `logging.getLogger` is called once per name (loggers live
/// as long as the interpreter anyway).
static LOGGERS: Mutex<Option<HashMap<String, Py<PyAny>>>> = Mutex::new(None);
static LOGGING: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

struct PythonLogging;

static LOGGER: PythonLogging = PythonLogging;

/// Installs the bridge as this extension's `log` backend (once; later calls do nothing).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

fn python_level(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

impl Log for PythonLogging {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("heaplens")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        Python::attach(|py| {
            let emit = || -> PyResult<()> {
                let logger = {
                    let mut loggers = LOGGERS.lock().unwrap_or_else(|p| p.into_inner());
                    let loggers = loggers.get_or_insert_with(HashMap::new);
                    match loggers.get(record.target()) {
                        Some(l) => l.clone_ref(py).into_bound(py),
                        None => {
                            let logging = LOGGING
                                .get_or_try_init(py, || py.import("logging").map(Bound::unbind))?;
                            let l = logging
                                .bind(py)
                                .call_method1(intern!(py, "getLogger"), (record.target(),))?;
                            loggers.insert(record.target().to_string(), l.clone().unbind());
                            l
                        }
                    }
                };
                let level = python_level(record.level());
                // Interned names: a fresh str per call would be kept alive by the interpreter's
                // method cache, and a capture must leave nothing behind.
                if logger
                    .call_method1(intern!(py, "isEnabledFor"), (level,))?
                    .is_truthy()?
                {
                    // No arguments are passed, so `%` in the message is never interpolated.
                    logger.call_method1(intern!(py, "log"), (level, record.args().to_string()))?;
                }
                Ok(())
            };
            // A failing log handler must not turn a capture into an error.
            if let Err(e) = emit() {
                e.print(py);
            }
        });
    }

    fn flush(&self) {}
}
