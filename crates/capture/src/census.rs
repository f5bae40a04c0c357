//! The census walks: counts and bytes per type, of gc-tracked objects only (a walk of the GC
//! lists) or of every object (the lists, then every reference, as the snapshot follows them but
//! without building a graph), and the object searches that share them (`by_type`).

use crate::abi::Abi;
use crate::addrmap::AddrMap;
use crate::edges::{self, EdgeSink, BATCH};
use crate::env::Env;
use crate::gc_lists::GcLists;
use crate::labels::Cx;
use crate::raw::{self, Obj};
use crate::registry::{Registry, Tables, TypeEntry, TypeFilter};
use crate::sizeof::shallow_size;
use crate::threads::{self, frame_owner, FrameOwner};
use heaplens_core::census::Census;
use heaplens_core::graph::NodeFlags;
use heaplens_core::label::Label;
use heaplens_core::strings::{StringId, StringTable};
use heaplens_core::types::TypeTable;
use std::marker::PhantomData;

/// The census walk's sink: hands each object outside the GC lists to `visit` the first time it
/// meets it (leaves right away, containers after their references are queued). Like
/// the snapshot's resolver, it queues referents and prefetches them before looking at them.
struct DiscoverySink<'a, A: Abi, F: FnMut(Obj, &TypeEntry)> {
    env: &'static Env,
    abi: PhantomData<A>,
    seen: AddrMap,
    work: Vec<Obj>,
    pending: Vec<(Obj, bool)>,
    registry: &'a mut Registry,
    tables: &'a mut Tables<'a>,
    visit: F,
}

impl<A: Abi, F: FnMut(Obj, &TypeEntry)> DiscoverySink<'_, A, F> {
    fn flush(&mut self) {
        for &(o, _) in &self.pending {
            raw::prefetch(raw::gc_head(o) as *const u8);
            raw::prefetch((o as *const u8).wrapping_add(8));
        }
        for i in 0..self.pending.len() {
            let (o, counted) = self.pending[i];
            // SAFETY: referents are live objects.
            unsafe {
                if raw::is_gc(o) && raw::is_tracked(o) || raw::is_dead::<A>(o) {
                    continue;
                }
                // An object with a single reference cannot have been met before; anything else
                // is new only if the set did not hold it yet.
                let first_time =
                    (counted && raw::singly_referenced::<A>(o)) || self.seen.insert(o as usize);
                if !first_time {
                    continue;
                }
                let index = self
                    .registry
                    .lookup::<A>(self.env, raw::ob_type(o), self.tables);
                let entry = self.registry.entry(index);
                if entry.leaf {
                    (self.visit)(o, entry);
                } else {
                    self.work.push(o);
                }
            }
        }
        self.pending.clear();
    }

    #[inline]
    fn queue(&mut self, o: Obj, counted: bool) {
        self.pending.push((o, counted));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Visits `o` and queues its references.
    unsafe fn visit_container(&mut self, cx: &mut Cx<A>, o: Obj) {
        unsafe {
            let index = self
                .registry
                .lookup::<A>(self.env, raw::ob_type(o), self.tables);
            let entry = std::rc::Rc::clone(self.registry.entry(index));
            (self.visit)(o, &entry);
            edges::object_edges(cx, o, &entry, self);
        }
    }
}

impl<A: Abi, F: FnMut(Obj, &TypeEntry)> EdgeSink for DiscoverySink<'_, A, F> {
    const LABELS: bool = false;

    #[inline]
    fn edge(&mut self, target: Obj, label: Label) {
        self.queue(target, !label.is_weak());
    }

    #[inline]
    fn edge_uncounted(&mut self, target: Obj, _label: Label) {
        self.queue(target, false);
    }

    fn intern(&mut self, _text: &str) -> StringId {
        StringId::EMPTY
    }
}

