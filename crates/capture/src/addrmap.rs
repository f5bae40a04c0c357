//! An open-addressing map from object addresses to node ids, for the objects the GC lists do not
//! hold (str, int, float, bytes, untracked tuples and dicts, static types, code objects).
//!
//! Hand-written because it is the hot path of the walk: keys are pointers (never 0, 16-byte
//! aligned), so the hash is one multiply, the empty marker is 0, and keys and values live in two
//! flat arrays (12 bytes a slot, 70% load) with no per-entry allocation.

#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub struct AddrMap {
    keys: Vec<usize>,
    values: Vec<u32>,
    len: usize,
    shift: u32,
}

const MIN_BITS: u32 = 12;

#[cfg_attr(not(feature = "python"), allow(dead_code))]
impl AddrMap {
    pub fn new() -> Self {
        Self::with_bits(MIN_BITS)
    }

    /// A map with room for about `n` entries before it grows.
    pub fn with_capacity(n: usize) -> Self {
        let mut bits = MIN_BITS;
        while (1usize << bits) * 7 / 10 < n {
            bits += 1;
        }
        Self::with_bits(bits)
    }

    pub(crate) fn with_bits(bits: u32) -> Self {
        AddrMap {
            keys: vec![0; 1 << bits],
            values: vec![0; 1 << bits],
            len: 0,
            shift: 64 - bits,
        }
    }

    #[inline(always)]
    fn slot(&self, key: usize) -> usize {
        (key >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift
    }

    /// Starts loading the slot where `key` would be, ahead of a lookup.
    #[inline(always)]
    pub fn prefetch(&self, key: usize) {
        crate::prefetch::prefetch(&self.keys[self.slot(key)] as *const usize as *const u8);
    }

    /// The value for `key`, inserting `make()` if absent. Returns (value, inserted).
    #[inline]
    pub fn get_or_insert_with(&mut self, key: usize, make: impl FnOnce() -> u32) -> (u32, bool) {
        debug_assert!(key != 0);
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return (self.values[i], false);
            }
            if k == 0 {
                let v = make();
                self.keys[i] = key;
                self.values[i] = v;
                self.len += 1;
                if self.len * 10 > self.keys.len() * 7 {
                    self.grow();
                }
                return (v, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `key`; returns whether it was new (the map used as a set).
    #[inline]
    pub fn insert(&mut self, key: usize) -> bool {
        self.get_or_insert_with(key, || 0).1
    }

    #[cfg(test)]
    pub fn get(&self, key: usize) -> Option<u32> {
        let mask = self.keys.len() - 1;
        let mut i = self.slot(key);
        loop {
            let k = self.keys[i];
            if k == key {
                return Some(self.values[i]);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        let mut bigger = AddrMap::with_bits(bits);
        for (k, v) in self.keys.iter().zip(&self.values) {
            if *k != 0 {
                let mask = bigger.keys.len() - 1;
                let mut i = bigger.slot(*k);
                while bigger.keys[i] != 0 {
                    i = (i + 1) & mask;
                }
                bigger.keys[i] = *k;
                bigger.values[i] = *v;
            }
        }
        bigger.len = self.len;
        *self = bigger;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_addresses_are_found_and_others_are_not() {
        let mut m = AddrMap::new();
        for i in 1..100_000usize {
            let (v, new) = m.get_or_insert_with(i * 16, || i as u32);
            assert!(new);
            assert_eq!(v, i as u32);
        }
        assert_eq!(m.len, 99_999);
        for i in 1..100_000usize {
            assert_eq!(m.get(i * 16), Some(i as u32));
            assert_eq!(m.get_or_insert_with(i * 16, || 0), (i as u32, false));
        }
        assert_eq!(m.get(16 * 200_000), None);
        assert!(!m.insert(32));
        assert!(m.insert(16 * 300_000));
    }
}
