//! An append-only string interner: each distinct string is stored once in one arena and named by
//! a `u32` [`StringId`]. Type names, attribute names, dict keys and frame names all live here, so a
//! graph with ten million edges labelled by a few hundred attribute names stores those names once.

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

/// The id of an interned string. `StringId::EMPTY` (0) is always the empty string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StringId(pub u32);

impl StringId {
    pub const EMPTY: StringId = StringId(0);
}

/// The longest string a table holds, in bytes. Everything heaplens names is far shorter (the
/// capture cuts names and keys at a few hundred characters, a quoted source line at
/// [`MAX_STRING_BYTES`] too); the bound lets a snapshot reader refuse a file whose string claims
/// gigabytes before it reads them.
pub const MAX_STRING_BYTES: usize = 16 * 1024;

/// Interned strings in one arena. Offsets are `u32`, so the arena holds at most 4 GiB of text;
/// [`StringTable::intern`] refuses to grow past that (it returns the empty string's id, which
/// the callers treat as "no label"), and cuts a string longer than [`MAX_STRING_BYTES`].
#[derive(Clone, Debug)]
pub struct StringTable {
    arena: String,
    ends: Vec<u32>,
    /// Each string's id (high 32 bits) and the low 32 bits of its hash: growing the table
    /// rehashes from these, without reading (and hashing again) every string, which on a heap
    /// of millions of distinct dict keys was a sixth of a snapshot's time.
    index: HashTable<u64>,
    hasher: DefaultHashBuilder,
}

/// The hash the index places an entry by, from the 32 bits it keeps: spread over 64 bits, as
/// hashbrown takes its control bits from the top.
fn placement(hash32: u32) -> u64 {
    (hash32 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn entry(id: u32, hash32: u32) -> u64 {
    (id as u64) << 32 | hash32 as u64
}

impl Default for StringTable {
    fn default() -> Self {
        Self::new()
    }
}

impl StringTable {
    pub fn new() -> Self {
        let mut table = StringTable {
            arena: String::new(),
            ends: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        };
        let empty = table.intern("");
        debug_assert_eq!(empty, StringId::EMPTY);
        table
    }

    /// The number of distinct strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of text held (without bookkeeping).
    pub fn text_bytes(&self) -> usize {
        self.arena.len()
    }

    /// The string named by `id`, or "" for an id this table never issued.
    pub fn get(&self, id: StringId) -> &str {
        let i = id.0 as usize;
        if i >= self.ends.len() {
            return "";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    /// The id of `s`, adding it if it is new. A string longer than [`MAX_STRING_BYTES`] is
    /// stored cut, ending in `…#` and a fingerprint of the whole text, so that two long strings
    /// sharing a beginning stay two.
    pub fn intern(&mut self, s: &str) -> StringId {
        if s.len() > MAX_STRING_BYTES {
            return self.intern(&cut_with_fingerprint(s));
        }
        let hash32 = self.hasher.hash_one(s) as u32;
        let (arena, ends) = (&self.arena, &self.ends);
        let slice_of = |id: u32| -> &str {
            let i = id as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            &arena[start..ends[i] as usize]
        };
        let found = self.index.entry(
            placement(hash32),
            |&e| e as u32 == hash32 && slice_of((e >> 32) as u32) == s,
            |&e| placement(e as u32),
        );
        match found {
            Entry::Occupied(found) => StringId((*found.get() >> 32) as u32),
            Entry::Vacant(vacant) => {
                let new_len = self.arena.len() + s.len();
                if new_len > u32::MAX as usize || self.ends.len() >= u32::MAX as usize {
                    return StringId::EMPTY;
                }
                let id = self.ends.len() as u32;
                self.arena.push_str(s);
                self.ends.push(new_len as u32);
                vacant.insert(entry(id, hash32));
                StringId(id)
            }
        }
    }

    /// Makes room for one more string of `bytes` bytes, or returns false if memory cannot be
    /// had, where [`StringTable::intern`] would abort the process: what a reader of a file calls
    /// first, so that the sizes a file declares cannot end the process.
    pub fn try_reserve_one(&mut self, bytes: usize) -> bool {
        if self.arena.try_reserve(bytes).is_err() || self.ends.try_reserve(1).is_err() {
            return false;
        }
        self.index.try_reserve(1, |&e| placement(e as u32)).is_ok()
    }

    /// The id of `s` if it was interned, without adding it.
    pub fn find(&self, s: &str) -> Option<StringId> {
        if s.len() > MAX_STRING_BYTES {
            return self.find(&cut_with_fingerprint(s));
        }
        let hash32 = self.hasher.hash_one(s) as u32;
        self.index
            .find(placement(hash32), |&e| {
                e as u32 == hash32 && self.get(StringId((e >> 32) as u32)) == s
            })
            .map(|&e| StringId((e >> 32) as u32))
    }

    /// Approximate heap bytes used by the table.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.index.capacity() * 9
    }

    /// Iterates over every (id, string) pair in id order.
    pub fn iter(&self) -> impl Iterator<Item = (StringId, &str)> {
        (0..self.ends.len() as u32).map(move |i| (StringId(i), self.get(StringId(i))))
    }
}

/// `s` cut to fit [`MAX_STRING_BYTES`] on a character boundary, then `…#` and eight hex digits of
/// a hash of the whole text (FNV-1a, as the capture marks the names it cuts).
fn cut_with_fingerprint(s: &str) -> String {
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let suffix = format!("…#{:08x}", hash as u32);
    let mut end = MAX_STRING_BYTES - suffix.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_too_long_is_cut_with_a_fingerprint_and_stays_distinct() {
        let mut t = StringTable::new();
        let long_a = format!("{}a", "é".repeat(MAX_STRING_BYTES));
        let long_b = format!("{}b", "é".repeat(MAX_STRING_BYTES));
        let a = t.intern(&long_a);
        let b = t.intern(&long_b);
        assert_ne!(a, b, "two long strings sharing a beginning stay two");
        assert!(t.get(a).len() <= MAX_STRING_BYTES);
        assert!(t.get(a).contains("…#"));
        assert_eq!(t.intern(&long_a), a);
        assert_eq!(t.find(&long_b), Some(b));
    }

    #[test]
    fn interning_the_same_text_twice_gives_the_same_id() {
        let mut t = StringTable::new();
        let a = t.intern("cache");
        let b = t.intern("items");
        assert_ne!(a, b);
        assert_eq!(t.intern("cache"), a);
        assert_eq!(t.get(a), "cache");
        assert_eq!(t.get(b), "items");
        assert_eq!(t.len(), 3, "the empty string is always present");
    }

    #[test]
    fn the_empty_string_is_id_zero_and_unknown_ids_read_as_empty() {
        let mut t = StringTable::new();
        assert_eq!(t.intern(""), StringId::EMPTY);
        assert_eq!(t.get(StringId(999)), "");
    }

    #[test]
    fn find_does_not_add() {
        let mut t = StringTable::new();
        assert_eq!(t.find("x"), None);
        let x = t.intern("x");
        assert_eq!(t.find("x"), Some(x));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn many_strings_round_trip() {
        let mut t = StringTable::new();
        let ids: Vec<_> = (0..10_000).map(|i| t.intern(&format!("key-{i}"))).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get(*id), format!("key-{i}"));
        }
        assert_eq!(t.intern("key-5000"), ids[5000]);
    }

    #[test]
    fn unicode_and_hostile_text_is_stored_verbatim() {
        let mut t = StringTable::new();
        let s = "<script>alert('x')</script>\u{0}\u{202e}é";
        let id = t.intern(s);
        assert_eq!(t.get(id), s);
    }
}
