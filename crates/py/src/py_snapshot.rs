//! `heaplens.snapshot()` and the Python view of a snapshot graph.
//!
//! A snapshot holds no reference to any Python object: it is the graph of what the heap was when
//! it was taken, keyed by object address (``id(obj)``), so it can outlive the objects it
//! describes (and later be saved and analysed elsewhere).

use crate::capture::{self, SnapshotOptions};
use crate::errors::capture_error;
use crate::py_census::PyCensus;
use heaplens_core::census::Census;
use heaplens_core::graph::{Graph, NodeFlags, NodeId};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyInt};
use std::sync::Arc;

/// The object graph of a whole heap at one moment: every object, with its type, shallow size
/// and flags, and every reference between objects with a label saying how it refers
/// (``.attr``, ``['key']``, ``[3]``, ``local 'x'``).
///
/// Look objects up by address: ``snap[id(obj)]`` or ``snap.get(id(obj))`` give a
/// :class:`SnapshotObject`.
#[pyclass(module = "heaplens", name = "Snapshot", frozen)]
pub struct PySnapshot {
    pub graph: Arc<Graph>,
}

/// One object of a :class:`Snapshot` (or a synthetic node: the root, a thread, a frame).
#[pyclass(module = "heaplens", name = "SnapshotObject", frozen)]
pub struct PySnapshotObject {
    graph: Arc<Graph>,
    node: NodeId,
}

fn view(graph: &Arc<Graph>, node: NodeId) -> PySnapshotObject {
    PySnapshotObject {
        graph: Arc::clone(graph),
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
        Ok(v) => v.graph.addr(v.node),
        Err(_) => obj.as_ptr() as u64,
    }
}

#[pymethods]
impl PySnapshot {
    /// The number of objects (synthetic nodes not included).
    fn __len__(&self) -> usize {
        self.graph.objects().count()
    }

    /// Nodes in the graph, synthetic ones included.
    #[getter]
    fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// References in the graph (root edges included).
    #[getter]
    fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// ``sys.version`` of the process the snapshot was taken in.
    #[getter]
    fn python_version(&self) -> &str {
        &self.graph.meta().python_version
    }

    /// Process id of the process the snapshot was taken in.
    #[getter]
    fn pid(&self) -> u32 {
        self.graph.meta().pid
    }

    /// Bytes of memory the snapshot itself uses.
    #[getter]
    fn memory_size(&self) -> usize {
        self.graph.heap_bytes()
    }

    /// The census of the snapshot: every object, unreachable garbage included.
    fn census(&self) -> PyCensus {
        PyCensus {
            inner: Arc::new(Census::from_graph(&self.graph)),
        }
    }

    /// The object at ``address`` (an int such as ``id(obj)``), or None.
    fn get(&self, address: &Bound<'_, PyAny>) -> PyResult<Option<PySnapshotObject>> {
        let addr = self::address(address)?;
        Ok(self.graph.node_by_addr(addr).map(|n| view(&self.graph, n)))
    }

    /// The snapshot's record of the live object ``obj`` (found by ``id(obj)``).
    fn object(&self, obj: &Bound<'_, PyAny>) -> PyResult<PySnapshotObject> {
        let addr = obj.as_ptr() as u64;
        self.graph
            .node_by_addr(addr)
            .map(|n| view(&self.graph, n))
            .ok_or_else(|| {
                PyKeyError::new_err(format!("the object at {addr:#x} is not in this snapshot"))
            })
    }

    fn __getitem__(&self, address: &Bound<'_, PyAny>) -> PyResult<PySnapshotObject> {
        let addr = self::address(address)?;
        self.graph
            .node_by_addr(addr)
            .map(|n| view(&self.graph, n))
            .ok_or_else(|| PyKeyError::new_err(format!("no object at {addr:#x} in this snapshot")))
    }

