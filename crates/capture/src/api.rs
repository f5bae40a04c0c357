//! The safe API over the walks: what heaplens-py calls. Each function takes the GIL token,
//! checks that the interpreter was resolved ([`crate::init`]) and that no collection is
//! running, dispatches to the ABI of the running interpreter, and turns borrowed pointers into
//! owned references before any Python code can run.

use crate::census as census_walk;
use crate::cpython::with_abi;
use crate::gc_lists::{GcLists, ListsError};
use crate::snapshot as snapshot_walk;
use crate::{abi, around, env, raw, references};
use heaplens_core::census::Census;
use heaplens_core::graph::Graph;
use pyo3::prelude::*;

pub use crate::forked::{fork_snapshot, fork_unavailable, Fork, ForkedSnapshot, NO_FORK_VARIABLE};
pub use crate::registry::TypeFilter;
pub use crate::snapshot::{SnapshotOptions, IMMORTAL_ROOT};

/// Resolves and checks the running interpreter; call once, with the GIL, before any capture
/// (the extension module does so when it is imported).
pub fn init(py: Python<'_>) {
    env::init(py);
}

/// Why captures cannot run in this interpreter (one sentence), or `None` when they can.
pub fn unsupported_reason() -> Option<String> {
    env::get().err()
}

/// `sys.version` of the interpreter, when captures can run in it.
pub fn python_version() -> Option<&'static str> {
    env::get().ok().map(|e| e.python_version.as_str())
}

/// Why a capture could not run.
#[derive(Debug)]
pub enum CaptureError {
    /// This interpreter is not one heaplens can walk (version, build).
    Unsupported(String),
    /// A garbage collection is running (the capture was called from a finalizer or gc callback).
    CollectionRunning,
    /// The heap is larger than the graph model holds.
    Core(heaplens_core::Error),
    /// The forked child that took the snapshot failed (see [`crate::forked`]): what it said,
    /// or how it ended.
    Child(String),
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Unsupported(why) => f.write_str(why),
            CaptureError::CollectionRunning => f.write_str(
                "cannot walk the heap while a garbage collection is running \
                 (called from __del__, a weakref callback or a gc callback?)",
            ),
            CaptureError::Core(e) => write!(f, "{e}"),
            CaptureError::Child(why) => f.write_str(why),
        }
    }
}

pub(crate) fn prepare() -> Result<(&'static env::Env, GcLists), CaptureError> {
    let env = env::get().map_err(CaptureError::Unsupported)?;
    // SAFETY: callers hold the GIL (they take a `Python` token).
    let lists = unsafe { GcLists::of_current_interpreter(env) }.map_err(|e| match e {
        ListsError::CollectionRunning => CaptureError::CollectionRunning,
    })?;
    Ok((env, lists))
}

/// A snapshot of the whole heap.
pub fn snapshot(_py: Python<'_>, options: &SnapshotOptions) -> Result<Graph, CaptureError> {
    let (env, lists) = prepare()?;
    let started = std::time::Instant::now();
    // SAFETY: the GIL is held (`_py`), and the walk runs no Python code.
    let numbering = snapshot_walk::Numbering::InHeaders;
    let threads = heaplens_core::parallel::threads();
    let mut walked_on = threads;
    let graph = with_abi!(env.abi, A => unsafe {
        match crate::split::snapshot::<A>(env, &lists, options, threads) {
            Ok(Some(graph)) => Ok(graph),
            Ok(None) => {
                walked_on = 1;
                snapshot_walk::snapshot::<A>(env, &lists, options, numbering)
            }
            Err(e) => Err(e),
        }
    })
    .map_err(CaptureError::Core)?;
    log::debug!(
        target: "heaplens.capture",
        "snapshot: {} nodes, {} references, {} bytes kept, in {:.3} s, walked on {} thread{}",
        graph.node_count(),
        graph.edge_count(),
        graph.heap_bytes(),
        started.elapsed().as_secs_f64(),
        walked_on,
        if walked_on == 1 { "" } else { "s" }
    );
    Ok(graph)
}

