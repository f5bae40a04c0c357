//! heaplens-core: the pure-Rust heart of heaplens. It holds the model of a Python heap as a
//! compact graph, and everything that can be computed from it without a Python interpreter:
//! the per-type census, objgraph-style peak growth, reachability from roots, and process memory
//! figures. A snapshot copied off a production machine can be analysed on a laptop with no Python,
//! and every function here is tested with plain `cargo test`.
//!
//! What it is not: it never touches CPython. Walking a live heap is the job of the capture layer
//! (`crates/py`), which feeds a [`graph::GraphBuilder`]; Python bindings live there too.
//!
//! Design: the heap graph is index-based ([`graph::NodeId`] is a `u32`), adjacency is CSR (one
//! offsets array, one targets array, one labels array), and type names and edge labels are
//! interned in a [`strings::StringTable`]. At ~2.5 edges per object a graph costs about 40 bytes
//! per object, with no per-object heap allocation.
//!
//! ```
//! use heaplens_core::graph::{GraphBuilder, NodeFlags};
//! use heaplens_core::label::Label;
//! let mut b = GraphBuilder::new();
//! let dict = b.intern_type("builtins", "dict", "dict");
//! let list = b.intern_type("builtins", "list", "list");
//! let d = b.add_node(0x1000);
//! let l = b.add_node(0x2000);
//! b.set_node(d, dict, 64, NodeFlags::GC_TRACKED);
//! let key = b.strings_mut().intern("items");
//! b.push_edge(l, Label::key(key));
//! b.end_node();
//! b.set_node(l, list, 56, NodeFlags::GC_TRACKED);
//! b.end_node();
//! let root = b.add_root_node();
//! b.push_edge(d, Label::root_external());
//! b.end_node();
//! let graph = b.finish().unwrap();
//! assert_eq!(graph.node_count(), 3);
//! assert_eq!(graph.describe_label(graph.edges(d).next().unwrap().1), "['items']");
//! assert_eq!(graph.root(), root);
//! ```

pub mod analysis;
pub mod census;
pub mod error;
pub mod freed;
pub mod graph;
pub mod growth;
pub mod history;
pub mod hugepages;
pub mod label;
pub mod maps;
pub mod mapped_alloc;
pub mod new_ids;
pub mod output;
pub mod own;
pub mod parallel;
pub mod procmem;
mod radix;
pub mod reach;
pub mod render;
pub mod snapfile;
pub mod strings;
pub mod text;
pub mod types;

pub use error::Error;

/// The version of heaplens, shared by every crate and by the Python package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
