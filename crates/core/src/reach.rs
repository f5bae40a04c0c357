//! Reachability from the roots: which objects no root reaches (cyclic garbage not yet collected).
//!
//! A breadth-first search from the synthetic root over strong edges (weak references keep nothing
//! alive). Iterative, with a bit set and one queue: no recursion, so a million-deep linked list
//! cannot overflow the stack. On a big graph, with more than one thread allowed, the search runs
//! on several threads (see [`reachable_on_threads`]): the snapshot marks what no root reaches
//! after its walk, on the threads the walk used.

use crate::graph::{Graph, NodeFlags, NodeId};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};

/// Below this many references the search on one thread is about as fast as starting others.
const PARALLEL_FROM_EDGES: usize = 1 << 20;

/// A fixed-size bit set over node ids.
#[derive(Clone, Debug)]
pub struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    pub fn new(len: usize) -> Self {
        NodeSet {
            words: vec![0; len.div_ceil(64)],
        }
    }
    #[inline]
    pub fn contains(&self, n: NodeId) -> bool {
        self.words[(n / 64) as usize] & (1 << (n % 64)) != 0
    }
    /// Removes `n`.
    #[inline]
    pub fn remove(&mut self, n: NodeId) {
        self.words[(n / 64) as usize] &= !(1 << (n % 64));
    }
    /// Adds `n`; returns whether it was new.
    #[inline]
    pub fn insert(&mut self, n: NodeId) -> bool {
        let w = &mut self.words[(n / 64) as usize];
        let bit = 1 << (n % 64);
        let new = *w & bit == 0;
        *w |= bit;
        new
    }
}

/// The nodes reachable from `start` over strong edges.
pub fn reachable_from(graph: &Graph, start: NodeId) -> NodeSet {
    let threads = crate::parallel::threads();
    if threads >= 2 && graph.edge_count() >= PARALLEL_FROM_EDGES {
        return reachable_on_threads(graph, start, threads);
    }
    reachable_on_one_thread(graph, start)
}

fn reachable_on_one_thread(graph: &Graph, start: NodeId) -> NodeSet {
    let mut seen = NodeSet::new(graph.node_count());
    // Room for the most the queue holds (see below) at once: a queue that grows by doubling
    // leaves each of its old copies behind in the allocator, written, which raised a snapshot's
    // peak memory. Room never written costs address space only.
    let mut queue = Vec::with_capacity(graph.node_count().min(1 << 21) + 1);
    queue.push(start);
    seen.insert(start);
    let mut head = 0;
    while head < queue.len() {
        let n = queue[head];
        head += 1;
        for (&t, l) in graph.targets(n).iter().zip(graph.labels(n)) {
            if !l.is_weak() && seen.insert(t) {
                queue.push(t);
            }
        }
        // Keep the queue from holding every node at once on wide graphs: drop the consumed prefix.
        if head > 1 << 20 && head * 2 > queue.len() {
            queue.drain(..head);
            head = 0;
        }
    }
    seen
}

/// [`reachable_from`] on `threads` threads: each searches depth first from nodes of its own, and
/// hands half of them to a thread that has run out.
///
/// Nodes are marked seen in a byte each, by plain stores: two threads may both find a node new
/// and both search from it (the second search finds its references seen), which costs far less
/// than an atomic read-modify-write for every node, and a byte, unlike a bit, is never lost to
/// another thread's write of the same word. The bytes become a [`NodeSet`] at the end.
pub fn reachable_on_threads(graph: &Graph, start: NodeId, threads: usize) -> NodeSet {
    let count = graph.node_count();
    let seen = search_on_threads(count, start, threads, |n, seen, stack| {
        for (&t, l) in graph.targets(n).iter().zip(graph.labels(n)) {
            let mark = &seen[t as usize];
            if !l.is_weak() && mark.load(Ordering::Relaxed) == 0 {
                mark.store(1, Ordering::Relaxed);
                stack.push(t);
            }
        }
    });
    let mut set = NodeSet::new(count);
    for (n, mark) in seen.iter().enumerate() {
        if mark.load(Ordering::Relaxed) != 0 {
            set.words[n / 64] |= 1 << (n % 64);
        }
    }
    set
}