/// Visits every live object the walk can find, once, with its type entry. With `gc_only`, only
/// the objects of the GC lists (objgraph's view).
unsafe fn for_each_object<'a, A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    gc_only: bool,
    registry: &'a mut Registry,
    tables: &'a mut Tables<'a>,
    mut visit: impl FnMut(Obj, &TypeEntry),
) {
    unsafe {
        if gc_only {
            lists.for_each(|o| {
                let index = registry.lookup::<A>(env, raw::ob_type(o), tables);
                visit(o, registry.entry(index));
            });
            return;
        }
        let mut sink = DiscoverySink::<A, _> {
            env,
            abi: PhantomData,
            seen: AddrMap::new(),
            work: Vec::new(),
            pending: Vec::with_capacity(BATCH),
            registry,
            tables,
            visit,
        };
        let mut cx = Cx::<A>::unlabelled(env);
        lists.for_each(|o| sink.visit_container(&mut cx, o));
        for stack in threads::thread_stacks(env) {
            crate::frame_edges::thread_state_edges(&mut cx, stack.tstate, &mut sink);
            for &iframe in &stack.frames {
                if frame_owner(env.layout, iframe) != FrameOwner::Generator {
                    crate::frame_edges::interpreter_frame_edges(&mut cx, iframe, &mut sink);
                }
            }
        }
        // Containers found outside the lists, a generation at a time so that each batch can be
        // prefetched before it is read.
        sink.flush();
        let mut batch = Vec::new();
        while !sink.work.is_empty() {
            std::mem::swap(&mut batch, &mut sink.work);
            for &o in &batch {
                raw::prefetch(o as *const u8);
            }
            for &o in &batch {
                sink.visit_container(&mut cx, o);
            }
            batch.clear();
            sink.flush();
        }
    }
}

/// Adds one object to per-type counts and bytes.
fn tally<A: Abi>(
    counts: &mut Vec<u64>,
    bytes: &mut Vec<u64>,
    env: &Env,
    o: Obj,
    entry: &TypeEntry,
) {
    let t = entry.id.0 as usize;
    if t >= counts.len() {
        counts.resize(t + 1, 0);
        bytes.resize(t + 1, 0);
    }
    counts[t] += 1;
    // SAFETY: `o` is a live object of the type `entry` describes.
    bytes[t] += unsafe { shallow_size::<A>(env, o, entry) };
}

/// Runs [`for_each_object`] with name tables of its own, which it returns for naming results.
unsafe fn walk_objects<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    gc_only: bool,
    filter: TypeFilter,
    visit: impl FnMut(Obj, &TypeEntry),
) -> (TypeTable, StringTable) {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(filter);
    {
        let mut tables = Tables {
            strings: &mut strings,
            types: &mut types,
        };
        // SAFETY: forwarded from the callers' contracts.
        unsafe { for_each_object::<A>(env, lists, gc_only, &mut registry, &mut tables, visit) };
    }
    (types, strings)
}

/// Counts and bytes per type.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn census<A: Abi>(env: &'static Env, lists: &GcLists, gc_only: bool) -> Census {
    let mut counts: Vec<u64> = Vec::new();
    let mut bytes: Vec<u64> = Vec::new();
    let (types, strings) = unsafe {
        walk_objects::<A>(env, lists, gc_only, TypeFilter::Nothing, |o, entry| {
            tally::<A>(&mut counts, &mut bytes, env, o, entry)
        })
    };
    Census::from_counts(&types, &strings, &counts, &bytes, gc_only)
}

/// Counts and bytes per type of the tracked objects that come after each of `marks` in the
/// collector's order (see [`GcLists::for_each_after`]), in one walk from the first: `marks` are
/// tracked objects, oldest first; the marks themselves are not counted. `None` when a mark is
/// not where the order says (frozen, untracked, or met out of order): no census then.
///
/// What two such censuses of one mark say: taken each right after a collection of the young
/// generations and with no collection of the oldest one between them, the objects before the
/// mark are the same old objects in both (less those that died), so the difference between
/// the two is the difference between the whole heap's two gc-only censuses, less the old
/// objects that died meanwhile. The walk costs the objects tracked since the mark, whatever
/// the size of the heap.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call; every mark must be alive.
pub unsafe fn census_since<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    marks: &[Obj],
) -> Option<Vec<Census>> {
    let first = *marks.first()?;
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Nothing);
    let mut tables = Tables {
        strings: &mut strings,
        types: &mut types,
    };
    let mut counts: Vec<Vec<u64>> = vec![Vec::new(); marks.len()];
    let mut bytes: Vec<Vec<u64>> = vec![Vec::new(); marks.len()];
    // How many marks the walk has passed: an object counts for each of them.
    let mut passed = 1;
    let mut in_order = true;
    // SAFETY: forwarded from the caller's contract; the callback only reads.
    let walked = unsafe {
        lists.for_each_after(first, |o| {
            if marks.contains(&o) {
                in_order &= marks.get(passed) == Some(&o);
                passed += 1;
                return;
            }
            let index = registry.lookup::<A>(env, raw::ob_type(o), &mut tables);
            let entry = registry.entry(index);
            let size = shallow_size::<A>(env, o, entry);
            let t = entry.id.0 as usize;
            for m in 0..passed.min(marks.len()) {
                if t >= counts[m].len() {
                    counts[m].resize(t + 1, 0);
                    bytes[m].resize(t + 1, 0);
                }
                counts[m][t] += 1;
                bytes[m][t] += size;
            }
        })
    };
    if !walked || !in_order || passed != marks.len() {
        return None;
    }
    Some(
        counts
            .iter()
            .zip(&bytes)
            .map(|(c, b)| Census::from_counts(&types, &strings, c, b, true))
            .collect(),
    )
}

