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

use crate::abi::Abi;
use crate::dicts::{
    dict_is_split, dict_slot, for_each_dict_entry, for_each_inline_attribute, instance_dict,
};
use crate::labels::Cx;
use crate::layout::Layout;
use crate::raw::{self, field, read, Obj};
use crate::registry::{SizeKind, TypeEntry, Walker};
use crate::threads::{frame_owner, FrameOwner};
use heaplens_core::label::Label;
use heaplens_core::strings::StringId;
use pyo3::ffi;
use std::ffi::{c_int, c_void};
/// Sinks resolve the references they are handed in batches of this many, prefetching each batch
/// before reading it.
pub const BATCH: usize = 256;
/// A container with at least this many entries tells its sink how many references are coming
/// ([`EdgeSink::expect`]) before it reports them.
const BIG_CONTAINER: usize = 1 << 14;

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
    /// Adds a label string the walk meets once (the text of a dict key only its dict refers
    /// to) without interning it; `write` appends the text
    /// ([`heaplens_core::label::add_unindexed_name`]). `None` where the sink keeps no such
    /// strings: the caller interns the text instead.
    #[inline]
    fn add_unindexed(&mut self, write: impl FnOnce(&mut String) -> bool) -> Option<StringId> {
        let _ = write;
        None
    }
    /// Says that the object being walked, a big container, holds about `references`
    /// references, `keys` of them to dict keys whose text may be stored unindexed, so that the
    /// sink can make room for them in one step: arrays that grow by doubling copy themselves as
    /// they grow, and the copies of a dict of millions of entries raised a snapshot's peak
    /// memory by a third.
    #[inline]
    fn expect(&mut self, references: usize, keys: usize) {
        let _ = (references, keys);
    }
}

#[inline(always)]
pub(crate) fn nonnull<S: EdgeSink>(sink: &mut S, target: Obj, label: Label) {
    if !target.is_null() {
        sink.edge(target, label);
    }
}

/// Edges to the object-pointer fields at `fields` (offset, name) of the object at `ob`; fields
/// this version does not have ([`crate::layout::ABSENT`]) are skipped.
#[inline(always)]
pub(crate) unsafe fn field_edges<S: EdgeSink>(
    sink: &mut S,
    ob: *const u8,
    fields: &[(usize, StringId)],
) {
    for &(off, name) in fields {
        if Layout::has(off) {
            // SAFETY: the caller names fields of the live object's layout.
            nonnull(sink, unsafe { field(ob, off) }, Label::field(name));
        }
    }
}

