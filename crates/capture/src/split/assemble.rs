//! Joining the parts of a split walk into one graph.

use super::Part;
use crate::abi::Abi;
use crate::recycle::Recycler;
use crate::snapshot::Bits;
use hashbrown::HashMap;
use heaplens_core::graph::{GraphParts, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::strings::{StringId, StringRemap, StringTable};
use heaplens_core::types::{TypeId, TypeInfo, TypeTable};
use std::sync::atomic::AtomicI32;
use std::sync::Mutex;

/// Where the nodes of a split walk are: the tracked objects' ranges, the root, the first
/// provisional id of new nodes and how such ids are packed.
pub(super) struct Ids<'a> {
    pub(super) tracked: usize,
    pub(super) bounds: &'a [usize],
    pub(super) root: NodeId,
    pub(super) base: NodeId,
    pub(super) segment_bits: u32,
}

/// What a run found beside its arrays: its nodes' large sizes and names.
type RunSide = (Vec<(NodeId, u64)>, Vec<(NodeId, StringId)>);

/// The graph's arrays, the objects' size hints, their declared bounds, and the bytes of pages
/// moved into the arrays ([`Recycler`]).
pub(super) type Assembled = (
    GraphParts,
    Vec<(NodeId, u64)>,
    Vec<(NodeId, u64, u64)>,
    usize,
);

/// How a node's type id and flags share a `u32` (as in [`Graph`]).
const TYPE_BITS: u32 = 24;
const TYPE_MASK: u32 = (1 << TYPE_BITS) - 1;

