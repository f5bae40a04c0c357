//! `heaplens.census()` and its result: per-type counts and bytes.

use crate::errors::capture_error;
use heaplens_capture as capture;
use heaplens_core::census::{Census, TypeStat};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Arc;

/// One row of a census: a type, how many objects it has and how many bytes they take.
#[pyclass(module = "heaplens", name = "TypeStat", frozen)]
#[derive(Clone)]
pub struct PyTypeStat {
    /// The name heaplens shows: ``dict``, ``collections.OrderedDict``, ``myapp.Order``.
    #[pyo3(get)]
    name: String,
    /// ``type(obj).__name__`` (objgraph's short name).
    #[pyo3(get)]
    short_name: String,
    /// ``module.__name__`` (objgraph's long name, ``builtins.dict``).
    #[pyo3(get)]
    long_name: String,
    #[pyo3(get)]
    count: u64,
    /// Total shallow size in bytes (``sys.getsizeof`` summed).
    #[pyo3(get)]
    size: u64,
    /// The type overrides ``__sizeof__`` in a way heaplens does not replicate: ``size`` is a
    /// lower bound.
    #[pyo3(get)]
    approximate_size: bool,
}

impl From<&TypeStat> for PyTypeStat {
    fn from(r: &TypeStat) -> Self {
        PyTypeStat {
            name: r.name.clone(),
            short_name: r.short_name.clone(),
            long_name: r.long_name.clone(),
            count: r.count,
            size: r.bytes,
            approximate_size: r.approximate_size,
        }
    }
}

#[pymethods]
impl PyTypeStat {
    fn __repr__(&self) -> String {
        format!(
            "TypeStat(name={:?}, count={}, size={}{})",
            self.name,
            self.count,
            self.size,
            if self.approximate_size {
                ", approximate_size=True"
            } else {
                ""
            }
        )
    }
}

/// Per-type object counts and shallow bytes of a heap, largest count first.
///
/// Index it by type name (``census["dict"]``, ``census["myapp.Order"]``), iterate over its
/// :class:`TypeStat` rows, or print it for a table.
#[pyclass(module = "heaplens", name = "Census", frozen)]
pub struct PyCensus {
    pub inner: Arc<Census>,
}

#[pymethods]
impl PyCensus {
    /// Whether only gc-tracked objects were counted (objgraph's view).
    #[getter]
    fn gc_only(&self) -> bool {
        self.inner.gc_only
    }

    /// Objects counted.
    #[getter]
    fn total_count(&self) -> u64 {
        self.inner.total_count()
    }

    /// Bytes counted.
    #[getter]
    fn total_size(&self) -> u64 {
        self.inner.total_bytes()
    }

    /// The rows, largest count first.
    #[getter]
    fn rows(&self) -> Vec<PyTypeStat> {
        self.inner.rows().iter().map(PyTypeStat::from).collect()
    }

    /// The number of objects of type ``name`` (0 if there are none). A short name (``Order``)
    /// counts every type with that ``__name__``.
    fn count(&self, name: &str) -> u64 {
        self.inner.count(name)
    }

