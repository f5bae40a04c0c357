//! What grew between two snapshots of the same process, and what holds it: the leak suspects.
//!
//! Objects are matched by address and type: an object of `after` is *old* when `before` has an
//! object at the same address whose type has the same name, and *new* otherwise. (CPython reuses
//! freed memory, so an object freed between the snapshots and replaced by a new one of the same
//! type at the same address counts as old. Per-type totals are unaffected, since they compare
//! counts; only the attribution below can miss such an object.)
//!
//! The new objects are then grouped where they accumulate (see [`super::accumulation`]): each
//! group is a container (the dict that is the cache, the list of handlers), its retaining path,
//! and the type it collects.

use super::accumulation;
pub use super::accumulation::{DiffOptions, Holder, Suspect};
use super::paths::RetainingPaths;
use super::ranking;
use crate::census::{Census, TypeDelta};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeFlags, NodeId, IMMORTAL_ROOT};
use crate::label::LabelKind;
use crate::own;
use crate::reach::NodeSet;
use hashbrown::HashMap;

/// The result of comparing two snapshots.
#[derive(Clone, Debug)]
pub struct SnapshotDiff {
    /// Per-type changes of count and bytes, in report order ([`super::ranking::rank_types`]).
    pub types: Vec<TypeDelta>,
    /// Objects of `after` that were not in `before`.
    pub new_objects: u64,
    pub new_bytes: u64,
    /// Groups of new objects large enough to report, largest first.
    pub suspects: Vec<Suspect>,
    /// Suspects left out because the user declared them no leak ([`DiffOptions::ignore`]).
    pub ignored: usize,
    /// New objects that came with code loaded since the earlier snapshot, or with the new
    /// entries of bounded containers ([`super::settled`]): not counted as growth.
    pub settled: u64,
    /// Groups left out because they are work in flight ([`is_in_flight`]): what a running
    /// function (a request being handled) had made when the snapshot was taken.
    pub in_flight: Vec<Suspect>,
}

/// Whether `s` is held by a new container at a freed one's address: its holder looks old (an
/// object of its type was at that address before) but is held by a new object and holds only
/// new entries. Its objects are part of the new object's growth: judged with that object's
/// container (a bounded cache's entry, say), not as a leak of their own.
fn at_reused_address(after: &Graph, paths: &RetainingPaths, new: &NodeSet, s: &Suspect) -> bool {
    let Holder::Node(holder) = s.holder else {
        return false;
    };
    if new.contains(holder) || !paths.parent(after, holder).is_some_and(|p| new.contains(p)) {
        return false;
    }
    let mut entries = after
        .edges(holder)
        .filter(|(_, l)| {
            !l.is_weak() && !matches!(l.kind(), LabelKind::DictKey | LabelKind::DictKeyStr)
        })
        .peekable();
    entries.peek().is_some() && entries.all(|(t, _)| new.contains(t))
}

/// The suspects of `suspects` that are work in flight: new objects in a container that is new
/// itself, held only by running functions' frames (a local of a request handler, of a task's
/// coroutine), directly or through other new objects. The functions' return frees them. A
/// container also kept by an old object (a global cache the handler stored it in) is the
/// program's growth, and so is an old container a long-running loop appends to.
fn in_flight(after: &Graph, new: &NodeSet, suspects: &[Suspect]) -> Vec<bool> {
    let through_frame = |s: &Suspect| {
        s.holder_path.as_ref().is_some_and(|p| {
            p.nodes(after)
                .iter()
                .any(|&v| after.flags(v).contains(NodeFlags::FRAME))
        })
    };
    let candidate: Vec<Option<NodeId>> = suspects
        .iter()
        .map(|s| match s.holder {
            Holder::Node(h) if new.contains(h) && through_frame(s) => Some(h),
            _ => None,
        })
        .collect();
    if candidate.iter().all(Option::is_none) {
        return vec![false; suspects.len()];
    }
    // Who refers to the new objects, strongly: one pass over the references.
    let mut referrers: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for v in 0..after.node_count() as NodeId {
        for (t, l) in after.edges(v) {
            if new.contains(t) && !l.is_weak() {
                referrers.entry(t).or_default().push(v);
            }
        }
    }
    let is_frame = |v: NodeId| {
        after
            .flags(v)
            .intersects(NodeFlags::FRAME | NodeFlags::THREAD)
    };
    candidate
        .iter()
        .map(|c| {
            let Some(holder) = *c else {
                return false;
            };
            // Up from the holder through new objects: in flight unless an old object other
            // than a frame (or the roots) holds some of them.
            let mut seen = NodeSet::new(after.node_count());
            let mut stack = vec![holder];
            seen.insert(holder);
            while let Some(v) = stack.pop() {
                for &r in referrers.get(&v).map_or(&[][..], Vec::as_slice) {
                    if is_frame(r) {
                        continue;
                    }
                    if !new.contains(r) {
                        return false;
                    }
                    if seen.insert(r) {
                        stack.push(r);
                    }
                }
            }
            true
        })
        .collect()
}

