//! The allocator of heaplens' extension: large blocks in mappings of their own, the rest from
//! the system allocator.
//!
//! A snapshot and its analyses allocate arrays of megabytes to hundreds of megabytes, many of
//! them on threads heaplens starts for a moment (the analyses' second thread, the walk's). glibc
//! serves a thread from an arena of its own, and the free space at the top of a thread's arena
//! is given back only once it exceeds a threshold that glibc raises, up to 64 MiB, each time a
//! block it mapped apart is freed; `malloc_trim` does not shrink it. The dashboard of a program
//! of 1M objects kept 18 MB of such freed memory after its second snapshot (72 bytes an object
//! of RSS against 58 with the analyses on one thread). Freeing heaplens' large blocks through
//! glibc also raised those thresholds for the program itself, whose later allocations of up to
//! 32 MiB then stayed in its heap.
//!
//! So a block of [`LEAST_BYTES`] or more is mapped on its own (`mmap`), grown or shrunk in place
//! or moved by the kernel (`mremap`, without copying), and unmapped when freed, whatever thread
//! frees it: the memory goes back at once and glibc's thresholds stay the program's. Smaller
//! blocks, and any block whose alignment exceeds a page, go to the system allocator.
//!
//! It is not a general allocator: no caching of freed mappings, so a large array's pages are
//! faulted in fresh every time. That is the price of giving them back: where glibc had served
//! arrays of up to 32 MiB from pages an earlier analysis freed, `analyze()` at 1.08M objects in
//! a warm process now takes 9% longer (13.4k page faults became 16.8k); keeping the last 64
//! freed mappings for reuse saved a thousand of them and no time (bench/README, "The memory of
//! the snapshots it let go"). Elsewhere than Linux everything goes to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks from this size get a mapping of their own: glibc's own threshold before it raises it.
/// With 1 MiB, the arrays of a 200,000-object heap (under 1 MiB each) stayed in the threads'
/// arenas: the dashboard of such a heap held 85 bytes of RSS an object instead of 77.
pub const LEAST_BYTES: usize = 128 << 10;

/// The smallest page size a mapping's alignment is counted on.
const PAGE: usize = 4096;

/// Set once this allocator has served a block: the binary uses it as its global allocator.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// The allocator: install with `#[global_allocator]`. See the module docs.
pub struct MappedLarge;

/// Whether a block of this layout gets a mapping of its own.
#[inline]
fn is_mapped(size: usize, align: usize) -> bool {
    cfg!(target_os = "linux") && size >= LEAST_BYTES && align <= PAGE
}

/// Whether the block of `bytes` bytes at `base` is a mapping of its own, made by this allocator
/// (the binary's global allocator): memory whose pages may be replaced without touching any
/// other allocation's, and which is unmapped whole when freed. `false` when the binary uses
/// another allocator.
pub fn maps_apart(base: usize, bytes: usize) -> bool {
    IN_USE.load(Ordering::Relaxed) && base % PAGE == 0 && is_mapped(bytes, 1)
}