    /// The ``limit`` largest rows, by ``"count"`` or by ``"size"``.
    #[pyo3(signature = (limit=10, by="count"))]
    fn top(&self, limit: usize, by: &str) -> PyResult<Vec<PyTypeStat>> {
        match by {
            "count" => Ok(self
                .inner
                .rows()
                .iter()
                .take(limit)
                .map(PyTypeStat::from)
                .collect()),
            "size" | "bytes" => Ok(self
                .inner
                .top_by_bytes(limit)
                .into_iter()
                .map(PyTypeStat::from)
                .collect()),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "by must be 'count' or 'size', not {other:?}"
            ))),
        }
    }

    /// What changed since ``before``: a list of ``(name, count, count_delta, size_delta)``,
    /// largest growth first.
    fn diff(&self, before: &PyCensus) -> Vec<(String, u64, i64, i64)> {
        self.inner
            .diff(&before.inner)
            .into_iter()
            .map(|d| (d.name, d.count, d.count_delta, d.bytes_delta))
            .collect()
    }

    /// ``{name: (count, size)}``.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for r in self.inner.rows() {
            d.set_item(&r.name, (r.count, r.bytes))?;
        }
        Ok(d)
    }

    /// ``(short_or_long_name, count, generic)`` with every row, for objgraph-style aggregation;
    /// ``generic`` says the type is a builtin or a weak reference (one a developer would not
    /// name as the leak), which ranking needs and a short name no longer tells. Without
    /// ``own``, heaplens' own types (its snapshots, censuses, trackers) are left out: growth
    /// that reported the tool's own objects would be noise.
    #[pyo3(signature = (shortnames, own=true))]
    fn _name_counts(&self, shortnames: bool, own: bool) -> Vec<(String, u64, bool)> {
        self.inner
            .rows()
            .iter()
            .filter(|r| own || !heaplens_core::own::is_own_type(&r.name))
            .map(|r| {
                let name = if shortnames {
                    &r.short_name
                } else {
                    &r.long_name
                };
                (
                    name.clone(),
                    r.count,
                    heaplens_core::analysis::ranking::is_generic(&r.name),
                )
            })
            .collect()
    }

    /// A text table of the ``limit`` largest rows.
    #[pyo3(signature = (limit=20))]
    fn table(&self, limit: usize) -> String {
        self.inner.render(limit)
    }

    fn __getitem__(&self, name: &str) -> PyResult<PyTypeStat> {
        self.inner
            .get(name)
            .map(PyTypeStat::from)
            .ok_or_else(|| PyKeyError::new_err(name.to_string()))
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.get(name).is_some()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = PyList::new(py, self.rows())?;
        rows.try_iter().map(|it| it.into_any())
    }

    fn __str__(&self) -> String {
        self.inner.render(20)
    }

    fn __repr__(&self) -> String {
        format!(
            "<heaplens.Census of {} objects, {} bytes, {} types{}>",
            self.inner.total_count(),
            self.inner.total_bytes(),
            self.inner.len(),
            if self.inner.gc_only {
                ", gc-tracked only"
            } else {
                ""
            }
        )
    }
}

/// Counts and bytes per type of every live object (or, with ``gc_only``, of the gc-tracked
/// objects objgraph sees). Walks the heap without running Python code.
#[pyfunction]
#[pyo3(signature = (gc_only=false))]
pub fn census(py: Python<'_>, gc_only: bool) -> PyResult<PyCensus> {
    let c = capture::census(py, gc_only).map_err(capture_error)?;
    Ok(PyCensus { inner: Arc::new(c) })
}

/// The live objects whose type is named ``query`` (``"dict"``, ``"Order"``,
/// ``"myapp.models.Order"``), as a list.
#[pyfunction]
#[pyo3(signature = (query, gc_only=false))]
pub fn objects_of_type(py: Python<'_>, query: &str, gc_only: bool) -> PyResult<Vec<Py<PyAny>>> {
    capture::matching_objects(py, capture::TypeFilter::Named(query.to_string()), gc_only)
        .map_err(capture_error)
}

/// Every live object the walk finds (or every gc-tracked one), as a list.
#[pyfunction]
#[pyo3(signature = (gc_only=false))]
pub fn all_objects(py: Python<'_>, gc_only: bool) -> PyResult<Vec<Py<PyAny>>> {
    capture::matching_objects(py, capture::TypeFilter::Everything, gc_only).map_err(capture_error)
}

/// The live objects at the given addresses, as ``{address: object}`` (addresses whose object
/// no longer exists are left out). Safe where ``ctypes.cast(address, py_object)`` is not: only
/// objects the heap walk finds alive are returned. With ``gc_only``, only gc-tracked objects
/// are looked for (objgraph's ``at()``), which takes a fraction of the time.
#[pyfunction]
#[pyo3(signature = (addresses, gc_only=false))]
pub fn objects_at(
    py: Python<'_>,
    addresses: Vec<u64>,
    gc_only: bool,
) -> PyResult<std::collections::HashMap<u64, Py<PyAny>>> {
    Ok(capture::objects_at(py, &addresses, gc_only)
        .map_err(capture_error)?
        .into_iter()
        .collect())
}

/// The census of the given objects.
#[pyfunction]
pub fn census_of(py: Python<'_>, objects: Vec<Bound<'_, PyAny>>) -> PyResult<PyCensus> {
    let c = capture::census_of(py, &objects).map_err(capture_error)?;
    Ok(PyCensus { inner: Arc::new(c) })
}

/// The names of every type object in the process, with or without instances.
#[pyfunction]
pub fn type_names(py: Python<'_>) -> PyResult<std::collections::HashSet<String>> {
    Ok(capture::type_object_names(py)
        .map_err(capture_error)?
        .into_iter()
        .collect())
}

/// Whether the type ``tp`` is named by ``query``.
#[pyfunction]
pub fn type_matches(
    py: Python<'_>,
    tp: &Bound<'_, pyo3::types::PyType>,
    query: &str,
) -> PyResult<bool> {
    capture::type_matches(py, tp, query).map_err(capture_error)
}
