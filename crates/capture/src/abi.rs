//! The [`Abi`] trait: what the walks need to know about an interpreter version beyond its struct
//! offsets (those are data, in [`crate::layout::Layout`]), one implementation per CPython ABI in
//! `cpython::vX_Y`.
//!
//! The walkers are generic over it, so each version's code is compiled into its own copy of the
//! walk with nothing to decide per object; [`crate::cpython::with_abi`] picks the copy once per
//! capture from the running interpreter.
//!
//! Every method reads live interpreter memory: the callers hold the GIL, pass live objects and
//! frames, and never call these while a collection runs.

use crate::env::Env;
use crate::layout::Layout;
use crate::raw::Obj;

/// How an interpreter version represents the things that differ between versions in more than
/// their offsets.
pub trait Abi: 'static {
    /// `(major, minor)`.
    const VERSION: (u8, u8);

    /// Whether `sys.getsizeof` of a static type (`int`, `dict`...) adds the GC header that a
    /// statically allocated type does not have (it does before 3.13).
    const STATIC_TYPES_SIZED_WITH_GC_HEADER: bool;

    /// The object's reference count, or `None` for an immortal object (3.12+), whose count
    /// means nothing: it is never freed and references to it are not counted.
    ///
    /// # Safety
    /// `o` must be a live object.
    unsafe fn refcount(o: Obj) -> Option<isize>;

    /// The sign (`true` when negative) and the number of 30-bit digits of an int.
    ///
    /// # Safety
    /// `o` must be a live int.
    unsafe fn long_shape(l: &Layout, o: Obj) -> (bool, usize);

    /// The materialised `__dict__` of an instance whose type has `Py_TPFLAGS_MANAGED_DICT`, or
    /// null.
    ///
    /// # Safety
    /// `o` must be a live object of such a type.
    unsafe fn managed_dict(l: &Layout, o: Obj) -> Obj;

    /// The attribute values an instance keeps inline and reports itself, in the order of its
    /// class's cached keys, or null when it has none (a materialised dict holds or reports them
    /// instead; see [`Env::dict_reports_embedded_values`]).
    ///
    /// # Safety
    /// `o` must be a live object whose type has `Py_TPFLAGS_MANAGED_DICT`.
    unsafe fn inline_values(env: &Env, o: Obj) -> *const Obj;

    /// The bytes a split dict's values array takes, as `dict.__sizeof__` counts them.
    ///
    /// # Safety
    /// `d` must be a live dict with a split table (`ma_values` not null).
    unsafe fn split_values_size(l: &Layout, d: Obj) -> i64;

    /// `type.__dict__` (for static builtin types from 3.12, kept in the interpreter state).
    ///
    /// # Safety
    /// `t` must be a live type object.
    unsafe fn type_dict(env: &Env, t: Obj) -> Obj;

    /// The dict of weak references to a type's subclasses, or null (from 3.12 a static builtin
    /// type's `tp_subclasses` holds an index, not an object).
    ///
    /// # Safety
    /// `t` must be a live type object.
    unsafe fn type_subclasses(env: &Env, t: Obj) -> Obj;

    /// A frame slot (a local, a stack entry, the frame's code or function) as an object, and
    /// whether the slot owns a reference to it; `None` for an empty slot or a tagged int.
    ///
    /// # Safety
    /// `slot` must be a readable slot of a live interpreter frame.
    unsafe fn frame_slot(l: &Layout, slot: *const usize) -> Option<(Obj, bool)>;

    /// How many of a frame's `localsplus` slots hold live values: its `nlocalsplus` locals,
    /// and the value stack when the frame is not the one executing; at most `capacity`
    /// (locals plus the code's stack size).
    ///
    /// # Safety
    /// `iframe` must be a live interpreter frame.
    unsafe fn frame_live_slots(
        l: &Layout,
        iframe: *const u8,
        nlocalsplus: usize,
        capacity: usize,
    ) -> usize;

    /// The line an interpreter frame is at.
    ///
    /// # Safety
    /// `iframe` must be a live interpreter frame whose code object is `code`.
    unsafe fn frame_line(env: &Env, iframe: *const u8, code: Obj) -> i32;

    /// The code object of a generator, coroutine or async generator.
    ///
    /// # Safety
    /// `gen` must be a live generator-like object.
    unsafe fn gen_code(l: &Layout, gen: Obj) -> Obj;
}
