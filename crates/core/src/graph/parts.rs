//! A graph's arrays as plain data, for the snapshot file format, and the checks that make a
//! graph from untrusted arrays safe to use.

use super::{Graph, NodeId, SnapshotMeta, SIZE_IN_SIDE_TABLE, TYPE_MASK};
use crate::error::{Error, Result};
use crate::label::Label;
use crate::strings::{StringId, StringTable};
use crate::types::TypeTable;
use hashbrown::HashMap;
use std::sync::OnceLock;

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
    /// Declared bounds of containers ([`Graph::declared_bound`]).
    pub bounds: Vec<(NodeId, u64)>,
    /// Where objects were allocated ([`Graph::allocations`]).
    pub allocations: super::Allocations,
    pub strings: StringTable,
    pub types: TypeTable,
    pub root: NodeId,
    pub meta: SnapshotMeta,
}

impl Graph {
    /// The graph's arrays, for serialisation.
    pub fn into_parts(mut self) -> GraphParts {
        use std::mem::take;
        // The arrays leave the graph: its memory is no longer heaplens' to count.
        crate::own::release(std::mem::replace(&mut self.accounted, 0));
        let mut big_sizes: Vec<(NodeId, u64)> = take(&mut self.big_sizes).into_iter().collect();
        big_sizes.sort_unstable();
        let mut names: Vec<(NodeId, StringId)> = take(&mut self.names).into_iter().collect();
        names.sort_unstable();
        let mut bounds: Vec<(NodeId, u64)> = take(&mut self.bounds).into_iter().collect();
        bounds.sort_unstable();
        GraphParts {
            addrs: take(&mut self.addrs),
            type_and_flags: take(&mut self.type_and_flags),
            sizes: take(&mut self.sizes),
            big_sizes,
            offsets: take(&mut self.offsets),
            targets: take(&mut self.targets),
            labels: take(&mut self.labels),
            names,
            bounds,
            allocations: take(&mut self.allocations),
            strings: take(&mut self.strings),
            types: take(&mut self.types),
            root: self.root,
            meta: take(&mut self.meta),
        }
    }

    /// A graph from its arrays, after checking every invariant the accessors rely on.
    pub fn from_parts(p: GraphParts) -> Result<Graph> {
        Self::from_checked_parts(p, true)
    }

    /// A graph from arrays heaplens assembled itself (a walk done in parts): the checks that
    /// read every node and reference are left to debug builds; the arrays' lengths and
    /// everything keyed by node are still checked.
    pub fn from_own_parts(p: GraphParts) -> Result<Graph> {
        Self::from_checked_parts(p, cfg!(debug_assertions))
    }

    fn from_checked_parts(p: GraphParts, every_element: bool) -> Result<Graph> {
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
        if every_element && p.offsets.windows(2).any(|w| w[0] > w[1]) {
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
        if let Some(t) = p
            .targets
            .iter()
            .take(if every_element { usize::MAX } else { 0 })
            .find(|&&t| t as usize >= n)
        {
            return bad(format!("an edge points at node {t} of {n}"));
        }
        let n_types = p.types.len() as u32;
        if let Some(i) = p
            .type_and_flags
            .iter()
            .take(if every_element { usize::MAX } else { 0 })
            .position(|&tf| tf & TYPE_MASK >= n_types)
        {
            return bad(format!("node {i} has an unknown type"));
        }
        let strings = &p.strings;
        for (_, t) in p.types.iter() {
            if [t.module, t.name, t.qualname]
                .iter()
                .any(|&s| !strings.contains(s))
            {
                return bad("a type names an unknown string".into());
            }
        }
        if let Some(l) = p
            .labels
            .iter()
            .take(if every_element { usize::MAX } else { 0 })
            .find(|l| l.name().is_some_and(|s| !strings.contains(s)))
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
            if node as usize >= n || !strings.contains(name) {
                return bad(format!("a name for node {node} of {n}"));
            }
            names.insert(node, name);
        }
        let mut bounds = HashMap::with_capacity(p.bounds.len());
        for &(node, bound) in &p.bounds {
            if node as usize >= n {
                return bad(format!("a bound for node {node} of {n}"));
            }
            bounds.insert(node, bound);
        }
        if p.root as usize >= n {
            return bad(format!("the root is node {} of {n}", p.root));
        }
        p.allocations.check(n).map_err(Error::InvalidGraph)?;
        Ok(Graph::accounted(Graph {
            addrs: p.addrs,
            type_and_flags: p.type_and_flags,
            sizes: p.sizes,
            big_sizes,
            offsets: p.offsets,
            targets: p.targets,
            labels: p.labels,
            names,
            bounds,
            allocations: p.allocations,
            strings: p.strings,
            types: p.types,
            root: p.root,
            meta: p.meta,
            by_addr: OnceLock::new(),
            accounted: 0,
        }))
    }
}
