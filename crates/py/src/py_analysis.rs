//! Python views of analysis results: retaining paths and snapshot comparisons.

use crate::py_snapshot::{view, PySnapshotObject, SnapshotData};
use heaplens_core::analysis::diff::{Holder, SnapshotDiff, Suspect};
use heaplens_core::analysis::paths::{Path, Start};
use heaplens_core::analysis::report;
use std::sync::Arc;

use pyo3::prelude::*;

/// A chain of references from a root to an object. ``str(path)`` reads like the code that holds
/// the object: ``module app -> .__dict__['CACHE'] -> dict['k'] -> list[3] -> app.Order``.
#[pyclass(module = "heaplens", name = "RetainingPath", frozen)]
pub struct PyRetainingPath {
    data: Arc<SnapshotData>,
    path: Path,
}

impl PyRetainingPath {
    pub fn new(data: &Arc<SnapshotData>, path: Path) -> Self {
        PyRetainingPath {
            data: Arc::clone(data),
            path,
        }
    }
}

#[pymethods]
impl PyRetainingPath {
    /// The objects along the path, from the one a root holds to the target.
    #[getter]
    fn objects(&self) -> Vec<PySnapshotObject> {
        self.path
            .nodes(self.data.graph())
            .into_iter()
            .map(|n| view(&self.data, n))
            .collect()
    }

    /// The label of each reference after the root, in order (``.__dict__``, ``['CACHE']``...).
    #[getter]
    fn labels(&self) -> Vec<String> {
        let g = self.data.graph();
        self.path
            .edges
            .iter()
            .map(|&e| g.describe_label(g.edge(e).1))
            .collect()
    }

    /// How the path starts: the root's label (``sys.modules['app']``, ``thread 'worker'``,
    /// ``<external>``), or ``<unreachable>`` for cyclic garbage.
    #[getter]
    fn root(&self) -> String {
        let g = self.data.graph();
        match self.path.start {
            Start::Root { edge } => g.describe_label(g.edge(edge).1),
            Start::Garbage { .. } => "<unreachable>".to_string(),
        }
    }

    fn __len__(&self) -> usize {
        self.path.len()
    }

    fn __str__(&self) -> String {
        self.path.render(self.data.graph())
    }

    fn __repr__(&self) -> String {
        format!("<RetainingPath {}>", self.path.render(self.data.graph()))
    }
}

/// One leak suspect: a container that accumulates new objects, and what it accumulates.
#[pyclass(module = "heaplens", name = "Suspect", frozen)]
pub struct PySuspect {
    /// The type of the new objects the container holds directly: the leaking type.
    #[pyo3(get)]
    entry_type: String,
    /// How many of them.
    #[pyo3(get)]
    entries: u64,
    /// All new objects under the container (the entries and what they hold).
    #[pyo3(get)]
    objects: u64,
    /// Their shallow size in bytes.
    #[pyo3(get)]
    size: u64,
    /// The largest types among them: ``(name, count, size)``.
    #[pyo3(get)]
    types: Vec<(String, u64, u64)>,
    /// ``"object"``, ``"garbage"`` (uncollected cyclic garbage) or ``"roots"``.
    #[pyo3(get)]
    kind: &'static str,
    /// The label of the container's reference to one of the entries (``['k42']``, ``[17]``).
    #[pyo3(get)]
    sample_label: String,
    /// Where the sample was allocated, oldest call first (``"app/models.py:12: self.lines =
    /// []"``), when ``tracemalloc`` traced it; empty otherwise.
    #[pyo3(get)]
    allocated_at: Vec<String>,
    data: Arc<SnapshotData>,
    holder: Option<u32>,
    holder_path: Option<Path>,
    sample: u32,
}

