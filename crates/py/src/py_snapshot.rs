//! `heaplens.snapshot()` and the Python view of a snapshot graph.
//!
//! A snapshot holds no reference to any Python object: it is the graph of what the heap was when
//! it was taken, keyed by object address (``id(obj)``), so it can outlive the objects it
//! describes, and be saved and analysed elsewhere. Its analysis (dominators, retaining paths) is
//! computed on first use, with the GIL released, and shared by every view of the snapshot.

use crate::errors::capture_error;
use crate::py_analysis::{PyRetainingPath, PySnapshotDiff};
use crate::py_census::PyCensus;
use crate::take::{Failure, Taken};
use heaplens_capture::{self as capture, SnapshotOptions};
use heaplens_core::analysis::diff::{check_pair, DiffOptions};
use heaplens_core::analysis::dominators::Dominators;
use heaplens_core::analysis::paths::RetainingPaths;
use heaplens_core::analysis::report;
use heaplens_core::analysis::reverse::StrongPredecessors;
use heaplens_core::analysis::Analysed;
use heaplens_core::census::Census;
use heaplens_core::graph::{NodeFlags, NodeId};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyInt};
use std::sync::Arc;

/// The one analysed-snapshot type of the core, shared by every view of a snapshot.
pub type SnapshotData = Analysed;

/// A part of a snapshot's analysis, computed the first time with the GIL released (the
/// program's other threads run meanwhile); another thread asking meanwhile waits for it, with
/// the GIL released too.
fn detached<'a, T: Sync>(
    py: Python<'_>,
    computed: Option<&'a T>,
    compute: impl FnOnce() -> &'a T + Send,
) -> &'a T {
    computed.unwrap_or_else(|| py.detach(compute))
}

/// [`Analysed`]'s parts, computed without holding the GIL.
pub trait AnalysedInPython {
    fn dominators_in(&self, py: Python<'_>) -> &Dominators;
    fn paths_in(&self, py: Python<'_>) -> &RetainingPaths;
    fn predecessors_in(&self, py: Python<'_>) -> &StrongPredecessors;
}

impl AnalysedInPython for Analysed {
    fn dominators_in(&self, py: Python<'_>) -> &Dominators {
        detached(py, self.computed_dominators(), || self.dominators())
    }

    fn paths_in(&self, py: Python<'_>) -> &RetainingPaths {
        detached(py, self.computed_paths(), || self.paths())
    }

    fn predecessors_in(&self, py: Python<'_>) -> &StrongPredecessors {
        detached(py, self.computed_predecessors(), || self.predecessors())
    }
}

/// The object graph of a whole heap at one moment: every object, with its type, shallow size
/// and flags, and every reference between objects with a label saying how it refers
/// (``.attr``, ``['key']``, ``[3]``, ``local 'x'``).
///
/// Look objects up by address (``snap[id(obj)]``, ``snap.get(address)``) or by the live object
/// (``snap.object(obj)``): each gives a :class:`SnapshotObject`. Ask why something is alive with
/// :meth:`paths_to`, :meth:`retained_size` and :meth:`top_retainers`; compare with an earlier
/// snapshot with :meth:`diff`.
#[pyclass(module = "heaplens", name = "Snapshot", frozen)]
pub struct PySnapshot {
    pub data: Arc<SnapshotData>,
}

/// One object of a :class:`Snapshot` (or a synthetic node: the root, a thread, a frame).
#[pyclass(module = "heaplens", name = "SnapshotObject", frozen)]
pub struct PySnapshotObject {
    pub data: Arc<SnapshotData>,
    pub node: NodeId,
}

pub fn view(data: &Arc<SnapshotData>, node: NodeId) -> PySnapshotObject {
    PySnapshotObject {
        data: Arc::clone(data),
        node,
    }
}

/// An address: an int (``id(obj)``, as objgraph's ``at()`` takes).
fn address(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "snapshot lookups take an address (an int such as id(obj)), not {}; \
             use snapshot.object(obj) to look up a live object",
            obj.get_type().name()?
        )));
    }
    obj.extract::<u64>()
        .map_err(|_| PyTypeError::new_err("an address must be a non-negative int"))
}