/// The `PyBaseExceptionObject` fields, by name.
pub(crate) fn exception_fields(l: &Layout, n: &crate::labels::Names) -> [(usize, StringId); 6] {
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
pub unsafe fn object_edges<A: Abi, S: EdgeSink>(
    cx: &mut Cx<A>,
    o: Obj,
    t: &TypeEntry,
    sink: &mut S,
) {
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
            nonnull(sink, read(slot.address(o), 0), Label::attr(slot.name));
        }
        if t.managed_dict {
            nonnull(sink, A::managed_dict(l, o), cx.f(cx.names.dict));
            for_each_inline_attribute::<A>(cx.env, o, |k, v| {
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
            Walker::Dict if o == cx.interned => {}
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
                let used: isize = read(ob, l.dict_used);
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
                    let len = raw::ob_size(o).max(0) as usize;
                    if S::LABELS && len >= BIG_CONTAINER {
                        sink.expect(len, 0);
                    }
                    for i in 0..len {
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
                    (l.func_typeparams, n.type_params),
                    (l.func_annotate, n.annotate),
                ],
            ),
            Walker::Code if !Layout::has(l.code_cached) => field_edges(
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
            Walker::Code => {
                field_edges(
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
                    ],
                );
                // 3.12+: co_code and the name tuples are computed on demand and cached in a
                // C struct the code object owns.
                let cached: *const u8 = read(ob, l.code_cached);
                if !cached.is_null() {
                    field_edges(
                        sink,
                        cached,
                        &[
                            (l.cocached_code, n.co_code),
                            (l.cocached_varnames, n.co_varnames_cached),
                            (l.cocached_cellvars, n.co_cellvars),
                            (l.cocached_freevars, n.co_freevars),
                        ],
                    );
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
                // The module state's references, as its own traverse function reports them:
                // found through `md_def` before 3.15, kept in the module itself from 3.15.
                let (traverse, state_size) = if Layout::has(l.module_def) {
                    let def = read::<*const ffi::PyModuleDef>(ob, l.module_def);
                    if def.is_null() {
                        (None, 0)
                    } else {
                        ((*def).m_traverse, (*def).m_size)
                    }
                } else {
                    (
                        read::<Option<ffi::traverseproc>>(ob, l.module_state_traverse),
                        read::<isize>(ob, l.module_state_size),
                    )
                };
                if let Some(trav) = traverse {
                    let state: *const c_void = read(ob, l.module_state);
                    if state_size <= 0 || !state.is_null() {
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
            Walker::Type => type_edges(cx, o, sink),
            Walker::Frame => {
                field_edges(
                    sink,
                    ob,
                    &[
                        (l.frame_back, n.f_back),
                        (l.frame_trace, n.f_trace),
                        (l.frame_extra_locals, n.f_extra_locals),
                        (l.frame_locals_cache, n.f_locals_cache),
                        (l.frame_overwritten_fast_locals, n.f_overwritten_fast_locals),
                    ],
                );
                let iframe: *const u8 = read(ob, l.frame_frame);
                if !iframe.is_null() && frame_owner(l, iframe) == FrameOwner::FrameObject {
                    crate::frame_edges::interpreter_frame_edges(cx, iframe, sink);
                }
            }
            Walker::Generator => {
                // Before 3.12 the generator holds its code itself; later, its frame does.
                if Layout::has(l.gen_code) {
                    nonnull(sink, field(ob, l.gen_code), Label::field(n.gi_code));
                }
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
                if (read::<i8>(ob, l.gen_frame_state) as isize) < l.frame_cleared as isize {
                    crate::frame_edges::interpreter_frame_edges(cx, ob.add(l.gen_iframe), sink);
                } else if !Layout::has(l.gen_code) {
                    // A finished generator's cleared frame still holds its code (3.12+).
                    let slot = ob.add(l.gen_iframe + l.iframe_executable) as *const usize;
                    crate::frame_edges::frame_reference::<A, S>(
                        sink,
                        A::frame_slot(l, slot),
                        Label::field(n.gi_code),
                    );
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

unsafe fn dict_edges<A: Abi, S: EdgeSink>(cx: &mut Cx<A>, d: Obj, sink: &mut S) {
    let l = cx.env.layout;
    unsafe {
        let split = dict_is_split(l, d);
        // 3.13.0: values embedded in an instance are reported by the instance, not the dict.
        if split && !cx.env.dict_reports_embedded_values && dict_values_are_embedded(l, d) {
            return;
        }
        let used = read::<isize>(d as *const u8, l.dict_used).max(0) as usize;
        if S::LABELS && used >= BIG_CONTAINER && !split {
            sink.expect(2 * used, used);
        }
        for_each_dict_entry(l, d, |k, v| {
            // A split dict shares its keys with the other instances of its class.
            let (value_label, key_label) = if split {
                cx.key_labels(sink, k)
            } else {
                cx.entry_labels(sink, k)
            };
            if !split {
                sink.edge(k, key_label);
            }
            sink.edge(v, value_label);
        });
    }
}

/// Whether a split dict's values are an instance's inline values (3.13+'s `embedded`).
unsafe fn dict_values_are_embedded(l: &Layout, d: Obj) -> bool {
    if !Layout::has(l.dictvalues_embedded) {
        return false;
    }
    unsafe {
        let values: *const u8 = read(d as *const u8, l.dict_values);
        !values.is_null() && read::<u8>(values, l.dictvalues_embedded) != 0
    }
}

unsafe fn type_edges<A: Abi, S: EdgeSink>(cx: &mut Cx<A>, o: Obj, sink: &mut S) {
    let l = cx.env.layout;
    let n = &cx.names;
    let t = o as *const ffi::PyTypeObject;
    let ob = o as *const u8;
    unsafe {
        nonnull(sink, A::type_dict(cx.env, o), Label::field(n.dict));
        nonnull(sink, (*t).tp_mro, Label::field(n.mro));
        nonnull(sink, (*t).tp_bases, Label::field(n.bases));
        nonnull(sink, (*t).tp_base as Obj, Label::field(n.base));
        nonnull(sink, (*t).tp_cache, Label::field(n.tp_cache));
        nonnull(
            sink,
            A::type_subclasses(cx.env, o),
            Label::field(n.subclasses),
        );
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
unsafe fn collect_with<A: Abi, S: EdgeSink>(
    cx: &mut Cx<A>,
    sink: &mut S,
    fill: impl FnOnce(&mut Vec<Obj>),
    mut label: impl FnMut(&mut Cx<A>, &mut S, Obj) -> Label,
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
unsafe fn traverse_edges<A: Abi, S: EdgeSink>(cx: &mut Cx<A>, o: Obj, t: &TypeEntry, sink: &mut S) {
    unsafe {
        let tp = raw::ob_type(o);
        let Some(trav) = (*tp).tp_traverse else {
            return;
        };
        // Only GC objects may be traversed (type_traverse aborts on a static type).
        if !raw::is_gc(o) {
            return;
        }
        let mut sink_labels = LabelMatcher::new(cx.env, o, t);
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
    env: &'static crate::env::Env,
    o: Obj,
    t: &'t TypeEntry,
    dict: Option<Obj>,
    /// Items of a deque met so far: its traverse reports them in order, left to right, after
    /// its class, so every reference not matched otherwise is the next item.
    deque_items: usize,
}

impl<'t> LabelMatcher<'t> {
    fn new(env: &'static crate::env::Env, o: Obj, t: &'t TypeEntry) -> Self {
        LabelMatcher {
            env,
            o,
            t,
            dict: None,
            deque_items: 0,
        }
    }

    unsafe fn label<A: Abi, S: EdgeSink>(&mut self, cx: &mut Cx<A>, sink: &mut S, p: Obj) -> Label {
        let (l, o, t) = (self.env.layout, self.o, self.t);
        let ob = o as *const u8;
        unsafe {
            if t.heap && p == raw::ob_type(o) as Obj {
                return Label::field(cx.names.class);
            }
            for slot in &t.slots {
                if read::<Obj>(slot.address(o), 0) == p {
                    return Label::attr(slot.name);
                }
            }
            let dict = *self
                .dict
                .get_or_insert_with(|| instance_dict::<A>(self.env, o));
            if !dict.is_null() && dict == p {
                return Label::field(cx.names.dict);
            }
            if t.managed_dict {
                let mut found = None;
                for_each_inline_attribute::<A>(cx.env, o, |k, v| {
                    if found.is_none() && v == p {
                        found = Some(k);
                    }
                });
                if let Some(k) = found {
                    return cx.attr_label(sink, k);
                }
            }
            for m in &t.members {
                if read::<Obj>(m.address(o), 0) == p {
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
        if t.size == SizeKind::Deque {
            self.deque_items += 1;
            return Label::index(self.deque_items - 1);
        }
        Label::NONE
    }
}
