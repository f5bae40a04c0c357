//! The heap walks: the snapshot (every object, every labelled reference, roots) and the censuses
//! (counts and bytes per type, of gc-tracked objects only or of every object).
//!
//! Both start from the GC lists and follow references to the objects the lists do not hold, so
//! str, int, float, bytes, untracked tuples and dicts, code objects and static types are found and
//! counted. Thread stacks are walked as extra sources (locals of running frames). The snapshot
//! processes nodes strictly in id order, which lets the graph builder write CSR adjacency directly
//! and makes the walk iterative: the "queue" is the node id range itself.
//!
//! Roots and garbage: every object's reference count is compared with the references the walk
//! found to it. A surplus means something outside the Python heap refers to it (C code,
//! interpreter state, a C call in progress); such objects become roots, with modules in
//! `sys.modules` and thread stacks. Whatever no root reaches is cyclic garbage the collector has
//! not freed yet (the same test `gc.collect()` applies), kept in the snapshot and flagged.

use super::addrmap::AddrMap;
use super::edges::{self, Cx, EdgeSink};
use super::env::Env;
use super::gc_lists::{GcLists, Stash};
use super::raw::{self, read, Obj};
use super::registry::{Registry, Tables, TypeFilter};
use super::sizeof::shallow_size;
use super::threads::{self, ThreadStack};
use super::layout::FRAME_OWNED_BY_GENERATOR;
use heaplens_core::census::Census;
use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::reach;
use heaplens_core::strings::{StringId, StringTable};
use heaplens_core::types::TypeTable;
use hashbrown::HashMap;

/// The snapshot's edge sink: resolves each referent to a node (creating nodes for objects seen
/// for the first time) and keeps, per node, reference count minus references found.
struct GraphSink<'a> {
    builder: &'a mut GraphBuilder,
    map: &'a mut AddrMap,
    balance: &'a mut Vec<i32>,
}

impl GraphSink<'_> {
    #[inline]
    fn resolve(&mut self, o: Obj) -> NodeId {
        // SAFETY: referents reported by the walkers are live objects; the stash is active.
        if let Some(id) = unsafe { Stash::lookup(o) } {
            return id;
        }
        let builder = &mut *self.builder;
        let balance = &mut *self.balance;
        self.map
            .get_or_insert_with(o as usize, || {
                balance.push(0);
                builder.add_node(o as u64)
            })
            .0
    }
}

impl EdgeSink for GraphSink<'_> {
    const LABELS: bool = true;

    #[inline]
    fn edge(&mut self, target: Obj, label: Label) {
        let n = self.resolve(target);
        self.builder.push_edge(n, label);
        if !label.is_weak() {
            self.balance[n as usize] -= 1;
        }
    }

    #[inline]
    fn edge_uncounted(&mut self, target: Obj, label: Label) {
        let n = self.resolve(target);
        self.builder.push_edge(n, label);
    }

    fn intern(&mut self, text: &str) -> StringId {
        self.builder.strings_mut().intern(text)
    }
}

/// What a synthetic node stands for.
enum Synthetic {
    Thread { stack: usize },
    Frame { iframe: *const u8 },
}

/// Options of a snapshot.
#[derive(Default)]
pub struct SnapshotOptions {
    /// Thread names by `threading.get_ident()`, gathered by the caller before the walk.
    pub thread_names: HashMap<u64, String>,
}

/// The state of one snapshot walk.
struct SnapshotWalk {
    env: &'static Env,
    builder: GraphBuilder,
    map: AddrMap,
    balance: Vec<i32>,
    registry: Registry,
    cx: Cx,
    gc_count: usize,
    synthetic_start: usize,
    synthetic: Vec<Synthetic>,
    stacks: Vec<ThreadStack>,
    thread_nodes: Vec<(NodeId, String)>,
    next: usize,
}

macro_rules! sink {
    ($walk:expr) => {
        GraphSink {
            builder: &mut $walk.builder,
            map: &mut $walk.map,
            balance: &mut $walk.balance,
        }
    };
}

impl SnapshotWalk {
    fn is_synthetic(&self, i: usize) -> bool {
        (self.synthetic_start..self.synthetic_start + self.synthetic.len()).contains(&i)
    }

