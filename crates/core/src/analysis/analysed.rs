//! [`Analysed`]: a snapshot graph with its analyses, each computed the first time something asks
//! for it. The one analysed-snapshot type behind every flow: the Python API's `Snapshot`, the
//! command line's reports, the dashboard's pages, `no_leaks` and `heaplens run`.
//!
//! Lazily, because most questions need one part only: a census for `/metrics`, retaining paths
//! for a comparison, dominators for retained sizes. Each part is computed once, by the first
//! thread that asks (others asking meanwhile wait for it, never compute it twice), and counted in
//! heaplens' own memory ([`crate::own::memory`]) while it lives.
//!
//! It is not a cache of answers (a comparison's result belongs to the caller) and it holds no
//! Python object: the bindings wrap it to release the interpreter's lock while a part is computed.

use super::diff::{self, DiffOptions, SnapshotDiff};
use super::dominators::{find_garbage_entries, DominatorSearch, Dominators};
use super::paths::RetainingPaths;
use super::reverse::StrongPredecessors;
use crate::census::Census;
use crate::error::Result;
use crate::graph::{Graph, NodeId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A snapshot graph and its analyses, computed on demand. See the module docs.
#[derive(Debug)]
pub struct Analysed {
    graph: Graph,
    dominators: OnceLock<Dominators>,
    paths: OnceLock<RetainingPaths>,
    predecessors: OnceLock<StrongPredecessors>,
    census: OnceLock<Census>,
    /// Last: fields are dropped in the order they are declared, so this one's drop comes after
    /// the graph and every part were freed, and can give their memory back.
    footprint: Footprint,
}

/// The bytes an [`Analysed`]'s computed parts count in heaplens' own memory; when dropped, they
/// leave it, and the memory of a large snapshot and analysis, freed just before, goes back to
/// the system ([`crate::freed`]).
#[derive(Debug)]
struct Footprint {
    graph_bytes: usize,
    accounted: AtomicUsize,
}

impl Drop for Footprint {
    fn drop(&mut self) {
        let accounted = *self.accounted.get_mut();
        crate::own::release(accounted);
        crate::freed::give_back_after(self.graph_bytes + accounted);
    }
}

impl Analysed {
    /// Wraps `graph`; nothing is computed yet. The memory that making a large graph freed (a
    /// walk's or a file's reading) goes back to the system ([`crate::freed`]): the bindings call
    /// this with the interpreter's lock released.
    pub fn new(graph: Graph) -> Analysed {
        let graph_bytes = graph.heap_bytes();
        crate::freed::give_back_after(graph_bytes);
        Analysed {
            graph,
            dominators: OnceLock::new(),
            paths: OnceLock::new(),
            predecessors: OnceLock::new(),
            census: OnceLock::new(),
            footprint: Footprint {
                graph_bytes,
                accounted: AtomicUsize::new(0),
            },
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Counts a part just computed in heaplens' own memory.
    fn account(&self, bytes: usize) {
        self.footprint.accounted.fetch_add(bytes, Ordering::Relaxed);
        crate::own::account(bytes);
    }

    /// Dominators, retained sizes and the entries of cyclic garbage.
    pub fn dominators(&self) -> &Dominators {
        let fresh = self.dominators.get().is_none();
        self.given_back_if(fresh, self.dominators_from(None))
    }

    /// `part`, after the memory its computation freed (when `fresh`: it was computed now) went
    /// back to the system ([`crate::freed`]): an analysis' scratch arrays are several times its
    /// graph, and glibc would keep them resident.
    fn given_back_if<'a, T>(&self, fresh: bool, part: &'a T) -> &'a T {
        if fresh {
            crate::freed::give_back_after(self.graph.heap_bytes());
        }
        part
    }

    /// [`Self::dominators`], finishing `search` when it was run already.
    fn dominators_from(&self, search: Option<DominatorSearch>) -> &Dominators {
        self.dominators.get_or_init(|| {
            let d = match search {
                Some(search) => {
                    Dominators::from_search(&self.graph, search, self.predecessors_kept())
                }
                // The predecessors kept for path queries, when computed already; otherwise the
                // computation builds its own and drops them.
                None => Dominators::compute_with(&self.graph, self.predecessors.get()),
            };
            self.account(d.heap_bytes());
            d
        })
    }

    /// The shortest strong path from the roots to every reachable object (and from the entry
    /// points of cyclic garbage to the rest of it).
    pub fn paths(&self) -> &RetainingPaths {
        let fresh = self.paths.get().is_none();
        self.given_back_if(fresh, self.paths_from(None))
    }

    /// [`Self::paths`], with the garbage's entries a dominator search found already.
    fn paths_from(&self, garbage_entries: Option<&[NodeId]>) -> &RetainingPaths {
        self.paths.get_or_init(|| {
            // The dominators (or their search) found the garbage's entries already, when they
            // were computed; otherwise they are found alone (far cheaper than the dominators).
            let p = match (self.dominators.get(), garbage_entries) {
                (Some(d), _) => RetainingPaths::compute(&self.graph, d.garbage_entries()),
                (None, Some(entries)) => RetainingPaths::compute(&self.graph, entries),
                (None, None) => {
                    RetainingPaths::compute(&self.graph, &find_garbage_entries(&self.graph))
                }
            };
            self.account(p.heap_bytes());
            p
        })
    }

    /// Who refers to whom, strongly: the referrers of every object.
    pub fn predecessors(&self) -> &StrongPredecessors {
        let fresh = self.predecessors.get().is_none();
        self.given_back_if(fresh, self.predecessors_kept())
    }

    /// [`Self::predecessors`], leaving the memory freed meanwhile to the caller.
    fn predecessors_kept(&self) -> &StrongPredecessors {
        self.predecessors.get_or_init(|| {
            let p = StrongPredecessors::build(&self.graph);
            self.account(p.heap_bytes());
            p
        })
    }

    /// Objects and bytes per type.
    pub fn census(&self) -> &Census {
        self.census.get_or_init(|| Census::from_graph(&self.graph))
    }

    /// The parts already computed, without computing any: for a caller that must not wait
    /// (the bindings compute a missing part with the interpreter's lock released).
    pub fn computed_dominators(&self) -> Option<&Dominators> {
        self.dominators.get()
    }

    pub fn computed_paths(&self) -> Option<&RetainingPaths> {
        self.paths.get()
    }

    pub fn computed_predecessors(&self) -> Option<&StrongPredecessors> {
        self.predecessors.get()
    }

    /// Computes every part now (a report that will need them all, or a page that should not
    /// wait on its first question), on two threads ([`crate::parallel`]): the predecessors are
    /// built on one while the other runs the dominators' depth-first search (which needs none);
    /// then the dominators are finished with the predecessors on one while the other computes
    /// the paths (from the garbage's entries the search found) and the census.
    pub fn compute_all(&self) {
        let fresh = self.dominators.get().is_none()
            || self.paths.get().is_none()
            || self.predecessors.get().is_none();
        let ((), search) = crate::parallel::join(
            || {
                self.predecessors_kept();
            },
            || {
                self.dominators
                    .get()
                    .is_none()
                    .then(|| DominatorSearch::run(&self.graph))
            },
        );
        let entries = search.as_ref().map(|s| s.garbage_entries().to_vec());
        let ((), dominators) = crate::parallel::join(
            || {
                self.paths_from(entries.as_deref());
                self.census();
            },
            || self.dominators_from(search),
        );
        self.given_back_if(fresh, dominators);
    }

    /// Heap bytes held by the graph and the parts computed so far.
    pub fn heap_bytes(&self) -> usize {
        self.graph.heap_bytes() + self.footprint.accounted.load(Ordering::Relaxed)
    }

    /// What grew since `before` (an earlier snapshot of the same process), and what holds it:
    /// [`diff::diff`] with this snapshot's retaining paths.
    pub fn diff_since(&self, before: &Analysed, options: DiffOptions) -> Result<SnapshotDiff> {
        diff::check_pair(&before.graph, &self.graph)?;
        let fresh = self.paths.get().is_none();
        // What the comparison needs, on two threads: the two snapshots' objects in address
        // order, and this one's retaining paths (one search, the longest of the three). This
        // snapshot's order goes to whichever thread is free first (the other waits for it, or
        // finds it done).
        crate::parallel::join(
            || {
                before.graph.address_order();
                self.graph.address_order();
            },
            || {
                self.paths_from(None);
                self.graph.address_order();
            },
        );
        diff::diff(
            &before.graph,
            &self.graph,
            self.given_back_if(fresh, self.paths_from(None)),
            options,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, NodeFlags, NodeId};
    use crate::label::Label;

    /// A module holding a list of `n` orders, the list also referring to itself.
    fn graph(n: u64) -> Graph {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let list = b.intern_type("builtins", "list", "list");
        let order = b.intern_type("app", "Order", "Order");
        let m = b.add_node(0x1000);
        let l = b.add_node(0x2000);
        let orders: Vec<_> = (0..n).map(|i| b.add_node(0x3000 + i * 0x40)).collect();
        b.set_node(m, module, 72, NodeFlags::GC_TRACKED | NodeFlags::MODULE);
        b.set_name(m, "app");
        let name = b.strings_mut().intern("ORDERS");
        b.push_edge(l, Label::attr(name));
        b.end_node();
        b.set_node(l, list, 56, NodeFlags::GC_TRACKED);
        for (i, &o) in orders.iter().enumerate() {
            b.push_edge(o, Label::index(i));
        }
        b.end_node();
        for &o in &orders {
            b.set_node(o, order, 48, NodeFlags::GC_TRACKED);
            b.end_node();
        }
        b.add_root_node();
        let root = b.strings_mut().intern("sys.modules['app']");
        b.push_edge(m, Label::root(root));
        b.end_node();
        b.finish().unwrap()
    }

    #[test]
    fn parts_are_computed_when_asked_and_answer_as_an_eager_analysis_would() {
        let a = Analysed::new(graph(5));
        assert!(a.computed_paths().is_none() && a.computed_dominators().is_none());
        let list = 1;
        assert_eq!(a.census().get("app.Order").unwrap().count, 5);
        // Paths first (garbage entries found alone), then dominators: the same answers.
        assert!(a.paths().path(a.graph(), 2).is_some());
        assert!(a.computed_dominators().is_none());
        assert_eq!(a.dominators().retained_size(list), 56 + 5 * 48);
        assert_eq!(a.predecessors().of(2), &[list]);
    }

    #[test]
    fn computing_every_part_at_once_answers_as_each_part_alone() {
        // The orders, plus a cycle of two no root reaches (garbage, with an entry point).
        let mut b = GraphBuilder::new();
        let node = b.intern_type("app", "Node", "Node");
        let (x, y, z) = (b.add_node(0x10), b.add_node(0x20), b.add_node(0x30));
        for (v, to) in [(x, y), (y, x), (z, x)] {
            b.set_node(v, node, 40, NodeFlags::GC_TRACKED);
            b.push_edge(to, Label::index(0));
            b.end_node();
        }
        b.add_root_node();
        b.end_node();
        let mut cyclic = b.finish().unwrap();
        crate::reach::mark_unreachable(&mut cyclic);
        for (g, garbage) in [(graph(7), 0), (cyclic, 1)] {
            let all = Analysed::new(g);
            all.compute_all();
            let g = all.graph();
            let alone = Dominators::compute(g);
            let d = all.computed_dominators().expect("computed");
            assert_eq!(d.garbage_entries(), alone.garbage_entries());
            assert_eq!(d.garbage_entries().len(), garbage);
            for v in 0..g.node_count() as NodeId {
                assert_eq!(d.idom(v), alone.idom(v));
                assert_eq!(d.retained_size(v), alone.retained_size(v));
            }
            let paths = all.computed_paths().expect("computed");
            let found = RetainingPaths::compute(g, &find_garbage_entries(g));
            for v in 0..g.node_count() as NodeId {
                assert_eq!(
                    paths.path(g, v).map(|p| p.render(g)),
                    found.path(g, v).map(|p| p.render(g))
                );
            }
        }
    }

    #[test]
    fn a_comparison_of_two_analysed_snapshots_finds_the_growth() {
        let before = Analysed::new(graph(5));
        let after = Analysed::new(graph(40));
        let d = after.diff_since(&before, DiffOptions::default()).unwrap();
        assert_eq!(d.suspects.len(), 1, "{d:?}");
        assert_eq!(d.suspects[0].entry_type, "app.Order");
        assert_eq!(d.suspects[0].entries, 35);
    }
}
