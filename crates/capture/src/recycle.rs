//! The pages of the parts' arrays, once copied, moved into the graph's arrays where they are not
//! written yet, rather than handed back to the system.
//!
//! The assembly copies every part into arrays made for the whole graph, hundreds of megabytes
//! at ten million objects, and frees each part as it goes. Fresh memory costs its page faults:
//! the kernel finds, zeroes and maps every page on first write, which in a VM took 0.25-0.5 s of
//! one core for the 380 MB of a 10M-object graph, twice the copy itself (writing memory already
//! mapped runs at 28 GB/s there, a first write at 1.5 GB/s). A part's pages, once copied, are
//! mapped and dead: `mremap` moves them, page table entries only, into the stretch of the
//! graph's arrays that the runs not yet taken will write, where the copy then finds them mapped.
//! Nothing is zeroed or copied, and the process holds no more memory than when the part's pages
//! went back to the system.
//!
//! Only whole pages strictly inside a part's buffer move (the allocator's own words, just before
//! and after it, stay), with `MREMAP_DONTUNMAP` (Linux 5.7+), which leaves the buffer mapped
//! and reading as zeros, as after `madvise(MADV_DONTNEED)`: the allocator takes it back as
//! usual. Pages only move between private anonymous mappings (an allocator that maps shared or
//! file memory keeps its pages), and only go where no run has begun to write: the lock under
//! which runs are taken is held meanwhile. Each move splits the graph's array into one more
//! mapping, until the graph is freed; the moves are bounded so that the process stays far from
//! the system's limit on mappings (`vm.max_map_count`), and only graphs large enough for the
//! faults to matter are filled this way. Where the kernel refuses (an older one, another
//! system), nothing moves and the part's memory goes back to the system as before.

/// Graphs whose arrays are smaller than this are left to their page faults (at 2M objects, the
/// arrays are about 75 MB; a graph of 300,000 objects would otherwise take as many mappings as
/// one of ten million, for milliseconds).
const LEAST_BYTES: usize = 64 << 20;

/// [`LEAST_BYTES`], or `HEAPLENS_RECYCLE_LEAST_BYTES` where set, which also lowers
/// [`APART_BYTES`]: the tests check the moves on heaps small enough to compare object for object
/// (whose arrays the extension's allocator maps apart from 128 KiB).
fn least_bytes() -> usize {
    std::env::var("HEAPLENS_RECYCLE_LEAST_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LEAST_BYTES)
}

/// Arrays smaller than this take no pages: under glibc's allocator (the crate's own tests) they
/// may lie in its heap (it maps an allocation apart from its dynamic threshold, which stops at
/// 32 MiB); the extension's allocator maps them apart from 128 KiB, but a graph large enough to
/// be filled this way has its arrays of this size.
const APART_BYTES: usize = 32 << 20;

/// The most moves one assembly makes (each can add two mappings to the process: 32 parts of six
/// arrays each, and their balances, take about 230 at 10M objects)...
const MOST_MOVES: usize = 512;
/// ...and never beyond this share of the mappings the process may still make.
const MAPPINGS_SHARE: usize = 8;

/// One of the graph's arrays, as pages may be moved into it.
struct Destination {
    /// Address of element 0, and the element's size.
    base: usize,
    element: usize,
    /// One past the last byte of the array's capacity.
    end: usize,
    /// Pages below this address have been filled already.
    filled: usize,
}

/// The graph's arrays, which pages moved from the parts fill ahead of the copy.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) struct Recycler {
    destinations: Vec<Destination>,
    page: usize,
    /// The process' private anonymous mappings when the assembly began, by address.
    anonymous: Vec<(usize, usize)>,
    moves_left: usize,
    /// Bytes moved so far.
    pub(crate) moved: usize,
}

