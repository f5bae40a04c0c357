//! Where a snapshot's objects were allocated, asked of `tracemalloc` once the walk is done.
//!
//! Not part of the walk: each lookup builds the answer as Python tuples, so it runs after the
//! graph is finished, with the GIL still held and the collector paused, so that no object of the
//! graph can be freed (nor a finalizer run) between the walk and its lookup. It runs no Python
//! code: `_PyTraceMalloc_GetTraceback` (exported by every supported CPython) looks the memory
//! block up in tracemalloc's table, keyed by the block's start, which for an object with a GC
//! header or a managed dict is before the object itself (why `tracemalloc.get_object_traceback`
//! misses some instances on 3.11).

use crate::{env, raw};
use hashbrown::HashMap;
use heaplens_core::graph::{Allocations, AllocationsBuilder, Graph};
use pyo3::ffi;
use pyo3::prelude::*;

type GetTraceback = unsafe extern "C" fn(std::ffi::c_uint, usize) -> *mut ffi::PyObject;

/// `tracemalloc`'s own function, when the interpreter exports it.
pub(crate) fn get_traceback() -> Option<GetTraceback> {
    let f = env::symbol(c"_PyTraceMalloc_GetTraceback");
    // SAFETY: the symbol is CPython's function of that signature (3.11 to 3.15 export it).
    (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut std::ffi::c_void, GetTraceback>(f) })
}

/// The allocation start of the live object `o`: before its GC header and pre-header.
///
/// # Safety
/// `o` must be a live object, and the GIL held.
pub(crate) unsafe fn block_start(o: raw::Obj, env: &env::Env) -> usize {
    unsafe { o as usize - raw::preheader_size(raw::ob_type(o), env.preheader_flags) }
}

/// Where each object of `graph` was allocated, as `tracemalloc` recorded it; `None` when the
/// interpreter cannot say. Call it right after the walk that built `graph`, with no Python code
/// run in between (every node must still be the live object the walk saw), and only while
/// `tracemalloc` traces (otherwise every lookup answers nothing, at the same cost).
pub fn allocation_tracebacks(py: Python<'_>, graph: &Graph) -> Option<Allocations> {
    let env = env::get().ok()?;
    let lookup = get_traceback()?;
    let mut builder = AllocationsBuilder::new();
    // Frames by (file object, line): tracemalloc interns its file names, so the object is the
    // file. They are kept alive until the end, so an address cannot stand for two files.
    let mut frames: HashMap<(usize, i64), u32> = HashMap::new();
    let mut files: Vec<Bound<'_, PyAny>> = Vec::new();
    let mut calls: Vec<u32> = Vec::new();
    // SAFETY: the GIL is held; pausing the collector is undone below, whatever happens.
    let was_enabled = unsafe { ffi::PyGC_Disable() } != 0;
    for n in graph.objects() {
        let o = graph.addr(n) as raw::Obj;
        // SAFETY: no Python code ran since the walk and the collector is paused: `o` is the
        // live object the walk saw. The lookup only reads tracemalloc's table and builds a new
        // tuple (or returns None, or null with an exception set).
        let found = unsafe { lookup(0, block_start(o, env)) };
        if found.is_null() {
            PyErr::take(py);
            continue;
        }
        // SAFETY: a new reference.
        let found = unsafe { Bound::from_owned_ptr(py, found) };
        let Ok(traceback) = found.cast::<pyo3::types::PyTuple>() else {
            continue;
        };
        calls.clear();
        // The most recent call comes first; the graph keeps the oldest first.
        for frame in traceback.iter().rev() {
            let Ok((file, line)) = frame.extract::<(Bound<'_, PyAny>, i64)>() else {
                continue;
            };
            let key = (file.as_ptr() as usize, line);
            let id = match frames.get(&key) {
                Some(&id) => id,
                None => {
                    let name = file
                        .cast::<pyo3::types::PyString>()
                        .ok()
                        .and_then(|s| s.to_str().ok().map(str::to_owned))
                        .unwrap_or_else(|| "<unknown>".to_owned());
                    let id = builder.frame(&name, u32::try_from(line).unwrap_or(0));
                    frames.insert(key, id);
                    files.push(file);
                    id
                }
            };
            calls.push(id);
        }
        if !calls.is_empty() {
            let t = builder.traceback(&calls);
            builder.object(n, t);
        }
    }
    if was_enabled {
        // SAFETY: the GIL is held; the collector was enabled before.
        unsafe { ffi::PyGC_Enable() };
    }
    Some(builder.finish())
}
