//! CPython 3.14: reference counts in the low 32 bits of the header word (the high ones hold
//! `ob_overflow` and `ob_flags`), frames whose code, function, locals and stack are `_PyStackRef`s
//! (tagged pointers: a set `Py_TAG_REFCNT` bit is a reference that owns no count; tagged ints and
//! `PyStackRef_NULL` are not objects), a value stack bounded by `stackpointer`, frames owned by
//! the interpreter (a thread's base frame) beside the C-stack-owned entry frames, a hash cached
//! in every tuple, and 3.13's inline instance values.
//!
//! 3.14.0 to 3.14.4 run the incremental collector: its young and two old spaces sit where the
//! three generations are, and the low bit of `_gc_next` says which old space an object is in
//! (see `env`: the GC list walk masks it, and there is no `generation0` to check). 3.14.5 went
//! back to generations and kept the offsets.

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

/// The CPython 3.14 ABI.
pub struct V3_14;

#[cfg(feature = "python")]
impl Abi for V3_14 {
    const VERSION: (u8, u8) = (3, 14);
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

/// The flag bits of `_gc_next` in the release `version_hex`: the incremental collector of
/// 3.14.0 to 3.14.4 keeps an object's old space in bit 0 (`_PyGC_NEXT_MASK_OLD_SPACE_1`); no
/// other release keeps flags there outside a collection.
pub fn gc_next_flags(version_hex: u32) -> usize {
    let release = version_hex >> 8;
    if (0x03_0e_00..=0x03_0e_04).contains(&release) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_incremental_collector_flags_gc_next() {
        assert_eq!(super::gc_next_flags(0x030e_00f0), 1);
        assert_eq!(super::gc_next_flags(0x030e_04f0), 1);
        assert_eq!(super::gc_next_flags(0x030e_00a1), 1);
        assert_eq!(super::gc_next_flags(0x030e_05f0), 0);
        assert_eq!(super::gc_next_flags(0x030e_0af0), 0);
        assert_eq!(super::gc_next_flags(0x030d_02f0), 0);
        assert_eq!(super::gc_next_flags(0x030f_00f0), 0);
    }
}
