//! Which objects and references a picture shows: objgraph's breadth-first walk from the objects
//! asked about, run on a snapshot's graph instead of `gc.get_referrers()`.
//!
//! The rules are objgraph's, so its users get the pictures they expect: nodes up to `max_depth`
//! references away are drawn, those at `max_depth` are not expanded; each node shows at most
//! `too_many` neighbours and the rest as one "N more" box; a neighbour the filter rejects is left
//! out (and does not count against `too_many`); walking backwards stops at modules in
//! `sys.modules`, which otherwise pull in everything. Weak references are never followed: a
//! picture explains what keeps objects alive.
//!
//! One improvement on objgraph, whose `too_many` keeps whichever referrers `gc.get_referrers()`
//! lists first: walking backwards, the referrer on the object's shortest retaining path and the
//! roots come first, so the cut never hides why the object is alive (a module's globals are
//! referred to by all its functions, and by the module itself).
//!
//! Thread stacks are drawn as the roots they are: walking backwards from an object held in a
//! local variable reaches `frame run (app.py:12)` and then `thread 'worker'`. The synthetic root
//! of the graph is never drawn.
//!
//! The filter is the caller's (a Python predicate on live objects): it is asked once per level of
//! the walk with every new candidate of that level, so a caller that has to look objects up does
//! so in batches.

use crate::analysis::paths::RetainingPaths;
use crate::analysis::reverse::StrongPredecessors;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::{quote, Label, LabelKind};
use hashbrown::{HashMap, HashSet};

/// Which way a walk goes.
#[derive(Clone, Copy, Debug)]
pub enum Direction<'a> {
    /// To the objects the starts refer to (`show_refs`).
    Forwards,
    /// To the objects that refer to the starts (`show_backrefs`), retaining referrers first.
    Backwards {
        predecessors: &'a StrongPredecessors,
        paths: &'a RetainingPaths,
    },
}

/// The limits of a walk.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub max_depth: usize,
    pub too_many: usize,
    /// Nodes never drawn nor walked through (objgraph's `extra_ignore`, and the caller's own
    /// frames and temporaries).
    pub ignore: HashSet<NodeId>,
}

/// The walk's result: nodes in the order they were reached, starts first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Neighbourhood {
    pub nodes: Vec<NodeId>,
    /// How many references from a start each node is.
    pub depth: Vec<usize>,
    /// `(from, to, label, count)`: the node at index `from` refers to the one at index `to`,
    /// `count` times; the first reference's label stands for all of them.
    pub edges: Vec<(usize, usize, Label, usize)>,
    /// `(node index, count)`: references `too_many` left out at that node.
    pub elided: Vec<(usize, usize)>,
}

/// A node's distinct neighbours: each with the first reference's label and their count.
type Neighbours = Vec<(NodeId, Label, usize)>;

