//! The snapshot walk on several threads at once.
//!
//! With the GIL held and no Python code running the heap does not change, so several threads
//! may read it together; what they must not do is call into the interpreter, whose functions
//! find their thread state in a thread-local variable (3.12+) that only the GIL's thread has.
//! So the walk is split three ways:
//!
//! 1. **Workers** (the GIL's thread among them) each take a range of the tracked objects (the
//!    stash numbers them, as for the walk on one thread) and walk them and every object first
//!    met through them, each into a part of the graph of its own: its own nodes, references,
//!    strings and types. An object of a type whose references only its own `tp_traverse`
//!    reports (a C type heaplens has no layout for) is left to step 2.
//! 2. The **GIL's thread** then walks what was left to it, and the thread stacks.
//! 3. It adds the **root**, once every reference count is matched against the references found.
//!
//! Objects several threads may meet (untracked objects with more than one reference: interned
//! strings, small ints, shared tuples) go through one table the threads share, which numbers
//! each once and keeps its balance of references; tracked objects keep theirs in an array of
//! atomic counters. A node's number, while the walk runs, is provisional: a tracked object's is
//! its stash number, a new object's says which part holds it and where. The parts are then
//! assembled into one graph in which every object, reference and label is the one the walk on
//! one thread finds (only the numbering of untracked objects differs).
//!
//! The shared table has a fixed size (a lock-free table cannot grow while others read it):
//! once it is full, a part leaves the references to objects not in it to the GIL's thread,
//! which numbers them in a map of its own after the parts are done (a heap of millions of
//! shared untracked objects, a cache keyed by str its values also hold, walks those on one
//! thread). Where the walk cannot go on at all (the numbers run out, or no part could be
//! walked) it says so and the caller walks on one thread.

