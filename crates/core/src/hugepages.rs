//! Large arrays on transparent huge pages, where the kernel offers them on request (Linux's
//! `madvise` mode, the usual default). A snapshot or an analysis of millions of objects fills
//! hundreds of megabytes of fresh memory, and with 4 KiB pages the kernel's page faults take a
//! large share of its time (measured at 2.7 us a page in a VM: a quarter of `analyze()`); a
//! 2 MiB page takes one fault where 512 did.
//!
//! Only heaplens' own arrays are advised, never memory of the program it observes, and only
//! arrays of at least [`LEAST_BYTES`]. A forked child walking a copy-on-write heap turns the
//! advice off ([`disable`]): its allocator may hand out pages it still shares with the program,
//! which a huge page would copy. `HEAPLENS_NO_HUGE_PAGES=1` turns it off too.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set to `1`, heaplens asks for no huge pages (a process whose memory limit is tight: a huge
/// page is backed whole as soon as one byte of it is written).
pub const NO_HUGE_PAGES_VARIABLE: &str = "HEAPLENS_NO_HUGE_PAGES";

/// Arrays smaller than this are left alone. A huge page is backed whole once written, so an
/// array's last one may hold up to 2 MiB it does not use: at most 6% of an array this large,
/// where on a heap of a million objects (arrays of 4 to 20 MB) it would raise the snapshot's
/// peak and the dashboard's footprint by several bytes an object.
pub const LEAST_BYTES: usize = 32 << 20;

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns the advice off for the rest of the process (a forked child's walk).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Asks for huge pages for the room `v` has (its capacity), when it is large. A hint: the
/// kernel may ignore it, and nothing changes but how the memory is backed.
pub fn advise<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    advise_range(v.as_ptr() as usize, bytes);
}

#[cfg(target_os = "linux")]
fn advise_range(start: usize, bytes: usize) {
    const PAGE: usize = 4096;
    if bytes < LEAST_BYTES
        || DISABLED.load(Ordering::Relaxed)
        || std::env::var_os(NO_HUGE_PAGES_VARIABLE).is_some_and(|v| v == "1")
    {
        return;
    }
    // Whole pages inside the array only: the pages at its ends may hold other allocations.
    let first = start.div_ceil(PAGE) * PAGE;
    let end = (start + bytes) / PAGE * PAGE;
    if end > first {
        // SAFETY: the range lies within memory this process allocated; MADV_HUGEPAGE changes
        // how it is backed, never its contents.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_range(_: usize, _: usize) {}

/// `vec![value; n]`, on huge pages when large.
pub fn filled<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise(&v);
    v.resize(n, value);
    v
}

/// `Vec::with_capacity(n)`, on huge pages when large.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    advise(&v);
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
    }
}