#[cfg_attr(not(feature = "python"), allow(dead_code))]
impl Recycler {
    /// `arrays`: each array's address of element 0, element size and capacity in elements, in
    /// the order [`Recycler::recycle`]'s frontiers follow.
    pub(crate) fn new(arrays: &[(usize, usize, usize)]) -> Recycler {
        let mut recycler = Recycler {
            destinations: arrays
                .iter()
                .map(|&(base, element, capacity)| Destination {
                    base,
                    element,
                    end: base + element * capacity,
                    filled: 0,
                })
                .collect(),
            page: page_size(),
            anonymous: Vec::new(),
            moves_left: 0,
            moved: 0,
        };
        let least = least_bytes();
        let bytes: usize = recycler.destinations.iter().map(|d| d.end - d.base).sum();
        if recycler.page == 0 || bytes < least {
            return recycler;
        }
        let Some((anonymous, mappings)) = mappings() else {
            return recycler;
        };
        recycler.anonymous = anonymous;
        let room = max_mappings().saturating_sub(mappings) / MAPPINGS_SHARE;
        recycler.moves_left = MOST_MOVES.min(room / 2);
        // Only arrays mapped apart take pages (see `mapped_apart`).
        for i in 0..recycler.destinations.len() {
            let d = &recycler.destinations[i];
            if !recycler.mapped_apart(d.base, d.end, APART_BYTES.min(least)) {
                recycler.destinations[i].filled = usize::MAX;
            }
        }
        recycler
    }

    /// Moves the whole pages inside `v`'s buffer to the graph's arrays, each beyond its
    /// `frontiers` entry (the first element a run not yet taken writes, per array), the array
    /// least filled ahead first, then frees `v`.
    ///
    /// # Safety
    /// No thread may write any array at or beyond its frontier until this returns (the caller
    /// holds the lock under which runs are taken), and every element there must be written
    /// before the array is read. `v` is never read again.
    pub(crate) unsafe fn recycle<T>(&mut self, v: Vec<T>, frontiers: &[usize]) {
        // Arrays of values with destructors are only dropped: their elements are read then.
        if self.moves_left == 0 || std::mem::needs_drop::<T>() {
            return;
        }
        let page = self.page;
        // Only the elements in use: the capacity beyond them was never written, so it has no
        // pages to move.
        let start = v.as_ptr() as usize;
        let mut from = start.next_multiple_of(page);
        let until = (start + v.len() * std::mem::size_of::<T>()) / page * page;
        // mremap moves pages out of one mapping at a time.
        if from >= until || !self.in_one(from, until) {
            return;
        }
        while from < until && self.moves_left > 0 {
            // The array with the least filled ahead of its frontier, for its size.
            let mut best: Option<(usize, usize, usize, f64)> = None;
            for (i, (d, &frontier)) in self.destinations.iter().zip(frontiers).enumerate() {
                // The first page no run has begun to write; none where every run has.
                let Some(first) = frontier
                    .checked_mul(d.element)
                    .and_then(|offset| d.base.checked_add(offset))
                    .filter(|&address| address < d.end)
                    .map(|address| address.next_multiple_of(page))
                else {
                    continue;
                };
                let (at, end) = (d.filled.max(first), d.end / page * page);
                if at >= end {
                    continue;
                }
                let lead = (at - first) as f64 / (d.end - d.base) as f64;
                if best.is_none_or(|b| lead < b.3) {
                    best = Some((i, at, end, lead));
                }
            }
            let Some((i, at, end, _)) = best else { break };
            let len = (until - from).min(end - at);
            self.moves_left -= 1;
            // SAFETY: [from, from + len) is inside `v`'s buffer, which nobody reads again, in a
            // private anonymous mapping; [at, at + len) is inside the array's capacity, beyond
            // every element written so far and every element a run now taken writes (the
            // caller's lock).
            if !unsafe { move_pages(from, at, len) } {
                break; // the rest goes back to the system with `v`
            }
            self.destinations[i].filled = at + len;
            self.moved += len;
            from += len;
        }
    }

    /// Whether `[lo, hi)` lies in one private anonymous mapping.
    fn in_one(&self, lo: usize, hi: usize) -> bool {
        let at = self.anonymous.partition_point(|&(start, _)| start <= lo);
        at > 0 && self.anonymous[at - 1].1 >= hi
    }

