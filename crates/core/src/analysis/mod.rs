//! Analyses of a snapshot graph: what keeps objects alive, and what grew.
