//! The dominator tree of a snapshot and the retained size of every object: what would be freed if
//! that one object went away (Eclipse MAT's and Chrome DevTools' "retained size").
//!
//! Object `d` dominates `o` when every path from the roots to `o` passes through `d`; the
//! retained size of `d` is the sum of the shallow sizes of everything it dominates. Weak
//! references keep nothing alive, so they are not followed.
//!
//! The flow graph adds two virtual nodes to the snapshot: a super-root above the snapshot's root,
//! and a garbage root above the objects no root reaches (cyclic garbage not collected yet), so
//! that garbage is analysed too instead of being lost. The garbage root points at the garbage's
//! entry points: objects no other garbage refers to, plus one object of each cycle that nothing
//! else leads into.
//!
//! Algorithm: Lengauer–Tarjan with path compression, written iteratively (a deep linked list must
//! not overflow the stack) and in DFS-number space (arrays indexed by preorder number are visited
//! in order, which the cache likes), on the objects that refer to something; the leaves (two
//! thirds of a Python heap's objects) are then hung under the common dominator of their referrers
//! (module `leaves`: `analyze()` at 5.09M objects took 0.39-0.40 s against 0.53-0.58 s when every
//! object was searched). Hand-written because no crate works on our CSR layout without copying
//! it; memory is 11 `u32` arrays over the searched nodes, one over every node, plus one over the
//! edges (predecessors), all freed before returning except the result (12 bytes per node).

mod leaves;

use super::reverse::StrongPredecessors;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::reach;
use leaves::{leaf_dominators, Leaves};

const NONE: u32 = u32::MAX;

/// The dominator tree and retained sizes of one snapshot.
#[derive(Debug)]
pub struct Dominators {
    /// Immediate dominator per node; [`NONE`] for nodes dominated only by a virtual root.
    idom: Vec<NodeId>,
    retained: Retained,
    retained_count: Vec<u32>,
    /// Nodes hung under the garbage root (cyclic garbage entry points).
    garbage_entries: Vec<NodeId>,
}

/// Strong predecessors the dominator computation was given, or built for itself (and drops as
/// soon as it is done with them).
enum Preds<'a> {
    Borrowed(&'a StrongPredecessors),
    Built(StrongPredecessors),
}

/// The depth-first preorder of the flow graph (the snapshot's strong references, a super-root
/// above the root and the garbage's entry points): the first half of the dominator
/// computation, which needs no predecessors.
struct Preorder {
    garbage_entries: Vec<NodeId>,
    /// Each node's preorder number ([`NONE`] when unreached), by node.
    num: Vec<u32>,
    /// The nodes in preorder.
    order: Vec<u32>,
    /// Each node's parent in the search, by preorder number.
    parent: Vec<u32>,
    /// The leaves the search left out (see [`Leaves`]), when it did.
    leaves: Option<Leaves>,
}

impl Preorder {
    /// The search of the graph without its leaves (see [`Leaves`]).
    fn of(graph: &Graph) -> Preorder {
        Self::search(graph, Some(Leaves::of(graph)))
    }

    /// The search of every node: where the leaves' dominators would cost more than the
    /// search they save.
    fn of_every_node(graph: &Graph) -> Preorder {
        Self::search(graph, None)
    }

