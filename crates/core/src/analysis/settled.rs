//! New objects that are no leak by how they came: code loaded since the earlier snapshot (a
//! module imported on the first request, with its functions, classes and constants, and the
//! import system's caches of where it found it), and what a bounded container's new entries
//! bring with them. Both are bounded by construction (by the code base; by the container's
//! bound), and both are what a first comparison after start-up shows most: warm-up.
//!
//! An object counts here when its shortest retaining path reaches it through such a seed (a
//! new module, a new entry of a bounded container or of `sys.path_importer_cache`) and only
//! through new objects after it: an object the program also keeps closer to the roots, in a
//! container that grows, stays the program's growth. Weak references to such objects (the
//! `__subclasses__` entries of a new class) count with them.

use super::churn;
use super::paths::RetainingPaths;
use super::ranking;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::{quote, LabelKind};
use crate::reach::NodeSet;

/// The new objects (of `new`) that are settled growth. See the module docs.
pub fn settled(after: &Graph, paths: &RetainingPaths, new: &NodeSet) -> NodeSet {
    let n = after.node_count();
    let mut seed = NodeSet::new(n);
    let mut any = false;
    for v in after.objects() {
        if !new.contains(v) {
            continue;
        }
        let flags = after.flags(v);
        // A new module; a new class held only from outside the heap (made by an extension
        // module's initialisation: a class a program makes and keeps is held by its container).
        // (A root's object has no parent on its path.)
        let held_outside = || {
            paths.parent(after, v).is_none_or(|p| p == after.root())
                && !flags.contains(NodeFlags::UNREACHABLE)
        };
        if flags.contains(NodeFlags::MODULE) || flags.contains(NodeFlags::TYPE) && held_outside() {
            seed.insert(v);
            any = true;
        }
    }
    // Containers bounded by what they declare (or their holder names), by the code that
    // fills them, or by the directories imports came from.
    let mut bounded: Vec<NodeId> = after.declared_bounds().map(|(c, _)| c).collect();
    bounded.extend(module_global(after, "sys", "path_importer_cache"));
    for (module, global, _) in churn::KNOWN_BOUNDED_GLOBALS {
        bounded.extend(module_global(after, module, global));
    }
    for c in bounded {
        for (t, l) in after.edges(c) {
            if !l.is_weak() && new.contains(t) {
                seed.insert(t);
                any = true;
            }
        }
    }
    let mut settled = NodeSet::new(n);
    if !any {
        return settled;
    }
    // Down the shortest-path tree from the seeds: a child is one whose path comes through the
    // edge from its parent (no search for parents: only the settled subtrees are visited). An
    // old-looking object right below a settled one (a new list at a freed list's address, in a
    // new entry) passes settled-ness on to its new objects, without being settled itself.
    let mut queue: Vec<(NodeId, bool)> = Vec::new();
    for v in after.objects() {
        if seed.contains(v) && settled.insert(v) {
            queue.push((v, true));
        }
    }
    let mut passed_on = NodeSet::new(n);
    while let Some((v, is_settled)) = queue.pop() {
        for e in after.edge_range(v) {
            let (t, _) = after.edge(e);
            if paths.via(t) != Some(e) {
                continue;
            }
            if new.contains(t) {
                if settled.insert(t) {
                    queue.push((t, true));
                }
            } else if is_settled && passed_on.insert(t) {
                queue.push((t, false));
            }
        }
    }
    // Weak references registries keep to settled objects are settled with them.
    let weak_type: Vec<bool> = after
        .types()
        .iter()
        .map(|(id, _)| {
            let name = after.types().display_name(id, after.strings());
            ranking::WEAK_BOOKKEEPING.contains(&name.as_str())
        })
        .collect();
    for v in after.objects() {
        if new.contains(v) && weak_type[after.type_id(v).0 as usize] {
            let referent = after.edges(v).find(|(_, l)| l.is_weak()).map(|(t, _)| t);
            if referent.is_some_and(|r| settled.contains(r)) {
                settled.insert(v);
            }
        }
    }
    settle_keys(after, paths, new, &mut settled);
    settled
}

/// Settles the new key of each dict entry whose value is settled (a class's `__subclasses__`
/// keys its weak references by `id()`, `sys.path_importer_cache` its finders by directory): a
/// dict reports each entry's key just before its value.
fn settle_keys(after: &Graph, paths: &RetainingPaths, new: &NodeSet, settled: &mut NodeSet) {
    let mut dicts: Vec<NodeId> = after
        .objects()
        .filter(|&v| settled.contains(v))
        .filter_map(|v| paths.parent(after, v))
        .collect();
    dicts.sort_unstable();
    dicts.dedup();
    for d in dicts {
        let edges: Vec<_> = after.edges(d).collect();
        for pair in edges.windows(2) {
            let ((key, key_label), (value, _)) = (pair[0], pair[1]);
            let is_key = matches!(key_label.kind(), LabelKind::DictKey | LabelKind::DictKeyStr);
            if is_key && new.contains(key) && settled.contains(value) {
                settled.insert(key);
            }
        }
    }
}

/// The object a module's global names (`sys.path_importer_cache`): found from the roots
/// through `sys.modules[module]` and the module's `__dict__`.
pub fn module_global(graph: &Graph, module: &str, global: &str) -> Option<NodeId> {
    let text = |l: crate::label::Label| l.name().map_or("", |id| graph.strings().get(id));
    let root_label = format!("sys.modules[{}]", quote(module));
    let m = graph
        .edges(graph.root())
        .find(|(_, l)| l.kind() == LabelKind::Root && text(*l) == root_label)?
        .0;
    let dict = graph
        .edges(m)
        .find(|(_, l)| {
            matches!(l.kind(), LabelKind::Field | LabelKind::Attr) && text(*l) == "__dict__"
        })?
        .0;
    // The value's edge (a `Key` label), not the key object's (`DictKeyStr`).
    graph
        .edges(dict)
        .find(|(_, l)| l.kind() == LabelKind::Key && text(*l) == global)
        .map(|(t, _)| t)
}
