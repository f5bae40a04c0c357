//! Analyses of a snapshot graph: what keeps objects alive (dominators, retained sizes, retaining
//! paths) and what grew between two snapshots (diff, accumulation points, leak suspects).
//!
//! Everything here works on a finished [`crate::graph::Graph`], needs no Python and is tested
//! with plain `cargo test` on constructed graphs.

pub mod accumulation;
pub mod analysed;
pub mod churn;
pub mod diff;
pub mod dominators;
pub mod held;
pub mod ignore;
pub mod paths;
pub mod ranking;
pub mod report;
pub mod reverse;
pub mod settled;

pub use analysed::Analysed;