    fn search(graph: &Graph, leaves: Option<Leaves>) -> Preorder {
        let n = graph.node_count();
        let super_root = n as u32;
        let garbage_root = n as u32 + 1;
        let total = n + 2;
        let garbage_entries = find_garbage_entries(graph);

        // Successors of the flow graph, by position: the snapshot's edges (weak ones are
        // skipped by the caller), plus the virtual edges.
        let successor_count = |v: u32| -> usize {
            if v == super_root {
                2
            } else if v == garbage_root {
                garbage_entries.len()
            } else {
                graph.targets(v).len()
            }
        };
        let successor = |v: u32, i: usize| -> Option<u32> {
            if v == super_root {
                Some(if i == 0 { graph.root() } else { garbage_root })
            } else if v == garbage_root {
                Some(garbage_entries[i])
            } else if graph.labels(v)[i].is_weak() {
                None
            } else {
                Some(graph.targets(v)[i])
            }
        };

        // Depth-first preorder from the super-root, iteratively.
        let mut num = crate::hugepages::scratch_filled(total, NONE);
        let mut order: Vec<u32> = crate::hugepages::scratch_with_capacity(total);
        let mut parent: Vec<u32> = crate::hugepages::scratch_with_capacity(total);
        {
            let mut stack: Vec<(u32, usize)> = Vec::new(); // (node, next successor position)
            num[super_root as usize] = 0;
            order.push(super_root);
            parent.push(NONE);
            stack.push((super_root, 0));
            while let Some(top) = stack.last_mut() {
                let (v, i) = *top;
                if i >= successor_count(v) {
                    stack.pop();
                    continue;
                }
                top.1 += 1;
                if let Some(w) = successor(v, i) {
                    let leaf = (w as usize) < n && leaves.as_ref().is_some_and(|l| l.contains(w));
                    if !leaf && num[w as usize] == NONE {
                        num[w as usize] = order.len() as u32;
                        order.push(w);
                        parent.push(num[v as usize]);
                        stack.push((w, 0));
                    }
                }
            }
        }
        Preorder {
            garbage_entries,
            num,
            order,
            parent,
            leaves,
        }
    }
}

/// The first half of a dominator computation, the depth-first search (it needs no
/// predecessors): for a caller that runs it beside the predecessors' construction and then
/// finishes with [`Dominators::from_search`].
pub struct DominatorSearch(Preorder);

impl DominatorSearch {
    /// Searches `graph`.
    pub fn run(graph: &Graph) -> DominatorSearch {
        DominatorSearch(Preorder::of(graph))
    }

    /// The entry points of cyclic garbage, found by the search (as [`find_garbage_entries`]).
    pub fn garbage_entries(&self) -> &[NodeId] {
        &self.0.garbage_entries
    }
}

impl Dominators {
    /// Finishes the computation `search` began, with the predecessors of the same graph.
    pub fn from_search(
        graph: &Graph,
        search: DominatorSearch,
        predecessors: &StrongPredecessors,
    ) -> Dominators {
        Self::from_preorder(graph, search.0, Preds::Borrowed(predecessors))
    }

    /// Computes the dominator tree of `graph`.
    pub fn compute(graph: &Graph) -> Dominators {
        Self::compute_with(graph, None)
    }

    /// Computes the dominator tree of `graph` with its strong predecessors, when the caller has
    /// them already; otherwise they are built (on a second thread, while the depth-first
    /// search runs) and dropped after.
    pub fn compute_with(graph: &Graph, predecessors: Option<&StrongPredecessors>) -> Dominators {
        let (preorder, preds) = match predecessors {
            Some(p) => (Preorder::of(graph), Preds::Borrowed(p)),
            None => {
                let (p, preorder) = crate::parallel::join(
                    || StrongPredecessors::build(graph),
                    || Preorder::of(graph),
                );
                (preorder, Preds::Built(p))
            }
        };
        Self::from_preorder(graph, preorder, preds)
    }

