//! The references of one object, each with a label saying how it refers.
//!
//! For the builtins heaplens has layouts for, references are read field by field (so a function's
//! defaults are labelled `.__defaults__` and a dict value `['key']`); for everything else the
//! type's own `tp_traverse` reports them and labels come from matching member slots. Either way
//! the result is the set of references the garbage collector sees, plus the references it does not
//! need but a leak hunter does: dict keys (3.11's dict traversal skips str keys), the names and
//! code of functions and generators, and the str and code objects held by code and types.
//!
//! Nothing here allocates a Python object or runs Python code. Labels are only computed when the
//! sink asks for them ([`EdgeSink::LABELS`]); a census walk skips the string interning entirely.

use super::env::Env;
use super::layout::{
    Layout, FRAME_CLEARED, FRAME_OWNED_BY_FRAME_OBJECT, DICT_KEYS_GENERAL,
};
use super::raw::{self, field, read, read_signed, Obj};
use super::registry::{TypeEntry, Walker};
use heaplens_core::label::Label;
use heaplens_core::strings::StringId;
use pyo3::ffi;
use std::ffi::{c_int, c_void};
use std::fmt::Write;

/// Where enumerated references go.
pub trait EdgeSink {
    /// Whether the sink wants labels. Censuses do not, and skip all label work.
    const LABELS: bool;
    /// A strong reference (it is counted against the target's reference count).
    fn edge(&mut self, target: Obj, label: Label);
    /// A link that is real for paths but holds no reference count (a thread stack running a
    /// generator's frame).
    fn edge_uncounted(&mut self, target: Obj, label: Label);
    /// Interns a label string.
    fn intern(&mut self, text: &str) -> StringId;
}

macro_rules! field_names {
    ($($field:ident = $text:expr),* $(,)?) => {
        /// Interned names of the structural fields the walkers label edges with.
        #[derive(Debug, Default)]
        pub struct Names { $(pub $field: StringId),* }
        impl Names {
            pub fn intern<S: EdgeSink>(sink: &mut S) -> Names {
                Names { $($field: sink.intern($text)),* }
            }
        }
    };
}

field_names! {
    dict = "__dict__", class = "__class__", globals = "__globals__", builtins = "__builtins__",
    name = "__name__", qualname = "__qualname__", code = "__code__", defaults = "__defaults__",
    kwdefaults = "__kwdefaults__", closure = "__closure__", doc = "__doc__", module = "__module__",
    annotations = "__annotations__", self_ = "__self__", func = "__func__",
    cell_contents = "cell_contents", mro = "__mro__", bases = "__bases__", base = "__base__",
    tp_cache = "tp_cache", subclasses = "__subclasses__", slots = "__slots__",
    ht_module = "ht_module", f_back = "f_back", f_trace = "f_trace", f_locals = "f_locals",
    f_func = "f_func", f_code = "f_code", frame_object = "frame_object", gi_code = "gi_code",
    exc_value = "exc_value", origin = "gi_origin_or_finalizer", callback = "__callback__",
    args = "args", notes = "__notes__", traceback = "__traceback__", context = "__context__",
    cause = "__cause__", tb_next = "tb_next", tb_frame = "tb_frame",
    default_factory = "default_factory", co_consts = "co_consts", co_names = "co_names",
    co_exceptiontable = "co_exceptiontable", co_varnames = "co_localsplusnames",
    co_localspluskinds = "co_localspluskinds", co_filename = "co_filename", co_name = "co_name",
    co_qualname = "co_qualname", co_linetable = "co_linetable", co_code = "co_code",
    generator = "generator", thread_dict = "thread dict", curexc_type = "curexc_type",
    curexc_value = "curexc_value", curexc_traceback = "curexc_traceback",
    handled_exception = "handled exception", thread_context = "context",
    async_gen_firstiter = "async_gen_firstiter", async_gen_finalizer = "async_gen_finalizer",
    profile = "profile function", trace = "trace function", module_state = "module state",
}

