//! The Chrome DevTools export, read back the way DevTools reads it: by the field layout in
//! `snapshot.meta`, with `to_node` as an offset into `nodes` and names as indexes into `strings`.

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::render::chrome::write_heapsnapshot;
use heaplens_core::strings::StringId;
use heaplens_core::Error;
use serde_json::Value;
use std::collections::HashSet;

const HOSTILE_KEY: &str = "he said \"hi\"\\ \n\r\t</script><!--\u{0}\u{7}\u{2028}\u{2029}é😀";
const HOSTILE_FRAME: &str = "evil\" ]}, (x.py:1)\u{1b}[31m";

/// The nodes of [`sample`], by role.
struct Sample {
    graph: Graph,
    dict: NodeId,
    orders: [NodeId; 2],
}

/// module `app` -> its `__dict__` -> ['CACHE'] list -> [0], [1] two `app.Order`s; a garbage
/// cycle of two lists; a weakref to the first Order; a thread whose frame has a local `x`;
/// a hostile dict key; root edges for the module, the thread and an outside reference.
fn sample() -> Sample {
    let mut b = GraphBuilder::new();
    let t_module = b.intern_type("builtins", "module", "module");
    let t_dict = b.intern_type("builtins", "dict", "dict");
    let t_list = b.intern_type("builtins", "list", "list");
    let t_order = b.intern_type("app", "Order", "Order");
    let t_weakref = b.intern_type("builtins", "weakref", "weakref");
    let t_str = b.intern_type("builtins", "str", "str");
    let module = b.add_node(0x7f00_0010_0100);
    let dict = b.add_node(0x7f00_0010_0200);
    let list = b.add_node(0x7f00_0010_0300);
    let o1 = b.add_node(0x5555_0000_0400);
    let o2 = b.add_node(0x5555_0000_0500);
    let g1 = b.add_node(0x5555_0000_0600);
    let g2 = b.add_node(0x5555_0000_0700);
    let wr = b.add_node(0x5555_0000_0800);
    let key = b.add_node(0x5555_0000_0900);
    let thread = b.add_synthetic("(thread)", "MainThread", NodeFlags::THREAD);
    let frame = b.add_synthetic("(frame)", "handle (app.py:12)", NodeFlags::FRAME);
    let evil_frame = b.add_synthetic("(frame)", HOSTILE_FRAME, NodeFlags::FRAME);
    let root = b.add_root_node();
    let gc = NodeFlags::GC_TRACKED;
    let s = |b: &mut GraphBuilder, text: &str| b.strings_mut().intern(text);

    b.set_node(module, t_module, 72, gc | NodeFlags::MODULE);
    let dunder_dict = s(&mut b, "__dict__");
    b.push_edge(dict, Label::field(dunder_dict));
    b.end_node();
    b.set_node(dict, t_dict, 232, gc);
    let cache = s(&mut b, "CACHE");
    b.push_edge(list, Label::key(cache));
    b.push_edge(key, Label::dict_key_str(cache));
    let hostile = s(&mut b, HOSTILE_KEY);
    b.push_edge(o2, Label::key(hostile));
    b.end_node();
    b.set_node(list, t_list, 72, gc);
    b.push_edge(o1, Label::index(0));
    b.push_edge(o2, Label::index(1));
    b.end_node();
    b.set_node(o1, t_order, 56, gc);
    let attr = s(&mut b, "cache");
    b.push_edge(dict, Label::attr(attr));
    b.end_node();
    b.set_node(o2, t_order, 56, gc);
    b.end_node();
    b.set_node(g1, t_list, 64, gc);
    b.push_edge(g2, Label::index(0));
    b.end_node();
    b.set_node(g2, t_list, 64, gc);
    b.push_edge(g1, Label::index(0));
    b.end_node();
    b.set_node(wr, t_weakref, 80, gc);
    b.push_edge(o1, Label::referent());
    b.push_edge(o2, Label::NONE);
    b.end_node();
    b.set_node(key, t_str, 54, NodeFlags::empty());
    b.end_node();
    b.push_edge(frame, Label::frame(0));
    b.push_edge(evil_frame, Label::frame(1));
    b.end_node();
    let x = s(&mut b, "x");
    b.push_edge(o2, Label::local(x));
    b.push_edge(wr, Label::stack());
    b.end_node();
    b.end_node();
    let app = s(&mut b, "sys.modules['app']");
    b.push_edge(module, Label::root(app));
    let main = s(&mut b, "thread 'MainThread'");
    b.push_edge(thread, Label::root(main));
    b.push_edge(wr, Label::root_external());
    b.end_node();
    assert_eq!(root, 12);
    Sample {
        graph: b.finish().unwrap(),
        dict,
        orders: [o1, o2],
    }
}