    fn from_preorder(graph: &Graph, preorder: Preorder, preds: Preds<'_>) -> Dominators {
        let preds_of = |v: NodeId| match &preds {
            Preds::Borrowed(p) => p.of(v),
            Preds::Built(p) => p.of(v),
        };
        let Preorder {
            garbage_entries,
            num,
            order,
            parent,
            leaves,
        } = preorder;
        let n = graph.node_count();
        let super_root = n as u32;
        let garbage_root = n as u32 + 1;
        let reached = order.len();

        let mut semi: Vec<u32> = crate::hugepages::scratch_to_fill(reached);
        semi.extend(0..reached as u32);
        let mut ancestor = crate::hugepages::scratch_filled(reached, NONE);
        let mut best: Vec<u32> = crate::hugepages::scratch_to_fill(reached);
        best.extend(0..reached as u32);
        let mut idom_num = crate::hugepages::scratch_filled(reached, NONE);
        let mut samedom = crate::hugepages::scratch_filled(reached, NONE);
        let mut bucket_head = crate::hugepages::scratch_filled(reached, NONE);
        let mut bucket_next = crate::hugepages::scratch_filled(reached, NONE);
        let mut path = Vec::new();

        // eval(v): the ancestor of v (in the linked forest) with the smallest semidominator,
        // compressing the path on the way.
        let mut eval =
            |v: u32, ancestor: &mut Vec<u32>, best: &mut Vec<u32>, semi: &Vec<u32>| -> u32 {
                let mut x = v;
                path.clear();
                while ancestor[ancestor[x as usize] as usize] != NONE {
                    path.push(x);
                    x = ancestor[x as usize];
                }
                while let Some(y) = path.pop() {
                    let a = ancestor[y as usize];
                    let b = best[a as usize];
                    ancestor[y as usize] = ancestor[a as usize];
                    if semi[b as usize] < semi[best[y as usize] as usize] {
                        best[y as usize] = b;
                    }
                }
                best[v as usize]
            };

        let mut pred_buf = Vec::new();
        for w in (1..reached as u32).rev() {
            let node = order[w as usize];
            let p = parent[w as usize];
            let mut s = p;
            pred_buf.clear();
            if node == graph.root() || node == garbage_root {
                pred_buf.push(super_root);
            } else if node < super_root {
                if garbage_entries.binary_search(&node).is_ok() {
                    pred_buf.push(garbage_root);
                }
                pred_buf.extend_from_slice(preds_of(node));
            }
            for &v in &pred_buf {
                let vn = num[v as usize];
                if vn == NONE {
                    continue;
                }
                let candidate = if vn <= w {
                    vn
                } else {
                    semi[eval(vn, &mut ancestor, &mut best, &semi) as usize]
                };
                if candidate < s {
                    s = candidate;
                }
            }
            semi[w as usize] = s;
            bucket_next[w as usize] = bucket_head[s as usize];
            bucket_head[s as usize] = w;
            ancestor[w as usize] = p;
            best[w as usize] = w;
            let mut v = bucket_head[p as usize];
            while v != NONE {
                let y = eval(v, &mut ancestor, &mut best, &semi);
                if semi[y as usize] == semi[v as usize] {
                    idom_num[v as usize] = p;
                } else {
                    samedom[v as usize] = y;
                }
                v = bucket_next[v as usize];
            }
            bucket_head[p as usize] = NONE;
        }
        for w in 1..reached {
            if samedom[w] != NONE {
                idom_num[w] = idom_num[samedom[w] as usize];
            }
        }
        drop((samedom, bucket_head, bucket_next));
        // The leaves' dominators, by preorder number; or, where that would take too long, the
        // search again with every node.
        let leaf_dom = match &leaves {
            None => {
                drop((semi, ancestor, best));
                None
            }
            Some(leaves) => {
                let budget = 2 * graph.edge_count() + (1 << 20);
                let found = leaf_dominators(
                    graph,
                    leaves,
                    (&num, &garbage_entries),
                    (&idom_num, [semi, ancestor, best]),
                    preds_of,
                    budget,
                );
                if found.is_none() {
                    drop((num, order, parent, idom_num));
                    return Self::from_preorder(graph, Preorder::of_every_node(graph), preds);
                }
                found
            }
        };
        drop(preds);

        // Retained sizes: a node's dominator precedes it in preorder, so one reverse pass adds
        // every subtree into its dominator.
        let real = |v: u32| (v as usize) < n && !graph.flags(v).contains(NodeFlags::SYNTHETIC);
        let mut retained_num: Vec<u64> = crate::hugepages::scratch_to_fill(reached);
        retained_num.extend(
            order
                .iter()
                .map(|&v| if (v as usize) < n { graph.size(v) } else { 0 }),
        );
        let mut count_num: Vec<u32> = crate::hugepages::scratch_to_fill(reached);
        count_num.extend(order.iter().map(|&v| real(v) as u32));
        // Each leaf's bytes start in its dominator's, and go up the tree from there.
        let mut largest_leaf = 0u64;
        if let Some(leaf_dom) = &leaf_dom {
            for (v, &d) in leaf_dom.iter().enumerate() {
                let v = v as NodeId;
                if d == NONE {
                    continue;
                }
                let size = graph.size(v);
                largest_leaf = largest_leaf.max(size);
                retained_num[d as usize] = retained_num[d as usize].saturating_add(size);
                count_num[d as usize] = count_num[d as usize].saturating_add(real(v) as u32);
            }
        }
        for w in (1..reached).rev() {
            let d = idom_num[w];
            if d != NONE {
                // Saturating: sizes come from files, and a damaged or hostile one may hold
                // sizes whose sum does not fit.
                retained_num[d as usize] = retained_num[d as usize].saturating_add(retained_num[w]);
                count_num[d as usize] = count_num[d as usize].saturating_add(count_num[w]);
            }
        }
        let mut idom = crate::hugepages::filled(n, NONE);
        let largest = retained_num.iter().copied().max().unwrap_or(0);
        let mut retained = Retained::new(n, largest.max(largest_leaf));
        let mut retained_count = crate::hugepages::filled(n, 0u32);
        for (w, &v) in order.iter().enumerate() {
            if (v as usize) < n {
                retained.set(v as usize, retained_num[w]);
                retained_count[v as usize] = count_num[w];
                let d = idom_num[w];
                if d != NONE {
                    let dv = order[d as usize];
                    if (dv as usize) < n {
                        idom[v as usize] = dv;
                    }
                }
            }
        }
        if let (Some(leaves), Some(leaf_dom)) = (&leaves, &leaf_dom) {
            for v in 0..n as NodeId {
                if !leaves.contains(v) {
                    continue;
                }
                // A leaf retains itself only; one no search reached is in no tree, and retains
                // nothing (as the other objects no search reached).
                let d = leaf_dom[v as usize];
                if d == NONE {
                    continue;
                }
                retained.set(v as usize, graph.size(v));
                retained_count[v as usize] = real(v) as u32;
                if (order[d as usize] as usize) < n {
                    idom[v as usize] = order[d as usize];
                }
            }
        }
        Dominators {
            idom,
            retained,
            retained_count,
            garbage_entries,
        }
    }

