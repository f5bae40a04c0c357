//! The references of interpreter frames and thread states: a running function's locals live
//! in an interpreter frame (on its thread's data stack, inside a generator, or in a frame
//! object), not in any object the collector lists, and a thread state holds the thread's
//! exception, context and hooks. Both are read field by field, labelled by local name.
//!
//! From 3.14 a frame's slots are `_PyStackRef`s, some of which hold no count
//! ([`crate::abi::Abi::frame_slot`]); [`frame_reference`] decides which of those to follow.

use crate::abi::Abi;
use crate::edges::{field_edges, nonnull, EdgeSink};
use crate::labels::Cx;
use crate::raw::{self, field, read, Obj};
use heaplens_core::label::Label;

/// The references held by an interpreter frame (`_PyInterpreterFrame`): its function, code,
/// locals dict and frame object, every local by name, and the live part of its value stack.
/// Slots that hold no count of their own (3.14's borrowed and immortal stack references) are
/// reported as uncounted.
///
/// # Safety
/// `iframe` must point at a valid interpreter frame (owned by a live generator, frame object or
/// thread) and the GIL must be held.
pub unsafe fn interpreter_frame_edges<A: Abi, S: EdgeSink>(
    cx: &mut Cx<A>,
    iframe: *const u8,
    sink: &mut S,
) {
    let l = cx.env.layout;
    unsafe {
        let n = &cx.names;
        let slot = |off: usize| A::frame_slot(l, iframe.add(off) as *const usize);
        frame_reference::<A, S>(sink, slot(l.iframe_func), Label::field(n.f_func));
        let code = slot(l.iframe_executable);
        frame_reference::<A, S>(sink, code, Label::field(n.f_code));
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
        let Some((code, _)) = code else {
            return;
        };
        if raw::ob_type(code) != cx.env.types.code {
            return;
        }
        let code = code as *const u8;
        let nlocalsplus = read::<i32>(code, l.code_nlocalsplus).max(0) as usize;
        let stacksize = read::<i32>(code, l.code_stacksize).max(0) as usize;
        let valid = A::frame_live_slots(l, iframe, nlocalsplus, nlocalsplus + stacksize);
        let names = field(code, l.code_localsplusnames) as *const u8;
        let locals = iframe.add(l.iframe_localsplus) as *const usize;
        for i in 0..valid {
            let Some((v, counted)) = A::frame_slot(l, locals.add(i)) else {
                continue;
            };
            let label = if i >= nlocalsplus {
                Label::stack()
            } else if S::LABELS && !names.is_null() {
                let name = *(names.add(l.tuple_items) as *const Obj).add(i);
                let (value_label, _) = cx.key_labels(sink, name);
                value_label.name().map_or(Label::NONE, Label::local)
            } else {
                Label::NONE
            };
            frame_reference::<A, S>(sink, Some((v, counted)), label);
        }
    }
}

/// Reports a frame slot's reference ([`Abi::frame_slot`]). A slot that owns its count is an
/// edge. One that does not (3.14+) refers to an immortal object (`None`, a small int: an
/// uncounted edge) or is a borrowed copy of a reference the frame holds elsewhere (3.14's
/// `LOAD_FAST_BORROW` pushes a local without counting it): that one is left out, since the
/// object is reached through its owner, and following it too would let the walk meet an object
/// with a reference count of 1 by two references, and number it twice.
#[inline]
pub(crate) unsafe fn frame_reference<A: Abi, S: EdgeSink>(
    sink: &mut S,
    found: Option<(Obj, bool)>,
    label: Label,
) {
    match found {
        Some((target, true)) => sink.edge(target, label),
        Some((target, false)) if unsafe { A::refcount(target) }.is_none() => {
            sink.edge_uncounted(target, label)
        }
        _ => {}
    }
}

/// The references a thread state holds: its thread-local dict, pending and handled exceptions,
/// context, async-generator hooks and profile/trace functions.
///
/// # Safety
/// `tstate` must be a live thread state of this interpreter, GIL held.
pub unsafe fn thread_state_edges<A: Abi, S: EdgeSink>(
    cx: &mut Cx<A>,
    tstate: *const u8,
    sink: &mut S,
) {
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
                (l.tstate_current_exception, n.current_exception),
                (l.tstate_async_exc, n.async_exc),
                (l.tstate_threading_local_key, n.threading_local_key),
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
