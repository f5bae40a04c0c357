//! The interpreter-internal struct layouts the capture reads: offsets, enum values and flag bits,
//! one [`Layout`] per set of CPython headers.
//!
//! The public C API gives no way to walk the GC lists, read an interpreter frame's locals or an
//! instance's inline attribute values without running Python code or allocating objects (which
//! would change the heap being measured), so the capture reads those structures directly.
//!
//! Every `Layout` value is generated: `tools/generate_layout.py PYTHON` compiles
//! `tools/layout_probe.c` against that interpreter's own headers (Include/internal included),
//! runs it, and writes `src/cpython/vX_Y/layouts/layout_X_Y_Z.rs`. Nothing here is typed in by hand.
//! Fields a version does not have are [`ABSENT`]; the version's module (`cpython::vX_Y`) knows
//! which fields it may use. Before the first capture, [`crate::cpython`] checks the chosen layout
//! against live objects and, from 3.13, against the interpreter's own `_Py_DebugOffsets`, so a
//! build whose layout differs gets a clear error instead of a crash.
//!
//! Layouts change within a minor version too: 3.13's patch releases moved the collector's
//! generation lists by four bytes (`PyGC_Head` lost its 8-byte alignment), so a minor version can
//! carry several layouts, each named by the release whose headers it came from.

/// The value of a field the version does not have.
pub const ABSENT: usize = usize::MAX;
/// The value of a signed field the version does not have.
pub const ABSENT_SIGNED: isize = isize::MIN;

/// One check against `_Py_DebugOffsets` (3.13+): the `u64` at `offset` in the interpreter's
/// debug offsets must equal `expected`, the same offset as the headers give it.
#[derive(Debug, Clone, Copy)]
pub struct DebugCheck {
    pub name: &'static str,
    pub offset: usize,
    pub expected: u64,
}

/// Offsets (bytes), enum values and flag bits, for one set of CPython headers. Names follow
/// CPython's: `interp_gc` is the offset of `gc` in `PyInterpreterState`, `iframe_*` are fields of
/// `_PyInterpreterFrame`, `tpflags_*` are `Py_TPFLAGS_*` bits, and so on.
#[derive(Debug)]
pub struct Layout {
    /// The release whose headers this layout came from (major, minor, micro).
    pub headers: (u8, u8, u8),
    /// `PY_VERSION_HEX` of those headers.
    pub version_hex: u32,
    /// Checks against the interpreter's `_Py_DebugOffsets` (empty before 3.13).
    pub debug_checks: &'static [DebugCheck],
    /// `offsetof(_PyRuntimeState, debug_offsets)` (3.13+).
    pub runtime_debug_offsets: usize,

    // PyInterpreterState, its collector state and its static builtin types' state (3.12+).
    pub interp_gc: usize,
    pub interp_modules: usize,
    /// The dict of interned strings (3.12+), whose references to them are not counted.
    pub interp_interned: usize,
    pub interp_static_types: usize,
    pub static_types_max: usize,
    pub static_type_state_size: usize,
    pub static_type_state_type: usize,
    pub static_type_state_dict: usize,
    pub static_type_state_subclasses: usize,
    pub gc_generations: usize,
    pub gc_generation_size: usize,
    pub gc_generation_count: usize,
    pub gc_generation0: usize,
    pub gc_permanent_generation: usize,
    pub gc_collecting: usize,
    pub gc_head_size: usize,

    // PyThreadState (and 3.11-3.12's `_PyCFrame`).
    pub tstate_interp: usize,
    pub tstate_cframe: usize,
    pub cframe_current_frame: usize,
    pub tstate_current_frame: usize,
    pub tstate_thread_id: usize,
    pub tstate_dict: usize,
    pub tstate_curexc_type: usize,
    pub tstate_curexc_value: usize,
    pub tstate_curexc_traceback: usize,
    pub tstate_current_exception: usize,
    pub tstate_exc_state: usize,
    pub tstate_async_exc: usize,
    pub tstate_context: usize,
    pub tstate_async_gen_firstiter: usize,
    pub tstate_async_gen_finalizer: usize,
    pub tstate_c_profileobj: usize,
    pub tstate_c_traceobj: usize,
    pub tstate_threading_local_key: usize,

