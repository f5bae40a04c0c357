//! A cache prefetch hint, for the walks and the address map: both are bound by memory latency.

/// Hints the CPU to start loading the cache line at `p` (a no-op off x86-64). The walks are
/// bound by memory latency; issuing the loads of a node's referents before using them lets the
/// misses overlap instead of queueing one behind the other.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
