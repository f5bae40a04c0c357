//! Retaining paths: why an object is alive, as the shortest chain of references from a root,
//! every hop labelled, read the way a developer would write it:
//!
//! ```text
//! module app -> .__dict__['CACHE'] -> dict['k'] -> list[3] -> app.Order
//! thread 'worker' -> frame run (app.py:12) -> local 'items' -> list[3] -> app.Order
//! ```
//!
//! One breadth-first search from the roots records, for every object, the edge it was first
//! reached by (4 bytes per node, and 4 for the search's order); any path is then read back in
//! time proportional to its length.
//! Roots are searched in order of how much they explain: modules and thread stacks first, then
//! objects referenced from outside the heap (a C reference says little about a leak), then the
//! entry points of cyclic garbage, so an object gets a module path whenever it has one, even a
//! longer one. Weak references are never followed.
//!
//! [`find_garbage_entries`]: super::dominators::find_garbage_entries

use super::reverse::StrongPredecessors;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::{quote, LabelKind};

const NONE: u32 = u32::MAX;

/// How a path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// An edge of the snapshot's root: a module, a thread stack, an object held from outside.
    Root { edge: u32 },
    /// An entry point of cyclic garbage (no root reaches it).
    Garbage { node: NodeId },
}

/// A chain of references from a root to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub start: Start,
    /// Global indices of the edges after the start, in order.
    pub edges: Vec<u32>,
    /// The object the path leads to.
    pub target: NodeId,
}

impl Path {
    /// The number of references followed.
    pub fn len(&self) -> usize {
        self.edges.len() + matches!(self.start, Start::Root { .. }) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nodes along the path, from the first object after the root to the target.
    pub fn nodes(&self, graph: &Graph) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.edges.len() + 1);
        match self.start {
            Start::Root { edge } => out.push(graph.edge(edge).0),
            Start::Garbage { node } => out.push(node),
        }
        out.extend(self.edges.iter().map(|&e| graph.edge(e).0));
        out
    }

    /// The path as one line (see the module documentation).
    pub fn render(&self, graph: &Graph) -> String {
        render(graph, self)
    }
}

/// The first-reached edge of every object, from one search of the whole graph.
#[derive(Debug)]
pub struct RetainingPaths {
    /// The edge each node was first reached by, or NONE for the root, root-edge targets
    /// (their start edge is in `starts`) and garbage entries.
    via: Vec<u32>,
    /// The nodes reached straight from the root, each with the root edge it was reached by,
    /// sorted by node: a few thousand of millions of nodes (modules, threads, objects held from
    /// outside), so a table by node would be almost all empty (4 bytes a node, kept while the
    /// snapshot's analyses are).
    starts: Vec<(NodeId, u32)>,
    /// Nodes in the order the search reached them (nearest first).
    order: Vec<NodeId>,
}

impl RetainingPaths {
    /// Searches `graph` from its roots (modules and threads, then external references, then the
    /// entry points of cyclic garbage, from [`find_garbage_entries`]).
    pub fn compute(graph: &Graph, garbage_entries: &[NodeId]) -> RetainingPaths {
        let n = graph.node_count();
        let root = graph.root();
        let mut via = crate::hugepages::filled(n, NONE);
        let mut starts: Vec<(NodeId, u32)> = Vec::new();
        let mut seen = crate::reach::NodeSet::new(n);
        let mut order: Vec<NodeId> = crate::hugepages::with_capacity(n);
        seen.insert(root);
        let mut search = |seeds: &mut dyn Iterator<Item = (NodeId, Option<u32>)>,
                          via: &mut Vec<u32>,
                          starts: &mut Vec<(NodeId, u32)>,
                          order: &mut Vec<NodeId>| {
            let first = order.len();
            for (node, root_edge) in seeds {
                if seen.insert(node) {
                    if let Some(e) = root_edge {
                        starts.push((node, e));
                    }
                    order.push(node);
                }
            }
            let mut head = first;
            while head < order.len() {
                let v = order[head];
                head += 1;
                for e in graph.edge_range(v) {
                    let (t, l) = graph.edge(e);
                    if !l.is_weak() && seen.insert(t) {
                        via[t as usize] = e;
                        order.push(t);
                    }
                }
            }
        };
        let root_edges = graph.edge_range(root);
        let is_external = |e: u32| graph.edge(e).1.kind() == LabelKind::External;
        search(
            &mut root_edges
                .clone()
                .filter(|&e| !is_external(e))
                .map(|e| (graph.edge(e).0, Some(e))),
            &mut via,
            &mut starts,
            &mut order,
        );
        search(
            &mut root_edges
                .filter(|&e| is_external(e))
                .map(|e| (graph.edge(e).0, Some(e))),
            &mut via,
            &mut starts,
            &mut order,
        );
        search(
            &mut garbage_entries.iter().map(|&v| (v, None)),
            &mut via,
            &mut starts,
            &mut order,
        );
        starts.sort_unstable();
        starts.shrink_to_fit();
        RetainingPaths { via, starts, order }
    }

