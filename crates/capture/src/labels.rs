//! Edge labels as the walks compute them: the interned names of structural fields, and the
//! labels of dict entries and attributes, read from the key objects themselves.
//!
//! A heap repeats the same few attribute names across millions of instances, so key objects are
//! decoded and interned once each, through a small direct-mapped cache keyed by the key's
//! address (str objects are immutable and alive for the whole walk). Censuses compute no labels.
//!
//! The other common shape is the opposite: one dict of millions of distinct keys (a cache keyed
//! by ids or by request, the commonest leak). A key that only its dict refers to (reference
//! count 1: an int, or a str that is not interned) is met exactly once, so its text is copied
//! (or its value formatted) straight into the graph's unindexed strings: no hash, no probe of
//! a table of millions, no cache slot taken from the attribute names. Interning every such key
//! made a snapshot of a dict 4 to 6 times one of a list of the same objects.

use crate::abi::Abi;
use crate::edges::EdgeSink;
use crate::env::Env;
use crate::raw::{self, read, Obj};
use heaplens_core::label::Label;
use heaplens_core::strings::StringId;
use pyo3::ffi;
use std::fmt::Write;
use std::marker::PhantomData;

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
    type_params = "__type_params__", annotate = "__annotate__",
    co_varnames_cached = "co_varnames", co_cellvars = "co_cellvars", co_freevars = "co_freevars",
    f_extra_locals = "f_extra_locals", f_locals_cache = "f_locals_cache",
    f_overwritten_fast_locals = "f_overwritten_fast_locals",
    current_exception = "current exception", async_exc = "async_exc",
    threading_local_key = "threading local key",
}

/// Slots of the cache of key labels: keys met once pass it by, so it holds the keys that repeat
/// (attribute names, literal keys), a few thousand in the largest heaps. Written whole at the
/// start of every walk, it is part of the snapshot's peak memory.
const KEY_CACHE_SIZE: usize = 4096;

/// The current interpreter's dict of interned strings, or null (3.11 keeps it out of reach).
fn interned_dict(env: &Env) -> Obj {
    let l = env.layout;
    if !crate::layout::Layout::has(l.interp_interned) {
        return std::ptr::null_mut();
    }
    // SAFETY: walks run with the GIL held; the field is a pointer of the interpreter state.
    unsafe {
        let interp = ffi::PyInterpreterState_Get() as *const u8;
        read(interp, l.interp_interned)
    }
}

/// Per-walk label state: interned names, a direct-mapped cache from key objects to their labels
/// (attribute names repeat across millions of instances; each is decoded and interned once), and
/// reusable buffers.
pub struct Cx<A: Abi> {
    pub env: &'static Env,
    abi: PhantomData<A>,
    /// The interpreter's dict of interned strings (3.12+), or null. It holds its strings
    /// without counting references to them, and keeps none of them alive (a mortal interned
    /// string leaves it when it dies): the walk reports none of its entries.
    pub interned: Obj,
    pub names: Names,
    key_cache: Vec<(usize, Label, Label)>,
    scratch: String,
    pub(crate) traverse_buf: Vec<Obj>,
}

impl<A: Abi> Cx<A> {
    /// State for a walk that labels its edges; call [`Cx::intern_names`] before walking.
    pub fn labelled(env: &'static Env) -> Cx<A> {
        Cx {
            env,
            abi: PhantomData,
            interned: interned_dict(env),
            names: Names::default(),
            key_cache: vec![(0, Label::NONE, Label::NONE); KEY_CACHE_SIZE],
            scratch: String::new(),
            traverse_buf: Vec::new(),
        }
    }

    /// Frees the caches of a walk not running (a part of a split walk waiting for its turn,
    /// or to be assembled): no label may be computed until [`Cx::restore_caches`].
    pub(crate) fn release_caches(&mut self) {
        self.key_cache = Vec::new();
        self.traverse_buf = Vec::new();
        self.scratch = String::new();
    }

    /// Makes the caches [`Cx::release_caches`] freed again, for a walk about to begin.
    pub(crate) fn restore_caches(&mut self) {
        if self.key_cache.is_empty() {
            self.key_cache = vec![(0, Label::NONE, Label::NONE); KEY_CACHE_SIZE];
        }
    }

