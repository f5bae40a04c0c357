//! The snapshot walk: every object, every labelled reference, and the roots.
//!
//! It starts from the GC lists (whose objects are numbered through the [`Stash`]) and follows
//! references to the objects the lists do not hold, so str, int, float, bytes, untracked tuples
//! and dicts, code objects and static types become nodes too. Thread stacks are walked as extra
//! sources (locals of running frames). Nodes are processed strictly in id order, which lets the
//! graph builder write CSR adjacency directly and makes the walk iterative: the "queue" is the
//! node id range itself.
//!
//! Speed comes from memory access, not arithmetic: a walk is a long series of cache misses. So
//! references are queued across nodes and prefetched together (their misses overlap), objects
//! with a single reference skip the address map, and leaves (str, int, float, bytes: most of a
//! heap) are finished the moment they are met, while their header is in cache.
//!
//! Roots and garbage: every object's reference count is compared with the references the walk
//! found to it. A surplus means something outside the Python heap refers to it (C code,
//! interpreter state, a C call in progress); such objects become roots, with modules in
//! `sys.modules` and thread stacks. Whatever no root reaches is cyclic garbage the collector has
//! not freed yet (the same test `gc.collect()` applies), kept in the snapshot and flagged.
//! Immortal objects (3.12+) have reference counts that mean nothing; they are roots of their
//! own kind, [`IMMORTAL_ROOT`]: the interpreter keeps them for its whole life.

use crate::abi::Abi;
use crate::addrmap::AddrMap;
use crate::dicts;
use crate::edges::{self, EdgeSink, BATCH};
use crate::env::Env;
use crate::gc_lists::{GcLists, Stash};
use crate::labels::Cx;
use crate::raw::{self, read, Obj};
use crate::registry::{Bound, Registry, Tables, TypeFilter};
use crate::sizeof::shallow_size;
use crate::split::Share;
use crate::threads::{self, frame_owner, FrameOwner, ThreadStack};
use hashbrown::HashMap;
use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::reach;
use heaplens_core::strings::StringId;
use std::marker::PhantomData;

pub use heaplens_core::graph::IMMORTAL_ROOT;

/// How many nodes ahead the snapshot's processing loop prefetches.
const PREFETCH_AHEAD: usize = 8;

/// A growable bit set over node ids.
#[derive(Default)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn set(&mut self, i: usize) {
        let w = i / 64;
        if w >= self.0.len() {
            self.0.resize((w + 1).next_power_of_two(), 0);
        }
        self.0[w] |= 1 << (i % 64);
    }

    /// The set bits, in order.
    pub(crate) fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    w * 64 + bit
                })
            })
        })
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// One queued step of the snapshot's edge resolution.
#[derive(Clone, Copy)]
pub(crate) enum Pending {
    /// A reference from the node being written to an object (counted or not).
    Object(Obj, Label, bool),
    /// A reference to a node that already exists (a thread's frames).
    Node(NodeId, Label),
    /// The node being written has no more edges.
    End,
}

/// How a queued referent will be resolved, worked out in a first pass so that the cache misses
/// of a whole batch (objects, then address-map slots) overlap.
#[derive(Clone, Copy)]
pub(crate) enum Resolution {
    /// Nothing to resolve (a node edge or an end marker).
    Ready,
    /// A tracked object, numbered by the stash.
    Tracked(NodeId),
    /// Reached by its only reference: a new node, no map lookup.
    Single,
    /// Looked up (or added) in the address map.
    Mapped,
    /// Not a live object: an entry of a free list some `tp_traverse` reports (see
    /// [`raw::is_dead`]). No node, no edge.
    Dead,
}

