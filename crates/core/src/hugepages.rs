//! Large arrays on transparent huge pages, where the kernel offers them on request (Linux's
//! `madvise` mode, the usual default), when asked for with `HEAPLENS_HUGE_PAGES=1`. A snapshot or
//! an analysis of millions of objects fills hundreds of megabytes of fresh memory, and with
//! 4 KiB pages the kernel's page faults took a large share of its time (2.7 us a page in a VM); a
//! 2 MiB page takes one fault where 512 did.
//!
//! Off by default since the arrays written whole are backed in one call each
//! (`MADV_POPULATE_WRITE`): in the VM heaplens is measured on, `analyze()` at 10.1M objects took
//! 0.43-0.52 s without huge pages and 0.36-1.36 s with them (medians 0.46 and 0.62), a
//! comparison 0.42-0.45 s against 0.50-0.95 s, with no compaction stall counted (a huge page
//! there is likely memory the guest had given back to its host, backed again page by page). On
//! a machine that backs its memory up front they may still save a share of an analysis.
//!
//! Only heaplens' own arrays are advised, never memory of the program it observes, and only
//! arrays of at least [`LEAST_BYTES`] ([`SCRATCH_LEAST_BYTES`] for arrays an analysis frees
//! before it returns). A forked child walking a copy-on-write heap turns the
//! advice off ([`disable`]): its allocator may hand out pages it still shares with the program,
//! which a huge page would copy. `HEAPLENS_NO_HUGE_PAGES=1` turns it off whatever else says.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set to `1`, heaplens asks for huge pages for its large arrays (see the module docs).
pub const HUGE_PAGES_VARIABLE: &str = "HEAPLENS_HUGE_PAGES";

/// Set to `1`, heaplens asks for no huge pages, even with [`HUGE_PAGES_VARIABLE`] (a process
/// whose memory limit is tight: a huge page is backed whole as soon as one byte of it is
/// written).
pub const NO_HUGE_PAGES_VARIABLE: &str = "HEAPLENS_NO_HUGE_PAGES";

/// Arrays smaller than this are left alone. A huge page is backed whole once written, so an
/// array's last one may hold up to 2 MiB it does not use: at most 6% of an array this large,
/// where on a heap of a million objects (arrays of 4 to 20 MB) it would raise the snapshot's
/// peak and the dashboard's footprint by several bytes an object.
pub const LEAST_BYTES: usize = 32 << 20;

/// The same for scratch arrays, freed before the computation that makes them returns: their last
/// huge page's unused part is never kept, so smaller ones are advised too (an analysis' arrays
/// of `u32` from about four million objects: 55,000 faults of `analyze()` at 5M objects went
/// to 20,000, the rest in the arrays it keeps). Not below: with arrays from 4 MiB, the whole
/// huge pages zeroed at the arrays' ends cost more than the faults they save (`analyze()` at
/// 1.07M objects 0.127 s against 0.113 s). Such an array is
/// given room of at least [`LEAST_BYTES`] (address space only: what is not written is never
/// backed), so that the allocator maps it apart and unmaps it when freed (glibc does so from
/// 32 MiB): advice on memory the allocator would later hand to the program would change how the
/// program's own allocations are backed.
pub const SCRATCH_LEAST_BYTES: usize = 16 << 20;

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the advice off for the rest of the process (a forked child's walk).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Asks for huge pages for the room `v` has (its capacity), when it is large. A hint: the
/// kernel may ignore it, and nothing changes but how the memory is backed.
pub fn advise<T>(v: &Vec<T>) {
    advise_from(v, LEAST_BYTES);
}

fn advise_from<T>(v: &Vec<T>, least: usize) {
    let bytes = room_bytes(v);
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
    if bytes < least
        || DISABLED.load(Ordering::Relaxed)
        || !set(HUGE_PAGES_VARIABLE)
        || set(NO_HUGE_PAGES_VARIABLE)
    {
        return;
    }
    madvise_inside(v.as_ptr() as usize, bytes, ADVICE_HUGEPAGE);
}

/// The bytes of `v`'s room (its capacity).
fn room_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity().saturating_mul(std::mem::size_of::<T>())
}

#[cfg(target_os = "linux")]
const ADVICE_HUGEPAGE: i32 = libc::MADV_HUGEPAGE;
#[cfg(target_os = "linux")]
const ADVICE_POPULATE_WRITE: i32 = libc::MADV_POPULATE_WRITE;
#[cfg(not(target_os = "linux"))]
const ADVICE_HUGEPAGE: i32 = 0;
#[cfg(not(target_os = "linux"))]
const ADVICE_POPULATE_WRITE: i32 = 0;