    // _PyInterpreterFrame; `iframe_executable` is `f_code` before 3.13, `iframe_instr` is
    // `prev_instr` before 3.13 and `instr_ptr` from 3.13.
    pub iframe_executable: usize,
    pub iframe_instr: usize,
    pub iframe_func: usize,
    pub iframe_locals: usize,
    pub iframe_frame_obj: usize,
    pub iframe_previous: usize,
    pub iframe_stacktop: usize,
    pub iframe_stackpointer: usize,
    pub iframe_owner: usize,
    pub iframe_localsplus: usize,
    pub frame_owned_by_thread: usize,
    pub frame_owned_by_generator: usize,
    pub frame_owned_by_frame_object: usize,
    pub frame_owned_by_cstack: usize,
    pub frame_owned_by_interpreter: usize,
    pub frame_cleared: usize,
    // `_PyStackRef` tags (3.14+).
    pub stackref_null_bits: usize,
    pub stackref_tag_bits: usize,
    pub stackref_int_tag: usize,
    pub stackref_refcnt_tag: usize,

    // PyCodeObject (and 3.12+'s `_PyCoCached`).
    pub code_consts: usize,
    pub code_names: usize,
    pub code_exceptiontable: usize,
    pub code_stacksize: usize,
    pub code_firstlineno: usize,
    pub code_nlocalsplus: usize,
    pub code_localsplusnames: usize,
    pub code_localspluskinds: usize,
    pub code_filename: usize,
    pub code_name: usize,
    pub code_qualname: usize,
    pub code_linetable: usize,
    pub code_co_code: usize,
    pub code_cached: usize,
    pub cocached_code: usize,
    pub cocached_varnames: usize,
    pub cocached_cellvars: usize,
    pub cocached_freevars: usize,
    pub code_extra: usize,
    pub code_adaptive: usize,

    // PyFrameObject.
    pub frame_back: usize,
    pub frame_frame: usize,
    pub frame_trace: usize,
    pub frame_extra_locals: usize,
    pub frame_locals_cache: usize,
    pub frame_overwritten_fast_locals: usize,
    pub frame_data: usize,

    // Generators, coroutines and async generators share one head.
    pub gen_code: usize,
    pub gen_name: usize,
    pub gen_qualname: usize,
    pub gen_exc_value: usize,
    pub gen_origin_or_finalizer: usize,
    pub gen_frame_state: usize,
    pub gen_iframe: usize,

    // Dicts, their keys and their split values.
    pub dict_used: usize,
    pub dict_keys: usize,
    pub dict_values: usize,
    pub dk_refcnt: usize,
    pub dk_log2_size: usize,
    pub dk_log2_index_bytes: usize,
    pub dk_kind: usize,
    pub dk_usable: usize,
    pub dk_nentries: usize,
    pub dk_indices: usize,
    pub dk_header_size: usize,
    pub dk_general_entry_size: usize,
    pub dk_unicode_entry_size: usize,
    pub dict_keys_general: usize,
    pub dictvalues_values: usize,
    pub dictvalues_capacity: usize,
    pub dictvalues_size: usize,
    pub dictvalues_embedded: usize,
    pub dictvalues_valid: usize,
    /// The managed `__dict__` word in front of an object (`((PyObject **)obj)[-3]`).
    pub managed_dict: isize,
    /// 3.11's inline values pointer in front of an object (`((PyDictValues **)obj)[-4]`).
    pub managed_values: isize,

    // Type objects.
    pub tp_dict: usize,
    pub tp_subclasses: usize,
    pub ht_name: usize,
    pub ht_slots: usize,
    pub ht_qualname: usize,
    pub ht_cached_keys: usize,
    pub ht_module: usize,
    pub heap_type_size: usize,
    pub type_object_size: usize,
    pub tpflags_managed_dict: usize,
    pub tpflags_managed_weakref: usize,
    pub tpflags_static_builtin: usize,
    pub tpflags_inline_values: usize,

