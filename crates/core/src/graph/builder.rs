//! Building a graph in node order (the capture layer's and the tests' way in).

use super::{Graph, NodeFlags, NodeId, SnapshotMeta, SIZE_IN_SIDE_TABLE, TYPE_BITS, TYPE_MASK};
use crate::error::{Error, Result};
use crate::label::Label;
use crate::strings::{StringId, StringTable};
use crate::types::{TypeFlags, TypeId, TypeInfo, TypeTable};
use hashbrown::HashMap;
use std::sync::OnceLock;

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
                bounds: HashMap::new(),
                allocations: Default::default(),
                accounted: 0,
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

    pub fn types(&self) -> &TypeTable {
        &self.graph.types
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
        crate::hugepages::advise(&g.addrs);
        crate::hugepages::advise(&g.type_and_flags);
        crate::hugepages::advise(&g.sizes);
        crate::hugepages::advise(&g.offsets);
        crate::hugepages::advise(&g.targets);
        crate::hugepages::advise(&g.labels);
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
        let n = self.add_node(0);
        self.set_synthetic(n, pseudo, name, flags);
        n
    }

    /// Makes node `n` a synthetic node of pseudo-type `pseudo` called `name`.
    pub fn set_synthetic(&mut self, n: NodeId, pseudo: &'static str, name: &str, flags: NodeFlags) {
        let t = self.synthetic_type(pseudo);
        self.set_node(n, t, 0, flags | NodeFlags::SYNTHETIC);
        let name = self.graph.strings.intern(name);
        self.graph.names.insert(n, name);
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

    /// References pushed so far.
    pub fn edge_count(&self) -> usize {
        self.graph.targets.len()
    }

    /// Points reference `edge` (a position among those pushed so far) at `target`: for a walk
    /// that numbers some referents only after it has pushed the reference.
    pub fn set_target(&mut self, edge: usize, target: NodeId) {
        self.graph.targets[edge] = target;
    }

    /// The arrays as built so far, unchecked: for a walk done in parts, whose node ids are not
    /// yet the graph's ([`Graph::from_parts`] checks the graph assembled from them).
    pub fn into_parts_unchecked(self) -> super::GraphParts {
        self.graph.into_parts()
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
        self.graph.strings.shrink_to_fit();
        Ok(Graph::accounted(self.graph))
    }
}
