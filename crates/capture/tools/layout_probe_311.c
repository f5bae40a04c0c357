/* Prints the offsets of every CPython-internal field heaplens reads, for the Python whose
 * headers it is compiled against. Used to write crates/py/src/capture/layout.rs; to add a CPython
 * version, compile and run it against that version and add a Layout constant:
 *   gcc -I"$(python3 -c 'import sysconfig;print(sysconfig.get_paths()["include"])')" \
 *       crates/py/tools/layout_probe_311.c -o /tmp/probe && /tmp/probe
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include "internal/pycore_interp.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_dict.h"
#include "internal/pycore_moduleobject.h"
#include "internal/pycore_code.h"
#include "frameobject.h"
#include "structmember.h"
#define O(T,f) printf("%-40s %zu\n", #T "." #f, offsetof(T,f))
#define S(T) printf("%-40s %zu\n", "sizeof " #T, sizeof(T))
int main(void){
 O(PyInterpreterState, gc); O(struct _gc_runtime_state, generations); O(struct _gc_runtime_state, generation0);
 O(struct _gc_runtime_state, permanent_generation); O(struct _gc_runtime_state, collecting); O(struct _gc_runtime_state, enabled);
 S(struct gc_generation);
 O(PyThreadState, cframe); O(PyThreadState, thread_id); O(PyThreadState, interp); O(PyThreadState, next);
 O(_PyCFrame, current_frame); O(_PyCFrame, previous);
 O(_PyInterpreterFrame, f_func); O(_PyInterpreterFrame, f_locals); O(_PyInterpreterFrame, f_code); O(_PyInterpreterFrame, frame_obj);
 O(_PyInterpreterFrame, previous); O(_PyInterpreterFrame, prev_instr); O(_PyInterpreterFrame, stacktop); O(_PyInterpreterFrame, is_entry); O(_PyInterpreterFrame, owner); O(_PyInterpreterFrame, localsplus);
 O(PyCodeObject, co_consts); O(PyCodeObject, co_names); O(PyCodeObject, co_exceptiontable); O(PyCodeObject, co_flags);O(PyCodeObject, co_firstlineno);
 O(PyCodeObject, co_nlocalsplus); O(PyCodeObject, co_localsplusnames); O(PyCodeObject, co_localspluskinds); O(PyCodeObject, co_filename); O(PyCodeObject, co_name); O(PyCodeObject, co_qualname); O(PyCodeObject, co_linetable); O(PyCodeObject, co_weakreflist); O(PyCodeObject, _co_code); O(PyCodeObject, _co_linearray); O(PyCodeObject, co_extra); O(PyCodeObject, co_code_adaptive);
 O(PyFrameObject, f_back); O(PyFrameObject, f_frame); O(PyFrameObject, f_trace); O(PyFrameObject, f_lineno); O(PyFrameObject, _f_frame_data);
 O(PyGenObject, gi_weakreflist); O(PyGenObject, gi_name); O(PyGenObject, gi_qualname); O(PyGenObject, gi_exc_state); O(PyGenObject, gi_origin_or_finalizer); O(PyGenObject, gi_frame_state); O(PyGenObject, gi_iframe);
 O(PyGenObject, gi_code);
 O(PyDictObject, ma_used); O(PyDictObject, ma_keys); O(PyDictObject, ma_values);
 O(PyDictKeysObject, dk_log2_size); O(PyDictKeysObject, dk_log2_index_bytes); O(PyDictKeysObject, dk_kind); O(PyDictKeysObject, dk_usable); O(PyDictKeysObject, dk_nentries); O(PyDictKeysObject, dk_indices);
 S(PyDictKeyEntry); S(PyDictUnicodeEntry);
 O(PyHeapTypeObject, ht_name); O(PyHeapTypeObject, ht_slots); O(PyHeapTypeObject, ht_qualname); O(PyHeapTypeObject, ht_cached_keys); O(PyHeapTypeObject, ht_module); O(PyHeapTypeObject, _ht_tpname); S(PyHeapTypeObject);
 O(PyTypeObject, tp_name); O(PyTypeObject, tp_basicsize); O(PyTypeObject, tp_itemsize); O(PyTypeObject, tp_flags); O(PyTypeObject, tp_traverse); O(PyTypeObject, tp_members); O(PyTypeObject, tp_base); O(PyTypeObject, tp_dict); O(PyTypeObject, tp_dictoffset); O(PyTypeObject, tp_is_gc); O(PyTypeObject, tp_bases); O(PyTypeObject, tp_mro); O(PyTypeObject, tp_cache); O(PyTypeObject, tp_subclasses); O(PyTypeObject, tp_weaklist); O(PyTypeObject, tp_weaklistoffset);
 O(PyFunctionObject, func_globals); O(PyFunctionObject, func_builtins); O(PyFunctionObject, func_name); O(PyFunctionObject, func_qualname); O(PyFunctionObject, func_code); O(PyFunctionObject, func_defaults); O(PyFunctionObject, func_kwdefaults); O(PyFunctionObject, func_closure); O(PyFunctionObject, func_doc); O(PyFunctionObject, func_dict); O(PyFunctionObject, func_weakreflist); O(PyFunctionObject, func_module); O(PyFunctionObject, func_annotations); O(PyFunctionObject, vectorcall); O(PyFunctionObject, func_version); S(PyFunctionObject);
 O(PyModuleObject, md_dict); O(PyModuleObject, md_def); O(PyModuleObject, md_state); O(PyModuleObject, md_weaklist); O(PyModuleObject, md_name);
 O(PyMethodObject, im_func); O(PyMethodObject, im_self);
 O(PyCellObject, ob_ref);
 O(PyWeakReference, wr_object); O(PyWeakReference, wr_callback); S(PyWeakReference);
 O(PySetObject, fill); O(PySetObject, used); O(PySetObject, mask); O(PySetObject, table); O(PySetObject, smalltable); S(setentry);
 O(PyASCIIObject, length); O(PyASCIIObject, hash); O(PyASCIIObject, state); O(PyASCIIObject, wstr); S(PyASCIIObject);
 O(PyCompactUnicodeObject, utf8_length); O(PyCompactUnicodeObject, utf8); O(PyCompactUnicodeObject, wstr_length); S(PyCompactUnicodeObject); O(PyUnicodeObject, data); S(PyUnicodeObject);
 O(PyLongObject, ob_digit);
 O(PyBaseExceptionObject, dict); O(PyBaseExceptionObject, args); O(PyBaseExceptionObject, notes); O(PyBaseExceptionObject, traceback); O(PyBaseExceptionObject, context); O(PyBaseExceptionObject, cause);
 O(PyTracebackObject, tb_next); O(PyTracebackObject, tb_frame);
 O(PyMemberDef, name); O(PyMemberDef, type); O(PyMemberDef, offset); O(PyMemberDef, flags); S(PyMemberDef);
 O(PyMethodDescrObject, d_method); O(PyDescrObject, d_type); O(PyDescrObject, d_name); O(PyMethodDef, ml_meth);
 O(PyByteArrayObject, ob_alloc);
 O(PyListObject, ob_item); O(PyListObject, allocated); O(PyTupleObject, ob_item);
 S(PyGC_Head);
 printf("Py_TPFLAGS_MANAGED_DICT %lu\n", Py_TPFLAGS_MANAGED_DICT);
 printf("CO_FAST_LOCAL %d CELL %d FREE %d\n", CO_FAST_LOCAL, CO_FAST_CELL, CO_FAST_FREE);
 O(PyThreadState, dict); O(PyThreadState, exc_info); O(PyThreadState, curexc_type); O(PyThreadState, curexc_value); O(PyThreadState, curexc_traceback); O(PyThreadState, context); O(PyThreadState, async_gen_firstiter); O(PyThreadState, async_gen_finalizer); O(PyThreadState, c_profileobj); O(PyThreadState, c_traceobj); O(PyThreadState, exc_state); O(PyThreadState, root_cframe); O(PyThreadState, datastack_chunk);
 O(_PyErr_StackItem, exc_value); O(_PyErr_StackItem, previous_item);
 O(PyCodeObject, co_stacksize); O(PyCodeObject, _co_firsttraceable); O(PyCodeObject, co_nlocals); O(PyCodeObject, co_ncellvars); O(PyCodeObject, co_nfreevars);
 O(PyInterpreterState, modules); O(PyInterpreterState, sysdict); O(PyInterpreterState, builtins);
 O(PyCFunctionObject, m_self); O(PyCFunctionObject, m_module); O(PyCFunctionObject, m_ml);
 return 0;
 return 0;
}
