//! An append-only string interner: each distinct string is stored once in one arena and named by
//! a `u32` [`StringId`]. Type names, attribute names, dict keys and frame names all live here, so a
//! graph with ten million edges labelled by a few hundred attribute names stores those names once.
//!
//! Beside the interned strings the table keeps *unindexed* ones ([`StringTable::add_unindexed`]):
//! the text of a dict key that only its dict refers to, which the walk meets exactly once and so
//! never needs to look up. They are appended to an arena of their own, with no hash and no index
//! probe: a dict of millions of distinct keys (a cache keyed by ids, the commonest leak) spent
//! most of its snapshot hashing and interning keys that could never repeat, and its hash index
//! was most of the snapshot's extra memory. Their ids start at [`UNINDEXED`], and everything that
//! takes a [`StringId`] reads them like the others.

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

/// The id of an interned string. `StringId::EMPTY` (0) is always the empty string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StringId(pub u32);

impl StringId {
    pub const EMPTY: StringId = StringId(0);

    /// Whether the id names an unindexed string ([`StringTable::add_unindexed`]).
    pub fn is_unindexed(self) -> bool {
        self.0 >= UNINDEXED
    }
}

/// The id of the first unindexed string: interned strings take the ids below it (at most
/// 2^26, 67 million), unindexed ones the ids from it on. Both ranges fit the 27 bits a
/// [`crate::label::Label`] gives a name, so a label names either kind.
pub const UNINDEXED: u32 = 1 << 26;

/// The longest string a table holds, in bytes. Everything heaplens names is far shorter (the
/// capture cuts names and keys at a few hundred characters, a quoted source line at
/// [`MAX_STRING_BYTES`] too); the bound lets a snapshot reader refuse a file whose string claims
/// gigabytes before it reads them.
pub const MAX_STRING_BYTES: usize = 16 * 1024;

/// Interned strings in one arena, unindexed ones in another. Offsets are `u32`, so each arena
/// holds at most 4 GiB of text; [`StringTable::intern`] refuses to grow past that (it returns
/// the empty string's id, which the callers treat as "no label"), and cuts a string longer than
/// [`MAX_STRING_BYTES`].
#[derive(Clone, Debug)]
pub struct StringTable {
    arena: String,
    ends: Vec<u32>,
    /// Each string's id (high 32 bits) and the low 32 bits of its hash: growing the table
    /// rehashes from these, without reading (and hashing again) every string, which on a heap
    /// of millions of distinct dict keys was a sixth of a snapshot's time.
    index: HashTable<u64>,
    hasher: DefaultHashBuilder,
    /// The unindexed strings: string `UNINDEXED + i` ends at `unindexed_ends[i]`.
    unindexed_arena: String,
    unindexed_ends: Vec<u32>,
}

/// How the ids of one table read in another that merged it ([`StringTable::merge`]).
#[derive(Debug, Default)]
pub struct StringRemap {
    interned: Vec<StringId>,
    unindexed_base: u32,
    /// Set when the unindexed strings could not be appended whole.
    unindexed: Option<Vec<StringId>>,
}