/// Turns the references the walkers report into graph edges. Referents are queued, across
/// nodes, with an end marker after each node's last reference; every [`BATCH`] entries the queue
/// is resolved in order, so edges still land in node order for the CSR builder while the cache
/// misses of hundreds of referents overlap. Objects met for the first time become nodes (leaves
/// are finished on the spot); per node it keeps reference count minus references found.
///
/// With `SPLIT`, it is one of several walking the heap at once ([`crate::split`]): its nodes
/// are numbered in its own part ([`Share`] says how those numbers read in the whole graph),
/// and the objects several threads may meet go through a table they share.
pub(crate) struct Resolver<A: Abi, const SPLIT: bool> {
    pub(crate) env: &'static Env,
    pub(crate) abi: PhantomData<A>,
    pub(crate) builder: GraphBuilder,
    /// Untracked objects met so far, and with [`Numbering::InMap`] the tracked ones too.
    pub(crate) map: AddrMap,
    /// Whether tracked objects are numbered in `map` rather than in their headers.
    pub(crate) tracked_in_map: bool,
    pub(crate) balance: Vec<i32>,
    /// Nodes of immortal objects (3.12+), whose reference counts mean nothing.
    pub(crate) immortal: Bits,
    pub(crate) registry: Registry,
    pub(crate) done: Bits,
    pub(crate) pending: Vec<Pending>,
    pub(crate) plan: Vec<Resolution>,
    /// The node whose references are being reported.
    pub(crate) current: NodeId,
    /// The names of [`SIZE_ATTRIBUTES`], interned in the graph's strings, and the range of
    /// their ids.
    pub(crate) size_names: Vec<heaplens_core::strings::StringId>,
    pub(crate) size_range: (u32, u32),
    /// Sizes objects say their containers keep to: (the object, or its `__dict__`; the size).
    pub(crate) size_hints: Vec<(NodeId, u64)>,
    /// How this walk's part of the graph reads in the whole (`SPLIT` only).
    pub(crate) share: Share,
}

/// Attribute names by which a hand-written cache says how many entries it keeps (Jinja2's and
/// SQLAlchemy's `LRUCache.capacity`, cachetools' `Cache.__maxsize`, Django's `LocMemCache
/// ._max_entries`, a class's own `maxsize`): the containers the same object holds are bounded
/// by it (see [`apply_size_hints`]).
pub(crate) const SIZE_ATTRIBUTES: [&str; 16] = [
    "maxsize",
    "_maxsize",
    "max_size",
    "_max_size",
    "capacity",
    "_capacity",
    "maxlen",
    "_maxlen",
    "max_entries",
    "_max_entries",
    "max_items",
    "_max_items",
    "size_limit",
    "_size_limit",
    "cache_size",
    "_Cache__maxsize",
];

/// How far past the size it names a container may be and still count as bounded by it: caches
/// prune in batches (SQLAlchemy's once half again as many entries are kept).
const SIZE_SLACK: u64 = 2;

/// Gives each container held by an object that names a size ([`SIZE_ATTRIBUTES`]) that size as
/// its bound, when it holds no more than [`SIZE_SLACK`] times as many entries: a cache filling
/// up to the size its code keeps it to is no leak; one far past it is not bounded by it.
fn apply_size_hints(graph: &mut Graph, hints: &[(NodeId, u64)]) {
    const CONTAINERS: [&str; 6] = [
        "dict",
        "list",
        "set",
        "collections.OrderedDict",
        "collections.deque",
        "collections.defaultdict",
    ];
    for &(holder, size) in hints {
        let containers: Vec<NodeId> = graph
            .edges(holder)
            .filter(|(_, l)| !l.is_weak())
            .map(|(t, _)| t)
            .filter(|&t| CONTAINERS.contains(&graph.type_name(t).as_str()))
            .collect();
        for c in containers {
            let entries = heaplens_core::analysis::churn::entry_count(graph, c);
            if entries <= size.saturating_mul(SIZE_SLACK) && graph.declared_bound(c).is_none() {
                graph.set_declared_bound(c, size);
            }
        }
    }
}