/// The address of a target: a SnapshotObject's, or a live object's ``id()`` (ints included).
fn target_address(obj: &Bound<'_, PyAny>) -> u64 {
    match obj.extract::<PyRef<'_, PySnapshotObject>>() {
        Ok(v) => v.data.graph().addr(v.node),
        Err(_) => obj.as_ptr() as u64,
    }
}

/// A pattern of ``ignore``: a str as it is, a class as the name heaplens shows for its type
/// (``app.models.Order``; ``dict`` for builtins).
fn ignore_pattern(item: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = item.extract::<String>() {
        return Ok(text);
    }
    if let Ok(t) = item.cast::<pyo3::types::PyType>() {
        let (module, qualname) = (t.module()?.to_string(), t.qualname()?.to_string());
        return Ok(if module == "builtins" {
            qualname
        } else {
            format!("{module}.{qualname}")
        });
    }
    Err(PyTypeError::new_err(format!(
        "ignore takes type or place names (or classes), not {}",
        item.get_type().name()?
    )))
}

impl PySnapshot {
    /// For each type named in `types`, with how much it grew, where its objects accumulate
    /// ([`heaplens_core::analysis::held::where_held`]).
    pub fn holders_by_type(
        &self,
        py: Python<'_>,
        types: &[(String, u64)],
    ) -> Vec<heaplens_core::analysis::held::WhereHeld> {
        let paths = self.data.paths_in(py);
        let graph = self.data.graph();
        py.detach(|| heaplens_core::analysis::held::where_held(graph, paths, types))
    }

    /// The node of `obj`: a SnapshotObject of this snapshot, or a live object.
    fn node_of(&self, obj: &Bound<'_, PyAny>) -> PyResult<NodeId> {
        if let Ok(v) = obj.extract::<PyRef<'_, PySnapshotObject>>() {
            if Arc::ptr_eq(&v.data, &self.data) {
                return Ok(v.node);
            }
        }
        let addr = target_address(obj);
        self.data.graph().node_by_addr(addr).ok_or_else(|| {
            PyKeyError::new_err(format!("the object at {addr:#x} is not in this snapshot"))
        })
    }
}

#[pymethods]
impl PySnapshot {
    /// The number of objects (synthetic nodes not included).
    fn __len__(&self) -> usize {
        self.data.graph().objects().count()
    }

    /// Nodes in the graph, synthetic ones included.
    #[getter]
    fn node_count(&self) -> usize {
        self.data.graph().node_count()
    }

    /// References in the graph (root edges included).
    #[getter]
    fn edge_count(&self) -> usize {
        self.data.graph().edge_count()
    }

    /// ``sys.version`` of the process the snapshot was taken in.
    #[getter]
    fn python_version(&self) -> &str {
        &self.data.graph().meta().python_version
    }

    /// Process id of the process the snapshot was taken in.
    #[getter]
    fn pid(&self) -> u32 {
        self.data.graph().meta().pid
    }

    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    #[getter]
    fn taken_at_ms(&self) -> u64 {
        self.data.graph().meta().taken_at_ms
    }

    /// Bytes of memory the snapshot itself uses (and its analysis, once computed).
    #[getter]
    fn memory_size(&self) -> usize {
        self.data.heap_bytes()
    }

    /// The census of the snapshot: every object, unreachable garbage included.
    fn census(&self) -> PyCensus {
        PyCensus {
            inner: Arc::new(Census::from_graph(self.data.graph())),
        }
    }

    /// The object at ``address`` (an int such as ``id(obj)``), or None.
    fn get(&self, address: &Bound<'_, PyAny>) -> PyResult<Option<PySnapshotObject>> {
        let addr = self::address(address)?;
        Ok(self
            .data
            .graph()
            .node_by_addr(addr)
            .map(|n| view(&self.data, n)))
    }