fn export(graph: &Graph) -> Vec<u8> {
    let mut out = Vec::new();
    write_heapsnapshot(graph, &mut out).unwrap();
    out
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    kind: String,
    name: String,
    id: u64,
    size: u64,
    edges: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Edge {
    kind: String,
    /// The string for named edges, the number in decimal for `element` and `hidden` ones.
    name: String,
    to: usize,
}

/// A parsed export, read through its own `meta` as DevTools does.
struct Snap {
    json: Value,
    nodes: Vec<Node>,
    /// Per node, its outgoing edges.
    edges: Vec<Vec<Edge>>,
    strings: Vec<String>,
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn parse(bytes: &[u8]) -> Snap {
    let json: Value = serde_json::from_slice(bytes).expect("the export is valid JSON");
    let meta = &json["snapshot"]["meta"];
    let node_fields = names(&meta["node_fields"]);
    let edge_fields = names(&meta["edge_fields"]);
    let node_types = names(&meta["node_types"][0]);
    let edge_types = names(&meta["edge_types"][0]);
    let strings = names(&json["strings"]);
    let raw_nodes = numbers(&json["nodes"]);
    let raw_edges = numbers(&json["edges"]);
    let nf = node_fields.len();
    let ef = edge_fields.len();
    let field = |fields: &[String], f: &str| fields.iter().position(|x| x == f).unwrap();
    let (n_type, n_name, n_id) = (
        field(&node_fields, "type"),
        field(&node_fields, "name"),
        field(&node_fields, "id"),
    );
    let (n_size, n_edges) = (
        field(&node_fields, "self_size"),
        field(&node_fields, "edge_count"),
    );
    let (e_type, e_name, e_to) = (
        field(&edge_fields, "type"),
        field(&edge_fields, "name_or_index"),
        field(&edge_fields, "to_node"),
    );
    let nodes: Vec<Node> = raw_nodes
        .chunks(nf)
        .map(|n| Node {
            kind: node_types[n[n_type] as usize].clone(),
            name: strings[n[n_name] as usize].clone(),
            id: n[n_id],
            size: n[n_size],
            edges: n[n_edges],
        })
        .collect();
    let mut edges = Vec::new();
    let mut rows = raw_edges.chunks(ef);
    for node in &nodes {
        let mine: Vec<Edge> = (0..node.edges)
            .map(|_| {
                let e = rows.next().expect("edge counts match the edges array");
                let kind = edge_types[e[e_type] as usize].clone();
                let name = if kind == "element" || kind == "hidden" {
                    e[e_name].to_string()
                } else {
                    strings[e[e_name] as usize].clone()
                };
                assert_eq!(
                    e[e_to] % nf as u64,
                    0,
                    "to_node is a multiple of the node fields"
                );
                Edge {
                    kind,
                    name,
                    to: e[e_to] as usize / nf,
                }
            })
            .collect();
        edges.push(mine);
    }
    assert!(rows.next().is_none(), "no edge is left over");
    Snap {
        json,
        nodes,
        edges,
        strings,
    }
}

impl Snap {
    /// (retainer, edge) pairs of node `i`, found by scanning every edge.
    fn retainers(&self, i: usize) -> Vec<(usize, Edge)> {
        let mut out = Vec::new();
        for (src, edges) in self.edges.iter().enumerate() {
            for e in edges.iter().filter(|e| e.to == i) {
                out.push((src, e.clone()));
            }
        }
        out
    }

    fn named(&self, name: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].name == name)
            .collect()
    }

    fn one(&self, name: &str) -> usize {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "one node named {name}");
        found[0]
    }
}