/// The objects within `max_depth` references of `starts`, as a small snapshot, and every one of
/// them as a new reference (node order); `None` when there are more than `max_objects`.
#[allow(clippy::type_complexity)]
pub fn snapshot_around(
    py: Python<'_>,
    starts: &[Bound<'_, PyAny>],
    max_depth: usize,
    max_objects: usize,
) -> Result<Option<(Graph, Vec<Py<PyAny>>)>, CaptureError> {
    let (env, _) = prepare()?;
    let ptrs: Vec<raw::Obj> = starts.iter().map(|o| o.as_ptr()).collect();
    // SAFETY: the GIL is held, the starts are alive (the caller holds them) and the walk runs no
    // Python code. Every node is an object reached through live references; references are
    // taken before anything else runs, as in `matching_objects`.
    unsafe {
        let around = with_abi!(env.abi, A => around::snapshot_around::<A>(
            env, &ptrs, max_depth, max_objects
        ));
        let Some(graph) = around else {
            return Ok(None);
        };
        let objects = graph
            .objects()
            .map(|n| Bound::from_borrowed_ptr(py, graph.addr(n) as raw::Obj).unbind())
            .collect();
        Ok(Some((graph, objects)))
    }
}

/// Per-type counts and bytes: of every object, or of gc-tracked objects only.
pub fn census(_py: Python<'_>, gc_only: bool) -> Result<Census, CaptureError> {
    let (env, lists) = prepare()?;
    let started = std::time::Instant::now();
    // SAFETY: the GIL is held, and the walk runs no Python code.
    let census = with_abi!(env.abi, A => unsafe { census_walk::census::<A>(env, &lists, gc_only) });
    log::debug!(
        target: "heaplens.capture",
        "census{}: {} objects of {} types, in {:.3} s",
        if gc_only { " (gc-tracked only)" } else { "" },
        census.total_count(),
        census.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(census)
}

/// A place in the collector's order of tracked objects: [`census_since`] counts the objects
/// tracked after it. It is a new empty list, held until the mark is dropped (one object, shown
/// as a `list` held outside the heap by the snapshots taken meanwhile).
pub struct Mark {
    object: Py<PyAny>,
    order: u64,
}

impl Mark {
    /// The order marks were placed in (a later mark is never older).
    pub fn order(&self) -> u64 {
        self.order
    }
}

/// Marks placed so far in this process.
static MARKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether [`place_mark`] gives marks in this interpreter.
pub fn marks_supported() -> bool {
    env::get().is_ok_and(|e| e.gc_next_flags == 0)
}

/// A new [`Mark`], or `None` where the collector does not keep its lists in the order objects
/// were tracked (the incremental collector of 3.14.0 to 3.14.4 moves objects between its old
/// spaces).
pub fn place_mark(py: Python<'_>) -> Result<Option<Mark>, CaptureError> {
    env::get().map_err(CaptureError::Unsupported)?;
    if !marks_supported() {
        return Ok(None);
    }
    // A list is tracked as it is made and never untracked.
    let object = pyo3::types::PyList::empty(py).into_any().unbind();
    let order = MARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some(Mark { object, order }))
}

/// Per-type counts and bytes of the gc-tracked objects tracked after each of `marks` (oldest
/// first), in one walk whose cost is the number of those objects, not the heap's size; `None`
/// when a mark has lost its place (`gc.freeze()` moved it). Take it right after a collection of
/// the young generations: two such censuses of one mark, with no collection of the oldest
/// generation between them, differ as two gc-only censuses of the whole heap would, less the
/// objects older than the mark that died meanwhile (see `census::census_since`).
pub fn census_since(py: Python<'_>, marks: &[&Mark]) -> Result<Option<Vec<Census>>, CaptureError> {
    let (env, lists) = prepare()?;
    let ptrs: Vec<raw::Obj> = marks.iter().map(|m| m.object.bind(py).as_ptr()).collect();
    let started = std::time::Instant::now();
    // SAFETY: the GIL is held (`py`), the marks are alive (held by `marks`), and the walk runs no
    // Python code.
    let censuses =
        with_abi!(env.abi, A => unsafe { census_walk::census_since::<A>(env, &lists, &ptrs) });
    log::debug!(
        target: "heaplens.capture",
        "census since {} mark(s): {:?} objects, in {:.6} s",
        marks.len(),
        censuses.as_ref().and_then(|c| c.first()).map(|c| c.total_count()),
        started.elapsed().as_secs_f64()
    );
    Ok(censuses)
}

/// The objects `filter` selects, as new references.
pub fn matching_objects(
    py: Python<'_>,
    filter: TypeFilter,
    gc_only: bool,
) -> Result<Vec<Py<PyAny>>, CaptureError> {
    let (env, lists) = prepare()?;
    // SAFETY: the GIL is held and the walk runs no Python code. Each pointer is turned into an
    // owned reference before anything else runs, so no object can die in between (taking a
    // reference allocates nothing and cannot trigger a collection).
    unsafe {
        let found = with_abi!(env.abi, A => census_walk::matching_objects::<A>(
            env, &lists, filter, gc_only
        ));
        Ok(found
            .into_iter()
            .map(|o| Bound::from_borrowed_ptr(py, o).unbind())
            .collect())
    }
}

/// The live objects at `addresses` (or, with `gc_only`, the gc-tracked ones), by address, as new
/// references.
pub fn objects_at(
    py: Python<'_>,
    addresses: &[u64],
    gc_only: bool,
) -> Result<Vec<(u64, Py<PyAny>)>, CaptureError> {
    let (env, lists) = prepare()?;
    let wanted: hashbrown::HashSet<u64> = addresses.iter().copied().collect();
    // SAFETY: as in `matching_objects`: references are taken before anything else runs.
    unsafe {
        let found =
            with_abi!(env.abi, A => census_walk::objects_at::<A>(env, &lists, &wanted, gc_only));
        Ok(found
            .into_iter()
            .map(|o| (o as u64, Bound::from_borrowed_ptr(py, o).unbind()))
            .collect())
    }
}

/// The census of the given objects.
pub fn census_of(_py: Python<'_>, objects: &[Bound<'_, PyAny>]) -> Result<Census, CaptureError> {
    let env = env::get().map_err(CaptureError::Unsupported)?;
    let ptrs: Vec<raw::Obj> = objects.iter().map(|o| o.as_ptr()).collect();
    // SAFETY: the GIL is held and `objects` keeps every pointer alive.
    Ok(with_abi!(env.abi, A => unsafe { census_walk::census_of::<A>(env, &ptrs) }))
}

