//! What the capture needs to know about the running interpreter, resolved once per process: its
//! ABI and struct layout, the builtin types it recognises, and a few C functions it may call.
//!
//! Resolving runs Python code (it reads `sys`, imports `collections` and builds probe objects)
//! and so happens at import time, never during a walk. It refuses, with one sentence, what the
//! capture cannot read: a Python outside the supported list, a debug, trace-refs or
//! free-threaded build, a 32-bit one. Then it checks each candidate layout of the version (see
//! [`crate::cpython::layouts_to_try`]) against the interpreter's `_Py_DebugOffsets` (3.13+) and
//! against live objects it builds; the first that passes is used, and when none does every
//! capture reports why instead of reading memory it does not understand.

use crate::abi::Abi;
use crate::cpython::{self, with_abi, AbiId};
use crate::layout::Layout;
use crate::raw::{self, field, read, Obj, Type};
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_int, c_ulong, c_void};
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

/// `PyUnstable_InterpreterFrame_GetLine` (3.12+).
pub type FrameLineFn = unsafe extern "C" fn(*mut c_void) -> c_int;

/// Everything resolved about the interpreter.
#[derive(Debug)]
pub struct Env {
    /// Which [`Abi`] reads this interpreter.
    pub abi: AbiId,
    /// The layout that passed the checks.
    pub layout: &'static Layout,
    /// `sys.hexversion`.
    pub version_hex: u32,
    pub types: KnownTypes,
    /// `subtype_traverse`: the `tp_traverse` of classes defined in Python.
    pub subtype_traverse: usize,
    /// `_PySet_Dummy`, the marker of deleted set entries.
    pub set_dummy: Obj,
    /// `sys.version`, for snapshot metadata.
    pub python_version: String,
    /// Bits of `_gc_next` that are flags rather than pointer bits: the incremental collector's
    /// old-space bit in 3.14.0 to 3.14.4, none elsewhere.
    pub gc_next_flags: usize,
    /// The type flags that put two words in front of an object (`_PyType_PreHeaderSize`).
    pub preheader_flags: c_ulong,
    /// `PyUnstable_InterpreterFrame_GetLine`, where the interpreter has it (3.12+).
    pub frame_line: Option<FrameLineFn>,
    /// Whether a `__dict__` materialised over an instance's inline values reports them to the
    /// collector (and the instance reports the dict), rather than the instance reporting them
    /// itself: 3.13.0 did the latter, later releases the former. Measured at start-up with
    /// `gc.get_referents`; only meaningful from 3.13.
    pub dict_reports_embedded_values: bool,
}

// SAFETY: the pointers are to static builtin types and objects that live as long as the
// interpreter (the set dummy, the builtin types); they are only dereferenced with the GIL held.
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

/// Resolves and checks the environment. Called once, from the module's initialisation.
pub fn init(py: Python<'_>) {
    let _ = ENV.set(resolve(py));
}

/// What the interpreter says about itself, read before any layout is trusted.
struct Interpreter {
    hexversion: u32,
    version: String,
    implementation: String,
    abiflags: String,
    debug: bool,
    trace_refs: bool,
}

fn describe(py: Python<'_>) -> Result<Interpreter, String> {
    let sys = py
        .import("sys")
        .map_err(|e| format!("cannot import sys: {e}"))?;
    let get = |name: &str| sys.getattr(name).map_err(|e| format!("sys.{name}: {e}"));
    Ok(Interpreter {
        hexversion: get("hexversion")?
            .extract::<u32>()
            .map_err(|e| e.to_string())?,
        version: get("version")?.extract::<String>().unwrap_or_default(),
        implementation: get("implementation")?
            .getattr("name")
            .and_then(|n| n.extract::<String>())
            .unwrap_or_default(),
        abiflags: sys
            .getattr("abiflags")
            .and_then(|f| f.extract::<String>())
            .unwrap_or_default(),
        debug: sys.hasattr("gettotalrefcount").unwrap_or(false),
        trace_refs: sys.hasattr("getobjects").unwrap_or(false),
    })
}

/// The one sentence that says what heaplens captures, and what this interpreter is instead.
pub fn unsupported_sentence(what: &str) -> String {
    format!(
        "heaplens captures heaps of CPython {} (64-bit release builds with the GIL); \
         this is {what}",
        cpython::supported_list()
    )
}