    fn __contains__(&self, address: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.graph.node_by_addr(self::address(address)?).is_some())
    }

    /// The objects whose type ``name`` names (``"dict"``, ``"Order"``, ``"myapp.Order"``).
    fn by_type(&self, name: &str) -> Vec<PySnapshotObject> {
        let g = &self.graph;
        g.objects()
            .filter(|&n| g.types().matches(g.type_id(n), g.strings(), name))
            .map(|n| view(g, n))
            .collect()
    }

    /// Objects no root reaches: cyclic garbage the collector has not freed yet.
    fn unreachable(&self) -> Vec<PySnapshotObject> {
        let g = &self.graph;
        g.objects()
            .filter(|&n| g.flags(n).contains(NodeFlags::UNREACHABLE))
            .map(|n| view(g, n))
            .collect()
    }

    /// The roots, as ``(label, object)`` pairs: modules in ``sys.modules``, thread stacks, and
    /// objects referenced from outside the Python heap (``<external>``).
    fn roots(&self) -> Vec<(String, PySnapshotObject)> {
        let g = &self.graph;
        g.edges(g.root())
            .map(|(t, l)| (g.describe_label(l), view(g, t)))
            .collect()
    }

    /// The synthetic root node.
    #[getter]
    fn root(&self) -> PySnapshotObject {
        view(&self.graph, self.graph.root())
    }

    /// The thread stacks, as synthetic nodes whose referents are their frames.
    fn threads(&self) -> Vec<PySnapshotObject> {
        let g = &self.graph;
        (0..g.node_count() as NodeId)
            .filter(|&n| g.flags(n).contains(NodeFlags::THREAD))
            .map(|n| view(g, n))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<heaplens.Snapshot of {} objects, {} references>",
            self.graph.objects().count(),
            self.graph.edge_count()
        )
    }
}

#[pymethods]
impl PySnapshotObject {
    /// The object's address (its ``id()``); 0 for synthetic nodes.
    #[getter]
    fn address(&self) -> u64 {
        self.graph.addr(self.node)
    }

    /// The type name heaplens shows (``dict``, ``myapp.Order``; ``(thread)``, ``(frame)`` and
    /// ``(root)`` for synthetic nodes).
    #[getter]
    #[pyo3(name = "type")]
    fn type_name(&self) -> String {
        self.graph.type_name(self.node)
    }

    /// Shallow size in bytes (``sys.getsizeof``).
    #[getter]
    fn size(&self) -> u64 {
        self.graph.size(self.node)
    }

    /// The node's flags: ``gc_tracked``, ``module``, ``type``, ``frame``, ``unreachable``,
    /// ``synthetic``, ``external``, ``thread``.
    #[getter]
    fn flags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.graph.flags(self.node).names())
    }

    /// Whether the object is cyclic garbage no root reaches.
    #[getter]
    fn unreachable(&self) -> bool {
        self.graph.flags(self.node).contains(NodeFlags::UNREACHABLE)
    }

    /// Whether the object is tracked by the garbage collector.
    #[getter]
    fn gc_tracked(&self) -> bool {
        self.graph.flags(self.node).contains(NodeFlags::GC_TRACKED)
    }

    /// The name of a synthetic node (a thread's name, ``func (file:line)`` for a frame).
    #[getter]
    fn name(&self) -> Option<String> {
        self.graph.name(self.node).map(str::to_string)
    }

    /// What this object refers to: ``(label, object)`` pairs in the object's own order.
    #[getter]
    fn referents(&self) -> Vec<(String, PySnapshotObject)> {
        let g = &self.graph;
        g.edges(self.node)
            .map(|(t, l)| (g.describe_label(l), view(g, t)))
            .collect()
    }

    /// What refers to this object: ``(label, object)`` pairs. Scans the whole graph.
    #[getter]
    fn referrers(&self) -> Vec<(String, PySnapshotObject)> {
        let g = &self.graph;
        g.referrers(self.node)
            .into_iter()
            .map(|(s, l)| (g.describe_label(l), view(g, s)))
            .collect()
    }

    /// Labels of the references from this object to ``target`` (a live object, or a
    /// SnapshotObject); empty if it does not refer to it.
    fn labels_to(&self, target: &Bound<'_, PyAny>) -> Vec<String> {
        let addr = target_address(target);
        let g = &self.graph;
        g.edges(self.node)
            .filter(|(t, _)| g.addr(*t) == addr && !g.flags(*t).contains(NodeFlags::SYNTHETIC))
            .map(|(_, l)| g.describe_label(l))
            .collect()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.extract::<PyRef<'_, PySnapshotObject>>() {
            Ok(o) => Arc::ptr_eq(&self.graph, &o.graph) && o.node == self.node,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        (Arc::as_ptr(&self.graph) as u64).wrapping_mul(31) ^ self.node as u64
    }

    fn __repr__(&self) -> String {
        let g = &self.graph;
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
/// (gathered by the Python wrapper before the walk, which runs no Python code).
#[pyfunction]
#[pyo3(signature = (thread_names=None))]
pub fn snapshot(py: Python<'_>, thread_names: Option<&Bound<'_, PyDict>>) -> PyResult<PySnapshot> {
    let mut options = SnapshotOptions::default();
    if let Some(names) = thread_names {
        for (k, v) in names.iter() {
            options.thread_names.insert(k.extract()?, v.extract()?);
        }
    }
    let graph = capture::snapshot(py, &options).map_err(capture_error)?;
    Ok(PySnapshot {
        graph: Arc::new(graph),
    })
}
