//! The CPython struct layouts the capture reads, one constant per interpreter version.
//!
//! This is the only version-specific data in heaplens. The public C API gives no way to walk the
//! GC lists, read an interpreter frame's locals or an instance's inline attribute values without
//! running Python code or allocating objects (which would change the heap being measured), so the
//! capture reads those structures directly. Offsets come from `tools/layout_probe_311.c`, compiled
//! against the interpreter's own internal headers; [`Layout::validate`] checks them against live
//! objects before the first capture, so a mismatched build gets a clear error instead of a crash.
//!
//! Adding CPython 3.12: run the probe against 3.12's headers, add `CPYTHON_3_12`, dispatch on it in
//! [`for_version`], and give `gc_lists` the 3.12 way of enumerating objects
//! (`PyUnstable_GC_VisitObjects`).

/// Offsets (in bytes) of the fields heaplens reads. Names follow CPython's: `interp_gc` is the
/// offset of `gc` in `PyInterpreterState`, `iframe_*` are fields of `_PyInterpreterFrame`, etc.
#[derive(Debug)]
pub struct Layout {
    pub version: (u8, u8),

    // PyInterpreterState and its `struct _gc_runtime_state gc`.
    pub interp_gc: usize,
    pub interp_modules: usize,
    pub gc_generations: usize,
    pub gc_generation_size: usize,
    pub gc_generation_count: usize,
    pub gc_generation0: usize,
    pub gc_permanent_generation: usize,
    pub gc_collecting: usize,

    // PyThreadState.
    pub tstate_interp: usize,
    pub tstate_cframe: usize,
    pub tstate_thread_id: usize,
    pub tstate_dict: usize,
    pub tstate_curexc_type: usize,
    pub tstate_curexc_value: usize,
    pub tstate_curexc_traceback: usize,
    pub tstate_exc_state: usize,
    pub tstate_context: usize,
    pub tstate_async_gen_firstiter: usize,
    pub tstate_async_gen_finalizer: usize,
    pub tstate_c_profileobj: usize,
    pub tstate_c_traceobj: usize,
    pub cframe_current_frame: usize,

    // _PyInterpreterFrame.
    pub iframe_func: usize,
    pub iframe_locals: usize,
    pub iframe_code: usize,
    pub iframe_frame_obj: usize,
    pub iframe_previous: usize,
    pub iframe_prev_instr: usize,
    pub iframe_stacktop: usize,
    pub iframe_owner: usize,
    pub iframe_localsplus: usize,

    // PyCodeObject.
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
    pub code_extra: usize,
    pub code_adaptive: usize,

    // PyFrameObject.
    pub frame_back: usize,
    pub frame_frame: usize,
    pub frame_trace: usize,

    // Generators, coroutines and async generators share one head.
    pub gen_code: usize,
    pub gen_name: usize,
    pub gen_qualname: usize,
    pub gen_exc_value: usize,
    pub gen_origin_or_finalizer: usize,
    pub gen_frame_state: usize,
    pub gen_iframe: usize,

    // Dicts.
    pub dict_size: usize,
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
    /// Inline attribute values of a managed-dict instance: `((PyDictValues **)obj)[-4]`.
    pub managed_values: isize,
    /// The managed `__dict__` pointer: `((PyObject **)obj)[-3]`.
    pub managed_dict: isize,

    // Heap types.
    pub ht_name: usize,
    pub ht_slots: usize,
    pub ht_qualname: usize,
    pub ht_cached_keys: usize,
    pub ht_module: usize,
    pub heap_type_size: usize,
    pub type_object_size: usize,

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
    pub module_dict: usize,
    pub module_def: usize,
    pub module_state: usize,
    pub module_name: usize,
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

    // str.
    pub str_length: usize,
    pub str_state: usize,
    pub str_wstr: usize,
    pub str_ascii_size: usize,
    pub str_utf8_length: usize,
    pub str_utf8: usize,
    pub str_wstr_length: usize,
    pub str_compact_size: usize,
    pub str_legacy_data: usize,
    pub str_legacy_size: usize,

    // int, bytearray, list, tuple.
    pub long_digits: usize,
    pub bytearray_alloc: usize,
    pub list_items: usize,
    pub list_allocated: usize,
    pub tuple_items: usize,

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
    pub member_size: usize,

    // Types defined in C files rather than headers (Modules/_collectionsmodule.c,
    // Objects/odictobject.c, Modules/arraymodule.c); checked by the size tests against
    // `sys.getsizeof`.
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
    pub array_allocated: usize,
    pub array_descr: usize,
    pub arraydescr_itemsize: usize,
}