/// The threads' share of [`reachable_on_threads`]: a depth-first search of `count` nodes from
/// `start`, where `expand(n, seen, stack)` marks the nodes `n` leads to that are not yet seen
/// and pushes them. Returns the marks.
///
/// A thread that panics (a graph assembled wrongly: a reference past the last node) counts
/// itself out, so that the others stop waiting for work it will never hand out and the panic
/// reaches the caller: an error, where it used to leave the program hanging with the GIL held.
fn search_on_threads<F>(count: usize, start: NodeId, threads: usize, expand: F) -> Vec<AtomicU8>
where
    F: Fn(NodeId, &[AtomicU8], &mut Vec<NodeId>) + Sync,
{
    /// A thread hands work out only when it has this many nodes to search from, and hands half.
    const SHARE_FROM: usize = 64;
    let seen: Vec<AtomicU8> = (0..count).map(|_| AtomicU8::new(0)).collect();
    let pool = Mutex::new(Pool {
        batches: Vec::new(),
        idle: 0,
        searching: 1, // this thread, with `start`
        abandoned: false,
    });
    let woken = Condvar::new();
    let hungry = AtomicBool::new(false);
    let search = |mut stack: Vec<NodeId>| {
        let _leaving = LeaveOnPanic {
            pool: &pool,
            woken: &woken,
        };
        loop {
            while let Some(n) = stack.pop() {
                expand(n, &seen, &mut stack);
                if stack.len() >= SHARE_FROM && hungry.load(Ordering::Relaxed) {
                    // The bottom of the stack: nodes nearest the start, with the most below them.
                    let half: Vec<NodeId> = stack.drain(..stack.len() / 2).collect();
                    let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
                    p.batches.push(half);
                    hungry.store(false, Ordering::Relaxed);
                    drop(p);
                    woken.notify_one();
                }
            }
            let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
            p.idle += 1;
            loop {
                if let Some(batch) = p.batches.pop() {
                    p.idle -= 1;
                    hungry.store(p.idle > 0, Ordering::Relaxed);
                    stack = batch;
                    break;
                }
                if p.idle == p.searching || p.abandoned {
                    // No thread has work left, and none can make more (or one gave up: its
                    // panic ends the search).
                    drop(p);
                    woken.notify_all();
                    return;
                }
                hungry.store(true, Ordering::Relaxed);
                p = woken.wait(p).unwrap_or_else(|e| e.into_inner());
            }
        }
    };
    seen[start as usize].store(1, Ordering::Relaxed);
    std::thread::scope(|scope| {
        for _ in 1..threads {
            let joined = std::thread::Builder::new()
                .name("heaplens-reach".into())
                .spawn_scoped(scope, || {
                    // A thread that starts after the others are done finds nothing to do.
                    pool.lock().unwrap_or_else(|e| e.into_inner()).searching += 1;
                    search(Vec::new())
                });
            if joined.is_err() {
                break; // the threads started share the work
            }
        }
        let mut stack = Vec::with_capacity(count.min(1 << 20));
        stack.push(start);
        search(stack);
    });
    seen
}

/// What the threads of [`search_on_threads`] share: work handed out, and who is waiting.
struct Pool {
    batches: Vec<Vec<NodeId>>,
    idle: usize,
    searching: usize,
    /// A thread panicked: the others stop rather than wait for its work.
    abandoned: bool,
}

/// Marks the search abandoned when its thread unwinds (see [`search_on_threads`]).
struct LeaveOnPanic<'a> {
    pool: &'a Mutex<Pool>,
    woken: &'a Condvar,
}

impl Drop for LeaveOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The pool's lock is free: a panic while holding it has dropped its guard already.
            self.pool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .abandoned = true;
            self.woken.notify_all();
        }
    }
}

