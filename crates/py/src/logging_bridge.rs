//! Rust `log` records of heaplens (targets `heaplens.*`) go to Python's `logging`, under the
//! logger of the same name, so they show up wherever the application's logs go.
//!
//! Written by hand rather than with pyo3-log, to change nothing in the observed program: no
//! record imports `logging` (a program that never imported it gets no records) or creates a
//! logger nobody asked for (a target without a logger is only logged when the root logger would
//! pass the record, as a new logger would). The level is asked each time, so a level changed
//! after import is honoured; heaplens logs a couple of records per capture, so this costs
//! nothing. Records are only emitted after a walk, never during one: handing a record to Python
//! runs Python code.

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::intern;
use pyo3::prelude::*;

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

/// Emits `record` if the program's logging configuration wants it.
fn emit(py: Python<'_>, record: &Record<'_>) -> PyResult<()> {
    // Interned names throughout: a fresh str per call would be kept alive by the interpreter's
    // method cache, and a capture must leave nothing behind.
    let modules = py
        .import(intern!(py, "sys"))?
        .getattr(intern!(py, "modules"))?;
    let Some(logging) = modules
        .call_method1(intern!(py, "get"), (intern!(py, "logging"),))?
        .extract::<Option<Bound<'_, PyAny>>>()?
    else {
        return Ok(());
    };
    let level = python_level(record.level());
    let root = logging.getattr(intern!(py, "root"))?;
    let existing = logging
        .getattr(intern!(py, "Logger"))?
        .getattr(intern!(py, "manager"))?
        .getattr(intern!(py, "loggerDict"))?
        .call_method1(intern!(py, "get"), (record.target(),))?;
    let logger = if existing.is_instance(&logging.getattr(intern!(py, "Logger"))?)? {
        existing
    } else if root
        .call_method1(intern!(py, "isEnabledFor"), (level,))?
        .is_truthy()?
    {
        logging.call_method1(intern!(py, "getLogger"), (record.target(),))?
    } else {
        return Ok(());
    };
    if logger
        .call_method1(intern!(py, "isEnabledFor"), (level,))?
        .is_truthy()?
    {
        // No arguments are passed, so `%` in the message is never interpolated.
        logger.call_method1(intern!(py, "log"), (level, record.args().to_string()))?;
    }
    Ok(())
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
            // A failing log handler must not turn a capture into an error.
            if let Err(e) = emit(py, record) {
                e.print(py);
            }
        });
    }

    fn flush(&self) {}
}