impl<A: Abi, const SPLIT: bool> Resolver<A, SPLIT> {
    #[inline]
    pub(crate) fn queue(&mut self, p: Pending) {
        self.pending.push(p);
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Records the size the current object names for its containers, when `target`, what it
    /// holds under a [`SIZE_ATTRIBUTES`] name, is a positive int.
    ///
    /// # Safety
    /// `target` must be a live object.
    #[cold]
    unsafe fn size_hint(&mut self, target: Obj, label: Label) {
        use heaplens_core::label::LabelKind;
        if !matches!(
            label.kind(),
            LabelKind::Attr | LabelKind::Key | LabelKind::Field
        ) {
            return;
        }
        unsafe {
            if raw::ob_type(target) != self.env.types.int {
                return;
            }
            if let Some(size) = raw::small_int::<A>(self.env.layout, target).filter(|&v| v > 0) {
                let holder = if SPLIT {
                    self.share.id_of(self.current)
                } else {
                    self.current
                };
                self.size_hints.push((holder, size as u64));
            }
        }
    }

    /// Ends the edges of the node being written.
    pub(crate) fn end_node(&mut self) {
        self.queue(Pending::End);
    }

    /// Sets type, size and reference count of a new node whose object refers to nothing, so the
    /// processing loop does not have to come back to it.
    #[inline]
    unsafe fn finish_if_leaf(&mut self, n: NodeId, o: Obj) {
        unsafe {
            let (strings, types) = self.builder.tables_mut();
            let index = self.registry.lookup::<A>(
                self.env,
                raw::ob_type(o),
                &mut Tables { strings, types },
            );
            let entry = self.registry.entry(index);
            if entry.leaf {
                let size = shallow_size::<A>(self.env, o, entry);
                self.builder.set_node(n, entry.id, size, entry.node_flags);
                self.count_references(n, o);
                self.done.set(n as usize);
            }
        }
    }

    /// Adds the reference count of `o` (node `n`) to its balance, or marks it immortal.
    #[inline]
    unsafe fn count_references(&mut self, n: NodeId, o: Obj) {
        match unsafe { A::refcount(o) } {
            Some(count) if SPLIT => {
                let count = count.clamp(0, 1 << 30) as i32;
                self.share.add_references(n, o, count, &mut self.balance);
            }
            Some(count) => self.balance[n as usize] += count.clamp(0, 1 << 30) as i32,
            None => self.immortal.set(n as usize),
        }
    }

    /// A new node for `o`.
    #[inline]
    pub(crate) fn new_node(&mut self, o: Obj) -> NodeId {
        let n = self.builder.add_node(o as u64);
        self.balance.push(0);
        // SAFETY: `o` is a live object.
        unsafe { self.finish_if_leaf(n, o) };
        n
    }

    pub(crate) fn flush(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        let mut plan = std::mem::take(&mut self.plan);
        for p in &pending {
            if let Pending::Object(o, _, _) = *p {
                raw::prefetch(raw::gc_head(o) as *const u8);
                raw::prefetch((o as *const u8).wrapping_add(8));
            }
        }
        plan.clear();
        for p in &pending {
            let r = match *p {
                // SAFETY: referents reported by the walkers are live; the stash is active.
                Pending::Object(o, _, counted) => unsafe {
                    let stashed = if self.tracked_in_map {
                        None
                    } else {
                        Stash::lookup(o)
                    };
                    if let Some(id) = stashed {
                        Resolution::Tracked(id)
                    } else if self.tracked_in_map && raw::is_gc(o) && *raw::gc_head(o) != 0 {
                        // A tracked object, numbered in the map before the walk.
                        self.map.prefetch(o as usize);
                        Resolution::Mapped
                    } else if raw::is_dead::<A>(o) {
                        Resolution::Dead
                    } else if counted && raw::singly_referenced::<A>(o) {
                        Resolution::Single
                    } else {
                        if SPLIT {
                            self.share.table().prefetch(o as usize);
                        } else {
                            self.map.prefetch(o as usize);
                        }
                        Resolution::Mapped
                    }
                },
                _ => Resolution::Ready,
            };
            plan.push(r);
        }
        for (p, &r) in pending.iter().zip(&plan) {
            let (o, label, counted) = match *p {
                Pending::End => {
                    self.builder.end_node();
                    continue;
                }
                Pending::Node(n, label) => {
                    self.builder.push_edge(n, label);
                    continue;
                }
                Pending::Object(o, label, counted) => (o, label, counted),
            };
            if SPLIT {
                // SAFETY: as above.
                if let Some(n) = unsafe { self.resolve_shared(o, r, counted) } {
                    self.builder.push_edge(n, label);
                }
                continue;
            }
            let n = match r {
                Resolution::Dead => continue,
                Resolution::Tracked(id) => id,
                Resolution::Single => self.new_node(o),
                Resolution::Mapped | Resolution::Ready => {
                    let candidate = self.builder.node_count() as NodeId;
                    let (n, new) = self.map.get_or_insert_with(o as usize, || candidate);
                    if new {
                        let created = self.new_node(o);
                        debug_assert_eq!(created, n);
                    }
                    n
                }
            };
            self.builder.push_edge(n, label);
            if counted {
                self.balance[n as usize] -= 1;
            }
        }
        pending.clear();
        self.pending = pending;
        self.plan = plan;
    }
}

impl<A: Abi, const SPLIT: bool> Resolver<A, SPLIT> {
    /// The id (in the whole graph's provisional numbering) of the referent `o`, resolved as
    /// `r` says, with its balance charged when `counted`; `None` for no edge (a dead entry,
    /// or a walk given up because the shared table is full).
    ///
    /// # Safety
    /// `o` must be a live object; the stash is active.
    #[inline]
    unsafe fn resolve_shared(&mut self, o: Obj, r: Resolution, counted: bool) -> Option<NodeId> {
        match r {
            Resolution::Dead => None,
            Resolution::Tracked(id) => {
                if counted {
                    self.share.charge_shared(id);
                }
                Some(id)
            }
            Resolution::Single => {
                let n = self.new_node(o);
                if counted {
                    self.balance[n as usize] -= 1;
                }
                Some(self.share.id_of(n))
            }
            Resolution::Mapped | Resolution::Ready => {
                let next = self.builder.node_count() as NodeId;
                let id_if_new = self.share.id_of(next);
                match self.share.table().get_or_claim(o as usize, id_if_new) {
                    crate::split::Claim::Found { id, slot } => {
                        if counted {
                            self.share.charge_slot(slot);
                        }
                        Some(id)
                    }
                    crate::split::Claim::Claimed { slot } => {
                        self.share.mark_mapped(next);
                        let created = self.new_node(o);
                        debug_assert_eq!(created, next);
                        if counted {
                            self.share.charge_slot(slot);
                        }
                        Some(id_if_new)
                    }
                    crate::split::Claim::Full if self.share.may_traverse() => {
                        // The GIL's thread, alone by now: its own map numbers what the full
                        // table cannot (its values are ids in the whole graph's numbering).
                        let (id, new) = self.map.get_or_insert_with(o as usize, || id_if_new);
                        if new {
                            let created = self.new_node(o);
                            debug_assert_eq!(created, next);
                        }
                        if counted {
                            self.share.charge(id, &mut self.balance);
                        }
                        Some(id)
                    }
                    crate::split::Claim::Full => {
                        // Left to the GIL's thread, which numbers it once the parts are done.
                        let edge = self.builder.edge_count();
                        self.share.defer_reference(edge, o, counted);
                        Some(crate::split::UNRESOLVED)
                    }
                }
            }
        }
    }
}

impl<A: Abi, const SPLIT: bool> EdgeSink for Resolver<A, SPLIT> {
    const LABELS: bool = true;

