//! The dominators of the leaves: objects that refer to nothing (strings, numbers, bytes, empty
//! containers), most of a Python heap's objects, and the targets of most of its references
//! (measured on `bench/heap_bench.py`'s heap at 5.09M objects: 66% of the objects, 74% of the
//! 12.7M references). A leaf is on no path to another object, so the dominators of the rest are
//! those of the graph without the leaves, and the depth-first search and the semidominators'
//! pass (the longest parts) skip them. Every path to a leaf ends with one of its referrers, so
//! its immediate dominator is the nearest common dominator of its referrers: the referrer itself
//! when it has one, as most have, and otherwise found up the tree of the rest.

use super::NONE;
use crate::graph::{Graph, NodeId};
use crate::reach;

/// The leaves of a graph (see the module docs): every object with no reference, but the root.
pub(super) struct Leaves(reach::NodeSet);

impl Leaves {
    pub(super) fn of(graph: &Graph) -> Leaves {
        let mut leaves = reach::NodeSet::new(graph.node_count());
        for v in 0..graph.node_count() as NodeId {
            // The root stays in the search: the flow graph starts there.
            if graph.targets(v).is_empty() && v != graph.root() {
                leaves.insert(v);
            }
        }
        Leaves(leaves)
    }

    pub(super) fn contains(&self, v: NodeId) -> bool {
        self.0.contains(v)
    }
}

/// Each leaf's immediate dominator, by preorder number ([`NONE`] for a leaf no search reached),
/// from the dominators of the rest (`idom_num`, by preorder number: a dominator's number is below
/// those it dominates), with three arrays of the semidominators' pass it is done with (`reused`).
/// `None` when the common dominators of the leaves' referrers would take more than `budget`
/// steps up the tree (the links of a long chain, each sharing a string with an object near the
/// root): the caller then searches every node.
pub(super) fn leaf_dominators<'a>(
    graph: &Graph,
    leaves: &Leaves,
    preorder: (&[u32], &[NodeId]),
    (idom_num, reused): (&[u32], [Vec<u32>; 3]),
    preds_of: impl Fn(NodeId) -> &'a [NodeId],
    budget: usize,
) -> Option<Vec<u32>> {
    let (num, garbage_entries) = preorder;
    let garbage_root = graph.node_count() + 1;
    let spans = TreeSpans::of(idom_num, reused);
    let mut steps = 0usize;
    let mut dominator = crate::hugepages::scratch_filled(graph.node_count(), NONE);
    for v in 0..graph.node_count() as NodeId {
        if !leaves.contains(v) {
            continue;
        }
        // A garbage entry has the garbage root among its referrers in the flow graph.
        let mut d = if !garbage_entries.is_empty() && garbage_entries.binary_search(&v).is_ok() {
            num[garbage_root]
        } else {
            NONE
        };
        for &p in preds_of(v) {
            let b = num[p as usize];
            if b == NONE {
                continue;
            }
            if d == NONE {
                d = b;
                continue;
            }
            // Up from the common dominator so far until it dominates this referrer too: once
            // it is high in the tree (a string many objects refer to), most referrers cost one
            // look.
            while !spans.dominates(d, b) {
                d = idom_num[d as usize];
                steps += 1;
            }
            if steps > budget {
                return None;
            }
            if d == 0 {
                break; // the super-root: no higher common dominator
            }
        }
        dominator[v as usize] = d;
    }
    Some(dominator)
}

/// The dominator tree of the searched nodes laid out in its own preorder: each node's subtree is
/// a span of positions, so whether one node dominates another is two comparisons.
struct TreeSpans {
    first: Vec<u32>,
    size: Vec<u32>,
}

impl TreeSpans {
    /// From each node's immediate dominator, by preorder number (a dominator's number is below
    /// those it dominates; the super-root, 0, dominates every node), in three arrays of the
    /// semidominators' pass, done with: their pages are backed already.
    fn of(idom_num: &[u32], reused: [Vec<u32>; 3]) -> TreeSpans {
        let reached = idom_num.len();
        let [mut size, mut first, mut next_free] = reused;
        for v in [&mut size, &mut first, &mut next_free] {
            v.clear();
            v.resize(reached, 1);
        }
        for w in (1..reached).rev() {
            let d = idom_num[w] as usize;
            size[d] += size[w];
        }
        // Each node's subtree takes the next free positions of its dominator's span.
        first[0] = 0;
        for w in 1..reached {
            let d = idom_num[w] as usize;
            first[w] = next_free[d];
            next_free[d] += size[w];
            next_free[w] = first[w] + 1;
        }
        TreeSpans { first, size }
    }

    /// Whether `d` dominates `w` (both by preorder number; a node dominates itself).
    fn dominates(&self, d: u32, w: u32) -> bool {
        let (start, at) = (self.first[d as usize], self.first[w as usize]);
        start <= at && at - start < self.size[d as usize]
    }
}
