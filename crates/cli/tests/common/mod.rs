//! What the command-line tests share: a snapshot of a leaky heap, a temporary directory, and
//! running `heaplens` in-process. (Each test file uses some of it.)
#![allow(dead_code)]

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags};
use heaplens_core::label::Label;
use heaplens_core::{reach, snapfile};
use std::path::PathBuf;

/// A heap whose module-level CACHE dict holds `orders` Orders, taken in process `pid`.
pub fn heap(orders: u64, pid: u32) -> Graph {
    let mut b = GraphBuilder::new();
    let module = b.intern_type("builtins", "module", "module");
    let dict = b.intern_type("builtins", "dict", "dict");
    let order = b.intern_type("app", "Order", "Order");
    let m = b.add_node(0x100);
    let md = b.add_node(0x200);
    let cache = b.add_node(0x300);
    let ids: Vec<_> = (0..orders).map(|i| b.add_node(0x10_000 + i * 64)).collect();
    b.set_node(m, module, 72, NodeFlags::GC_TRACKED | NodeFlags::MODULE);
    b.set_name(m, "app");
    let f = b.strings_mut().intern("__dict__");
    b.push_edge(md, Label::field(f));
    b.end_node();
    b.set_node(md, dict, 360, NodeFlags::GC_TRACKED);
    let k = b.strings_mut().intern("CACHE");
    b.push_edge(cache, Label::key(k));
    b.end_node();
    b.set_node(cache, dict, 4096, NodeFlags::GC_TRACKED);
    for (i, &o) in ids.iter().enumerate() {
        let k = b.strings_mut().intern(&format!("k{i}"));
        b.push_edge(o, Label::key(k));
    }
    b.end_node();
    for &o in &ids {
        b.set_node(o, order, 56, NodeFlags::GC_TRACKED);
        b.end_node();
    }
    b.add_root_node();
    let r = b.strings_mut().intern("sys.modules['app']");
    b.push_edge(m, Label::root(r));
    b.end_node();
    b.meta_mut().pid = pid;
    b.meta_mut().python_version = "3.11.7 (main)".into();
    let mut g = b.finish().unwrap();
    reach::mark_unreachable(&mut g);
    g
}

/// A directory of its own for one test, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `name` tells the tests of one file apart (the process id tells test files apart).
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("heaplens-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }

    /// Saves `graph` as `name` and returns its path.
    pub fn save(&self, name: &str, graph: &Graph) -> String {
        let path = self.path(name);
        snapfile::save(graph, std::path::Path::new(&path)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `heaplens ARGS...` in-process: (exit status, standard output, standard error).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("heaplens").chain(args.iter().copied());
    let status = heaplens_cli::run_with(argv, &mut out, &mut err);
    (
        status,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}
