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

use super::dicts::{
    dict_is_split, dict_slot, for_each_dict_entry, for_each_inline_attribute, instance_dict,
};
use super::labels::Cx;
use super::layout::{Layout, FRAME_CLEARED, FRAME_OWNED_BY_FRAME_OBJECT};
use super::raw::{self, field, read, read_signed, Obj};
use super::registry::{TypeEntry, Walker};
use heaplens_core::label::Label;
use heaplens_core::strings::StringId;
use pyo3::ffi;
use std::ffi::{c_int, c_void};
/// Sinks resolve the references they are handed in batches of this many, prefetching each batch
/// before reading it.
pub const BATCH: usize = 256;

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

#[inline(always)]
fn nonnull<S: EdgeSink>(sink: &mut S, target: Obj, label: Label) {
    if !target.is_null() {
        sink.edge(target, label);
    }
}

/// Edges to the object-pointer fields at `fields` (offset, name) of the object at `ob`.
#[inline(always)]
unsafe fn field_edges<S: EdgeSink>(sink: &mut S, ob: *const u8, fields: &[(usize, StringId)]) {
    for &(off, name) in fields {
        // SAFETY: the caller names fields of the live object's layout.
        nonnull(sink, unsafe { field(ob, off) }, Label::field(name));
    }
}

/// The `PyBaseExceptionObject` fields, by name.
pub(super) fn exception_fields(l: &Layout, n: &super::labels::Names) -> [(usize, StringId); 6] {
    [
        (l.exc_dict, n.dict),
        (l.exc_args, n.args),
        (l.exc_notes, n.notes),
        (l.exc_traceback, n.traceback),
        (l.exc_context, n.context),
        (l.exc_cause, n.cause),
    ]
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
                nonnull(
                    sink,
                    field(ob, l.defaultdict_factory),
                    Label::field(n.default_factory),
                );
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
            Walker::Function => field_edges(
                sink,
                ob,
                &[
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
                ],
            ),
            Walker::Code => field_edges(
                sink,
                ob,
                &[
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
                ],
            ),
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
                            collect_with(
                                cx,
                                sink,
                                |buf| {
                                    trav(o, collect_visit, buf as *mut Vec<Obj> as *mut c_void);
                                },
                                |_, _, _| label,
                            );
                        }
                    }
                }
            }
            Walker::Type => type_edges(cx, o, sink),
            Walker::Frame => {
                nonnull(sink, field(ob, l.frame_back), Label::field(n.f_back));
                nonnull(sink, field(ob, l.frame_trace), Label::field(n.f_trace));
                let iframe: *const u8 = read(ob, l.frame_frame);
                if !iframe.is_null()
                    && read::<u8>(iframe, l.iframe_owner) == FRAME_OWNED_BY_FRAME_OBJECT
                {
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
                    nonnull(
                        sink,
                        field(ob, l.gen_origin_or_finalizer),
                        Label::field(n.origin),
                    );
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
                nonnull(
                    sink,
                    field(ob, l.weakref_callback),
                    Label::field(n.callback),
                );
            }
            Walker::Exception => field_edges(sink, ob, &exception_fields(l, n)),
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
        nonnull(
            sink,
            field(iframe, l.iframe_locals),
            Label::field(n.f_locals),
        );
        nonnull(
            sink,
            field(iframe, l.iframe_frame_obj),
            Label::field(n.frame_object),
        );
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
        let l = if S::LABELS {
            label(cx, sink, p)
        } else {
            Label::NONE
        };
        sink.edge(p, l);
    }
    buf.clear();
    cx.traverse_buf = buf;
}

/// References of an object whose layout heaplens does not know, from its own `tp_traverse`.
unsafe fn traverse_edges<S: EdgeSink>(cx: &mut Cx, o: Obj, t: &TypeEntry, sink: &mut S) {
    unsafe {
        let tp = raw::ob_type(o);
        let Some(trav) = (*tp).tp_traverse else {
            return;
        };
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
        LabelMatcher {
            l,
            o,
            t,
            dict: None,
        }
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
                for (off, name) in exception_fields(l, &cx.names) {
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
        field_edges(
            sink,
            tstate,
            &[
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
            ],
        );
    }
}