    /// Processes every node numbered but not yet processed, in id order.
    unsafe fn process_pending(&mut self) {
        while self.next < self.builder.node_count() {
            let n = self.next as NodeId;
            unsafe {
                if self.is_synthetic(self.next) {
                    self.process_synthetic(n);
                } else {
                    self.process_object(n);
                }
            }
            self.builder.end_node();
            self.next += 1;
        }
    }

    unsafe fn process_object(&mut self, n: NodeId) {
        let l = self.env.layout;
        unsafe {
            let o = self.builder.addr(n) as Obj;
            let (strings, types) = self.builder.tables_mut();
            let index = self
                .registry
                .lookup(self.env, raw::ob_type(o), &mut Tables { strings, types });
            let entry = self.registry.entry(index);
            let mut flags = entry.node_flags;
            if (n as usize) < self.gc_count {
                flags |= NodeFlags::GC_TRACKED;
            }
            self.builder.set_node(n, entry.id, shallow_size(l, o, entry), flags);
            self.balance[n as usize] += raw::ob_refcnt(o).clamp(0, 1 << 30) as i32;
            edges::object_edges(&mut self.cx, o, entry, &mut sink!(self));
        }
    }

    unsafe fn process_synthetic(&mut self, n: NodeId) {
        let l = self.env.layout;
        unsafe {
            match self.synthetic[n as usize - self.synthetic_start] {
                Synthetic::Thread { stack } => {
                    let s = &self.stacks[stack];
                    edges::thread_state_edges(&mut self.cx, s.tstate, &mut sink!(self));
                    // The thread's frames are the nodes that follow it, innermost first.
                    for depth in 0..s.frames.len() {
                        self.builder.push_edge(n + 1 + depth as NodeId, Label::frame(depth));
                    }
                }
                Synthetic::Frame { iframe } => {
                    if read::<u8>(iframe, l.iframe_owner) == FRAME_OWNED_BY_GENERATOR {
                        // The generator object owns the frame and reports its locals; the stack
                        // only runs it.
                        let gen = iframe.sub(l.gen_iframe) as Obj;
                        let label = Label::field(self.cx.names.generator);
                        sink!(self).edge_uncounted(gen, label);
                    } else {
                        edges::interpreter_frame_edges(&mut self.cx, iframe, &mut sink!(self));
                    }
                }
            }
        }
    }

    /// Adds and processes the root: modules in `sys.modules`, thread stacks, and every object
    /// with references from outside the heap.
    unsafe fn add_root(&mut self) {
        let l = self.env.layout;
        let root = self.builder.add_root_node();
        self.balance.push(0);
        debug_assert_eq!(root as usize, self.next);
        unsafe {
            let mut sink = sink!(self);
            let interp = pyo3::ffi::PyInterpreterState_Get() as *const u8;
            let modules: Obj = read(interp, l.interp_modules);
            if !modules.is_null() {
                let mut key = String::new();
                edges::for_each_dict_entry(l, modules, |k, v| {
                    key.clear();
                    if !raw::str_text(l, k, 200, &mut key) {
                        key.push('?');
                    }
                    let text = format!("sys.modules[{}]", heaplens_core::label::quote(&key));
                    let id = sink.intern(&text);
                    sink.edge_uncounted(v, Label::root(id));
                });
            }
            for (node, name) in &self.thread_nodes {
                let id = sink.intern(&format!("thread {}", heaplens_core::label::quote(name)));
                sink.builder.push_edge(*node, Label::root(id));
            }
        }
        for i in 0..self.balance.len() {
            if self.balance[i] > 0 && i != root as usize && !self.is_synthetic(i) {
                self.builder.push_edge(i as NodeId, Label::root_external());
            }
        }
        self.builder.end_node();
        self.next += 1;
    }
}