/// Walks from `starts` (see the module documentation). `keep` is asked about the candidates of
/// each level that are not drawn yet (frames and threads included) and returns, in the same
/// order, whether each may be drawn.
pub fn neighbourhood(
    graph: &Graph,
    direction: Direction<'_>,
    starts: &[NodeId],
    options: &Options,
    mut keep: impl FnMut(&[NodeId]) -> Vec<bool>,
) -> Neighbourhood {
    let mut out = Neighbourhood::default();
    let mut index: HashMap<NodeId, usize> = HashMap::new();
    let mut decided: HashMap<NodeId, bool> = HashMap::new();
    let mut frontier: Vec<usize> = Vec::new();
    for &s in starts {
        if !index.contains_key(&s) && (s as usize) < graph.node_count() {
            index.insert(s, out.nodes.len());
            frontier.push(out.nodes.len());
            out.nodes.push(s);
            out.depth.push(0);
        }
    }
    let root_modules: HashSet<NodeId> = graph
        .edges(graph.root())
        .filter(|(t, l)| l.kind() == LabelKind::Root && graph.flags(*t).contains(NodeFlags::MODULE))
        .map(|(t, _)| t)
        .collect();
    while !frontier.is_empty() {
        // Each expanded node's distinct neighbours, with the first label and the count.
        let mut expansions: Vec<(usize, Neighbours)> = Vec::new();
        for &i in &frontier {
            let v = out.nodes[i];
            let backwards = matches!(direction, Direction::Backwards { .. });
            let culled = backwards && root_modules.contains(&v);
            if out.depth[i] >= options.max_depth || culled {
                continue;
            }
            let mut seen: HashMap<NodeId, usize> = HashMap::new();
            let mut list: Neighbours = Vec::new();
            let mut add = |w: NodeId, label: Label| {
                if !drawable(graph, w, options) {
                    return;
                }
                match seen.get(&w) {
                    Some(&at) => list[at].2 += 1,
                    None => {
                        seen.insert(w, list.len());
                        list.push((w, label, 1));
                    }
                }
            };
            match direction {
                Direction::Backwards {
                    predecessors,
                    paths,
                } => {
                    for &p in predecessors.of(v) {
                        if let Some(label) = first_label(graph, p, v) {
                            add(p, label);
                        }
                    }
                    let retainer = paths.parent(graph, v);
                    let rank = |w: NodeId| {
                        if Some(w) == retainer {
                            0
                        } else if root_modules.contains(&w)
                            || graph
                                .flags(w)
                                .intersects(NodeFlags::THREAD | NodeFlags::FRAME)
                        {
                            1
                        } else {
                            2
                        }
                    };
                    list.sort_by_key(|&(w, _, _)| rank(w));
                }
                Direction::Forwards => {
                    for (w, label) in graph.edges(v) {
                        if !label.is_weak() {
                            add(w, label);
                        }
                    }
                }
            }
            expansions.push((i, list));
        }
        let mut ask: Vec<NodeId> = Vec::new();
        for (_, list) in &expansions {
            for &(w, _, _) in list {
                if !index.contains_key(&w) && !decided.contains_key(&w) {
                    decided.insert(w, false);
                    ask.push(w);
                }
            }
        }
        if !ask.is_empty() {
            let answers = keep(&ask);
            for (k, &w) in ask.iter().enumerate() {
                decided.insert(w, answers.get(k).copied().unwrap_or(false));
            }
        }
        let mut next = Vec::new();
        for (i, list) in expansions {
            let mut shown = 0;
            let mut skipped = 0;
            for (w, label, count) in list {
                let known = index.get(&w).copied();
                let allowed = known.is_some() || decided.get(&w).copied().unwrap_or(false);
                if !allowed {
                    continue;
                }
                if shown >= options.too_many {
                    skipped += 1;
                    continue;
                }
                shown += 1;
                let j = known.unwrap_or_else(|| {
                    let j = out.nodes.len();
                    index.insert(w, j);
                    out.nodes.push(w);
                    out.depth.push(out.depth[i] + 1);
                    next.push(j);
                    j
                });
                let (from, to) = match direction {
                    Direction::Backwards { .. } => (j, i),
                    Direction::Forwards => (i, j),
                };
                out.edges.push((from, to, label, count));
            }
            if skipped > 0 {
                out.elided.push((i, skipped));
            }
        }
        frontier = next;
    }
    out
}

/// Whether `w` may appear in a picture at all: not the graph's synthetic root, not ignored.
fn drawable(graph: &Graph, w: NodeId, options: &Options) -> bool {
    w != graph.root() && !options.ignore.contains(&w)
}

/// The first strong label of an edge `from -> to`.
fn first_label(graph: &Graph, from: NodeId, to: NodeId) -> Option<Label> {
    graph
        .edges(from)
        .find(|&(t, l)| t == to && !l.is_weak())
        .map(|(_, l)| l)
}

/// How a reference reads in a picture: attributes in the words of Dozer's referrer pages
/// (`via its .items attribute`); the value of a dict entry as it is written in Python and in
/// the retaining paths (`['cache']`, `[42]`: "key" alone would name the key object, which is
/// drawn as `<key 'cache'>`); positions and frame slots as written (`[3]`, `local 'x'`).
/// `count` is how many references the edge stands for.
pub fn edge_label(graph: &Graph, label: Label, count: usize) -> String {
    let strings = graph.strings();
    let name = || label.name().map(|id| strings.get(id)).unwrap_or("?");
    let text = match label.kind() {
        LabelKind::None => String::new(),
        LabelKind::Key | LabelKind::KeyRepr => graph.describe_label(label),
        LabelKind::Attr => format!("via its .{} attribute", name()),
        LabelKind::Field => format!("via its .{}", name()),
        LabelKind::DictKey | LabelKind::DictKeyStr | LabelKind::Member => {
            graph.describe_label(label)
        }
        LabelKind::Root => String::new(),
        _ => graph.describe_label(label),
    };
    match count {
        0 | 1 => text,
        n if text.is_empty() => format!("{n} references"),
        n => format!("{text} (+{} more)", n - 1),
    }
}