    /// The immediate dominator of `n`: the one object every path to `n` passes through last.
    /// `None` for the root, for objects held by several roots, and for garbage entry points.
    pub fn idom(&self, n: NodeId) -> Option<NodeId> {
        let d = self.idom[n as usize];
        (d != NONE).then_some(d)
    }

    /// The bytes that would be freed if `n` were: its shallow size plus everything it dominates.
    pub fn retained_size(&self, n: NodeId) -> u64 {
        self.retained.get(n as usize)
    }

    /// How many objects `n` retains, itself included.
    pub fn retained_count(&self, n: NodeId) -> u64 {
        self.retained_count[n as usize] as u64
    }

    /// The entry points of cyclic garbage (see the module documentation).
    pub fn garbage_entries(&self) -> &[NodeId] {
        &self.garbage_entries
    }

    /// The `limit` real objects with the largest retained sizes, largest first.
    pub fn top_retainers(
        &self,
        graph: &Graph,
        limit: usize,
        exclude: impl Fn(NodeId) -> bool,
    ) -> Vec<NodeId> {
        let mut candidates: Vec<NodeId> = graph.objects().filter(|&v| !exclude(v)).collect();
        let key = |v: &NodeId| std::cmp::Reverse(self.retained.get(*v as usize));
        if candidates.len() > limit {
            candidates.select_nth_unstable_by_key(limit, key);
            candidates.truncate(limit);
        }
        candidates.sort_by_key(key);
        candidates
    }

