//! CPython 3.11: plain 64-bit reference counts (no immortal objects), ints sized by `ob_size`,
//! str with the legacy `wstr` and `ready` state, instance attributes in a values array at word
//! -4 (the `__dict__` at word -3), frames reached through `tstate->cframe`, a value stack
//! bounded by `stacktop`, and generators that keep their code in `gi_code`.

mod layouts;
pub use layouts::LAYOUTS;

#[cfg(feature = "python")]
use super::common;
#[cfg(feature = "python")]
use crate::abi::Abi;
#[cfg(feature = "python")]
use crate::env::Env;
#[cfg(feature = "python")]
use crate::layout::Layout;
#[cfg(feature = "python")]
use crate::raw::{self, field, read, read_signed, Obj};
#[cfg(feature = "python")]
use pyo3::ffi;

/// The CPython 3.11 ABI.
pub struct V3_11;

#[cfg(feature = "python")]
impl Abi for V3_11 {
    const VERSION: (u8, u8) = (3, 11);
    const STATIC_TYPES_SIZED_WITH_GC_HEADER: bool = true;

    #[inline(always)]
    unsafe fn refcount(o: Obj) -> Option<isize> {
        Some(unsafe { read(o as *const u8, 0) })
    }

    #[inline]
    unsafe fn long_shape(_l: &Layout, o: Obj) -> (bool, usize) {
        let size = unsafe { raw::ob_size(o) };
        (size < 0, size.unsigned_abs())
    }

    #[inline]
    unsafe fn managed_dict(l: &Layout, o: Obj) -> Obj {
        unsafe { read_signed(o as *const u8, l.managed_dict) }
    }

    #[inline]
    unsafe fn inline_values(env: &Env, o: Obj) -> *const Obj {
        let l = env.layout;
        // Null once the `__dict__` is materialised: the values move into the dict.
        let values: *const u8 = unsafe { read_signed(o as *const u8, l.managed_values) };
        if values.is_null() {
            std::ptr::null()
        } else {
            values.wrapping_add(l.dictvalues_values) as *const Obj
        }
    }

    unsafe fn split_values_size(l: &Layout, d: Obj) -> i64 {
        unsafe { common::split_values_size_from_keys(l, d) }
    }

    unsafe fn type_dict(_env: &Env, t: Obj) -> Obj {
        unsafe { (*(t as raw::Type)).tp_dict }
    }

    unsafe fn type_subclasses(_env: &Env, t: Obj) -> Obj {
        unsafe { (*(t as raw::Type)).tp_subclasses }
    }

    #[inline(always)]
    unsafe fn frame_slot(_l: &Layout, slot: *const usize) -> Option<(Obj, bool)> {
        unsafe { common::frame_slot_plain(slot) }
    }

    unsafe fn frame_live_slots(
        l: &Layout,
        iframe: *const u8,
        nlocalsplus: usize,
        capacity: usize,
    ) -> usize {
        unsafe { common::frame_live_slots_stacktop(l, iframe, nlocalsplus, capacity) }
    }

    /// `PyFrame_GetLineNumber`'s computation: the byte offset of `prev_instr` in the adaptive
    /// code, mapped by `PyCode_Addr2Line` (which reads the line table and allocates nothing).
    unsafe fn frame_line(env: &Env, iframe: *const u8, code: Obj) -> i32 {
        let l = env.layout;
        unsafe {
            let code = code as *const u8;
            let first: i32 = read(code, l.code_firstlineno);
            let start = code.add(l.code_adaptive);
            let prev: *const u8 = read(iframe, l.iframe_instr);
            let nbytes = raw::ob_size(code as Obj) * 2;
            let addr = prev as isize - start as isize;
            if prev.is_null() || addr < 0 || addr >= nbytes {
                return first;
            }
            let line = ffi::PyCode_Addr2Line(code as *mut ffi::PyCodeObject, addr as i32);
            if line < 0 {
                first
            } else {
                line
            }
        }
    }

    unsafe fn gen_code(l: &Layout, gen: Obj) -> Obj {
        unsafe { field(gen as *const u8, l.gen_code) }
    }
}
