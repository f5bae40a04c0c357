//! CPython 3.13: 3.12's immortal objects, tagged ints and static types, plus instance attributes
//! kept inline after the object (`Py_TPFLAGS_INLINE_VALUES`: a `PyDictValues` whose `valid`
//! byte says whether they are current) beside a plain `__dict__` pointer at word -3, and frames
//! reached through `tstate->current_frame` (no more `_PyCFrame`), whose code is `f_executable`.
//!
//! Two layouts: the collector's generation lists moved by four bytes between 3.13.0 and later
//! releases (`PyGC_Head` became 4-byte aligned in the headers); the checks in `env` pick the one
//! the running interpreter has.

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
use crate::raw::{self, read, read_signed, Obj};

/// The CPython 3.13 ABI.
pub struct V3_13;

/// The inline values of an instance of an `Py_TPFLAGS_INLINE_VALUES` type while they are
/// current and the instance reports them (3.13+), or null. A `__dict__` materialised over them
/// embeds them rather than copying them; which of the two then reports them changed within
/// 3.13 (3.13.0: the instance; later releases: the dict), and the walk follows the interpreter's
/// own `tp_traverse` ([`Env::dict_reports_embedded_values`], measured at start-up).
#[cfg(feature = "python")]
#[inline]
pub(crate) unsafe fn inline_values_after_object(env: &Env, o: Obj) -> *const Obj {
    let l = env.layout;
    unsafe {
        let tp = raw::ob_type(o);
        if !raw::has_flag(tp, l.tpflags_inline_values as std::ffi::c_ulong) {
            return std::ptr::null();
        }
        if env.dict_reports_embedded_values
            && !read_signed::<Obj>(o as *const u8, l.managed_dict).is_null()
        {
            return std::ptr::null();
        }
        let values = (o as *const u8).add((*tp).tp_basicsize as usize);
        if read::<u8>(values, l.dictvalues_valid) == 0 {
            return std::ptr::null();
        }
        values.add(l.dictvalues_values) as *const Obj
    }
}

#[cfg(feature = "python")]
impl Abi for V3_13 {
    const VERSION: (u8, u8) = (3, 13);
    const STATIC_TYPES_SIZED_WITH_GC_HEADER: bool = false;

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
        unsafe { read_signed(o as *const u8, l.managed_dict) }
    }

    #[inline]
    unsafe fn inline_values(env: &Env, o: Obj) -> *const Obj {
        unsafe { inline_values_after_object(env, o) }
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