#[test]
fn the_meta_declares_v8s_field_layout() {
    let snap = parse(&export(&sample().graph));
    let meta = &snap.json["snapshot"]["meta"];
    assert_eq!(
        names(&meta["node_fields"]),
        [
            "type",
            "name",
            "id",
            "self_size",
            "edge_count",
            "trace_node_id",
            "detachedness"
        ]
    );
    assert_eq!(
        names(&meta["edge_fields"]),
        ["type", "name_or_index", "to_node"]
    );
    assert_eq!(
        names(&meta["edge_types"][0]),
        ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
    );
    let node_types = names(&meta["node_types"][0]);
    assert_eq!(node_types[3], "object");
    assert_eq!(node_types[9], "synthetic");
    for key in [
        "trace_function_info_fields",
        "trace_node_fields",
        "sample_fields",
        "location_fields",
    ] {
        assert!(meta[key].is_array(), "meta has {key}");
    }
    for key in [
        "nodes",
        "edges",
        "trace_function_infos",
        "trace_tree",
        "samples",
        "locations",
        "strings",
    ] {
        assert!(snap.json[key].is_array(), "the snapshot has {key}");
    }
    assert_eq!(snap.json["snapshot"]["trace_function_count"], 0);
}

#[test]
fn counts_and_offsets_are_consistent() {
    let s = sample();
    let bytes = export(&s.graph);
    let snap = parse(&bytes);
    let header = &snap.json["snapshot"];
    let node_count = header["node_count"].as_u64().unwrap() as usize;
    let edge_count = header["edge_count"].as_u64().unwrap() as usize;
    // Three groups under the root: modules, threads, external references.
    assert_eq!(node_count, s.graph.node_count() + 3);
    assert_eq!(edge_count, s.graph.edge_count() + 3);
    assert_eq!(snap.json["nodes"].as_array().unwrap().len(), node_count * 7);
    assert_eq!(snap.json["edges"].as_array().unwrap().len(), edge_count * 3);
    let sum: u64 = snap.nodes.iter().map(|n| n.edges).sum();
    assert_eq!(sum as usize, edge_count);
    for edges in &snap.edges {
        for e in edges {
            assert!(e.to < node_count, "to_node within the nodes array");
        }
    }
    // Every string index in range, for node and edge names alike.
    let raw_nodes = numbers(&snap.json["nodes"]);
    assert!(raw_nodes
        .chunks(7)
        .all(|n| (n[1] as usize) < snap.strings.len()));
    let raw_edges = numbers(&snap.json["edges"]);
    let named = raw_edges.chunks(3).filter(|e| e[0] != 1 && e[0] != 4);
    assert!(named.clone().all(|e| (e[1] as usize) < snap.strings.len()));
    assert!(named.count() > 0);
    // The loader reads every number into a Uint32Array.
    assert!(raw_nodes
        .iter()
        .chain(&raw_edges)
        .all(|&v| v <= u32::MAX as u64));
}

#[test]
fn node_zero_is_the_root_and_groups_the_roots() {
    let snap = parse(&export(&sample().graph));
    let root = &snap.nodes[0];
    assert_eq!(root.kind, "synthetic");
    assert_eq!(root.name, "(root)");
    let groups: Vec<&str> = snap.edges[0]
        .iter()
        .map(|e| {
            assert_eq!(e.kind, "element");
            assert_eq!(snap.nodes[e.to].kind, "synthetic");
            snap.nodes[e.to].name.as_str()
        })
        .collect();
    assert_eq!(groups, ["(modules)", "(threads)", "(external references)"]);
    let modules = snap.one("(modules)");
    let module = snap.one("module");
    assert_eq!(
        snap.edges[modules],
        [Edge {
            kind: "property".into(),
            name: "sys.modules['app']".into(),
            to: module
        }]
    );
    let external = snap.one("(external references)");
    assert_eq!(snap.nodes[snap.edges[external][0].to].name, "weakref");
    assert_eq!(snap.edges[external][0].kind, "internal");
    assert_eq!(snap.edges[external][0].name, "<external>");
}