    // Functions, modules, methods, cells, weak references.
    pub func_globals: usize,
    pub func_builtins: usize,
    pub func_name: usize,
    pub func_qualname: usize,
    pub func_code: usize,
    pub func_defaults: usize,
    pub func_kwdefaults: usize,
    pub func_closure: usize,
    pub func_doc: usize,
    pub func_dict: usize,
    pub func_module: usize,
    pub func_annotations: usize,
    pub func_typeparams: usize,
    pub func_annotate: usize,
    pub module_dict: usize,
    pub module_def: usize,
    pub module_state: usize,
    pub module_name: usize,
    pub module_state_size: usize,
    pub module_state_traverse: usize,
    pub method_func: usize,
    pub method_self: usize,
    pub cell_ref: usize,
    pub weakref_object: usize,
    pub weakref_callback: usize,

    // Sets.
    pub set_mask: usize,
    pub set_table: usize,
    pub set_smalltable: usize,
    pub set_entry_size: usize,

    // str: struct sizes, fields, and the bit positions in `state`.
    pub str_length: usize,
    pub str_state: usize,
    pub str_ascii_size: usize,
    pub str_utf8_length: usize,
    pub str_utf8: usize,
    pub str_wstr: usize,
    pub str_wstr_length: usize,
    pub str_compact_size: usize,
    pub str_legacy_data: usize,
    pub str_legacy_size: usize,
    pub str_kind_shift: usize,
    pub str_compact_bit: usize,
    pub str_ascii_bit: usize,
    pub str_ready_bit: usize,

    // int (and 3.12+'s tagged size), bytearray, list, tuple, float, bytes.
    pub long_digits: usize,
    pub long_tag: usize,
    pub long_non_size_bits: usize,
    pub long_sign_mask: usize,
    pub long_digit_bits: usize,
    pub bytearray_alloc: usize,
    /// 3.15+: the bytes object that holds a bytearray's buffer.
    pub bytearray_bytes_object: usize,
    pub list_items: usize,
    pub list_allocated: usize,
    pub tuple_items: usize,
    pub float_value: usize,
    pub bytes_data: usize,

    // Exceptions and tracebacks.
    pub exc_dict: usize,
    pub exc_args: usize,
    pub exc_notes: usize,
    pub exc_traceback: usize,
    pub exc_context: usize,
    pub exc_cause: usize,
    pub tb_next: usize,
    pub tb_frame: usize,

    // Descriptors (to tell which `__sizeof__` a type uses) and member definitions (slot names).
    pub descr_type: usize,
    pub member_name: usize,
    pub member_type: usize,
    pub member_offset: usize,
    pub member_flags: usize,
    pub member_size: usize,
    /// 3.15+: the member flag `_Py_AFTER_ITEMS` (its offset counts from the end of the items).
    pub member_after_items: usize,
    pub t_object: usize,
    pub t_object_ex: usize,

    // Types defined in C files rather than headers (Modules/_collectionsmodule.c,
    // Objects/odictobject.c, Modules/arraymodule.c), replicated in the probe; the size tests
    // check them against `sys.getsizeof`.
    pub defaultdict_factory: usize,
    pub odict_first: usize,
    pub odict_fast_nodes_size: usize,
    pub odict_inst_dict: usize,
    pub odict_node_next: usize,
    pub odict_node_key: usize,
    pub odict_node_size: usize,
    pub deque_leftindex: usize,
    pub deque_block_size: usize,
    pub deque_block_len: usize,
    /// `maxlen` of a deque: the bound it declares (-1 for none).
    pub deque_maxlen: usize,
    // `functools._lru_cache_wrapper` (Modules/_functoolsmodule.c): its `cache` dict and the
    // `maxsize` that bounds it (-1 for none), and the struct's size, which identifies the type.
    pub lru_cache_cache: usize,
    pub lru_cache_maxsize: usize,
    pub lru_cache_size: usize,
    pub array_allocated: usize,
    pub array_descr: usize,
    pub arraydescr_itemsize: usize,
}

impl Layout {
    /// Whether `offset` (a field of this layout) exists in this version.
    #[inline(always)]
    pub const fn has(offset: usize) -> bool {
        offset != ABSENT
    }
}

/// `_gc_prev` flag bits used by CPython (FINALIZED, COLLECTING), the same in every version.
pub const GC_PREV_FLAG_BITS: usize = 0b11;