/// The objects of `g` the interpreter allocated statically: immortal objects (3.12+) other than
/// strings, that is the small-int cache (256 ints, 1024 from 3.15) and the singletons. The
/// program never allocates them, so they are never new, though a snapshot holds one only while
/// something refers to it. (3.12 and 3.13 make interned strings immortal at run time: those are
/// real allocations, so strings stay out of this rule.)
fn statically_allocated(g: &Graph) -> NodeSet {
    let mut set = NodeSet::new(g.node_count());
    for (v, label) in g.edges(g.root()) {
        let immortal = label.kind() == LabelKind::Root
            && label
                .name()
                .is_some_and(|n| g.strings().get(n) == IMMORTAL_ROOT);
        if immortal && g.type_name(v) != "str" {
            set.insert(v);
        }
    }
    set
}

/// The objects of `after` that `before` does not have (same address, same type name), found by
/// merging the two graphs' objects in address order ([`crate::analysis::Analysed::diff_since`]
/// builds the two orders on two threads); statically allocated ones are never new.
fn new_objects(
    before: &Graph,
    before_names: &[u32],
    after: &Graph,
    after_names: &[u32],
) -> NodeSet {
    let (old, now) = (before.address_order(), after.address_order());
    let mut new = NodeSet::new(after.node_count());
    let fixed = statically_allocated(after);
    let mut i = 0;
    // Reads a few nodes ahead of the merge: the nodes of an address order are scattered over
    // the graph's arrays.
    const AHEAD: usize = 16;
    for (k, &v) in now.iter().enumerate() {
        if let Some(&w) = now.get(k + AHEAD) {
            after.prefetch_node(w);
        }
        if let Some(&w) = old.get(i + AHEAD) {
            before.prefetch_node(w);
        }
        let addr = after.addr(v);
        while i < old.len() && before.addr(old[i]) < addr {
            i += 1;
        }
        let same = i < old.len()
            && before.addr(old[i]) == addr
            && before_names[before.type_id(old[i]).0 as usize]
                == after_names[after.type_id(v).0 as usize];
        if !same && !fixed.contains(v) {
            new.insert(v);
        }
    }
    new
}

/// Whether `before` and `after` can be compared: two snapshots of one process (addresses only
/// identify objects within one), the earlier first.
pub fn check_pair(before: &Graph, after: &Graph) -> Result<()> {
    let (b, a) = (before.meta(), after.meta());
    if b.pid != a.pid {
        return Err(Error::NotComparable(format!(
            "the snapshots come from different processes (pid {} and pid {}); a comparison \
             matches objects by address, which identifies them only within one process",
            b.pid, a.pid
        )));
    }
    if a.taken_at_ms < b.taken_at_ms {
        return Err(Error::NotComparable(format!(
            "the snapshots are in the wrong order: the earlier one goes first, but the first was \
             taken {} s after the second",
            (b.taken_at_ms - a.taken_at_ms) as f64 / 1000.0
        )));
    }
    Ok(())
}

