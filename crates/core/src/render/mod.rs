//! Renderers: a snapshot in the formats other tools read, and pictures of a few objects.

pub mod chrome;
pub mod picture;