/// The objects whose type entry is `matched` under `filter`.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call. The returned pointers are
/// borrowed: the caller must take references before running any Python code or allocating.
pub unsafe fn matching_objects<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    filter: TypeFilter,
    gc_only: bool,
) -> Vec<Obj> {
    let mut found = Vec::new();
    unsafe {
        walk_objects::<A>(env, lists, gc_only, filter, |o, entry| {
            if entry.matched {
                found.push(o);
            }
        })
    };
    found
}

/// The census of the given objects (objgraph's `objects=` argument).
///
/// # Safety
/// The GIL must be held and every pointer must be a live object.
pub unsafe fn census_of<A: Abi>(env: &'static Env, objects: &[Obj]) -> Census {
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
            let index = registry.lookup::<A>(env, raw::ob_type(o), &mut tables);
            tally::<A>(&mut counts, &mut bytes, env, o, registry.entry(index));
        }
    }
    Census::from_counts(&types, &strings, &counts, &bytes, false)
}

/// Every name (`__name__`, `__qualname__`, `module.__name__`, `module.__qualname__`) of every type
/// object the full walk finds, whether or not the type has instances.
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn type_object_names<A: Abi>(env: &'static Env, lists: &GcLists) -> Vec<String> {
    let mut names = Vec::new();
    unsafe {
        walk_objects::<A>(env, lists, false, TypeFilter::Nothing, |o, entry| {
            if entry.node_flags.contains(NodeFlags::TYPE) {
                let (module, name, qualname) =
                    crate::registry::type_names(env.layout, o as raw::Type);
                names.push(format!("{module}.{name}"));
                names.push(format!("{module}.{qualname}"));
                names.push(name);
                names.push(qualname);
            }
        })
    };
    names
}

/// Whether the type `tp` matches `query`.
///
/// # Safety
/// The GIL must be held; `tp` must be a live type.
pub unsafe fn type_matches<A: Abi>(env: &'static Env, tp: raw::Type, query: &str) -> bool {
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut registry = Registry::new(TypeFilter::Named(query.to_string()));
    let mut tables = Tables {
        strings: &mut strings,
        types: &mut types,
    };
    unsafe {
        let index = registry.lookup::<A>(env, tp, &mut tables);
        registry.entry(index).matched
    }
}

/// The live objects at the given addresses (those the walk finds: an address whose object has
/// died is simply absent). With `gc_only`, only gc-tracked objects are looked for, in a walk of
/// the GC lists alone (objgraph's `at()`).
///
/// # Safety
/// The GIL must be held; no Python code may run during the call. The returned pointers are
/// borrowed: the caller must take references before running any Python code or allocating.
pub unsafe fn objects_at<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    wanted: &hashbrown::HashSet<u64>,
    gc_only: bool,
) -> Vec<Obj> {
    let mut found = Vec::new();
    unsafe {
        walk_objects::<A>(env, lists, gc_only, TypeFilter::Nothing, |o, _| {
            if wanted.contains(&(o as u64)) {
                found.push(o);
            }
        })
    };
    found
}

/// The addresses of the gc-tracked objects, grouped by type: `groups[t]` holds those of the type
/// whose [`heaplens_core::types::TypeId`] is `t` in the returned table (objgraph's
/// `get_new_ids`).
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub unsafe fn gc_addresses_by_type<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
) -> (Vec<Vec<u64>>, TypeTable, StringTable) {
    let mut groups: Vec<Vec<u64>> = Vec::new();
    let (types, strings) = unsafe {
        walk_objects::<A>(env, lists, true, TypeFilter::Nothing, |o, entry| {
            let t = entry.id.0 as usize;
            if t >= groups.len() {
                groups.resize_with(t + 1, Vec::new);
            }
            groups[t].push(o as u64);
        })
    };
    (groups, types, strings)
}
