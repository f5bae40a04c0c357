//! The one ranking rule of every report: the type a developer would name comes first. That is
//! the instance the code keeps (a `Session`, a task, a handler, an exception), not the `str`,
//! `dict`, `tuple` and `list` payload that grows as fast inside it. Suspects already name the
//! type their container holds directly ([`super::accumulation`]); tables of types that grew
//! put those types first, then the other classes, then the builtin types and weak references,
//! each by growth.

use super::accumulation::Suspect;
use crate::census::TypeDelta;
use hashbrown::HashMap;

/// Types that are data rather than the thing a program accumulates.
pub const PAYLOAD_TYPES: [&str; 9] = [
    "str",
    "bytes",
    "int",
    "float",
    "tuple",
    "bool",
    "complex",
    "bytearray",
    "NoneType",
];

/// Whether a type (by display name) is plain data.
pub fn is_payload(name: &str) -> bool {
    PAYLOAD_TYPES.contains(&name)
}

/// The weak references a weak registry keeps (a `WeakSet`'s, a `WeakValueDictionary`'s, the
/// `logging` module's list of handlers): they live exactly as long as what they refer to, so
/// they grow because something else does.
pub const WEAK_BOOKKEEPING: [&str; 5] = [
    "weakref.ReferenceType",
    "weakref.KeyedRef",
    "weakref.WeakMethod",
    "weakref.ProxyType",
    "weakref.CallableProxyType",
];

/// Whether a type (by display name) is one a developer would not name as the leak: one of the
/// interpreter's builtins (`dict`, `function`, `cell`: display names of builtins carry no
/// module), or a weak registry's bookkeeping ([`WEAK_BOOKKEEPING`]).
pub fn is_generic(name: &str) -> bool {
    !name.contains('.') || WEAK_BOOKKEEPING.contains(&name)
}

/// Orders per-type changes for a report: growth before shrinkage; among the types that grew, the
/// suspects' entry types first (in suspect order), then classes, then generic types
/// ([`is_generic`]), each by count.
pub fn rank_types(types: &mut [TypeDelta], suspects: &[Suspect]) {
    let mut suspect_rank: HashMap<&str, usize> = HashMap::new();
    for (i, s) in suspects.iter().enumerate() {
        suspect_rank.entry(s.entry_type.as_str()).or_insert(i);
    }
    let tier = |t: &TypeDelta| -> (u8, usize) {
        if t.count_delta <= 0 {
            return (3, 0);
        }
        match suspect_rank.get(t.name.as_str()) {
            Some(&i) => (0, i),
            None if !is_generic(&t.name) => (1, 0),
            None => (2, 0),
        }
    };
    let keyed: Vec<((u8, usize), usize)> = types.iter().map(tier).zip(0..).collect();
    let mut order: Vec<usize> = (0..types.len()).collect();
    order.sort_by(|&a, &b| {
        keyed[a]
            .0
            .cmp(&keyed[b].0)
            .then(types[b].count_delta.cmp(&types[a].count_delta))
            .then(types[b].bytes_delta.cmp(&types[a].bytes_delta))
            .then(types[a].name.cmp(&types[b].name))
    });
    let sorted: Vec<TypeDelta> = order.iter().map(|&i| types[i].clone()).collect();
    types.clone_from_slice(&sorted);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(name: &str, count_delta: i64) -> TypeDelta {
        TypeDelta {
            name: name.into(),
            count: 1000,
            count_delta,
            bytes: 0,
            bytes_delta: count_delta * 10,
        }
    }

    #[test]
    fn classes_come_before_their_payload() {
        let mut types = vec![
            delta("str", 900),
            delta("dict", 600),
            delta("app.Order", 300),
            delta("lib.Noise", 5),
            delta("list", -40),
            delta("function", 2),
            delta("weakref.ReferenceType", 700),
        ];
        rank_types(&mut types, &[]);
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "app.Order",
                "lib.Noise",
                "str",
                "weakref.ReferenceType",
                "dict",
                "function",
                "list"
            ]
        );
    }
}
