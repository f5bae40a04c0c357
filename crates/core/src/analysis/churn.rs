//! Churn: new objects that took the place of old ones in a container that did not grow.
//!
//! A bounded cache that evicts, a dict whose entries are replaced, a list rebuilt at the same
//! length: every entry is new between two snapshots, yet nothing grows. A leak is growth, so a
//! group of new objects counts only by how much its container grew: the container's entries
//! (its strong references other than dict keys: a dict's values, a list's items, an object's
//! attributes) in `after` against its entries in `before`, for the same object (same address,
//! same type). Where the container did not grow, a new entry may still have grown in place of
//! the one it replaced (a list rebuilt one item longer and stored under the same key): that
//! growth, entry by entry, is what counts.
//!
//! A container the `before` snapshot does not have (a frame, a new object) cannot be judged and
//! counts whole.
//!
//! A container that declares a bound (a `deque(maxlen=...)`, the dict of an
//! `lru_cache(maxsize=...)`: [`Graph::declared_bound`]) cannot grow past it, and some containers
//! of the standard library are bounded without saying so: they fill up to a fixed size and are
//! then pruned ([`KNOWN_BOUNDS`]). A cache filling up to its bound is not growth without bound,
//! so it is not a leak either.

use super::paths::RetainingPaths;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::LabelKind;
use hashbrown::HashMap;

/// Containers the standard library prunes once they reach a size, though nothing in the heap
/// declares it: (type of the container's holder, type of the container, the size). A container
/// of that type held directly by such an object is bounded by that size.
pub const KNOWN_BOUNDS: [(&str, &str, u64); 1] = [
    // Each sqlite3 connection keeps weak references to the cursors it made, and drops the dead
    // ones every 200 cursors (Modules/_sqlite/connection.c).
    ("sqlite3.Connection", "list", 200),
];

/// Module globals the standard library prunes once they reach a size (the same on every
/// supported version): (module, global, the size). `re` keeps compiled patterns in `_cache`
/// up to `_MAXCACHE` (512) and, from 3.12, the most recent ones in `_cache2` up to
/// `_MAXCACHE2` (256); a program compiling many distinct patterns fills them.
pub const KNOWN_BOUNDED_GLOBALS: [(&str, &str, u64); 2] =
    [("re", "_cache", 512), ("re", "_cache2", 256)];

/// The bound [`KNOWN_BOUNDS`] or [`KNOWN_BOUNDED_GLOBALS`] gives `container`, if any (its
/// holder is its parent on its shortest retaining path).
pub fn known_bound(graph: &Graph, paths: &RetainingPaths, container: NodeId) -> Option<u64> {
    let holder = paths.parent(graph, container)?;
    let (holder_type, container_type) = (graph.type_name(holder), graph.type_name(container));
    let by_type = KNOWN_BOUNDS
        .iter()
        .find(|(h, c, _)| *h == holder_type && *c == container_type)
        .map(|(_, _, bound)| *bound);
    by_type.or_else(|| {
        // `module.__dict__['global']`: the holder is the module's dict, held by the module.
        let module = paths.parent(graph, holder)?;
        if !graph.flags(module).contains(NodeFlags::MODULE) {
            return None;
        }
        let (module, key) = (
            graph.name(module)?,
            label_from_parent(graph, paths, container)?,
        );
        KNOWN_BOUNDED_GLOBALS
            .iter()
            .find(|(m, g, _)| *m == module && key == format!("[{}]", crate::label::quote(g)))
            .map(|(_, _, bound)| *bound)
    })
}

/// Whether `container` is within a bound: one it declares (the interpreter keeps it there), or
/// one the standard library keeps ([`known_bound`]).
pub fn within_known_bound(graph: &Graph, paths: &RetainingPaths, container: NodeId) -> bool {
    graph.declared_bound(container).is_some()
        || known_bound(graph, paths, container).is_some_and(|b| entry_count(graph, container) <= b)
}

/// The entries of `v`: its strong references other than dict keys.
pub fn entry_count(graph: &Graph, v: NodeId) -> u64 {
    graph
        .edges(v)
        .filter(|(_, l)| {
            !l.is_weak() && !matches!(l.kind(), LabelKind::DictKey | LabelKind::DictKeyStr)
        })
        .count() as u64
}

