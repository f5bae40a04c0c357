//! Thread stacks as roots. A running function's locals live in an interpreter frame on its
//! thread's data stack, not in any object, so the collector never sees them; a leak held by a
//! local of a running frame in another thread is only explained by naming that thread and frame.

use crate::abi::Abi;
use crate::env::Env;
use crate::layout::Layout;
use crate::raw::{self, field, read, Obj};
use pyo3::ffi;

/// Who owns an interpreter frame (`enum _frameowner`; the values differ between versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOwner {
    /// A function running on a thread's stack.
    Thread,
    /// A generator, coroutine or async generator (the frame is inside the object).
    Generator,
    /// A frame object that outlived its function's call.
    FrameObject,
    /// An entry frame of the C stack (3.12-3.14), or a thread's base frame (3.14+): no Python
    /// code runs in it.
    NotPython,
}

/// The owner of the interpreter frame `iframe`.
///
/// # Safety
/// `iframe` must be a live interpreter frame.
#[inline]
pub unsafe fn frame_owner(l: &Layout, iframe: *const u8) -> FrameOwner {
    let owner = unsafe { read::<u8>(iframe, l.iframe_owner) } as usize;
    if owner == l.frame_owned_by_thread {
        FrameOwner::Thread
    } else if owner == l.frame_owned_by_generator {
        FrameOwner::Generator
    } else if owner == l.frame_owned_by_frame_object {
        FrameOwner::FrameObject
    } else {
        FrameOwner::NotPython
    }
}

/// One thread of the interpreter and its interpreter frames, innermost first (entry and base
/// frames, which run no Python code, left out).
pub struct ThreadStack {
    pub tstate: *const u8,
    pub thread_id: u64,
    pub frames: Vec<*const u8>,
}

/// Frames deeper than this are not walked (a guard against a corrupted chain, far above
/// Python's recursion limit).
const MAX_FRAMES: usize = 1 << 20;

/// The innermost interpreter frame of a thread: `tstate->cframe->current_frame` before 3.13,
/// `tstate->current_frame` from 3.13.
///
/// # Safety
/// `tstate` must be a live thread state.
pub unsafe fn current_frame(l: &Layout, tstate: *const u8) -> *const u8 {
    unsafe {
        if Layout::has(l.tstate_current_frame) {
            return read(tstate, l.tstate_current_frame);
        }
        let cframe: *const u8 = read(tstate, l.tstate_cframe);
        if cframe.is_null() {
            std::ptr::null()
        } else {
            read(cframe, l.cframe_current_frame)
        }
    }
}

/// Every thread state of the current interpreter with its frame chain.
///
/// # Safety
/// The GIL must be held.
pub unsafe fn thread_stacks(env: &Env) -> Vec<ThreadStack> {
    let l = env.layout;
    let mut out = Vec::new();
    unsafe {
        let interp = ffi::PyInterpreterState_Get();
        let mut ts = ffi::PyInterpreterState_ThreadHead(interp);
        while !ts.is_null() {
            let tb = ts as *const u8;
            let thread_id: std::ffi::c_ulong = read(tb, l.tstate_thread_id);
            let mut frames = Vec::new();
            let mut f = current_frame(l, tb);
            let mut seen = 0;
            while !f.is_null() && seen < MAX_FRAMES {
                if frame_owner(l, f) != FrameOwner::NotPython {
                    frames.push(f);
                }
                f = read(f, l.iframe_previous);
                seen += 1;
            }
            out.push(ThreadStack {
                tstate: tb,
                thread_id: thread_id as u64,
                frames,
            });
            ts = ffi::PyThreadState_Next(ts);
        }
    }
    out
}

/// The code object an interpreter frame runs, or null when its executable is not code.
///
/// # Safety
/// `iframe` must be a live interpreter frame.
pub unsafe fn frame_code<A: Abi>(env: &Env, iframe: *const u8) -> Obj {
    let l = env.layout;
    unsafe {
        match A::frame_slot(l, iframe.add(l.iframe_executable) as *const usize) {
            Some((code, _)) if raw::ob_type(code) == env.types.code => code,
            _ => std::ptr::null_mut(),
        }
    }
}

/// `qualname (file:line)` for an interpreter frame.
///
/// # Safety
/// `iframe` must be a frame of a live thread stack, GIL held.
pub unsafe fn frame_name<A: Abi>(env: &Env, iframe: *const u8) -> String {
    let l = env.layout;
    unsafe {
        let code = frame_code::<A>(env, iframe);
        if code.is_null() {
            return "<frame>".to_string();
        }
        let cb = code as *const u8;
        let mut name = String::new();
        let q = field(cb, l.code_qualname);
        if q.is_null() || !raw::str_text(l, q, 200, &mut name) {
            name.push_str("<code>");
        }
        let mut file = String::new();
        let f = field(cb, l.code_filename);
        if f.is_null() || !raw::str_text(l, f, 300, &mut file) {
            file.push('?');
        }
        let line = A::frame_line(env, iframe, code);
        format!("{name} ({file}:{line})")
    }
}
