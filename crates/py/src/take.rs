//! The snapshot every flow of the bindings takes (`heaplens.snapshot()`, the dashboard's
//! button): the capture's walk, and after it, while `tracemalloc` traces, where each object was
//! allocated (whether it traces is asked before the walk, which must be followed by the lookups
//! with no Python code in between).

use heaplens_capture::{self as capture, CaptureError, SnapshotOptions};
use heaplens_core::graph::Graph;
use pyo3::prelude::*;

/// A snapshot of the heap, as every binding takes it. See the module docs.
pub fn snapshot(py: Python<'_>, options: SnapshotOptions) -> Result<Graph, CaptureError> {
    let tracing = crate::allocated::is_tracing(py);
    let mut graph = capture::snapshot(py, &options)?;
    crate::allocated::record(py, &mut graph, tracing);
    Ok(graph)
}
