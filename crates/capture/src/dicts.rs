//! Reading dicts and instance attributes straight from their layouts: combined and split dict
//! tables, the attribute values an instance keeps without a `__dict__` object (read, never
//! created; where they live is the ABI's business, see [`Abi::inline_values`]), and
//! `tp_dictoffset` dicts.

use crate::abi::Abi;
use crate::env::Env;
use crate::layout::Layout;
use crate::raw::{self, read, Obj};

/// How many entries ahead [`for_each_dict_entry`] starts loading the key object: labelling an
/// entry reads its key (its type, reference count, text or value), and a dict of a million keys
/// scattered over the heap otherwise waits for each of them in turn.
const KEYS_AHEAD: usize = 8;

/// Calls `f(key, value)` for each entry of the dict `d`: combined tables (general or str keys)
/// and split tables (keys shared with the class, values in the dict).
///
/// # Safety
/// `d` must be a live dict (or dict subclass) and the GIL held.
pub unsafe fn for_each_dict_entry(l: &Layout, d: Obj, mut f: impl FnMut(Obj, Obj)) {
    unsafe {
        let db = d as *const u8;
        let keys: *const u8 = read(db, l.dict_keys);
        if keys.is_null() {
            return;
        }
        let values_struct: *const u8 = read(db, l.dict_values);
        let values = if values_struct.is_null() {
            std::ptr::null()
        } else {
            values_struct.add(l.dictvalues_values) as *const Obj
        };
        let n: isize = read(keys, l.dk_nentries);
        let kind: u8 = read(keys, l.dk_kind);
        let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
        let entries = keys.add(l.dk_indices + (1usize << log2_index_bytes));
        let n = n.max(0) as usize;
        if kind as usize == l.dict_keys_general {
            for i in 0..n {
                if i + KEYS_AHEAD < n {
                    let ahead = entries.add((i + KEYS_AHEAD) * l.dk_general_entry_size);
                    raw::prefetch(read::<Obj>(ahead, 8) as *const u8);
                }
                let e = entries.add(i * l.dk_general_entry_size);
                let k: Obj = read(e, 8);
                let v: Obj = read(e, 16);
                if !k.is_null() && !v.is_null() {
                    f(k, v);
                }
            }
        } else {
            for i in 0..n {
                if i + KEYS_AHEAD < n {
                    let ahead = entries.add((i + KEYS_AHEAD) * l.dk_unicode_entry_size);
                    raw::prefetch(read::<Obj>(ahead, 0) as *const u8);
                }
                let e = entries.add(i * l.dk_unicode_entry_size);
                let k: Obj = read(e, 0);
                let v: Obj = if values.is_null() {
                    read(e, 8)
                } else {
                    *values.add(i)
                };
                if !k.is_null() && !v.is_null() {
                    f(k, v);
                }
            }
        }
    }
}

/// Whether a dict keeps its keys in a table shared with its class (a split table): the keys are
/// then held by the class, not by the dict.
pub(crate) unsafe fn dict_is_split(l: &Layout, d: Obj) -> bool {
    unsafe { !read::<*const u8>(d as *const u8, l.dict_values).is_null() }
}

/// Calls `f(name, value)` for each attribute an instance keeps inline (a managed dict that was
/// never materialised: no `__dict__` object exists, and heaplens does not create one).
///
/// # Safety
/// `o` must be a live instance of a class with `Py_TPFLAGS_MANAGED_DICT`, GIL held.
pub unsafe fn for_each_inline_attribute<A: Abi>(env: &Env, o: Obj, mut f: impl FnMut(Obj, Obj)) {
    let l = env.layout;
    unsafe {
        let values = A::inline_values(env, o);
        if values.is_null() {
            return;
        }
        let keys: *const u8 = read(raw::ob_type(o) as *const u8, l.ht_cached_keys);
        if keys.is_null() {
            return;
        }
        let n: isize = read(keys, l.dk_nentries);
        let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
        let entries = keys.add(l.dk_indices + (1usize << log2_index_bytes));
        for i in 0..n.max(0) as usize {
            let v = *values.add(i);
            if !v.is_null() {
                let k: Obj = read(entries.add(i * l.dk_unicode_entry_size), 0);
                if !k.is_null() {
                    f(k, v);
                }
            }
        }
    }
}

/// `_PyObject_DictPointer` for a given `tp_dictoffset`.
pub(crate) unsafe fn dict_slot(o: Obj, dictoffset: isize) -> *const Obj {
    unsafe {
        if dictoffset == 0 {
            return std::ptr::null();
        }
        let mut off = dictoffset;
        if off < 0 {
            let tp = raw::ob_type(o);
            let n = raw::ob_size(o).unsigned_abs() as isize;
            let size = ((*tp).tp_basicsize + n * (*tp).tp_itemsize + 7) & !7;
            off += size;
        }
        (o as *const u8).offset(off) as *const Obj
    }
}

/// The object's `__dict__`, if it has one materialised.
pub(crate) unsafe fn instance_dict<A: Abi>(env: &Env, o: Obj) -> Obj {
    unsafe {
        let tp = raw::ob_type(o);
        if raw::has_flag(tp, env.layout.tpflags_managed_dict as std::ffi::c_ulong) {
            return A::managed_dict(env.layout, o);
        }
        let slot = dict_slot(o, (*tp).tp_dictoffset);
        if slot.is_null() {
            std::ptr::null_mut()
        } else {
            *slot
        }
    }
}