const KEY_CACHE_SIZE: usize = 8192;

/// Per-walk label state: interned names, a direct-mapped cache from key objects to their labels
/// (attribute names repeat across millions of instances; each is decoded and interned once), and
/// reusable buffers.
pub struct Cx {
    pub env: &'static Env,
    pub names: Names,
    key_cache: Vec<(usize, Label, Label)>,
    scratch: String,
    traverse_buf: Vec<Obj>,
}

impl Cx {
    /// State for a walk that labels its edges; call [`Cx::intern_names`] before walking.
    pub fn labelled(env: &'static Env) -> Cx {
        Cx {
            env,
            names: Names::default(),
            key_cache: vec![(0, Label::NONE, Label::NONE); KEY_CACHE_SIZE],
            scratch: String::new(),
            traverse_buf: Vec::new(),
        }
    }

    /// State for a walk that does not label (a census).
    pub fn unlabelled(env: &'static Env) -> Cx {
        Cx {
            env,
            names: Names::default(),
            key_cache: Vec::new(),
            scratch: String::new(),
            traverse_buf: Vec::new(),
        }
    }

    /// Interns the structural field names in the sink's string table.
    pub fn intern_names<S: EdgeSink>(&mut self, sink: &mut S) {
        self.names = Names::intern(sink);
    }

    #[inline]
    fn f(&self, name: StringId) -> Label {
        Label::field(name)
    }

    /// Labels for a dict entry with key `key`: (the value's label, the key's own label).
    #[inline]
    unsafe fn key_labels<S: EdgeSink>(&mut self, sink: &mut S, key: Obj) -> (Label, Label) {
        if !S::LABELS {
            return (Label::NONE, Label::NONE);
        }
        let slot = ((key as usize) >> 4) & (KEY_CACHE_SIZE - 1);
        let cached = self.key_cache[slot];
        if cached.0 == key as usize {
            return (cached.1, cached.2);
        }
        let labels = unsafe { self.compute_key_labels(sink, key) };
        self.key_cache[slot] = (key as usize, labels.0, labels.1);
        labels
    }

    unsafe fn compute_key_labels<S: EdgeSink>(&mut self, sink: &mut S, key: Obj) -> (Label, Label) {
        let l = self.env.layout;
        self.scratch.clear();
        unsafe {
            let tp = raw::ob_type(key);
            if raw::has_flag(tp, ffi::Py_TPFLAGS_UNICODE_SUBCLASS)
                && raw::str_text(l, key, 120, &mut self.scratch)
            {
                let id = sink.intern(&self.scratch);
                return (Label::key(id), Label::dict_key_str(id));
            }
            short_form(self.env, key, &mut self.scratch);
        }
        let id = sink.intern(&self.scratch);
        (Label::key_repr(id), Label::dict_key(id))
    }

    /// The attribute label for an instance attribute named by the str `key`.
    #[inline]
    unsafe fn attr_label<S: EdgeSink>(&mut self, sink: &mut S, key: Obj) -> Label {
        if !S::LABELS {
            return Label::NONE;
        }
        let (value_label, _) = unsafe { self.key_labels(sink, key) };
        match value_label.name() {
            Some(id) if value_label.kind() == heaplens_core::label::LabelKind::Key => Label::attr(id),
            _ => value_label,
        }
    }
}

