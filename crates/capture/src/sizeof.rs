//! Shallow sizes equal to `sys.getsizeof()`, computed without calling Python.
//!
//! `sys.getsizeof(o)` is `type(o).__sizeof__(o)` plus the pre-header (the GC header and, for
//! classes with managed dicts or weak references, two more words). The builtin `__sizeof__`
//! implementations are replicated here (the parts that differ between versions come from the
//! [`Abi`] and the layout); types whose `__sizeof__` heaplens does
//! not replicate (a Python-level override, `_io.BytesIO`, `decimal.Decimal`, ...) are sized like
//! `object.__sizeof__` would size them and their type is flagged `APPROXIMATE_SIZE`. The size tests
//! compare every kind here with `sys.getsizeof` on real objects.

use crate::abi::Abi;
use crate::env::Env;
use crate::layout::Layout;
use crate::raw::{self, read, Obj};
use crate::registry::{SizeKind, TypeEntry};

/// `_PyObject_SIZE(tp)`.
#[inline(always)]
unsafe fn basicsize(o: Obj) -> i64 {
    unsafe { (*raw::ob_type(o)).tp_basicsize as i64 }
}

/// `_PyDict_KeysSize(keys)`.
unsafe fn dict_keys_size(l: &Layout, keys: *const u8) -> i64 {
    unsafe {
        let log2_size: u8 = read(keys, l.dk_log2_size);
        let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
        let kind: u8 = read(keys, l.dk_kind);
        let entry = if kind as usize == l.dict_keys_general {
            l.dk_general_entry_size
        } else {
            l.dk_unicode_entry_size
        } as i64;
        let size = 1i64 << log2_size;
        let usable = (size << 1) / 3;
        l.dk_header_size as i64 + (1i64 << log2_index_bytes) + usable * entry
    }
}

/// `_PyDict_SizeOf(mp)` (also the base of OrderedDict's size).
unsafe fn dict_size<A: Abi>(l: &Layout, o: Obj) -> i64 {
    unsafe {
        let ob = o as *const u8;
        let keys: *const u8 = read(ob, l.dict_keys);
        let values: *const u8 = read(ob, l.dict_values);
        let mut res = basicsize(o);
        if keys.is_null() {
            return res;
        }
        if !values.is_null() {
            res += A::split_values_size(l, o);
        }
        let refcnt: isize = read(keys, l.dk_refcnt);
        if refcnt == 1 {
            res += dict_keys_size(l, keys);
        }
        res
    }
}