impl StringRemap {
    /// The id in the merged table of the merging table's `id` ("" for an id it never issued).
    #[inline]
    pub fn map(&self, id: StringId) -> StringId {
        if id.is_unindexed() {
            let i = id.0 - UNINDEXED;
            match &self.unindexed {
                None => StringId(UNINDEXED + self.unindexed_base + i),
                Some(ids) => ids.get(i as usize).copied().unwrap_or(StringId::EMPTY),
            }
        } else {
            self.interned
                .get(id.0 as usize)
                .copied()
                .unwrap_or(StringId::EMPTY)
        }
    }
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
            unindexed_arena: String::new(),
            unindexed_ends: Vec::new(),
        };
        let empty = table.intern("");
        debug_assert_eq!(empty, StringId::EMPTY);
        table
    }

    /// The number of strings, interned and unindexed.
    pub fn len(&self) -> usize {
        self.ends.len() + self.unindexed_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of interned strings: their ids are `0..interned_len()`.
    pub fn interned_len(&self) -> usize {
        self.ends.len()
    }

    /// The number of unindexed strings: their ids are `UNINDEXED..UNINDEXED + unindexed_len()`.
    pub fn unindexed_len(&self) -> usize {
        self.unindexed_ends.len()
    }

    /// Whether `id` names a string of this table.
    pub fn contains(&self, id: StringId) -> bool {
        if id.is_unindexed() {
            ((id.0 - UNINDEXED) as usize) < self.unindexed_ends.len()
        } else {
            (id.0 as usize) < self.ends.len()
        }
    }

    /// Bytes of text held (without bookkeeping).
    pub fn text_bytes(&self) -> usize {
        self.arena.len() + self.unindexed_arena.len()
    }

    /// The string named by `id`, or "" for an id this table never issued.
    pub fn get(&self, id: StringId) -> &str {
        let (arena, ends, i) = if id.is_unindexed() {
            (
                &self.unindexed_arena,
                &self.unindexed_ends,
                (id.0 - UNINDEXED) as usize,
            )
        } else {
            (&self.arena, &self.ends, id.0 as usize)
        };
        if i >= ends.len() {
            return "";
        }
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &arena[start..ends[i] as usize]
    }

    /// The position of `id` among all the strings, interned ones first: `0..len()`, for a
    /// format that numbers strings densely (Chrome's). `None` for an id the table never issued.
    pub fn position(&self, id: StringId) -> Option<u32> {
        if !self.contains(id) {
            return None;
        }
        Some(if id.is_unindexed() {
            self.ends.len() as u32 + (id.0 - UNINDEXED)
        } else {
            id.0
        })
    }

    /// The id of the string at `position` ([`StringTable::position`]), or `None` past the end.
    pub fn at_position(&self, position: u32) -> Option<StringId> {
        let p = position as usize;
        if p < self.ends.len() {
            Some(StringId(position))
        } else if p < self.len() {
            Some(StringId(UNINDEXED + (p - self.ends.len()) as u32))
        } else {
            None
        }
    }

    /// Adds `s` as an unindexed string and returns its new id, without looking for it among the
    /// strings already held: for a text the caller knows it adds once (the key of a dict that
    /// alone refers to it). The same text added twice gets two ids that read alike. Returns the
    /// empty string's id when the unindexed strings are full (2^32 - 2^26 of them, or 4 GiB).
    pub fn add_unindexed(&mut self, s: &str) -> StringId {
        self.add_unindexed_with(|out| {
            out.push_str(s);
            true
        })
    }

    /// [`StringTable::add_unindexed`], for a text that `write` appends to the end of the arena
    /// (the capture copies a key's text straight from the object, or formats an int there).
    /// When `write` returns false, whatever it appended is dropped and the empty string's id
    /// comes back.
    #[inline]
    pub fn add_unindexed_with(&mut self, write: impl FnOnce(&mut String) -> bool) -> StringId {
        let start = self.unindexed_arena.len();
        if !write(&mut self.unindexed_arena) {
            self.unindexed_arena.truncate(start);
            return StringId::EMPTY;
        }
        let end = self.unindexed_arena.len();
        let index = self.unindexed_ends.len();
        if end - start > MAX_STRING_BYTES {
            let cut = cut_with_fingerprint(&self.unindexed_arena[start..]);
            self.unindexed_arena.truncate(start);
            self.unindexed_arena.push_str(&cut);
        }
        let end = self.unindexed_arena.len();
        if end > u32::MAX as usize || index >= (u32::MAX - UNINDEXED) as usize {
            self.unindexed_arena.truncate(start);
            return StringId::EMPTY;
        }
        self.unindexed_ends.push(end as u32);
        StringId(UNINDEXED + index as u32)
    }

    /// Adds every string of `other` (interned ones interned, unindexed ones appended) and
    /// returns how `other`'s ids read in this table.
    pub fn merge(&mut self, other: &StringTable) -> StringRemap {
        let interned = (0..other.ends.len() as u32)
            .map(|i| self.intern(other.get(StringId(i))))
            .collect();
        let unindexed_base = self.unindexed_ends.len() as u32;
        let fits = self.unindexed_arena.len() + other.unindexed_arena.len() <= u32::MAX as usize
            && (unindexed_base as usize + other.unindexed_ends.len())
                < (u32::MAX - UNINDEXED) as usize;
        let unindexed = if fits {
            let shift = self.unindexed_arena.len() as u32;
            self.unindexed_arena.push_str(&other.unindexed_arena);
            self.unindexed_ends
                .extend(other.unindexed_ends.iter().map(|e| e + shift));
            None
        } else {
            // Past the table's limits: each string goes through `add_unindexed`, which keeps
            // what fits and names the rest "".
            Some(
                (0..other.unindexed_ends.len() as u32)
                    .map(|i| self.add_unindexed(other.get(StringId(UNINDEXED + i))))
                    .collect(),
            )
        };
        StringRemap {
            interned,
            unindexed_base,
            unindexed,
        }
    }

    /// The id of `s`, adding it if it is new. A string longer than [`MAX_STRING_BYTES`] is
    /// stored cut, ending in `…#` and a fingerprint of the whole text, so that two long strings
    /// sharing a beginning stay two.
    pub fn intern(&mut self, s: &str) -> StringId {
        if s.len() > MAX_STRING_BYTES {
            return self.intern(&cut_with_fingerprint(s));
        }
        if self.ends.len() >= UNINDEXED as usize {
            // The interned ids are all taken: the text is kept, only no longer shared.
            return self.find(s).unwrap_or_else(|| self.add_unindexed(s));
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

    /// Makes room for `count` more unindexed strings of about `bytes` bytes in all, if memory
    /// allows (a failed reservation is not an error: the arrays then grow as needed). Room
    /// never written costs address space, not memory, and [`StringTable::shrink_to_fit`] gives
    /// it back.
    pub fn reserve_unindexed(&mut self, count: usize, bytes: usize) {
        let _ = self.unindexed_ends.try_reserve(count);
        let _ = self.unindexed_arena.try_reserve(bytes);
    }

    /// Gives back the room the arenas hold beyond their text (the index keeps its size).
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.unindexed_arena.shrink_to_fit();
        self.unindexed_ends.shrink_to_fit();
    }

    /// [`StringTable::try_reserve_one`] for one more unindexed string.
    pub fn try_reserve_one_unindexed(&mut self, bytes: usize) -> bool {
        self.unindexed_arena.try_reserve(bytes).is_ok()
            && self.unindexed_ends.try_reserve(1).is_ok()
    }

    /// The id of `s` if it was interned, without adding it (unindexed strings are not found).
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
        self.arena.capacity()
            + self.ends.capacity() * 4
            + self.index.capacity() * 9
            + self.unindexed_arena.capacity()
            + self.unindexed_ends.capacity() * 4
    }

    /// Iterates over every (id, string) pair in id order: the interned strings, then the
    /// unindexed ones (the order of [`StringTable::position`]).
    pub fn iter(&self) -> impl Iterator<Item = (StringId, &str)> {
        let interned = (0..self.ends.len() as u32).map(StringId);
        let unindexed = (0..self.unindexed_ends.len() as u32).map(|i| StringId(UNINDEXED + i));
        interned.chain(unindexed).map(move |id| (id, self.get(id)))
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
    fn a_merged_table_reads_every_string_of_the_other_under_its_new_id() {
        let mut first = StringTable::new();
        let shared = first.intern("shared");
        let key = first.add_unindexed("key one");
        let mut second = StringTable::new();
        let ids = [
            second.intern("own"),
            second.intern("shared"),
            second.add_unindexed("key two"),
            second.add_unindexed("key three"),
            StringId::EMPTY,
        ];
        let remap = first.merge(&second);
        for id in ids {
            assert_eq!(first.get(remap.map(id)), second.get(id));
        }
        // Interned strings are shared, unindexed ones appended after the table's own.
        assert_eq!(remap.map(ids[1]), shared);
        assert_eq!(first.get(key), "key one");
        assert!(remap.map(ids[2]).is_unindexed());
        assert_eq!(first.unindexed_len(), 3);
        // An id the other table never issued reads as "".
        assert_eq!(first.get(remap.map(StringId(999))), "");
        assert_eq!(first.get(remap.map(StringId(UNINDEXED + 99))), "");
    }

    #[test]
    fn unindexed_strings_read_like_interned_ones_but_are_never_shared() {
        let mut t = StringTable::new();
        let cache = t.intern("cache");
        let a = t.add_unindexed("key-1");
        let b = t.add_unindexed("key-1");
        let c = t.add_unindexed("cache");
        assert_eq!(a, StringId(UNINDEXED));
        assert_ne!(a, b, "each call adds a string");
        assert!(a.is_unindexed() && !cache.is_unindexed());
        assert_eq!((t.get(a), t.get(b), t.get(c)), ("key-1", "key-1", "cache"));
        assert_eq!(t.find("key-1"), None, "unindexed strings are not looked up");
        assert_eq!(t.intern("cache"), cache);
        assert_eq!(
            t.intern("key-1").0,
            2,
            "interning the same text adds an interned one"
        );
        assert_eq!((t.len(), t.interned_len(), t.unindexed_len()), (6, 3, 3));
        assert!(t.contains(c) && !t.contains(StringId(UNINDEXED + 3)));
        assert_eq!(t.get(StringId(UNINDEXED + 3)), "");
    }

    #[test]
    fn positions_number_interned_then_unindexed_strings_densely() {
        let mut t = StringTable::new();
        let x = t.intern("x");
        let u = t.add_unindexed("u");
        let v = t.add_unindexed("");
        let ids: Vec<_> = t.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, [StringId::EMPTY, x, u, v]);
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(t.position(*id), Some(position as u32));
            assert_eq!(t.at_position(position as u32), Some(*id));
        }
        assert_eq!(t.at_position(4), None);
        assert_eq!(t.position(StringId(UNINDEXED + 2)), None);
        assert_eq!(t.position(StringId(2)), None);
    }

    #[test]
    fn unindexed_text_is_written_in_place_cut_when_long_and_dropped_on_failure() {
        let mut t = StringTable::new();
        let id = t.add_unindexed_with(|out| {
            out.push_str("1000000007");
            true
        });
        assert_eq!(t.get(id), "1000000007");
        let failed = t.add_unindexed_with(|out| {
            out.push_str("half");
            false
        });
        assert_eq!(failed, StringId::EMPTY);
        assert_eq!(t.unindexed_len(), 1);
        assert_eq!(
            t.text_bytes(),
            "1000000007".len(),
            "nothing of the failed text stays"
        );
        let long = "é".repeat(MAX_STRING_BYTES);
        let cut = t.add_unindexed(&long);
        assert!(t.get(cut).len() <= MAX_STRING_BYTES);
        assert_eq!(t.get(cut), cut_with_fingerprint(&long));
        assert_eq!(t.get(id), "1000000007", "earlier strings are untouched");
    }

    #[test]
    fn unicode_and_hostile_text_is_stored_verbatim() {
        let mut t = StringTable::new();
        let s = "<script>alert('x')</script>\u{0}\u{202e}é";
        let id = t.intern(s);
        assert_eq!(t.get(id), s);
    }
}
