//! References as the garbage collector reports them, for `heaplens.objgraph`: what
//! `gc.get_referents()` returns for one object (its own `tp_traverse`, for objects of GC types),
//! and which tracked objects refer to given ones (what `gc.get_referrers()` searches for, found for
//! many targets in one walk of the GC lists).
//!
//! Why not the snapshot's labelled edges: objgraph's answers are defined by `tp_traverse`, which
//! leaves out references a leak hunter wants (a weak reference's referent, a class's
//! `__subclasses__`, the objects held by code objects, which are not GC objects). The
//! drop-in must give objgraph's answers, and these walks are cheaper than a snapshot: no labels,
//! no graph, no objects outside the GC lists.
//!
//! Like every walk, these run no Python code and change nothing: `tp_traverse` is what the
//! collector itself calls, and the visit callback only records pointers.

use crate::edges::collect_visit;
use crate::gc_lists::GcLists;
use crate::raw::{self, Obj};
use hashbrown::{HashMap, HashSet};
use std::ffi::c_void;

/// Appends to `buf` what `gc.get_referents(o)` reports: the references `o`'s `tp_traverse`
/// visits, or nothing for an object of a non-GC type (str, int, code, a static type).
///
/// # Safety
/// `o` must be a live object and the GIL held.
pub unsafe fn referents_into(o: Obj, buf: &mut Vec<Obj>) {
    unsafe {
        if !raw::is_gc(o) {
            return;
        }
        if let Some(traverse) = (*raw::ob_type(o)).tp_traverse {
            traverse(o, collect_visit, buf as *mut Vec<Obj> as *mut c_void);
        }
    }
}

/// The tracked objects that refer to one of `targets`, as `(index in targets, referrer)` pairs:
/// ordered by target, then by list order; each referrer once, with the first target it refers
/// to. Referrers whose address is in `skip` are left out.
///
/// # Safety
/// The GIL must be held and no Python code may run during the call. The returned pointers are
/// borrowed: the caller must take references before running any Python code or allocating.
pub unsafe fn referrers(lists: &GcLists, targets: &[u64], skip: &HashSet<u64>) -> Vec<(u32, Obj)> {
    let index: HashMap<u64, u32> = targets
        .iter()
        .enumerate()
        .map(|(i, &a)| (a, i as u32))
        .collect();
    let mut found = Vec::new();
    let mut buf = Vec::new();
    unsafe {
        lists.for_each(|o| {
            buf.clear();
            referents_into(o, &mut buf);
            let first = buf.iter().filter_map(|&t| index.get(&(t as u64))).min();
            if let Some(&i) = first {
                if !skip.contains(&(o as u64)) {
                    found.push((i, o));
                }
            }
        });
    }
    // Stable: referrers of one target stay in list order.
    found.sort_by_key(|&(i, _)| i);
    found
}

/// Which of the objects `wanted` selects some tracked object refers to, by address (what
/// objgraph's `get_leaking_objects` subtracts). References from objects whose address is in
/// `skip` do not count.
///
/// # Safety
/// The GIL must be held and no Python code may run during the call; `wanted` is called with
/// live objects and must not change them.
pub unsafe fn referenced(
    lists: &GcLists,
    mut wanted: impl FnMut(Obj) -> bool,
    skip: &HashSet<u64>,
) -> HashSet<u64> {
    let mut found = HashSet::new();
    let mut buf = Vec::new();
    unsafe {
        lists.for_each(|o| {
            if skip.contains(&(o as u64)) {
                return;
            }
            buf.clear();
            referents_into(o, &mut buf);
            for &t in &buf {
                if wanted(t) {
                    found.insert(t as u64);
                }
            }
        });
    }
    found
}