/// One graph from the parts, part after part: each range's tracked objects then the objects
/// first met through them, the thread stacks then what the GIL's thread met, the root then what
/// it met. One string table and one type table; every reference and label renumbered. Each
/// part's arrays are freed as soon as they are copied, so the graph's memory is not needed
/// twice. Returns the graph's arrays with the objects' size hints and declared bounds.
pub(super) fn assemble<A: Abi>(
    parts: &mut [Part<A>],
    ids: Ids<'_>,
    external: &[NodeId],
    balances: Vec<AtomicI32>,
) -> Assembled {
    let Ids {
        tracked,
        bounds,
        root,
        base,
        segment_bits,
    } = ids;
    let workers = bounds.len() - 1;
    let main = workers; // the GIL's thread's part
    let synthetic = (root - tracked as NodeId) as usize;
    // Strings and types.
    let mut strings = StringTable::new();
    let mut types = TypeTable::new();
    let mut by_pointer: HashMap<usize, TypeId> = HashMap::new();
    let mut by_info: HashMap<(u32, u32, u32, u8), TypeId> = HashMap::new();
    let mut remaps: Vec<StringRemap> = Vec::new();
    let mut type_maps: Vec<Vec<TypeId>> = Vec::new();
    for part in parts.iter() {
        let (part_strings, part_types) = (part.r.builder.strings(), part.r.builder.types());
        let remap = strings.merge(part_strings);
        let pointers: HashMap<TypeId, usize> = part.r.share.types.iter().copied().collect();
        let map = part_types
            .iter()
            .map(|(id, t)| {
                let info = TypeInfo {
                    module: remap.map(t.module),
                    name: remap.map(t.name),
                    qualname: remap.map(t.qualname),
                    flags: t.flags,
                };
                let push = |types: &mut TypeTable| types.push(info).unwrap_or(TypeId(0));
                match pointers.get(&id) {
                    Some(&ptr) => *by_pointer.entry(ptr).or_insert_with(|| push(&mut types)),
                    None => *by_info
                        .entry((info.module.0, info.name.0, info.qualname.0, info.flags.0))
                        .or_insert_with(|| push(&mut types)),
                }
            })
            .collect();
        remaps.push(remap);
        type_maps.push(map);
    }
    // Final ids: each part's nodes in one block, its own stubs (tracked range, thread stacks,
    // root) first, then its new nodes.
    let own_stubs: Vec<usize> = (0..parts.len())
        .map(|p| match p {
            p if p < workers => bounds[p + 1] - bounds[p],
            p if p == main => synthetic,
            _ => 1,
        })
        .collect();
    let new_counts: Vec<usize> = parts
        .iter()
        .map(|p| p.r.builder.node_count() - p.r.share.stubs as usize)
        .collect();
    let mut first = Vec::with_capacity(parts.len());
    let mut node_count = 0usize;
    for p in 0..parts.len() {
        first.push(node_count);
        node_count += own_stubs[p] + new_counts[p];
    }
    let mask = (1u32 << segment_bits) - 1;
    // Every reference is renumbered, so the lookup is kept short: where a range's tracked
    // objects and a part's new nodes start, as one addition each.
    let range_shift: Vec<usize> = (0..workers).map(|c| first[c] - bounds[c]).collect();
    let new_first: Vec<usize> = (0..parts.len()).map(|p| first[p] + own_stubs[p]).collect();
    let final_id = |id: NodeId| -> NodeId {
        let id = id as usize;
        if id < tracked {
            // The ranges split the tracked objects evenly (`bounds[c]` is
            // `tracked * c / workers`, rounded down): the estimate is the range or the one
            // before it.
            let mut c = (id as u64 * workers as u64 / tracked as u64) as usize;
            if bounds[c + 1] <= id {
                c += 1;
            }
            debug_assert!(bounds[c] <= id && id < bounds[c + 1]);
            (id + range_shift[c]) as NodeId
        } else if id < root as usize {
            (first[main] + id - tracked) as NodeId
        } else if id == root as usize {
            first[main + 1] as NodeId
        } else {
            let q = (id - base as usize) as u32;
            (new_first[(q & mask) as usize] + (q >> segment_bits) as usize) as NodeId
        }
    };
    let mut outside = Bits::default();
    for &id in external {
        outside.set(final_id(id) as usize);
    }
    // Deferred nodes' facts are in the GIL's thread's part, whose stubs (after the thread
    // stacks) are every worker's deferred nodes, worker after worker, each in node order.
    let mut deferred_start = Vec::with_capacity(workers);
    let mut at = synthetic as NodeId;
    for part in parts.iter().take(workers) {
        deferred_start.push(at);
        at += part.r.share.deferred.len() as NodeId;
    }
    // The arrays: each worker's taken (and freed) by the run that copies it; the GIL's
    // thread's part and the root's read by every run (deferred nodes), freed at the end.
    let mut built: Vec<GraphParts> = parts
        .iter_mut()
        .map(|p| std::mem::take(&mut p.r.builder).into_parts_unchecked())
        .collect();
    // The reference balances, counted: their pages go to the graph's arrays first.
    let part_balances: Vec<Vec<i32>> = parts
        .iter_mut()
        .map(|p| std::mem::take(&mut p.r.balance))
        .collect();
    let root_built = built.pop().expect("the root's part");
    let main_built = built.pop().expect("the GIL's thread's part");
    let worker_built: Vec<Mutex<Option<GraphParts>>> =
        built.into_iter().map(|b| Mutex::new(Some(b))).collect();
    // Read, never changed, by the assembly's threads: no `Rc` in them is cloned or dropped.
    let parts = ReadOnly(&*parts);
    let parts = &parts;
    // The runs: final nodes `first..`, which part `part` holds as its nodes `local..`.
    let mut runs: Vec<Run> = Vec::new();
    for (p, &count) in new_counts.iter().enumerate().take(workers) {
        runs.push(Run::new(first[p], own_stubs[p] + count, p, 0));
    }
    runs.push(Run::new(first[main], synthetic, main, 0));
    runs.push(Run::new(
        first[main] + synthetic,
        new_counts[main],
        main,
        parts[main].r.share.stubs,
    ));
    runs.push(Run::new(
        first[main + 1],
        1 + new_counts[main + 1],
        main + 1,
        0,
    ));
    let edges_in = |b: &GraphParts, n: NodeId| {
        (
            b.offsets[n as usize] as usize,
            b.offsets[n as usize + 1] as usize,
        )
    };
    // Where each node's facts are: a deferred node's are in the GIL's thread's part.
    let redirect = |p: usize, n: NodeId, cursor: &mut usize| -> Option<NodeId> {
        if p < workers {
            let deferred = &parts[p].r.share.deferred;
            if deferred.get(*cursor) == Some(&n) {
                *cursor += 1;
                return Some(deferred_start[p] + *cursor as NodeId - 1);
            }
        }
        None
    };
    let mut edge_count = 0usize;
    for run in &mut runs {
        run.first_edge = edge_count;
        let mut cursor = run.deferred_cursor(parts, workers);
        let guard;
        let own: &GraphParts = match run.part {
            p if p < workers => {
                guard = worker_built[p].lock().unwrap_or_else(|e| e.into_inner());
                guard.as_ref().expect("not yet copied")
            }
            p if p == main => &main_built,
            _ => &root_built,
        };
        for n in run.local..run.local + run.count as NodeId {
            let (from, to) = match redirect(run.part, n, &mut cursor) {
                Some(stub) => edges_in(&main_built, stub),
                None => edges_in(own, n),
            };
            edge_count += to - from;
        }
    }
    let out = Output::with_capacity(node_count, edge_count);
    // The next run to take, and the graph's arrays beyond it, where the pages of the parts
    // copied so far go (see `crate::recycle`): one lock for both, so that no page lands where a run
    // has begun to write.
    let mut recycler = Recycler::new(&out.arrays());
    // SAFETY: no run has begun (frontiers at 0); the balances are not read again.
    unsafe {
        recycler.recycle(balances, &[0; 6]);
        for balance in part_balances {
            recycler.recycle(balance, &[0; 6]);
        }
    }
    let taking = Mutex::new((0usize, recycler));
    let copy_run = |run: &Run| -> RunSide {
        let (mut big, mut named) = (Vec::new(), Vec::new());
        let p = run.part;
        let taken = (p < workers).then(|| {
            worker_built[p]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .expect("each worker's part is copied once")
        });
        let own: &GraphParts = match p {
            p if p < workers => taken.as_ref().expect("taken above"),
            p if p == main => &main_built,
            _ => &root_built,
        };
        let mut cursor = run.deferred_cursor(parts, workers);
        let mut edge = run.first_edge;
        // The run's own part's names, met in node order; a deferred node's by search.
        let mut name_at = own.names.partition_point(|e| e.0 < run.local);
        for j in 0..run.count {
            let id = run.first + j;
            let n = run.local + j as NodeId;
            let (b, fp, fnode) = match redirect(p, n, &mut cursor) {
                Some(stub) => (&main_built, main, stub),
                None => (own, p, n),
            };
            let i = fnode as usize;
            let tf = b.type_and_flags[i];
            let mut flags = NodeFlags((tf >> TYPE_BITS) as u8);
            let ty = type_maps[fp]
                .get((tf & TYPE_MASK) as usize)
                .copied()
                .unwrap_or(TypeId(0));
            if outside.get(id) && !flags.contains(NodeFlags::SYNTHETIC) {
                flags |= NodeFlags::EXTERNAL;
            }
            let (from, to) = edges_in(b, fnode);
            let remap = &remaps[fp];
            // SAFETY: runs are disjoint ranges of nodes and of edges, each written once.
            unsafe {
                out.addrs.write(id, b.addrs[i]);
                out.type_and_flags
                    .write(id, (ty.0 & TYPE_MASK) | ((flags.0 as u32) << TYPE_BITS));
                out.sizes.write(id, b.sizes[i]);
                for e in from..to {
                    out.targets.write(edge, final_id(b.targets[e]));
                    let label = b.labels[e];
                    out.labels.write(
                        edge,
                        match label.name() {
                            Some(s) => label.with_name(remap.map(s)),
                            None => label,
                        },
                    );
                    edge += 1;
                }
                out.offsets.write(id + 1, edge as u32);
            }
            if b.sizes[i] == u16::MAX {
                if let Ok(at) = b.big_sizes.binary_search_by_key(&fnode, |e| e.0) {
                    big.push((id as NodeId, b.big_sizes[at].1));
                }
            }
            let name = if fp == p {
                while name_at < own.names.len() && own.names[name_at].0 < n {
                    name_at += 1;
                }
                own.names.get(name_at).filter(|e| e.0 == n).map(|e| e.1)
            } else {
                b.names
                    .binary_search_by_key(&fnode, |e| e.0)
                    .ok()
                    .map(|at| b.names[at].1)
            };
            if let Some(name) = name {
                named.push((id as NodeId, remap.map(name)));
            }
        }
        if let Some(arrays) = taken {
            let mut guard = taking.lock().unwrap_or_else(|e| e.into_inner());
            let (next, recycler) = &mut *guard;
            let frontiers = Output::frontiers(runs.get(*next));
            // SAFETY: runs are taken under this lock, in the order of the arrays, so no run
            // writes at or beyond the frontiers until it is released; every element is written
            // by the runs before the arrays are read; the part's arrays are not read again.
            unsafe { recycle_part(recycler, arrays, &frontiers) };
            drop(guard);
            give_back_freed_memory();
        }
        (big, named)
    };
    let results: Vec<Mutex<RunSide>> = runs
        .iter()
        .map(|_| Mutex::new(Default::default()))
        .collect();
    let work = || loop {
        let r = {
            let mut guard = taking.lock().unwrap_or_else(|e| e.into_inner());
            guard.0 += 1;
            guard.0 - 1
        };
        let Some(run) = runs.get(r) else { break };
        let copied = copy_run(run);
        *results[r].lock().unwrap_or_else(|p| p.into_inner()) = copied;
    };
    super::on_threads(heaplens_core::parallel::threads(), work);
    let moved = taking.lock().unwrap_or_else(|e| e.into_inner()).1.moved;
    let mut out = GraphParts {
        // SAFETY: the runs cover every node and every edge (and offset 0 is written here).
        addrs: unsafe { out.addrs.finish(node_count) },
        type_and_flags: unsafe { out.type_and_flags.finish(node_count) },
        sizes: unsafe { out.sizes.finish(node_count) },
        offsets: unsafe {
            out.offsets.write(0, 0);
            out.offsets.finish(node_count + 1)
        },
        targets: unsafe { out.targets.finish(edge_count) },
        labels: unsafe { out.labels.finish(edge_count) },
        root: first[main + 1] as NodeId,
        ..GraphParts::default()
    };
    for result in results {
        let (big, named) = result.into_inner().unwrap_or_else(|p| p.into_inner());
        out.big_sizes.extend(big);
        out.names.extend(named);
    }
    out.big_sizes.sort_unstable();
    out.names.sort_unstable();
    out.strings = strings;
    out.types = types;
    let mut hints = Vec::new();
    let mut declared = Vec::new();
    for part in parts.iter() {
        hints.extend(part.r.size_hints.iter().map(|&(h, s)| (final_id(h), s)));
        declared.extend(part.bounds.iter().map(|&(d, c, b)| (final_id(d), c, b)));
    }
    (out, hints, declared, moved)
}

