//! The GC generation lists: every object the cyclic collector tracks, found without
//! `gc.get_objects()` (which would allocate a list of them all).
//!
//! CPython keeps tracked objects in doubly linked lists (three generations, or 3.14.0-3.14.4's
//! young and two old spaces at the same places, and the permanent generation of `gc.freeze()`),
//! threaded through the `PyGC_Head` in front of each object. The walk follows `_gc_next`, less
//! the flag bits some versions keep in it ([`crate::env::Env::gc_next_flags`]). To number these objects without a hash map (a map of ten million
//! addresses would cost more memory than the graph itself), the snapshot writes each object's node
//! id into its `_gc_prev` word for the duration of the walk, as the collector itself does with
//! reference counts during a collection, and puts every `_gc_prev` back when done ([`Stash`]
//! restores on drop, so also on a panic). The GIL is held throughout and no Python code runs, so
//! nothing can observe the borrowed words; the two flag bits CPython keeps in `_gc_prev` are left
//! untouched, and bit 2 (always 0 in a real, 8-aligned pointer) marks a stashed id.

use crate::blocks::Blocks;
use crate::env::Env;
use crate::layout::GC_PREV_FLAG_BITS;
use crate::raw::{self, read, Obj};
use pyo3::ffi;

/// The list heads of the running interpreter.
pub struct GcLists {
    heads: Vec<*mut usize>,
    /// Bits of `_gc_next` that are flags, not part of the pointer.
    next_flags: usize,
}

/// Why the lists cannot be walked now.
#[derive(Debug)]
pub enum ListsError {
    /// A garbage collection is in progress (the capture was called from a finalizer or a gc
    /// callback): objects are in the collector's private lists.
    CollectionRunning,
}

impl GcLists {
    /// # Safety
    /// The GIL must be held.
    pub unsafe fn of_current_interpreter(env: &Env) -> Result<GcLists, ListsError> {
        let l = env.layout;
        unsafe {
            let interp = ffi::PyInterpreterState_Get() as *const u8;
            let gc = interp.add(l.interp_gc);
            if read::<i32>(gc, l.gc_collecting) != 0 {
                return Err(ListsError::CollectionRunning);
            }
            let mut heads = Vec::with_capacity(l.gc_generation_count + 1);
            for i in 0..l.gc_generation_count {
                heads.push(gc.add(l.gc_generations + i * l.gc_generation_size) as *mut usize);
            }
            heads.push(gc.add(l.gc_permanent_generation) as *mut usize);
            Ok(GcLists {
                heads,
                next_flags: env.gc_next_flags,
            })
        }
    }

    /// Calls `f` with every tracked object, generation by generation (in no useful order).
    ///
    /// # Safety
    /// The GIL must be held and `f` must not track or untrack objects.
    #[inline]
    pub unsafe fn for_each(&self, mut f: impl FnMut(Obj)) {
        for &head in &self.heads {
            unsafe { walk_list(head, self.next_flags, &mut f) };
        }
    }

    /// Calls `f`, oldest first, with every tracked object that comes after the tracked object
    /// `mark` in the collectors' order: the rest of `mark`'s list, then each younger
    /// generation's whole list. Returns false when `mark` is not tracked or is in the permanent
    /// generation (`gc.freeze()`), where there is no such order (then `f` may have seen some
    /// objects: the caller discards what it counted).
    ///
    /// Why this is the set of objects tracked since `mark` was: a new object is appended to the
    /// youngest list, and a collection only appends (the survivors of a young list at the end of
    /// the next older one; a revived object at the end of the list being collected), so an
    /// object tracked after `mark` stays after it. Older objects can come after it too: a dict
    /// tracked again, an object the collector revived, and, after a collection of the oldest
    /// generation, any object: the caller compares two walks that follow young collections (see
    /// `census::census_since`).
    ///
    /// # Safety
    /// The GIL must be held, no collection running, `mark` a live object, and `f` must not track
    /// or untrack objects.
    pub unsafe fn for_each_after(&self, mark: Obj, mut f: impl FnMut(Obj)) -> bool {
        unsafe {
            if !raw::is_gc(mark) || !raw::is_tracked(mark) {
                return false;
            }
            let young = self.heads.len() - 1; // the generations; the last head is the permanent one
            let mut node = (*raw::gc_head(mark) & !self.next_flags) as *mut usize;
            let list = loop {
                if let Some(i) = self.heads.iter().position(|&h| h == node) {
                    break i;
                }
                f(node.add(2) as Obj);
                node = (*node & !self.next_flags) as *mut usize;
            };
            if list >= young {
                return false;
            }
            for &head in self.heads[..list].iter().rev() {
                let mut node = (*head & !self.next_flags) as *mut usize;
                while node != head {
                    f(node.add(2) as Obj);
                    node = (*node & !self.next_flags) as *mut usize;
                }
            }
            true
        }
    }
}