fn resolve(py: Python<'_>) -> Result<Env, String> {
    let it = describe(py)?;
    let short = it
        .version
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    let name = format!("CPython {short}");
    if it.implementation != "cpython" {
        return Err(unsupported_sentence(&format!(
            "{} {short}",
            it.implementation
        )));
    }
    if it.abiflags.contains('t') {
        return Err(unsupported_sentence(&format!(
            "a free-threaded build of {name}"
        )));
    }
    if it.debug || it.abiflags.contains('d') {
        return Err(unsupported_sentence(&format!("a debug build of {name}")));
    }
    if it.trace_refs {
        return Err(unsupported_sentence(&format!(
            "a trace-refs build of {name}"
        )));
    }
    if cfg!(not(target_pointer_width = "64")) {
        return Err(unsupported_sentence(&format!("a 32-bit build of {name}")));
    }
    let (major, minor) = ((it.hexversion >> 24) as u8, (it.hexversion >> 16) as u8);
    let (abi, layouts) =
        cpython::abi_of(major, minor).ok_or_else(|| unsupported_sentence(&name))?;
    let mut failures = Vec::new();
    for layout in cpython::layouts_to_try(it.hexversion, layouts) {
        let env = build(py, abi, layout, &it)?;
        // SAFETY: the GIL is held; the checks read objects they create and keep alive, and
        // interpreter structures through the candidate layout, verified step by step.
        let checked = with_abi!(abi, A => unsafe { validate::<A>(py, &env) });
        match checked {
            Ok(()) => {
                log::debug!(
                    target: "heaplens.capture",
                    "{name}: layout of {}.{}.{}",
                    layout.headers.0, layout.headers.1, layout.headers.2
                );
                return Ok(env);
            }
            Err(why) => failures.push(format!(
                "{}.{}.{}: {why}",
                layout.headers.0, layout.headers.1, layout.headers.2
            )),
        }
    }
    Err(format!(
        "this build of {name} does not match any layout heaplens knows for {major}.{minor} \
         ({}); was it built with unusual options?",
        failures.join("; ")
    ))
}

fn type_ptr(obj: &Bound<'_, PyAny>) -> Type {
    obj.as_ptr() as Type
}

/// Looks up a symbol the interpreter exports, if it does.
pub(crate) fn symbol(name: &std::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT searches the loaded objects; it returns null if absent.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

fn build(
    py: Python<'_>,
    abi: AbiId,
    layout: &'static Layout,
    it: &Interpreter,
) -> Result<Env, String> {
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
    let frame_line = if layout.headers >= (3, 12, 0) {
        let f = symbol(c"PyUnstable_InterpreterFrame_GetLine");
        // SAFETY: the symbol, when present, is the function of that name and signature.
        (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, FrameLineFn>(f) })
    } else {
        None
    };
    let mut preheader_flags = layout.tpflags_managed_dict as c_ulong;
    if Layout::has(layout.tpflags_managed_weakref) {
        preheader_flags |= layout.tpflags_managed_weakref as c_ulong;
    }
    Ok(Env {
        abi,
        layout,
        version_hex: it.hexversion,
        types,
        subtype_traverse,
        // SAFETY: reading an exported pointer variable.
        set_dummy: unsafe { _PySet_Dummy },
        python_version: it.version.clone(),
        gc_next_flags: cpython::v3_14::gc_next_flags(it.hexversion),
        preheader_flags,
        frame_line,
        dict_reports_embedded_values: dict_reports_embedded_values(py)?,
    })
}

/// See [`Env::dict_reports_embedded_values`].
fn dict_reports_embedded_values(py: Python<'_>) -> Result<bool, String> {
    let found = py
        .eval(
            c"(lambda gc, C: (lambda o: (setattr(o, 'heaplens_attr', o), vars(o), o)[1:])(C()))(__import__('gc'), type('_HeaplensProbe', (), {}))",
            None,
            None,
        )
        .and_then(|pair| {
            let dict = pair.get_item(0)?;
            let instance = pair.get_item(1)?;
            let gc = py.import("gc")?;
            let referents = gc.call_method1("get_referents", (dict,))?;
            referents.contains(instance)
        })
        .map_err(|e| format!("cannot probe how instance dicts are traversed: {e}"))?;
    Ok(found)
}