    /// State for a walk that does not label (a census).
    pub fn unlabelled(env: &'static Env) -> Cx<A> {
        Cx {
            env,
            abi: PhantomData,
            interned: interned_dict(env),
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
    pub(crate) fn f(&self, name: StringId) -> Label {
        Label::field(name)
    }

    /// Labels for a dict entry with key `key`: (the value's label, the key's own label).
    #[inline]
    pub(crate) unsafe fn key_labels<S: EdgeSink>(
        &mut self,
        sink: &mut S,
        key: Obj,
    ) -> (Label, Label) {
        if !S::LABELS {
            return (Label::NONE, Label::NONE);
        }
        unsafe { self.cached_key_labels(sink, key) }
    }

    /// [`Cx::key_labels`] for an entry of a dict whose keys are its own (not a split dict,
    /// whose keys its class's instances share): a key with no other reference is met once, and
    /// its text goes to the unindexed strings, past the cache.
    #[inline]
    pub(crate) unsafe fn entry_labels<S: EdgeSink>(
        &mut self,
        sink: &mut S,
        key: Obj,
    ) -> (Label, Label) {
        if !S::LABELS {
            return (Label::NONE, Label::NONE);
        }
        unsafe {
            if A::refcount(key) == Some(1) {
                if let Some(labels) = self.lone_key_labels(sink, key) {
                    return labels;
                }
            }
            self.cached_key_labels(sink, key)
        }
    }

    /// Labels for the key of a dict entry that nothing else refers to, when it is an exact int
    /// or a str that is not interned, with its text unindexed; `None` for another key, or when
    /// the sink keeps no unindexed strings.
    #[inline]
    unsafe fn lone_key_labels<S: EdgeSink>(
        &mut self,
        sink: &mut S,
        key: Obj,
    ) -> Option<(Label, Label)> {
        let l = self.env.layout;
        unsafe {
            let tp = raw::ob_type(key);
            if tp == self.env.types.int {
                let v = raw::small_int::<A>(l, key)?;
                let id = sink.add_unindexed(|out| {
                    heaplens_core::label::push_int(out, v);
                    true
                })?;
                return Some((Label::key_repr(id), Label::dict_key(id)));
            }
            if raw::has_flag(tp, ffi::Py_TPFLAGS_UNICODE_SUBCLASS)
                && !raw::str_state(l, key).interned
            {
                let id = sink.add_unindexed(|out| raw::str_text(l, key, 120, out))?;
                return Some((Label::key(id), Label::dict_key_str(id)));
            }
            None
        }
    }

    #[inline]
    unsafe fn cached_key_labels<S: EdgeSink>(&mut self, sink: &mut S, key: Obj) -> (Label, Label) {
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
            short_form::<A>(self.env, key, &mut self.scratch);
        }
        let id = sink.intern(&self.scratch);
        (Label::key_repr(id), Label::dict_key(id))
    }

    /// The attribute label for an instance attribute named by the str `key`.
    #[inline]
    pub(crate) unsafe fn attr_label<S: EdgeSink>(&mut self, sink: &mut S, key: Obj) -> Label {
        if !S::LABELS {
            return Label::NONE;
        }
        let (value_label, _) = unsafe { self.key_labels(sink, key) };
        match value_label.name() {
            Some(id) if value_label.kind() == heaplens_core::label::LabelKind::Key => {
                Label::attr(id)
            }
            _ => value_label,
        }
    }
}

unsafe fn short_form<A: Abi>(env: &Env, o: Obj, out: &mut String) {
    let l = env.layout;
    unsafe {
        let tp = raw::ob_type(o);
        // Exact ints first, without reading the type's name: after str they are the commonest
        // keys (ids, counters), and a dict of millions of them is the commonest leak.
        if tp == env.types.int {
            match raw::small_int::<A>(l, o) {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("<int>"),
            }
            return;
        }
        let tp_name = raw::c_str((*tp).tp_name);
        if o == ffi::Py_None() {
            out.push_str("None");
        } else if tp_name == "bool" {
            out.push_str(if raw::small_int::<A>(l, o) == Some(1) {
                "True"
            } else {
                "False"
            });
        } else if raw::has_flag(tp, ffi::Py_TPFLAGS_LONG_SUBCLASS) {
            match raw::small_int::<A>(l, o) {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("<int>"),
            }
        } else if tp_name == "float" {
            let v: f64 = read(o as *const u8, l.float_value);
            let _ = write!(out, "{v:?}");
        } else if raw::has_flag(tp, ffi::Py_TPFLAGS_BYTES_SUBCLASS) {
            let n = raw::ob_size(o).max(0) as usize;
            let data = (o as *const u8).add(l.bytes_data);
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
                    match raw::small_int::<A>(l, item) {
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