    #[inline]
    fn edge(&mut self, target: Obj, label: Label) {
        if let Some(name) = label.name() {
            // Interned together at the start of the walk, so nearly always one range: most
            // labels are ruled out by two comparisons.
            if (self.size_range.0..=self.size_range.1).contains(&name.0)
                && self.size_names.contains(&name)
            {
                // SAFETY: referents reported by the walkers are live.
                unsafe { self.size_hint(target, label) };
            }
        }
        self.queue(Pending::Object(target, label, !label.is_weak()));
    }

    #[inline]
    fn edge_uncounted(&mut self, target: Obj, label: Label) {
        self.queue(Pending::Object(target, label, false));
    }

    fn intern(&mut self, text: &str) -> StringId {
        self.builder.strings_mut().intern(text)
    }

    #[inline]
    fn add_unindexed(&mut self, write: impl FnOnce(&mut String) -> bool) -> Option<StringId> {
        heaplens_core::label::add_unindexed_name(self.builder.strings_mut(), write)
    }

    fn expect(&mut self, references: usize, keys: usize) {
        // Most referents of a big container are objects met for the first time. Room for twice
        // as many: the objects walked after it add their own, and room never written costs
        // address space, not memory (the finished graph gives it back).
        let room = 2 * references;
        self.builder.reserve(room, room);
        let _ = self.balance.try_reserve(room);
        heaplens_core::hugepages::advise(&self.balance);
        // Ids and counters take 10 to 20 bytes.
        self.builder
            .strings_mut()
            .reserve_unindexed(2 * keys, 2 * keys * 16);
    }
}

/// What a synthetic node stands for.
pub(crate) enum Synthetic {
    Thread { stack: usize },
    Frame { iframe: *const u8 },
}

/// Where a walk keeps the node ids of the tracked objects.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbering {
    /// In each object's `_gc_prev` word, put back after the walk ([`Stash`]): no map to build,
    /// the fastest walk, for a walk in the program itself.
    InHeaders,
    /// In the address map, writing nothing into the objects: for a walk in a forked child,
    /// where a write into an object's header would copy its page (every page of the heap that
    /// holds a tracked object). `pid` is the program's (the snapshot's meta data names it, not
    /// the child).
    InMap { pid: u32 },
}

