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

use crate::error::{Error, Result};
use crate::label::Label;
use crate::strings::{StringId, StringTable};
use crate::types::{TypeFlags, TypeId, TypeInfo, TypeTable};
use hashbrown::HashMap;
use std::sync::OnceLock;

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
    strings: StringTable,
    types: TypeTable,
    root: NodeId,
    meta: SnapshotMeta,
    by_addr: OnceLock<Vec<NodeId>>,
}

impl Graph {
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

    /// The type name heaplens shows for `n` (`dict`, `myapp.Order`, `(thread)`).
    pub fn type_name(&self, n: NodeId) -> String {
        self.types.display_name(self.type_id(n), &self.strings)
    }

    pub fn describe_label(&self, label: Label) -> String {
        label.describe(&self.strings)
    }

    /// The node of the object at `addr`, if the snapshot holds one. The first call builds an
    /// address index (4 bytes per node); later calls are a binary search.
    pub fn node_by_addr(&self, addr: u64) -> Option<NodeId> {
        let index = self.by_addr.get_or_init(|| {
            let mut order: Vec<NodeId> = (0..self.node_count() as NodeId)
                .filter(|&n| !self.flags(n).contains(NodeFlags::SYNTHETIC))
                .collect();
            order.sort_unstable_by_key(|&n| self.addrs[n as usize]);
            order
        });
        index
            .binary_search_by_key(&addr, |&n| self.addrs[n as usize])
            .ok()
            .map(|i| index[i])
    }

    /// Iterates over the real objects (every node that is not synthetic).
    pub fn objects(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.node_count() as NodeId).filter(|&n| !self.flags(n).contains(NodeFlags::SYNTHETIC))
    }

    /// The graph's arrays, for serialisation.
    pub fn into_parts(self) -> GraphParts {
        let mut big_sizes: Vec<(NodeId, u64)> = self.big_sizes.into_iter().collect();
        big_sizes.sort_unstable();
        let mut names: Vec<(NodeId, StringId)> = self.names.into_iter().collect();
        names.sort_unstable();
        GraphParts {
            addrs: self.addrs,
            type_and_flags: self.type_and_flags,
            sizes: self.sizes,
            big_sizes,
            offsets: self.offsets,
            targets: self.targets,
            labels: self.labels,
            names,
            strings: self.strings,
            types: self.types,
            root: self.root,
            meta: self.meta,
        }
    }

    /// A graph from its arrays, after checking every invariant the accessors rely on.
    pub fn from_parts(p: GraphParts) -> Result<Graph> {
        let bad = |why: String| Err(Error::InvalidGraph(why));
        let n = p.addrs.len();
        if n >= NodeId::MAX as usize {
            return bad(format!("{n} nodes is more than a graph holds"));
        }
        if p.type_and_flags.len() != n || p.sizes.len() != n {
            return bad(format!(
                "{n} addresses but {} types and {} sizes",
                p.type_and_flags.len(),
                p.sizes.len()
            ));
        }
        if p.offsets.len() != n + 1 || p.offsets.first() != Some(&0) {
            return bad(format!("{} offsets for {n} nodes", p.offsets.len()));
        }
        if p.offsets.windows(2).any(|w| w[0] > w[1]) {
            return bad("edge offsets decrease".into());
        }
        let edges = p.targets.len();
        if p.labels.len() != edges || p.offsets[n] as usize != edges {
            return bad(format!(
                "{edges} targets, {} labels, offsets end at {}",
                p.labels.len(),
                p.offsets[n]
            ));
        }
        if let Some(t) = p.targets.iter().find(|&&t| t as usize >= n) {
            return bad(format!("an edge points at node {t} of {n}"));
        }
        let n_types = p.types.len() as u32;
        if let Some(i) = p
            .type_and_flags
            .iter()
            .position(|&tf| tf & TYPE_MASK >= n_types)
        {
            return bad(format!("node {i} has an unknown type"));
        }
        let n_strings = p.strings.len() as u32;
        for (_, t) in p.types.iter() {
            if [t.module, t.name, t.qualname]
                .iter()
                .any(|s| s.0 >= n_strings)
            {
                return bad("a type names an unknown string".into());
            }
        }
        if let Some(l) = p
            .labels
            .iter()
            .find(|l| l.name().is_some_and(|s| s.0 >= n_strings))
        {
            return bad(format!("label {:#x} names an unknown string", l.0));
        }
        let mut big_sizes = HashMap::with_capacity(p.big_sizes.len());
        for &(node, size) in &p.big_sizes {
            if node as usize >= n || p.sizes[node as usize] != SIZE_IN_SIDE_TABLE {
                return bad(format!("a large size for node {node}, which has none"));
            }
            big_sizes.insert(node, size);
        }
        let mut names = HashMap::with_capacity(p.names.len());
        for &(node, name) in &p.names {
            if node as usize >= n || name.0 >= n_strings {
                return bad(format!("a name for node {node} of {n}"));
            }
            names.insert(node, name);
        }
        if p.root as usize >= n {
            return bad(format!("the root is node {} of {n}", p.root));
        }
        Ok(Graph {
            addrs: p.addrs,
            type_and_flags: p.type_and_flags,
            sizes: p.sizes,
            big_sizes,
            offsets: p.offsets,
            targets: p.targets,
            labels: p.labels,
            names,
            strings: p.strings,
            types: p.types,
            root: p.root,
            meta: p.meta,
            by_addr: OnceLock::new(),
        })
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
            + self.strings.heap_bytes()
            + self.by_addr.get().map_or(0, |v| v.capacity() * 4)
    }
}

