//! Who refers to whom: the strong edges of a graph reversed, as CSR (for each node, the nodes
//! with a strong reference to it). Built on demand by the analyses that walk backwards; costs
//! 4 bytes per strong edge and 4 per node.

use crate::graph::{Graph, NodeId};

/// The sources of the strong edges into each node.
#[derive(Debug)]
pub struct StrongPredecessors {
    offsets: Vec<u32>,
    sources: Vec<NodeId>,
}

impl StrongPredecessors {
    /// Reverses the strong edges of `graph` (two passes over the edges: count, then fill).
    pub fn build(graph: &Graph) -> StrongPredecessors {
        let n = graph.node_count();
        let mut offsets = crate::hugepages::filled(n + 1, 0u32);
        for v in 0..n as NodeId {
            for (&t, l) in graph.targets(v).iter().zip(graph.labels(v)) {
                if !l.is_weak() {
                    offsets[t as usize + 1] += 1;
                }
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = crate::hugepages::scratch_to_fill(n + 1);
        fill.extend_from_slice(&offsets);
        let mut sources = crate::hugepages::filled(offsets[n] as usize, 0 as NodeId);
        for v in 0..n as NodeId {
            for (&t, l) in graph.targets(v).iter().zip(graph.labels(v)) {
                if !l.is_weak() {
                    let slot = &mut fill[t as usize];
                    sources[*slot as usize] = v;
                    *slot += 1;
                }
            }
        }
        StrongPredecessors { offsets, sources }
    }

    /// The nodes with a strong reference to `v` (once per edge), in source order.
    pub fn of(&self, v: NodeId) -> &[NodeId] {
        let start = self.offsets[v as usize] as usize;
        let end = self.offsets[v as usize + 1] as usize;
        &self.sources[start..end]
    }

    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.sources.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::sample;

    #[test]
    fn predecessors_are_the_reversed_strong_edges() {
        let g = sample();
        let p = StrongPredecessors::build(&g);
        assert_eq!(p.of(2), &[1]);
        assert_eq!(p.of(3), &[2]);
        assert_eq!(p.of(5), &[6]);
        assert_eq!(p.of(0), &[g.root()]);
        assert!(p.of(g.root()).is_empty());
    }
}