/// Options of a snapshot.
#[derive(Default)]
pub struct SnapshotOptions {
    /// Thread names by `threading.get_ident()`, gathered by the caller before the walk.
    pub thread_names: HashMap<u64, String>,
}

impl SnapshotOptions {
    /// The name of the thread `thread_id`: `threading`'s, or `thread <id>`.
    pub(crate) fn thread_name(&self, thread_id: u64) -> String {
        self.thread_names
            .get(&thread_id)
            .cloned()
            .unwrap_or_else(|| format!("thread {thread_id}"))
    }
}

/// The state of one snapshot walk (one part of it with `SPLIT`: see [`crate::split`]).
pub(crate) struct SnapshotWalk<A: Abi, const SPLIT: bool> {
    pub(crate) env: &'static Env,
    pub(crate) r: Resolver<A, SPLIT>,
    pub(crate) cx: Cx<A>,
    pub(crate) gc_count: usize,
    pub(crate) synthetic_start: usize,
    pub(crate) synthetic: Vec<Synthetic>,
    pub(crate) stacks: Vec<ThreadStack>,
    pub(crate) thread_nodes: Vec<(NodeId, String)>,
    pub(crate) next: usize,
    /// Declared bounds met on the way: (the declaring object's node, the address of the
    /// container it bounds, the bound). The container is the object itself or one it refers
    /// to, whose node exists only once the walk has resolved that reference.
    pub(crate) bounds: Vec<(NodeId, u64, u64)>,
}

impl<A: Abi, const SPLIT: bool> SnapshotWalk<A, SPLIT> {
    fn is_synthetic(&self, i: usize) -> bool {
        (self.synthetic_start..self.synthetic_start + self.synthetic.len()).contains(&i)
    }

    /// Processes every node numbered but not yet processed, in id order, until no queued
    /// reference can add more.
    pub(crate) unsafe fn process_pending(&mut self) {
        loop {
            while self.next < self.r.builder.node_count() {
                if SPLIT && self.next % 1024 == 0 && self.r.share.given_up() {
                    return;
                }
                let n = self.next as NodeId;
                let ahead = self.next + PREFETCH_AHEAD;
                if ahead < self.r.builder.node_count() {
                    raw::prefetch(self.r.builder.addr(ahead as NodeId) as *const u8);
                }
                self.r.current = n;
                unsafe {
                    if self.r.done.get(self.next) {
                        // A leaf, finished when it was found.
                    } else if self.is_synthetic(self.next) {
                        self.process_synthetic(n);
                    } else {
                        self.process_object(n);
                    }
                }
                self.r.end_node();
                self.next += 1;
            }
            if self.r.pending.is_empty() {
                break;
            }
            self.r.flush();
        }
    }