/// `v`'s object in `before`: the object at the same address, of a type of the same name.
fn counterpart(before: &Graph, after: &Graph, v: NodeId) -> Option<NodeId> {
    if after.addr(v) == 0 {
        return None; // a synthetic node: a thread, a frame
    }
    let old = before.node_by_addr(after.addr(v))?;
    (before.type_name(old) == after.type_name(v)).then_some(old)
}

/// The label of the reference from `v`'s parent on its shortest path, as text (labels intern
/// their names per graph, so two graphs compare them as text).
fn label_from_parent(after: &Graph, paths: &RetainingPaths, v: NodeId) -> Option<String> {
    let e = paths.via(v)?;
    Some(after.describe_label(after.edge(e).1))
}

/// Whether `v` (whose counterpart in `before` is `old`) is a new object at a reused address
/// rather than the same object: its parent on its shortest path held, in `before`, another
/// object under the same label. CPython reuses freed memory at once, so a list replaced by a new
/// list often gets the old one's address. Returns the parent and its counterpart.
fn reincarnated(
    before: &Graph,
    after: &Graph,
    paths: &RetainingPaths,
    v: NodeId,
    old: NodeId,
) -> Option<(NodeId, NodeId)> {
    let parent = paths.parent(after, v)?;
    let old_parent = counterpart(before, after, parent)?;
    let label = label_from_parent(after, paths, v)?;
    let held_there = before
        .edges(old_parent)
        .find(|(_, l)| !l.is_weak() && before.describe_label(*l) == label)
        .map(|(t, _)| t);
    // Nothing there before says nothing (the shortest path may have moved): only another
    // object in that place shows that `v` took it.
    held_there
        .is_some_and(|t| t != old)
        .then_some((parent, old_parent))
}

/// What `old_holder` held in `before` under each label, for strong references.
fn held_by_label(before: &Graph, old_holder: NodeId) -> HashMap<String, NodeId> {
    before
        .edges(old_holder)
        .filter(|(_, l)| !l.is_weak())
        .map(|(t, l)| (before.describe_label(l), t))
        .collect()
}

/// How much `new` (an object of `after` that `holder` holds directly) grew over what `holder`'s
/// counterpart held under the same label, if it held an object of the same type there; `None`
/// when it held nothing comparable.
fn growth_over_replaced(
    before: &Graph,
    after: &Graph,
    paths: &RetainingPaths,
    replaced: &HashMap<String, NodeId>,
    new: NodeId,
) -> Option<u64> {
    let label = label_from_parent(after, paths, new)?;
    let &old = replaced.get(&label)?;
    (before.type_name(old) == after.type_name(new))
        .then(|| entry_count(after, new).saturating_sub(entry_count(before, old)))
}

/// Of a group's `entries` new entries, how many are growth: at most `entries`, and 0 for
/// churn. `holder` is the group's old holder in `after`, `point` its accumulation point (the
/// holder itself, or a new container under it), and `new_children` the new objects `holder`
/// holds directly (other than as dict keys).
pub fn net_entries(
    before: &Graph,
    after: &Graph,
    paths: &RetainingPaths,
    holder: NodeId,
    point: NodeId,
    entries: u64,
    new_children: &[NodeId],
) -> u64 {
    let Some(old_holder) = counterpart(before, after, holder) else {
        return entries;
    };
    if let Some((parent, old_parent)) = reincarnated(before, after, paths, holder, old_holder) {
        // The holder is new, at an address an old object of its type had: judge it as the new
        // container it is, in the place of whatever its parent held there before.
        let replaced = held_by_label(before, old_parent);
        if entry_count(after, parent) > entry_count(before, old_parent) {
            return entries;
        }
        return growth_over_replaced(before, after, paths, &replaced, holder)
            .unwrap_or(0)
            .min(entries);
    }
    let holder_growth = entry_count(after, holder).saturating_sub(entry_count(before, old_holder));
    if holder_growth > 0 {
        return if point == holder {
            holder_growth.min(entries)
        } else {
            entries // a new container added to a growing holder: all of it is growth
        };
    }
    let replaced = held_by_label(before, old_holder);
    if point != holder {
        // A new container under a holder that did not grow took the place of another.
        if paths.parent(after, point) != Some(holder) {
            return entries; // deeper than one hop: not judged
        }
        // Under another label or of another type, it replaced something else: churn.
        return growth_over_replaced(before, after, paths, &replaced, point)
            .unwrap_or(0)
            .min(entries);
    }
    new_children
        .iter()
        .filter_map(|&c| growth_over_replaced(before, after, paths, &replaced, c))
        .sum::<u64>()
        .min(entries)
}
