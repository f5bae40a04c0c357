//! Thread stacks as roots. In 3.11 a running function's locals live in an interpreter frame on
//! its thread's data stack, not in any object, so the collector never sees them; a leak held by a
//! local of a running frame in another thread is only explained by naming that thread and frame.

use super::env::Env;
use super::layout::Layout;
use super::raw::{self, field, read, Obj};
use pyo3::ffi;

/// One thread of the interpreter and its interpreter frames, innermost first.
pub struct ThreadStack {
    pub tstate: *const u8,
    pub thread_id: u64,
    pub frames: Vec<*const u8>,
}

/// Frames deeper than this are not walked (a guard against a corrupted chain, far above
/// Python's recursion limit).
const MAX_FRAMES: usize = 1 << 20;

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
            let cframe: *const u8 = read(tb, l.tstate_cframe);
            let mut frames = Vec::new();
            if !cframe.is_null() {
                let mut f: *const u8 = read(cframe, l.cframe_current_frame);
                while !f.is_null() && frames.len() < MAX_FRAMES {
                    frames.push(f);
                    f = read(f, l.iframe_previous);
                }
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

/// The line an interpreter frame is at.
unsafe fn frame_line(l: &Layout, iframe: *const u8, code: *const u8) -> i32 {
    unsafe {
        let first: i32 = read(code, l.code_firstlineno);
        let start = code.add(l.code_adaptive);
        let prev: *const u8 = read(iframe, l.iframe_prev_instr);
        let nbytes = raw::ob_size(code as Obj) * 2;
        // _PyInterpreterFrame_LASTI, in bytes, as PyFrame_GetLineNumber computes it.
        let addr = prev as isize - start as isize;
        if prev.is_null() || addr < 0 || addr >= nbytes {
            return first;
        }
        let line = ffi::PyCode_Addr2Line(code as *mut ffi::PyCodeObject, addr as i32);
        if line < 0 {
            first
        } else {
            line
        }
    }
}

/// `qualname (file:line)` for an interpreter frame.
///
/// # Safety
/// `iframe` must be a frame of a live thread stack, GIL held.
pub unsafe fn frame_name(env: &Env, iframe: *const u8) -> String {
    let l = env.layout;
    unsafe {
        let code = field(iframe, l.iframe_code) as *const u8;
        if code.is_null() || raw::ob_type(code as Obj) != env.types.code {
            return "<frame>".to_string();
        }
        let mut name = String::new();
        let q = field(code, l.code_qualname);
        if q.is_null() || !raw::str_text(l, q, 200, &mut name) {
            name.push_str("<code>");
        }
        let mut file = String::new();
        let f = field(code, l.code_filename);
        if f.is_null() || !raw::str_text(l, f, 300, &mut file) {
            file.push('?');
        }
        let line = frame_line(l, iframe, code);
        format!("{name} ({file}:{line})")
    }
}
