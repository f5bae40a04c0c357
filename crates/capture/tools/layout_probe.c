/* The layout probe: prints, for the CPython whose headers it is compiled against, the offset of
 * every interpreter-internal field heaplens-capture reads, the enum values and flag bits it
 * tests, and the checks to make against the interpreter's own `_Py_DebugOffsets` (3.13+).
 *
 * Do not run it by hand: `tools/generate_layout.py PYTHON` compiles it against that Python's
 * headers (Include/internal included) and writes src/cpython/vX_Y/layout.rs from its output.
 *
 * Output: one `name value` line per fact; `debug name offset expected` lines for the debug-offset
 * checks. A field the version does not have is simply not printed (the generator marks it
 * absent). Names are the Rust field names of `Layout` (src/layout.rs).
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "frameobject.h"
#include "structmember.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_code.h"
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_typeobject.h"
#include "internal/pycore_long.h"
#endif
#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_runtime.h"
#endif
#if PY_VERSION_HEX >= 0x030E0000
#include "internal/pycore_interpframe_structs.h"
#include "internal/pycore_debug_offsets.h"
#include "internal/pycore_stackref.h"
#endif

#define P(name, value) printf("%s %lld\n", name, (long long)(value))
#define O(name, T, f) P(name, offsetof(T, f))
#define S(name, T) P(name, sizeof(T))

/* Types defined in .c files, not headers (Modules/_collectionsmodule.c, Objects/odictobject.c,
 * Modules/arraymodule.c, Modules/_functoolsmodule.c). Their definitions have not changed from 3.11 to 3.15; they are
 * replicated here so that their offsets follow the header types they embed, and the size tests
 * check them against sys.getsizeof on every version. */
typedef struct { PyDictObject dict; PyObject *default_factory; } probe_defdictobject;
typedef struct probe_odictnode { PyObject *key; Py_hash_t hash; struct probe_odictnode *next; struct probe_odictnode *prev; } probe_odictnode;
typedef struct {
    PyDictObject od_dict; probe_odictnode *od_first; probe_odictnode *od_last;
    probe_odictnode **od_fast_nodes; Py_ssize_t od_fast_nodes_size; void *od_resize_sentinel;
    size_t od_state; PyObject *od_inst_dict; PyObject *od_weakreflist;
} probe_odictobject;
#define PROBE_BLOCKLEN 64
typedef struct probe_block { struct probe_block *leftlink; PyObject *data[PROBE_BLOCKLEN]; struct probe_block *rightlink; } probe_block;
typedef struct {
    PyObject_VAR_HEAD probe_block *leftblock; probe_block *rightblock; Py_ssize_t leftindex;
    Py_ssize_t rightindex; size_t state; Py_ssize_t maxlen; Py_ssize_t numfreeblocks;
    probe_block *freeblocks[16]; PyObject *weakreflist;
} probe_dequeobject;
typedef struct probe_lru_list_elem { PyObject_HEAD struct probe_lru_list_elem *prev, *next; Py_hash_t hash; PyObject *key, *result; } probe_lru_list_elem;
typedef struct {
    probe_lru_list_elem root; void *wrapper; int typed; PyObject *cache; Py_ssize_t hits;
    PyObject *func; Py_ssize_t maxsize; Py_ssize_t misses; PyObject *kwd_mark;
    PyTypeObject *lru_list_elem_type; PyObject *cache_info_type; PyObject *dict; PyObject *weakreflist;
} probe_lru_cache_object;
struct probe_arraydescr { char typecode; int itemsize; void *getitem; void *setitem; void *formats; int is_integer_type; int is_signed; };
typedef struct {
    PyObject_VAR_HEAD char *ob_item; Py_ssize_t allocated; const struct probe_arraydescr *ob_descr;
    PyObject *weakreflist; Py_ssize_t ob_exports;
} probe_arrayobject;

static int lowest_bit(uint32_t v) { return v ? __builtin_ctz(v) : -1; }

/* The bit position of each field of a str's `state`, found by setting it in a zeroed object. */
static void str_state_bits(void) {
    PyASCIIObject a;
    uint32_t word;
#define BIT(name, field, value) \
    memset(&a, 0, sizeof a); a.state.field = value; \
    memcpy(&word, (char *)&a + offsetof(PyASCIIObject, state), 4); \
    P(name, lowest_bit(word));
    BIT("str_kind_shift", kind, 1)
    BIT("str_compact_bit", compact, 1)
    BIT("str_ascii_bit", ascii, 1)
#if PY_VERSION_HEX < 0x030C0000
    BIT("str_ready_bit", ready, 1)
#endif
#undef BIT
}

