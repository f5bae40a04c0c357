//! A least-significant-digit radix sort for object addresses: the diff and the address index
//! sort millions of them, where a comparison sort (and its random reads) would dominate.

/// Sorts by the 64-bit key, least significant digit first, 11 bits at a time (a scatter to 2048
/// places stays in cache), over the bits that vary (object addresses share their high bits and
/// their low four are zero), every digit counted in one pass and a digit that every item shares
/// skipped. Linear time: the diff sorts millions of addresses, where a comparison sort would
/// dominate.
pub(crate) fn radix_sort<T: Copy>(items: &mut Vec<T>, key: impl Fn(&T) -> u64) {
    const BITS: u32 = 11;
    const PLACES: usize = 1 << BITS;
    let Some(first) = items.first().map(&key) else {
        return;
    };
    let varying = items
        .iter()
        .fold(0u64, |acc, item| acc | (key(item) ^ first));
    if varying == 0 {
        return;
    }
    let (low, high) = (varying.trailing_zeros(), 64 - varying.leading_zeros());
    let digits = (high - low).div_ceil(BITS) as usize;
    let digit =
        |item: &T, d: usize| ((key(item) >> (low + BITS * d as u32)) as usize) & (PLACES - 1);
    let mut counts = vec![[0usize; PLACES]; digits];
    for item in items.iter() {
        for (d, c) in counts.iter_mut().enumerate() {
            c[digit(item, d)] += 1;
        }
    }
    let n = items.len();
    let mut buffer: Vec<T> = crate::hugepages::scratch_with_capacity(n);
    for (d, c) in counts.iter().enumerate() {
        if c.contains(&n) {
            continue;
        }
        let mut starts = [0usize; PLACES];
        let mut sum = 0;
        for (s, &k) in starts.iter_mut().zip(c) {
            (*s, sum) = (sum, sum + k);
        }
        let out = buffer.as_mut_ptr();
        for item in items.iter() {
            let place = &mut starts[digit(item, d)];
            // SAFETY: the starts partition 0..n by the counts, so each of the n writes lands on
            // its own slot below n, within the buffer's capacity.
            unsafe { out.add(*place).write(*item) };
            *place += 1;
        }
        // SAFETY: all n slots were written above.
        unsafe { buffer.set_len(n) };
        std::mem::swap(items, &mut buffer);
    }
}

/// The most distinct high halves (`addr >> 32`) a packed sort handles: a heap spans a few
/// (the executable's static objects, the allocator's arenas), a huge one a few more.
const MOST_HIGH_HALVES: usize = 16;

/// `nodes` sorted by `addr(n)` (distinct addresses). Each is packed with its address into one
/// `u64` (the address compressed to 32 bits: the rank of its high half among the few a heap has,
/// then its low half without the alignment bits), so the sort moves 8 bytes an object rather
/// than 16 and reads each address once; a heap whose addresses do not compress so is sorted as
/// (address, node) pairs.
pub(crate) fn sort_by_address(
    nodes: impl Iterator<Item = u32> + Clone,
    addr: impl Fn(u32) -> u64,
) -> Vec<u32> {
    let as_pairs = |nodes: &mut dyn Iterator<Item = u32>| {
        let mut pairs: Vec<(u64, u32)> = nodes.map(|n| (addr(n), n)).collect();
        radix_sort(&mut pairs, |p| p.0);
        pairs.into_iter().map(|(_, n)| n).collect()
    };
    let mut highs: Vec<u32> = Vec::new();
    let mut all_bits = 0u64;
    let mut last_high = None;
    let mut count = 0usize;
    for n in nodes.clone() {
        let a = addr(n);
        all_bits |= a;
        count += 1;
        let high = (a >> 32) as u32;
        if last_high != Some(high) && !highs.contains(&high) {
            highs.push(high);
            if highs.len() > MOST_HIGH_HALVES {
                return as_pairs(&mut nodes.clone());
            }
        }
        last_high = Some(high);
    }
    // Bits of the low half that are zero in every address (the alignment) make room for the
    // rank of the high half.
    let rank_bits = (all_bits as u32).trailing_zeros().min(32);
    if highs.len() > 1 << rank_bits.min(16) {
        return as_pairs(&mut nodes.clone());
    }
    let shift = rank_bits;
    highs.sort_unstable();
    let mut packed: Vec<u64> = crate::hugepages::scratch_with_capacity(count);
    let mut last = (u32::MAX, 0u64);
    for n in nodes {
        let a = addr(n);
        let high = (a >> 32) as u32;
        if high != last.0 {
            let rank = highs.binary_search(&high).unwrap_or(0) as u64;
            last = (high, rank << (32 - rank_bits));
        }
        let key = last.1 | ((a as u32 as u64) >> shift);
        packed.push(key << 32 | n as u64);
    }
    radix_sort(&mut packed, |&p| p >> 32);
    packed.into_iter().map(|p| p as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_sort_sorts_addresses() {
        let mut v: Vec<(u64, u32)> = (0..10_000u32)
            .map(|i| ((i as u64 * 7919 % 10_007) << 4 | 0x7f00_0000_0000, i))
            .collect();
        let mut expected = v.clone();
        expected.sort_by_key(|p| p.0);
        radix_sort(&mut v, |p| p.0);
        assert_eq!(v, expected);
        let mut same = vec![(5u64, 1u32), (5, 2)];
        radix_sort(&mut same, |p| p.0);
        assert_eq!(same, vec![(5, 1), (5, 2)]);
    }

    #[test]
    fn nodes_sort_by_address_packed_or_not() {
        // Two high halves (the executable's objects and the arenas), 16-byte aligned: packed.
        let addrs: Vec<u64> = (0..10_000u64)
            .map(|i| {
                let base = if i % 3 == 0 {
                    0x5555_0000_0000
                } else {
                    0x7f00_0000_0000
                };
                base | ((i * 7919 % 10_007) << 4)
            })
            .collect();
        let mut expected: Vec<u32> = (0..addrs.len() as u32).collect();
        expected.sort_by_key(|&n| addrs[n as usize]);
        let sorted = sort_by_address(0..addrs.len() as u32, |n| addrs[n as usize]);
        assert_eq!(sorted, expected);
        // 8-byte aligned static objects among them, and a subset of the nodes.
        let mut odd = addrs.clone();
        odd[5] = 0x5555_0000_0008;
        let nodes = (0..odd.len() as u32).filter(|n| n % 2 == 1);
        let mut expected: Vec<u32> = nodes.clone().collect();
        expected.sort_by_key(|&n| odd[n as usize]);
        assert_eq!(sort_by_address(nodes, |n| odd[n as usize]), expected);
        // Addresses spread over many high halves: sorted as pairs.
        let spread: Vec<u64> = (0..1000u64)
            .map(|i| ((i * 37 % 1000) << 36) | 0x10)
            .collect();
        let mut expected: Vec<u32> = (0..1000).collect();
        expected.sort_by_key(|&n| spread[n as usize]);
        assert_eq!(
            sort_by_address(0..1000u32, |n| spread[n as usize]),
            expected
        );
    }
}