use crate::abi::Abi;
use crate::addrmap::AddrMap;
use crate::env::Env;
use crate::gc_lists::{GcLists, Stash};
use crate::labels::Cx;
use crate::registry::{Registry, TypeFilter};
use crate::snapshot::{self, Bits, Pending, Resolver, SnapshotOptions, SnapshotWalk, Synthetic};
use crate::threads;
use hashbrown::HashMap;
use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId, IMMORTAL_ROOT};
use heaplens_core::label::Label;
use share::SharedTable;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Below this many tracked objects a walk on one thread is about as fast (threads cost their
/// start and the assembly a pass over the graph).
pub(crate) const MIN_TRACKED: usize = 200_000;

/// Ranges of tracked objects per thread, and the fewest objects in a range.
const CHUNKS_PER_THREAD: usize = 16;
const MIN_CHUNK: usize = 10_000;

mod assemble;
mod share;

pub(crate) use share::{Claim, Share, UNRESOLVED};

/// Moves a value to another thread. The parts hold raw pointers into the heap being walked
/// (and `Rc`s no other thread sees); the heap does not change while the walk runs, and each
/// part is used by one thread at a time.
struct Handed<T>(T);
// SAFETY: see above.
unsafe impl<T> Send for Handed<T> {}

/// One part of a split walk.
type Part<A> = SnapshotWalk<A, true>;

/// A part of the walk: its own builder, with `share.stubs` nodes, at the addresses `stubs`,
/// numbered before it began.
///
/// # Safety
/// Called on the GIL's thread (the label state reads the interpreter's interned strings).
unsafe fn new_part<A: Abi>(
    env: &'static Env,
    stubs: impl Iterator<Item = u64>,
    share: Share,
) -> Part<A> {
    let count = share.stubs as usize;
    let mut builder = GraphBuilder::new();
    builder.reserve(count * 6, count * 20);
    let mut balance = Vec::with_capacity(count * 6);
    heaplens_core::hugepages::advise(&balance);
    for addr in stubs {
        builder.add_node(addr);
        balance.push(0);
    }
    let mut walk = SnapshotWalk {
        env,
        r: Resolver {
            env,
            abi: PhantomData,
            builder,
            // Unused: a part numbers untracked objects through the shared table.
            map: AddrMap::with_bits(1),
            tracked_in_map: false,
            balance,
            immortal: Bits::default(),
            registry: Registry::new(TypeFilter::Nothing),
            done: Bits::default(),
            pending: Vec::with_capacity(crate::edges::BATCH),
            plan: Vec::with_capacity(crate::edges::BATCH),
            current: 0,
            size_names: Vec::new(),
            size_range: (1, 0),
            size_hints: Vec::new(),
            share,
        },
        cx: Cx::<A>::labelled(env),
        gc_count: 0,
        synthetic_start: 0,
        synthetic: Vec::new(),
        stacks: Vec::new(),
        thread_nodes: Vec::new(),
        next: 0,
        bounds: Vec::new(),
    };
    // The label cache is made when a thread takes the part, and freed when it is done with it:
    // the parts waiting, and those done, do not hold one each.
    walk.cx.release_caches();
    walk.r.share.charges = vec![(0, 0); share::CHARGES];
    walk.cx.intern_names(&mut walk.r);
    walk.r.size_names = snapshot::SIZE_ATTRIBUTES
        .iter()
        .map(|n| walk.r.builder.strings_mut().intern(n))
        .collect();
    let ids = walk.r.size_names.iter().map(|id| id.0);
    walk.r.size_range = (ids.clone().min().unwrap_or(1), ids.max().unwrap_or(0));
    walk
}

/// Takes a snapshot of the whole heap on `threads` threads, or returns `None` where the walk
/// on one thread must take it instead (see the module documentation).
///
/// # Safety
/// The GIL must be held; no Python code may run during the call.
pub(crate) unsafe fn snapshot<A: Abi>(
    env: &'static Env,
    lists: &GcLists,
    options: &SnapshotOptions,
    threads: usize,
) -> Result<Option<Graph>, heaplens_core::Error> {
    unsafe {
        if threads < 2 {
            return Ok(None);
        }
        let mut laps = Laps::start();
        let mut stash = Stash::new(lists);
        laps.lap("stash");
        let tracked = stash.len();
        if tracked < MIN_TRACKED || tracked >= (u32::MAX / 4) as usize {
            return Ok(None); // the stash puts the headers back as it goes
        }
        let stacks = threads::thread_stacks(env);
        let synthetic_count: usize = stacks.iter().map(|s| 1 + s.frames.len()).sum();
        let root = (tracked + synthetic_count) as NodeId;
        let base = root + 1;
        let balances: Vec<AtomicI32> = (0..base).map(|_| AtomicI32::new(0)).collect();
        // Sized for a quarter as many objects as are tracked (about a twentieth of them have
        // been seen in web-app heaps; more are left to the GIL's thread): its 16 bytes a slot
        // are part of the snapshot's peak memory.
        let table = SharedTable::with_capacity(tracked / 4);
        let gave_up = AtomicBool::new(false);
        let chunks_most = threads * CHUNKS_PER_THREAD;
        // The parts: the ranges', the GIL's thread's, the root's.
        let segment_bits = usize::BITS - (chunks_most + 1).leading_zeros();
        let share = |stubs: u32, stub_first: NodeId, segment: usize, may_traverse: bool| Share {
            stubs,
            stub_first,
            base,
            segment: segment as u32,
            segment_bits,
            tracked: tracked as u32,
            balances: balances.as_ptr(),
            table: &table,
            gave_up: &gave_up,
            may_traverse,
            ..Share::default()
        };

        // 1. The workers, each on a range of the tracked objects.
        // Many more ranges than threads, taken in turn: the objects first met through one
        // range can be many more than through another (a list of a million untracked tuples).
        let chunks = (threads * CHUNKS_PER_THREAD)
            .min(tracked / MIN_CHUNK)
            .max(threads);
        // Split evenly: the assembly finds an id's range from this formula.
        let bounds: Vec<usize> = (0..=chunks).map(|c| tracked * c / chunks).collect();
        let slots: Vec<Mutex<Option<Handed<Part<A>>>>> = (0..chunks)
            .map(|c| {
                let (lo, hi) = (bounds[c], bounds[c + 1]);
                let s = share((hi - lo) as u32, lo as NodeId, c, false);
                Mutex::new(Some(Handed(new_part::<A>(
                    env,
                    stash.objects(lo..hi).map(|o| o as u64),
                    s,
                ))))
            })
            .collect();
        laps.lap("parts");
        let taken = AtomicUsize::new(0);
        let interp = crate::cpython::walk_interpreter() as usize;
        let work = || loop {
            let c = taken.fetch_add(1, Ordering::Relaxed);
            if c >= chunks || gave_up.load(Ordering::Relaxed) {
                break;
            }
            let mut slot = slots[c].lock().unwrap_or_else(|p| p.into_inner());
            if let Some(part) = slot.as_mut() {
                part.0.cx.restore_caches();
                part.0.process_pending();
                retire(&mut part.0);
            }
        };
        on_threads(threads, || {
            crate::cpython::set_walk_interpreter(interp as *const u8);
            work()
        });
        laps.lap("ranges");
        if gave_up.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let mut parts: Vec<Part<A>> = slots
            .into_iter()
            .filter_map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .map(|h| h.0)
            .collect();

        // 2. The GIL's thread: the thread stacks, then what the workers left to it.
        let mut stub_ids: Vec<NodeId> = (0..synthetic_count as NodeId)
            .map(|i| tracked as NodeId + i)
            .collect();
        let mut stub_addrs: Vec<u64> = vec![0; synthetic_count];
        for part in &mut parts {
            let deferred = std::mem::take(&mut part.r.share.deferred);
            for &n in &deferred {
                stub_ids.push(part.r.share.id_of(n));
                stub_addrs.push(part.r.builder.addr(n));
            }
            part.r.share.deferred = deferred;
        }
        let mut s = share(stub_ids.len() as u32, 0, chunks, true);
        s.stub_ids = stub_ids;
        let mut main = new_part::<A>(env, stub_addrs.into_iter(), s);
        let mut thread_nodes = Vec::new();
        let mut at = 0;
        for (i, stack) in stacks.iter().enumerate() {
            let name = options.thread_name(stack.thread_id);
            main.r
                .builder
                .set_synthetic(at as NodeId, "(thread)", &name, NodeFlags::THREAD);
            thread_nodes.push((tracked as NodeId + at as NodeId, name));
            main.synthetic.push(Synthetic::Thread { stack: i });
            at += 1;
            for &iframe in &stack.frames {
                let name = threads::frame_name::<A>(env, iframe);
                main.r
                    .builder
                    .set_synthetic(at as NodeId, "(frame)", &name, NodeFlags::FRAME);
                main.synthetic.push(Synthetic::Frame { iframe });
                at += 1;
            }
        }
        main.stacks = stacks;
        main.cx.restore_caches();
        main.process_pending();
        // The references the workers could not number: through the GIL's thread's map.
        for part in &mut parts {
            for (edge, o, counted) in std::mem::take(&mut part.r.share.unresolved) {
                let next = main.r.builder.node_count() as NodeId;
                let id_if_new = main.r.share.id_of(next);
                let id = match main.r.share.table().find(o as usize) {
                    // Numbered in the table after all (by a part that found room first).
                    Some(slot) => {
                        let id = main.r.share.table().id_at(slot);
                        if counted {
                            main.r.share.charge_slot(slot);
                        }
                        id
                    }
                    None => {
                        let (id, new) = main.r.map.get_or_insert_with(o as usize, || id_if_new);
                        if new {
                            main.r.new_node(o);
                        }
                        if counted {
                            main.r.share.charge(id, &mut main.r.balance);
                        }
                        id
                    }
                };
                part.r.builder.set_target(edge, id);
            }
        }
        main.process_pending();
        retire(&mut main);
        laps.lap("GIL's thread");
        if gave_up.load(Ordering::Relaxed) {
            return Ok(None);
        }
        parts.push(main);

        // 3. The root: modules, threads, and every object with references from outside.
        let numbers = Numbers {
            tracked,
            base,
            segment_bits,
        };
        let outside = held_from_outside(&parts, &balances, &table, numbers);
        let immortal: Vec<NodeId> = parts
            .iter()
            .flat_map(|part| {
                let share = &part.r.share;
                part.r.immortal.ones().map(|n| share.id_of(n as NodeId))
            })
            .collect();
        let mut root_part = new_part::<A>(env, std::iter::once(0), {
            let mut s = share(1, root, chunks + 1, true);
            s.stub_ids = vec![root];
            s
        });
        root_part
            .r
            .builder
            .set_synthetic(0, "(root)", "roots", NodeFlags::empty());
        root_part.thread_nodes = thread_nodes;
        // What the GIL's thread numbered outside the full table, the root's part finds there.
        root_part.r.map = std::mem::replace(&mut parts[chunks].r.map, AddrMap::with_bits(1));
        root_part.cx.restore_caches();
        root_part.queue_named_roots();
        root_part.r.flush();
        for &id in &outside {
            root_part.r.queue(Pending::Node(id, Label::root_external()));
        }
        let interpreter = root_part.r.builder.strings_mut().intern(IMMORTAL_ROOT);
        for &id in &immortal {
            root_part
                .r
                .queue(Pending::Node(id, Label::root(interpreter)));
        }
        root_part.r.end_node();
        root_part.next = 1;
        root_part.process_pending();
        retire(&mut root_part);
        laps.lap("root");
        stash.restore();
        drop(stash);
        laps.lap("restore");
        if gave_up.load(Ordering::Relaxed) {
            return Ok(None);
        }
        parts.push(root_part);
        // Flagged as held from outside: every object whose count still exceeds the references
        // found, now that the root's part has walked what it met (as the walk on one thread
        // flags them once its last node is done). The shared table goes before the assembly
        // needs its memory; the balances' pages go into the graph's arrays (`crate::recycle`).
        let external = held_from_outside(&parts, &balances, &table, numbers);
        drop(table);

        let assembled = assemble::assemble(
            &mut parts,
            assemble::Ids {
                tracked,
                bounds: &bounds,
                root,
                base,
                segment_bits,
            },
            &external,
            balances,
        );
        drop(parts);
        laps.lap("assembly");
        let (mut parts, hints, declared, moved) = assembled;
        snapshot::fill_meta(&mut parts.meta, env, std::process::id());
        let mut graph = Graph::from_own_parts(parts)?;
        snapshot::complete(&mut graph, declared, &hints);
        laps.lap("reachability and bounds");
        laps.log(threads, moved);
        Ok(Some(graph))
    }
}

/// Where a split walk's time goes, phase by phase, in the debug log (`heaplens.capture`), with
/// the pages the assembly reused (`crate::recycle`): the figures bench/README's account of the
/// walk's time is read from. A few clock reads a walk.
struct Laps {
    at: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            at: std::time::Instant::now(),
            laps: Vec::with_capacity(8),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((phase, (now - self.at).as_secs_f64()));
        self.at = now;
    }

    fn log(&self, threads: usize, moved: usize) {
        if log::log_enabled!(target: "heaplens.capture", log::Level::Debug) {
            let laps: Vec<String> = self
                .laps
                .iter()
                .map(|(phase, s)| format!("{phase} {s:.3} s"))
                .collect();
            log::debug!(
                target: "heaplens.capture",
                "split walk on {threads} threads: {}; {:.1} MB of pages moved into the graph",
                laps.join(", "),
                moved as f64 / 1e6
            );
        }
    }
}

