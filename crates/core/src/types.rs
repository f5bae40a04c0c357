//! The type table: one entry per Python type seen in a heap, named the way Python developers
//! name types. A census row and a graph node both refer to a type by its [`TypeId`].

use crate::strings::{StringId, StringTable};

/// Index of a type in a [`TypeTable`]. Graph nodes store it in 24 bits, so a heap may hold at
/// most 16,777,215 distinct types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The largest type id a graph node can hold.
    pub const MAX: u32 = (1 << 24) - 1;
}

/// Per-type facts that are not names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeFlags(pub u8);

impl TypeFlags {
    /// The type overrides `__sizeof__` with code heaplens does not replicate; its objects are
    /// sized by `tp_basicsize + ob_size * tp_itemsize` (plus the GC header), which is what
    /// `object.__sizeof__` would say, so their sizes are a lower bound.
    pub const APPROXIMATE_SIZE: TypeFlags = TypeFlags(1);
    /// Not a Python type: the pseudo-types of synthetic nodes (the root, thread stacks, frames).
    pub const SYNTHETIC: TypeFlags = TypeFlags(2);

    pub fn contains(self, other: TypeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for TypeFlags {
    type Output = TypeFlags;
    fn bitor(self, rhs: TypeFlags) -> TypeFlags {
        TypeFlags(self.0 | rhs.0)
    }
}

/// One Python type: `module`, `__name__` and `__qualname__`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeInfo {
    pub module: StringId,
    pub name: StringId,
    pub qualname: StringId,
    pub flags: TypeFlags,
}

/// All types of one heap, in the order they were first seen.
#[derive(Clone, Debug, Default)]
pub struct TypeTable {
    types: Vec<TypeInfo>,
}

impl TypeTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a type and returns its id. Two distinct types may share names (two classes called
    /// `Item` in one module, say); they keep distinct ids here and merge only in name-keyed views.
    pub fn push(&mut self, info: TypeInfo) -> crate::error::Result<TypeId> {
        if self.types.len() as u64 > TypeId::MAX as u64 {
            return Err(crate::Error::TooLarge {
                what: "distinct types",
                limit: TypeId::MAX as u64,
            });
        }
        self.types.push(info);
        Ok(TypeId(self.types.len() as u32 - 1))
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn get(&self, id: TypeId) -> &TypeInfo {
        &self.types[id.0 as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &TypeInfo)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (TypeId(i as u32), t))
    }

    /// The name heaplens shows: `qualname` for builtins, `module.qualname` otherwise
    /// (`dict`, `collections.OrderedDict`, `myapp.models.Order`).
    pub fn display_name(&self, id: TypeId, strings: &StringTable) -> String {
        let t = self.get(id);
        let module = strings.get(t.module);
        let qualname = strings.get(t.qualname);
        if module.is_empty() || module == "builtins" {
            qualname.to_string()
        } else {
            format!("{module}.{qualname}")
        }
    }

    /// objgraph's short name: `type(obj).__name__`.
    pub fn short_name<'a>(&self, id: TypeId, strings: &'a StringTable) -> &'a str {
        strings.get(self.get(id).name)
    }

    /// objgraph's long name: `module.__name__`, with `builtins.` kept (`builtins.dict`).
    pub fn long_name(&self, id: TypeId, strings: &StringTable) -> String {
        let t = self.get(id);
        let module = strings.get(t.module);
        let name = strings.get(t.name);
        if module.is_empty() {
            name.to_string()
        } else {
            format!("{module}.{name}")
        }
    }

    /// Whether `query` names this type: its display name, its objgraph long name, its
    /// `__qualname__` or (when `query` has no dot) its `__name__`.
    pub fn matches(&self, id: TypeId, strings: &StringTable, query: &str) -> bool {
        let t = self.get(id);
        if t.flags.contains(TypeFlags::SYNTHETIC) {
            return false;
        }
        if !query.contains('.') {
            return strings.get(t.name) == query || strings.get(t.qualname) == query;
        }
        strings.get(t.qualname) == query
            || self.display_name(id, strings) == query
            || self.long_name(id, strings) == query
    }

    /// For each type, by id, whether `query` names it ([`TypeTable::matches`]): asked once per
    /// type rather than once per object, since a dotted name is formatted to be compared.
    pub fn matching(&self, strings: &StringTable, query: &str) -> Vec<bool> {
        self.iter()
            .map(|(id, _)| self.matches(id, strings, query))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (TypeTable, StringTable, TypeId, TypeId) {
        let mut s = StringTable::new();
        let mut t = TypeTable::new();
        let dict = t
            .push(TypeInfo {
                module: s.intern("builtins"),
                name: s.intern("dict"),
                qualname: s.intern("dict"),
                flags: TypeFlags::default(),
            })
            .unwrap();
        let order = t
            .push(TypeInfo {
                module: s.intern("myapp.models"),
                name: s.intern("Order"),
                qualname: s.intern("Shop.Order"),
                flags: TypeFlags::default(),
            })
            .unwrap();
        (t, s, dict, order)
    }

    #[test]
    fn builtins_are_shown_without_their_module() {
        let (t, s, dict, order) = table();
        assert_eq!(t.display_name(dict, &s), "dict");
        assert_eq!(t.display_name(order, &s), "myapp.models.Shop.Order");
        assert_eq!(t.long_name(dict, &s), "builtins.dict");
        assert_eq!(t.long_name(order, &s), "myapp.models.Order");
        assert_eq!(t.short_name(order, &s), "Order");
    }

    #[test]
    fn a_type_is_found_by_any_name_users_know() {
        let (t, s, dict, order) = table();
        assert!(t.matches(dict, &s, "dict"));
        assert!(t.matches(dict, &s, "builtins.dict"));
        assert!(t.matches(order, &s, "Order"));
        assert!(t.matches(order, &s, "myapp.models.Order"));
        assert!(t.matches(order, &s, "myapp.models.Shop.Order"));
        assert!(t.matches(order, &s, "Shop.Order"));
        assert!(!t.matches(order, &s, "other.Order"));
        assert!(!t.matches(dict, &s, "Order"));
        let mut named = vec![false; t.len()];
        named[order.0 as usize] = true;
        assert_eq!(t.matching(&s, "myapp.models.Order"), named);
    }
}