/// Takes a snapshot of the whole heap.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn snapshot(
    env: &'static Env,
    lists: &GcLists,
    options: &SnapshotOptions,
) -> Result<Graph, heaplens_core::Error> {
    unsafe {
        let gc_count = lists.count();
        let mut builder = GraphBuilder::with_capacity(gc_count * 2 + 1024, gc_count * 6 + 4096);
        let mut balance: Vec<i32> = Vec::with_capacity(gc_count * 2 + 1024);
        let mut stash = Stash::new(lists, |o| {
            balance.push(0);
            builder.add_node(o as u64)
        });

        // Thread and frame nodes come right after the tracked objects.
        let stacks = threads::thread_stacks(env);
        let synthetic_start = builder.node_count();
        let mut synthetic = Vec::new();
        let mut thread_nodes = Vec::new();
        for (i, stack) in stacks.iter().enumerate() {
            let name = options
                .thread_names
                .get(&stack.thread_id)
                .cloned()
                .unwrap_or_else(|| format!("thread {}", stack.thread_id));
            let node = builder.add_synthetic("(thread)", &name, NodeFlags::THREAD);
            balance.push(0);
            synthetic.push(Synthetic::Thread { stack: i });
            thread_nodes.push((node, name));
            for &iframe in &stack.frames {
                let name = threads::frame_name(env, iframe);
                builder.add_synthetic("(frame)", &name, NodeFlags::FRAME);
                balance.push(0);
                synthetic.push(Synthetic::Frame { iframe });
            }
        }

        let mut map = AddrMap::with_capacity(gc_count);
        let cx = Cx::new(
            env,
            &mut GraphSink {
                builder: &mut builder,
                map: &mut map,
                balance: &mut balance,
            },
        );
        let mut walk = SnapshotWalk {
            env,
            builder,
            map,
            balance,
            registry: Registry::new(TypeFilter::Nothing),
            cx,
            gc_count,
            synthetic_start,
            synthetic,
            stacks,
            thread_nodes,
            next: 0,
        };
        walk.process_pending();
        walk.add_root();
        walk.process_pending();
        stash.restore();

        let SnapshotWalk {
            mut builder,
            balance,
            synthetic_start,
            synthetic,
            ..
        } = walk;
        for (i, &b) in balance.iter().enumerate() {
            let synthetic_node = (synthetic_start..synthetic_start + synthetic.len()).contains(&i);
            if b > 0 && !synthetic_node && !builder.flags(i as NodeId).contains(NodeFlags::SYNTHETIC) {
                builder.add_flags(i as NodeId, NodeFlags::EXTERNAL);
            }
        }
        drop(balance);
        let meta = builder.meta_mut();
        meta.python_version = env.python_version.clone();
        meta.producer = format!("heaplens {}", heaplens_core::VERSION);
        meta.pid = std::process::id();
        meta.taken_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut graph = builder.finish()?;
        reach::mark_unreachable(&mut graph);
        Ok(graph)
    }
}

/// The census walk's sink: remembers objects outside the GC lists the first time it meets them.
struct DiscoverySink<'a> {
    seen: &'a mut AddrMap,
    work: &'a mut Vec<Obj>,
}

impl EdgeSink for DiscoverySink<'_> {
    const LABELS: bool = false;

    #[inline]
    fn edge(&mut self, target: Obj, _label: Label) {
        // SAFETY: referents are live objects.
        unsafe {
            if raw::is_gc(target) && raw::is_tracked(target) {
                return;
            }
        }
        if self.seen.insert(target as usize) {
            self.work.push(target);
        }
    }

    #[inline]
    fn edge_uncounted(&mut self, target: Obj, label: Label) {
        self.edge(target, label);
    }

    fn intern(&mut self, _text: &str) -> StringId {
        StringId::EMPTY
    }
}

/// Visits every live object the walk can find, once: `visit(obj, type entry index)`.
/// With `gc_only`, only the objects of the GC lists (objgraph's view).
unsafe fn for_each_object(
    env: &'static Env,
    lists: &GcLists,
    gc_only: bool,
    registry: &mut Registry,
    tables: &mut Tables<'_>,
    mut visit: impl FnMut(Obj, u32, &Registry),
) {
    unsafe {
        if gc_only {
            lists.for_each(|o| {
                let index = registry.lookup(env, raw::ob_type(o), tables);
                visit(o, index, registry);
            });
            return;
        }
        let mut seen = AddrMap::new();
        let mut work: Vec<Obj> = Vec::new();
        let mut sink = DiscoverySink {
            seen: &mut seen,
            work: &mut work,
        };
        let mut cx = Cx::new(env, &mut sink);
        lists.for_each(|o| {
            let index = registry.lookup(env, raw::ob_type(o), tables);
            visit(o, index, registry);
            edges::object_edges(&mut cx, o, registry.entry(index), &mut sink);
        });
        for stack in threads::thread_stacks(env) {
            edges::thread_state_edges(&mut cx, stack.tstate, &mut sink);
            for &iframe in &stack.frames {
                if read::<u8>(iframe, env.layout.iframe_owner) != FRAME_OWNED_BY_GENERATOR {
                    edges::interpreter_frame_edges(&mut cx, iframe, &mut sink);
                }
            }
        }
        while let Some(o) = sink.work.pop() {
            let index = registry.lookup(env, raw::ob_type(o), tables);
            visit(o, index, registry);
            edges::object_edges(&mut cx, o, registry.entry(index), &mut sink);
        }
    }
}

