//! An append-only array in blocks of a fixed size that never move once allocated: a growing
//! record of millions of items that leaves no outgrown copies in the allocator (an array that
//! grows by copying does, and they add to a snapshot's peak memory).

/// Items in blocks of 32,768, appended to and read by number, a block's slice at a time.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

#[cfg_attr(not(feature = "python"), allow(dead_code))]
impl<T: Copy> Blocks<T> {
    /// log2 of the block size.
    const BITS: u32 = 15;
    const SIZE: usize = 1 << Self::BITS;

    /// How many items were appended.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, item: T) {
        if self.len % Self::SIZE == 0 {
            self.blocks.push(Vec::with_capacity(Self::SIZE));
        }
        if let Some(last) = self.blocks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    /// The items numbered `ids` (cut at [`Blocks::len`]), a block's slice at a time, each slice
    /// with the number of its first item: reading slices spares an indexing per item.
    pub(crate) fn slices(
        &self,
        ids: std::ops::Range<usize>,
    ) -> impl DoubleEndedIterator<Item = (usize, &[T])> + '_ {
        let (lo, hi) = (ids.start, ids.end.min(self.len));
        let blocks = match lo < hi {
            true => lo >> Self::BITS..((hi - 1) >> Self::BITS) + 1,
            false => 0..0,
        };
        blocks.map(move |b| {
            let at = b << Self::BITS;
            let first = at.max(lo);
            let end = (at + Self::SIZE).min(hi);
            (first, &self.blocks[b][first - at..end - at])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_a_range_across_blocks_in_order() {
        let mut blocks = Blocks::default();
        let n = 2 * Blocks::<usize>::SIZE + 5;
        for i in 0..n {
            blocks.push(i * 8);
        }
        assert_eq!(blocks.len(), n);
        let size = Blocks::<usize>::SIZE;
        for (lo, hi) in [
            (0, n),
            (1, n),
            (3, size),
            (size - 1, size + 2),
            (7, 7),
            (9, 3),
            (n, n + 9),
        ] {
            let mut flat = Vec::new();
            for (first, s) in blocks.slices(lo..hi) {
                assert!(!s.is_empty());
                for (k, &item) in s.iter().enumerate() {
                    assert_eq!(item, (first + k) * 8);
                    flat.push(first + k);
                }
            }
            assert_eq!(flat, (lo..hi.min(n)).collect::<Vec<_>>());
            let back: Vec<usize> = blocks
                .slices(lo..hi)
                .rev()
                .map(|(first, _)| first)
                .collect();
            let mut firsts: Vec<usize> = blocks.slices(lo..hi).map(|(first, _)| first).collect();
            firsts.reverse();
            assert_eq!(back, firsts);
        }
    }
}
