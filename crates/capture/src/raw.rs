//! Raw reads of CPython objects: the handful of unsafe primitives everything else is built on.
//!
//! Every function here only reads memory of live objects while the caller holds the GIL; none
//! calls into Python, allocates a Python object or changes a reference count. str contents are
//! decoded from the object's own buffer (never `PyUnicode_AsUTF8`, which would cache a UTF-8 copy
//! in the object and so change it).

use crate::abi::Abi;
use crate::layout::{Layout, ABSENT};
use pyo3::ffi;
use std::fmt::Write;

/// A borrowed pointer to a live Python object.
pub type Obj = *mut ffi::PyObject;
/// A type object.
pub type Type = *mut ffi::PyTypeObject;

/// Reads a `T` at `base + offset`.
///
/// # Safety
/// `base + offset` must be a readable, aligned `T` inside a live object.
#[inline(always)]
pub unsafe fn read<T: Copy>(base: *const u8, offset: usize) -> T {
    unsafe { std::ptr::read(base.add(offset) as *const T) }
}

/// Reads a `T` at `base + offset` where the offset may be negative (the pre-header).
///
/// # Safety
/// As for [`read`].
#[inline(always)]
pub unsafe fn read_signed<T: Copy>(base: *const u8, offset: isize) -> T {
    unsafe { std::ptr::read(base.offset(offset) as *const T) }
}

/// Reads an object pointer field.
///
/// # Safety
/// `o + offset` must be a `PyObject *` field of the live object `o`.
#[inline(always)]
pub unsafe fn field(o: *const u8, offset: usize) -> Obj {
    unsafe { read::<Obj>(o, offset) }
}

/// # Safety
/// `o` must be a live object.
#[inline(always)]
pub unsafe fn ob_type(o: Obj) -> Type {
    unsafe { (*o).ob_type }
}

/// `Py_SIZE(o)`.
///
/// # Safety
/// `o` must be a live variable-size object.
#[inline(always)]
pub unsafe fn ob_size(o: Obj) -> isize {
    unsafe { read::<isize>(o as *const u8, 16) }
}

/// `PyType_HasFeature(t, flag)`.
///
/// # Safety
/// `t` must be a live type object.
#[inline(always)]
pub unsafe fn has_flag(t: Type, flag: std::ffi::c_ulong) -> bool {
    unsafe { (*t).tp_flags & flag != 0 }
}

/// `_PyObject_IS_GC(o)`: the type supports GC and, for types with `tp_is_gc` (type objects),
/// this object does.
///
/// # Safety
/// `o` must be a live object.
#[inline(always)]
pub unsafe fn is_gc(o: Obj) -> bool {
    unsafe {
        let t = ob_type(o);
        if !has_flag(t, ffi::Py_TPFLAGS_HAVE_GC) {
            return false;
        }
        match (*t).tp_is_gc {
            Some(f) => f(o as *mut _) != 0,
            None => true,
        }
    }
}

/// The `PyGC_Head` words in front of a GC object.
#[inline(always)]
pub fn gc_head(o: Obj) -> *mut usize {
    (o as *mut usize).wrapping_sub(2)
}

/// Whether the GC object `o` is tracked (`_gc_next != 0`, in every version).
///
/// # Safety
/// `o` must be a live object for which [`is_gc`] holds.
#[inline(always)]
pub unsafe fn is_tracked(o: Obj) -> bool {
    unsafe { *gc_head(o) != 0 }
}

/// `_PyType_PreHeaderSize`: the GC header and the two managed-dict or managed-weakref words
/// that precede an object. `preheader_flags` are the type flags that add those two words
/// (`Py_TPFLAGS_MANAGED_DICT`, and from 3.12 `Py_TPFLAGS_MANAGED_WEAKREF`).
///
/// # Safety
/// `t` must be a live type object.
#[inline(always)]
pub unsafe fn preheader_size(t: Type, preheader_flags: std::ffi::c_ulong) -> usize {
    unsafe {
        let gc = if has_flag(t, ffi::Py_TPFLAGS_HAVE_GC) {
            16
        } else {
            0
        };
        let managed = if (*t).tp_flags & preheader_flags != 0 {
            16
        } else {
            0
        };
        gc + managed
    }
}

/// The decoded state bits of a str (`PyASCIIObject.state`).
#[derive(Clone, Copy, Debug)]
pub struct StrState {
    pub kind: u32,
    pub compact: bool,
    pub ascii: bool,
    pub ready: bool,
    /// Interned (`sys.intern`, identifiers, attribute names): shared, so met again and again.
    pub interned: bool,
}

/// # Safety
/// `s` must be a live str.
#[inline]
pub unsafe fn str_state(l: &Layout, s: Obj) -> StrState {
    let bits: u32 = unsafe { read(s as *const u8, l.str_state) };
    StrState {
        kind: (bits >> l.str_kind_shift) & 0b111,
        compact: bits & (1 << l.str_compact_bit) != 0,
        ascii: bits & (1 << l.str_ascii_bit) != 0,
        // 3.12 dropped the `ready` bit: every str is ready.
        ready: l.str_ready_bit == ABSENT || bits & (1 << l.str_ready_bit) != 0,
        // `interned` is the field below `kind` in every version: two bits, or a whole byte in
        // a free-threaded build.
        interned: bits & ((1u32 << l.str_kind_shift) - 1) != 0,
    }
}