    /// Whether the array `[base, end)` is a mapping of its own, in private anonymous memory, of
    /// [`APART_BYTES`] or more (`least`, lower in the tests). A move splits the mapping it lands
    /// in until the mapping is unmapped: for an array mapped apart, when the graph is freed; in
    /// the allocator's heap the pieces would stay after it, under the program's later
    /// allocations, snapshot after snapshot. The extension's allocator maps every large array
    /// apart ([`heaplens_core::mapped_alloc`]); under glibc's (the tests'), such an allocation is
    /// told by glibc's header, in the 16 bytes before it at the start of a page: no offset, a
    /// size that covers the array, and the flag of a chunk mapped apart.
    fn mapped_apart(&self, base: usize, end: usize, least: usize) -> bool {
        const HEADER: usize = 2 * std::mem::size_of::<usize>();
        const IS_MMAPPED: usize = 0x2;
        if end - base < least {
            return false;
        }
        if heaplens_core::mapped_alloc::maps_apart(base, end - base) {
            return self.covered(base, end);
        }
        if base % self.page.max(1) != HEADER || !self.covered(base - HEADER, end) {
            return false;
        }
        // SAFETY: the two words lie in the page the array starts in, mapped and readable (a
        // private anonymous mapping); only read.
        let (offset, size) = unsafe {
            let words = (base - HEADER) as *const usize;
            (words.read_volatile(), words.add(1).read_volatile())
        };
        offset == 0 && size & IS_MMAPPED != 0 && size & !0x7 >= end - (base - HEADER)
    }

    /// Whether `[lo, hi)` lies in private anonymous mappings, one after another.
    fn covered(&self, lo: usize, hi: usize) -> bool {
        let mut at = self.anonymous.partition_point(|&(start, _)| start <= lo);
        if at == 0 || self.anonymous[at - 1].1 <= lo {
            return false;
        }
        let mut reached = self.anonymous[at - 1].1;
        while reached < hi {
            match self.anonymous.get(at) {
                Some(&(start, end)) if start == reached => reached = end,
                _ => return false,
            }
            at += 1;
        }
        true
    }
}

/// The process' private anonymous mappings (`/proc/self/maps`: no file, or the `[heap]`), in
/// address order, and how many mappings it has.
fn mappings() -> Option<(Vec<(usize, usize)>, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mut anonymous: Vec<(usize, usize)> = Vec::new();
    let mut count = 0;
    for line in maps.lines() {
        count += 1;
        match heaplens_core::maps::parse_line(line) {
            Some(m) if m.is_private_anonymous() => {
                anonymous.push((m.start as usize, m.end as usize))
            }
            _ => {}
        }
    }
    anonymous.sort_unstable();
    Some((anonymous, count))
}

/// The most mappings a process may have (`vm.max_map_count`; Linux's default where unknown).
fn max_mappings() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530)
}

/// Moves the pages mapped at `[from, from + len)` to `to`, leaving `from` mapped and empty.
///
/// # Safety
/// Both ranges are page-aligned, inside private anonymous mappings of this process, and nothing
/// else uses them meanwhile; what was mapped at `to` is lost.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn move_pages(from: usize, to: usize, len: usize) -> bool {
    // SAFETY: see above; mremap checks the ranges itself and fails rather than moving part.
    let moved = unsafe {
        libc::mremap(
            from as *mut libc::c_void,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | libc::MREMAP_DONTUNMAP,
            to as *mut libc::c_void,
        )
    };
    moved == to as *mut libc::c_void
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
unsafe fn move_pages(_from: usize, _to: usize, _len: usize) -> bool {
    false
}

