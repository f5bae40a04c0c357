//! What the parts of a split walk share: the table that numbers the objects several threads
//! may meet, and each part's view of the whole graph's numbering ([`Share`]).

use crate::raw::Obj;
use crate::registry::{TypeEntry, Walker};
use crate::snapshot::Bits;
use heaplens_core::graph::NodeId;
use heaplens_core::types::TypeId;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// The target of a reference a part left to the GIL's thread, until that thread numbers it.
pub(crate) const UNRESOLVED: NodeId = u32::MAX;

/// A slot of the shared table not yet given its node.
const NO_ID: u32 = u32::MAX;

/// What [`SharedTable::get_or_claim`] found.
pub(crate) enum Claim {
    /// Another reference numbered the object before: its id and slot.
    Found { id: NodeId, slot: usize },
    /// This call numbered it (with the id it was given).
    Claimed { slot: usize },
    /// The table is full: the split walk cannot go on.
    Full,
}

/// An open-addressing table from the addresses of objects several threads may meet to their
/// provisional node ids and their balance of references (reference count minus references
/// found). Fixed in size: a lock-free table cannot grow while others read it, so a walk that
/// fills it gives up ([`Claim::Full`]).
pub(crate) struct SharedTable {
    keys: Vec<AtomicUsize>,
    ids: Vec<AtomicU32>,
    pub(super) balances: Vec<AtomicI32>,
    len: AtomicUsize,
    limit: usize,
    shift: u32,
}

impl SharedTable {
    /// A table for about `n` objects (70% load), at least 2^16 slots.
    pub(super) fn with_capacity(n: usize) -> SharedTable {
        let mut bits = 16u32;
        while (1usize << bits) * 7 / 10 < n {
            bits += 1;
        }
        let slots = 1usize << bits;
        SharedTable {
            keys: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
            ids: (0..slots).map(|_| AtomicU32::new(NO_ID)).collect(),
            balances: (0..slots).map(|_| AtomicI32::new(0)).collect(),
            len: AtomicUsize::new(0),
            limit: slots * 7 / 10,
            shift: 64 - bits,
        }
    }

