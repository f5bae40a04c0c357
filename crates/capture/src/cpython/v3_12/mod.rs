//! CPython 3.12: immortal objects (a reference count with its low 32 bits negative), ints sized
//! by the tagged `lv_tag`, str without `wstr` or `ready`, instance attributes behind the tagged
//! `PyDictOrValues` word at -3 (values when its low bit is set, else the `__dict__`), static
//! builtin types whose dict and subclasses live in the interpreter state, frames reached
//! through `tstate->cframe` with C-stack-owned entry frames, and generators that keep their code
//! in their frame.

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
use crate::raw::{read_signed, Obj};

/// The CPython 3.12 ABI.
pub struct V3_12;

/// `PyDictOrValues`: a dict pointer, or (low bit set) a values pointer minus one.
#[cfg(feature = "python")]
#[inline(always)]
unsafe fn dict_or_values(l: &Layout, o: Obj) -> usize {
    unsafe { read_signed(o as *const u8, l.managed_dict) }
}

#[cfg(feature = "python")]
impl Abi for V3_12 {
    const VERSION: (u8, u8) = (3, 12);
    const STATIC_TYPES_SIZED_WITH_GC_HEADER: bool = true;

    #[inline(always)]
    unsafe fn refcount(o: Obj) -> Option<isize> {
        unsafe { common::refcount_64(o) }
    }

    #[inline]
    unsafe fn long_shape(l: &Layout, o: Obj) -> (bool, usize) {
        unsafe { common::long_shape_tagged(l, o) }
    }

    #[inline]
    unsafe fn managed_dict(l: &Layout, o: Obj) -> Obj {
        let word = unsafe { dict_or_values(l, o) };
        if word & 1 == 0 {
            word as Obj
        } else {
            std::ptr::null_mut()
        }
    }

    #[inline]
    unsafe fn inline_values(env: &Env, o: Obj) -> *const Obj {
        let l = env.layout;
        let word = unsafe { dict_or_values(l, o) };
        if word & 1 == 1 {
            (word + 1 + l.dictvalues_values) as *const Obj
        } else {
            std::ptr::null()
        }
    }

    unsafe fn split_values_size(l: &Layout, d: Obj) -> i64 {
        unsafe { common::split_values_size_from_keys(l, d) }
    }

    unsafe fn type_dict(env: &Env, t: Obj) -> Obj {
        unsafe { common::type_dict_static_aware(env, t) }
    }

    unsafe fn type_subclasses(env: &Env, t: Obj) -> Obj {
        unsafe { common::type_subclasses_static_aware(env, t) }
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

    unsafe fn frame_line(env: &Env, iframe: *const u8, code: Obj) -> i32 {
        unsafe { common::frame_line_from_api(env, iframe, code) }
    }

    unsafe fn gen_code(l: &Layout, gen: Obj) -> Obj {
        unsafe { common::gen_code_from_frame(l, gen) }
    }
}