/// The title and text of a node drawn from the snapshot alone (a thread, a frame, or an object
/// that is no longer alive): `("thread", "'worker'")`, `("frame", "run (app.py:12)")`,
/// `("module", "app")`, `("dict", "")`. The frame's file is shortened to its last component.
pub fn node_text(graph: &Graph, v: NodeId) -> (String, String) {
    let flags = graph.flags(v);
    let name = graph.name(v);
    match name {
        Some(name) if flags.contains(NodeFlags::THREAD) => ("thread".into(), quote(name)),
        Some(name) if flags.contains(NodeFlags::FRAME | NodeFlags::SYNTHETIC) => {
            ("frame".into(), short_frame_name(name))
        }
        Some(name) => (graph.type_name(v), name.to_string()),
        None => (graph.type_name(v), String::new()),
    }
}

/// `run (/srv/app/app.py:12)` as `run (app.py:12)`.
fn short_frame_name(name: &str) -> String {
    match name.rsplit_once(" (") {
        Some((func, place)) => {
            let file = place.rsplit(['/', '\\']).next().unwrap_or(place);
            format!("{func} ({file}")
        }
        None => name.to_string(),
    }
}

/// Whether `v` is a root as pictures mark them: a module in `sys.modules`, a thread stack or one
/// of its frames.
pub fn is_root(graph: &Graph, v: NodeId) -> bool {
    let flags = graph.flags(v);
    if flags.contains(NodeFlags::SYNTHETIC) {
        return flags.intersects(NodeFlags::THREAD | NodeFlags::FRAME);
    }
    flags.contains(NodeFlags::MODULE)
        && graph
            .edges(graph.root())
            .any(|(t, l)| t == v && l.kind() == LabelKind::Root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;

    struct Heap {
        graph: Graph,
        module: NodeId,
        cache: NodeId,
        orders: Vec<NodeId>,
        frame: NodeId,
        thread: NodeId,
    }

    /// module app -> .__dict__ -> dict -> ['CACHE'] dict -> ['k0'..'k11'] Order;
    /// Order 0 -> .items list -> [0] Order 0 (a cycle), and a weakref to Order 1;
    /// thread 'worker' -> frame run (/srv/app.py:12) -> local 'mine' -> Order 0.
    fn heap() -> Heap {
        let mut b = GraphBuilder::new();
        let t_module = b.intern_type("builtins", "module", "module");
        let t_dict = b.intern_type("builtins", "dict", "dict");
        let t_list = b.intern_type("builtins", "list", "list");
        let t_order = b.intern_type("app", "Order", "Order");
        let t_ref = b.intern_type("builtins", "weakref", "weakref");
        let module = b.add_node(0x100);
        let mdict = b.add_node(0x200);
        let cache = b.add_node(0x300);
        let orders: Vec<NodeId> = (0..12).map(|i| b.add_node(0x1000 + i * 0x10)).collect();
        let items = b.add_node(0x400);
        let weak = b.add_node(0x500);
        let gc = NodeFlags::GC_TRACKED;
        b.set_node(module, t_module, 72, gc | NodeFlags::MODULE);
        b.set_name(module, "app");
        let f = b.strings_mut().intern("__dict__");
        b.push_edge(mdict, Label::field(f));
        b.end_node();
        b.set_node(mdict, t_dict, 360, gc);
        let k = b.strings_mut().intern("CACHE");
        b.push_edge(cache, Label::key(k));
        b.end_node();
        b.set_node(cache, t_dict, 640, gc);
        for (i, &o) in orders.iter().enumerate() {
            let k = b.strings_mut().intern(&format!("k{i}"));
            b.push_edge(o, Label::key(k));
        }
        b.end_node();
        for (i, &o) in orders.iter().enumerate() {
            b.set_node(o, t_order, 56, gc);
            if i == 0 {
                let a = b.strings_mut().intern("items");
                b.push_edge(items, Label::attr(a));
            }
            b.end_node();
        }
        b.set_node(items, t_list, 64, gc);
        b.push_edge(orders[0], Label::index(0));
        b.push_edge(orders[0], Label::index(1));
        b.end_node();
        b.set_node(weak, t_ref, 64, gc);
        b.push_edge(orders[1], Label::referent());
        b.end_node();
        let thread = b.add_synthetic("(thread)", "worker", NodeFlags::THREAD);
        let frame = b.add_synthetic("(frame)", "run (/srv/app.py:12)", NodeFlags::FRAME);
        b.push_edge(frame, Label::frame(0));
        b.end_node();
        let mine = b.strings_mut().intern("mine");
        b.push_edge(orders[0], Label::local(mine));
        b.end_node();
        b.add_root_node();
        let r = b.strings_mut().intern("sys.modules['app']");
        b.push_edge(module, Label::root(r));
        let r = b.strings_mut().intern("thread 'worker'");
        b.push_edge(thread, Label::root(r));
        b.push_edge(weak, Label::root_external());
        b.end_node();
        Heap {
            graph: b.finish().unwrap(),
            module,
            cache,
            orders,
            frame,
            thread,
        }
    }

    fn options(max_depth: usize, too_many: usize) -> Options {
        Options {
            max_depth,
            too_many,
            ignore: HashSet::new(),
        }
    }

    fn analysis(g: &Graph) -> (StrongPredecessors, RetainingPaths) {
        let garbage = crate::analysis::dominators::find_garbage_entries(g);
        (
            StrongPredecessors::build(g),
            RetainingPaths::compute(g, &garbage),
        )
    }

    fn back<'a>(predecessors: &'a StrongPredecessors, paths: &'a RetainingPaths) -> Direction<'a> {
        Direction::Backwards {
            predecessors,
            paths,
        }
    }

    fn keep_all(ids: &[NodeId]) -> Vec<bool> {
        vec![true; ids.len()]
    }

    fn labels(h: &Heap, n: &Neighbourhood) -> Vec<(NodeId, NodeId, String)> {
        n.edges
            .iter()
            .map(|&(f, t, l, c)| (n.nodes[f], n.nodes[t], edge_label(&h.graph, l, c)))
            .collect()
    }

    #[test]
    fn backwards_reaches_the_module_and_the_thread_and_stops_there() {
        let h = heap();
        let (preds, paths) = analysis(&h.graph);
        let n = neighbourhood(
            &h.graph,
            back(&preds, &paths),
            &[h.orders[0]],
            &options(10, 10),
            keep_all,
        );
        assert_eq!(n.nodes[0], h.orders[0]);
        assert!(n.nodes.contains(&h.module));
        assert!(n.nodes.contains(&h.frame));
        assert!(n.nodes.contains(&h.thread));
        assert!(
            !n.nodes.contains(&h.graph.root()),
            "the synthetic root is never drawn"
        );
        let edges = labels(&h, &n);
        assert!(edges.contains(&(h.cache, h.orders[0], "['k0']".into())));
        assert!(edges.contains(&(h.frame, h.orders[0], "local 'mine'".into())));
        assert!(edges.contains(&(h.thread, h.frame, "frame #0".into())));
        // The list refers to Order 0 twice: one edge stands for both.
        assert!(edges
            .iter()
            .any(|(_, t, l)| *t == h.orders[0] && l == "[0] (+1 more)"));
        assert_eq!(
            n.depth[n.nodes.iter().position(|&v| v == h.module).unwrap()],
            3
        );
    }

    #[test]
    fn max_depth_bounds_the_walk_and_nodes_at_the_limit_are_not_expanded() {
        let h = heap();
        let (preds, paths) = analysis(&h.graph);
        let n = neighbourhood(
            &h.graph,
            back(&preds, &paths),
            &[h.orders[0]],
            &options(1, 10),
            keep_all,
        );
        assert!(n.depth.iter().all(|&d| d <= 1));
        assert!(n.nodes.contains(&h.cache));
        assert!(!n.nodes.contains(&h.module));
        let n = neighbourhood(
            &h.graph,
            back(&preds, &paths),
            &[h.orders[0]],
            &options(0, 10),
            keep_all,
        );
        assert_eq!(n.nodes, vec![h.orders[0]]);
        assert!(n.edges.is_empty());
    }

    #[test]
    fn too_many_keeps_that_many_neighbours_and_counts_the_rest() {
        let h = heap();
        let n = neighbourhood(
            &h.graph,
            Direction::Forwards,
            &[h.cache],
            &options(1, 5),
            keep_all,
        );
        assert_eq!(n.edges.len(), 5);
        assert_eq!(n.elided, vec![(0, 7)]);
    }

    #[test]
    fn walking_backwards_the_retaining_referrer_survives_too_many() {
        let h = heap();
        let (preds, paths) = analysis(&h.graph);
        // Order 0 is referred to by the cache, its own list and a frame's local; the frame's
        // stack is how the search from the roots reached it first.
        let n = neighbourhood(
            &h.graph,
            back(&preds, &paths),
            &[h.orders[0]],
            &options(1, 1),
            keep_all,
        );
        assert_eq!(n.nodes, vec![h.orders[0], h.frame]);
        assert_eq!(n.elided, vec![(0, 2)]);
    }

    #[test]
    fn the_filter_removes_candidates_before_too_many_counts() {
        let h = heap();
        let odd: HashSet<NodeId> = h.orders.iter().copied().skip(1).step_by(2).collect();
        let mut asked = Vec::new();
        let n = neighbourhood(
            &h.graph,
            Direction::Forwards,
            &[h.cache],
            &options(1, 5),
            |ids| {
                asked.push(ids.len());
                ids.iter().map(|v| odd.contains(v)).collect()
            },
        );
        assert_eq!(
            asked,
            vec![12],
            "one question per level, every candidate at once"
        );
        assert!(n.nodes[1..].iter().all(|v| odd.contains(v)));
        assert_eq!(n.edges.len(), 5);
        assert_eq!(n.elided, vec![(0, 1)]);
    }

    #[test]
    fn ignored_nodes_are_neither_drawn_nor_walked_through() {
        let h = heap();
        let (preds, paths) = analysis(&h.graph);
        let mut o = options(10, 20);
        o.ignore.insert(h.cache);
        o.ignore.insert(h.frame);
        let n = neighbourhood(&h.graph, back(&preds, &paths), &[h.orders[0]], &o, keep_all);
        assert!(!n.nodes.contains(&h.cache));
        assert!(!n.nodes.contains(&h.module));
        assert!(!n.nodes.contains(&h.thread));
    }

    #[test]
    fn forwards_follows_strong_references_only() {
        let h = heap();
        let weak = h.graph.node_by_addr(0x500).unwrap();
        let n = neighbourhood(
            &h.graph,
            Direction::Forwards,
            &[weak],
            &options(3, 10),
            keep_all,
        );
        assert_eq!(n.nodes, vec![weak]);
        let n = neighbourhood(
            &h.graph,
            Direction::Forwards,
            &[h.module],
            &options(2, 10),
            keep_all,
        );
        assert_eq!(n.nodes.len(), 3);
        assert_eq!(
            labels(&h, &n)[..2],
            [
                (h.module, n.nodes[1], "via its .__dict__".to_string()),
                (n.nodes[1], h.cache, "['CACHE']".to_string())
            ]
        );
    }

    #[test]
    fn synthetic_and_dead_nodes_get_their_text_from_the_snapshot() {
        let h = heap();
        assert_eq!(
            node_text(&h.graph, h.thread),
            ("thread".into(), "'worker'".into())
        );
        assert_eq!(
            node_text(&h.graph, h.frame),
            ("frame".into(), "run (app.py:12)".into())
        );
        assert_eq!(
            node_text(&h.graph, h.module),
            ("module".into(), "app".into())
        );
        assert_eq!(node_text(&h.graph, h.cache), ("dict".into(), String::new()));
        assert!(is_root(&h.graph, h.module));
        assert!(is_root(&h.graph, h.frame));
        assert!(!is_root(&h.graph, h.cache));
    }

    #[test]
    fn labels_read_like_dozer_and_stay_short() {
        let h = heap();
        let g = &h.graph;
        let s = |t: &str| g.strings().find(t).unwrap();
        assert_eq!(
            edge_label(g, Label::attr(s("items")), 1),
            "via its .items attribute"
        );
        assert_eq!(edge_label(g, Label::key(s("CACHE")), 1), "['CACHE']");
        assert_eq!(edge_label(g, Label::index(3), 1), "[3]");
        assert_eq!(edge_label(g, Label::local(s("mine")), 1), "local 'mine'");
        assert_eq!(edge_label(g, Label::NONE, 1), "");
        assert_eq!(edge_label(g, Label::NONE, 4), "4 references");
    }
}
