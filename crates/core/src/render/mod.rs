//! Renderers: a snapshot in the formats other tools read.

pub mod chrome;
