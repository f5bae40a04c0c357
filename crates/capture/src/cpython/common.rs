//! Pieces of version-specific code that several ABIs share, each named by what it reads and
//! documented with the versions that use it. The `vX_Y` modules choose among them; nothing here
//! is called from outside `cpython`.

use crate::env::Env;
use crate::layout::Layout;
use crate::raw::{self, read, Obj};
use pyo3::ffi;

/// 3.12-3.13: a 64-bit reference count; immortal objects have the low 32 bits negative as an
/// `int32_t` (`_Py_IsImmortal`).
#[inline(always)]
pub unsafe fn refcount_64(o: Obj) -> Option<isize> {
    let count: isize = unsafe { read(o as *const u8, 0) };
    if (count as i32) < 0 {
        None
    } else {
        Some(count)
    }
}

/// 3.14+: the count is the low 32 bits (`ob_refcnt`; the high ones are `ob_overflow` and
/// `ob_flags`); immortal objects have it negative as an `int32_t`.
#[inline(always)]
pub unsafe fn refcount_32(o: Obj) -> Option<isize> {
    let count: u32 = unsafe { read(o as *const u8, 0) };
    if (count as i32) < 0 {
        None
    } else {
        Some(count as isize)
    }
}

/// 3.12+: `long_value.lv_tag` holds the digit count above `_PyLong_NON_SIZE_BITS` and the sign
/// (0 positive, 1 zero, 2 negative) in `_PyLong_SIGN_MASK`.
#[inline]
pub unsafe fn long_shape_tagged(l: &Layout, o: Obj) -> (bool, usize) {
    let tag: usize = unsafe { read(o as *const u8, l.long_tag) };
    let negative = tag & l.long_sign_mask == 2;
    (negative, tag >> l.long_non_size_bits)
}

/// 3.11-3.12: a split dict's values array is `dk_usable + dk_nentries` pointers
/// (`shared_keys_usable_size`).
pub unsafe fn split_values_size_from_keys(l: &Layout, d: Obj) -> i64 {
    unsafe {
        let keys: *const u8 = read(d as *const u8, l.dict_keys);
        if keys.is_null() {
            return 0;
        }
        let usable: isize = read(keys, l.dk_usable);
        let nentries: isize = read(keys, l.dk_nentries);
        (usable + nentries) as i64 * 8
    }
}

