//! heaplens' freed memory, handed back to the system. A snapshot or an analysis of a million
//! objects allocates and frees hundreds of megabytes; glibc keeps what is freed under its
//! adaptive mmap threshold (up to 32 MiB an array: every array below about four million objects)
//! in its heaps, resident, and returns a heap's memory only from its top. Measured at 1M objects
//! (2M with their dicts): 140 MB more resident after the snapshot and its analysis were dropped
//! than before they were taken, which the program's RSS, `heaplens.memory()` and the dashboard's
//! chart showed as growth that was no one's.
//!
//! It is not a way to shrink the program: `malloc_trim` returns the free memory of the whole
//! process (the program's too, which glibc would have kept for later allocations), so it is
//! asked for only after heaplens freed a large graph or analysis, where most of what is free is
//! heaplens'. Elsewhere (other allocators, other systems) nothing happens.

/// Graphs and analyses smaller than this leave too little behind to be worth a trim (which walks
/// the allocator's free lists: 0.5 ms at 400k objects, 4 ms at 6M, measured).
pub const LEAST_BYTES: usize = 8 << 20;

/// Hands the allocator's free memory back to the system.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// [`give_back`], after heaplens freed or used as scratch about `bytes` (a graph's or an
/// analysis' size), when that is at least [`LEAST_BYTES`].
pub fn give_back_after(bytes: usize) {
    if bytes >= LEAST_BYTES {
        give_back();
    }
}
