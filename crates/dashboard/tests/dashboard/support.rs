//! Heaps with hostile names, histories, a live-like source, and request helpers.

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::history::{History, Sample};
use heaplens_core::label::Label;
use heaplens_dashboard::{
    handle, ActionError, Config, EndpointGrowth, FileSource, ProcessInfo, Request, Response,
    Snapshot, Source,
};
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub const SCRIPT: &str = "<script>alert(1)</script>";
pub const IMG: &str = "\"><img src=x onerror=alert(1)>";
pub const CONTROL: &str = "ctl\u{0}\u{1}\u{7}\n\r\t\u{1b}[31m\u{2028}end";

pub fn long_name() -> String {
    format!("Long{}", "x<".repeat(5000))
}

/// A heap with hostile names: module `app` -> __dict__ -> [<hostile key>] -> list -> `orders`
/// objects of a class called `<script>...`, plus classes named like markup and control chars.
pub fn hostile_graph(orders: u32, pid: u32) -> Graph {
    let mut b = GraphBuilder::new();
    let t_module = b.intern_type("builtins", "module", "module");
    let t_dict = b.intern_type("builtins", "dict", "dict");
    let t_list = b.intern_type("builtins", "list", "list");
    let t_order = b.intern_type("app", SCRIPT, SCRIPT);
    let t_img = b.intern_type(IMG, "Img", "Img");
    let t_ctl = b.intern_type("app", CONTROL, CONTROL);
    let long = long_name();
    let t_long = b.intern_type("app", &long, &long);
    let module = b.add_node(0x100);
    let dict = b.add_node(0x200);
    let list = b.add_node(0x300);
    let extra: Vec<NodeId> = (0..3).map(|i| b.add_node(0x400 + i * 16)).collect();
    let items: Vec<NodeId> = (0..orders)
        .map(|i| b.add_node(0x10_000 + i as u64 * 64))
        .collect();
    let gc = NodeFlags::GC_TRACKED;
    b.set_node(module, t_module, 72, gc | NodeFlags::MODULE);
    b.set_name(module, "app");
    let f = b.strings_mut().intern("__dict__");
    b.push_edge(dict, Label::field(f));
    b.end_node();
    b.set_node(dict, t_dict, 360, gc);
    let k = b.strings_mut().intern(IMG);
    b.push_edge(list, Label::key(k));
    for (i, &e) in extra.iter().enumerate() {
        let k = b.strings_mut().intern(&format!("{SCRIPT}{i}"));
        b.push_edge(e, Label::attr(k));
    }
    b.end_node();
    b.set_node(list, t_list, 72, gc);
    for (i, &o) in items.iter().enumerate() {
        b.push_edge(o, Label::index(i));
    }
    b.end_node();
    for (&e, t) in extra.iter().zip([t_img, t_ctl, t_long]) {
        b.set_node(e, t, 48, gc);
        b.end_node();
    }
    for (i, &o) in items.iter().enumerate() {
        b.set_node(o, t_order, 56 + i as u64, gc);
        b.end_node();
    }
    b.add_root_node();
    let name = b.strings_mut().intern("sys.modules['app']");
    b.push_edge(module, Label::root(name));
    b.end_node();
    b.meta_mut().pid = pid;
    b.meta_mut().python_version = "3.12.1 (main)".to_string();
    b.finish().unwrap()
}

pub fn history(types: usize) -> History {
    let mut h = History::new(100);
    for i in 0..20u64 {
        let s = Sample {
            taken_ms: 1_700_000_000_000 + i * 5_000,
            pid: 7,
            rss: (50 + i) << 20,
            objects: 1000 + i * 10,
            bytes: (1 + i) << 16,
            ..Sample::default()
        };
        let names: Vec<String> = (0..types).map(|t| format!("t{t}")).collect();
        let mut values: Vec<(&str, u64, u64)> = names
            .iter()
            .enumerate()
            .map(|(t, n)| (n.as_str(), 10 + t as u64, 100))
            .collect();
        values.push((SCRIPT, 100 + 10 * i, 5600 + 560 * i));
        values.push(("with\"quote\\and\nnewline", 5, 50));
        h.push_values(s, values);
    }
    h
}

pub fn file_source() -> FileSource {
    FileSource::from_graph(hostile_graph(120, 7), "after.hlsnap")
}

pub fn get(source: &dyn Source, target: &str) -> Response {
    handle(&Config::default(), source, &Request::get(target))
}

pub fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        )
    })
}

pub fn text(r: &Response) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A source that can take snapshots, the way the live one will: each call makes the next graph.
pub struct Live {
    pub snaps: Mutex<Vec<Arc<Snapshot>>>,
    pub history: Mutex<History>,
}

impl Live {
    pub fn new() -> Live {
        Live {
            snaps: Mutex::new(vec![Arc::new(Snapshot::new(hostile_graph(5, 9)))]),
            history: Mutex::new(history(3)),
        }
    }
}

impl Source for Live {
    fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: 9,
            program: SCRIPT.to_string(),
            python_version: "3.12.1".to_string(),
            live: true,
            rss: Some(123 << 20),
            peak_rss: Some(150 << 20),
            can_take_snapshot: true,
            multiprocess: true,
        }
    }
    fn with_history(&self, f: &mut dyn FnMut(&History)) -> bool {
        f(&self.history.lock().unwrap());
        true
    }
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snaps.lock().unwrap().last().cloned()
    }
    fn previous_snapshot(&self) -> Option<Arc<Snapshot>> {
        let s = self.snaps.lock().unwrap();
        s.len().checked_sub(2).map(|i| Arc::clone(&s[i]))
    }
    fn take_snapshot(&self) -> Result<(), ActionError> {
        let mut s = self.snaps.lock().unwrap();
        let n = 5 + 200 * s.len() as u32;
        s.push(Arc::new(Snapshot::new(hostile_graph(n, 9))));
        Ok(())
    }
    fn endpoints(&self) -> Option<Vec<EndpointGrowth>> {
        let e = |name: &str, traced: u64, objects: i64| EndpointGrowth {
            endpoint: name.to_string(),
            requests: traced * 10,
            traced,
            overlapped: traced / 2,
            measured: traced - traced / 2,
            objects,
            bytes: objects * 56,
            objects_per_request: objects as f64 / (traced - traced / 2).max(1) as f64,
            bytes_per_request: 56.0 * objects as f64 / (traced - traced / 2).max(1) as f64,
            types: vec![(
                SCRIPT.to_string(),
                objects as f64 / (traced - traced / 2).max(1) as f64,
            )],
        };
        Some(vec![
            e("GET /health", 100, 0),
            e(&format!("POST /orders/{IMG}"), 10, 500),
            e("GET /zero-traced", 0, 0),
        ])
    }
    fn repr(&self, snapshot: &Snapshot, node: NodeId) -> Option<String> {
        Some(format!("{IMG} {}", snapshot.graph().addr(node)))
    }
}

pub fn post_snapshot(source: &dyn Source) -> Response {
    let req = Request::new("POST", "/api/snapshot").header("X-HeapLens", "1");
    handle(&Config::default(), source, &req)
}