    /// The bytes that would be freed if all of `nodes` were: the retained sizes of those no
    /// other of them dominates (a dominated one's bytes are in its dominator's already). Linear
    /// in the nodes visited: each walk up the dominator tree stops at a node whose answer is
    /// known, and leaves its answer on the way.
    pub fn retained_size_of_set(&self, nodes: &[NodeId]) -> u64 {
        const UNKNOWN: u8 = 0;
        const MEMBER: u8 = 1;
        const UNDER_MEMBER: u8 = 2;
        const FREE: u8 = 3;
        use std::collections::HashMap;
        // Sparse: a type page asks this for a few thousand instances of a heap of millions.
        let mut state: HashMap<NodeId, u8> = nodes.iter().map(|&v| (v, MEMBER)).collect();
        let mut walk = Vec::new();
        let mut total = 0u64;
        for &v in nodes {
            // Is some other member above v?
            walk.clear();
            let mut at = self.idom(v);
            let answer = loop {
                let Some(u) = at else { break FREE };
                match state.get(&u).copied().unwrap_or(UNKNOWN) {
                    MEMBER | UNDER_MEMBER => break UNDER_MEMBER,
                    FREE => break FREE,
                    _ => {
                        walk.push(u);
                        at = self.idom(u);
                    }
                }
            };
            for &u in &walk {
                state.insert(u, answer);
            }
            if answer == FREE {
                total += self.retained_size(v);
            }
        }
        total
    }

    /// The nodes `n` immediately dominates (its children in the dominator tree). Scans every
    /// node: for repeated queries, group [`Dominators::idom`] once instead.
    pub fn dominated_by(&self, n: NodeId) -> Vec<NodeId> {
        (0..self.idom.len() as NodeId)
            .filter(|&v| self.idom[v as usize] == n)
            .collect()
    }

    /// Heap bytes held by the result.
    pub fn heap_bytes(&self) -> usize {
        self.idom.capacity() * 4
            + self.retained.heap_bytes()
            + self.retained_count.capacity() * 4
            + self.garbage_entries.capacity() * 4
    }
}

/// Retained sizes by node: 4 bytes each while every one fits in 32 bits (a heap under 4 GiB,
/// the usual case), else 8. Kept for as long as a snapshot is: the dashboard keeps one.
#[derive(Debug)]
enum Retained {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Retained {
    /// `n` zero sizes, wide enough for `largest`.
    fn new(n: usize, largest: u64) -> Retained {
        if largest <= u32::MAX as u64 {
            Retained::Narrow(crate::hugepages::filled(n, 0))
        } else {
            Retained::Wide(crate::hugepages::filled(n, 0))
        }
    }

    fn set(&mut self, i: usize, bytes: u64) {
        match self {
            // `new` chose the width for the largest value.
            Retained::Narrow(v) => v[i] = bytes as u32,
            Retained::Wide(v) => v[i] = bytes,
        }
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Retained::Narrow(v) => v[i] as u64,
            Retained::Wide(v) => v[i],
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Retained::Narrow(v) => v.capacity() * 4,
            Retained::Wide(v) => v.capacity() * 8,
        }
    }
}

