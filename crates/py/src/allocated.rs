//! Where objects were allocated, as `tracemalloc` says, only while it traces: recorded for
//! every object of a snapshot right after its walk (the capture's lookups, then each frame's
//! source line from `linecache`), and, for a suspect whose snapshot has none, asked of the live
//! sample object after a comparison.

use heaplens_capture as capture;
use heaplens_core::analysis::diff::SnapshotDiff;
use heaplens_core::graph::Graph;
use pyo3::prelude::*;

/// Adds to `graph`, taken by the walk that just returned with no Python code run since, where
/// every object was allocated; `tracing` must have been asked (with [`is_tracing`]) before the
/// walk, since importing `_tracemalloc` may run Python code.
pub fn record(py: Python<'_>, graph: &mut Graph, tracing: bool) {
    if !tracing {
        return;
    }
    if let Some(mut allocations) = capture::allocation_tracebacks(py, graph) {
        add_source_lines(&mut allocations);
        // Checked against the graph it was made from: cannot fail, and would only leave the
        // tracebacks out.
        let _ = graph.set_allocations(allocations);
    }
}

/// Whether `tracemalloc` traces. Its function is looked up once: an import and an attribute
/// lookup per snapshot would leave blocks behind in the program (a capture leaves nothing).
pub fn is_tracing(py: Python<'_>) -> bool {
    static IS_TRACING: pyo3::sync::PyOnceLock<Option<Py<PyAny>>> = pyo3::sync::PyOnceLock::new();
    IS_TRACING
        .get_or_init(py, || {
            py.import("_tracemalloc")
                .and_then(|m| m.getattr("is_tracing"))
                .map(Bound::unbind)
                .ok()
        })
        .as_ref()
        .and_then(|f| f.call0(py).ok())
        .is_some_and(|t| t.bind(py).is_truthy().unwrap_or(false))
}

/// Each frame's line of source (left empty when the file cannot be read).
fn add_source_lines(allocations: &mut heaplens_core::graph::Allocations) {
    let mut sources = SourceFiles::default();
    for i in 0..allocations.frames().len() {
        let frame = allocations.frames()[i];
        let file = allocations.strings().get(frame.file).to_owned();
        if let Some(code) = sources.line(&file, frame.line) {
            allocations.set_code(i, &code);
        }
    }
}

/// The program's source files, read once each, to quote the line of a frame. Read here rather
/// than through `linecache`, whose cache would grow in the program between two snapshots and
/// show up as its growth.
#[derive(Default)]
struct SourceFiles {
    files: std::collections::HashMap<String, Option<Vec<String>>>,
}

impl SourceFiles {
    /// Files larger than this are not quoted (a generated file, a bundle).
    const MAX_BYTES: u64 = 16 << 20;

    /// Line `line` (from 1) of `file`, stripped; `None` when it cannot be read.
    fn line(&mut self, file: &str, line: u32) -> Option<String> {
        let lines = self.files.entry(file.to_owned()).or_insert_with(|| {
            let f = std::fs::File::open(file).ok()?;
            if f.metadata().ok()?.len() > Self::MAX_BYTES || !f.metadata().ok()?.is_file() {
                return None;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(f, Self::MAX_BYTES), &mut bytes)
                .ok()?;
            let text = String::from_utf8_lossy(&bytes);
            Some(text.lines().map(str::to_owned).collect())
        });
        let text = lines.as_ref()?.get((line as usize).checked_sub(1)?)?.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }
}

/// Fills in [`heaplens_core::analysis::accumulation::Suspect::allocated_at`] for every suspect
/// whose sample object is still alive, when `tracemalloc` is tracing; does nothing otherwise.
/// Any failure leaves the tracebacks out: they add to a report, never stop one.
pub fn fill(py: Python<'_>, after: &Graph, diff: &mut SnapshotDiff) {
    let _ = try_fill(py, after, diff);
}

fn try_fill(py: Python<'_>, after: &Graph, diff: &mut SnapshotDiff) -> PyResult<()> {
    // Suspects whose snapshot recorded no traceback (tracemalloc started after it) are asked
    // of the live objects.
    let missing: Vec<usize> = (0..diff.suspects.len())
        .filter(|&i| diff.suspects[i].allocated_at.is_empty())
        .collect();
    let wanted: Vec<(u64, String)> = missing
        .iter()
        .map(|&i| diff.suspects[i].sample)
        .map(|v| (after.addr(v), after.type_name(v)))
        .collect();
    for (i, traceback) in missing.into_iter().zip(tracebacks(py, &wanted)?) {
        diff.suspects[i].allocated_at = traceback;
    }
    Ok(())
}

/// Where each object of `wanted` (address, type name as heaplens shows it) was allocated,
/// oldest call first: empty for an object that is gone, was not traced, or when `tracemalloc`
/// does not trace.
pub fn tracebacks(py: Python<'_>, wanted: &[(u64, String)]) -> PyResult<Vec<Vec<String>>> {
    let mut out = vec![Vec::new(); wanted.len()];
    let tracemalloc = py.import("tracemalloc")?;
    if wanted.is_empty() || !tracemalloc.call_method0("is_tracing")?.is_truthy()? {
        return Ok(out);
    }
    let addresses: Vec<u64> = wanted.iter().map(|(a, _)| *a).collect();
    let live: std::collections::HashMap<u64, Py<PyAny>> =
        capture::objects_at(py, &addresses, false)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?
            .into_iter()
            .collect();
    let mut sources = SourceFiles::default();
    for ((address, type_name), frames) in wanted.iter().zip(out.iter_mut()) {
        let Some(obj) = live.get(address) else {
            continue;
        };
        let obj = obj.bind(py);
        // The object at that address now must be the one the snapshot saw, not a newer one.
        if shown_type_name(obj)? != *type_name {
            continue;
        }
        let mut calls: Vec<(String, u32)> = Vec::new();
        let traceback = tracemalloc.call_method1("get_object_traceback", (obj,))?;
        if !traceback.is_none() {
            for frame in traceback.try_iter()? {
                let frame = frame?;
                calls.push((
                    frame.getattr("filename")?.extract()?,
                    frame.getattr("lineno")?.extract()?,
                ));
            }
        } else if let Some(raw) = capture::allocation_traceback(py, obj) {
            // Asked for the object's memory block itself (3.11's lookup misses instances whose
            // dict is managed): `(filename, lineno)` pairs, the most recent call first.
            calls = raw.bind(py).extract()?;
            calls.reverse();
        }
        for (file, line) in calls {
            let text = match sources.line(&file, line) {
                Some(code) => format!("{file}:{line}: {code}"),
                None => format!("{file}:{line}"),
            };
            frames.push(heaplens_core::graph::allocations::frame_text(&text));
        }
    }
    Ok(out)
}

/// The name heaplens shows for `obj`'s type: `module.qualname`, the qualname alone for builtins.
fn shown_type_name(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let t = obj.get_type();
    let (module, qualname) = (t.module()?.to_string(), t.qualname()?.to_string());
    Ok(if module == "builtins" {
        qualname
    } else {
        format!("{module}.{qualname}")
    })
}
