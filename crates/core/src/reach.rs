//! Reachability from the roots: which objects no root reaches (cyclic garbage not yet collected).
//!
//! A breadth-first search from the synthetic root over strong edges (weak references keep nothing
//! alive). Iterative, with a bit set and one queue: no recursion, so a million-deep linked list
//! cannot overflow the stack.

use crate::graph::{Graph, NodeFlags, NodeId};

/// A fixed-size bit set over node ids.
#[derive(Clone, Debug)]
pub struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    pub fn new(len: usize) -> Self {
        NodeSet {
            words: vec![0; len.div_ceil(64)],
        }
    }
    #[inline]
    pub fn contains(&self, n: NodeId) -> bool {
        self.words[(n / 64) as usize] & (1 << (n % 64)) != 0
    }
    /// Removes `n`.
    #[inline]
    pub fn remove(&mut self, n: NodeId) {
        self.words[(n / 64) as usize] &= !(1 << (n % 64));
    }
    /// Adds `n`; returns whether it was new.
    #[inline]
    pub fn insert(&mut self, n: NodeId) -> bool {
        let w = &mut self.words[(n / 64) as usize];
        let bit = 1 << (n % 64);
        let new = *w & bit == 0;
        *w |= bit;
        new
    }
}

/// The nodes reachable from `start` over strong edges.
pub fn reachable_from(graph: &Graph, start: NodeId) -> NodeSet {
    let mut seen = NodeSet::new(graph.node_count());
    // Room for the most the queue holds (see below) at once: a queue that grows by doubling
    // leaves each of its old copies behind in the allocator, written, which raised a snapshot's
    // peak memory. Room never written costs address space only.
    let mut queue = Vec::with_capacity(graph.node_count().min(1 << 21) + 1);
    queue.push(start);
    seen.insert(start);
    let mut head = 0;
    while head < queue.len() {
        let n = queue[head];
        head += 1;
        for (&t, l) in graph.targets(n).iter().zip(graph.labels(n)) {
            if !l.is_weak() && seen.insert(t) {
                queue.push(t);
            }
        }
        // Keep the queue from holding every node at once on wide graphs: drop the consumed prefix.
        if head > 1 << 20 && head * 2 > queue.len() {
            queue.drain(..head);
            head = 0;
        }
    }
    seen
}

/// Marks every object the root does not reach as [`NodeFlags::UNREACHABLE`] and returns how many
/// there are.
pub fn mark_unreachable(graph: &mut Graph) -> usize {
    let seen = reachable_from(graph, graph.root());
    let mut count = 0;
    for n in 0..graph.node_count() as NodeId {
        if !seen.contains(n) && !graph.flags(n).contains(NodeFlags::SYNTHETIC) {
            graph.add_flags(n, NodeFlags::UNREACHABLE);
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::sample;
    use crate::graph::GraphBuilder;
    use crate::label::Label;

    #[test]
    fn a_cycle_no_root_reaches_is_marked_unreachable() {
        let mut g = sample();
        assert_eq!(mark_unreachable(&mut g), 2);
        assert!(g.flags(5).contains(NodeFlags::UNREACHABLE));
        assert!(g.flags(6).contains(NodeFlags::UNREACHABLE));
        assert!(!g.flags(3).contains(NodeFlags::UNREACHABLE));
    }

    #[test]
    fn weak_references_do_not_make_objects_reachable() {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("weakref", "ReferenceType", "ReferenceType");
        let wr = b.add_node(0x10);
        let target = b.add_node(0x20);
        b.set_node(wr, t, 80, NodeFlags::GC_TRACKED);
        b.push_edge(target, Label::referent());
        b.end_node();
        b.set_node(target, t, 80, NodeFlags::GC_TRACKED);
        b.end_node();
        b.add_root_node();
        b.push_edge(wr, Label::root_external());
        b.end_node();
        let mut g = b.finish().unwrap();
        assert_eq!(mark_unreachable(&mut g), 1);
        assert!(g.flags(target).contains(NodeFlags::UNREACHABLE));
    }

    #[test]
    fn a_million_deep_chain_does_not_overflow_the_stack() {
        let mut g = crate::graph::tests::chain(1_000_000, 64);
        assert_eq!(mark_unreachable(&mut g), 0);
    }
}