    unsafe fn process_object(&mut self, n: NodeId) {
        let l = self.env.layout;
        let r = &mut self.r;
        unsafe {
            let o = r.builder.addr(n) as Obj;
            let (strings, types) = r.builder.tables_mut();
            let index =
                r.registry
                    .lookup::<A>(self.env, raw::ob_type(o), &mut Tables { strings, types });
            let entry = std::rc::Rc::clone(r.registry.entry(index));
            if SPLIT && r.share.defers(&entry) {
                // Its own tp_traverse reports its references, and only the thread that holds
                // the GIL calls into the interpreter: that one walks it later.
                r.share.defer_node(n);
                return;
            }
            let mut flags = entry.node_flags;
            let tracked = if SPLIT {
                r.share.is_tracked(n)
            } else {
                (n as usize) < self.gc_count
            };
            if tracked {
                flags |= NodeFlags::GC_TRACKED;
            }
            r.builder
                .set_node(n, entry.id, shallow_size::<A>(self.env, o, &entry), flags);
            if let Some(name) = super::registry::object_name(l, o, &entry) {
                r.builder.set_name(n, &name);
            }
            r.count_references(n, o);
            edges::object_edges(&mut self.cx, o, &entry, r);
            let declared = match entry.bound {
                Bound::None => None,
                Bound::DequeMaxlen => Some((o, read::<isize>(o as *const u8, l.deque_maxlen))),
                Bound::LruCache => {
                    let cache: Obj = read(o as *const u8, l.lru_cache_cache);
                    let maxsize = read::<isize>(o as *const u8, l.lru_cache_maxsize);
                    (!cache.is_null()).then_some((cache, maxsize))
                }
            };
            // A negative bound is none (`maxlen=None`, `maxsize=None`).
            if let Some((container, bound)) = declared.filter(|&(_, b)| b >= 0) {
                let declarer = if SPLIT { self.r.share.id_of(n) } else { n };
                self.bounds.push((declarer, container as u64, bound as u64));
            }
        }
    }

    /// Queues the root's named references: each module in `sys.modules` and each thread.
    ///
    /// # Safety
    /// The GIL must be held, by this thread.
    pub(crate) unsafe fn queue_named_roots(&mut self) {
        let l = self.env.layout;
        unsafe {
            let r = &mut self.r;
            let interp = pyo3::ffi::PyInterpreterState_Get() as *const u8;
            let modules: Obj = read(interp, l.interp_modules);
            if !modules.is_null() {
                let mut key = String::new();
                dicts::for_each_dict_entry(l, modules, |k, v| {
                    key.clear();
                    if !raw::str_text(l, k, 200, &mut key) {
                        key.push('?');
                    }
                    let text = format!("sys.modules[{}]", heaplens_core::label::quote(&key));
                    let id = r.intern(&text);
                    r.edge_uncounted(v, Label::root(id));
                });
            }
            for (node, name) in &self.thread_nodes {
                let id = r.intern(&format!("thread {}", heaplens_core::label::quote(name)));
                r.queue(Pending::Node(*node, Label::root(id)));
            }
        }
    }

    pub(crate) unsafe fn process_synthetic(&mut self, n: NodeId) {
        let l = self.env.layout;
        unsafe {
            match self.synthetic[n as usize - self.synthetic_start] {
                Synthetic::Thread { stack } => {
                    let s = &self.stacks[stack];
                    crate::frame_edges::thread_state_edges(&mut self.cx, s.tstate, &mut self.r);
                    // The thread's frames are the nodes that follow it, innermost first.
                    for depth in 0..s.frames.len() {
                        let frame = n + 1 + depth as NodeId;
                        let frame = if SPLIT {
                            self.r.share.id_of(frame)
                        } else {
                            frame
                        };
                        self.r.queue(Pending::Node(frame, Label::frame(depth)));
                    }
                }
                Synthetic::Frame { iframe } => {
                    if frame_owner(l, iframe) == FrameOwner::Generator {
                        // The generator object owns the frame and reports its locals; the stack
                        // only runs it.
                        let gen = iframe.sub(l.gen_iframe) as Obj;
                        let label = Label::field(self.cx.names.generator);
                        self.r.edge_uncounted(gen, label);
                    } else {
                        crate::frame_edges::interpreter_frame_edges(
                            &mut self.cx,
                            iframe,
                            &mut self.r,
                        );
                    }
                }
            }
        }
    }
}