/// The names of every type object in the heap.
pub fn type_object_names(_py: Python<'_>) -> Result<Vec<String>, CaptureError> {
    let (env, lists) = prepare()?;
    // SAFETY: the GIL is held and the walk runs no Python code.
    Ok(with_abi!(env.abi, A => unsafe { census_walk::type_object_names::<A>(env, &lists) }))
}

/// Whether `tp` is a type `query` names.
pub fn type_matches(
    _py: Python<'_>,
    tp: &Bound<'_, pyo3::types::PyType>,
    query: &str,
) -> Result<bool, CaptureError> {
    let env = env::get().map_err(CaptureError::Unsupported)?;
    // SAFETY: the GIL is held and `tp` is a live type.
    let tp = tp.as_ptr() as raw::Type;
    Ok(with_abi!(env.abi, A => unsafe { census_walk::type_matches::<A>(env, tp, query) }))
}

/// The interpreter's reference count of `obj`, read from its header (`None` for an immortal
/// object, 3.12+, whose count means nothing). It includes the reference the caller holds.
pub fn reference_count(obj: &Bound<'_, PyAny>) -> Result<Option<isize>, CaptureError> {
    let env = env::get().map_err(CaptureError::Unsupported)?;
    let o = obj.as_ptr();
    // SAFETY: the GIL is held and `obj` is alive; reading its header changes nothing.
    Ok(with_abi!(env.abi, A => unsafe { <A as abi::Abi>::refcount(o) }))
}

/// Where `obj`'s memory block was allocated, as `tracemalloc` recorded it: a tuple of
/// `(filename, lineno)`, the most recent call first; `None` when it was not traced (or
/// `tracemalloc` does not trace, or the interpreter does not export the lookup). The block
/// starts before the object, at its GC header and managed-dict words, which
/// `tracemalloc.get_object_traceback()` does not account for on 3.11 for instances whose dict is
/// managed: this asks for the block's own start. Runs after a walk, never during one.
pub fn allocation_traceback(py: Python<'_>, obj: &Bound<'_, PyAny>) -> Option<Py<PyAny>> {
    let env = env::get().ok()?;
    let f = crate::allocations::get_traceback()?;
    // SAFETY: the GIL is held and `obj` is alive.
    let start = unsafe { crate::allocations::block_start(obj.as_ptr(), env) };
    // SAFETY: the GIL is held; domain 0 is the Python allocators' domain; the function only
    // looks the address up in tracemalloc's table and builds the answer (new reference or
    // None, or null with an exception set).
    let found = unsafe { f(0, start) };
    if found.is_null() {
        pyo3::PyErr::take(py);
        return None;
    }
    // SAFETY: a new reference.
    let found = unsafe { Bound::from_owned_ptr(py, found) };
    (!found.is_none()).then(|| found.unbind())
}