    /// The snapshot's record of ``obj`` (a live object, found by ``id(obj)``).
    fn object(&self, obj: &Bound<'_, PyAny>) -> PyResult<PySnapshotObject> {
        Ok(view(&self.data, self.node_of(obj)?))
    }

    fn __getitem__(&self, address: &Bound<'_, PyAny>) -> PyResult<PySnapshotObject> {
        let addr = self::address(address)?;
        self.data
            .graph()
            .node_by_addr(addr)
            .map(|n| view(&self.data, n))
            .ok_or_else(|| PyKeyError::new_err(format!("no object at {addr:#x} in this snapshot")))
    }

    fn __contains__(&self, address: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self
            .data
            .graph()
            .node_by_addr(self::address(address)?)
            .is_some())
    }

    /// The objects whose type ``name`` names (``"dict"``, ``"Order"``, ``"myapp.Order"``).
    fn by_type(&self, name: &str) -> Vec<PySnapshotObject> {
        let g = self.data.graph();
        let named = g.types().matching(g.strings(), name);
        g.objects()
            .filter(|&n| named[g.type_id(n).0 as usize])
            .map(|n| view(&self.data, n))
            .collect()
    }

    /// Objects no root reaches: cyclic garbage the collector has not freed yet.
    fn unreachable(&self) -> Vec<PySnapshotObject> {
        let g = self.data.graph();
        g.objects()
            .filter(|&n| g.flags(n).contains(NodeFlags::UNREACHABLE))
            .map(|n| view(&self.data, n))
            .collect()
    }

    /// The roots, as ``(label, object)`` pairs: modules in ``sys.modules``, thread stacks, and
    /// objects referenced from outside the Python heap (``<external>``).
    fn roots(&self) -> Vec<(String, PySnapshotObject)> {
        let g = self.data.graph();
        g.edges(g.root())
            .map(|(t, l)| (g.describe_label(l), view(&self.data, t)))
            .collect()
    }

    /// The synthetic root node.
    #[getter]
    fn root(&self) -> PySnapshotObject {
        view(&self.data, self.data.graph().root())
    }

    /// The thread stacks, as synthetic nodes whose referents are their frames.
    fn threads(&self) -> Vec<PySnapshotObject> {
        let g = self.data.graph();
        (0..g.node_count() as NodeId)
            .filter(|&n| g.flags(n).contains(NodeFlags::THREAD))
            .map(|n| view(&self.data, n))
            .collect()
    }

    /// Computes the analysis (dominator tree, retained sizes, retaining paths) now rather than
    /// on the first query that needs it. The GIL is released while it runs.
    fn analyze(&self, py: Python<'_>) {
        py.detach(|| self.data.compute_all());
    }

    /// Why ``obj`` is alive: up to ``k`` distinct retaining paths from the roots, shortest
    /// first, each labelled hop by hop (``module app -> .__dict__['CACHE'] -> dict['k'] ->
    /// list[3] -> app.Order``). Weak references are never followed.
    #[pyo3(signature = (obj, k=1))]
    fn paths_to(
        &self,
        py: Python<'_>,
        obj: &Bound<'_, PyAny>,
        k: usize,
    ) -> PyResult<Vec<PyRetainingPath>> {
        let node = self.node_of(obj)?;
        let (paths, preds) = (self.data.paths_in(py), self.data.predecessors_in(py));
        Ok(paths
            .paths(self.data.graph(), preds, node, k)
            .into_iter()
            .map(|p| PyRetainingPath::new(&self.data, p))
            .collect())
    }

    /// The shortest retaining path to ``obj``, or None for the root itself.
    fn path_to(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Option<PyRetainingPath>> {
        let node = self.node_of(obj)?;
        Ok(self
            .data
            .paths_in(py)
            .path(self.data.graph(), node)
            .map(|p| PyRetainingPath::new(&self.data, p)))
    }

    /// The bytes that freeing ``obj`` would free: its size and that of everything only it
    /// keeps alive (the objects it dominates).
    fn retained_size(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<u64> {
        let node = self.node_of(obj)?;
        Ok(self.data.dominators_in(py).retained_size(node))
    }

    /// The ``limit`` objects that keep the most memory alive, as ``(object, retained size)``,
    /// largest first. Modules, classes and their ``__dict__`` are left out (they retain their
    /// globals and attributes by design).
    #[pyo3(signature = (limit=10))]
    fn top_retainers(&self, py: Python<'_>, limit: usize) -> Vec<(PySnapshotObject, u64)> {
        let g = self.data.graph();
        let (dominators, paths) = (self.data.dominators_in(py), self.data.paths_in(py));
        dominators
            .top_retainers(g, limit, |v| report::is_infrastructure(g, paths, v))
            .into_iter()
            .map(|v| (view(&self.data, v), dominators.retained_size(v)))
            .collect()
    }

    /// What grew since ``before`` (an earlier snapshot of the same process) and what holds it:
    /// the leak suspects, each with the container that accumulates the new objects and its
    /// retaining path. A group of new objects is a suspect when it has at least ``min_objects``
    /// objects or ``min_size`` bytes of growth: new objects that replaced old ones in a
    /// container that did not grow (a bounded cache churning), or that fill one up to the bound
    /// it declares (``lru_cache(maxsize=N)``, ``deque(maxlen=N)``), are not growth, and heaplens'
    /// own frames and objects are left out. ``ignore`` names what you know is no leak: types
    /// (``"app.models.Order"``) or places (``"app.cache.CACHE"``, a module global;
    /// ``"app.Registry.handlers"``, a class attribute; ``"app.Service.cache"``, an instance
    /// attribute), ``*`` matching any run of characters; a suspect is left out when one names its
    /// type or a type or place on its path. Raises ValueError for snapshots of another process,
    /// or when ``before`` was taken after this one.
    #[pyo3(signature = (before, *, min_objects=10, min_size=1 << 20, limit=10, ignore=Vec::new()))]
    fn diff(
        &self,
        py: Python<'_>,
        before: &PySnapshot,
        min_objects: u64,
        min_size: u64,
        limit: usize,
        ignore: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<PySnapshotDiff> {
        let ignore = ignore
            .iter()
            .map(ignore_pattern)
            .collect::<PyResult<Vec<String>>>()?;
        // Refused before anything is computed.
        check_pair(before.data.graph(), self.data.graph()).map_err(crate::errors::core_error)?;
        let options = DiffOptions {
            min_objects,
            min_bytes: min_size,
            max_suspects: limit,
            ignore: heaplens_core::analysis::ignore::Ignore::new(ignore),
            keep_bounded: false,
        };
        let mut result = py
            .detach(|| self.data.diff_since(&before.data, options))
            .map_err(crate::errors::core_error)?;
        crate::allocated::fill(py, self.data.graph(), &mut result);
        Ok(PySnapshotDiff::new(&before.data, &self.data, result))
    }

    /// Where the objects of the types named in ``types`` (``"myapp.Order"``, ``"dict"``)
    /// accumulate: the containers holding most of them, largest first, as :class:`Suspect`
    /// (``holder_path``, ``entries``, ``sample``). For types known to grow, from a history of
    /// censuses, this says what keeps them; no earlier snapshot is needed.
    #[pyo3(signature = (types, *, min_objects=1, limit=5))]
    fn holders(
        &self,
        py: Python<'_>,
        types: Vec<String>,
        min_objects: u64,
        limit: usize,
    ) -> Vec<crate::py_analysis::PySuspect> {
        let paths = self.data.paths_in(py);
        let options = DiffOptions {
            min_objects,
            min_bytes: u64::MAX,
            max_suspects: limit,
            ..DiffOptions::default()
        };
        let graph = self.data.graph();
        let found = py.detach(|| {
            heaplens_core::analysis::accumulation::holders_of_types(graph, paths, &types, options)
        });
        found
            .iter()
            .map(|s| crate::py_analysis::PySuspect::new(&self.data, s))
            .collect()
    }

    /// The walk behind the pictures (:func:`heaplens.show_refs`, :func:`heaplens.show_backrefs`):
    /// from the objects at ``starts``, along references (or, with ``backwards``, referrers) up
    /// to ``max_depth`` away, at most ``too_many`` neighbours per object, never through the
    /// addresses in ``ignore`` or frames running code from ``skip_frames_in``. ``keep``, if given,
    /// is called with a list of candidate addresses per level and returns which to draw; ``only``
    /// restricts the walk to those addresses. Returns ``(nodes, edges, elided)``: nodes as
    /// ``(address, title, text, size, is_root, depth)``, edges as ``(from, to, label)`` node
    /// indices, and ``(node index, count)`` of neighbours left out.
    #[pyo3(signature = (starts, backwards, max_depth, too_many, ignore, keep=None, only=None, skip_frames_in=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn _neighbourhood<'py>(
        &self,
        py: Python<'py>,
        starts: Vec<u64>,
        backwards: bool,
        max_depth: usize,
        too_many: usize,
        ignore: Vec<u64>,
        keep: Option<Bound<'py, PyAny>>,
        only: Option<Vec<u64>>,
        skip_frames_in: Vec<String>,
    ) -> PyResult<crate::py_pictures::NeighbourhoodResult> {
        crate::py_pictures::neighbourhood(
            py,
            &self.data,
            crate::py_pictures::Walk {
                starts,
                backwards,
                max_depth,
                too_many,
                ignore,
                keep,
                only,
                skip_frames_in,
            },
        )
    }

    /// Writes the snapshot to ``path`` (a ``.hlsnap`` file: versioned, compressed, checksummed;
    /// read it back with :func:`heaplens.load` or the ``heaplens`` command line). The file is
    /// replaced atomically: a failed save leaves no partial file.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let graph = self.data.graph();
        py.detach(|| heaplens_core::snapfile::save(graph, &path))
            .map_err(crate::errors::core_error)
    }

    /// Writes the snapshot in another tool's format: ``format="chrome"`` writes a
    /// ``.heapsnapshot`` for Chrome DevTools' Memory panel.
    #[pyo3(signature = (path, format="chrome"))]
    fn export(&self, py: Python<'_>, path: std::path::PathBuf, format: &str) -> PyResult<()> {
        if format != "chrome" {
            return Err(PyValueError::new_err(format!(
                "unknown export format {format:?}; heaplens exports \"chrome\""
            )));
        }
        let graph = self.data.graph();
        py.detach(|| {
            // Atomically, through a symbolic link, never over a FIFO or a device (as `save`).
            heaplens_core::output::write_atomically(&path, |file| {
                let io = |source| heaplens_core::Error::Io {
                    path: path.display().to_string(),
                    source,
                };
                let mut out = std::io::BufWriter::new(file);
                heaplens_core::render::chrome::write_heapsnapshot(graph, &mut out)?;
                out.into_inner().map_err(|e| io(e.into_error()))
            })
        })
        .map_err(crate::errors::core_error)
    }

    /// A readable summary: biggest types, biggest retainers with their paths, garbage.
    #[pyo3(signature = (limit=10))]
    fn report(&self, py: Python<'_>, limit: usize) -> String {
        let (dominators, paths) = (self.data.dominators_in(py), self.data.paths_in(py));
        report::snapshot_report(self.data.graph(), dominators, paths, limit)
    }

    fn __repr__(&self) -> String {
        format!(
            "<heaplens.Snapshot of {} objects, {} references>",
            self.data.graph().objects().count(),
            self.data.graph().edge_count()
        )
    }
}