/// CPython 3.11 on a 64-bit platform (release build; a `Py_TRACE_REFS` build fails validation).
pub static CPYTHON_3_11: Layout = Layout {
    version: (3, 11),
    interp_gc: 648,
    interp_modules: 888,
    gc_generations: 24,
    gc_generation_size: 24,
    gc_generation_count: 3,
    gc_generation0: 96,
    gc_permanent_generation: 104,
    gc_collecting: 200,

    tstate_interp: 16,
    tstate_cframe: 56,
    tstate_thread_id: 152,
    tstate_dict: 128,
    tstate_curexc_type: 96,
    tstate_curexc_value: 104,
    tstate_curexc_traceback: 112,
    tstate_exc_state: 320,
    tstate_context: 224,
    tstate_async_gen_firstiter: 208,
    tstate_async_gen_finalizer: 216,
    tstate_c_profileobj: 80,
    tstate_c_traceobj: 88,
    cframe_current_frame: 8,

    iframe_func: 0,
    iframe_locals: 24,
    iframe_code: 32,
    iframe_frame_obj: 40,
    iframe_previous: 48,
    iframe_prev_instr: 56,
    iframe_stacktop: 64,
    iframe_owner: 69,
    iframe_localsplus: 72,

    code_consts: 24,
    code_names: 32,
    code_exceptiontable: 40,
    code_stacksize: 68,
    code_firstlineno: 72,
    code_nlocalsplus: 76,
    code_localsplusnames: 96,
    code_localspluskinds: 104,
    code_filename: 112,
    code_name: 120,
    code_qualname: 128,
    code_linetable: 136,
    code_co_code: 152,
    code_extra: 176,
    code_adaptive: 184,

    frame_back: 16,
    frame_frame: 24,
    frame_trace: 32,

    gen_code: 16,
    gen_name: 32,
    gen_qualname: 40,
    gen_exc_value: 48,
    gen_origin_or_finalizer: 64,
    gen_frame_state: 75,
    gen_iframe: 80,

    dict_size: 48,
    dict_keys: 32,
    dict_values: 40,
    dk_refcnt: 0,
    dk_log2_size: 8,
    dk_log2_index_bytes: 9,
    dk_kind: 10,
    dk_usable: 16,
    dk_nentries: 24,
    dk_indices: 32,
    dk_header_size: 32,
    dk_general_entry_size: 24,
    dk_unicode_entry_size: 16,
    managed_values: -32,
    managed_dict: -24,

    ht_name: 848,
    ht_slots: 856,
    ht_qualname: 864,
    ht_cached_keys: 872,
    ht_module: 880,
    heap_type_size: 904,
    type_object_size: 408,

    func_globals: 16,
    func_builtins: 24,
    func_name: 32,
    func_qualname: 40,
    func_code: 48,
    func_defaults: 56,
    func_kwdefaults: 64,
    func_closure: 72,
    func_doc: 80,
    func_dict: 88,
    func_module: 104,
    func_annotations: 112,
    module_dict: 16,
    module_def: 24,
    module_state: 32,
    module_name: 48,
    method_func: 16,
    method_self: 24,
    cell_ref: 16,
    weakref_object: 16,
    weakref_callback: 24,

    set_mask: 32,
    set_table: 40,
    set_smalltable: 64,
    set_entry_size: 16,

    str_length: 16,
    str_state: 32,
    str_wstr: 40,
    str_ascii_size: 48,
    str_utf8_length: 48,
    str_utf8: 56,
    str_wstr_length: 64,
    str_compact_size: 72,
    str_legacy_data: 72,
    str_legacy_size: 80,

    long_digits: 24,
    bytearray_alloc: 24,
    list_items: 24,
    list_allocated: 32,
    tuple_items: 24,

    exc_dict: 16,
    exc_args: 24,
    exc_notes: 32,
    exc_traceback: 40,
    exc_context: 48,
    exc_cause: 56,
    tb_next: 16,
    tb_frame: 24,

    descr_type: 16,
    member_name: 0,
    member_type: 8,
    member_offset: 16,
    member_size: 40,

    defaultdict_factory: 48,
    odict_first: 48,
    odict_fast_nodes_size: 72,
    odict_inst_dict: 96,
    odict_node_next: 16,
    odict_node_key: 0,
    odict_node_size: 32,
    deque_leftindex: 40,
    deque_block_size: 528,
    deque_block_len: 64,
    array_allocated: 32,
    array_descr: 40,
    arraydescr_itemsize: 4,
};

/// Frame ownership (`enum _frameowner`).
pub const FRAME_OWNED_BY_THREAD: u8 = 0;
pub const FRAME_OWNED_BY_GENERATOR: u8 = 1;
pub const FRAME_OWNED_BY_FRAME_OBJECT: u8 = 2;
/// `FRAME_CLEARED`: a generator whose frame no longer holds anything.
pub const FRAME_CLEARED: i8 = 4;
/// `DICT_KEYS_GENERAL`: keys that are not all str (entries carry a hash).
pub const DICT_KEYS_GENERAL: u8 = 0;
/// `T_OBJECT_EX` and `T_OBJECT` member types (structmember.h).
pub const T_OBJECT: i32 = 6;
pub const T_OBJECT_EX: i32 = 16;
/// `_gc_prev` flag bits used by CPython (FINALIZED, COLLECTING).
pub const GC_PREV_FLAG_BITS: usize = 0b11;

/// The layout for a CPython version, if heaplens knows it.
pub fn for_version(major: u8, minor: u8) -> Option<&'static Layout> {
    match (major, minor) {
        (3, 11) => Some(&CPYTHON_3_11),
        _ => None,
    }
}