/// The arrays of a [`Graph`], as plain data: what the snapshot file format reads and writes.
/// [`Graph::from_parts`] checks every invariant, so parts read from an untrusted file cannot
/// produce a graph that panics later.
#[derive(Clone, Debug, Default)]
pub struct GraphParts {
    /// Object address per node (0 for synthetic nodes).
    pub addrs: Vec<u64>,
    /// Per node: type id in the low 24 bits, [`NodeFlags`] in the high 8.
    pub type_and_flags: Vec<u32>,
    /// Per node: shallow size, or `u16::MAX` when the size is in `big_sizes`.
    pub sizes: Vec<u16>,
    /// Sizes of 65535 bytes and more.
    pub big_sizes: Vec<(NodeId, u64)>,
    /// CSR offsets: `nodes + 1` entries, from 0, non-decreasing, ending at the edge count.
    pub offsets: Vec<u32>,
    pub targets: Vec<NodeId>,
    pub labels: Vec<Label>,
    /// Names of synthetic nodes.
    pub names: Vec<(NodeId, StringId)>,
    pub strings: StringTable,
    pub types: TypeTable,
    pub root: NodeId,
    pub meta: SnapshotMeta,
}

/// Builds a [`Graph`] in node order. See the module documentation.
#[derive(Debug)]
pub struct GraphBuilder {
    graph: Graph,
    overflow: bool,
    synthetic_types: HashMap<&'static str, TypeId>,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// A builder with room for `nodes` nodes and `edges` edges before it reallocates.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        GraphBuilder {
            graph: Graph {
                addrs: Vec::with_capacity(nodes),
                type_and_flags: Vec::with_capacity(nodes),
                sizes: Vec::with_capacity(nodes),
                big_sizes: HashMap::new(),
                offsets: {
                    let mut v = Vec::with_capacity(nodes + 1);
                    v.push(0);
                    v
                },
                targets: Vec::with_capacity(edges),
                labels: Vec::with_capacity(edges),
                names: HashMap::new(),
                strings: StringTable::new(),
                types: TypeTable::new(),
                root: NodeId::MAX,
                meta: SnapshotMeta::default(),
                by_addr: OnceLock::new(),
            },
            overflow: false,
            synthetic_types: HashMap::new(),
        }
    }

    pub fn strings_mut(&mut self) -> &mut StringTable {
        &mut self.graph.strings
    }

    pub fn strings(&self) -> &StringTable {
        &self.graph.strings
    }

    /// Both name tables at once, for code that interns type names while adding types.
    pub fn tables_mut(&mut self) -> (&mut StringTable, &mut TypeTable) {
        (&mut self.graph.strings, &mut self.graph.types)
    }

    pub fn meta_mut(&mut self) -> &mut SnapshotMeta {
        &mut self.graph.meta
    }

    pub fn push_type(&mut self, info: TypeInfo) -> Result<TypeId> {
        self.graph.types.push(info)
    }

    /// Convenience for tests and tools: interns the names and adds a type.
    pub fn intern_type(&mut self, module: &str, name: &str, qualname: &str) -> TypeId {
        let info = TypeInfo {
            module: self.graph.strings.intern(module),
            name: self.graph.strings.intern(name),
            qualname: self.graph.strings.intern(qualname),
            flags: TypeFlags::default(),
        };
        self.push_type(info).expect("a handful of test types fits")
    }

    pub fn node_count(&self) -> usize {
        self.graph.addrs.len()
    }

    /// Makes room for `nodes` more nodes and `edges` more edges, if memory allows (a failed
    /// reservation is not an error: the arrays then grow as needed).
    pub fn reserve(&mut self, nodes: usize, edges: usize) {
        let g = &mut self.graph;
        let _ = g.addrs.try_reserve(nodes);
        let _ = g.type_and_flags.try_reserve(nodes);
        let _ = g.sizes.try_reserve(nodes);
        let _ = g.offsets.try_reserve(nodes);
        let _ = g.targets.try_reserve(edges);
        let _ = g.labels.try_reserve(edges);
    }

    /// Nodes whose edges have been written (`end_node` calls so far).
    pub fn processed(&self) -> usize {
        self.graph.offsets.len() - 1
    }

    /// Adds a node for the object at `addr`; its type, size and flags come later with
    /// [`GraphBuilder::set_node`]. Returns its id, or an error past `u32::MAX - 1` nodes.
    #[inline]
    pub fn add_node(&mut self, addr: u64) -> NodeId {
        let id = self.graph.addrs.len();
        if id >= NodeId::MAX as usize {
            self.overflow = true;
            return 0;
        }
        self.graph.addrs.push(addr);
        self.graph.type_and_flags.push(0);
        self.graph.sizes.push(0);
        id as NodeId
    }

    #[inline]
    pub fn set_node(&mut self, n: NodeId, type_id: TypeId, size: u64, flags: NodeFlags) {
        let i = n as usize;
        self.graph.type_and_flags[i] = (type_id.0 & TYPE_MASK) | ((flags.0 as u32) << TYPE_BITS);
        if size >= SIZE_IN_SIDE_TABLE as u64 {
            self.graph.sizes[i] = SIZE_IN_SIDE_TABLE;
            self.graph.big_sizes.insert(n, size);
        } else {
            self.graph.sizes[i] = size as u16;
        }
    }

    pub fn add_flags(&mut self, n: NodeId, flags: NodeFlags) {
        self.graph.add_flags(n, flags);
    }

    pub fn flags(&self, n: NodeId) -> NodeFlags {
        self.graph.flags(n)
    }

    pub fn addr(&self, n: NodeId) -> u64 {
        self.graph.addrs[n as usize]
    }

    fn synthetic_type(&mut self, pseudo: &'static str) -> TypeId {
        if let Some(&t) = self.synthetic_types.get(pseudo) {
            return t;
        }
        let name = self.graph.strings.intern(pseudo);
        let t = self
            .graph
            .types
            .push(TypeInfo {
                module: StringId::EMPTY,
                name,
                qualname: name,
                flags: TypeFlags::SYNTHETIC,
            })
            .unwrap_or(TypeId(0));
        self.synthetic_types.insert(pseudo, t);
        t
    }

    /// Adds a synthetic node of pseudo-type `pseudo` (`(thread)`, `(frame)`) called `name`.
    pub fn add_synthetic(&mut self, pseudo: &'static str, name: &str, flags: NodeFlags) -> NodeId {
        let t = self.synthetic_type(pseudo);
        let n = self.add_node(0);
        self.set_node(n, t, 0, flags | NodeFlags::SYNTHETIC);
        let name = self.graph.strings.intern(name);
        self.graph.names.insert(n, name);
        n
    }

    /// Names node `n` (a module, class or function, so paths can say which one).
    pub fn set_name(&mut self, n: NodeId, name: &str) {
        let name = self.graph.strings.intern(name);
        self.graph.names.insert(n, name);
    }

    /// Adds the root node. Its edges, pushed when it is processed, name the roots.
    pub fn add_root_node(&mut self) -> NodeId {
        let n = self.add_synthetic("(root)", "roots", NodeFlags::empty());
        self.graph.root = n;
        n
    }

    /// Adds an edge from the node being processed (the first one not yet ended) to `target`.
    #[inline]
    pub fn push_edge(&mut self, target: NodeId, label: Label) {
        self.graph.targets.push(target);
        self.graph.labels.push(label);
    }

    /// Ends the edges of the node being processed.
    #[inline]
    pub fn end_node(&mut self) {
        let len = self.graph.targets.len();
        if len >= u32::MAX as usize {
            self.overflow = true;
        }
        self.graph.offsets.push(len as u32);
    }

    /// The finished graph. Fails if a limit was passed or if some node was never processed.
    pub fn finish(mut self) -> Result<Graph> {
        if self.overflow {
            return Err(Error::TooLarge {
                what: "objects or references",
                limit: u32::MAX as u64 - 1,
            });
        }
        let n = self.graph.addrs.len();
        if self.graph.offsets.len() != n + 1 {
            return Err(Error::InvalidGraph(format!(
                "{} nodes but {} processed",
                n,
                self.graph.offsets.len() - 1
            )));
        }
        if let Some(&bad) = self.graph.targets.iter().find(|&&t| t as usize >= n) {
            return Err(Error::InvalidGraph(format!("edge to node {bad} of {n}")));
        }
        if self.graph.root == NodeId::MAX {
            self.add_root_node();
            self.end_node();
        }
        self.graph.addrs.shrink_to_fit();
        self.graph.type_and_flags.shrink_to_fit();
        self.graph.sizes.shrink_to_fit();
        self.graph.offsets.shrink_to_fit();
        self.graph.targets.shrink_to_fit();
        self.graph.labels.shrink_to_fit();
        Ok(self.graph)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