impl<A: Abi> SnapshotWalk<A, false> {
    /// Adds and processes the root: modules in `sys.modules`, thread stacks, and every object
    /// with references from outside the heap. Every earlier node must be complete (their
    /// references decide which objects have outside references).
    unsafe fn add_root(&mut self) {
        debug_assert!(self.r.pending.is_empty());
        let root = self.r.builder.add_root_node();
        self.r.balance.push(0);
        debug_assert_eq!(root as usize, self.next);
        unsafe { self.queue_named_roots() };
        self.r.flush();
        for i in 0..self.r.balance.len() {
            if self.r.balance[i] > 0 && i != root as usize && !self.is_synthetic(i) {
                self.r
                    .queue(Pending::Node(i as NodeId, Label::root_external()));
            }
        }
        // Immortal objects (3.12+: None, small ints, static types, interned strings...) are
        // never freed, whatever refers to them: the interpreter holds them. They are roots of
        // their own kind rather than "held outside the heap", which their meaningless
        // reference counts would otherwise make them.
        let interpreter = self.r.intern(IMMORTAL_ROOT);
        for i in 0..self.r.balance.len() {
            if self.r.immortal.get(i) {
                self.r
                    .queue(Pending::Node(i as NodeId, Label::root(interpreter)));
            }
        }
        self.r.end_node();
        self.next += 1;
    }
}

/// Takes a snapshot of the whole heap.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
///
/// With [`Numbering::InMap`] the walk writes nothing into the heap it reads (for a forked
/// child); the graph is the same either way.
pub(crate) unsafe fn snapshot<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    options: &SnapshotOptions,
    numbering: Numbering,
) -> Result<Graph, heaplens_core::Error> {
    unsafe {
        let mut builder = GraphBuilder::new();
        let mut balance: Vec<i32> = Vec::new();
        // Tracked objects are numbered in the order of the lists either way (the map's walk
        // visits them in the stash's order), so node ids do not depend on the numbering.
        let mut tracked_map = None;
        let mut stash = match numbering {
            Numbering::InHeaders => Some(Stash::new(lists)),
            Numbering::InMap { .. } => {
                // Counted first: a map that grows by copying would leave its old arrays in the
                // allocator and raise the child's peak.
                let mut tracked = 0;
                lists.for_each(|_| tracked += 1);
                let mut map = AddrMap::with_capacity(tracked + tracked / 2);
                lists.for_each(|o| {
                    balance.push(0);
                    let id = builder.add_node(o as u64);
                    map.get_or_insert_with(o as usize, || id);
                });
                tracked_map = Some(map);
                None
            }
        };
        let gc_count = match &stash {
            Some(stash) => stash.len(),
            None => builder.node_count(),
        };
        // Room for the usual heap shape (seven nodes per tracked object in all, the tracked
        // object's own among them) up front: arrays that grow by copying would leave their old
        // copies in the allocator and raise the peak. Unused capacity is never touched, so it
        // costs address space, not memory.
        let room = gc_count * 7;
        builder.reserve(room - builder.node_count(), gc_count * 20);
        balance.reserve(room - balance.len());
        heaplens_core::hugepages::advise(&balance);
        // The stashed objects' nodes, numbered as the stash numbered them.
        if let Some(stash) = &stash {
            for o in stash.objects(0..gc_count) {
                builder.add_node(o as u64);
                balance.push(0);
            }
        }

        // Thread and frame nodes come right after the tracked objects.
        let stacks = threads::thread_stacks(env);
        let synthetic_start = builder.node_count();
        let mut synthetic = Vec::new();
        let mut thread_nodes = Vec::new();
        for (i, stack) in stacks.iter().enumerate() {
            let name = options.thread_name(stack.thread_id);
            let node = builder.add_synthetic("(thread)", &name, NodeFlags::THREAD);
            balance.push(0);
            synthetic.push(Synthetic::Thread { stack: i });
            thread_nodes.push((node, name));
            for &iframe in &stack.frames {
                let name = threads::frame_name::<A>(env, iframe);
                builder.add_synthetic("(frame)", &name, NodeFlags::FRAME);
                balance.push(0);
                synthetic.push(Synthetic::Frame { iframe });
            }
        }

        let mut walk = SnapshotWalk::<A, false> {
            env,
            r: Resolver {
                env,
                abi: PhantomData,
                immortal: Bits::default(),
                builder,
                map: tracked_map.unwrap_or_else(|| AddrMap::with_capacity(gc_count / 2)),
                tracked_in_map: numbering != Numbering::InHeaders,
                balance,
                registry: Registry::new(TypeFilter::Nothing),
                done: Bits::default(),
                pending: Vec::with_capacity(BATCH),
                plan: Vec::with_capacity(BATCH),
                current: 0,
                size_names: Vec::new(),
                size_range: (1, 0),
                size_hints: Vec::new(),
                share: Share::default(),
            },
            cx: Cx::<A>::labelled(env),
            gc_count,
            synthetic_start,
            synthetic,
            stacks,
            thread_nodes,
            next: 0,
            bounds: Vec::new(),
        };
        walk.cx.intern_names(&mut walk.r);
        walk.r.size_names = SIZE_ATTRIBUTES
            .iter()
            .map(|n| walk.r.builder.strings_mut().intern(n))
            .collect();
        let ids = walk.r.size_names.iter().map(|id| id.0);
        walk.r.size_range = (ids.clone().min().unwrap_or(1), ids.max().unwrap_or(0));
        walk.process_pending();
        walk.add_root();
        walk.process_pending();
        if let Some(stash) = stash.as_mut() {
            stash.restore();
        }
        drop(stash);

        let SnapshotWalk {
            r:
                Resolver {
                    mut builder,
                    balance,
                    size_hints,
                    ..
                },
            synthetic_start,
            synthetic,
            bounds,
            ..
        } = walk;
        for (i, &b) in balance.iter().enumerate() {
            let synthetic_node = (synthetic_start..synthetic_start + synthetic.len()).contains(&i);
            if b > 0
                && !synthetic_node
                && !builder.flags(i as NodeId).contains(NodeFlags::SYNTHETIC)
            {
                builder.add_flags(i as NodeId, NodeFlags::EXTERNAL);
            }
        }
        drop(balance);
        let pid = match numbering {
            Numbering::InHeaders => std::process::id(),
            Numbering::InMap { pid } => pid,
        };
        fill_meta(builder.meta_mut(), env, pid);
        let mut graph = builder.finish()?;
        complete(&mut graph, bounds, &size_hints);
        Ok(graph)
    }
}