#[test]
fn objects_are_named_by_python_type_and_synthetic_nodes_by_what_they_are() {
    let s = sample();
    let snap = parse(&export(&s.graph));
    let objects: HashSet<&str> = snap
        .nodes
        .iter()
        .filter(|n| n.kind == "object")
        .map(|n| n.name.as_str())
        .collect();
    let expected = ["module", "dict", "list", "app.Order", "weakref", "str"];
    assert_eq!(objects, expected.into_iter().collect());
    assert_eq!(snap.named("app.Order").len(), 2);
    assert!(snap
        .named("app.Order")
        .iter()
        .all(|&i| snap.nodes[i].size == 56));
    let thread = snap.one("(thread) MainThread");
    let frame = snap.one("(frame) handle (app.py:12)");
    assert_eq!(snap.nodes[thread].kind, "synthetic");
    assert_eq!(snap.nodes[frame].size, 0);
    assert_eq!(snap.edges[thread][0].kind, "element");
    assert_eq!(snap.edges[thread][0].name, "0");
    assert_eq!(snap.edges[thread][0].to, frame);
    assert_eq!(
        snap.one("dict"),
        s.dict as usize + 4,
        "nodes before the root shift past it"
    );
}

#[test]
fn an_order_is_retained_by_the_list_through_element_edges() {
    let s = sample();
    let snap = parse(&export(&s.graph));
    let list_of = |i: usize| {
        snap.retainers(i)
            .into_iter()
            .filter(|(src, _)| snap.nodes[*src].name == "list")
            .map(|(_, e)| (e.kind, e.name))
            .collect::<Vec<_>>()
    };
    let o1 = s.orders[0] as usize + 4;
    let o2 = s.orders[1] as usize + 4;
    assert_eq!(list_of(o1), [("element".to_string(), "0".to_string())]);
    assert_eq!(list_of(o2), [("element".to_string(), "1".to_string())]);
    // The list is retained by the module's dict under its key, the dict by the module.
    let list = snap
        .retainers(o1)
        .iter()
        .find(|(src, _)| snap.nodes[*src].name == "list")
        .unwrap()
        .0;
    let by_dict = snap.retainers(list);
    assert_eq!(by_dict.len(), 1);
    assert_eq!(snap.nodes[by_dict[0].0].name, "dict");
    assert_eq!(
        (by_dict[0].1.kind.as_str(), by_dict[0].1.name.as_str()),
        ("property", "CACHE")
    );
    let dict = by_dict[0].0;
    let kinds: HashSet<(String, String)> = snap
        .retainers(dict)
        .into_iter()
        .map(|(src, e)| {
            (
                snap.nodes[src].name.clone(),
                format!("{} {}", e.kind, e.name),
            )
        })
        .collect();
    let expected = [
        ("module".to_string(), "internal __dict__".to_string()),
        ("app.Order".to_string(), "property cache".to_string()),
    ];
    assert_eq!(kinds, expected.into_iter().collect());
}

#[test]
fn labels_map_to_devtools_edge_types() {
    let s = sample();
    let snap = parse(&export(&s.graph));
    let o1 = s.orders[0] as usize + 4;
    let o2 = s.orders[1] as usize + 4;
    let weakref = snap.one("weakref");
    assert_eq!(
        snap.edges[weakref],
        [
            Edge {
                kind: "weak".into(),
                name: "<weakref>".into(),
                to: o1
            },
            Edge {
                kind: "hidden".into(),
                name: "1".into(),
                to: o2
            },
        ]
    );
    let frame = snap.one("(frame) handle (app.py:12)");
    assert_eq!(
        snap.edges[frame],
        [
            Edge {
                kind: "context".into(),
                name: "x".into(),
                to: o2
            },
            Edge {
                kind: "internal".into(),
                name: "<stack>".into(),
                to: weakref
            },
        ]
    );
    let dict = snap.one("dict");
    let key = snap.one("str");
    assert!(snap.edges[dict].contains(&Edge {
        kind: "internal".into(),
        name: "CACHE".into(),
        to: key
    }));
}