/// Checks the layout against the interpreter's own debug offsets and live objects. Each check
/// names what it found, so a report from an unusual build says which structure differs.
unsafe fn validate<A: Abi>(py: Python<'_>, env: &Env) -> Result<(), String> {
    let l = env.layout;
    let fail = |what: &str| Err(format!("{what} differs"));
    unsafe {
        if !l.debug_checks.is_empty() {
            check_debug_offsets(l)?;
        }
        if (*env.types.object).tp_basicsize != 16 {
            return fail("the object header");
        }
        if (*env.types.type_).tp_basicsize as usize != l.heap_type_size {
            return fail("PyHeapTypeObject's size");
        }
        let interp = ffi::PyInterpreterState_Get() as *const u8;
        let gc = interp.add(l.interp_gc);
        if Layout::has(l.gc_generation0) && env.gc_next_flags == 0 {
            let gen0: *const u8 = read(gc, l.gc_generation0);
            if gen0 != gc.add(l.gc_generations) {
                return fail("the collector's generation lists");
            }
        }
        let tstate = ffi::PyThreadState_Get() as *const u8;
        if read::<*const u8>(tstate, l.tstate_interp) != interp {
            return fail("the thread state");
        }
        let modules: Obj = read(interp, l.interp_modules);
        if modules != ffi::PyImport_GetModuleDict() {
            return fail("sys.modules in the interpreter state");
        }
        // The running thread has Python frames (the import that loads heaplens), and each one
        // runs a code object.
        let mut frame = crate::threads::current_frame(l, tstate);
        let mut python_frames = 0;
        let mut steps = 0;
        while !frame.is_null() && steps < 10_000 {
            if crate::threads::frame_owner(l, frame) == crate::threads::FrameOwner::Thread {
                if crate::threads::frame_code::<A>(env, frame).is_null() {
                    return fail("the interpreter frame's code");
                }
                python_frames += 1;
            }
            frame = read(frame, l.iframe_previous);
            steps += 1;
        }
        if python_frames == 0 {
            return fail("the thread's frame chain");
        }
    }

    // A list, a dict with a str key, an instance with an inline attribute, a non-ASCII str, a
    // big negative int.
    let probe = py
        .eval(
            c"(lambda C: (C, [1, 'x'], {'heaplens_key': 7}, 'h\\u00e9llo\\u20ac', -(2**40)))(type('_HeaplensProbe', (), {}))",
            None,
            None,
        )
        .map_err(|e| format!("cannot build probe objects: {e}"))?;
    let item = |i: usize| probe.get_item(i).map_err(|e| e.to_string());
    let class = item(0)?;
    let instance = class.call0().map_err(|e| e.to_string())?;
    instance
        .setattr("heaplens_attr", 42)
        .map_err(|e| e.to_string())?;
    let list = item(1)?;
    let dict = item(2)?;
    let text = item(3)?;
    let big = item(4)?;
    let seven = dict.get_item("heaplens_key").map_err(|e| e.to_string())?;
    let forty_two = instance
        .getattr("heaplens_attr")
        .map_err(|e| e.to_string())?;
    unsafe {
        let lp = list.as_ptr() as *const u8;
        let items: *const Obj = read(lp, l.list_items);
        let first = list.get_item(0).map_err(|e| e.to_string())?;
        if raw::ob_size(list.as_ptr()) != 2 || *items != first.as_ptr() {
            return fail("the list items");
        }
        if A::refcount(list.as_ptr()).is_none_or(|c| c < 1) {
            return fail("the reference count");
        }
        let mut found = false;
        crate::dicts::for_each_dict_entry(l, dict.as_ptr(), |k, v| {
            if raw::str_eq_ascii(l, k, b"heaplens_key") && v == seven.as_ptr() {
                found = true;
            }
        });
        if !found {
            return fail("the dict entries");
        }
        if !A::managed_dict(l, instance.as_ptr()).is_null() {
            return fail("an instance's managed __dict__");
        }
        let mut found = false;
        crate::dicts::for_each_inline_attribute::<A>(env, instance.as_ptr(), |k, v| {
            if raw::str_eq_ascii(l, k, b"heaplens_attr") && v == forty_two.as_ptr() {
                found = true;
            }
        });
        if !found {
            return fail("the inline instance attributes");
        }
        let mut decoded = String::new();
        if !raw::str_text(l, text.as_ptr(), 100, &mut decoded) || decoded != "h\u{e9}llo\u{20ac}" {
            return fail("the str data");
        }
        if A::long_shape(l, big.as_ptr()) != (true, 2) {
            return fail("the int size");
        }
        let int_dict = A::type_dict(env, env.types.int as Obj);
        if int_dict.is_null() || raw::ob_type(int_dict) != env.types.dict {
            return fail("a static type's dict");
        }
        let mut found = false;
        crate::dicts::for_each_dict_entry(l, int_dict, |k, _| {
            found |= raw::str_eq_ascii(l, k, b"bit_length");
        });
        if !found {
            return fail("a static type's dict entries");
        }
        let func = py
            .eval(c"lambda heaplens_arg: heaplens_arg", None, None)
            .map_err(|e| e.to_string())?;
        let code = field(func.as_ptr() as *const u8, l.func_code);
        if raw::ob_type(code) != env.types.code {
            return fail("the function's code");
        }
        let names = field(code as *const u8, l.code_localsplusnames);
        let first_name = field(names as *const u8, l.tuple_items);
        if !raw::str_eq_ascii(l, first_name, b"heaplens_arg") {
            return fail("the code's local names");
        }
    }
    Ok(())
}

/// Compares the layout with `_PyRuntime.debug_offsets`, the offsets the interpreter publishes
/// for debuggers (3.13+).
unsafe fn check_debug_offsets(l: &Layout) -> Result<(), String> {
    let runtime = symbol(c"_PyRuntime") as *const u8;
    if runtime.is_null() {
        return Err("the interpreter exports no _PyRuntime".into());
    }
    unsafe {
        let offsets = runtime.add(l.runtime_debug_offsets);
        let cookie = std::slice::from_raw_parts(offsets, 8);
        if cookie != b"xdebugpy" {
            return Err("the debug offsets' cookie differs".into());
        }
        for check in l.debug_checks {
            let found: u64 = read(offsets, check.offset);
            if found != check.expected {
                return Err(format!(
                    "_Py_DebugOffsets.{} is {found}, the headers said {}",
                    check.name, check.expected
                ));
            }
        }
    }
    Ok(())
}