/// Entry points of the garbage: unreachable objects no other unreachable object refers to, then
/// one object of each cycle of garbage not reachable from those (lowest id first), sorted.
pub fn find_garbage_entries(graph: &Graph) -> Vec<NodeId> {
    let n = graph.node_count();
    let is_garbage = |v: NodeId| graph.flags(v).contains(NodeFlags::UNREACHABLE);
    let garbage: Vec<NodeId> = (0..n as NodeId).filter(|&v| is_garbage(v)).collect();
    if garbage.is_empty() {
        return Vec::new();
    }
    let mut referred = reach::NodeSet::new(n);
    for &v in &garbage {
        for (&t, l) in graph.targets(v).iter().zip(graph.labels(v)) {
            if !l.is_weak() && is_garbage(t) {
                referred.insert(t);
            }
        }
    }
    let mut entries: Vec<NodeId> = garbage
        .iter()
        .copied()
        .filter(|&v| !referred.contains(v))
        .collect();
    // Cycles nothing leads into: reach from the entries, then adopt the first unreached object
    // and reach from it, until every garbage object is reached.
    let mut seen = reach::NodeSet::new(n);
    let mut stack: Vec<NodeId> = Vec::new();
    let mut visit = |start: NodeId, seen: &mut reach::NodeSet| {
        if !seen.insert(start) {
            return;
        }
        stack.push(start);
        while let Some(v) = stack.pop() {
            for (&t, l) in graph.targets(v).iter().zip(graph.labels(v)) {
                if !l.is_weak() && is_garbage(t) && seen.insert(t) {
                    stack.push(t);
                }
            }
        }
    };
    for &e in &entries.clone() {
        visit(e, &mut seen);
    }
    for &v in &garbage {
        if !seen.contains(v) {
            entries.push(v);
            visit(v, &mut seen);
        }
    }
    entries.sort_unstable();
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphBuilder, NodeFlags};
    use crate::label::Label;

    /// Builds a graph from an edge list over `n` objects of size 10 each; `roots` are the root's
    /// edges. Node ids are the indices; the root is node `n`.
    fn graph(n: u32, edges: &[(u32, u32)], roots: &[u32], weak: &[(u32, u32)]) -> Graph {
        let mut g = unmarked_graph(n, edges, roots, weak);
        reach::mark_unreachable(&mut g);
        g
    }

    /// [`graph`] without its garbage marked: what no root reaches is not searched (as in a
    /// snapshot of some objects' surroundings, whose root refers to nothing).
    fn unmarked_graph(n: u32, edges: &[(u32, u32)], roots: &[u32], weak: &[(u32, u32)]) -> Graph {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("app", "Obj", "Obj");
        for i in 0..n {
            b.add_node(0x1000 + i as u64 * 16);
        }
        for i in 0..n {
            b.set_node(i, t, 10, NodeFlags::GC_TRACKED);
            for &(s, d) in edges {
                if s == i {
                    b.push_edge(d, Label::index(0));
                }
            }
            for &(s, d) in weak {
                if s == i {
                    b.push_edge(d, Label::referent());
                }
            }
            b.end_node();
        }
        b.add_root_node();
        for &r in roots {
            b.push_edge(r, Label::root_external());
        }
        b.end_node();
        b.finish().unwrap()
    }

    #[test]
    fn a_chain_is_dominated_link_by_link_and_retains_its_tail() {
        let g = graph(4, &[(0, 1), (1, 2), (2, 3)], &[0], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(0), Some(g.root()));
        assert_eq!(d.idom(1), Some(0));
        assert_eq!(d.idom(3), Some(2));
        assert_eq!(d.retained_size(0), 40);
        assert_eq!(d.retained_count(0), 4);
        assert_eq!(d.retained_size(2), 20);
        assert_eq!(d.retained_size(g.root()), 40);
    }

    #[test]
    fn the_tree_is_the_same_with_predecessors_given_or_built() {
        // Diamonds, a cycle, a weak reference and garbage: every branch of the computation.
        let edges = [
            (0, 1),
            (0, 2),
            (1, 3),
            (2, 3),
            (3, 4),
            (4, 3),
            (5, 6),
            (6, 5),
        ];
        let g = graph(8, &edges, &[0, 7], &[(7, 4)]);
        let built = Dominators::compute(&g);
        let preds = StrongPredecessors::build(&g);
        let given = Dominators::compute_with(&g, Some(&preds));
        for v in 0..g.node_count() as NodeId {
            assert_eq!(built.idom(v), given.idom(v), "node {v}");
            assert_eq!(built.retained_size(v), given.retained_size(v), "node {v}");
            assert_eq!(built.retained_count(v), given.retained_count(v), "node {v}");
        }
        assert_eq!(built.idom(3), Some(0));
        assert_eq!(built.garbage_entries(), given.garbage_entries());
    }

    #[test]
    fn retained_sizes_past_4_gib_stay_exact() {
        let mut r = Retained::new(2, 5 << 30);
        r.set(1, 5 << 30);
        assert_eq!((r.get(0), r.get(1)), (0, 5 << 30));
        assert_eq!(r.heap_bytes(), 16);
        let mut r = Retained::new(2, u32::MAX as u64);
        r.set(0, u32::MAX as u64);
        assert_eq!((r.get(0), r.heap_bytes()), (u32::MAX as u64, 8));
    }

    #[test]
    fn a_set_retains_each_byte_once() {
        // 0 -> 1 -> 2 -> 3, and 4 -> 5 beside them.
        let g = graph(6, &[(0, 1), (1, 2), (2, 3), (4, 5)], &[0, 4], &[]);
        let d = Dominators::compute(&g);
        // 3 is under 1: counted with it, not again.
        assert_eq!(d.retained_size_of_set(&[3, 1]), 30);
        assert_eq!(d.retained_size_of_set(&[1, 3]), 30);
        assert_eq!(d.retained_size_of_set(&[2, 5]), 30);
        assert_eq!(d.retained_size_of_set(&[0, 1, 2, 3, 4, 5]), 60);
        assert_eq!(d.retained_size_of_set(&[]), 0);
    }

    #[test]
    fn an_object_reachable_two_ways_is_dominated_by_where_the_ways_meet() {
        // 0 -> 1 -> 3, 0 -> 2 -> 3, 3 -> 4
        let g = graph(5, &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)], &[0], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(3), Some(0));
        assert_eq!(d.idom(4), Some(3));
        assert_eq!(d.retained_size(1), 10, "1 alone does not keep 3 alive");
        assert_eq!(d.retained_size(0), 50);
    }

    #[test]
    fn the_classic_lengauer_tarjan_example() {
        // Graph from Lengauer & Tarjan (1979), nodes R=0, A..L = 1..12.
        let (r, a, b, c, dd, e, f, g_, h, i, j, k, l) = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
        let edges = [
            (r, a),
            (r, b),
            (r, c),
            (a, dd),
            (b, a),
            (b, dd),
            (b, e),
            (c, f),
            (c, g_),
            (dd, l),
            (e, h),
            (f, i),
            (g_, i),
            (g_, j),
            (h, e),
            (h, k),
            (i, k),
            (j, i),
            (k, i),
            (k, r),
            (l, h),
        ];
        let g = graph(13, &edges, &[r], &[]);
        let d = Dominators::compute(&g);
        let expect = [
            (a, r),
            (b, r),
            (c, r),
            (dd, r),
            (e, r),
            (f, c),
            (g_, c),
            (h, r),
            (i, r),
            (j, g_),
            (k, r),
            (l, dd),
        ];
        for (v, want) in expect {
            assert_eq!(d.idom(v), Some(want), "idom of {v}");
        }
    }

    #[test]
    fn weak_references_retain_nothing() {
        let g = graph(3, &[(0, 1)], &[0], &[(0, 2), (1, 2)]);
        let d = Dominators::compute(&g);
        assert_eq!(d.retained_size(0), 20);
        assert!(g.flags(2).contains(NodeFlags::UNREACHABLE));
    }

    #[test]
    fn garbage_cycles_hang_under_their_own_root_with_their_whole_size() {
        // Live: 0. Garbage: an entry 1 -> cycle 2 <-> 3, and a lone cycle 4 <-> 5.
        let g = graph(6, &[(1, 2), (2, 3), (3, 2), (4, 5), (5, 4)], &[0], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.garbage_entries(), &[1, 4]);
        assert_eq!(d.idom(1), None);
        assert_eq!(d.retained_size(1), 30);
        assert_eq!(d.idom(5), Some(4));
        assert_eq!(d.retained_size(4), 20);
        assert_eq!(d.retained_size(g.root()), 10);
    }

    #[test]
    fn objects_held_by_two_roots_have_no_single_dominator() {
        let g = graph(3, &[(0, 2), (1, 2)], &[0, 1], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.idom(2), Some(g.root()));
        assert_eq!(d.top_retainers(&g, 2, |_| false).len(), 2);
    }

    /// The dominators with every node searched, as before leaves were set apart.
    fn searching_every_node(g: &Graph) -> Dominators {
        let preds = StrongPredecessors::build(g);
        Dominators::from_preorder(g, Preorder::of_every_node(g), Preds::Borrowed(&preds))
    }

    #[test]
    fn leaves_are_dominated_as_when_every_node_is_searched() {
        // Random graphs where half the objects refer to nothing: shared leaves, weak
        // references, objects held by several roots, and garbage (cycles and leaves).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |below: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as u32
        };
        for _ in 0..300 {
            let n = 2 + next(40);
            let (mut edges, mut weak) = (Vec::new(), Vec::new());
            for s in 0..n {
                if next(2) == 0 {
                    continue; // a leaf
                }
                for _ in 0..1 + next(4) {
                    let d = next(n);
                    if next(8) == 0 {
                        weak.push((s, d));
                    } else {
                        edges.push((s, d));
                    }
                }
            }
            let roots: Vec<u32> = (0..1 + next(3)).map(|_| next(n)).collect();
            for g in [
                graph(n, &edges, &roots, &weak),
                unmarked_graph(n, &edges, &roots, &weak),
            ] {
                let (fast, every) = (Dominators::compute(&g), searching_every_node(&g));
                for v in 0..g.node_count() as NodeId {
                    let at = format!("node {v} of {edges:?}, roots {roots:?}");
                    assert_eq!(fast.idom(v), every.idom(v), "{at}");
                    assert_eq!(fast.retained_size(v), every.retained_size(v), "{at}");
                    assert_eq!(fast.retained_count(v), every.retained_count(v), "{at}");
                }
                assert_eq!(fast.garbage_entries(), every.garbage_entries());
            }
        }
    }

    #[test]
    fn leaves_whose_common_dominator_is_far_up_give_way_to_searching_every_node() {
        // A chain of k objects, each referring to a string of its own that a hub (held by the
        // root too) also refers to: each string's dominator is the root, found by walking up
        // from the chain's link, k^2/2 steps in all. Past a budget, every node is searched.
        let k = 3000u32;
        let hub = k;
        let leaf = |i: u32| k + 1 + i;
        let mut edges: Vec<(u32, u32)> = (0..k - 1).map(|i| (i, i + 1)).collect();
        edges.extend((0..k).map(|i| (i, leaf(i))));
        edges.extend((0..k).map(|i| (hub, leaf(i))));
        let g = graph(2 * k + 1, &edges, &[0, hub], &[]);
        let preds = StrongPredecessors::build(&g);
        let preorder = Preorder::of(&g);
        let leaves = preorder.leaves.as_ref().unwrap();
        assert!(leaves.contains(leaf(0)) && !leaves.contains(hub));
        let every = searching_every_node(&g);
        let idom_num: Vec<u32> = preorder
            .order
            .iter()
            .map(|&v| match (v as usize) < g.node_count() {
                // The super-root (number 0) dominates the root and the garbage root.
                true => every.idom(v).map_or(0, |d| preorder.num[d as usize]),
                false => 0,
            })
            .collect();
        let within = |budget| {
            leaf_dominators(
                &g,
                leaves,
                (&preorder.num, &preorder.garbage_entries),
                (&idom_num, [Vec::new(), Vec::new(), Vec::new()]),
                |v| preds.of(v),
                budget,
            )
        };
        assert!(within(10_000).is_none());
        assert!(within(k as usize * k as usize).is_some());
        let d = Dominators::compute(&g);
        for i in [0, k / 2, k - 1] {
            assert_eq!(d.idom(leaf(i)), Some(g.root()));
            assert_eq!(d.retained_count(leaf(i)), 1);
        }
        assert_eq!(d.retained_count(0), k as u64);
        assert_eq!(d.retained_count(g.root()), 2 * k as u64 + 1);
    }

    #[test]
    fn a_million_long_chain_needs_no_recursion() {
        let n = 1_000_000u32;
        let g = crate::graph::tests::chain(n, 8);
        let d = Dominators::compute(&g);
        assert_eq!(d.retained_size(0), 8 * n as u64);
        assert_eq!(d.idom(n - 1), Some(n - 2));
    }

    #[test]
    fn top_retainers_are_sorted_and_limited() {
        let g = graph(4, &[(0, 1), (1, 2), (2, 3)], &[0], &[]);
        let d = Dominators::compute(&g);
        assert_eq!(d.top_retainers(&g, 2, |_| false), vec![0, 1]);
        assert_eq!(d.top_retainers(&g, 10, |v| v == 0), vec![1, 2, 3]);
    }
}