/// Visits every node of one list, from both ends at once: the forward chase (`_gc_next`) and the
/// backward chase (`_gc_prev`) are independent chains of cache misses, so walking both halves
/// together takes about half the time of one long chase. `f` is called with the front's and the
/// back's nodes in turn, front first (with an odd count, the last call is the middle node, from
/// the front): the `k`-th call is the `k/2`-th node from the front for even `k`, from the back
/// for odd `k`. The neighbours of a node are read before `f` sees it, so `f` may overwrite the
/// node's `_gc_prev` (the stash does).
///
/// # Safety
/// `head` must be a GC list head of the running interpreter, the GIL held, and no collection
/// running.
#[inline(always)]
unsafe fn walk_list(head: *mut usize, next_flags: usize, mut f: impl FnMut(Obj)) {
    unsafe {
        let mut lo = (*head & !next_flags) as *mut usize;
        if lo == head {
            return;
        }
        let mut hi = (*head.add(1) & !GC_PREV_FLAG_BITS) as *mut usize;
        let mut lo_guess = Strides::default();
        let mut hi_guess = Strides::default();
        loop {
            if lo == hi {
                f(lo.add(2) as Obj);
                return;
            }
            let lo_next = (*lo & !next_flags) as *mut usize;
            let hi_prev = (*hi.add(1) & !GC_PREV_FLAG_BITS) as *mut usize;
            lo_guess.step(lo as usize, lo_next as usize);
            hi_guess.step(hi as usize, hi_prev as usize);
            f(lo.add(2) as Obj);
            f(hi.add(2) as Obj);
            if lo_next == hi {
                return;
            }
            if lo_next == hi_prev {
                f(lo_next.add(2) as Obj);
                return;
            }
            lo = lo_next;
            hi = hi_prev;
        }
    }
}

/// The last few steps of a chase through a list, to guess where the node after the next one is.
///
/// A chase waits for each node before it can load the next: one cache miss at a time. But the
/// collector's lists mostly follow the order objects were made in, and the allocator hands out
/// blocks of one size class one after another, so the step from a node to the next often repeats
/// one of the last few (half the time in `heap_bench.py`'s heap, to the cache line). Loading the
/// nodes those steps lead to, while the next one is loaded, puts two misses in flight where the
/// guess is right; where it is wrong, the loads are of memory nobody reads (a prefetch never
/// faults).
#[derive(Default)]
struct Strides {
    last: [usize; 4],
    at: usize,
}

impl Strides {
    #[inline(always)]
    fn step(&mut self, from: usize, to: usize) {
        self.last[self.at & 3] = to.wrapping_sub(from);
        self.at += 1;
        for d in self.last {
            crate::prefetch::prefetch(to.wrapping_add(d) as *const u8);
        }
    }
}

const STASH_MARK: usize = 0b100;
const STASH_SHIFT: u32 = 3;

