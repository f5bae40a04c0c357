//! The snapshot every flow of the bindings takes (`heaplens.snapshot()`, the dashboard's
//! button): the capture's walk, and after it, while `tracemalloc` traces, where each object was
//! allocated (whether it traces is asked before the walk, which must be followed by the lookups
//! with no Python code in between).
//!
//! Or, where the caller asks for it and it can be (see `heaplens_capture::fork_snapshot`), the
//! same snapshot taken in a forked child: the program is held for the `fork()` only, and the
//! caller reads the child's snapshot file without the GIL, into a graph ([`read_graph`]) or into
//! the file the user named ([`write_file`]). Where it cannot be, the walk runs in the program
//! and the `heaplens.capture` logger says why.

use heaplens_capture::{self as capture, CaptureError, Fork, ForkedSnapshot, SnapshotOptions};
use heaplens_core::graph::Graph;
use pyo3::prelude::*;
use std::io::{Read, Write};
use std::path::Path;

/// A snapshot of the heap, as every binding takes it. See the module docs.
pub fn snapshot(py: Python<'_>, options: SnapshotOptions) -> Result<Graph, CaptureError> {
    let tracing = crate::allocated::is_tracing(py);
    let mut graph = capture::snapshot(py, &options)?;
    crate::allocated::record(py, &mut graph, tracing);
    Ok(graph)
}

/// A snapshot started by [`start`].
pub enum Taken {
    /// Being taken in a forked child: read it without the GIL.
    Forked(ForkedSnapshot),
    /// Taken in the program.
    Walked(Box<Graph>),
}

/// Why a snapshot read from a forked child failed.
pub enum Failure {
    Capture(CaptureError),
    Core(heaplens_core::Error),
    /// The caller's `interrupted` said so (a Ctrl-C): the child was killed.
    Interrupted,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Capture(e) => write!(f, "{e}"),
            Failure::Core(e) => write!(f, "{e}"),
            Failure::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// Starts a snapshot: in a forked child when `fork` is asked and can be used, else in the
/// program (today's walk, as [`snapshot`]), saying why in the log.
pub fn start(py: Python<'_>, options: SnapshotOptions, fork: bool) -> Result<Taken, CaptureError> {
    if fork {
        let why = if crate::allocated::is_tracing(py) {
            // The lookups of where each object was allocated call into tracemalloc, whose lock
            // another thread may hold at the fork: they are made in the program, after its walk.
            Some("tracemalloc is tracing (where each object was allocated is looked up in the program)".to_string())
        } else {
            match capture::fork_snapshot(py, &options)? {
                Fork::Child(child) => {
                    log::debug!(
                        target: "heaplens.capture",
                        "snapshot in forked child {}: the program was held {:.1} ms for the fork",
                        child.pid(),
                        child.fork_time().as_secs_f64() * 1e3
                    );
                    return Ok(Taken::Forked(child));
                }
                Fork::Unavailable(why) => Some(why),
            }
        };
        if let Some(why) = why {
            let level = if why.starts_with("fork() failed") {
                log::Level::Warn
            } else {
                log::Level::Info
            };
            log::log!(
                target: "heaplens.capture",
                level,
                "snapshot taken in the program, which is stopped for the whole heap walk, not in a forked child: {why}"
            );
        }
    }
    snapshot(py, options).map(|graph| Taken::Walked(Box::new(graph)))
}

/// The graph of a snapshot being taken in a forked child, read as the child writes it; call
/// without the GIL.
pub fn read_graph(
    mut child: ForkedSnapshot,
    interrupted: Option<&dyn Fn() -> bool>,
) -> Result<Graph, Failure> {
    let read = heaplens_core::snapfile::read(child.reader(interrupted));
    if child.was_interrupted() {
        drop(child); // killed
        return Err(Failure::Interrupted);
    }
    // The child's own word first: a stream cut short is its failure, not the file's.
    child.finish().map_err(Failure::Capture)?;
    read.map_err(Failure::Core)
}

/// Copies the snapshot file a forked child writes to `path`, atomically (as
/// `Snapshot.save`): the file is in place only when the child said it wrote it all. Returns
/// the number of objects in it. Call without the GIL.
pub fn write_file(
    mut child: ForkedSnapshot,
    path: &Path,
    interrupted: Option<&dyn Fn() -> bool>,
) -> Result<u64, Failure> {
    let mut failure = None;
    let mut objects = 0;
    let shown = path.display().to_string();
    let written = heaplens_core::output::write_atomically(path, |file| {
        let io = |source| heaplens_core::Error::Io {
            path: shown.clone(),
            source,
        };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut buf = vec![0u8; 1 << 18];
        let mut reader = child.reader(interrupted);
        let copied = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => out.write_all(&buf[..n]).map_err(io)?,
                Err(e) => break Err(io(e)),
            }
        };
        drop(reader);
        if child.was_interrupted() {
            failure = Some(Failure::Interrupted);
            return Err(io(std::io::Error::other("interrupted")));
        }
        // The child's own word first: a stream cut short is its failure, not the file's.
        match child.finish() {
            Ok(n) => objects = n,
            Err(e) => {
                failure = Some(Failure::Capture(e));
                return Err(io(std::io::Error::other("the child failed")));
            }
        }
        copied?;
        out.into_inner().map_err(|e| io(e.into_error()))
    });
    match failure {
        Some(f) => Err(f),
        None => written.map(|()| objects).map_err(Failure::Core),
    }
}