/// The character data of a str and its state, or `None` for a legacy str that is not ready.
///
/// # Safety
/// `s` must be a live str.
#[inline]
pub unsafe fn str_data(l: &Layout, s: Obj) -> Option<(*const u8, usize, StrState)> {
    unsafe {
        let st = str_state(l, s);
        let len: isize = read(s as *const u8, l.str_length);
        let data: *const u8 = if st.compact && st.ascii {
            (s as *const u8).add(l.str_ascii_size)
        } else if st.compact {
            (s as *const u8).add(l.str_compact_size)
        } else {
            read::<*const u8>(s as *const u8, l.str_legacy_data)
        };
        if !st.ready || data.is_null() || len < 0 {
            return None;
        }
        Some((data, len as usize, st))
    }
}

/// Appends the text of the str `s` to `out`, at most `max_chars` characters, with `…` and a
/// fingerprint of the whole text (`…#1a2b3c4d`) when cut.
/// Returns false (and appends nothing) for a str that cannot be read.
///
/// # Safety
/// `s` must be a live str.
pub unsafe fn str_text(l: &Layout, s: Obj, max_chars: usize, out: &mut String) -> bool {
    unsafe {
        let Some((data, len, st)) = str_data(l, s) else {
            return false;
        };
        let n = len.min(max_chars);
        match st.kind {
            1 if st.ascii => {
                let bytes = std::slice::from_raw_parts(data, n);
                // ASCII is valid UTF-8.
                out.push_str(std::str::from_utf8_unchecked(bytes));
            }
            1 => {
                for &b in std::slice::from_raw_parts(data, n) {
                    out.push(b as char);
                }
            }
            2 => {
                for &u in std::slice::from_raw_parts(data as *const u16, n) {
                    out.push(char::from_u32(u as u32).unwrap_or('\u{fffd}'));
                }
            }
            4 => {
                for &u in std::slice::from_raw_parts(data as *const u32, n) {
                    out.push(char::from_u32(u).unwrap_or('\u{fffd}'));
                }
            }
            _ => return false,
        }
        if len > max_chars {
            // Cut, with a fingerprint of the whole text: two long names that share their first
            // `max_chars` characters stay two names (two classes, two keys), not one.
            let all = std::slice::from_raw_parts(data, len * st.kind as usize);
            let hash = all.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
            });
            let _ = write!(out, "…#{:08x}", hash as u32);
        }
        true
    }
}

/// Whether the str `s` equals the ASCII text `text`, without decoding it.
///
/// # Safety
/// `s` must be a live str.
pub unsafe fn str_eq_ascii(l: &Layout, s: Obj, text: &[u8]) -> bool {
    unsafe {
        match str_data(l, s) {
            Some((data, len, st)) if st.kind == 1 && len == text.len() => {
                std::slice::from_raw_parts(data, len) == text
            }
            _ => false,
        }
    }
}

/// The value of a small int (at most two 30-bit digits), or `None`.
///
/// # Safety
/// `o` must be a live int.
pub unsafe fn small_int<A: Abi>(l: &Layout, o: Obj) -> Option<i64> {
    unsafe {
        let (negative, n) = A::long_shape(l, o);
        if n > 2 {
            return None;
        }
        let digits = (o as *const u8).add(l.long_digits) as *const u32;
        let mut v: i64 = 0;
        for i in (0..n).rev() {
            v = (v << 30) | (*digits.add(i) as i64);
        }
        Some(if negative { -v } else { v })
    }
}

/// A C string (`tp_name`, a member name) as text, at most 200 bytes.
///
/// # Safety
/// `p` must be null or a NUL-terminated string.
pub unsafe fn c_str(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
    let mut out = String::new();
    let _ = write!(out, "{}", s.chars().take(200).collect::<String>());
    out
}

pub use crate::prefetch::prefetch;

/// Whether `o` is not a live object but an entry of a free list that a `tp_traverse` still
/// reports: its reference count is 0 (3.12's `_asyncio` module, for one, visits the future
/// iterators it keeps for reuse). A walk must skip such an object, and above all never hand it
/// to Python: a new reference would resurrect it, and its second deallocation would put it on
/// the free list twice, making the list a cycle.
///
/// # Safety
/// `o` must be a readable object header.
#[inline(always)]
pub unsafe fn is_dead<A: Abi>(o: Obj) -> bool {
    unsafe { A::refcount(o) == Some(0) }
}

/// Whether the only reference to `o` is the one being followed: a reference count of 1 and a
/// type that cannot be weakly referenced. Such an object can be reached by exactly one edge, so
/// the walks skip the address-map lookup that de-duplicates everything else.
///
/// # Safety
/// `o` must be a live object.
#[inline(always)]
pub unsafe fn singly_referenced<A: Abi>(o: Obj) -> bool {
    unsafe { A::refcount(o) == Some(1) && (*ob_type(o)).tp_weaklistoffset == 0 }
}