/// Compares `before` and `after` (two snapshots of one process, in that order; `paths` are
/// `after`'s): the one comparison behind every report. Churn is not growth, heaplens' own
/// frames and objects are left out, cyclic garbage counts only when the collector was off,
/// what the user declared no leak ([`DiffOptions::ignore`]) is left out of the suspects and the
/// types, and the types that grew are ranked by [`super::ranking::rank_types`].
pub fn diff(
    before: &Graph,
    after: &Graph,
    paths: &RetainingPaths,
    options: DiffOptions,
) -> Result<SnapshotDiff> {
    check_pair(before, after)?;
    let mut types = Census::from_graph(after).diff(&Census::from_graph(before));

    // One name index for both graphs' types, so "same type" is an integer comparison.
    let mut names: HashMap<String, u32> = HashMap::new();
    let mut type_names: Vec<String> = Vec::new();
    let mut name_index = |g: &Graph| -> Vec<u32> {
        g.types()
            .iter()
            .map(|(id, _)| {
                let name = g.types().display_name(id, g.strings());
                *names.entry(name.clone()).or_insert_with(|| {
                    type_names.push(name);
                    type_names.len() as u32 - 1
                })
            })
            .collect()
    };
    let before_names = name_index(before);
    let after_names = name_index(after);
    let after_name = |v: NodeId| after_names[after.type_id(v).0 as usize];
    let mut new = new_objects(before, &before_names, after, &after_names);
    // Code loaded since (and what it holds), and what bounded containers' new entries bring:
    // not the program's growth.
    let settled = super::settled::settled(after, paths, &new);
    let mut settled_objects = 0u64;
    for v in after.objects() {
        if settled.contains(v) {
            new.remove(v);
            settled_objects += 1;
        }
    }

    let ignore = options.ignore.clone();
    let found = accumulation::suspects(
        after,
        Some(before),
        paths,
        &new,
        after_name,
        &type_names,
        options,
    );
    // What heaplens' own code keeps alive, and its own types, are not the program's growth.
    for (t, (count, bytes)) in &found.own {
        if let Some(d) = types.iter_mut().find(|d| d.name == type_names[*t as usize]) {
            d.count_delta -= *count as i64;
            d.bytes_delta -= *bytes as i64;
        }
    }
    types.retain(|d| {
        !own::is_own_type(&d.name)
            && !ignore.matches(&d.name)
            && (d.count_delta != 0 || d.bytes_delta != 0)
    });
    let mut suspects = found.suspects;
    // Cyclic garbage is a leak only when the collector is off: with it on, it will be freed,
    // and with it what hangs from it (new objects added to garbage that was already there).
    let collector_on = after.meta().gc_enabled == Some(true);
    suspects.retain(|s| {
        let garbage = match s.holder {
            Holder::Garbage => true,
            Holder::Node(v) => after.flags(v).contains(NodeFlags::UNREACHABLE),
            Holder::Roots => false,
        };
        let freed_by_collector = collector_on && garbage;
        // A group of dict keys alone has no entries: nothing accumulates there.
        s.entries > 0
            && !own::is_own_type(&s.entry_type)
            && !freed_by_collector
            && !at_reused_address(after, paths, &new, s)
    });
    let flying = in_flight(after, &new, &suspects);
    let (mut in_flight, mut kept) = (Vec::new(), Vec::new());
    for (s, flying) in suspects.into_iter().zip(flying) {
        if flying {
            in_flight.push(s);
        } else {
            kept.push(s);
        }
    }
    let mut suspects = kept;
    // Where each suspect's sample was allocated, when the snapshot recorded it.
    for s in &mut suspects {
        s.allocated_at = after.allocated_at(s.sample);
    }
    ranking::rank_types(&mut types, &suspects);
    Ok(SnapshotDiff {
        types,
        new_objects: found.new_objects,
        new_bytes: found.new_bytes,
        suspects,
        ignored: found.ignored,
        settled: settled_objects,
        in_flight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dominators::find_garbage_entries;
    use crate::graph::{GraphBuilder, NodeFlags};
    use crate::label::Label;
    use crate::reach;

    /// module app -> __dict__ -> ['CACHE'] dict holding `orders` Orders (each with a str payload
    /// and a dict payload) under keys 'k0'...; plus `garbage` new two-list cycles.
    fn heap(orders: u64, garbage: u64) -> Graph {
        heap_with(orders, garbage, ("app", "Order"))
    }

    fn heap_with(orders: u64, garbage: u64, order_type: (&str, &str)) -> Graph {
        cache_heap(0..orders, 0, garbage, order_type)
    }

    /// The CACHE heap with Orders under the keys `keys`, the first at the address of the
    /// `first_slot`-th order slot (a churning cache puts new orders at new addresses).
    fn cache_heap(
        keys: std::ops::Range<u64>,
        first_slot: u64,
        garbage: u64,
        order_type: (&str, &str),
    ) -> Graph {
        let orders = keys.end - keys.start;
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let order = b.intern_type(order_type.0, order_type.1, order_type.1);
        let str_t = b.intern_type("builtins", "str", "str");
        let gc = NodeFlags::GC_TRACKED;
        let m = b.add_node(0x100);
        let md = b.add_node(0x200);
        let cache = b.add_node(0x300);
        let mut order_ids = Vec::new();
        for i in 0..orders {
            let slot = (first_slot + i) * 0x100;
            order_ids.push((
                b.add_node(0x10_000 + slot),
                b.add_node(0x10_040 + slot),
                b.add_node(0x10_080 + slot),
            ));
        }
        let mut cycles = Vec::new();
        for i in 0..garbage {
            cycles.push((
                b.add_node(0x900_000 + i * 0x40),
                b.add_node(0x900_020 + i * 0x40),
            ));
        }
        b.set_node(m, module, 72, gc | NodeFlags::MODULE);
        b.set_name(m, "app");
        let f = b.strings_mut().intern("__dict__");
        b.push_edge(md, Label::field(f));
        b.end_node();
        b.set_node(md, dict, 360, gc);
        let k = b.strings_mut().intern("CACHE");
        b.push_edge(cache, Label::key(k));
        b.end_node();
        b.set_node(cache, dict, 1000, gc);
        for (i, &(o, _, _)) in order_ids.iter().enumerate() {
            let k = b
                .strings_mut()
                .intern(&format!("k{}", keys.start + i as u64));
            b.push_edge(o, Label::key(k));
        }
        b.end_node();
        let payload = b.strings_mut().intern("payload");
        let meta = b.strings_mut().intern("meta");
        for &(o, s, d) in &order_ids {
            b.set_node(o, order, 56, gc);
            b.push_edge(s, Label::attr(payload));
            b.push_edge(d, Label::attr(meta));
            b.end_node();
            b.set_node(s, str_t, 60, NodeFlags::empty());
            b.end_node();
            b.set_node(d, dict, 64, NodeFlags::empty());
            b.end_node();
        }
        for &(x, y) in &cycles {
            b.set_node(x, list, 64, gc);
            b.push_edge(y, Label::index(0));
            b.end_node();
            b.set_node(y, list, 64, gc);
            b.push_edge(x, Label::index(0));
            b.end_node();
        }
        finish_app(b, m, &[])
    }

    fn diff_of(before: &Graph, after: &Graph, options: DiffOptions) -> SnapshotDiff {
        let p = RetainingPaths::compute(after, &find_garbage_entries(after));
        diff(before, after, &p, options).unwrap()
    }

    #[test]
    fn the_leaking_type_comes_first_with_the_cache_that_holds_it() {
        let before = heap(5, 0);
        let after = heap(305, 0);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.new_objects, 900);
        let s = &d.suspects[0];
        assert_eq!(s.entry_type, "app.Order");
        assert_eq!(s.entries, 300);
        assert_eq!(s.objects, 900, "entries and their payload");
        assert_eq!(s.holder, Holder::Node(2));
        assert_eq!(
            s.holder_path.as_ref().unwrap().render(&after),
            "module app -> .__dict__['CACHE'] -> dict"
        );
        assert!(s.sample_label.starts_with("['k"), "{}", s.sample_label);
        assert_eq!(s.types[0].1, 300);
        let orders = d.types.iter().find(|t| t.name == "app.Order").unwrap();
        assert_eq!(orders.count_delta, 300);
    }

    #[test]
    fn the_holder_of_a_type_is_found_without_a_before_snapshot() {
        let after = heap(40, 0);
        let p = RetainingPaths::compute(&after, &find_garbage_entries(&after));
        let found = accumulation::holders_of_types(
            &after,
            &p,
            &["app.Order".to_string()],
            DiffOptions::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry_type, "app.Order");
        assert_eq!(found[0].entries, 40);
        assert_eq!(found[0].holder, Holder::Node(2));
        let none = accumulation::holders_of_types(
            &after,
            &p,
            &["app.Nothing".to_string()],
            DiffOptions::default(),
        );
        assert!(none.is_empty());
    }

    #[test]
    fn uncollected_garbage_is_its_own_suspect() {
        let before = heap(5, 0);
        let after = heap(5, 50);
        let d = diff_of(&before, &after, DiffOptions::default());
        let s = &d.suspects[0];
        assert_eq!(s.holder, Holder::Garbage);
        assert_eq!(s.objects, 100);
        assert_eq!(s.entry_type, "list");
    }

    #[test]
    fn cyclic_garbage_is_no_suspect_while_the_collector_runs() {
        let before = heap(5, 0);
        let mut after = heap(5, 50);
        after.meta_mut().gc_enabled = Some(true);
        assert!(diff_of(&before, &after, DiffOptions::default())
            .suspects
            .is_empty());
        after.meta_mut().gc_enabled = Some(false);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.suspects[0].holder, Holder::Garbage);
    }

    /// The app module, and a garbage cycle of two lists (at fixed addresses) the second of which
    /// holds `hanging` new lists.
    fn garbage_with_hanging(hanging: u64) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let list = b.intern_type("builtins", "list", "list");
        let gc = NodeFlags::GC_TRACKED;
        let m = b.add_node(0x100);
        let (x, y) = (b.add_node(0x9000), b.add_node(0x9040));
        let extra: Vec<NodeId> = (0..hanging)
            .map(|i| b.add_node(0xa000 + i * 0x40))
            .collect();
        b.set_node(m, module, 72, gc | NodeFlags::MODULE);
        b.set_name(m, "app");
        b.end_node();
        b.set_node(x, list, 64, gc);
        b.push_edge(y, Label::index(0));
        b.end_node();
        b.set_node(y, list, 64, gc);
        b.push_edge(x, Label::index(0));
        for (i, &e) in extra.iter().enumerate() {
            b.push_edge(e, Label::index(i + 1));
        }
        b.end_node();
        for &e in &extra {
            b.set_node(e, list, 56, gc);
            b.end_node();
        }
        finish_app(b, m, &[])
    }

    #[test]
    fn what_hangs_from_old_garbage_is_no_suspect_while_the_collector_runs() {
        let before = garbage_with_hanging(0);
        let mut after = garbage_with_hanging(30);
        after.meta_mut().gc_enabled = Some(true);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
        after.meta_mut().gc_enabled = Some(false);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.suspects[0].entries, 30);
    }

    /// Module `app` with a `HANDLERS` list of `n` handlers, and module `logging` with a
    /// `_handlerList` of weak references to each.
    fn handlers_with_weak_registry(n: u64) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let handler = b.intern_type("app", "Handler", "Handler");
        let weakref = b.intern_type("weakref", "ReferenceType", "ReferenceType");
        let gc = NodeFlags::GC_TRACKED;
        let (app, app_dict, handlers) = (b.add_node(0x100), b.add_node(0x140), b.add_node(0x180));
        let (logging, logging_dict, refs) =
            (b.add_node(0x200), b.add_node(0x240), b.add_node(0x280));
        let hs: Vec<NodeId> = (0..n).map(|i| b.add_node(0x10_000 + i * 0x40)).collect();
        let ws: Vec<NodeId> = (0..n).map(|i| b.add_node(0x20_000 + i * 0x40)).collect();
        let dunder = b.strings_mut().intern("__dict__");
        for (m, d, name, key, l) in [
            (app, app_dict, "app", "HANDLERS", handlers),
            (logging, logging_dict, "logging", "_handlerList", refs),
        ] {
            b.set_node(m, module, 72, gc | NodeFlags::MODULE);
            b.set_name(m, name);
            b.push_edge(d, Label::field(dunder));
            b.end_node();
            b.set_node(d, dict, 360, gc);
            let k = b.strings_mut().intern(key);
            b.push_edge(l, Label::key(k));
            b.end_node();
            b.set_node(l, list, 64, gc);
            for (i, &e) in [&hs, &ws][(l == refs) as usize].iter().enumerate() {
                b.push_edge(e, Label::index(i));
            }
            b.end_node();
        }
        for &h in &hs {
            b.set_node(h, handler, 56, gc);
            b.end_node();
        }
        for (&w, &h) in ws.iter().zip(&hs) {
            b.set_node(w, weakref, 80, gc);
            b.push_edge(h, Label::referent().weak());
            b.end_node();
        }
        b.add_root_node();
        for (m, name) in [
            (app, "sys.modules['app']"),
            (logging, "sys.modules['logging']"),
        ] {
            let r = b.strings_mut().intern(name);
            b.push_edge(m, Label::root(r));
        }
        b.end_node();
        let mut g = b.finish().unwrap();
        reach::mark_unreachable(&mut g);
        g
    }

    #[test]
    fn weak_references_a_registry_keeps_to_the_leak_are_folded_into_it() {
        let before = handlers_with_weak_registry(0);
        let after = handlers_with_weak_registry(20);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.suspects.len(), 1, "{:?}", d.suspects);
        let s = &d.suspects[0];
        assert_eq!((s.entry_type.as_str(), s.entries), ("app.Handler", 20));
        assert_eq!(
            s.also,
            ["20 weakref.ReferenceType held by module logging -> .__dict__['_handlerList'] -> list (weak references to them)"]
        );
    }

    /// Module `app` with a `RECEIVERS` dict of `n` functions by their id, and a `BY_RECEIVER`
    /// dict of a set per function, keyed by its id too (blinker's signal).
    fn receivers_indexed_by_id(n: u64) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let function = b.intern_type("builtins", "function", "function");
        let set = b.intern_type("builtins", "set", "set");
        let gc = NodeFlags::GC_TRACKED;
        let (app, app_dict) = (b.add_node(0x100), b.add_node(0x140));
        let (receivers, by_receiver) = (b.add_node(0x180), b.add_node(0x1c0));
        let fs: Vec<NodeId> = (0..n).map(|i| b.add_node(0x10_000 + i * 0x40)).collect();
        let sets: Vec<NodeId> = (0..n).map(|i| b.add_node(0x20_000 + i * 0x40)).collect();
        b.set_node(app, module, 72, gc | NodeFlags::MODULE);
        b.set_name(app, "app");
        let dunder = b.strings_mut().intern("__dict__");
        b.push_edge(app_dict, Label::field(dunder));
        b.end_node();
        b.set_node(app_dict, dict, 360, gc);
        for (key, d) in [("RECEIVERS", receivers), ("BY_RECEIVER", by_receiver)] {
            let k = b.strings_mut().intern(key);
            b.push_edge(d, Label::key(k));
        }
        b.end_node();
        for (d, entries) in [(receivers, &fs), (by_receiver, &sets)] {
            b.set_node(d, dict, 360, gc);
            for (i, &e) in entries.iter().enumerate() {
                let id = b
                    .strings_mut()
                    .intern(&(0x10_000 + i as u64 * 0x40).to_string());
                b.push_edge(e, Label::key_repr(id));
            }
            b.end_node();
        }
        for &f in &fs {
            b.set_node(f, function, 136, gc);
            b.end_node();
        }
        for &s in &sets {
            b.set_node(s, set, 216, gc);
            b.end_node();
        }
        finish_app(b, app, &[])
    }

    #[test]
    fn an_index_keyed_by_the_ids_of_the_leaked_objects_is_folded_into_their_suspect() {
        let before = receivers_indexed_by_id(0);
        let after = receivers_indexed_by_id(20);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.suspects.len(), 1, "{:?}", d.suspects);
        let s = &d.suspects[0];
        assert_eq!((s.entry_type.as_str(), s.entries), ("function", 20));
        assert_eq!(
            s.also,
            ["20 set held by module app -> .__dict__['BY_RECEIVER'] -> dict (kept by their id())"]
        );
    }

    /// Module `app` whose dict holds, before, an empty list at 0x9000 (`OLD`), and after, a new
    /// `app.Price` (`NEW`) whose `amounts` is a new list that the allocator put at 0x9000 once
    /// the old one was freed, with `n` new floats.
    fn list_at_a_reused_address(after: bool, n: u64) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let price = b.intern_type("app", "Price", "Price");
        let float = b.intern_type("builtins", "float", "float");
        let gc = NodeFlags::GC_TRACKED;
        let (app, app_dict) = (b.add_node(0x100), b.add_node(0x140));
        let p = after.then(|| b.add_node(0xa000));
        let l = b.add_node(0x9000);
        let floats: Vec<NodeId> = (0..n).map(|i| b.add_node(0xb000 + i * 0x20)).collect();
        b.set_node(app, module, 72, gc | NodeFlags::MODULE);
        b.set_name(app, "app");
        let dunder = b.strings_mut().intern("__dict__");
        b.push_edge(app_dict, Label::field(dunder));
        b.end_node();
        b.set_node(app_dict, dict, 360, gc);
        let key = b.strings_mut().intern(if after { "NEW" } else { "OLD" });
        b.push_edge(p.unwrap_or(l), Label::key(key));
        b.end_node();
        if let Some(p) = p {
            b.set_node(p, price, 48, gc);
            let amounts = b.strings_mut().intern("amounts");
            b.push_edge(l, Label::attr(amounts));
            b.end_node();
        }
        b.set_node(l, list, 56, gc);
        for (i, &f) in floats.iter().enumerate() {
            b.push_edge(f, Label::index(i));
        }
        b.end_node();
        for &f in &floats {
            b.set_node(f, float, 24, NodeFlags::empty());
            b.end_node();
        }
        finish_app(b, app, &[])
    }

    /// Module `app` with a `CACHE` dict bounded at 1000 entries holding `entries` new prices,
    /// the first of whose `amounts` lists the allocator put at 0x9000, where the earlier
    /// snapshot had an empty list (`OLD`), each list with 20 new floats.
    fn bounded_cache_with_a_reused_address(after: bool) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let price = b.intern_type("app", "Price", "Price");
        let float = b.intern_type("builtins", "float", "float");
        let gc = NodeFlags::GC_TRACKED;
        let (app, app_dict, cache) = (b.add_node(0x100), b.add_node(0x140), b.add_node(0x180));
        let old = (!after).then(|| b.add_node(0x9000));
        let entries: Vec<(NodeId, NodeId, Vec<NodeId>)> = (0..u64::from(after) * 3)
            .map(|i| {
                let p = b.add_node(0xa000 + i * 0x40);
                let l = b.add_node(if i == 0 { 0x9000 } else { 0xc000 + i * 0x40 });
                let fs = (0..20).map(|j| b.add_node(0x10_000 + i * 0x1000 + j * 0x20));
                (p, l, fs.collect())
            })
            .collect();
        b.set_node(app, module, 72, gc | NodeFlags::MODULE);
        b.set_name(app, "app");
        let dunder = b.strings_mut().intern("__dict__");
        b.push_edge(app_dict, Label::field(dunder));
        b.end_node();
        b.set_node(app_dict, dict, 360, gc);
        let k = b.strings_mut().intern("CACHE");
        b.push_edge(cache, Label::key(k));
        if let Some(old) = old {
            let k = b.strings_mut().intern("OLD");
            b.push_edge(old, Label::key(k));
        }
        b.end_node();
        b.set_node(cache, dict, 360, gc);
        for (i, (p, _, _)) in entries.iter().enumerate() {
            let k = b.strings_mut().intern(&format!("sku-{i}"));
            b.push_edge(*p, Label::key(k));
        }
        b.end_node();
        if let Some(old) = old {
            b.set_node(old, list, 56, gc);
            b.end_node();
        }
        let amounts = b.strings_mut().intern("amounts");
        for (p, l, fs) in &entries {
            b.set_node(*p, price, 48, gc);
            b.push_edge(*l, Label::attr(amounts));
            b.end_node();
            b.set_node(*l, list, 56, gc);
            for (j, &f) in fs.iter().enumerate() {
                b.push_edge(f, Label::index(j));
            }
            b.end_node();
            for &f in fs {
                b.set_node(f, float, 24, NodeFlags::empty());
                b.end_node();
            }
        }
        let mut g = finish_app(b, app, &[]);
        g.set_declared_bound(cache, 1000);
        g
    }

    #[test]
    fn what_a_bounded_caches_new_entries_hold_is_no_growth_even_at_a_reused_address() {
        let before = bounded_cache_with_a_reused_address(false);
        let after = bounded_cache_with_a_reused_address(true);
        let d = diff_of(
            &before,
            &after,
            DiffOptions {
                min_objects: 1,
                ..Default::default()
            },
        );
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
        assert_eq!(d.settled, 3 + 2 + 60);
    }

    #[test]
    fn a_new_container_at_a_freed_ones_address_is_no_old_container_that_grew() {
        let before = list_at_a_reused_address(false, 0);
        let after = list_at_a_reused_address(true, 20);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
    }

    #[test]
    fn no_growth_means_no_suspects() {
        let before = heap(50, 0);
        let after = heap(50, 0);
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.new_objects, 0);
        assert!(d.suspects.is_empty());
        assert!(d.types.is_empty());
    }

    #[test]
    fn small_growth_is_below_the_threshold() {
        let d = diff_of(&heap(5, 0), &heap(7, 0), DiffOptions::default());
        assert_eq!(d.new_objects, 6);
        assert!(d.suspects.is_empty());
        let d = diff_of(
            &heap(5, 0),
            &heap(7, 0),
            DiffOptions {
                min_objects: 1,
                ..DiffOptions::default()
            },
        );
        assert_eq!(d.suspects.len(), 1);
    }

    #[test]
    fn a_new_container_of_new_objects_is_the_accumulation_point() {
        // `after` stores one new list (under the old CACHE dict) holding 200 new Orders.
        let after = app_with_list(&["CACHE", "batch"], 200, 0x5000);
        let new_list = after.node_by_addr(0x5000).unwrap();
        let before = heap(0, 0);
        let d = diff_of(&before, &after, DiffOptions::default());
        let s = &d.suspects[0];
        assert_eq!(s.entry_type, "app.Order");
        assert_eq!(s.entries, 200);
        assert_eq!(s.holder, Holder::Node(new_list));
        assert_eq!(
            s.holder_path.as_ref().unwrap().render(&after),
            "module app -> .__dict__['CACHE'] -> dict['batch'] -> list"
        );
        assert_eq!(s.sample_label, "[0]");
    }

    #[test]
    fn an_object_at_a_reused_address_with_another_type_is_new() {
        // Same addresses, but where `after` has an Order, `before` had a Ticket; and one more.
        let before = heap_with(1, 0, ("app", "Ticket"));
        let after = heap(2, 0);
        let options = DiffOptions {
            min_objects: 1,
            ..DiffOptions::default()
        };
        let d = diff_of(&before, &after, options);
        assert_eq!(d.new_objects, 4, "both Orders, and the second's payload");
        assert_eq!(d.suspects[0].entry_type, "app.Order");
    }

    #[test]
    fn a_cache_whose_entries_were_replaced_is_churn() {
        // 200 orders, all evicted and replaced by 200 others under new keys.
        let before = cache_heap(0..200, 0, 0, ("app", "Order"));
        let after = cache_heap(200..400, 200, 0, ("app", "Order"));
        let d = diff_of(&before, &after, DiffOptions::default());
        assert_eq!(d.new_objects, 600);
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
        // Under the same keys.
        let after = cache_heap(0..200, 200, 0, ("app", "Order"));
        assert!(diff_of(&before, &after, DiffOptions::default())
            .suspects
            .is_empty());
    }

    #[test]
    fn a_cache_that_grew_while_churning_counts_its_growth_only() {
        let before = cache_heap(0..200, 0, 0, ("app", "Order"));
        let after = cache_heap(200..500, 200, 0, ("app", "Order"));
        let d = diff_of(&before, &after, DiffOptions::default());
        let s = &d.suspects[0];
        assert_eq!(s.entry_type, "app.Order");
        assert_eq!(
            s.entries, 100,
            "300 new orders, 200 of which replaced old ones"
        );
        assert_eq!(s.objects, 300);
    }

    #[test]
    fn a_cache_filling_up_to_the_bound_it_declares_is_no_leak() {
        // The CACHE dict (node 2) declares a bound, as an lru_cache's dict or a deque does.
        let with_bound = |orders: u64, bound: u64| {
            let mut g = heap(orders, 0);
            g.set_declared_bound(2, bound);
            g
        };
        let before = with_bound(5, 1000);
        let d = diff_of(&before, &with_bound(305, 1000), DiffOptions::default());
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
        // Without its bound, it is growth.
        let d = diff_of(&before, &heap(305, 0), DiffOptions::default());
        assert_eq!(d.suspects[0].entry_type, "app.Order");
    }

    /// module app -> __dict__ -> [keys[0]] -> dict [keys[1]] ... -> a list of `items` Orders at
    /// `list_addr` (the dicts between at 0x300, 0x400, ...); the list is a new one when
    /// `list_addr` changes.
    fn app_with_list(keys: &[&str], items: u64, list_addr: u64) -> Graph {
        list_heap(keys, items, list_addr, ("app", "Order"), false)
    }

    /// [`app_with_list`] with items of the type `item_type` (module, name), `immortal` or not.
    fn list_heap(
        keys: &[&str],
        items: u64,
        list_addr: u64,
        item_type: (&str, &str),
        immortal: bool,
    ) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let item = b.intern_type(item_type.0, item_type.1, item_type.1);
        let gc = NodeFlags::GC_TRACKED;
        let m = b.add_node(0x100);
        let mut dicts = vec![b.add_node(0x200)];
        for i in 1..keys.len() as u64 {
            dicts.push(b.add_node(0x200 + i * 0x100));
        }
        let l = b.add_node(list_addr);
        let orders: Vec<NodeId> = (0..items).map(|i| b.add_node(0x10_000 + i * 64)).collect();
        b.set_node(m, module, 72, gc | NodeFlags::MODULE);
        b.set_name(m, "app");
        let f = b.strings_mut().intern("__dict__");
        b.push_edge(dicts[0], Label::field(f));
        b.end_node();
        let held = dicts[1..].iter().copied().chain([l]);
        for ((&d, key), target) in dicts.iter().zip(keys).zip(held) {
            b.set_node(d, dict, 360, gc);
            let k = b.strings_mut().intern(key);
            b.push_edge(target, Label::key(k));
            b.end_node();
        }
        b.set_node(l, list, 56 + 8 * items, gc);
        for (i, &o) in orders.iter().enumerate() {
            b.push_edge(o, Label::index(i));
        }
        b.end_node();
        for _ in &orders {
            b.set_node(b.processed() as NodeId, item, 56, gc);
            b.end_node();
        }
        finish_app(b, m, if immortal { &orders } else { &[] })
    }

    /// Ends a test heap whose roots are the module `m` and the `immortal` objects.
    fn finish_app(mut b: GraphBuilder, m: NodeId, immortal: &[NodeId]) -> Graph {
        b.add_root_node();
        let r = b.strings_mut().intern("sys.modules['app']");
        b.push_edge(m, Label::root(r));
        let interpreter = b.strings_mut().intern(IMMORTAL_ROOT);
        for &v in immortal {
            b.push_edge(v, Label::root(interpreter));
        }
        b.end_node();
        let mut g = b.finish().unwrap();
        reach::mark_unreachable(&mut g);
        g
    }

    #[test]
    fn a_list_rebuilt_longer_under_the_same_name_grows() {
        // `ITEMS = ITEMS + [new order]`, 30 times: the module's dict keeps its size.
        let before = app_with_list(&["ITEMS"], 100, 0x5000);
        let after = app_with_list(&["ITEMS"], 130, 0x6000);
        let d = diff_of(&before, &after, DiffOptions::default());
        let s = &d.suspects[0];
        assert_eq!(s.entry_type, "app.Order");
        assert_eq!(s.entries, 30);
        // Rebuilt at the same length: churn.
        let d = diff_of(
            &before,
            &app_with_list(&["ITEMS"], 100, 0x6000),
            DiffOptions::default(),
        );
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
    }

    #[test]
    fn snapshots_of_two_processes_or_in_the_wrong_order_are_refused() {
        let mut early = heap(5, 0);
        let mut late = heap(50, 0);
        (early.meta_mut().pid, early.meta_mut().taken_at_ms) = (7, 1_000);
        (late.meta_mut().pid, late.meta_mut().taken_at_ms) = (7, 3_500);
        let p = RetainingPaths::compute(&early, &find_garbage_entries(&early));
        let e = diff(&late, &early, &p, DiffOptions::default()).unwrap_err();
        assert!(e.to_string().contains("wrong order"), "{e}");
        assert!(e.to_string().contains("2.5 s"), "{e}");
        let p = RetainingPaths::compute(&late, &find_garbage_entries(&late));
        assert!(diff(&early, &late, &p, DiffOptions::default()).is_ok());
        (late.meta_mut().pid, late.meta_mut().taken_at_ms) = (8, 3_500);
        let e = diff(&early, &late, &p, DiffOptions::default()).unwrap_err();
        assert!(e.to_string().contains("different processes"), "{e}");
    }

    /// module app -> __dict__ -> ['NUMS'] a list (at 0x300) of `items` immortal objects of the
    /// builtin type `item_type` (held by the immortal root too).
    fn list_of_immortals(items: u64, item_type: &str) -> Graph {
        list_heap(&["NUMS"], items, 0x300, ("builtins", item_type), true)
    }

    #[test]
    fn statically_allocated_objects_are_never_new() {
        // A list filled with small ints of the interpreter's cache: the list grew, but by
        // references to objects that were always there (3.15 caches ints up to 1024).
        let options = DiffOptions {
            min_objects: 1,
            ..DiffOptions::default()
        };
        let d = diff_of(
            &list_of_immortals(0, "int"),
            &list_of_immortals(50, "int"),
            options.clone(),
        );
        assert_eq!(d.new_objects, 0);
        assert!(d.suspects.is_empty(), "{:?}", d.suspects);
        // Strings made immortal at run time (interned, 3.12 and 3.13) are real allocations.
        let d = diff_of(
            &list_of_immortals(0, "str"),
            &list_of_immortals(50, "str"),
            options,
        );
        assert_eq!(d.new_objects, 50);
        assert_eq!(d.suspects[0].entry_type, "str");
    }
}