thread_local! {
    /// The interpreter a thread of a split walk reads ([`set_walk_interpreter`]).
    static WALK_INTERPRETER: std::cell::Cell<*const u8> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Tells this thread, one of a split walk's that do not hold the GIL, which interpreter it
/// reads: `PyInterpreterState_Get` finds it in the thread state, which only the GIL's thread
/// has (3.12+ aborts the process when another asks).
pub(crate) fn set_walk_interpreter(interp: *const u8) {
    WALK_INTERPRETER.with(|i| i.set(interp));
}

/// The interpreter being walked: the one [`set_walk_interpreter`] named on this thread, else
/// the current one (a thread holding the GIL).
///
/// # Safety
/// Outside a split walk's threads, the GIL must be held.
pub(crate) unsafe fn walk_interpreter() -> *const u8 {
    let named = WALK_INTERPRETER.with(|i| i.get());
    if named.is_null() {
        unsafe { ffi::PyInterpreterState_Get() as *const u8 }
    } else {
        named
    }
}

/// 3.12+: a static builtin type keeps its dict and subclasses in the interpreter state, at the
/// index its `tp_subclasses` holds (plus one); heap types and other static types keep them in
/// the type. Returns the state entry of a static builtin type, or null.
unsafe fn static_type_state(env: &Env, t: Obj) -> *const u8 {
    let l = env.layout;
    unsafe {
        let tp = t as raw::Type;
        if !raw::has_flag(tp, l.tpflags_static_builtin as std::ffi::c_ulong) {
            return std::ptr::null();
        }
        let index = ((*tp).tp_subclasses as usize).wrapping_sub(1);
        if index >= l.static_types_max {
            return std::ptr::null();
        }
        let interp = walk_interpreter();
        let state = interp.add(l.interp_static_types + index * l.static_type_state_size);
        // An extension's managed static type (3.13+) shares the index space: only trust the
        // entry that names this very type.
        if read::<Obj>(state, l.static_type_state_type) != t {
            return std::ptr::null();
        }
        state
    }
}

/// 3.12+: `type.__dict__`, wherever the type keeps it.
pub unsafe fn type_dict_static_aware(env: &Env, t: Obj) -> Obj {
    unsafe {
        let state = static_type_state(env, t);
        if state.is_null() {
            (*(t as raw::Type)).tp_dict
        } else {
            read(state, env.layout.static_type_state_dict)
        }
    }
}

/// 3.12+: a type's subclasses dict, wherever the type keeps it; null for a static type whose
/// `tp_subclasses` is an index this interpreter does not know.
pub unsafe fn type_subclasses_static_aware(env: &Env, t: Obj) -> Obj {
    unsafe {
        let tp = t as raw::Type;
        let state = static_type_state(env, t);
        if !state.is_null() {
            return read(state, env.layout.static_type_state_subclasses);
        }
        let value = (*tp).tp_subclasses as usize;
        // Any other static type may hold an index as well; a real dict is never in the first
        // page of the address space.
        if !raw::has_flag(tp, ffi::Py_TPFLAGS_HEAPTYPE) && value < 1 << 16 {
            return std::ptr::null_mut();
        }
        value as Obj
    }
}

/// 3.11-3.13: a frame slot is a plain owned pointer.
#[inline(always)]
pub unsafe fn frame_slot_plain(slot: *const usize) -> Option<(Obj, bool)> {
    let p = unsafe { *slot } as Obj;
    (!p.is_null()).then_some((p, true))
}

/// 3.11-3.13: `stacktop` counts the live slots; -1 while the frame executes (its stack pointer
/// is in a register), when only the locals are known to be valid.
pub unsafe fn frame_live_slots_stacktop(
    l: &Layout,
    iframe: *const u8,
    nlocalsplus: usize,
    capacity: usize,
) -> usize {
    let stacktop: i32 = unsafe { read(iframe, l.iframe_stacktop) };
    if stacktop < 0 {
        nlocalsplus.min(capacity)
    } else {
        (stacktop as usize).min(capacity)
    }
}

/// 3.14+: `stackpointer` points past the top of the value stack; null while the frame executes
/// (its stack pointer is in a register), when only the locals are known to be valid.
pub unsafe fn frame_live_slots_stackpointer(
    l: &Layout,
    iframe: *const u8,
    nlocalsplus: usize,
    capacity: usize,
) -> usize {
    let sp: usize = unsafe { read(iframe, l.iframe_stackpointer) };
    let base = iframe as usize + l.iframe_localsplus;
    if sp == 0 || sp < base {
        nlocalsplus.min(capacity)
    } else {
        ((sp - base) / 8).min(capacity)
    }
}

/// 3.14+: a `_PyStackRef`: a tagged pointer. `PyStackRef_NULL` and tagged ints are not objects;
/// a set `Py_TAG_REFCNT` bit marks a reference that owns no count (immortal or borrowed).
#[inline(always)]
pub unsafe fn frame_slot_stackref(l: &Layout, slot: *const usize) -> Option<(Obj, bool)> {
    let bits = unsafe { *slot };
    if bits == 0 || bits == l.stackref_null_bits || bits & l.stackref_tag_bits == l.stackref_int_tag
    {
        return None;
    }
    let counted = bits & l.stackref_refcnt_tag == 0;
    Some(((bits & !l.stackref_refcnt_tag) as Obj, counted))
}

/// 3.12+: `PyUnstable_InterpreterFrame_GetLine`, looked up once (see [`Env::frame_line`]),
/// for a frame whose instruction pointer is inside its code (`prev_instr` of a frame that has
/// not started yet points just before it, and the line table must not be searched for an
/// address it does not cover); the first line otherwise.
pub unsafe fn frame_line_from_api(env: &Env, iframe: *const u8, code: Obj) -> i32 {
    let l = env.layout;
    unsafe {
        let first: i32 = read(code as *const u8, l.code_firstlineno);
        let start = (code as *const u8).add(l.code_adaptive) as usize;
        let instr: usize = read(iframe, l.iframe_instr);
        let nbytes = raw::ob_size(code).max(0) as usize * 2;
        if instr < start || instr >= start + nbytes {
            return first;
        }
        match env.frame_line {
            Some(get_line) => {
                let line = get_line(iframe as *mut std::ffi::c_void);
                if line >= 0 {
                    line
                } else {
                    first
                }
            }
            None => first,
        }
    }
}

/// 3.12-3.13: a generator's code is its frame's (`_PyGen_GetCode`), a plain pointer.
pub unsafe fn gen_code_from_frame(l: &Layout, gen: Obj) -> Obj {
    unsafe {
        let iframe = (gen as *const u8).add(l.gen_iframe);
        read(iframe, l.iframe_executable)
    }
}

/// 3.14+: a generator's code is its frame's, a stack reference.
pub unsafe fn gen_code_from_frame_stackref(l: &Layout, gen: Obj) -> Obj {
    unsafe {
        let iframe = (gen as *const u8).add(l.gen_iframe);
        frame_slot_stackref(l, iframe.add(l.iframe_executable) as *const usize)
            .map_or(std::ptr::null_mut(), |(o, _)| o)
    }
}