    /// Nodes in the order the search reached them: every node comes after the node it was
    /// reached from.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// The edge `v` was first reached by, if any (none for roots and garbage entries).
    pub fn via(&self, v: NodeId) -> Option<u32> {
        let e = self.via[v as usize];
        (e != NONE).then_some(e)
    }

    /// The node `v` was first reached from, if any (none for roots and garbage entries).
    pub fn parent(&self, graph: &Graph, v: NodeId) -> Option<NodeId> {
        let e = self.via[v as usize];
        (e != NONE).then(|| graph.source_of(e))
    }

    /// The shortest path to `target`, or `None` for the root itself and synthetic nodes that no
    /// search reached.
    pub fn path(&self, graph: &Graph, target: NodeId) -> Option<Path> {
        let mut edges = Vec::new();
        let mut v = target;
        let mut guard = 0usize;
        loop {
            let e = self.via[v as usize];
            if e == NONE {
                break;
            }
            edges.push(e);
            v = graph.source_of(e);
            guard += 1;
            if guard > graph.node_count() {
                return None;
            }
        }
        edges.reverse();
        let root_edge = self
            .starts
            .binary_search_by_key(&v, |&(node, _)| node)
            .ok()
            .map(|i| self.starts[i].1);
        let start = match root_edge {
            Some(edge) => Start::Root { edge },
            None if graph.flags(v).contains(NodeFlags::UNREACHABLE) => Start::Garbage { node: v },
            None => return None,
        };
        Some(Path {
            start,
            edges,
            target,
        })
    }