/// Runs `work` on this thread and on `threads - 1` more, until each returns. A thread that
/// cannot start leaves its share to the others (`work` takes its pieces from a common pool).
fn on_threads(threads: usize, work: impl Fn() + Sync) {
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("heaplens-walk".into())
                    .spawn_scoped(scope, &work)
                    .ok()
            })
            .collect();
        work();
        for h in helpers {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// Ends a part's walk: its charges against shared balances written, and what only the walk
/// needed (label cache, queues, its registry of types, but for the type objects behind its
/// type ids) freed before the assembly needs the memory.
fn retire<A: Abi>(part: &mut Part<A>) {
    part.r.share.settle_charges();
    part.r.share.types = part.r.registry.type_pointers().collect();
    part.r.registry = Registry::new(TypeFilter::Nothing);
    part.cx.release_caches();
    part.r.done = Bits::default();
    part.r.pending = Vec::new();
    part.r.plan = Vec::new();
}

/// How provisional ids are made: tracked objects `0..tracked`, new nodes from `base` with the
/// part in their low `segment_bits`.
#[derive(Clone, Copy)]
struct Numbers {
    tracked: usize,
    base: NodeId,
    segment_bits: u32,
}

/// The provisional ids of the objects whose reference count exceeds the references the parts
/// found to them: referenced from outside the heap.
fn held_from_outside<A: Abi>(
    parts: &[Part<A>],
    balances: &[AtomicI32],
    table: &SharedTable,
    numbers: Numbers,
) -> Vec<NodeId> {
    let Numbers {
        tracked,
        base,
        segment_bits,
    } = numbers;
    // What a part found to nodes of other parts (a few objects left to the GIL's thread).
    let mut foreign: HashMap<NodeId, i32> = HashMap::new();
    for part in parts {
        for &(id, delta) in &part.r.share.foreign {
            *foreign.entry(id).or_insert(0) += delta;
        }
    }
    let mut outside: Vec<NodeId> = (0..tracked)
        .filter(|&i| balances[i].load(Ordering::Relaxed) > 0)
        .map(|i| i as NodeId)
        .collect();
    outside.extend(table.entries().filter(|&(_, b)| b > 0).map(|(id, _)| id));
    for part in parts {
        // New nodes not numbered through the table keep their balance in their part.
        let share = &part.r.share;
        let new = &part.r.balance[share.stubs as usize..];
        for (k, &b) in new.iter().enumerate() {
            let n = share.stubs + k as NodeId;
            if b > 0 && !share.mapped.get(n as usize) && !foreign.contains_key(&share.id_of(n)) {
                outside.push(share.id_of(n));
            }
        }
    }
    let mask = (1u32 << segment_bits) - 1;
    for (&id, &delta) in &foreign {
        let q = id - base;
        let Some(part) = parts.get((q & mask) as usize) else {
            continue;
        };
        let n = part.r.share.stubs + (q >> segment_bits);
        if !part.r.share.mapped.get(n as usize) && part.r.balance[n as usize] + delta > 0 {
            outside.push(id);
        }
    }
    outside
}