#if PY_VERSION_HEX >= 0x030D0000
#define D(name, dfield, expected) \
    printf("debug %s %zu %lld\n", name, offsetof(_Py_DebugOffsets, dfield), (long long)(expected));
static void debug_offsets(void) {
    P("runtime_debug_offsets", offsetof(_PyRuntimeState, debug_offsets));
    D("free_threaded", free_threaded, 0)
    D("interpreter_state.threads_head", interpreter_state.threads_head, offsetof(PyInterpreterState, threads.head))
    D("interpreter_state.gc", interpreter_state.gc, offsetof(PyInterpreterState, gc))
    D("interpreter_state.imports_modules", interpreter_state.imports_modules, offsetof(PyInterpreterState, imports.modules))
    D("thread_state.interp", thread_state.interp, offsetof(PyThreadState, interp))
    D("thread_state.current_frame", thread_state.current_frame, offsetof(PyThreadState, current_frame))
    D("thread_state.thread_id", thread_state.thread_id, offsetof(PyThreadState, thread_id))
    D("interpreter_frame.previous", interpreter_frame.previous, offsetof(_PyInterpreterFrame, previous))
    D("interpreter_frame.executable", interpreter_frame.executable, offsetof(_PyInterpreterFrame, f_executable))
    D("interpreter_frame.instr_ptr", interpreter_frame.instr_ptr, offsetof(_PyInterpreterFrame, instr_ptr))
    D("interpreter_frame.localsplus", interpreter_frame.localsplus, offsetof(_PyInterpreterFrame, localsplus))
    D("interpreter_frame.owner", interpreter_frame.owner, offsetof(_PyInterpreterFrame, owner))
    D("code_object.filename", code_object.filename, offsetof(PyCodeObject, co_filename))
    D("code_object.qualname", code_object.qualname, offsetof(PyCodeObject, co_qualname))
    D("code_object.firstlineno", code_object.firstlineno, offsetof(PyCodeObject, co_firstlineno))
    D("code_object.localsplusnames", code_object.localsplusnames, offsetof(PyCodeObject, co_localsplusnames))
    D("code_object.co_code_adaptive", code_object.co_code_adaptive, offsetof(PyCodeObject, co_code_adaptive))
    D("tuple_object.ob_item", tuple_object.ob_item, offsetof(PyTupleObject, ob_item))
    D("list_object.ob_item", list_object.ob_item, offsetof(PyListObject, ob_item))
    D("dict_object.ma_keys", dict_object.ma_keys, offsetof(PyDictObject, ma_keys))
    D("dict_object.ma_values", dict_object.ma_values, offsetof(PyDictObject, ma_values))
    D("long_object.lv_tag", long_object.lv_tag, offsetof(PyLongObject, long_value.lv_tag))
    D("long_object.ob_digit", long_object.ob_digit, offsetof(PyLongObject, long_value.ob_digit))
    D("unicode_object.state", unicode_object.state, offsetof(PyASCIIObject, state))
    D("unicode_object.length", unicode_object.length, offsetof(PyASCIIObject, length))
    D("unicode_object.asciiobject_size", unicode_object.asciiobject_size, sizeof(PyASCIIObject))
    D("gc.collecting", gc.collecting, offsetof(struct _gc_runtime_state, collecting))
#if PY_VERSION_HEX >= 0x030E0000
    D("interpreter_frame.stackpointer", interpreter_frame.stackpointer, offsetof(_PyInterpreterFrame, stackpointer))
    D("set_object.table", set_object.table, offsetof(PySetObject, table))
    D("set_object.mask", set_object.mask, offsetof(PySetObject, mask))
    D("gen_object.gi_iframe", gen_object.gi_iframe, offsetof(PyGenObject, gi_iframe))
    D("gen_object.gi_frame_state", gen_object.gi_frame_state, offsetof(PyGenObject, gi_frame_state))
    D("type_object.tp_flags", type_object.tp_flags, offsetof(PyTypeObject, tp_flags))
#endif
}
#undef D
#endif

