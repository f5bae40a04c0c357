//! The heap graph: every object of a snapshot as a node, every reference as a labelled edge.
//!
//! Layout (the point of this module, so it is spelled out): nodes are numbered `0..n` ([`NodeId`]
//! is a `u32`) and their facts live in parallel arrays: address (`u64`), type id and flags packed
//! in one `u32` (24 + 8 bits), shallow size (`u16`: nearly every object is smaller than 64 KiB;
//! the others keep their size in a side table). Edges are CSR: `offsets[n]..offsets[n + 1]`
//! indexes the `targets` and `labels` arrays. That is 18 bytes per node and 8 bytes per edge,
//! with no per-node allocation.
//!
//! Besides real objects a graph holds a few synthetic nodes: one root (whose edges name the roots:
//! modules in `sys.modules`, thread stacks, objects referenced from outside the heap), one node per
//! thread and one per interpreter frame on a thread's stack. They carry [`NodeFlags::SYNTHETIC`],
//! a name, and are left out of censuses.
//!
//! Graphs are built once by a [`GraphBuilder`], in node order: the edges of node `i` are pushed
//! after those of `i - 1`, so the builder writes CSR directly with no second copy of the edges.

use crate::label::Label;
use crate::strings::{StringId, StringTable};
use crate::types::{TypeId, TypeTable};
use hashbrown::HashMap;
use std::sync::OnceLock;

/// The root label of immortal objects (3.12+): the interpreter keeps them for its whole life.
pub const IMMORTAL_ROOT: &str = "interpreter (immortal)";

/// Index of a node in a [`Graph`].
pub type NodeId = u32;

/// Facts about one node, packed in 8 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeFlags(pub u8);

impl NodeFlags {
    /// The object is tracked by the cyclic garbage collector (objgraph's whole view).
    pub const GC_TRACKED: NodeFlags = NodeFlags(1);
    /// A module object.
    pub const MODULE: NodeFlags = NodeFlags(2);
    /// A type object (a class).
    pub const TYPE: NodeFlags = NodeFlags(4);
    /// A frame: a frame object, or a synthetic node for an interpreter frame on a thread stack.
    pub const FRAME: NodeFlags = NodeFlags(8);
    /// No root reaches the object: cyclic garbage the collector has not freed yet.
    pub const UNREACHABLE: NodeFlags = NodeFlags(16);
    /// Not a Python object: the root, a thread stack or an interpreter frame.
    pub const SYNTHETIC: NodeFlags = NodeFlags(32);
    /// Referenced from outside the Python heap: its reference count is higher than the number of
    /// references heaplens found (C code, interpreter state, a C call in progress).
    pub const EXTERNAL: NodeFlags = NodeFlags(64);
    /// A thread stack (synthetic).
    pub const THREAD: NodeFlags = NodeFlags(128);