/// The size `sys.getsizeof(o)` would report.
///
/// # Safety
/// `o` must be a live object of the type described by `t`, with the GIL held.
pub unsafe fn shallow_size<A: Abi>(env: &Env, o: Obj, t: &TypeEntry) -> u64 {
    let l = env.layout;
    unsafe {
        let tp = raw::ob_type(o);
        let ob = o as *const u8;
        let body: i64 = match t.size {
            SizeKind::Generic | SizeKind::Approximate => {
                let itemsize = (*tp).tp_itemsize as i64;
                let mut res = basicsize(o);
                if itemsize > 0 {
                    res += raw::ob_size(o) as i64 * itemsize;
                }
                res
            }
            SizeKind::Int => {
                // long.__sizeof__ counts at least one digit, even for zero.
                let digits = (A::long_shape(l, o).1 as i64).max(1);
                l.long_digits as i64 + digits * 4
            }
            SizeKind::Str => str_size(l, o),
            SizeKind::List => basicsize(o) + read::<isize>(ob, l.list_allocated) as i64 * 8,
            SizeKind::Dict => dict_size::<A>(l, o),
            SizeKind::Set => {
                let table: *const u8 = read(ob, l.set_table);
                let mut res = basicsize(o);
                if table != ob.add(l.set_smalltable) {
                    let mask: isize = read(ob, l.set_mask);
                    res += (mask as i64 + 1) * l.set_entry_size as i64;
                }
                res
            }
            SizeKind::ByteArray if Layout::has(l.bytearray_bytes_object) => {
                // 3.15+: the buffer is a bytes object the bytearray owns (`ob_alloc` is its
                // size), counted as one; an empty bytearray shares the empty bytes singleton.
                let alloc = read::<isize>(ob, l.bytearray_alloc) as i64;
                basicsize(o)
                    + if alloc > 0 {
                        l.bytes_data as i64 + alloc + 1
                    } else {
                        0
                    }
            }
            SizeKind::ByteArray => basicsize(o) + read::<isize>(ob, l.bytearray_alloc) as i64,
            SizeKind::Code => {
                let itemsize = (*tp).tp_itemsize as i64;
                let n = raw::ob_size(o) as i64;
                // _PyObject_VAR_SIZE rounds up to a multiple of the pointer size.
                let mut res = (basicsize(o) + n * itemsize + 7) & !7;
                let extra: *const u8 = read(ob, l.code_extra);
                if !extra.is_null() {
                    let ce_size: isize = read(extra, 0);
                    res += 8 + (ce_size as i64 - 1).max(0) * 8 + 8;
                }
                res
            }
            SizeKind::Frame => {
                let iframe: *const u8 = read(ob, l.frame_frame);
                let code = if iframe.is_null() {
                    std::ptr::null()
                } else {
                    A::frame_slot(l, iframe.add(l.iframe_executable) as *const usize)
                        .map_or(std::ptr::null(), |(c, _)| c as *const u8)
                };
                l.frame_data as i64 + l.iframe_localsplus as i64 + code_frame_slots(l, code)
            }
            SizeKind::Generator => {
                let code = A::gen_code(l, o) as *const u8;
                l.gen_iframe as i64 + l.iframe_localsplus as i64 + code_frame_slots(l, code)
            }
            SizeKind::Type => {
                if raw::has_flag(o as raw::Type, pyo3::ffi::Py_TPFLAGS_HEAPTYPE) {
                    let keys: *const u8 = read(ob, l.ht_cached_keys);
                    l.heap_type_size as i64
                        + if keys.is_null() {
                            0
                        } else {
                            dict_keys_size(l, keys)
                        }
                } else {
                    l.type_object_size as i64
                }
            }
            SizeKind::OrderedDict => {
                let mut res = dict_size::<A>(l, o);
                let fast: isize = read(ob, l.odict_fast_nodes_size);
                res += fast as i64 * 8;
                let first: *const u8 = read(ob, l.odict_first);
                if !first.is_null() {
                    let used: isize = read(ob, l.dict_used);
                    res += used as i64 * l.odict_node_size as i64;
                }
                res
            }
            SizeKind::Deque => {
                let leftindex: isize = read(ob, l.deque_leftindex);
                let len = raw::ob_size(o) as i64;
                let blen = l.deque_block_len as i64;
                let blocks = (leftindex as i64 + len + blen - 1) / blen;
                basicsize(o) + blocks * l.deque_block_size as i64
            }
            SizeKind::Array => {
                let allocated: isize = read(ob, l.array_allocated);
                let descr: *const u8 = read(ob, l.array_descr);
                let itemsize = if descr.is_null() {
                    0
                } else {
                    read::<i32>(descr, l.arraydescr_itemsize) as i64
                };
                basicsize(o) + allocated as i64 * itemsize
            }
        };
        let static_type = t.size == SizeKind::Type
            && !raw::has_flag(o as raw::Type, pyo3::ffi::Py_TPFLAGS_HEAPTYPE);
        let preheader = if static_type && !A::STATIC_TYPES_SIZED_WITH_GC_HEADER {
            0
        } else {
            raw::preheader_size(tp, env.preheader_flags)
        };
        body.max(0) as u64 + preheader as u64
    }
}

/// `(co_nlocalsplus + co_stacksize) * sizeof(PyObject *)`, the frame slots a code object needs.
unsafe fn code_frame_slots(l: &Layout, code: *const u8) -> i64 {
    if code.is_null() {
        return 0;
    }
    unsafe {
        let nlocalsplus: i32 = read(code, l.code_nlocalsplus);
        let stacksize: i32 = read(code, l.code_stacksize);
        (nlocalsplus as i64 + stacksize as i64) * 8
    }
}

/// `unicode.__sizeof__`, with the cached UTF-8 buffer and (3.11) the `wstr` one.
unsafe fn str_size(l: &Layout, o: Obj) -> i64 {
    unsafe {
        let ob = o as *const u8;
        let st = raw::str_state(l, o);
        let len: isize = read(ob, l.str_length);
        let len = len as i64;
        let kind = st.kind as i64;
        let (mut size, data): (i64, *const u8) = if st.compact && st.ascii {
            (l.str_ascii_size as i64 + len + 1, ob.add(l.str_ascii_size))
        } else if st.compact {
            (
                l.str_compact_size as i64 + (len + 1) * kind,
                ob.add(l.str_compact_size),
            )
        } else {
            let data: *const u8 = read(ob, l.str_legacy_data);
            let mut s = l.str_legacy_size as i64;
            if !data.is_null() {
                s += (len + 1) * kind;
            }
            (s, data)
        };
        let wstr: *const u8 = if Layout::has(l.str_wstr) {
            read(ob, l.str_wstr)
        } else {
            std::ptr::null()
        };
        if !wstr.is_null() && (!st.ready || wstr != data) {
            let wlen: isize = if st.compact && st.ascii {
                len as isize
            } else {
                read(ob, l.str_wstr_length)
            };
            size += (wlen as i64 + 1) * 4;
        }
        if !(st.compact && st.ascii) {
            let utf8: *const u8 = read(ob, l.str_utf8);
            if !utf8.is_null() && utf8 != data {
                let utf8_len: isize = read(ob, l.str_utf8_length);
                size += utf8_len as i64 + 1;
            }
        }
        size
    }
}
