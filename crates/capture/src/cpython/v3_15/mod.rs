//! CPython 3.15: 3.14's reference counts, stack references and inline instance values; the
//! collector state starts with its generations (the trash list moved out), frames are owned by a
//! thread, a generator, a frame object or the interpreter (no C-stack owner), and a module keeps
//! its state's traverse function itself (`md_state_traverse`, no `md_def`).

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

/// The CPython 3.15 ABI.
pub struct V3_15;

#[cfg(feature = "python")]
impl Abi for V3_15 {
    const VERSION: (u8, u8) = (3, 15);
    const STATIC_TYPES_SIZED_WITH_GC_HEADER: bool = false;

    #[inline(always)]
    unsafe fn refcount(o: Obj) -> Option<isize> {
        unsafe { common::refcount_32(o) }
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
        unsafe { super::v3_13::inline_values_after_object(env, o) }
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
    unsafe fn frame_slot(l: &Layout, slot: *const usize) -> Option<(Obj, bool)> {
        unsafe { common::frame_slot_stackref(l, slot) }
    }

    unsafe fn frame_live_slots(
        l: &Layout,
        iframe: *const u8,
        nlocalsplus: usize,
        capacity: usize,
    ) -> usize {
        unsafe { common::frame_live_slots_stackpointer(l, iframe, nlocalsplus, capacity) }
    }

    unsafe fn frame_line(env: &Env, iframe: *const u8, code: Obj) -> i32 {
        unsafe { common::frame_line_from_api(env, iframe, code) }
    }

    unsafe fn gen_code(l: &Layout, gen: Obj) -> Obj {
        unsafe { common::gen_code_from_frame_stackref(l, gen) }
    }
}