    pub const fn empty() -> NodeFlags {
        NodeFlags(0)
    }
    pub fn contains(self, other: NodeFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn intersects(self, other: NodeFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Names of the flags that are set, for display and for the Python API.
    pub fn names(self) -> Vec<&'static str> {
        const ALL: [(NodeFlags, &str); 8] = [
            (NodeFlags::GC_TRACKED, "gc_tracked"),
            (NodeFlags::MODULE, "module"),
            (NodeFlags::TYPE, "type"),
            (NodeFlags::FRAME, "frame"),
            (NodeFlags::UNREACHABLE, "unreachable"),
            (NodeFlags::SYNTHETIC, "synthetic"),
            (NodeFlags::EXTERNAL, "external"),
            (NodeFlags::THREAD, "thread"),
        ];
        ALL.iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl std::ops::BitOr for NodeFlags {
    type Output = NodeFlags;
    fn bitor(self, rhs: NodeFlags) -> NodeFlags {
        NodeFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for NodeFlags {
    fn bitor_assign(&mut self, rhs: NodeFlags) {
        self.0 |= rhs.0;
    }
}

/// Where and when a graph was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// `sys.version` of the process, e.g. `3.11.7 (main, ...)`.
    pub python_version: String,
    /// The producer, e.g. `heaplens 0.1.0`.
    pub producer: String,
    pub pid: u32,
    /// Milliseconds since the Unix epoch.
    pub taken_at_ms: u64,
    /// Whether the cyclic garbage collector was enabled (`gc.isenabled()`); `None` when not
    /// recorded (files of format version 1). Cyclic garbage is a leak only when it is off.
    pub gc_enabled: Option<bool>,
}

const TYPE_BITS: u32 = 24;
const TYPE_MASK: u32 = (1 << TYPE_BITS) - 1;
const SIZE_IN_SIDE_TABLE: u16 = u16::MAX;

/// A heap snapshot as a graph. Immutable once built, apart from flags set by analyses.
#[derive(Debug)]
pub struct Graph {
    addrs: Vec<u64>,
    type_and_flags: Vec<u32>,
    sizes: Vec<u16>,
    big_sizes: HashMap<NodeId, u64>,
    offsets: Vec<u32>,
    targets: Vec<NodeId>,
    labels: Vec<Label>,
    names: HashMap<NodeId, StringId>,
    /// Containers that declare how many entries they hold at most (a `deque(maxlen=...)`,
    /// an `lru_cache`'s dict): growth up to such a bound is not growth without bound.
    bounds: HashMap<NodeId, u64>,
    /// Where objects were allocated, when `tracemalloc` traced (empty otherwise).
    allocations: Allocations,
    /// The bytes this graph counts in heaplens' own memory ([`crate::own::memory`]).
    accounted: usize,
    strings: StringTable,
    types: TypeTable,
    root: NodeId,
    meta: SnapshotMeta,
    by_addr: OnceLock<Vec<NodeId>>,
}

impl Drop for Graph {
    fn drop(&mut self) {
        crate::own::release(self.accounted);
    }
}

impl Graph {
    /// `graph`, finished, counted in heaplens' own memory until it is dropped.
    fn accounted(mut graph: Graph) -> Graph {
        graph.accounted = graph.heap_bytes();
        crate::own::account(graph.accounted);
        graph
    }

    pub fn node_count(&self) -> usize {
        self.addrs.len()
    }

    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The synthetic root whose edges name every root.
    pub fn root(&self) -> NodeId {
        self.root
    }

    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    pub fn meta_mut(&mut self) -> &mut SnapshotMeta {
        &mut self.meta
    }

    /// The object's address (its `id()`); 0 for synthetic nodes.
    pub fn addr(&self, n: NodeId) -> u64 {
        self.addrs[n as usize]
    }

    pub fn type_id(&self, n: NodeId) -> TypeId {
        TypeId(self.type_and_flags[n as usize] & TYPE_MASK)
    }

    pub fn flags(&self, n: NodeId) -> NodeFlags {
        NodeFlags((self.type_and_flags[n as usize] >> TYPE_BITS) as u8)
    }

    pub fn add_flags(&mut self, n: NodeId, flags: NodeFlags) {
        self.type_and_flags[n as usize] |= (flags.0 as u32) << TYPE_BITS;
    }

    /// Shallow size in bytes (what `sys.getsizeof` reports).
    pub fn size(&self, n: NodeId) -> u64 {
        match self.sizes[n as usize] {
            SIZE_IN_SIDE_TABLE => self.big_sizes.get(&n).copied().unwrap_or(u16::MAX as u64),
            s => s as u64,
        }
    }

    /// The outgoing edges of `n`: (target, label).
    pub fn edges(&self, n: NodeId) -> impl ExactSizeIterator<Item = (NodeId, Label)> + '_ {
        let start = self.offsets[n as usize] as usize;
        let end = self.offsets[n as usize + 1] as usize;
        self.targets[start..end]
            .iter()
            .copied()
            .zip(self.labels[start..end].iter().copied())
    }

    /// The global indices of the outgoing edges of `n` (for [`Graph::edge`]).
    pub fn edge_range(&self, n: NodeId) -> std::ops::Range<u32> {
        self.offsets[n as usize]..self.offsets[n as usize + 1]
    }

    /// Edge `e` (a global index from [`Graph::edge_range`]): (target, label).
    pub fn edge(&self, e: u32) -> (NodeId, Label) {
        (self.targets[e as usize], self.labels[e as usize])
    }

    /// The node edge `e` starts from (a binary search over the offsets).
    pub fn source_of(&self, e: u32) -> NodeId {
        (self.offsets.partition_point(|&o| o <= e) - 1) as NodeId
    }

    /// The outgoing edge targets of `n`, without labels (the fast path for traversals).
    pub fn targets(&self, n: NodeId) -> &[NodeId] {
        let start = self.offsets[n as usize] as usize;
        let end = self.offsets[n as usize + 1] as usize;
        &self.targets[start..end]
    }

    /// The labels of the outgoing edges of `n`, parallel to [`Graph::targets`].
    pub fn labels(&self, n: NodeId) -> &[Label] {
        let start = self.offsets[n as usize] as usize;
        let end = self.offsets[n as usize + 1] as usize;
        &self.labels[start..end]
    }

    /// Every node pointing at `n`, with the label of the edge. Scans the whole edge array, so it
    /// costs O(edges); analyses that need many such queries build a reverse index instead.
    pub fn referrers(&self, n: NodeId) -> Vec<(NodeId, Label)> {
        let mut out = Vec::new();
        for src in 0..self.node_count() as NodeId {
            for (t, l) in self.edges(src) {
                if t == n {
                    out.push((src, l));
                }
            }
        }
        out
    }

    pub fn strings(&self) -> &StringTable {
        &self.strings
    }

    pub fn types(&self) -> &TypeTable {
        &self.types
    }

    /// The name of a node that has one: a synthetic node (`MainThread`, `handle (app.py:12)`),
    /// a module (`app`), a class (`app.Order`), a function (`app.handle`).
    pub fn name(&self, n: NodeId) -> Option<&str> {
        self.names.get(&n).map(|&id| self.strings.get(id))
    }

    /// The string id of [`Graph::name`], for the file writer.
    pub(crate) fn name_id(&self, n: NodeId) -> Option<StringId> {
        self.names.get(&n).copied()
    }

    /// The most entries `n` can hold, when the object declares it and the interpreter keeps it
    /// there: a `deque`'s `maxlen`, an `lru_cache`'s `maxsize` (on the cache and on its dict).
    pub fn declared_bound(&self, n: NodeId) -> Option<u64> {
        self.bounds.get(&n).copied()
    }

    /// Every container that declares a bound, with it.
    pub fn declared_bounds(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.bounds.iter().map(|(&n, &b)| (n, b))
    }

    /// Records the bound `n` declares. The capture learns some bounds from another object
    /// than the container (an `lru_cache` wrapper bounds its dict), after the graph is built.
    pub fn set_declared_bound(&mut self, n: NodeId, bound: u64) {
        if (n as usize) < self.node_count() {
            self.bounds.insert(n, bound);
        }
    }

    /// Where objects were allocated, as `tracemalloc` recorded it when the snapshot was taken
    /// (empty when it did not trace).
    pub fn allocations(&self) -> &Allocations {
        &self.allocations
    }

    /// Where object `n` was allocated, one line per frame, oldest call first; empty when
    /// unknown.
    pub fn allocated_at(&self, n: NodeId) -> Vec<String> {
        self.allocations.render(n)
    }

    /// Records where objects were allocated (the capture asks `tracemalloc` once the graph is
    /// built). Refused, leaving the graph as it was, when it names nodes the graph lacks.
    pub fn set_allocations(&mut self, allocations: Allocations) -> Result<(), crate::Error> {
        allocations
            .check(self.node_count())
            .map_err(crate::Error::InvalidGraph)?;
        let before = self.allocations.heap_bytes();
        self.allocations = allocations;
        let after = self.allocations.heap_bytes();
        crate::own::release(before);
        crate::own::account(after);
        self.accounted = self.accounted - before.min(self.accounted) + after;
        Ok(())
    }

    /// The type name heaplens shows for `n` (`dict`, `myapp.Order`, `(thread)`).
    pub fn type_name(&self, n: NodeId) -> String {
        self.types.display_name(self.type_id(n), &self.strings)
    }

    pub fn describe_label(&self, label: Label) -> String {
        label.describe(&self.strings)
    }

    /// The real objects (every node that is not synthetic) in ascending address order. Built
    /// on first use, in linear time (a radix sort), and kept: 4 bytes per node.
    pub fn address_order(&self) -> &[NodeId] {
        self.by_addr.get_or_init(|| {
            crate::radix::sort_by_address(self.objects(), |n| self.addrs[n as usize])
        })
    }

    /// Asks the processor to load what [`Graph::addr`] and [`Graph::type_id`] read for `n`, for
    /// a pass that visits nodes in an order of its own (a hint: nothing happens elsewhere).
    #[inline]
    pub fn prefetch_node(&self, n: NodeId) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let n = n as usize;
            if n < self.addrs.len() {
                // SAFETY: a prefetch never faults; the pointers are in bounds anyway.
                unsafe {
                    _mm_prefetch(self.addrs.as_ptr().add(n) as *const i8, _MM_HINT_T0);
                    _mm_prefetch(
                        self.type_and_flags.as_ptr().add(n) as *const i8,
                        _MM_HINT_T0,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = n;
    }

    /// The node of the object at `addr`, if the snapshot holds one: a binary search of
    /// [`Graph::address_order`].
    pub fn node_by_addr(&self, addr: u64) -> Option<NodeId> {
        let index = self.address_order();
        index
            .binary_search_by_key(&addr, |&n| self.addrs[n as usize])
            .ok()
            .map(|i| index[i])
    }

    /// Iterates over the real objects (every node that is not synthetic).
    pub fn objects(&self) -> impl Iterator<Item = NodeId> + Clone + '_ {
        (0..self.node_count() as NodeId).filter(|&n| !self.flags(n).contains(NodeFlags::SYNTHETIC))
    }

    /// Heap bytes held by the graph, for the memory-per-object figures of the benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.addrs.capacity() * 8
            + self.type_and_flags.capacity() * 4
            + self.sizes.capacity() * 2
            + self.offsets.capacity() * 4
            + self.targets.capacity() * 4
            + self.labels.capacity() * 4
            + self.big_sizes.capacity() * 16
            + self.names.capacity() * 12
            + self.bounds.capacity() * 16
            + self.allocations.heap_bytes()
            + self.strings.heap_bytes()
            + self.by_addr.get().map_or(0, |v| v.capacity() * 4)
    }
}

pub mod allocations;
mod builder;
pub mod frames;
mod parts;

pub use allocations::{Allocations, AllocationsBuilder};
pub use builder::GraphBuilder;
pub use parts::GraphParts;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::Error;

    /// A small heap: module `app` -> its dict -> ['CACHE'] list -> two Orders; a garbage cycle.
    pub(crate) fn sample() -> Graph {
        let mut b = GraphBuilder::new();
        let t_module = b.intern_type("builtins", "module", "module");
        let t_dict = b.intern_type("builtins", "dict", "dict");
        let t_list = b.intern_type("builtins", "list", "list");
        let t_order = b.intern_type("app", "Order", "Order");
        let module = b.add_node(0x100);
        let dict = b.add_node(0x200);
        let list = b.add_node(0x300);
        let o1 = b.add_node(0x400);
        let o2 = b.add_node(0x500);
        let g1 = b.add_node(0x600);
        let g2 = b.add_node(0x700);
        let gc = NodeFlags::GC_TRACKED;
        b.set_node(module, t_module, 72, gc | NodeFlags::MODULE);
        let dunder_dict = b.strings_mut().intern("__dict__");
        b.push_edge(dict, Label::field(dunder_dict));
        b.end_node();
        b.set_node(dict, t_dict, 232, gc);
        let cache = b.strings_mut().intern("CACHE");
        b.push_edge(list, Label::key(cache));
        b.end_node();
        b.set_node(list, t_list, 72, gc);
        b.push_edge(o1, Label::index(0));
        b.push_edge(o2, Label::index(1));
        b.end_node();
        for o in [o1, o2] {
            b.set_node(o, t_order, 56, gc);
            b.end_node();
        }
        b.set_node(g1, t_list, 64, gc);
        b.push_edge(g2, Label::index(0));
        b.end_node();
        b.set_node(g2, t_list, 64, gc);
        b.push_edge(g1, Label::index(0));
        b.end_node();
        let root = b.add_root_node();
        let app = b.strings_mut().intern("sys.modules['app']");
        b.push_edge(module, Label::root(app));
        b.end_node();
        assert_eq!(root, 7);
        b.finish().unwrap()
    }

    /// A linked list of `n` objects of `size` bytes each (node i refers to i + 1), held by the
    /// root through node 0: deep enough to overflow any recursive walk.
    pub(crate) fn chain(n: u32, size: u64) -> Graph {
        let mut b = GraphBuilder::with_capacity(n as usize + 1, n as usize);
        let t = b.intern_type("builtins", "list", "list");
        for i in 0..n {
            b.add_node(0x1000 + i as u64 * 16);
        }
        for i in 0..n {
            b.set_node(i, t, size, NodeFlags::GC_TRACKED);
            if i + 1 < n {
                b.push_edge(i + 1, Label::index(0));
            }
            b.end_node();
        }
        b.add_root_node();
        b.push_edge(0, Label::root_external());
        b.end_node();
        b.finish().unwrap()
    }

    #[test]
    fn nodes_keep_their_facts() {
        let g = sample();
        assert_eq!(g.node_count(), 8);
        assert_eq!(g.edge_count(), 7);
        assert_eq!(g.addr(2), 0x300);
        assert_eq!(g.type_name(3), "app.Order");
        assert_eq!(g.type_name(2), "list");
        assert_eq!(g.size(1), 232);
        assert!(g
            .flags(0)
            .contains(NodeFlags::MODULE | NodeFlags::GC_TRACKED));
        assert!(g.flags(g.root()).contains(NodeFlags::SYNTHETIC));
        assert_eq!(g.name(g.root()), Some("roots"));
    }

    #[test]
    fn edges_come_back_in_order_with_their_labels() {
        let g = sample();
        let e: Vec<_> = g.edges(2).map(|(t, l)| (t, g.describe_label(l))).collect();
        assert_eq!(e, vec![(3, "[0]".to_string()), (4, "[1]".to_string())]);
        assert_eq!(g.edges(3).len(), 0);
        assert_eq!(g.targets(1), &[2]);
    }

    #[test]
    fn referrers_are_found_by_scanning() {
        let g = sample();
        let r: Vec<_> = g
            .referrers(2)
            .into_iter()
            .map(|(s, l)| (s, g.describe_label(l)))
            .collect();
        assert_eq!(r, vec![(1, "['CACHE']".to_string())]);
    }

    #[test]
    fn nodes_are_found_by_address_and_synthetic_nodes_are_not() {
        let g = sample();
        assert_eq!(g.node_by_addr(0x500), Some(4));
        assert_eq!(g.node_by_addr(0x501), None);
        assert_eq!(g.node_by_addr(0), None, "synthetic nodes have no address");
        assert_eq!(g.objects().count(), 7);
    }

    #[test]
    fn large_sizes_are_kept_exactly() {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("builtins", "bytes", "bytes");
        let sizes = [0u64, 65_534, 65_535, 65_536, 5 << 30];
        for (i, &size) in sizes.iter().enumerate() {
            let n = b.add_node(0x10 * (i as u64 + 1));
            b.set_node(n, t, size, NodeFlags::empty());
            b.end_node();
        }
        let g = b.finish().unwrap();
        for (i, &size) in sizes.iter().enumerate() {
            assert_eq!(g.size(i as NodeId), size);
        }
    }

    #[test]
    fn finishing_with_unprocessed_nodes_is_an_error_not_a_panic() {
        let mut b = GraphBuilder::new();
        b.add_node(0x10);
        b.add_node(0x20);
        b.end_node();
        assert!(matches!(b.finish(), Err(Error::InvalidGraph(_))));
    }

    #[test]
    fn an_edge_to_a_missing_node_is_an_error() {
        let mut b = GraphBuilder::new();
        b.add_node(0x10);
        b.push_edge(5, Label::NONE);
        b.end_node();
        assert!(matches!(b.finish(), Err(Error::InvalidGraph(_))));
    }

    #[test]
    fn a_graph_without_an_explicit_root_gets_an_empty_one() {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("builtins", "int", "int");
        let n = b.add_node(0x10);
        b.set_node(n, t, 28, NodeFlags::empty());
        b.end_node();
        let g = b.finish().unwrap();
        assert_eq!(g.node_count(), 2);
        assert_eq!(g.edges(g.root()).len(), 0);
    }

    #[test]
    fn parts_round_trip_and_bad_parts_are_errors_not_panics() {
        let g = sample();
        let edges = g.edge_count();
        let parts = g.into_parts();
        let again = Graph::from_parts(parts.clone()).unwrap();
        assert_eq!(again.edge_count(), edges);
        assert_eq!(again.type_name(3), "app.Order");
        let mut broken = parts.clone();
        broken.targets[0] = 99;
        assert!(Graph::from_parts(broken).is_err());
        let mut broken = parts.clone();
        broken.offsets[2] = 0;
        assert!(Graph::from_parts(broken).is_err());
        let mut broken = parts.clone();
        broken.type_and_flags[1] = 1000;
        assert!(Graph::from_parts(broken).is_err());
        let mut broken = parts.clone();
        broken.labels[0] = Label::attr(StringId(10_000));
        assert!(Graph::from_parts(broken).is_err());
        let mut broken = parts.clone();
        broken.root = 1000;
        assert!(Graph::from_parts(broken).is_err());
        let mut broken = parts;
        broken.sizes.pop();
        assert!(Graph::from_parts(broken).is_err());
    }

    #[test]
    fn flag_names_are_listed() {
        let f = NodeFlags::GC_TRACKED | NodeFlags::UNREACHABLE;
        assert_eq!(f.names(), vec!["gc_tracked", "unreachable"]);
    }
}