#[pymethods]
impl PySnapshotObject {
    /// The object's address (its ``id()``); 0 for synthetic nodes.
    #[getter]
    fn address(&self) -> u64 {
        self.data.graph().addr(self.node)
    }

    /// The type name heaplens shows (``dict``, ``myapp.Order``; ``(thread)``, ``(frame)`` and
    /// ``(root)`` for synthetic nodes).
    #[getter]
    #[pyo3(name = "type")]
    fn type_name(&self) -> String {
        self.data.graph().type_name(self.node)
    }

    /// Shallow size in bytes (``sys.getsizeof``).
    #[getter]
    fn size(&self) -> u64 {
        self.data.graph().size(self.node)
    }

    /// The node's flags: ``gc_tracked``, ``module``, ``type``, ``frame``, ``unreachable``,
    /// ``synthetic``, ``external``, ``thread``.
    #[getter]
    fn flags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.data.graph().flags(self.node).names())
    }

    /// Whether the object is cyclic garbage no root reaches.
    #[getter]
    fn unreachable(&self) -> bool {
        self.data
            .graph()
            .flags(self.node)
            .contains(NodeFlags::UNREACHABLE)
    }

    /// Whether the object is tracked by the garbage collector.
    #[getter]
    fn gc_tracked(&self) -> bool {
        self.data
            .graph()
            .flags(self.node)
            .contains(NodeFlags::GC_TRACKED)
    }

    /// The name of a module, class or function, or of a synthetic node (a thread's name,
    /// ``func (file:line)`` for a frame); None otherwise.
    #[getter]
    fn name(&self) -> Option<String> {
        self.data.graph().name(self.node).map(str::to_string)
    }

    /// What this object refers to: ``(label, object)`` pairs in the object's own order.
    #[getter]
    fn referents(&self) -> Vec<(String, PySnapshotObject)> {
        let g = self.data.graph();
        g.edges(self.node)
            .map(|(t, l)| (g.describe_label(l), view(&self.data, t)))
            .collect()
    }

    /// What refers to this object: ``(label, object)`` pairs. Scans the whole graph.
    #[getter]
    fn referrers(&self) -> Vec<(String, PySnapshotObject)> {
        let g = self.data.graph();
        g.referrers(self.node)
            .into_iter()
            .map(|(s, l)| (g.describe_label(l), view(&self.data, s)))
            .collect()
    }

    /// The bytes freeing this object would free (see :meth:`Snapshot.retained_size`).
    #[getter]
    fn retained_size(&self, py: Python<'_>) -> u64 {
        self.data.dominators_in(py).retained_size(self.node)
    }

    /// The shortest retaining path to this object, or None for the root.
    #[getter]
    fn path(&self, py: Python<'_>) -> Option<PyRetainingPath> {
        self.data
            .paths_in(py)
            .path(self.data.graph(), self.node)
            .map(|p| PyRetainingPath::new(&self.data, p))
    }

    /// Labels of the references from this object to ``target`` (a live object, or a
    /// SnapshotObject); empty if it does not refer to it.
    fn labels_to(&self, target: &Bound<'_, PyAny>) -> Vec<String> {
        let addr = target_address(target);
        let g = self.data.graph();
        g.edges(self.node)
            .filter(|(t, _)| g.addr(*t) == addr && !g.flags(*t).contains(NodeFlags::SYNTHETIC))
            .map(|(_, l)| g.describe_label(l))
            .collect()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.extract::<PyRef<'_, PySnapshotObject>>() {
            Ok(o) => Arc::ptr_eq(&self.data, &o.data) && o.node == self.node,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        (Arc::as_ptr(&self.data) as u64).wrapping_mul(31) ^ self.node as u64
    }

    fn __repr__(&self) -> String {
        let g = self.data.graph();
        match g.name(self.node) {
            Some(name) => format!("<{} {}>", g.type_name(self.node), name),
            None => format!(
                "<{} at {:#x}, {} bytes>",
                g.type_name(self.node),
                g.addr(self.node),
                g.size(self.node)
            ),
        }
    }
}