/// Marks every object the root does not reach as [`NodeFlags::UNREACHABLE`] and returns how many
/// there are.
pub fn mark_unreachable(graph: &mut Graph) -> usize {
    let seen = reachable_from(graph, graph.root());
    let mut count = 0;
    for n in 0..graph.node_count() as NodeId {
        if !seen.contains(n) && !graph.flags(n).contains(NodeFlags::SYNTHETIC) {
            graph.add_flags(n, NodeFlags::UNREACHABLE);
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::sample;
    use crate::graph::GraphBuilder;
    use crate::label::Label;

    #[test]
    fn a_cycle_no_root_reaches_is_marked_unreachable() {
        let mut g = sample();
        assert_eq!(mark_unreachable(&mut g), 2);
        assert!(g.flags(5).contains(NodeFlags::UNREACHABLE));
        assert!(g.flags(6).contains(NodeFlags::UNREACHABLE));
        assert!(!g.flags(3).contains(NodeFlags::UNREACHABLE));
    }

    #[test]
    fn weak_references_do_not_make_objects_reachable() {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("weakref", "ReferenceType", "ReferenceType");
        let wr = b.add_node(0x10);
        let target = b.add_node(0x20);
        b.set_node(wr, t, 80, NodeFlags::GC_TRACKED);
        b.push_edge(target, Label::referent());
        b.end_node();
        b.set_node(target, t, 80, NodeFlags::GC_TRACKED);
        b.end_node();
        b.add_root_node();
        b.push_edge(wr, Label::root_external());
        b.end_node();
        let mut g = b.finish().unwrap();
        assert_eq!(mark_unreachable(&mut g), 1);
        assert!(g.flags(target).contains(NodeFlags::UNREACHABLE));
    }

    #[test]
    fn a_million_deep_chain_does_not_overflow_the_stack() {
        let mut g = crate::graph::tests::chain(1_000_000, 64);
        assert_eq!(mark_unreachable(&mut g), 0);
        let root = g.root();
        let on_threads = reachable_on_threads(&g, root, 3);
        assert!((0..g.node_count() as NodeId).all(|n| on_threads.contains(n)));
    }

    /// The search of a binary tree of `count` nodes (node n leads to 2n+1 and 2n+2) on four
    /// threads, whose expansion panics at node `fails_at`: whether it returned (by a panic) within
    /// a minute, rather than leaving its threads waiting for ever.
    fn search_that_fails_at(count: u32, fails_at: NodeId) -> bool {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(|| {
                search_on_threads(count as usize, 0, 4, |n, seen, stack| {
                    assert_ne!(n, fails_at, "a reference past the last node");
                    for t in [2 * n + 1, 2 * n + 2].into_iter().filter(|&t| t < count) {
                        if seen[t as usize].swap(1, Ordering::Relaxed) == 0 {
                            stack.push(t);
                        }
                    }
                })
            });
            let _ = done.send(outcome.is_err());
        });
        finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the search still runs a minute after one of its threads panicked")
    }

    #[test]
    fn a_thread_that_panics_ends_the_search_instead_of_leaving_the_others_waiting() {
        // The first node: this thread panics before any work is handed out, while the others
        // wait for some.
        assert!(search_that_fails_at(1 << 18, 0));
        // Deep in the tree, once the work is shared: on whichever thread reaches it.
        assert!(search_that_fails_at(1 << 18, (1 << 17) + 12_345));
    }

    /// A graph of `count` objects with pseudo-random references (some weak), hubs with
    /// thousands of them, and islands no root reaches; the root holds a few.
    fn tangle(count: u32) -> Graph {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("builtins", "object", "object");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |below: u32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as u32
        };
        for n in 0..count {
            b.add_node(0x1000 + 16 * n as u64);
        }
        for n in 0..count {
            b.set_node(n, t, 16, NodeFlags::GC_TRACKED);
            // The last tenth refers only among itself: unreachable unless a weak edge leads there.
            let island = n >= count / 10 * 9;
            let references = if n % 5000 == 0 { 3000 } else { next(4) };
            for _ in 0..references {
                let target = if island {
                    count / 10 * 9 + next(count / 10)
                } else {
                    next(count)
                };
                if next(7) == 0 {
                    b.push_edge(target, Label::referent());
                } else {
                    b.push_edge(target, Label::index(0));
                }
            }
            b.end_node();
        }
        b.add_root_node();
        for n in (0..count / 10 * 9).step_by(50_000) {
            b.push_edge(n, Label::root_external());
        }
        b.end_node();
        b.finish().unwrap()
    }

    #[test]
    fn the_search_on_threads_finds_what_the_search_on_one_thread_finds() {
        let g = tangle(200_000);
        let expected = reachable_on_one_thread(&g, g.root());
        let reached = (0..g.node_count() as NodeId)
            .filter(|&n| expected.contains(n))
            .count();
        assert!(
            reached > 1000 && reached < g.node_count() - 1000,
            "{reached}"
        );
        for threads in 1..=4 {
            let found = reachable_on_threads(&g, g.root(), threads);
            for n in 0..g.node_count() as NodeId {
                assert_eq!(
                    found.contains(n),
                    expected.contains(n),
                    "node {n}, {threads} threads"
                );
            }
        }
    }
}
