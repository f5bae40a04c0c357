//! Analyses of a snapshot graph: what keeps objects alive (dominators, retained sizes, retaining
//! paths) and what grew between two snapshots (diff, accumulation points, leak suspects).
//!
//! Everything here works on a finished [`crate::graph::Graph`], needs no Python and is tested
//! with plain `cargo test` on constructed graphs.

pub mod accumulation;
pub mod churn;
pub mod diff;
pub mod dominators;
pub mod held;
pub mod ignore;
pub mod paths;
pub mod ranking;
pub mod report;
pub mod reverse;

use crate::graph::Graph;

/// Everything the reports and queries need about one snapshot, computed together: dominators
/// and retained sizes, shortest retaining paths, and who refers to whom.
#[derive(Debug)]
pub struct Analysis {
    pub dominators: dominators::Dominators,
    pub paths: paths::RetainingPaths,
    pub predecessors: reverse::StrongPredecessors,
    /// The bytes it counts in heaplens' own memory ([`crate::own::memory`]).
    accounted: usize,
}

impl Drop for Analysis {
    fn drop(&mut self) {
        crate::own::release(self.accounted);
    }
}

impl Analysis {
    pub fn compute(graph: &Graph) -> Analysis {
        let dominators = dominators::Dominators::compute(graph);
        let paths = paths::RetainingPaths::compute(graph, dominators.garbage_entries());
        let predecessors = reverse::StrongPredecessors::build(graph);
        let mut analysis = Analysis {
            dominators,
            paths,
            predecessors,
            accounted: 0,
        };
        analysis.accounted = analysis.heap_bytes();
        crate::own::account(analysis.accounted);
        analysis
    }

    /// Heap bytes held by the analysis.
    pub fn heap_bytes(&self) -> usize {
        self.dominators.heap_bytes() + self.paths.heap_bytes() + self.predecessors.heap_bytes()
    }
}
