//! Where the suspects' objects were allocated: asked of the live process, through `tracemalloc`,
//! after a comparison, for the one sample object of each suspect. The capture never asks (it
//! runs no Python code); this runs once the snapshots are taken, and only while `tracemalloc`
//! traces.

use heaplens_capture as capture;
use heaplens_core::analysis::diff::SnapshotDiff;
use heaplens_core::graph::Graph;
use pyo3::prelude::*;

/// Fills in [`heaplens_core::analysis::accumulation::Suspect::allocated_at`] for every suspect
/// whose sample object is still alive, when `tracemalloc` is tracing; does nothing otherwise.
/// Any failure leaves the tracebacks out: they add to a report, never stop one.
pub fn fill(py: Python<'_>, after: &Graph, diff: &mut SnapshotDiff) {
    let _ = try_fill(py, after, diff);
}

fn try_fill(py: Python<'_>, after: &Graph, diff: &mut SnapshotDiff) -> PyResult<()> {
    let wanted: Vec<(u64, String)> = diff
        .suspects
        .iter()
        .map(|s| (after.addr(s.sample), after.type_name(s.sample)))
        .collect();
    for (s, traceback) in diff.suspects.iter_mut().zip(tracebacks(py, &wanted)?) {
        s.allocated_at = traceback;
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
    let linecache = py.import("linecache")?;
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
            let code: String = linecache
                .call_method1("getline", (&file, line))?
                .extract::<String>()?
                .trim()
                .to_string();
            let text = if code.is_empty() {
                format!("{file}:{line}")
            } else {
                format!("{file}:{line}: {code}")
            };
            frames.push(visible(&text));
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

/// `text` with control characters written as escapes, so a file name or a line of source
/// cannot move the terminal's cursor or hide what follows.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