impl PySuspect {
    pub fn new(data: &Arc<SnapshotData>, s: &Suspect) -> Self {
        PySuspect {
            entry_type: s.entry_type.clone(),
            entries: s.entries,
            objects: s.objects,
            size: s.bytes,
            types: s.types.clone(),
            kind: match s.holder {
                Holder::Node(_) => "object",
                Holder::Garbage => "garbage",
                Holder::Roots => "roots",
            },
            sample_label: s.sample_label.clone(),
            allocated_at: s.allocated_at.clone(),
            data: Arc::clone(data),
            holder: match s.holder {
                Holder::Node(h) => Some(h),
                _ => None,
            },
            holder_path: s.holder_path.clone(),
            sample: s.sample,
        }
    }
}

#[pymethods]
impl PySuspect {
    /// The container (in the later snapshot), or None for garbage and roots.
    #[getter]
    fn holder(&self) -> Option<PySnapshotObject> {
        self.holder.map(|h| view(&self.data, h))
    }

    /// The container's shortest retaining path.
    #[getter]
    fn holder_path(&self) -> Option<PyRetainingPath> {
        self.holder_path
            .clone()
            .map(|p| PyRetainingPath::new(&self.data, p))
    }

    /// One of the entries.
    #[getter]
    fn sample(&self) -> PySnapshotObject {
        view(&self.data, self.sample)
    }

    fn __repr__(&self) -> String {
        let held = self
            .holder_path
            .as_ref()
            .map(|p| format!(" held by {}", p.render(self.data.graph())))
            .unwrap_or_default();
        format!(
            "<Suspect {} x{} ({} new objects){held}>",
            self.entry_type, self.entries, self.objects
        )
    }
}

/// What grew between two snapshots, and the leak suspects. ``str(diff)`` is the report.
#[pyclass(module = "heaplens", name = "SnapshotDiff", frozen)]
pub struct PySnapshotDiff {
    before: Arc<SnapshotData>,
    after: Arc<SnapshotData>,
    result: SnapshotDiff,
}

impl PySnapshotDiff {
    pub fn new(
        before: &Arc<SnapshotData>,
        after: &Arc<SnapshotData>,
        result: SnapshotDiff,
    ) -> Self {
        PySnapshotDiff {
            before: Arc::clone(before),
            after: Arc::clone(after),
            result,
        }
    }
}

#[pymethods]
impl PySnapshotDiff {
    /// The leak suspects, largest first.
    #[getter]
    fn suspects(&self) -> Vec<PySuspect> {
        self.result
            .suspects
            .iter()
            .map(|s| PySuspect::new(&self.after, s))
            .collect()
    }

    /// Per-type changes: ``(name, count, count_delta, size_delta)``, largest growth first.
    #[getter]
    fn types(&self) -> Vec<(String, u64, i64, i64)> {
        self.result
            .types
            .iter()
            .map(|t| (t.name.clone(), t.count, t.count_delta, t.bytes_delta))
            .collect()
    }

    /// How many suspects ``ignore`` left out.
    #[getter]
    fn ignored(&self) -> usize {
        self.result.ignored
    }

    /// Groups of new objects left out as work in flight: held, in a container made since the
    /// earlier snapshot, only by a function that was still running (a request being handled).
    /// Its return frees them; compare again to see whether it does.
    #[getter]
    fn in_flight(&self) -> Vec<PySuspect> {
        self.result
            .in_flight
            .iter()
            .map(|s| PySuspect::new(&self.after, s))
            .collect()
    }

    /// Objects of the later snapshot that were not in the earlier one.
    #[getter]
    fn new_objects(&self) -> u64 {
        self.result.new_objects
    }

    /// Their shallow size in bytes.
    #[getter]
    fn new_size(&self) -> u64 {
        self.result.new_bytes
    }

    /// Whether there are leak suspects.
    fn __bool__(&self) -> bool {
        !self.result.suspects.is_empty()
    }

    fn __str__(&self) -> String {
        report::diff_report(self.before.graph(), self.after.graph(), &self.result, 15)
    }

    fn __repr__(&self) -> String {
        format!(
            "<heaplens.SnapshotDiff: {} new objects, {} suspects>",
            self.result.new_objects,
            self.result.suspects.len()
        )
    }
}
