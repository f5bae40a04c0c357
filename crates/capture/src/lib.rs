//! heaplens-capture: the heap walk of the running CPython interpreter, and the only crate in
//! heaplens that reads CPython memory.
//!
//! It walks the live heap of the interpreter it runs in and hands the results to heaplens-core:
//! a [`heaplens_core::graph::Graph`] (a snapshot), a [`heaplens_core::census::Census`], or the
//! objects of one type. Every walk holds the GIL from start to end, runs no Python code,
//! allocates no Python object, creates no instance `__dict__` and leaves every reference count as
//! it found it; it reads the interpreter's structures directly.
//!
//! Supported: CPython 3.11 to 3.15, 64-bit release builds with the GIL. What differs between
//! versions lives in [`cpython`], one module per ABI behind one [`abi::Abi`] trait; struct
//! offsets are data generated from each release's own headers ([`layout`]); [`env`] picks and
//! checks them once, at import time, and refuses anything else with one sentence
//! ([`CaptureError::Unsupported`]).
//!
//! Not here: Python classes and exceptions (heaplens-py wraps this API), analyses and file
//! formats (heaplens-core), anything that runs Python code during a walk (nothing may).
//!
//! What a walk cannot see, by construction:
//! - objects referenced only from C: module-level C statics of extension modules, the interned
//!   string table, objects held in C structures of extension types whose `tp_traverse` does not
//!   report them (types without GC support report nothing, e.g. `range` keeps its three ints
//!   unseen);
//! - free lists and allocator overhead (not objects), and memory allocated by C libraries
//!   (compare `memory().rss` with the census' bytes to see it);
//! - other interpreters (subinterpreters) of the same process.
//!
//! Such objects are still counted when some Python object refers to them; objects referenced
//! from C as well as from Python show up as roots ("held outside the heap"), and immortal
//! objects (3.12+) as roots of their own kind ("interpreter (immortal)").
//!
//! Which versions it reads, without Python (the crate's default: its `python` feature, the
//! walk itself, is off):
//!
//! ```
//! assert!(heaplens_capture::is_supported(3, 14));
//! assert_eq!(heaplens_capture::supported_list(), "3.11, 3.12, 3.13, 3.14 and 3.15");
//! ```
//!
//! The walk, in an extension module built with the `python` feature:
//!
//! ```ignore
//! pyo3::Python::attach(|py| {
//!     heaplens_capture::init(py);
//!     let census = heaplens_capture::census(py, true).unwrap();
//!     println!("{} gc-tracked objects", census.total_count());
//! });
//! ```

#[cfg(feature = "python")]
pub mod abi;
mod addrmap;
#[cfg(feature = "python")]
mod allocations;
#[cfg(feature = "python")]
mod api;
#[cfg(feature = "python")]
mod around;
mod blocks;
#[cfg(feature = "python")]
mod census;
pub mod cpython;
#[cfg(feature = "python")]
mod dicts;
#[cfg(feature = "python")]
mod edges;
#[cfg(feature = "python")]
mod env;
#[cfg(feature = "python")]
mod forked;
#[cfg(feature = "python")]
mod frame_edges;
#[cfg(feature = "python")]
mod gc_lists;
#[cfg(feature = "python")]
mod labels;
pub mod layout;
mod prefetch;
#[cfg(feature = "python")]
mod raw;
mod recycle;
#[cfg(feature = "python")]
mod references;
#[cfg(feature = "python")]
mod registry;
#[cfg(feature = "python")]
mod sizeof;
#[cfg(feature = "python")]
mod snapshot;
#[cfg(feature = "python")]
mod split;
#[cfg(feature = "python")]
mod threads;

#[cfg(feature = "python")]
pub use allocations::allocation_tracebacks;
#[cfg(feature = "python")]
pub use api::*;
pub use cpython::{is_supported, supported_list, SUPPORTED};