    #[inline(always)]
    fn slot(&self, key: usize) -> usize {
        (key >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift
    }

    #[inline(always)]
    pub(crate) fn prefetch(&self, key: usize) {
        crate::prefetch::prefetch(&self.keys[self.slot(key)] as *const AtomicUsize as *const u8);
    }

    /// The id of the object at `key`, numbering it `id_if_new` if no thread has yet.
    #[inline]
    pub(crate) fn get_or_claim(&self, key: usize, id_if_new: NodeId) -> Claim {
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        loop {
            let mut k = self.keys[i].load(Ordering::Acquire);
            if k == 0 {
                if self.len.load(Ordering::Relaxed) >= self.limit {
                    return Claim::Full;
                }
                match self.keys[i].compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        self.len.fetch_add(1, Ordering::Relaxed);
                        self.ids[i].store(id_if_new, Ordering::Release);
                        return Claim::Claimed { slot: i };
                    }
                    Err(now) => k = now,
                }
            }
            if k == key {
                // Numbered by another thread, which stores the id right after it claims the
                // slot.
                loop {
                    let id = self.ids[i].load(Ordering::Acquire);
                    if id != NO_ID {
                        return Claim::Found { id, slot: i };
                    }
                    std::hint::spin_loop();
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The slot of the object at `key`, if it is in the table.
    pub(super) fn find(&self, key: usize) -> Option<usize> {
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        loop {
            match self.keys[i].load(Ordering::Acquire) {
                0 => return None,
                k if k == key => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The id of the object in `slot` (numbered: the walk's parts are done).
    pub(super) fn id_at(&self, slot: usize) -> NodeId {
        self.ids[slot].load(Ordering::Acquire)
    }

    /// Every object in the table: (id, balance).
    pub(super) fn entries(&self) -> impl Iterator<Item = (NodeId, i32)> + '_ {
        self.keys
            .iter()
            .zip(&self.ids)
            .zip(&self.balances)
            .filter(|((k, _), _)| k.load(Ordering::Relaxed) != 0)
            .map(|((_, id), b)| (id.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
    }
}

/// Slots of a part's cache of charges against shared balances: the objects every part meets
/// over and over (`None`, `True`, interned names) are charged here and written once.
pub(super) const CHARGES: usize = 1024;

/// How one part of a split walk numbers its nodes, and what it shares with the others. Empty
/// (and unused) in a walk on one thread.
pub(crate) struct Share {
    /// Local nodes `0..stubs` stand for nodes numbered before the part began (tracked objects,
    /// thread stacks and frames, the root, objects another part left to this one).
    pub(super) stubs: u32,
    /// Their ids; empty when they are the range `stub_first..stub_first + stubs`.
    pub(super) stub_ids: Vec<NodeId>,
    pub(super) stub_first: NodeId,
    /// Provisional ids of new nodes start here: `base + (k << segment_bits | segment)` for the
    /// part's `k`th new node.
    pub(super) base: u32,
    pub(super) segment: u32,
    pub(super) segment_bits: u32,
    /// Tracked objects are `0..tracked`.
    pub(super) tracked: u32,
    /// Balances of the nodes numbered before the parts began (`0..base`).
    pub(super) balances: *const AtomicI32,
    pub(super) table: *const SharedTable,
    pub(super) gave_up: *const AtomicBool,
    /// Whether this part may call into the interpreter (`tp_traverse`): the GIL's thread.
    pub(super) may_traverse: bool,
    /// Local nodes numbered through the shared table.
    pub(super) mapped: Bits,
    /// Local nodes left to the GIL's thread.
    pub(crate) deferred: Vec<NodeId>,
    /// References the part could not number (the shared table was full), left to the GIL's
    /// thread: (the reference's position among the part's, the object, whether counted).
    pub(super) unresolved: Vec<(usize, Obj, bool)>,
    /// Once the part is walked: the type object behind each of its type ids.
    pub(super) types: Vec<(TypeId, usize)>,
    /// Balance changes of nodes held by other parts: (provisional id, change).
    pub(crate) foreign: Vec<(NodeId, i32)>,
    pub(super) charges: Vec<(u32, i32)>,
}

impl Default for Share {
    fn default() -> Self {
        Share {
            stubs: 0,
            stub_ids: Vec::new(),
            stub_first: 0,
            base: 0,
            segment: 0,
            segment_bits: 0,
            tracked: 0,
            balances: std::ptr::null(),
            table: std::ptr::null(),
            gave_up: std::ptr::null(),
            may_traverse: true,
            mapped: Bits::default(),
            deferred: Vec::new(),
            unresolved: Vec::new(),
            types: Vec::new(),
            foreign: Vec::new(),
            charges: Vec::new(),
        }
    }
}

impl Share {
    /// The provisional id of local node `n`.
    #[inline]
    pub(crate) fn id_of(&self, n: NodeId) -> NodeId {
        if n < self.stubs {
            return if self.stub_ids.is_empty() {
                self.stub_first + n
            } else {
                self.stub_ids[n as usize]
            };
        }
        let k = n - self.stubs;
        if k >= (u32::MAX - 1 - self.base) >> self.segment_bits {
            self.give_up(); // the numbers ran out: the walk on one thread says so
            return 0;
        }
        self.base + ((k << self.segment_bits) | self.segment)
    }

    #[inline]
    pub(crate) fn is_tracked(&self, n: NodeId) -> bool {
        n < self.stubs && self.id_of(n) < self.tracked
    }

    #[inline]
    pub(crate) fn table(&self) -> &SharedTable {
        // SAFETY: set for every part of a split walk, alive for the whole walk.
        unsafe { &*self.table }
    }

    #[inline]
    fn balances(&self) -> &[AtomicI32] {
        // SAFETY: set for every part of a split walk, `base` counters alive for the whole walk.
        unsafe { std::slice::from_raw_parts(self.balances, self.base as usize) }
    }

    pub(crate) fn give_up(&self) {
        // SAFETY: as for `table`.
        unsafe { (*self.gave_up).store(true, Ordering::Relaxed) }
    }

    #[inline]
    pub(crate) fn given_up(&self) -> bool {
        // SAFETY: as for `table`.
        unsafe { (*self.gave_up).load(Ordering::Relaxed) }
    }

    /// Whether a part that may not call into the interpreter leaves objects of `entry`'s type
    /// to the one that may.
    #[inline]
    pub(crate) fn defers(&self, entry: &TypeEntry) -> bool {
        !self.may_traverse && entry.walker == Walker::Traverse
    }

    pub(crate) fn defer_node(&mut self, n: NodeId) {
        self.deferred.push(n);
    }

    #[inline]
    pub(crate) fn may_traverse(&self) -> bool {
        self.may_traverse
    }

    /// Leaves reference `edge` (to `o`) for the GIL's thread to number.
    pub(crate) fn defer_reference(&mut self, edge: usize, o: Obj, counted: bool) {
        self.unresolved.push((edge, o, counted));
    }

    /// One reference found to the node `id` (of this part's or another's, numbered outside
    /// the shared table); `local` holds this part's balances.
    pub(crate) fn charge(&mut self, id: NodeId, local: &mut [i32]) {
        if id < self.base {
            self.charge_shared(id);
            return;
        }
        let q = id - self.base;
        if q & ((1 << self.segment_bits) - 1) == self.segment {
            local[(self.stubs + (q >> self.segment_bits)) as usize] -= 1;
        } else {
            self.foreign.push((id, -1));
        }
    }

    pub(crate) fn mark_mapped(&mut self, n: NodeId) {
        self.mapped.set(n as usize);
    }

    /// One reference found to a node numbered before the parts began.
    #[inline]
    pub(crate) fn charge_shared(&self, id: NodeId) {
        self.balances()[id as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// One reference found to the object in `slot` of the shared table.
    #[inline]
    pub(crate) fn charge_slot(&mut self, slot: usize) {
        let at = slot % CHARGES;
        let (held, delta) = self.charges[at];
        if held == slot as u32 + 1 {
            self.charges[at].1 = delta - 1;
            return;
        }
        if held != 0 {
            self.table().balances[held as usize - 1].fetch_add(delta, Ordering::Relaxed);
        }
        self.charges[at] = (slot as u32 + 1, -1);
    }

    pub(super) fn settle_charges(&mut self) {
        for at in 0..self.charges.len() {
            let (held, delta) = self.charges[at];
            if held != 0 {
                self.table().balances[held as usize - 1].fetch_add(delta, Ordering::Relaxed);
            }
            self.charges[at] = (0, 0);
        }
    }

    /// Adds the reference count of local node `n` (object `o`) to its balance, wherever that
    /// balance is kept.
    #[inline]
    pub(crate) fn add_references(&mut self, n: NodeId, o: Obj, count: i32, local: &mut [i32]) {
        if n >= self.stubs && !self.mapped.get(n as usize) {
            local[n as usize] += count;
            return;
        }
        let id = self.id_of(n);
        if id < self.base {
            self.balances()[id as usize].fetch_add(count, Ordering::Relaxed);
        } else if let Some(slot) = self.table().find(o as usize) {
            self.table().balances[slot].fetch_add(count, Ordering::Relaxed);
        } else {
            self.foreign.push((id, count));
        }
    }
}