#[cfg(target_os = "linux")]
mod pages {
    /// A fresh private anonymous mapping of `size` bytes (zeros), or null.
    pub(super) fn map(size: usize) -> *mut u8 {
        // SAFETY: a new anonymous mapping touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p as *mut u8
        }
    }

    /// Unmaps a block [`map`] or [`remap`] returned.
    ///
    /// # Safety
    /// `ptr` and `size` are those of a live block of this allocator, never used again.
    pub(super) unsafe fn unmap(ptr: *mut u8, size: usize) {
        // SAFETY: the caller's; munmap removes every mapping in the range, also the pieces a
        // page move split the block into.
        unsafe { libc::munmap(ptr as *mut libc::c_void, size) };
    }

    /// The block resized by the kernel, in place or moved with its pages; null when it
    /// refuses (a block whose pages came from other mappings spans several).
    ///
    /// # Safety
    /// `ptr` and `old` are those of a live block of this allocator.
    pub(super) unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the caller's; on failure nothing changes.
        let p = unsafe { libc::mremap(ptr as *mut libc::c_void, old, new, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p as *mut u8
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod pages {
    pub(super) fn map(_: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
    pub(super) unsafe fn unmap(_: *mut u8, _: usize) {}
    pub(super) unsafe fn remap(_: *mut u8, _: usize, _: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
}

// SAFETY: every block is either the system allocator's, passed back to it with the layout it
// was made with, or a mapping of at least its size whose address is page-aligned (so aligned
// for any `align <= PAGE`); which of the two is decided by the layout alone, the same at
// allocation, reallocation and deallocation.
unsafe impl GlobalAlloc for MappedLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_mapped(layout.size(), layout.align()) {
            // SAFETY: the caller's layout, for the system allocator.
            return unsafe { System.alloc(layout) };
        }
        IN_USE.store(true, Ordering::Relaxed);
        pages::map(layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_mapped(layout.size(), layout.align()) {
            // SAFETY: as in `alloc`.
            return unsafe { System.alloc_zeroed(layout) };
        }
        IN_USE.store(true, Ordering::Relaxed);
        pages::map(layout.size()) // fresh anonymous pages read as zeros
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mapped(layout.size(), layout.align()) {
            // SAFETY: a block `alloc` mapped for this layout.
            unsafe { pages::unmap(ptr, layout.size()) };
        } else {
            // SAFETY: a block the system allocator made for this layout.
            unsafe { System.dealloc(ptr, layout) };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let (was, will) = (is_mapped(layout.size(), align), is_mapped(new_size, align));
        if !was && !will {
            // SAFETY: the caller's, for the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if was && will {
            if layout.size().div_ceil(PAGE) == new_size.div_ceil(PAGE) {
                return ptr;
            }
            // SAFETY: a live mapped block of that size.
            let moved = unsafe { pages::remap(ptr, layout.size(), new_size) };
            if !moved.is_null() {
                return moved;
            }
        }
        // Across the threshold, or a mapping the kernel would not resize: a new block, the
        // contents copied, the old one freed.
        // SAFETY: `new_size` is non-zero and, rounded up to `align`, fits (the caller's).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: as in `alloc`.
        let fresh = unsafe { self.alloc(new_layout) };
        if !fresh.is_null() {
            // SAFETY: both blocks hold at least the bytes copied, and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn blocks_keep_their_contents_across_every_resize() {
        let a = MappedLarge;
        // SAFETY: blocks used within their sizes, each freed once with its layout.
        unsafe {
            let small = 4096;
            let p = a.alloc(layout(small));
            assert!(!p.is_null());
            for i in 0..small {
                *p.add(i) = (i % 251) as u8;
            }
            // Small to mapped, mapped grown (in place or moved), mapped shrunk, back to small.
            let mut size = small;
            let mut p = p;
            for next in [LEAST_BYTES + 100, 8 * LEAST_BYTES, 3 * LEAST_BYTES, 1000] {
                p = a.realloc(p, layout(size), next);
                assert!(!p.is_null());
                let kept = size.min(next).min(small);
                assert!((0..kept).all(|i| *p.add(i) == (i % 251) as u8));
                if is_mapped(next, 8) {
                    assert_eq!(p as usize % PAGE, 0);
                    assert!(maps_apart(p as usize, next));
                    *p.add(next - 1) = 7; // the whole block is writable
                }
                size = next;
            }
            a.dealloc(p, layout(size));
        }
    }

    #[test]
    fn zeroed_blocks_read_as_zeros_and_small_ones_are_not_mapped_apart() {
        let a = MappedLarge;
        // SAFETY: as above.
        unsafe {
            for size in [64, LEAST_BYTES, 3 * LEAST_BYTES + 5] {
                let p = a.alloc_zeroed(layout(size));
                assert!(!p.is_null());
                assert!((0..size).step_by(997).all(|i| *p.add(i) == 0));
                assert_eq!(
                    maps_apart(p as usize, size),
                    cfg!(target_os = "linux") && size >= LEAST_BYTES
                );
                a.dealloc(p, layout(size));
            }
        }
        // Alignment beyond a page goes to the system allocator.
        assert!(!is_mapped(LEAST_BYTES, 2 * PAGE));
    }
}