/// Takes a snapshot of the heap. ``thread_names`` maps ``threading.get_ident()`` values to names
/// (gathered by the Python wrapper before the walk, which runs no Python code). With ``fork``,
/// in a forked child where it can be (the program is held for the fork only), else in the
/// program. With ``path``, the snapshot is written there (atomically, as
/// :meth:`Snapshot.save`) and the number of objects in it is returned.
#[pyfunction]
#[pyo3(signature = (thread_names=None, path=None, fork=false))]
pub fn snapshot(
    py: Python<'_>,
    thread_names: Option<&Bound<'_, PyDict>>,
    path: Option<std::path::PathBuf>,
    fork: bool,
) -> PyResult<Py<PyAny>> {
    let mut options = SnapshotOptions::default();
    if let Some(names) = thread_names {
        for (k, v) in names.iter() {
            options.thread_names.insert(k.extract()?, v.extract()?);
        }
    }
    let taken = crate::take::start(py, options, fork).map_err(capture_error)?;
    let graph = match (taken, path) {
        (Taken::Walked(graph), None) => *graph,
        (Taken::Walked(graph), Some(path)) => {
            py.detach(|| heaplens_core::snapfile::save(&graph, &path))
                .map_err(crate::errors::core_error)?;
            let objects = graph.objects().count();
            return Ok(objects.into_pyobject(py)?.into_any().unbind());
        }
        (Taken::Forked(child), path) => {
            // A Ctrl-C while the child works stops the wait (and the child).
            let pending = std::sync::Mutex::new(None);
            let interrupted = || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        true
                    }
                })
            };
            let read = py.detach(|| match &path {
                None => crate::take::read_graph(child, Some(&interrupted)).map(Ok),
                Some(path) => crate::take::write_file(child, path, Some(&interrupted)).map(Err),
            });
            match read {
                Ok(Ok(graph)) => graph,
                Ok(Err(objects)) => return Ok(objects.into_pyobject(py)?.into_any().unbind()),
                Err(Failure::Interrupted) => {
                    let error = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                    return Err(error.unwrap_or_else(|| {
                        pyo3::exceptions::PyKeyboardInterrupt::new_err("interrupted")
                    }));
                }
                Err(Failure::Capture(e)) => return Err(capture_error(e)),
                Err(Failure::Core(e)) => return Err(crate::errors::core_error(e)),
            }
        }
    };
    // Without the interpreter's lock: wrapping a large graph gives the memory its making freed
    // back to the system (a few milliseconds).
    let snapshot = PySnapshot {
        data: Arc::new(py.detach(|| Analysed::new(graph))),
    };
    Ok(Py::new(py, snapshot)?.into_any())
}

