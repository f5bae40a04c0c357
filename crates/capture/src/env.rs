//! What the capture needs to know about the running interpreter, resolved once per process: the
//! struct layout, the builtin types it recognises, and their `tp_traverse` functions.
//!
//! Resolving runs Python code (it imports `collections` and builds a probe class, object and dict)
//! and so happens at import time, never during a walk. It then checks the layout against those
//! live objects; a mismatch (an unsupported version, a debug build) is reported as an
//! `UnsupportedPython` error by every capture instead of crashing.

use super::layout::{self, Layout};
use super::raw::{self, field, read, Obj, Type};
use pyo3::ffi;
use pyo3::prelude::*;
use std::sync::OnceLock;

extern "C" {
    static mut PyODict_Type: ffi::PyTypeObject;
    static mut PyMethod_Type: ffi::PyTypeObject;
    static mut _PySet_Dummy: *mut ffi::PyObject;
}

/// Builtin types the capture recognises by identity.
#[derive(Debug)]
pub struct KnownTypes {
    pub object: Type,
    pub type_: Type,
    pub int: Type,
    pub str_: Type,
    pub list: Type,
    pub tuple: Type,
    pub dict: Type,
    pub set: Type,
    pub frozenset: Type,
    pub bytearray: Type,
    pub code: Type,
    pub frame: Type,
    pub generator: Type,
    pub coroutine: Type,
    pub async_generator: Type,
    pub function: Type,
    pub cell: Type,
    pub method: Type,
    pub module: Type,
    pub weakref: Type,
    pub traceback: Type,
    pub odict: Type,
    pub defaultdict: Type,
    pub deque: Type,
    pub method_descriptor: Type,
    pub base_exception: Type,
}

/// Everything resolved about the interpreter.
#[derive(Debug)]
pub struct Env {
    pub layout: &'static Layout,
    pub types: KnownTypes,
    /// `subtype_traverse`: the `tp_traverse` of classes defined in Python.
    pub subtype_traverse: usize,
    /// `_PySet_Dummy`, the marker of deleted set entries.
    pub set_dummy: Obj,
    /// `sys.version`, for snapshot metadata.
    pub python_version: String,
}

// SAFETY: the pointers are to static builtin types and immortal-for-our-purposes objects (the
// set dummy, the builtin types); they are only dereferenced with the GIL held.
unsafe impl Send for Env {}
unsafe impl Sync for Env {}

impl Env {
    /// The `tp_traverse` of `t` as an address, for comparisons.
    ///
    /// # Safety
    /// `t` must be a live type object.
    pub unsafe fn traverse_of(t: Type) -> usize {
        unsafe { (*t).tp_traverse.map_or(0, |f| f as usize) }
    }
}

static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

/// The resolved environment, or why capture cannot work in this interpreter.
pub fn get() -> Result<&'static Env, String> {
    match ENV.get() {
        Some(Ok(env)) => Ok(env),
        Some(Err(why)) => Err(why.clone()),
        None => Err("heaplens._native was not initialised".into()),
    }
}

/// Resolves and validates the environment. Called once, from the module's initialisation.
pub fn init(py: Python<'_>) {
    let result = resolve(py).and_then(|env| {
        // SAFETY: we hold the GIL; validation only reads objects it created and keeps alive.
        unsafe { validate(py, &env) }?;
        Ok(env)
    });
    let _ = ENV.set(result);
}

fn type_ptr(obj: &Bound<'_, PyAny>) -> Type {
    obj.as_ptr() as Type
}

fn resolve(py: Python<'_>) -> Result<Env, String> {
    let info = py.version_info();
    let layout = layout::for_version(info.major, info.minor).ok_or_else(|| {
        format!(
            "heaplens can capture heaps of CPython 3.11; this is Python {}.{}",
            info.major, info.minor
        )
    })?;
    if cfg!(not(target_pointer_width = "64")) {
        return Err("heaplens captures heaps of 64-bit CPython only".into());
    }
    let collections = py
        .import("collections")
        .map_err(|e| format!("cannot import collections: {e}"))?;
    let get = |name: &str| -> Result<Type, String> {
        collections
            .getattr(name)
            .map(|t| type_ptr(&t))
            .map_err(|e| format!("collections.{name}: {e}"))
    };
    let probe_class = py
        .eval(c"type('_HeaplensProbe', (), {})", None, None)
        .map_err(|e| format!("cannot create the probe class: {e}"))?;
    // SAFETY: reading a field of a live type.
    let subtype_traverse = unsafe { Env::traverse_of(type_ptr(&probe_class)) };
    // SAFETY: taking addresses of exported static types, reading an exported pointer.
    let types = unsafe {
        KnownTypes {
            object: &raw mut ffi::PyBaseObject_Type,
            type_: &raw mut ffi::PyType_Type,
            int: &raw mut ffi::PyLong_Type,
            str_: &raw mut ffi::PyUnicode_Type,
            list: &raw mut ffi::PyList_Type,
            tuple: &raw mut ffi::PyTuple_Type,
            dict: &raw mut ffi::PyDict_Type,
            set: &raw mut ffi::PySet_Type,
            frozenset: &raw mut ffi::PyFrozenSet_Type,
            bytearray: &raw mut ffi::PyByteArray_Type,
            code: &raw mut ffi::PyCode_Type,
            frame: &raw mut ffi::PyFrame_Type,
            generator: &raw mut ffi::PyGen_Type,
            coroutine: &raw mut ffi::PyCoro_Type,
            async_generator: &raw mut ffi::PyAsyncGen_Type,
            function: &raw mut ffi::PyFunction_Type,
            cell: &raw mut ffi::PyCell_Type,
            method: &raw mut PyMethod_Type,
            module: &raw mut ffi::PyModule_Type,
            weakref: &raw mut ffi::_PyWeakref_RefType,
            traceback: &raw mut ffi::PyTraceBack_Type,
            odict: &raw mut PyODict_Type,
            defaultdict: get("defaultdict")?,
            deque: get("deque")?,
            method_descriptor: &raw mut ffi::PyMethodDescr_Type,
            base_exception: ffi::PyExc_BaseException as Type,
        }
    };
    let python_version = py
        .import("sys")
        .and_then(|sys| sys.getattr("version"))
        .and_then(|v| v.extract::<String>())
        .unwrap_or_default();
    Ok(Env {
        layout,
        types,
        subtype_traverse,
        // SAFETY: reading an exported pointer variable.
        set_dummy: unsafe { _PySet_Dummy },
        python_version,
    })
}