int main(void) {
    P("version_hex", PY_VERSION_HEX);
    P("pointer_size", sizeof(void *));

    /* PyInterpreterState and its collector. */
    O("interp_gc", PyInterpreterState, gc);
#if PY_VERSION_HEX >= 0x030C0000
    O("interp_modules", PyInterpreterState, imports.modules);
#else
    O("interp_modules", PyInterpreterState, modules);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    O("interp_static_types", PyInterpreterState, types.builtins.initialized);
    P("static_types_max", _Py_MAX_MANAGED_STATIC_BUILTIN_TYPES);
    S("static_type_state_size", managed_static_type_state);
    O("static_type_state_type", managed_static_type_state, type);
    O("static_type_state_dict", managed_static_type_state, tp_dict);
    O("static_type_state_subclasses", managed_static_type_state, tp_subclasses);
#elif PY_VERSION_HEX >= 0x030C0000
    O("interp_static_types", PyInterpreterState, types.builtins);
    P("static_types_max", _Py_MAX_STATIC_BUILTIN_TYPES);
    S("static_type_state_size", static_builtin_state);
    O("static_type_state_type", static_builtin_state, type);
    O("static_type_state_dict", static_builtin_state, tp_dict);
    O("static_type_state_subclasses", static_builtin_state, tp_subclasses);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    O("interp_interned", PyInterpreterState, cached_objects.interned_strings);
#endif
    O("gc_generations", struct _gc_runtime_state, generations);
    S("gc_generation_size", struct gc_generation);
    P("gc_generation_count", NUM_GENERATIONS);
#if PY_VERSION_HEX < 0x030E0000 || PY_VERSION_HEX >= 0x030E0500
    /* 3.14.0 to 3.14.4 (the incremental collector) have no generation0. */
    O("gc_generation0", struct _gc_runtime_state, generation0);
#endif
    O("gc_permanent_generation", struct _gc_runtime_state, permanent_generation);
    O("gc_collecting", struct _gc_runtime_state, collecting);

    /* PyThreadState. */
    O("tstate_interp", PyThreadState, interp);
#if PY_VERSION_HEX >= 0x030D0000
    O("tstate_current_frame", PyThreadState, current_frame);
#else
    O("tstate_cframe", PyThreadState, cframe);
    O("cframe_current_frame", _PyCFrame, current_frame);
#endif
    O("tstate_thread_id", PyThreadState, thread_id);
    O("tstate_dict", PyThreadState, dict);
#if PY_VERSION_HEX >= 0x030C0000
    O("tstate_current_exception", PyThreadState, current_exception);
#else
    O("tstate_curexc_type", PyThreadState, curexc_type);
    O("tstate_curexc_value", PyThreadState, curexc_value);
    O("tstate_curexc_traceback", PyThreadState, curexc_traceback);
#endif
    O("tstate_exc_state", PyThreadState, exc_state.exc_value);
    O("tstate_async_exc", PyThreadState, async_exc);
    O("tstate_context", PyThreadState, context);
    O("tstate_async_gen_firstiter", PyThreadState, async_gen_firstiter);
    O("tstate_async_gen_finalizer", PyThreadState, async_gen_finalizer);
    O("tstate_c_profileobj", PyThreadState, c_profileobj);
    O("tstate_c_traceobj", PyThreadState, c_traceobj);
#if PY_VERSION_HEX >= 0x030D0000
    O("tstate_threading_local_key", PyThreadState, threading_local_key);
#endif

    /* _PyInterpreterFrame. */
#if PY_VERSION_HEX >= 0x030D0000
    O("iframe_executable", _PyInterpreterFrame, f_executable);
    O("iframe_instr", _PyInterpreterFrame, instr_ptr);
#else
    O("iframe_executable", _PyInterpreterFrame, f_code);
    O("iframe_instr", _PyInterpreterFrame, prev_instr);
#endif
#if PY_VERSION_HEX >= 0x030C0000
    O("iframe_func", _PyInterpreterFrame, f_funcobj);
#else
    O("iframe_func", _PyInterpreterFrame, f_func);
#endif
    O("iframe_locals", _PyInterpreterFrame, f_locals);
    O("iframe_frame_obj", _PyInterpreterFrame, frame_obj);
    O("iframe_previous", _PyInterpreterFrame, previous);
#if PY_VERSION_HEX >= 0x030E0000
    O("iframe_stackpointer", _PyInterpreterFrame, stackpointer);
#else
    O("iframe_stacktop", _PyInterpreterFrame, stacktop);
#endif
    O("iframe_owner", _PyInterpreterFrame, owner);
    O("iframe_localsplus", _PyInterpreterFrame, localsplus);
    P("frame_owned_by_thread", FRAME_OWNED_BY_THREAD);
    P("frame_owned_by_generator", FRAME_OWNED_BY_GENERATOR);
    P("frame_owned_by_frame_object", FRAME_OWNED_BY_FRAME_OBJECT);
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030F0000
    P("frame_owned_by_cstack", FRAME_OWNED_BY_CSTACK);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    P("frame_owned_by_interpreter", FRAME_OWNED_BY_INTERPRETER);
    P("stackref_null_bits", PyStackRef_NULL_BITS);
    P("stackref_tag_bits", Py_TAG_BITS);
    P("stackref_int_tag", Py_INT_TAG);
    P("stackref_refcnt_tag", Py_TAG_REFCNT);
#endif
    P("frame_cleared", FRAME_CLEARED);

    /* PyCodeObject. */
    O("code_consts", PyCodeObject, co_consts);
    O("code_names", PyCodeObject, co_names);
    O("code_exceptiontable", PyCodeObject, co_exceptiontable);
    O("code_stacksize", PyCodeObject, co_stacksize);
    O("code_firstlineno", PyCodeObject, co_firstlineno);
    O("code_nlocalsplus", PyCodeObject, co_nlocalsplus);
    O("code_localsplusnames", PyCodeObject, co_localsplusnames);
    O("code_localspluskinds", PyCodeObject, co_localspluskinds);
    O("code_filename", PyCodeObject, co_filename);
    O("code_name", PyCodeObject, co_name);
    O("code_qualname", PyCodeObject, co_qualname);
    O("code_linetable", PyCodeObject, co_linetable);
#if PY_VERSION_HEX >= 0x030C0000
    O("code_cached", PyCodeObject, _co_cached);
    O("cocached_code", _PyCoCached, _co_code);
    O("cocached_varnames", _PyCoCached, _co_varnames);
    O("cocached_cellvars", _PyCoCached, _co_cellvars);
    O("cocached_freevars", _PyCoCached, _co_freevars);
#else
    O("code_co_code", PyCodeObject, _co_code);
#endif
    O("code_extra", PyCodeObject, co_extra);
    O("code_adaptive", PyCodeObject, co_code_adaptive);

    /* PyFrameObject. */
    O("frame_back", PyFrameObject, f_back);
    O("frame_frame", PyFrameObject, f_frame);
    O("frame_trace", PyFrameObject, f_trace);
#if PY_VERSION_HEX >= 0x030D0000
    O("frame_extra_locals", PyFrameObject, f_extra_locals);
    O("frame_locals_cache", PyFrameObject, f_locals_cache);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    O("frame_overwritten_fast_locals", PyFrameObject, f_overwritten_fast_locals);
#endif
    O("frame_data", PyFrameObject, _f_frame_data);

    /* Generators, coroutines and async generators share one head. */
#if PY_VERSION_HEX < 0x030C0000
    O("gen_code", PyGenObject, gi_code);
#endif
    O("gen_name", PyGenObject, gi_name);
    O("gen_qualname", PyGenObject, gi_qualname);
    O("gen_exc_value", PyGenObject, gi_exc_state.exc_value);
    O("gen_origin_or_finalizer", PyGenObject, gi_origin_or_finalizer);
    O("gen_frame_state", PyGenObject, gi_frame_state);
    O("gen_iframe", PyGenObject, gi_iframe);

    /* Dicts. */
    O("dict_used", PyDictObject, ma_used);
    O("dict_keys", PyDictObject, ma_keys);
    O("dict_values", PyDictObject, ma_values);
    O("dk_refcnt", PyDictKeysObject, dk_refcnt);
    O("dk_log2_size", PyDictKeysObject, dk_log2_size);
    O("dk_log2_index_bytes", PyDictKeysObject, dk_log2_index_bytes);
    O("dk_kind", PyDictKeysObject, dk_kind);
    O("dk_usable", PyDictKeysObject, dk_usable);
    O("dk_nentries", PyDictKeysObject, dk_nentries);
    O("dk_indices", PyDictKeysObject, dk_indices);
    P("dk_header_size", offsetof(PyDictKeysObject, dk_indices));
    S("dk_general_entry_size", PyDictKeyEntry);
    S("dk_unicode_entry_size", PyDictUnicodeEntry);
    P("dict_keys_general", DICT_KEYS_GENERAL);
    O("dictvalues_values", PyDictValues, values);
#if PY_VERSION_HEX >= 0x030D0000
    O("dictvalues_capacity", PyDictValues, capacity);
    O("dictvalues_size", PyDictValues, size);
    O("dictvalues_embedded", PyDictValues, embedded);
    O("dictvalues_valid", PyDictValues, valid);
#endif
    /* Words in front of an object with a managed dict (the macros _PyObject_ManagedDictPointer
     * and, in 3.11, _PyObject_DictOrValuesPointer / _PyObject_ValuesPointer). */
#ifdef MANAGED_DICT_OFFSET
    P("managed_dict", MANAGED_DICT_OFFSET);
#else
    P("managed_dict", -3 * (int)sizeof(PyObject *));
#endif
#if PY_VERSION_HEX < 0x030C0000
    P("managed_values", -4 * (int)sizeof(PyObject *));
#endif

    /* Type objects. */
    O("tp_dict", PyTypeObject, tp_dict);
    O("tp_subclasses", PyTypeObject, tp_subclasses);
    O("ht_name", PyHeapTypeObject, ht_name);
    O("ht_slots", PyHeapTypeObject, ht_slots);
    O("ht_qualname", PyHeapTypeObject, ht_qualname);
    O("ht_cached_keys", PyHeapTypeObject, ht_cached_keys);
    O("ht_module", PyHeapTypeObject, ht_module);
    S("heap_type_size", PyHeapTypeObject);
    S("type_object_size", PyTypeObject);
    P("tpflags_managed_dict", Py_TPFLAGS_MANAGED_DICT);
#if PY_VERSION_HEX >= 0x030C0000
    P("tpflags_managed_weakref", Py_TPFLAGS_MANAGED_WEAKREF);
    P("tpflags_static_builtin", _Py_TPFLAGS_STATIC_BUILTIN);
#endif
#if PY_VERSION_HEX >= 0x030D0000
    P("tpflags_inline_values", Py_TPFLAGS_INLINE_VALUES);
#endif

    /* Functions, modules, methods, cells, weak references. */
    O("func_globals", PyFunctionObject, func_globals);
    O("func_builtins", PyFunctionObject, func_builtins);
    O("func_name", PyFunctionObject, func_name);
    O("func_qualname", PyFunctionObject, func_qualname);
    O("func_code", PyFunctionObject, func_code);
    O("func_defaults", PyFunctionObject, func_defaults);
    O("func_kwdefaults", PyFunctionObject, func_kwdefaults);
    O("func_closure", PyFunctionObject, func_closure);
    O("func_doc", PyFunctionObject, func_doc);
    O("func_dict", PyFunctionObject, func_dict);
    O("func_module", PyFunctionObject, func_module);
    O("func_annotations", PyFunctionObject, func_annotations);
#if PY_VERSION_HEX >= 0x030C0000
    O("func_typeparams", PyFunctionObject, func_typeparams);
#endif
#if PY_VERSION_HEX >= 0x030E0000
    O("func_annotate", PyFunctionObject, func_annotate);
#endif
    O("module_dict", PyModuleObject, md_dict);
    O("module_state", PyModuleObject, md_state);
    O("module_name", PyModuleObject, md_name);
#if PY_VERSION_HEX >= 0x030F0000
    O("module_state_size", PyModuleObject, md_state_size);
    O("module_state_traverse", PyModuleObject, md_state_traverse);
#else
    O("module_def", PyModuleObject, md_def);
#endif
    O("method_func", PyMethodObject, im_func);
    O("method_self", PyMethodObject, im_self);
    O("cell_ref", PyCellObject, ob_ref);
    O("weakref_object", PyWeakReference, wr_object);
    O("weakref_callback", PyWeakReference, wr_callback);

    /* Sets. */
    O("set_mask", PySetObject, mask);
    O("set_table", PySetObject, table);
    O("set_smalltable", PySetObject, smalltable);
    S("set_entry_size", setentry);

    /* str. */
    O("str_length", PyASCIIObject, length);
    O("str_state", PyASCIIObject, state);
    S("str_ascii_size", PyASCIIObject);
    O("str_utf8_length", PyCompactUnicodeObject, utf8_length);
    O("str_utf8", PyCompactUnicodeObject, utf8);
#if PY_VERSION_HEX < 0x030C0000
    O("str_wstr", PyASCIIObject, wstr);
    O("str_wstr_length", PyCompactUnicodeObject, wstr_length);
#endif
    S("str_compact_size", PyCompactUnicodeObject);
    O("str_legacy_data", PyUnicodeObject, data);
    S("str_legacy_size", PyUnicodeObject);
    str_state_bits();

    /* int, bytearray, list, tuple, float, bytes. */
#if PY_VERSION_HEX >= 0x030C0000
    O("long_digits", PyLongObject, long_value.ob_digit);
    O("long_tag", PyLongObject, long_value.lv_tag);
    P("long_non_size_bits", _PyLong_NON_SIZE_BITS);
    P("long_sign_mask", _PyLong_SIGN_MASK);
#else
    O("long_digits", PyLongObject, ob_digit);
#endif
    P("long_digit_bits", PyLong_SHIFT);
    O("bytearray_alloc", PyByteArrayObject, ob_alloc);
#if PY_VERSION_HEX >= 0x030F0000
    O("bytearray_bytes_object", PyByteArrayObject, ob_bytes_object);
#endif
    O("list_items", PyListObject, ob_item);
    O("list_allocated", PyListObject, allocated);
    O("tuple_items", PyTupleObject, ob_item);
    O("float_value", PyFloatObject, ob_fval);
    O("bytes_data", PyBytesObject, ob_sval);

    /* Exceptions and tracebacks. */
    O("exc_dict", PyBaseExceptionObject, dict);
    O("exc_args", PyBaseExceptionObject, args);
    O("exc_notes", PyBaseExceptionObject, notes);
    O("exc_traceback", PyBaseExceptionObject, traceback);
    O("exc_context", PyBaseExceptionObject, context);
    O("exc_cause", PyBaseExceptionObject, cause);
    O("tb_next", PyTracebackObject, tb_next);
    O("tb_frame", PyTracebackObject, tb_frame);

    /* Descriptors (which `__sizeof__` a type uses) and member definitions (slot names). */
    O("descr_type", PyDescrObject, d_type);
    O("member_name", PyMemberDef, name);
    O("member_type", PyMemberDef, type);
    O("member_offset", PyMemberDef, offset);
    O("member_flags", PyMemberDef, flags);
    S("member_size", PyMemberDef);
#ifdef _Py_AFTER_ITEMS
    /* 3.15+: a member of a variable-size type stored after its items. */
    P("member_after_items", _Py_AFTER_ITEMS);
#endif
    P("t_object", T_OBJECT);
    P("t_object_ex", T_OBJECT_EX);

    /* Types defined in C files (see the replicas above). */
    O("defaultdict_factory", probe_defdictobject, default_factory);
    O("odict_first", probe_odictobject, od_first);
    O("odict_fast_nodes_size", probe_odictobject, od_fast_nodes_size);
    O("odict_inst_dict", probe_odictobject, od_inst_dict);
    O("odict_node_next", probe_odictnode, next);
    O("odict_node_key", probe_odictnode, key);
    S("odict_node_size", probe_odictnode);
    O("deque_leftindex", probe_dequeobject, leftindex);
    S("deque_block_size", probe_block);
    P("deque_block_len", PROBE_BLOCKLEN);
    O("deque_maxlen", probe_dequeobject, maxlen);
    O("lru_cache_cache", probe_lru_cache_object, cache);
    O("lru_cache_maxsize", probe_lru_cache_object, maxsize);
    S("lru_cache_size", probe_lru_cache_object);
    O("array_allocated", probe_arrayobject, allocated);
    O("array_descr", probe_arrayobject, ob_descr);
    O("arraydescr_itemsize", struct probe_arraydescr, itemsize);

    /* The GC header. */
    S("gc_head_size", PyGC_Head);

#if PY_VERSION_HEX >= 0x030D0000
    debug_offsets();
#endif
    return 0;
}