    /// Up to `k` distinct paths to `target`, shortest first: the shortest one, then the shortest
    /// through each other object that refers to `target`.
    pub fn paths(
        &self,
        graph: &Graph,
        preds: &StrongPredecessors,
        target: NodeId,
        k: usize,
    ) -> Vec<Path> {
        let mut out: Vec<Path> = Vec::new();
        if k == 0 {
            return out;
        }
        if let Some(p) = self.path(graph, target) {
            out.push(p);
        }
        let mut candidates: Vec<Path> = Vec::new();
        let mut referrers: Vec<NodeId> = preds.of(target).to_vec();
        referrers.sort_unstable();
        referrers.dedup();
        for r in referrers {
            let Some(mut p) = self.path(graph, r) else {
                continue;
            };
            let Some(e) = graph
                .edge_range(r)
                .find(|&e| graph.edge(e).0 == target && !graph.edge(e).1.is_weak())
            else {
                continue;
            };
            p.edges.push(e);
            p.target = target;
            candidates.push(p);
        }
        candidates.sort_by_key(Path::len);
        for c in candidates {
            if out.len() >= k {
                break;
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out.truncate(k);
        out
    }

    pub fn heap_bytes(&self) -> usize {
        (self.via.capacity() + self.order.capacity()) * 4 + self.starts.capacity() * 8
    }
}

/// How a node is named in a path: `module app`, `class app.Order`, `function app.run`,
/// `frame run (app.py:12)`, or its type (`dict`, `app.Order`).
pub fn display(graph: &Graph, v: NodeId) -> String {
    let flags = graph.flags(v);
    let name = graph.name(v);
    match name {
        Some(name) if flags.contains(NodeFlags::MODULE) => format!("module {name}"),
        Some(name) if flags.contains(NodeFlags::TYPE) => format!("class {name}"),
        Some(name) if flags.contains(NodeFlags::FRAME) && flags.contains(NodeFlags::SYNTHETIC) => {
            format!("frame {name}")
        }
        Some(name) if flags.contains(NodeFlags::THREAD) => format!("thread {}", quote(name)),
        Some(name) if graph.type_name(v) == "function" => format!("function {name}"),
        _ => graph.type_name(v),
    }
}

/// How the root edge `e` reads as the start of a path.
fn start_text(graph: &Graph, e: u32) -> String {
    let (target, label) = graph.edge(e);
    match label.kind() {
        LabelKind::Root if graph.flags(target).contains(NodeFlags::MODULE) => {
            display(graph, target)
        }
        LabelKind::Root => graph.describe_label(label),
        _ => format!("{} (held outside the heap)", display(graph, target)),
    }
}

fn render(graph: &Graph, path: &Path) -> String {
    let (mut parts, shown) = match path.start {
        Start::Root { edge } => (vec![start_text(graph, edge)], graph.edge(edge).0),
        Start::Garbage { node } => (
            vec![format!("{} (unreachable garbage)", display(graph, node))],
            node,
        ),
    };
    render_hops(graph, &mut parts, shown, &path.edges, path.target);
    parts.join(" -> ")
}

/// The hops of `edges`, a path that goes on below an object already shown, down to the object
/// it leads to: `[12] -> function app.handle.<locals>.done.__closure__[0] -> cell.cell_contents
/// -> app.Checkout`. Empty for no edges.
pub fn render_tail(graph: &Graph, edges: &[u32]) -> String {
    let Some(&first) = edges.first() else {
        return String::new();
    };
    let mut parts = Vec::new();
    let target = graph.edge(*edges.last().expect("not empty")).0;
    render_hops(graph, &mut parts, graph.source_of(first), edges, target);
    parts.join(" -> ")
}

impl RetainingPaths {
    /// The edges from `ancestor` down to `v` on `v`'s shortest path, when `ancestor` is on it
    /// at most `max` hops up.
    pub fn edges_below(
        &self,
        graph: &Graph,
        ancestor: NodeId,
        v: NodeId,
        max: usize,
    ) -> Option<Vec<u32>> {
        let mut edges = Vec::new();
        let mut at = v;
        while at != ancestor {
            let e = self.via[at as usize];
            if e == NONE || edges.len() >= max {
                return None;
            }
            edges.push(e);
            at = graph.source_of(e);
        }
        edges.reverse();
        Some(edges)
    }
}

/// Appends the hops of `edges` to `parts`; `shown` is the object the text names last.
fn render_hops(
    graph: &Graph,
    parts: &mut Vec<String>,
    mut shown: NodeId,
    edges: &[u32],
    target: NodeId,
) {
    let mut merged_dict: Option<String> = None;
    let mut target_shown = false;
    for (i, &e) in edges.iter().enumerate() {
        let source = graph.source_of(e);
        let (target, label) = graph.edge(e);
        let prefix = if source == shown {
            String::new()
        } else {
            display(graph, source)
        };
        target_shown = false;
        if label.kind() == LabelKind::Frame {
            parts.push(display(graph, target));
            shown = target;
            target_shown = true;
            continue;
        }
        // `x.__dict__` followed by `['name']` reads as one hop: `.__dict__['name']`.
        let is_dict_hop = label.kind() == LabelKind::Field
            && graph.describe_label(label) == ".__dict__"
            && edges.get(i + 1).is_some_and(|&next| {
                matches!(
                    graph.edge(next).1.kind(),
                    LabelKind::Key | LabelKind::KeyRepr
                )
            });
        if is_dict_hop {
            merged_dict = Some(format!("{prefix}.__dict__"));
            shown = target;
            continue;
        }
        let head = merged_dict.take().unwrap_or(prefix);
        parts.push(format!("{head}{}", graph.describe_label(label)));
        // The target is not named yet: the next hop starts with its type.
        shown = NONE;
    }
    if !edges.is_empty() && !target_shown {
        parts.push(display(graph, target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::dominators::find_garbage_entries;
    use crate::graph::{GraphBuilder, NodeFlags};
    use crate::label::Label;
    use crate::reach;

    struct Heap {
        graph: Graph,
        order_a: NodeId,
        order_b: NodeId,
        garbage: NodeId,
        local_list: NodeId,
    }

    /// module app -> __dict__ -> ['CACHE'] dict -> ['k'] list -> [0] Order, [1] Order;
    /// thread 'worker' -> frame run (app.py:12) -> local 'items' -> list -> [0] the same Order;
    /// a garbage cycle of two lists; an external reference to the second Order.
    fn heap() -> Heap {
        let mut b = GraphBuilder::new();
        let module = b.intern_type("builtins", "module", "module");
        let dict = b.intern_type("builtins", "dict", "dict");
        let list = b.intern_type("builtins", "list", "list");
        let order = b.intern_type("app", "Order", "Order");
        let ids: Vec<NodeId> = (0..9).map(|i| b.add_node(0x1000 + i * 16)).collect();
        let [m, md, cache, lst, oa, ob, g1, g2, llist] = ids[..] else {
            unreachable!()
        };
        let gc = NodeFlags::GC_TRACKED;
        let s = |b: &mut GraphBuilder, t: &str| b.strings_mut().intern(t);
        b.set_node(m, module, 72, gc | NodeFlags::MODULE);
        b.set_name(m, "app");
        let f = s(&mut b, "__dict__");
        b.push_edge(md, Label::field(f));
        b.end_node();
        b.set_node(md, dict, 360, gc);
        let k = s(&mut b, "CACHE");
        b.push_edge(cache, Label::key(k));
        b.end_node();
        b.set_node(cache, dict, 232, gc);
        let k = s(&mut b, "k");
        b.push_edge(lst, Label::key(k));
        b.end_node();
        b.set_node(lst, list, 72, gc);
        b.push_edge(oa, Label::index(0));
        b.push_edge(ob, Label::index(1));
        b.end_node();
        b.set_node(oa, order, 56, gc);
        b.end_node();
        b.set_node(ob, order, 56, gc);
        b.end_node();
        b.set_node(g1, list, 64, gc);
        b.push_edge(g2, Label::index(0));
        b.end_node();
        b.set_node(g2, list, 64, gc);
        b.push_edge(g1, Label::index(0));
        b.end_node();
        b.set_node(llist, list, 64, gc);
        b.push_edge(oa, Label::index(0));
        b.end_node();
        let thread = b.add_synthetic("(thread)", "worker", NodeFlags::THREAD);
        let frame = b.add_synthetic("(frame)", "run (app.py:12)", NodeFlags::FRAME);
        b.push_edge(frame, Label::frame(0));
        b.end_node();
        let items = s(&mut b, "items");
        b.push_edge(llist, Label::local(items));
        b.end_node();
        b.add_root_node();
        let r = s(&mut b, "sys.modules['app']");
        b.push_edge(ob, Label::root_external());
        b.push_edge(m, Label::root(r));
        let r = s(&mut b, "thread 'worker'");
        b.push_edge(thread, Label::root(r));
        b.end_node();
        let mut graph = b.finish().unwrap();
        reach::mark_unreachable(&mut graph);
        Heap {
            graph,
            order_a: oa,
            order_b: ob,
            garbage: g2,
            local_list: llist,
        }
    }

    fn analysed(h: &Heap) -> RetainingPaths {
        RetainingPaths::compute(&h.graph, &find_garbage_entries(&h.graph))
    }

    fn rendered(h: &Heap, target: NodeId) -> String {
        analysed(h).path(&h.graph, target).unwrap().render(&h.graph)
    }

    #[test]
    fn a_module_global_leak_reads_like_the_code_that_holds_it() {
        // order_b is also an external root (one hop), but module paths come first.
        let h = heap();
        assert_eq!(
            rendered(&h, h.order_b),
            "module app -> .__dict__['CACHE'] -> dict['k'] -> list[1] -> app.Order"
        );
        assert_eq!(analysed(&h).path(&h.graph, h.order_b).unwrap().len(), 5);
    }

    #[test]
    fn the_shortest_path_wins_between_modules_and_threads() {
        let h = heap();
        assert_eq!(
            rendered(&h, h.order_a),
            "thread 'worker' -> frame run (app.py:12) -> local 'items' -> list[0] -> app.Order"
        );
    }

    #[test]
    fn a_thread_local_names_its_thread_frame_and_variable() {
        let h = heap();
        assert_eq!(
            rendered(&h, h.local_list),
            "thread 'worker' -> frame run (app.py:12) -> local 'items' -> list"
        );
    }

    #[test]
    fn k_paths_are_distinct_and_shortest_first() {
        let h = heap();
        let p = analysed(&h);
        let preds = StrongPredecessors::build(&h.graph);
        let paths: Vec<String> = p
            .paths(&h.graph, &preds, h.order_a, 3)
            .iter()
            .map(|x| x.render(&h.graph))
            .collect();
        assert_eq!(paths.len(), 2);
        assert_eq!(
            paths[0],
            "thread 'worker' -> frame run (app.py:12) -> local 'items' -> list[0] -> app.Order"
        );
        assert_eq!(
            paths[1],
            "module app -> .__dict__['CACHE'] -> dict['k'] -> list[0] -> app.Order"
        );
    }

    #[test]
    fn garbage_paths_start_at_the_cycle() {
        let h = heap();
        let p = analysed(&h);
        let path = p.path(&h.graph, h.garbage).unwrap();
        assert!(matches!(path.start, Start::Garbage { .. }));
        assert_eq!(
            path.render(&h.graph),
            "list (unreachable garbage) -> [0] -> list"
        );
    }

    #[test]
    fn the_search_order_puts_parents_first() {
        let h = heap();
        let p = analysed(&h);
        let pos: std::collections::HashMap<NodeId, usize> =
            p.order().iter().enumerate().map(|(i, &v)| (v, i)).collect();
        for &v in p.order() {
            if let Some(parent) = p.parent(&h.graph, v) {
                assert!(pos[&parent] < pos[&v]);
            }
        }
    }
}