/// Counts and bytes per type.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn census(env: &'static Env, lists: &GcLists, gc_only: bool) -> Census {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Nothing);
    let mut counts: Vec<u64> = Vec::new();
    let mut bytes: Vec<u64> = Vec::new();
    unsafe {
        let mut tables = Tables {
            strings: &mut strings,
            types: &mut types,
        };
        for_each_object(env, lists, gc_only, &mut registry, &mut tables, |o, index, registry| {
            let entry = registry.entry(index);
            let t = entry.id.0 as usize;
            if t >= counts.len() {
                counts.resize(t + 1, 0);
                bytes.resize(t + 1, 0);
            }
            counts[t] += 1;
            bytes[t] += shallow_size(env.layout, o, entry);
        });
    }
    Census::from_counts(&types, &strings, &counts, &bytes, gc_only)
}

/// The objects whose type entry is `matched` under `filter`.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call. The returned pointers are
/// borrowed: the caller must take references before running any Python code or allocating.
pub unsafe fn matching_objects(env: &'static Env, lists: &GcLists, filter: TypeFilter, gc_only: bool) -> Vec<Obj> {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(filter);
    let mut found = Vec::new();
    unsafe {
        let mut tables = Tables {
            strings: &mut strings,
            types: &mut types,
        };
        for_each_object(env, lists, gc_only, &mut registry, &mut tables, |o, index, registry| {
            if registry.entry(index).matched {
                found.push(o);
            }
        });
    }
    found
}

/// The census of the given objects (objgraph's `objects=` argument).
///
/// # Safety
/// The GIL must be held and every pointer must be a live object.
pub unsafe fn census_of(env: &'static Env, objects: &[Obj]) -> Census {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Nothing);
    let mut counts: Vec<u64> = Vec::new();
    let mut bytes: Vec<u64> = Vec::new();
    let mut tables = Tables {
        strings: &mut strings,
        types: &mut types,
    };
    unsafe {
        for &o in objects {
            let index = registry.lookup(env, raw::ob_type(o), &mut tables);
            let entry = registry.entry(index);
            let t = entry.id.0 as usize;
            if t >= counts.len() {
                counts.resize(t + 1, 0);
                bytes.resize(t + 1, 0);
            }
            counts[t] += 1;
            bytes[t] += shallow_size(env.layout, o, entry);
        }
    }
    Census::from_counts(&types, &strings, &counts, &bytes, false)
}

/// Every name (`__name__`, `__qualname__`, `module.__name__`, `module.__qualname__`) of every type
/// object the full walk finds, whether or not the type has instances.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn type_object_names(env: &'static Env, lists: &GcLists) -> Vec<String> {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Nothing);
    let mut names = Vec::new();
    unsafe {
        let mut tables = Tables {
            strings: &mut strings,
            types: &mut types,
        };
        for_each_object(env, lists, false, &mut registry, &mut tables, |o, index, registry| {
            if registry.entry(index).node_flags.contains(NodeFlags::TYPE) {
                let (module, name, qualname) = super::registry::type_names(env.layout, o as raw::Type);
                names.push(format!("{module}.{name}"));
                names.push(format!("{module}.{qualname}"));
                names.push(name);
                names.push(qualname);
            }
        });
    }
    names
}

/// Whether the type `tp` matches `query`.
///
/// # Safety
/// The GIL must be held; `tp` must be a live type.
pub unsafe fn type_matches(env: &'static Env, tp: raw::Type, query: &str) -> bool {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Named(query.to_string()));
    let mut tables = Tables {
        strings: &mut strings,
        types: &mut types,
    };
    unsafe {
        let index = registry.lookup(env, tp, &mut tables);
        registry.entry(index).matched
    }
}