/// The system's page size (0 where it cannot be asked: nothing is moved then).
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    let asked = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(asked)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether every page of `[lo, hi)` is mapped in memory (`mincore`).
    fn resident(lo: usize, hi: usize) -> bool {
        let page = page_size();
        let mut pages = vec![0u8; (hi - lo) / page];
        // SAFETY: [lo, hi) is page-aligned and mapped; `pages` has a byte per page.
        let asked = unsafe { libc::mincore(lo as *mut libc::c_void, hi - lo, pages.as_mut_ptr()) };
        asked == 0 && pages.iter().all(|&p| p & 1 == 1)
    }

    #[test]
    fn pages_go_beyond_the_frontier_and_what_is_written_stays() {
        // An array of 80 MiB, written up to a frontier; a "part" of 4 MiB, copied and dead.
        let capacity = 10 << 20;
        let mut graph: Vec<u64> = Vec::with_capacity(capacity);
        let frontier = 1_000_003;
        graph.extend(0..frontier as u64);
        let part: Vec<u64> = (0..(512 << 10)).map(|i| !i).collect();
        // Made before the recycler reads the process' mappings, as the parts are.
        let late: Vec<u64> = (0..(512 << 10)).collect();
        let mut recycler = Recycler::new(&[(graph.as_ptr() as usize, 8, capacity)]);
        if recycler.moves_left == 0 {
            return; // no /proc here: nothing moves, which the assembly copes with
        }
        let page = recycler.page;
        let first = (graph.as_ptr() as usize + frontier * 8).next_multiple_of(page);
        assert!(!resident(first, first + page));
        // SAFETY: nothing writes the graph's array meanwhile; every element is written below.
        unsafe { recycler.recycle(part, &[frontier]) };
        let filled = recycler.destinations[0].filled;
        assert!(
            filled >= first + (4 << 20) - 2 * page,
            "{filled:x} {first:x}"
        );
        assert!(resident(first, filled));
        assert!((0..frontier).all(|i| graph[i] == i as u64));
        graph.extend(frontier as u64..capacity as u64);
        assert!(graph.iter().enumerate().all(|(i, &v)| v == i as u64));
        // Once every run is taken (frontiers past the end), nothing moves.
        let filled = recycler.destinations[0].filled;
        // SAFETY: as above.
        unsafe { recycler.recycle(late, &[usize::MAX]) };
        assert_eq!(recycler.destinations[0].filled, filled);
        assert!(graph.iter().enumerate().all(|(i, &v)| v == i as u64));
        // The freed part's memory is the allocator's again, reading as zeros or rewritten.
        let again: Vec<u64> = (0..(512 << 10)).collect();
        assert!(again.iter().enumerate().all(|(i, &v)| v == i as u64));
    }

    #[test]
    fn only_arrays_the_allocator_mapped_apart_take_pages() {
        let big: Vec<u64> = Vec::with_capacity(5 << 20); // 40 MiB: mapped apart by glibc
        let small: Vec<u64> = Vec::with_capacity(1 << 16);
        let recycler = Recycler::new(&[(big.as_ptr() as usize, 8, 5 << 20)]);
        if recycler.moves_left == 0 {
            return; // no /proc here
        }
        let (base, end) = (big.as_ptr() as usize, big.as_ptr() as usize + (40 << 20));
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(recycler.mapped_apart(base, end, APART_BYTES));
        }
        assert!(!recycler.mapped_apart(base + 16, end, APART_BYTES));
        assert!(!recycler.mapped_apart(base, end + (1 << 20), APART_BYTES));
        let small_base = small.as_ptr() as usize;
        assert!(!recycler.mapped_apart(small_base, small_base + (1 << 19), APART_BYTES));
    }

    #[test]
    fn small_graphs_and_arrays_with_destructors_move_nothing() {
        let graph: Vec<u64> = Vec::with_capacity(1 << 20); // 8 MiB: below LEAST_BYTES
        let mut recycler = Recycler::new(&[(graph.as_ptr() as usize, 8, 1 << 20)]);
        assert_eq!(recycler.moves_left, 0);
        let part: Vec<u64> = (0..(1 << 20)).collect();
        // SAFETY: as above.
        unsafe { recycler.recycle(part, &[0]) };
        assert_eq!(recycler.destinations[0].filled, 0);
        let big: Vec<u64> = Vec::with_capacity(10 << 20);
        let mut recycler = Recycler::new(&[(big.as_ptr() as usize, 8, 10 << 20)]);
        let strings: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        // SAFETY: as above.
        unsafe { recycler.recycle(strings, &[0]) };
        assert_eq!(recycler.destinations[0].filled, 0);
    }

    #[test]
    fn mappings_are_checked_one_by_one_for_sources_and_in_a_row_for_arrays() {
        let recycler = Recycler {
            destinations: Vec::new(),
            page: 4096,
            anonymous: vec![(0x1000, 0x5000), (0x5000, 0x9000), (0xa000, 0xb000)],
            moves_left: 1,
            moved: 0,
        };
        assert!(recycler.in_one(0x1000, 0x5000));
        assert!(!recycler.in_one(0x1000, 0x6000));
        assert!(!recycler.in_one(0x9000, 0xa000));
        assert!(recycler.covered(0x2000, 0x9000));
        assert!(!recycler.covered(0x2000, 0xa800));
        assert!(!recycler.covered(0x0, 0x2000));
        assert!(recycler.covered(0xa000, 0xb000));
    }
}