#[test]
fn unmarked_garbage_stays_unreachable_and_marked_garbage_hangs_from_its_own_group() {
    let s = sample();
    let snap = parse(&export(&s.graph));
    let lists = snap.named("list");
    let unreferenced: Vec<usize> = lists
        .iter()
        .copied()
        .filter(|&l| {
            snap.retainers(l)
                .iter()
                .all(|(src, _)| snap.nodes[*src].name == "list")
        })
        .collect();
    assert_eq!(
        unreferenced.len(),
        2,
        "the cycle's lists only retain each other"
    );

    let mut g = s.graph;
    assert_eq!(heaplens_core::reach::mark_unreachable(&mut g), 2);
    let snap = parse(&export(&g));
    let header = &snap.json["snapshot"];
    assert_eq!(
        header["node_count"].as_u64(),
        Some(g.node_count() as u64 + 4)
    );
    assert_eq!(
        header["edge_count"].as_u64(),
        Some(g.edge_count() as u64 + 4 + 2)
    );
    let root_children: Vec<&str> = snap.edges[0]
        .iter()
        .map(|e| snap.nodes[e.to].name.as_str())
        .collect();
    assert_eq!(
        root_children,
        [
            "(modules)",
            "(threads)",
            "(external references)",
            "(cyclic garbage)"
        ]
    );
    let garbage = snap.one("(cyclic garbage)");
    let held: Vec<(String, String, String)> = snap.edges[garbage]
        .iter()
        .map(|e| {
            (
                e.kind.clone(),
                e.name.clone(),
                snap.nodes[e.to].name.clone(),
            )
        })
        .collect();
    let list = ("element".to_string(), "list".to_string());
    assert_eq!(
        held,
        [
            (list.0.clone(), "0".to_string(), list.1.clone()),
            (list.0, "1".to_string(), list.1)
        ]
    );
    // Each list is still retained by the other, too.
    for e in &snap.edges[garbage] {
        let by: Vec<&str> = snap
            .retainers(e.to)
            .iter()
            .map(|(src, _)| snap.nodes[*src].name.as_str())
            .collect();
        assert_eq!(by.len(), 2);
        assert!(by.contains(&"list") && by.contains(&"(cyclic garbage)"));
    }
}

#[test]
fn hostile_strings_survive_a_json_round_trip_exactly() {
    let s = sample();
    let bytes = export(&s.graph);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(!text.contains("</script>"), "nothing can close a <script>");
    assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
    let snap = parse(&bytes);
    let dict = snap.one("dict");
    let o2 = s.orders[1] as usize + 4;
    assert!(snap.edges[dict].contains(&Edge {
        kind: "property".into(),
        name: HOSTILE_KEY.into(),
        to: o2
    }));
    snap.one(&format!("(frame) {HOSTILE_FRAME}"));
    // Every string of the graph's table comes back verbatim, at its own id.
    let table = s.graph.strings();
    for (id, text) in table.iter() {
        assert_eq!(snap.strings[id.0 as usize], text);
    }
}

#[test]
fn hostile_type_names_and_unknown_string_ids_stay_in_range() {
    let mut b = GraphBuilder::new();
    let t = b.intern_type("evil\"\\mod", "T</script>", "T</script>\u{2028}");
    let n = b.add_node(0x1000);
    b.set_node(n, t, 16, NodeFlags::empty());
    b.push_edge(n, Label::attr(StringId(1_000_000)));
    b.end_node();
    let g = b.finish().unwrap();
    let snap = parse(&export(&g));
    let node = snap.one("evil\"\\mod.T</script>\u{2028}");
    assert_eq!(snap.edges[node][0].kind, "property");
    assert_eq!(snap.edges[node][0].name, "?");
}

#[test]
fn unindexed_key_texts_name_their_edges() {
    let mut b = GraphBuilder::new();
    let t_dict = b.intern_type("builtins", "dict", "dict");
    let t_int = b.intern_type("builtins", "int", "int");
    let d = b.add_node(0x1000);
    let k = b.add_node(0x2000);
    let key = b.strings_mut().add_unindexed("140234567890123");
    let other = b.strings_mut().add_unindexed("order-7");
    b.set_node(d, t_dict, 64, NodeFlags::GC_TRACKED);
    b.push_edge(k, Label::dict_key(key));
    b.push_edge(k, Label::key_repr(key));
    b.push_edge(k, Label::key(other));
    b.end_node();
    b.set_node(k, t_int, 32, NodeFlags::empty());
    b.end_node();
    let g = b.finish().unwrap();
    let snap = parse(&export(&g));
    let (dict, int) = (snap.one("dict"), snap.one("int"));
    let edges: Vec<(&str, &str)> = snap.edges[dict]
        .iter()
        .map(|e| (e.kind.as_str(), e.name.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("internal", "140234567890123"),
            ("property", "140234567890123"),
            ("property", "order-7")
        ]
    );
    assert!(snap.edges[dict].iter().all(|e| e.to == int));
}