/// Node ids stashed in `_gc_prev` for the length of a walk; see the module documentation.
///
/// The ids are the order the chase met the objects in (both ends of each list at once, see
/// [`walk_list`]), and the stash keeps that one record of them: the walks read their tracked
/// objects from it, and [`Stash::restore`] rebuilds each list's order from it. It grows in
/// blocks that never move: an array that grows by copying leaves its old copies in the
/// allocator, where they would add to the snapshot's peak memory (a tenth of it on a heap of a
/// million objects).
pub struct Stash<'a> {
    lists: &'a GcLists,
    /// Every tracked object, by id.
    objects: Blocks<Obj>,
    /// How many objects each list holds (their ids follow each other, list after list).
    lengths: Vec<usize>,
    active: bool,
}

impl<'a> Stash<'a> {
    /// Numbers every tracked object, `0..len()` in the order the chase meets them, and stashes
    /// the number in its header.
    ///
    /// # Safety
    /// The GIL must be held for the whole life of the returned value, and no Python code may run
    /// until it is dropped.
    pub unsafe fn new(lists: &'a GcLists) -> Stash<'a> {
        let mut stash = Stash {
            lists,
            objects: Blocks::default(),
            lengths: Vec::with_capacity(lists.heads.len()),
            active: true,
        };
        for &head in &lists.heads {
            let before = stash.objects.len();
            // SAFETY: the lists are well formed while the GIL is held; walk_list reads each
            // node's neighbours before the callback overwrites its _gc_prev.
            unsafe {
                walk_list(head, lists.next_flags, |o| {
                    let id = stash.objects.len();
                    let prev = raw::gc_head(o).add(1);
                    *prev = (id << STASH_SHIFT) | STASH_MARK | (*prev & GC_PREV_FLAG_BITS);
                    stash.objects.push(o);
                });
            }
            stash.lengths.push(stash.objects.len() - before);
        }
        stash
    }

    /// How many objects are numbered.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The objects numbered `ids`, in order.
    pub fn objects(&self, ids: std::ops::Range<usize>) -> impl Iterator<Item = Obj> + '_ {
        self.objects
            .slices(ids)
            .flat_map(|(_, s)| s.iter().copied())
    }

    /// The node id of `o` if it is a tracked object numbered by this stash.
    ///
    /// # Safety
    /// `o` must be a live object; the stash must be active.
    #[inline(always)]
    pub unsafe fn lookup(o: Obj) -> Option<u32> {
        unsafe {
            if !raw::is_gc(o) {
                return None;
            }
            let head = raw::gc_head(o);
            if *head == 0 {
                return None;
            }
            let prev = *head.add(1);
            if prev & STASH_MARK == 0 {
                return None;
            }
            Some((prev >> STASH_SHIFT) as u32)
        }
    }

    /// Puts every `_gc_prev` back: each node's previous node in its list, flags kept. Reads the
    /// recorded order rather than chasing `_gc_next` again, so the writes do not wait on each
    /// other's cache misses. A list's ids alternate between its two ends ([`walk_list`]): the
    /// even ones are its front half in order, the odd ones its back half from the tail.
    pub fn restore(&mut self) {
        if !self.active {
            return;
        }
        let mut start = 0;
        for (&head, &len) in self.lists.heads.iter().zip(&self.lengths) {
            let mut prev = head as usize;
            let mut link = |o: &Obj| {
                let node = raw::gc_head(*o);
                // SAFETY: the object is tracked (only its _gc_prev word was changed) and the
                // GIL is held.
                unsafe {
                    let slot = node.add(1);
                    *slot = prev | (*slot & GC_PREV_FLAG_BITS);
                }
                prev = node as usize;
            };
            // Every other id from the half's first: a slice's first such id is at its offset 0
            // or 1, by its distance from that first id.
            for (first, s) in self.objects.slices(start..start + len) {
                s[(first - start) & 1..]
                    .iter()
                    .step_by(2)
                    .for_each(&mut link);
            }
            let back = start + 1;
            for (first, s) in self.objects.slices(back..start + len).rev() {
                s[(first - back) & 1..]
                    .iter()
                    .step_by(2)
                    .rev()
                    .for_each(&mut link);
            }
            start += len;
        }
        self.active = false;
    }
}

impl Drop for Stash<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}