/// The parts, for the assembly's threads to read.
struct ReadOnly<'a, A: Abi>(&'a [Part<A>]);

// SAFETY: the assembly only reads the parts' numbering and deferred nodes; nothing
// in them is written, and no `Rc` they hold is cloned or dropped, while its threads run.
unsafe impl<A: Abi> Sync for ReadOnly<'_, A> {}

impl<A: Abi> std::ops::Deref for ReadOnly<'_, A> {
    type Target = [Part<A>];
    fn deref(&self) -> &[Part<A>] {
        self.0
    }
}

/// Final nodes `first..first + count`, which part `part` holds as its nodes `local..`.
struct Run {
    first: usize,
    count: usize,
    part: usize,
    local: NodeId,
    first_edge: usize,
}

impl Run {
    fn new(first: usize, count: usize, part: usize, local: NodeId) -> Run {
        Run {
            first,
            count,
            part,
            local,
            first_edge: 0,
        }
    }

    /// Where the run's first node stands among its part's deferred nodes.
    fn deferred_cursor<A: Abi>(&self, parts: &[Part<A>], workers: usize) -> usize {
        if self.part < workers {
            parts[self.part]
                .r
                .share
                .deferred
                .partition_point(|&d| d < self.local)
        } else {
            0
        }
    }
}

