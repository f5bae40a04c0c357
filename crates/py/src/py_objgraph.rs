//! The searches behind `heaplens.objgraph`, the drop-in for objgraph: reference chains forward
//! and backward, leaking objects, and new objects since the last look.
//!
//! They answer with objgraph's definitions (references are what `tp_traverse` reports, referrers
//! are gc-tracked objects; see `capture::references`), in Rust: a forward search follows
//! references of live objects, a backward search finds the referrers of a whole level of the
//! search in one walk of the GC lists (objgraph calls `gc.get_referrers()`, a walk of them all,
//! once per object it visits). The predicate is called in objgraph's order, breadth first, on
//! objects the search holds references to, so Python code may run between steps safely.

use crate::errors::capture_error;
use hashbrown::HashSet;
use heaplens_capture as capture;
use heaplens_core::new_ids::NewIds;
use pyo3::prelude::*;
use pyo3::types::PySet;
use std::ops::Range;

/// The objects a search reached, each with the index of the one it was reached from.
struct Reached {
    objects: Vec<Py<PyAny>>,
    from: Vec<usize>,
    seen: HashSet<u64>,
}

impl Reached {
    /// The object at `i` and the ones it was reached through, back to the start.
    fn chain(&self, py: Python<'_>, mut i: usize) -> Vec<Py<PyAny>> {
        let mut chain = Vec::new();
        while i != usize::MAX {
            chain.push(self.objects[i].clone_ref(py));
            i = self.from[i];
        }
        chain
    }
}

/// objgraph's breadth-first chain search from `start`, a level at a time: `expand(objects,
/// level)` gives the `(index, neighbour)` pairs of the objects of `level`, in order. Returns the
/// chain `[match, ..., start]` to the first object for which `predicate` is true, or None. As
/// objgraph does, `start` itself is tested, and objects `max_depth` steps away are tested but
/// not expanded.
fn search(
    py: Python<'_>,
    start: &Bound<'_, PyAny>,
    predicate: &Bound<'_, PyAny>,
    max_depth: usize,
    mut expand: impl FnMut(&[Py<PyAny>], Range<usize>) -> PyResult<Vec<(usize, Py<PyAny>)>>,
) -> PyResult<Option<Vec<Py<PyAny>>>> {
    let mut reached = Reached {
        objects: vec![start.clone().unbind()],
        from: vec![usize::MAX],
        seen: HashSet::from([start.as_ptr() as u64]),
    };
    let mut level = 0..1;
    for depth in 0..=max_depth {
        for i in level.clone() {
            if predicate
                .call1((reached.objects[i].bind(py),))?
                .is_truthy()?
            {
                return Ok(Some(reached.chain(py, i)));
            }
        }
        if depth == max_depth {
            break;
        }
        let next = reached.objects.len();
        for (from, obj) in expand(&reached.objects, level)? {
            if reached.seen.insert(obj.as_ptr() as u64) {
                reached.objects.push(obj);
                reached.from.push(from);
            }
        }
        level = next..reached.objects.len();
        if level.is_empty() {
            break;
        }
    }
    Ok(None)
}

/// objgraph's ``find_ref_chain`` search: breadth first from ``obj`` along the references
/// ``gc.get_referents()`` reports, up to ``max_depth`` references away, never through the
/// addresses in ``ignore``. Returns ``[obj, ..., match]`` for the first object (in breadth-first
/// order) for which ``predicate`` is true, or None.
#[pyfunction]
pub fn ref_chain(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    predicate: &Bound<'_, PyAny>,
    max_depth: usize,
    ignore: Vec<u64>,
) -> PyResult<Option<Vec<Py<PyAny>>>> {
    let ignore: HashSet<u64> = ignore.into_iter().collect();
    let chain = search(py, obj, predicate, max_depth, |objects, level| {
        let mut out = Vec::new();
        for i in level {
            for r in capture::referents(py, objects[i].bind(py)) {
                if !ignore.contains(&(r.as_ptr() as u64)) {
                    out.push((i, r));
                }
            }
        }
        Ok(out)
    })?;
    Ok(chain.map(|mut c| {
        c.reverse();
        c
    }))
}

/// objgraph's ``find_backref_chain`` search: breadth first from ``obj`` along the gc-tracked
/// objects that refer to it (``gc.get_referrers()``), up to ``max_depth`` references away, never
/// through the addresses in ``ignore``. Returns ``[match, ..., obj]`` for the first object (in
/// breadth-first order) for which ``predicate`` is true, or None.
#[pyfunction]
pub fn backref_chain(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    predicate: &Bound<'_, PyAny>,
    max_depth: usize,
    ignore: Vec<u64>,
) -> PyResult<Option<Vec<Py<PyAny>>>> {
    let ignore: HashSet<u64> = ignore.into_iter().collect();
    search(py, obj, predicate, max_depth, |objects, level| {
        let targets: Vec<u64> = objects[level.clone()]
            .iter()
            .map(|o| o.as_ptr() as u64)
            .collect();
        let found = capture::referrers(py, &targets, &ignore).map_err(capture_error)?;
        Ok(found
            .into_iter()
            .map(|(i, r)| (level.start + i as usize, r))
            .collect())
    })
}

/// objgraph's ``get_leaking_objects``: the gc-tracked objects no other gc-tracked object refers
/// to, or, given ``objects``, those of them no gc-tracked object refers to (references from
/// the objects at the addresses in ``ignore`` do not count).
#[pyfunction]
#[pyo3(signature = (objects=None, ignore=Vec::new()))]
pub fn leaking_objects(
    py: Python<'_>,
    objects: Option<Vec<Bound<'_, PyAny>>>,
    ignore: Vec<u64>,
) -> PyResult<Vec<Py<PyAny>>> {
    match objects {
        Some(objects) => {
            let ignore: HashSet<u64> = ignore.into_iter().collect();
            capture::unreferenced_among(&objects, &ignore)
        }
        None => capture::unreferenced_tracked(py),
    }
    .map_err(capture_error)
}

/// One name in a :meth:`NewIds.update`: name, old count, current count, new ids.
type NewIdsRow<'py> = (String, u64, u64, Bound<'py, PySet>);

/// The state of objgraph's ``get_new_ids``: the addresses of the gc-tracked objects seen at the
/// last update, per type name, kept in Rust (no Python object per address).
#[pyclass(module = "heaplens._native", name = "NewIds")]
pub struct PyNewIds {
    inner: NewIds,
}

#[pymethods]
impl PyNewIds {
    #[new]
    fn new() -> Self {
        PyNewIds {
            inner: NewIds::new(),
        }
    }

    /// Looks at the gc-tracked objects now, by ``type(obj).__name__`` (or ``module.__name__``
    /// without ``shortnames``), and returns ``[(name, old count, current count, {new ids}),
    /// ...]`` for every name seen now or last time, in no particular order.
    fn update<'py>(&mut self, py: Python<'py>, shortnames: bool) -> PyResult<Vec<NewIdsRow<'py>>> {
        let groups = capture::gc_addresses_by_name(py, shortnames).map_err(capture_error)?;
        self.inner
            .update(groups)
            .into_iter()
            .map(|r| Ok((r.name, r.old, r.current, PySet::new(py, &r.new)?)))
            .collect()
    }
}