/// What `gc.get_referents(obj)` returns, as new references.
pub fn referents(py: Python<'_>, obj: &Bound<'_, PyAny>) -> Vec<Py<PyAny>> {
    let mut buf = Vec::new();
    // SAFETY: the GIL is held and `obj` is alive; references are taken before anything else
    // runs, as in `matching_objects`.
    unsafe {
        references::referents_into(obj.as_ptr(), &mut buf);
        // Free-list entries some traverse functions report are not objects to hand out.
        if let Ok(env) = env::get() {
            with_abi!(env.abi, A => buf.retain(|&o| !raw::is_dead::<A>(o)));
        }
        buf.into_iter()
            .map(|o| Bound::from_borrowed_ptr(py, o).unbind())
            .collect()
    }
}

/// The tracked objects that refer to one of the objects at `targets`, as `(index in targets,
/// referrer)` pairs ordered by target, each referrer once (see [`references::referrers`]); those
/// at an address in `skip` are left out.
pub fn referrers(
    py: Python<'_>,
    targets: &[u64],
    skip: &hashbrown::HashSet<u64>,
) -> Result<Vec<(u32, Py<PyAny>)>, CaptureError> {
    let (_, lists) = prepare()?;
    // SAFETY: the GIL is held and the walk runs no Python code; references are taken before
    // anything else runs, as in `matching_objects`.
    unsafe {
        let found = references::referrers(&lists, targets, skip);
        Ok(found
            .into_iter()
            .map(|(i, o)| (i, Bound::from_borrowed_ptr(py, o).unbind()))
            .collect())
    }
}

/// Of `candidates`, those no tracked object refers to, in order (objgraph's
/// `get_leaking_objects(objects)`); references from objects at an address in `skip` do not
/// count.
pub fn unreferenced_among(
    candidates: &[Bound<'_, PyAny>],
    skip: &hashbrown::HashSet<u64>,
) -> Result<Vec<Py<PyAny>>, CaptureError> {
    let (_, lists) = prepare()?;
    let wanted: hashbrown::HashSet<u64> = candidates.iter().map(|o| o.as_ptr() as u64).collect();
    // SAFETY: the GIL is held and the walk runs no Python code.
    let referenced =
        unsafe { references::referenced(&lists, |t| wanted.contains(&(t as u64)), skip) };
    Ok(candidates
        .iter()
        .filter(|o| !referenced.contains(&(o.as_ptr() as u64)))
        .map(|o| o.clone().unbind())
        .collect())
}

/// The tracked objects no other tracked object refers to (objgraph's `get_leaking_objects()`),
/// as new references.
pub fn unreferenced_tracked(py: Python<'_>) -> Result<Vec<Py<PyAny>>, CaptureError> {
    let (_, lists) = prepare()?;
    let none = hashbrown::HashSet::new();
    // SAFETY: the GIL is held and the walks run no Python code; `is_gc` and `is_tracked` only
    // read the live referents. References are taken before anything else runs.
    unsafe {
        let referenced =
            references::referenced(&lists, |t| raw::is_gc(t) && raw::is_tracked(t), &none);
        let mut found = Vec::new();
        lists.for_each(|o| {
            if !referenced.contains(&(o as u64)) {
                found.push(o);
            }
        });
        Ok(found
            .into_iter()
            .map(|o| Bound::from_borrowed_ptr(py, o).unbind())
            .collect())
    }
}

/// The addresses of the gc-tracked objects grouped by type name: `type(obj).__name__` with
/// `shortnames`, else `module.__name__` (objgraph's names). Two types of one name give two
/// entries.
pub fn gc_addresses_by_name(
    _py: Python<'_>,
    shortnames: bool,
) -> Result<Vec<(String, Vec<u64>)>, CaptureError> {
    let (env, lists) = prepare()?;
    // SAFETY: the GIL is held and the walk runs no Python code.
    let (groups, types, strings) =
        with_abi!(env.abi, A => unsafe { census_walk::gc_addresses_by_type::<A>(env, &lists) });
    Ok(groups
        .into_iter()
        .enumerate()
        .filter(|(_, addrs)| !addrs.is_empty())
        .map(|(t, addrs)| {
            let id = heaplens_core::types::TypeId(t as u32);
            let name = if shortnames {
                types.short_name(id, &strings).to_string()
            } else {
                types.long_name(id, &strings)
            };
            (name, addrs)
        })
        .collect())
}