/// `madvise(advice)` on the whole pages inside `bytes` from `start`, memory this process
/// allocated: the pages at the ends may hold other allocations, and are left alone. The advice
/// must change how memory is backed, never its contents. A kernel that does not know the advice
/// answers EINVAL, and nothing changes.
#[cfg(target_os = "linux")]
fn madvise_inside(start: usize, bytes: usize, advice: i32) {
    const PAGE: usize = 4096;
    let first = start.div_ceil(PAGE) * PAGE;
    let end = (start + bytes) / PAGE * PAGE;
    if end > first {
        // SAFETY: the range lies within memory this process allocated, and the advice
        // (see above) leaves its contents as they are.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, advice);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn madvise_inside(_: usize, _: usize, _: i32) {}

/// Arrays from this size that are written whole at once are backed in one call before they
/// are written ([`populate`]).
pub const POPULATE_LEAST_BYTES: usize = 1 << 20;

/// Backs the whole pages inside `v`'s room before the caller writes all of it: one system call
/// where every 4 KiB page would have taken a fault of its own (1.5 against 2.5 us a page in the
/// VM this was measured in; most of what is left is the kernel zeroing the page). Only for arrays
/// written whole right away: memory that would never be written would be backed all the same.
/// Needs Linux 5.14; an older kernel refuses, and the pages fault in as they are written.
fn populate<T>(v: &Vec<T>) {
    let bytes = room_bytes(v);
    if bytes >= POPULATE_LEAST_BYTES {
        madvise_inside(v.as_ptr() as usize, bytes, ADVICE_POPULATE_WRITE);
    }
}

/// `vec![value; n]`, on huge pages when large.
pub fn filled<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise(&v);
    populate(&v);
    v.resize(n, value);
    v
}

/// `Vec::with_capacity(n)`, on huge pages when large.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise(&v);
    v
}

/// [`filled`] for a scratch array (freed before its computation returns): advised from
/// [`SCRATCH_LEAST_BYTES`].
pub fn scratch_filled<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v = scratch_to_fill(n);
    v.resize(n, value);
    v
}

/// [`scratch_with_capacity`] for an array the caller fills to `n` elements right away (backed
/// before it is written, as [`scratch_filled`]'s are).
pub fn scratch_to_fill<T>(n: usize) -> Vec<T> {
    let v = scratch_with_capacity(n);
    // A large one's room beyond `n` is address space only, and must stay unbacked.
    if v.capacity() == n {
        populate(&v);
    }
    v
}

/// [`with_capacity`] for a scratch array: advised from [`SCRATCH_LEAST_BYTES`].
pub fn scratch_with_capacity<T>(n: usize) -> Vec<T> {
    let size = std::mem::size_of::<T>().max(1);
    let room = if n.saturating_mul(size) >= SCRATCH_LEAST_BYTES {
        n.max(LEAST_BYTES.div_ceil(size))
    } else {
        n
    };
    let v = Vec::with_capacity(room);
    advise_from(&v, SCRATCH_LEAST_BYTES);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_arrays_hold_what_plain_ones_do() {
        let v = filled(LEAST_BYTES, 7u8);
        assert_eq!(v.len(), LEAST_BYTES);
        assert!(v.iter().all(|&b| b == 7));
        let mut w: Vec<u64> = with_capacity(LEAST_BYTES / 8);
        w.extend(0..1000);
        assert_eq!(w[999], 999);
        let s = scratch_filled(SCRATCH_LEAST_BYTES, 3u8);
        assert!(s.len() == SCRATCH_LEAST_BYTES && s.iter().all(|&b| b == 3));
        let mut t: Vec<u32> = scratch_with_capacity(SCRATCH_LEAST_BYTES / 4);
        t.extend(0..10);
        assert_eq!(t[9], 9);
        // Backed before they are written: under the huge pages' sizes, and at an odd length.
        let p = scratch_filled(POPULATE_LEAST_BYTES + 12_345, 9u8);
        assert!(p.len() == POPULATE_LEAST_BYTES + 12_345 && p.iter().all(|&b| b == 9));
        let n = POPULATE_LEAST_BYTES / 4 + 3;
        let mut q: Vec<u32> = scratch_to_fill(n);
        q.extend(0..n as u32);
        assert_eq!(q[n - 1], n as u32 - 1);
        let f = filled(POPULATE_LEAST_BYTES / 8 + 1, u64::MAX);
        assert!(f.iter().all(|&x| x == u64::MAX));
    }
}