/// A short, bounded rendering of a non-str dict key: `42`, `None`, `b'ab'`, `(1, 'x')`, `<Point>`.
unsafe fn short_form(env: &Env, o: Obj, out: &mut String) {
    let l = env.layout;
    unsafe {
        let tp = raw::ob_type(o);
        let tp_name = raw::c_str((*tp).tp_name);
        if o == ffi::Py_None() {
            out.push_str("None");
        } else if tp_name == "bool" {
            out.push_str(if raw::small_int(l, o) == Some(1) { "True" } else { "False" });
        } else if raw::has_flag(tp, ffi::Py_TPFLAGS_LONG_SUBCLASS) {
            match raw::small_int(l, o) {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("<int>"),
            }
        } else if tp_name == "float" {
            let v: f64 = read(o as *const u8, 16);
            let _ = write!(out, "{v:?}");
        } else if raw::has_flag(tp, ffi::Py_TPFLAGS_BYTES_SUBCLASS) {
            let n = raw::ob_size(o).max(0) as usize;
            let data = (o as *const u8).add(32);
            out.push_str("b'");
            for &b in std::slice::from_raw_parts(data, n.min(40)) {
                if b.is_ascii_graphic() && b != b'\'' && b != b'\\' || b == b' ' {
                    out.push(b as char);
                } else {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            out.push_str(if n > 40 { "…'" } else { "'" });
        } else if raw::has_flag(tp, ffi::Py_TPFLAGS_TUPLE_SUBCLASS) {
            let n = raw::ob_size(o).max(0) as usize;
            let items = (o as *const u8).add(l.tuple_items) as *const Obj;
            out.push('(');
            for i in 0..n.min(4) {
                if i > 0 {
                    out.push_str(", ");
                }
                let item = *items.add(i);
                let it = raw::ob_type(item);
                if raw::has_flag(it, ffi::Py_TPFLAGS_UNICODE_SUBCLASS) {
                    let mut s = String::new();
                    raw::str_text(l, item, 30, &mut s);
                    out.push_str(&heaplens_core::label::quote(&s));
                } else if raw::has_flag(it, ffi::Py_TPFLAGS_LONG_SUBCLASS) {
                    match raw::small_int(l, item) {
                        Some(v) => {
                            let _ = write!(out, "{v}");
                        }
                        None => out.push_str("<int>"),
                    }
                } else {
                    let _ = write!(out, "<{}>", raw::c_str((*it).tp_name));
                }
            }
            if n > 4 {
                out.push_str(", …");
            } else if n == 1 {
                out.push(',');
            }
            out.push(')');
        } else {
            let _ = write!(out, "<{tp_name}>");
        }
    }
}

/// Calls `f(key, value)` for each entry of the dict `d`: combined tables (general or str keys)
/// and split tables (keys shared with the class, values in the dict).
///
/// # Safety
/// `d` must be a live dict (or dict subclass) and the GIL held.
pub unsafe fn for_each_dict_entry(l: &Layout, d: Obj, mut f: impl FnMut(Obj, Obj)) {
    unsafe {
        let db = d as *const u8;
        let keys: *const u8 = read(db, l.dict_keys);
        if keys.is_null() {
            return;
        }
        let values: *const Obj = read(db, l.dict_values);
        let n: isize = read(keys, l.dk_nentries);
        let kind: u8 = read(keys, l.dk_kind);
        let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
        let entries = keys.add(l.dk_indices + (1usize << log2_index_bytes));
        if kind == DICT_KEYS_GENERAL {
            for i in 0..n.max(0) as usize {
                let e = entries.add(i * l.dk_general_entry_size);
                let k: Obj = read(e, 8);
                let v: Obj = read(e, 16);
                if !k.is_null() && !v.is_null() {
                    f(k, v);
                }
            }
        } else {
            for i in 0..n.max(0) as usize {
                let e = entries.add(i * l.dk_unicode_entry_size);
                let k: Obj = read(e, 0);
                let v: Obj = if values.is_null() { read(e, 8) } else { *values.add(i) };
                if !k.is_null() && !v.is_null() {
                    f(k, v);
                }
            }
        }
    }
}

/// Whether a dict keeps its keys in a table shared with its class (a split table): the keys are
/// then held by the class, not by the dict.
unsafe fn dict_is_split(l: &Layout, d: Obj) -> bool {
    unsafe { !read::<*const u8>(d as *const u8, l.dict_values).is_null() }
}

/// Calls `f(name, value)` for each attribute an instance keeps inline (a managed dict that was
/// never materialised: no `__dict__` object exists, and heaplens does not create one).
///
/// # Safety
/// `o` must be a live instance of a class with `Py_TPFLAGS_MANAGED_DICT`, GIL held.
pub unsafe fn for_each_inline_attribute(l: &Layout, o: Obj, mut f: impl FnMut(Obj, Obj)) {
    unsafe {
        let values: *const Obj = read_signed(o as *const u8, l.managed_values);
        if values.is_null() {
            return;
        }
        let keys: *const u8 = read(raw::ob_type(o) as *const u8, l.ht_cached_keys);
        if keys.is_null() {
            return;
        }
        let n: isize = read(keys, l.dk_nentries);
        let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
        let entries = keys.add(l.dk_indices + (1usize << log2_index_bytes));
        for i in 0..n.max(0) as usize {
            let v = *values.add(i);
            if !v.is_null() {
                let k: Obj = read(entries.add(i * l.dk_unicode_entry_size), 0);
                if !k.is_null() {
                    f(k, v);
                }
            }
        }
    }
}

/// `_PyObject_DictPointer` for a given `tp_dictoffset`.
unsafe fn dict_slot(o: Obj, dictoffset: isize) -> *const Obj {
    unsafe {
        if dictoffset == 0 {
            return std::ptr::null();
        }
        let mut off = dictoffset;
        if off < 0 {
            let tp = raw::ob_type(o);
            let n = raw::ob_size(o).unsigned_abs() as isize;
            let size = ((*tp).tp_basicsize + n * (*tp).tp_itemsize + 7) & !7;
            off += size;
        }
        (o as *const u8).offset(off) as *const Obj
    }
}

/// The object's `__dict__`, if it has one materialised.
unsafe fn instance_dict(l: &Layout, o: Obj) -> Obj {
    unsafe {
        let tp = raw::ob_type(o);
        if raw::has_flag(tp, raw::MANAGED_DICT) {
            return read_signed(o as *const u8, l.managed_dict);
        }
        let slot = dict_slot(o, (*tp).tp_dictoffset);
        if slot.is_null() {
            std::ptr::null_mut()
        } else {
            *slot
        }
    }
}

#[inline(always)]
fn nonnull<S: EdgeSink>(sink: &mut S, target: Obj, label: Label) {
    if !target.is_null() {
        sink.edge(target, label);
    }
}

/// Enumerates the references of `o`, whose type entry is `t`.
///
/// # Safety
/// `o` must be a live object of the type `t` describes; the GIL must be held.
pub unsafe fn object_edges<S: EdgeSink>(cx: &mut Cx, o: Obj, t: &TypeEntry, sink: &mut S) {
    let l = cx.env.layout;
    let ob = o as *const u8;
    unsafe {
        if t.walker == Walker::Traverse {
            traverse_edges(cx, o, t, sink);
            return;
        }
        if t.class_edge {
            sink.edge(raw::ob_type(o) as Obj, cx.f(cx.names.class));
        }
        for slot in &t.slots {
            nonnull(sink, field(ob, slot.offset), Label::attr(slot.name));
        }
        if t.managed_dict {
            nonnull(sink, read_signed(ob, l.managed_dict), cx.f(cx.names.dict));
            for_each_inline_attribute(l, o, |k, v| {
                let label = cx.attr_label(sink, k);
                sink.edge(v, label);
            });
        } else if t.dict_offset != 0 {
            let slot = dict_slot(o, t.dict_offset);
            if !slot.is_null() {
                nonnull(sink, *slot, cx.f(cx.names.dict));
            }
        }
        let n = &cx.names;
        match t.walker {
            Walker::Nothing | Walker::Traverse => {}
            Walker::Dict => dict_edges(cx, o, sink),
            Walker::DefaultDict => {
                nonnull(sink, field(ob, l.defaultdict_factory), Label::field(n.default_factory));
                dict_edges(cx, o, sink);
            }
            Walker::OrderedDict => {
                nonnull(sink, field(ob, l.odict_inst_dict), Label::field(n.dict));
                // The linked list holds its own reference to every key.
                let used: isize = read(ob, 16);
                let mut node: *const u8 = read(ob, l.odict_first);
                let mut guard = 0isize;
                while !node.is_null() && guard <= used {
                    let key = field(node, l.odict_node_key);
                    if !key.is_null() {
                        let (_, key_label) = cx.key_labels(sink, key);
                        sink.edge(key, key_label);
                    }
                    node = read(node, l.odict_node_next);
                    guard += 1;
                }
                dict_edges(cx, o, sink);
            }
            Walker::List => {
                let items: *const Obj = read(ob, l.list_items);
                if !items.is_null() {
                    for i in 0..raw::ob_size(o).max(0) as usize {
                        nonnull(sink, *items.add(i), Label::index(i));
                    }
                }
            }
            Walker::Tuple => {
                let items = ob.add(l.tuple_items) as *const Obj;
                for i in 0..raw::ob_size(o).max(0) as usize {
                    nonnull(sink, *items.add(i), Label::index(i));
                }
            }
            Walker::Set => {
                let mask: isize = read(ob, l.set_mask);
                let table: *const u8 = read(ob, l.set_table);
                let dummy = cx.env.set_dummy;
                if !table.is_null() {
                    for i in 0..=mask.max(0) as usize {
                        let key: Obj = read(table, i * l.set_entry_size);
                        if !key.is_null() && key != dummy {
                            sink.edge(key, Label::member());
                        }
                    }
                }
            }
            Walker::Function => {
                for (off, name) in [
                    (l.func_code, n.code),
                    (l.func_globals, n.globals),
                    (l.func_builtins, n.builtins),
                    (l.func_module, n.module),
                    (l.func_defaults, n.defaults),
                    (l.func_kwdefaults, n.kwdefaults),
                    (l.func_doc, n.doc),
                    (l.func_name, n.name),
                    (l.func_dict, n.dict),
                    (l.func_closure, n.closure),
                    (l.func_annotations, n.annotations),
                    (l.func_qualname, n.qualname),
                ] {
                    nonnull(sink, field(ob, off), Label::field(name));
                }
            }
            Walker::Code => {
                for (off, name) in [
                    (l.code_consts, n.co_consts),
                    (l.code_names, n.co_names),
                    (l.code_exceptiontable, n.co_exceptiontable),
                    (l.code_localsplusnames, n.co_varnames),
                    (l.code_localspluskinds, n.co_localspluskinds),
                    (l.code_filename, n.co_filename),
                    (l.code_name, n.co_name),
                    (l.code_qualname, n.co_qualname),
                    (l.code_linetable, n.co_linetable),
                    (l.code_co_code, n.co_code),
                ] {
                    nonnull(sink, field(ob, off), Label::field(name));
                }
            }
            Walker::Cell => nonnull(sink, field(ob, l.cell_ref), Label::field(n.cell_contents)),
            Walker::Method => {
                nonnull(sink, field(ob, l.method_func), Label::field(n.func));
                nonnull(sink, field(ob, l.method_self), Label::field(n.self_));
            }
            Walker::Module => {
                nonnull(sink, field(ob, l.module_dict), Label::field(n.dict));
                nonnull(sink, field(ob, l.module_name), Label::field(n.name));
                let def = read::<*const ffi::PyModuleDef>(ob, l.module_def);
                if !def.is_null() {
                    if let Some(trav) = (*def).m_traverse {
                        let state: *const c_void = read(ob, l.module_state);
                        if (*def).m_size <= 0 || !state.is_null() {
                            let label = Label::field(n.module_state);
                            collect_with(cx, sink, |buf| {
                                trav(o, collect_visit, buf as *mut Vec<Obj> as *mut c_void);
                            }, |_, _, _| label);
                        }
                    }
                }
            }
            Walker::Type => type_edges(cx, o, sink),
            Walker::Frame => {
                nonnull(sink, field(ob, l.frame_back), Label::field(n.f_back));
                nonnull(sink, field(ob, l.frame_trace), Label::field(n.f_trace));
                let iframe: *const u8 = read(ob, l.frame_frame);
                if !iframe.is_null() && read::<u8>(iframe, l.iframe_owner) == FRAME_OWNED_BY_FRAME_OBJECT {
                    interpreter_frame_edges(cx, iframe, sink);
                }
            }
            Walker::Generator => {
                nonnull(sink, field(ob, l.gen_code), Label::field(n.gi_code));
                nonnull(sink, field(ob, l.gen_name), Label::field(n.name));
                nonnull(sink, field(ob, l.gen_qualname), Label::field(n.qualname));
                nonnull(sink, field(ob, l.gen_exc_value), Label::field(n.exc_value));
                // Only coroutines (their origin) and async generators (their finalizer)
                // initialise this field; a plain generator leaves it as uninitialised memory.
                let tp = raw::ob_type(o);
                if tp == cx.env.types.coroutine || tp == cx.env.types.async_generator {
                    nonnull(sink, field(ob, l.gen_origin_or_finalizer), Label::field(n.origin));
                }
                if read::<i8>(ob, l.gen_frame_state) < FRAME_CLEARED {
                    interpreter_frame_edges(cx, ob.add(l.gen_iframe), sink);
                }
            }
            Walker::WeakRef => {
                let referent = field(ob, l.weakref_object);
                if !referent.is_null() && referent != ffi::Py_None() {
                    sink.edge(referent, Label::referent());
                }
                nonnull(sink, field(ob, l.weakref_callback), Label::field(n.callback));
            }
            Walker::Exception => exception_edges(cx, o, sink),
            Walker::Traceback => {
                nonnull(sink, field(ob, l.tb_next), Label::field(n.tb_next));
                nonnull(sink, field(ob, l.tb_frame), Label::field(n.tb_frame));
            }
        }
    }
}

unsafe fn dict_edges<S: EdgeSink>(cx: &mut Cx, d: Obj, sink: &mut S) {
    let l = cx.env.layout;
    unsafe {
        let split = dict_is_split(l, d);
        for_each_dict_entry(l, d, |k, v| {
            let (value_label, key_label) = cx.key_labels(sink, k);
            if !split {
                sink.edge(k, key_label);
            }
            sink.edge(v, value_label);
        });
    }
}

unsafe fn exception_edges<S: EdgeSink>(cx: &mut Cx, o: Obj, sink: &mut S) {
    let l = cx.env.layout;
    let n = &cx.names;
    let ob = o as *const u8;
    unsafe {
        for (off, name) in [
            (l.exc_dict, n.dict),
            (l.exc_args, n.args),
            (l.exc_notes, n.notes),
            (l.exc_traceback, n.traceback),
            (l.exc_context, n.context),
            (l.exc_cause, n.cause),
        ] {
            nonnull(sink, field(ob, off), Label::field(name));
        }
    }
}

unsafe fn type_edges<S: EdgeSink>(cx: &mut Cx, o: Obj, sink: &mut S) {
    let l = cx.env.layout;
    let n = &cx.names;
    let t = o as *const ffi::PyTypeObject;
    let ob = o as *const u8;
    unsafe {
        nonnull(sink, (*t).tp_dict, Label::field(n.dict));
        nonnull(sink, (*t).tp_mro, Label::field(n.mro));
        nonnull(sink, (*t).tp_bases, Label::field(n.bases));
        nonnull(sink, (*t).tp_base as Obj, Label::field(n.base));
        nonnull(sink, (*t).tp_cache, Label::field(n.tp_cache));
        nonnull(sink, (*t).tp_subclasses as Obj, Label::field(n.subclasses));
        if raw::has_flag(t as raw::Type, ffi::Py_TPFLAGS_HEAPTYPE) {
            nonnull(sink, field(ob, l.ht_name), Label::field(n.name));
            nonnull(sink, field(ob, l.ht_qualname), Label::field(n.qualname));
            nonnull(sink, field(ob, l.ht_slots), Label::field(n.slots));
            nonnull(sink, field(ob, l.ht_module), Label::field(n.ht_module));
            // The attribute names shared by the instances' inline values.
            let keys: *const u8 = read(ob, l.ht_cached_keys);
            if !keys.is_null() {
                let count: isize = read(keys, l.dk_nentries);
                let log2_index_bytes: u8 = read(keys, l.dk_log2_index_bytes);
                let entries = keys.add(l.dk_indices + (1usize << log2_index_bytes));
                for i in 0..count.max(0) as usize {
                    let k: Obj = read(entries.add(i * l.dk_unicode_entry_size), 0);
                    if !k.is_null() {
                        let (_, key_label) = cx.key_labels(sink, k);
                        sink.edge(k, key_label);
                    }
                }
            }
        }
    }
}

/// The references held by an interpreter frame (`_PyInterpreterFrame`): its function, code,
/// locals dict and frame object, every local by name, and the live part of its value stack.
///
/// # Safety
/// `iframe` must point at a valid interpreter frame (owned by a live generator, frame object or
/// thread) and the GIL must be held.
pub unsafe fn interpreter_frame_edges<S: EdgeSink>(cx: &mut Cx, iframe: *const u8, sink: &mut S) {
    let l = cx.env.layout;
    unsafe {
        let n = &cx.names;
        nonnull(sink, field(iframe, l.iframe_func), Label::field(n.f_func));
        nonnull(sink, field(iframe, l.iframe_code), Label::field(n.f_code));
        nonnull(sink, field(iframe, l.iframe_locals), Label::field(n.f_locals));
        nonnull(sink, field(iframe, l.iframe_frame_obj), Label::field(n.frame_object));
        let code = field(iframe, l.iframe_code) as *const u8;
        if code.is_null() {
            return;
        }
        let nlocalsplus = read::<i32>(code, l.code_nlocalsplus).max(0) as usize;
        let stacksize = read::<i32>(code, l.code_stacksize).max(0) as usize;
        let stacktop: i32 = read(iframe, l.iframe_stacktop);
        // A frame that is executing has stacktop == -1: only its locals are valid.
        let valid = if stacktop < 0 {
            nlocalsplus
        } else {
            (stacktop as usize).min(nlocalsplus + stacksize)
        };
        let names = field(code, l.code_localsplusnames) as *const u8;
        let locals = iframe.add(l.iframe_localsplus) as *const Obj;
        for i in 0..valid {
            let v = *locals.add(i);
            if v.is_null() {
                continue;
            }
            let label = if i >= nlocalsplus {
                Label::stack()
            } else if S::LABELS && !names.is_null() {
                let name = *(names.add(l.tuple_items) as *const Obj).add(i);
                let (value_label, _) = cx.key_labels(sink, name);
                value_label.name().map_or(Label::NONE, Label::local)
            } else {
                Label::NONE
            };
            sink.edge(v, label);
        }
    }
}

/// The visit callback handed to `tp_traverse`: collects each referent into the `Vec` at `arg`.
pub extern "C" fn collect_visit(o: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
    if !o.is_null() {
        // SAFETY: `arg` is the `Vec<Obj>` that `collect_with` passed in, alive for the call.
        let buf = unsafe { &mut *(arg as *mut Vec<Obj>) };
        buf.push(o);
    }
    0
}

/// Runs `fill` to collect referents into a reusable buffer, then emits each with `label(cx, p)`.
unsafe fn collect_with<S: EdgeSink>(
    cx: &mut Cx,
    sink: &mut S,
    fill: impl FnOnce(&mut Vec<Obj>),
    mut label: impl FnMut(&mut Cx, &mut S, Obj) -> Label,
) {
    let mut buf = std::mem::take(&mut cx.traverse_buf);
    buf.clear();
    fill(&mut buf);
    for &p in &buf {
        let l = if S::LABELS { label(cx, sink, p) } else { Label::NONE };
        sink.edge(p, l);
    }
    buf.clear();
    cx.traverse_buf = buf;
}

/// References of an object whose layout heaplens does not know, from its own `tp_traverse`.
unsafe fn traverse_edges<S: EdgeSink>(cx: &mut Cx, o: Obj, t: &TypeEntry, sink: &mut S) {
    unsafe {
        let tp = raw::ob_type(o);
        let Some(trav) = (*tp).tp_traverse else { return };
        // Only GC objects may be traversed (type_traverse aborts on a static type).
        if !raw::is_gc(o) {
            return;
        }
        let l = cx.env.layout;
        let mut sink_labels = LabelMatcher::new(l, o, t);
        collect_with(
            cx,
            sink,
            |buf| {
                trav(o, collect_visit, buf as *mut Vec<Obj> as *mut c_void);
            },
            |cx, sink, p| sink_labels.label(cx, sink, p),
        );
    }
}

/// Labels the referents of an object reported by `tp_traverse`, by matching them against the
/// places the object is known to keep references: its class, slots, `__dict__`, inline
/// attributes, C members and (for exceptions) the BaseException fields.
struct LabelMatcher<'t> {
    l: &'static Layout,
    o: Obj,
    t: &'t TypeEntry,
    dict: Option<Obj>,
}

impl<'t> LabelMatcher<'t> {
    fn new(l: &'static Layout, o: Obj, t: &'t TypeEntry) -> Self {
        LabelMatcher { l, o, t, dict: None }
    }

    unsafe fn label<S: EdgeSink>(&mut self, cx: &mut Cx, sink: &mut S, p: Obj) -> Label {
        let (l, o, t) = (self.l, self.o, self.t);
        let ob = o as *const u8;
        unsafe {
            if t.heap && p == raw::ob_type(o) as Obj {
                return Label::field(cx.names.class);
            }
            for slot in &t.slots {
                if field(ob, slot.offset) == p {
                    return Label::attr(slot.name);
                }
            }
            let dict = *self.dict.get_or_insert_with(|| instance_dict(l, o));
            if !dict.is_null() && dict == p {
                return Label::field(cx.names.dict);
            }
            if t.managed_dict {
                let mut found = None;
                for_each_inline_attribute(l, o, |k, v| {
                    if found.is_none() && v == p {
                        found = Some(k);
                    }
                });
                if let Some(k) = found {
                    return cx.attr_label(sink, k);
                }
            }
            for m in &t.members {
                if field(ob, m.offset) == p {
                    return Label::field(m.name);
                }
            }
            if t.is_exception {
                let n = &cx.names;
                for (off, name) in [
                    (l.exc_dict, n.dict),
                    (l.exc_args, n.args),
                    (l.exc_notes, n.notes),
                    (l.exc_traceback, n.traceback),
                    (l.exc_context, n.context),
                    (l.exc_cause, n.cause),
                ] {
                    if field(ob, off) == p {
                        return Label::field(name);
                    }
                }
            }
        }
        Label::NONE
    }
}

/// The references a thread state holds: its thread-local dict, pending and handled exceptions,
/// context, async-generator hooks and profile/trace functions.
///
/// # Safety
/// `tstate` must be a live thread state of this interpreter, GIL held.
pub unsafe fn thread_state_edges<S: EdgeSink>(cx: &mut Cx, tstate: *const u8, sink: &mut S) {
    let l = cx.env.layout;
    let n = &cx.names;
    unsafe {
        for (off, name) in [
            (l.tstate_dict, n.thread_dict),
            (l.tstate_curexc_type, n.curexc_type),
            (l.tstate_curexc_value, n.curexc_value),
            (l.tstate_curexc_traceback, n.curexc_traceback),
            (l.tstate_exc_state, n.handled_exception),
            (l.tstate_context, n.thread_context),
            (l.tstate_async_gen_firstiter, n.async_gen_firstiter),
            (l.tstate_async_gen_finalizer, n.async_gen_finalizer),
            (l.tstate_c_profileobj, n.profile),
            (l.tstate_c_traceobj, n.trace),
        ] {
            nonnull(sink, field(tstate, off), Label::field(name));
        }
    }
}