/// Objects at `addrs`, sizes `1..`: the size tags each object so two exports can be matched.
fn objects_at(addrs: &[u64]) -> Graph {
    let mut b = GraphBuilder::new();
    let t = b.intern_type("builtins", "object", "object");
    let nodes: Vec<NodeId> = addrs.iter().map(|&a| b.add_node(a)).collect();
    for (i, &n) in nodes.iter().enumerate() {
        b.set_node(n, t, i as u64 + 1, NodeFlags::empty());
        b.end_node();
    }
    let root = b.add_root_node();
    let name = b.strings_mut().intern("sys.modules['x']");
    for &n in &nodes {
        b.push_edge(n, Label::root(name));
    }
    b.end_node();
    assert_eq!(root as usize, addrs.len());
    b.finish().unwrap()
}

/// Object ids by size tag.
fn ids_by_tag(g: &Graph) -> std::collections::HashMap<u64, u64> {
    parse(&export(g))
        .nodes
        .into_iter()
        .filter(|n| n.kind == "object")
        .map(|n| (n.size, n.id))
        .collect()
}

fn assert_unique_and_objects_odd(g: &Graph) {
    let snap = parse(&export(g));
    let ids: HashSet<u64> = snap.nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), snap.nodes.len(), "ids are unique");
    for n in &snap.nodes {
        assert_eq!(n.id % 2, u64::from(n.kind == "object"), "{n:?}");
        assert!(n.id > 0 && n.id <= u32::MAX as u64);
    }
}

#[test]
fn ids_are_unique_odd_for_objects_and_stable_across_exports() {
    let s = sample();
    assert_unique_and_objects_odd(&s.graph);
    assert_eq!(ids_by_tag(&s.graph), ids_by_tag(&sample().graph));

    // The same objects in another order, with new ones around them, keep their ids.
    let before = [
        0x5555_0000_0010,
        0x5555_0000_0020,
        0x7f12_3456_7890,
        0x7f12_3456_78a0,
    ];
    let mut after = vec![0x5555_0000_0030, 0x7f12_3456_78b0, 0x7fff_0000_0000, 0x1000];
    after.extend(before.iter().rev());
    let (a, b) = (objects_at(&before), objects_at(&after));
    let (ids_a, ids_b) = (ids_by_tag(&a), ids_by_tag(&b));
    for (i, _) in before.iter().enumerate() {
        let tag_a = i as u64 + 1;
        let tag_b = (after.len() - i) as u64;
        assert_eq!(ids_a[&tag_a], ids_b[&tag_b], "object {i} keeps its id");
    }
    assert_unique_and_objects_odd(&b);
}

#[test]
fn addresses_that_share_an_id_slot_still_get_distinct_ids() {
    // 16 GiB apart: the same word of chunks that want the same slot.
    let base = 0x5555_0000_0040u64;
    let addrs = [base, base + (16 << 30), base + (32 << 30), base + 8];
    assert_unique_and_objects_odd(&objects_at(&addrs));
    // Unaligned addresses (not from CPython, but a graph may hold them) stay distinct too.
    assert_unique_and_objects_odd(&objects_at(&[0x101, 0x102, 0x103, 0x108]));
}

#[test]
fn a_heap_spread_over_too_many_chunks_is_numbered_by_position() {
    let addrs: Vec<u64> = (0..20_000u64).map(|i| 0x1_0000_0000 + (i << 20)).collect();
    assert_unique_and_objects_odd(&objects_at(&addrs));
}

#[test]
fn an_empty_graph_is_a_root_alone() {
    let g = GraphBuilder::new().finish().unwrap();
    let snap = parse(&export(&g));
    assert_eq!(snap.nodes.len(), 1);
    assert_eq!(snap.nodes[0].edges, 0);
    assert_eq!(snap.json["edges"].as_array().unwrap().len(), 0);
}

#[test]
fn write_errors_are_io_errors_not_panics() {
    struct Full(usize);
    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() {
                return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "full"));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let g = sample().graph;
    let size = export(&g).len();
    for room in [0, 100, size - 1] {
        match write_heapsnapshot(&g, Full(room)) {
            Err(Error::Io { path, source }) => {
                assert_eq!(path, "<stream>");
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
    assert!(write_heapsnapshot(&g, Full(size)).is_ok());
}