/// An array the assembly's threads fill, each its own runs of it, every element once.
struct Filled<T> {
    data: Vec<T>,
    at: *mut T,
}

// SAFETY: threads write disjoint elements through `at` (see `assemble`).
unsafe impl<T: Send> Sync for Filled<T> {}

impl<T> Filled<T> {
    fn with_capacity(n: usize) -> Filled<T> {
        let mut data = Vec::with_capacity(n);
        heaplens_core::hugepages::advise(&data);
        let at = data.as_mut_ptr();
        Filled { data, at }
    }

    /// Address, element size and capacity.
    fn layout(&self) -> (usize, usize, usize) {
        (
            self.at as usize,
            std::mem::size_of::<T>(),
            self.data.capacity(),
        )
    }

    /// # Safety
    /// `i` is within the capacity, and no other thread writes it.
    #[inline]
    unsafe fn write(&self, i: usize, value: T) {
        unsafe { self.at.add(i).write(value) }
    }

    /// # Safety
    /// Elements `0..len` have all been written.
    unsafe fn finish(mut self, len: usize) -> Vec<T> {
        unsafe { self.data.set_len(len) };
        self.data
    }
}

/// The assembled graph's arrays.
struct Output {
    addrs: Filled<u64>,
    type_and_flags: Filled<u32>,
    sizes: Filled<u16>,
    offsets: Filled<u32>,
    targets: Filled<NodeId>,
    labels: Filled<Label>,
}