/// Where and when the snapshot was taken, for the graph's meta data.
///
/// # Safety
/// The GIL must be held.
pub(crate) unsafe fn fill_meta(meta: &mut heaplens_core::graph::SnapshotMeta, env: &Env, pid: u32) {
    meta.python_version = env.python_version.clone();
    meta.producer = format!("heaplens {}", heaplens_core::VERSION);
    meta.pid = pid;
    // The GIL is held; PyGC_IsEnabled reads the collector's flag and runs no code.
    meta.gc_enabled = Some(unsafe { pyo3::ffi::PyGC_IsEnabled() } != 0);
    meta.taken_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
}

/// What a walk learns only once its graph is whole: the bounds containers declare (`bounds`:
/// the declaring object's node, the address of the container it bounds, the bound), the sizes
/// objects name for their containers, and which objects no root reaches.
pub(crate) fn complete(
    graph: &mut Graph,
    bounds: Vec<(NodeId, u64, u64)>,
    size_hints: &[(NodeId, u64)],
) {
    for (declarer, container, bound) in bounds {
        let node = if graph.addr(declarer) == container {
            Some(declarer)
        } else {
            graph
                .targets(declarer)
                .iter()
                .copied()
                .find(|&t| graph.addr(t) == container)
        };
        if let Some(node) = node {
            graph.set_declared_bound(node, bound);
        }
        // An lru_cache reports its entries' keys and results itself (its list links are
        // not objects the collector sees), so it is a bounded container too.
        graph.set_declared_bound(declarer, bound);
    }
    apply_size_hints(graph, size_hints);
    reach::mark_unreachable(graph);
}