/// Checks the layout against live objects. Each check names what it found, so a report from an
/// unusual build says which structure differs.
unsafe fn validate(py: Python<'_>, env: &Env) -> Result<(), String> {
    let l = env.layout;
    let fail = |what: &str| {
        Err(format!(
            "this CPython build does not match heaplens's layout for {}.{} ({what}); \
             debug and trace-refs builds are not supported",
            l.version.0, l.version.1
        ))
    };
    unsafe {
        if (*env.types.object).tp_basicsize != 16 {
            return fail("object header size");
        }
        if (*env.types.type_).tp_basicsize as usize != l.heap_type_size {
            return fail("PyHeapTypeObject size");
        }
        let interp = ffi::PyInterpreterState_Get() as *const u8;
        let gc = interp.add(l.interp_gc);
        let gen0: *const u8 = read(gc, l.gc_generation0);
        if gen0 != gc.add(l.gc_generations) {
            return fail("gc generation lists");
        }
        let tstate = ffi::PyThreadState_Get() as *const u8;
        if read::<*const u8>(tstate, l.tstate_interp) != interp {
            return fail("thread state");
        }
        let modules: Obj = read(interp, l.interp_modules);
        if modules != ffi::PyImport_GetModuleDict() {
            return fail("sys.modules");
        }
    }

    // A list, a dict with a str key, an instance with an inline attribute, a non-ASCII str.
    let probe = py
        .eval(
            c"(lambda C: (C, [1, 'x'], {'heaplens_key': 7}, 'h\\u00e9llo\\u20ac'))(type('_HeaplensProbe', (), {}))",
            None,
            None,
        )
        .map_err(|e| format!("cannot build probe objects: {e}"))?;
    let class = probe.get_item(0).map_err(|e| e.to_string())?;
    let instance = class.call0().map_err(|e| e.to_string())?;
    instance
        .setattr("heaplens_attr", 42)
        .map_err(|e| e.to_string())?;
    let list = probe.get_item(1).map_err(|e| e.to_string())?;
    let dict = probe.get_item(2).map_err(|e| e.to_string())?;
    let text = probe.get_item(3).map_err(|e| e.to_string())?;
    let seven = dict.get_item("heaplens_key").map_err(|e| e.to_string())?;
    let forty_two = instance
        .getattr("heaplens_attr")
        .map_err(|e| e.to_string())?;
    unsafe {
        let lp = list.as_ptr() as *const u8;
        let items: *const Obj = read(lp, l.list_items);
        let first = list.get_item(0).map_err(|e| e.to_string())?;
        if raw::ob_size(list.as_ptr()) != 2 || *items != first.as_ptr() {
            return fail("list items");
        }
        let mut found = false;
        super::dicts::for_each_dict_entry(l, dict.as_ptr(), |k, v| {
            if raw::str_eq_ascii(l, k, b"heaplens_key") && v == seven.as_ptr() {
                found = true;
            }
        });
        if !found {
            return fail("dict entries");
        }
        let mut found = false;
        super::dicts::for_each_inline_attribute(l, instance.as_ptr(), |k, v| {
            if raw::str_eq_ascii(l, k, b"heaplens_attr") && v == forty_two.as_ptr() {
                found = true;
            }
        });
        if !found {
            return fail("inline instance attributes");
        }
        let mut decoded = String::new();
        if !raw::str_text(l, text.as_ptr(), 100, &mut decoded) || decoded != "h\u{e9}llo\u{20ac}" {
            return fail("str data");
        }
        let func = py
            .eval(c"lambda heaplens_arg: heaplens_arg", None, None)
            .map_err(|e| e.to_string())?;
        let code = field(func.as_ptr() as *const u8, l.func_code);
        if raw::ob_type(code) != env.types.code {
            return fail("function code");
        }
        let names = field(code as *const u8, l.code_localsplusnames);
        let first_name = field(names as *const u8, l.tuple_items);
        if !raw::str_eq_ascii(l, first_name, b"heaplens_arg") {
            return fail("code local names");
        }
    }
    Ok(())
}