impl Output {
    /// Each array's address, element size and capacity, in the order of [`Output::frontiers`].
    fn arrays(&self) -> [(usize, usize, usize); 6] {
        [
            self.addrs.layout(),
            self.type_and_flags.layout(),
            self.sizes.layout(),
            self.offsets.layout(),
            self.targets.layout(),
            self.labels.layout(),
        ]
    }

    /// For each array, the first element `next` and the runs after it write (none when every
    /// run is taken): a node's facts, its offset (written after it), its references.
    fn frontiers(next: Option<&Run>) -> [usize; 6] {
        match next {
            Some(r) => {
                let (node, edge) = (r.first, r.first_edge);
                [node, node, node, node + 1, edge, edge]
            }
            None => [usize::MAX; 6],
        }
    }

    fn with_capacity(nodes: usize, edges: usize) -> Output {
        Output {
            addrs: Filled::with_capacity(nodes),
            type_and_flags: Filled::with_capacity(nodes),
            sizes: Filled::with_capacity(nodes),
            offsets: Filled::with_capacity(nodes + 1),
            targets: Filled::with_capacity(edges),
            labels: Filled::with_capacity(edges),
        }
    }
}

/// Moves the pages of a part's arrays, copied, into the graph's arrays beyond `frontiers`, and
/// frees them.
///
/// # Safety
/// As [`Recycler::recycle`].
unsafe fn recycle_part(recycler: &mut Recycler, arrays: GraphParts, frontiers: &[usize; 6]) {
    let GraphParts {
        addrs,
        type_and_flags,
        sizes,
        offsets,
        targets,
        labels,
        ..
    } = arrays;
    // SAFETY: the caller's.
    unsafe {
        recycler.recycle(targets, frontiers);
        recycler.recycle(labels, frontiers);
        recycler.recycle(addrs, frontiers);
        recycler.recycle(type_and_flags, frontiers);
        recycler.recycle(offsets, frontiers);
        recycler.recycle(sizes, frontiers);
    }
}

/// Hands the allocator's free memory back to the system ([`heaplens_core::freed`]). A part's
/// arrays, once copied, are freed; glibc keeps memory freed by a thread in that thread's arena
/// (and allocations under its adaptive mmap threshold in its heap), so without this the process'
/// resident memory would hold the parts and the assembled graph at once: twice the graph.
fn give_back_freed_memory() {
    heaplens_core::freed::give_back();
}