/// The objects within ``max_depth`` references of ``objects``, as a small snapshot (no paths,
/// no garbage: it does not know who refers to them from outside), with each of them by address;
/// ``None`` when there are more than ``max_objects``. Forward pictures use it instead of a whole
/// snapshot.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn snapshot_around(
    py: Python<'_>,
    objects: Vec<Bound<'_, PyAny>>,
    max_depth: usize,
    max_objects: usize,
) -> PyResult<Option<(PySnapshot, std::collections::HashMap<u64, Py<PyAny>>)>> {
    let Some((graph, live)) =
        capture::snapshot_around(py, &objects, max_depth, max_objects).map_err(capture_error)?
    else {
        return Ok(None);
    };
    let by_address = live.into_iter().map(|o| (o.as_ptr() as u64, o)).collect();
    Ok(Some((
        PySnapshot {
            data: Arc::new(Analysed::new(graph)),
        },
        by_address,
    )))
}

/// Reads a snapshot file written by :meth:`Snapshot.save` (on this machine or another).
#[pyfunction]
pub fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<PySnapshot> {
    let analysed = py
        .detach(|| heaplens_core::snapfile::load(&path).map(Analysed::new))
        .map_err(crate::errors::core_error)?;
    Ok(PySnapshot {
        data: Arc::new(analysed),
    })
}
