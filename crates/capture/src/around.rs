//! A small snapshot: the objects within a few references of given ones, with the same labelled
//! edges as a whole-heap snapshot.
//!
//! A picture of what an object refers to (`show_refs`) only needs the objects a few references
//! away, and walking those costs microseconds where a snapshot of a big heap costs seconds. The
//! walk starts from objects the caller holds (so they are alive), and every object it reaches is
//! reached through a live reference, so nothing here can meet a freed object.
//!
//! What such a graph cannot say: who refers to its objects from outside it (so no retaining
//! paths, no garbage, no reference-count balance). Modules in `sys.modules` that it contains are
//! still marked as roots, so pictures colour them as they do from a whole snapshot.
//!
//! Like every walk, it runs no Python code and allocates no Python object.

use crate::abi::Abi;
use crate::dicts;
use crate::edges::{self, EdgeSink};
use crate::env::Env;
use crate::labels::Cx;
use crate::raw::{self, read, Obj};
use crate::registry::{object_name, Registry, Tables, TypeFilter};
use crate::sizeof::shallow_size;
use hashbrown::HashMap;
use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::strings::StringId;

/// The graph under construction, and the references of the object being walked.
struct Sink {
    builder: GraphBuilder,
    found: Vec<(Obj, Label)>,
}

impl EdgeSink for Sink {
    const LABELS: bool = true;

    fn edge(&mut self, target: Obj, label: Label) {
        self.found.push((target, label));
    }

    fn edge_uncounted(&mut self, target: Obj, label: Label) {
        self.found.push((target, label));
    }

    fn intern(&mut self, text: &str) -> StringId {
        self.builder.strings_mut().intern(text)
    }

    fn add_unindexed(&mut self, write: impl FnOnce(&mut String) -> bool) -> Option<StringId> {
        heaplens_core::label::add_unindexed_name(self.builder.strings_mut(), write)
    }
}

/// The graph of `starts` and every object at most `max_depth` references from them, or `None`
/// when that is more than `max_objects` objects (the caller should take a whole snapshot then).
/// Node `i` of the result is `starts[i]` for distinct starts; nodes are in breadth-first order.
///
/// # Safety
/// The GIL must be held, every start must be a live object, and no Python code may run during
/// the call.
pub unsafe fn snapshot_around<A: Abi>(
    env: &'static Env,
    starts: &[Obj],
    max_depth: usize,
    max_objects: usize,
) -> Option<Graph> {
    let l = env.layout;
    let mut sink = Sink {
        builder: GraphBuilder::new(),
        found: Vec::new(),
    };
    let mut cx = Cx::<A>::labelled(env);
    cx.intern_names(&mut sink);
    let mut registry = Registry::new(TypeFilter::Nothing);
    let mut ids: HashMap<usize, NodeId> = HashMap::new();
    let mut depth: Vec<usize> = Vec::new();
    for &o in starts {
        ids.entry(o as usize).or_insert_with(|| {
            depth.push(0);
            sink.builder.add_node(o as u64)
        });
    }
    // Nodes are numbered as they are found and walked in number order: breadth first, with no
    // recursion, and edges land in node order as the CSR builder needs.
    let mut next = 0usize;
    while next < sink.builder.node_count() {
        if sink.builder.node_count() > max_objects {
            return None;
        }
        let n = next as NodeId;
        unsafe {
            let o = sink.builder.addr(n) as Obj;
            let (strings, types) = sink.builder.tables_mut();
            let index = registry.lookup::<A>(env, raw::ob_type(o), &mut Tables { strings, types });
            let entry = std::rc::Rc::clone(registry.entry(index));
            let mut flags = entry.node_flags;
            if raw::is_gc(o) && raw::is_tracked(o) {
                flags |= NodeFlags::GC_TRACKED;
            }
            sink.builder
                .set_node(n, entry.id, shallow_size::<A>(env, o, &entry), flags);
            if let Some(name) = object_name(l, o, &entry) {
                sink.builder.set_name(n, &name);
            }
            if depth[next] < max_depth {
                sink.found.clear();
                edges::object_edges(&mut cx, o, &entry, &mut sink);
                let found = std::mem::take(&mut sink.found);
                for &(target, label) in &found {
                    if raw::is_dead::<A>(target) {
                        continue;
                    }
                    let d = depth[next] + 1;
                    let t = *ids.entry(target as usize).or_insert_with(|| {
                        depth.push(d);
                        sink.builder.add_node(target as u64)
                    });
                    sink.builder.push_edge(t, label);
                }
                sink.found = found;
            }
        }
        sink.builder.end_node();
        next += 1;
    }
    // The root names the modules of `sys.modules` the graph holds, as a whole snapshot does.
    let root = sink.builder.add_root_node();
    debug_assert_eq!(root as usize, next);
    unsafe {
        let interp = pyo3::ffi::PyInterpreterState_Get() as *const u8;
        let modules: Obj = read(interp, l.interp_modules);
        if !modules.is_null() {
            let mut key = String::new();
            let mut held = Vec::new();
            dicts::for_each_dict_entry(l, modules, |k, v| {
                if let Some(&n) = ids.get(&(v as usize)) {
                    key.clear();
                    if !raw::str_text(l, k, 200, &mut key) {
                        key.push('?');
                    }
                    held.push((
                        n,
                        format!("sys.modules[{}]", heaplens_core::label::quote(&key)),
                    ));
                }
            });
            for (n, text) in held {
                let id = sink.intern(&text);
                sink.builder.push_edge(n, Label::root(id));
            }
        }
    }
    sink.builder.end_node();
    let meta = sink.builder.meta_mut();
    meta.python_version = env.python_version.clone();
    meta.producer = format!("heaplens {}", heaplens_core::VERSION);
    meta.pid = std::process::id();
    sink.builder.finish().ok()
}
