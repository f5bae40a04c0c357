//! Queues a pending call in the target through gdb: how `heaplens attach` reaches a target of
//! Python 3.11 to 3.13, and one of 3.14 or newer where `sys.remote_exec` cannot (remote
//! debugging disabled in it, or its interpreter cannot be run: see [`super::remote_exec`]).
//!
//! gdb attaches in batch mode and, on the target's main thread:
//! 1. maps one anonymous page with `mmap` (a system call: it takes no lock, where `malloc` could
//!    deadlock if the target was stopped inside `malloc`);
//! 2. writes into it a NUL-terminated Python source, the bootstrap (see [`super::protocol`]);
//! 3. calls `Py_AddPendingCall(PyRun_SimpleString, page)`, which needs no GIL and only takes
//!    CPython's pending-calls lock for a few instructions;
//!
//! then detaches. The functions are called through their addresses, found in the target's files
//! before gdb attaches ([`super::symbols`]), so gdb need not read its libraries' symbols while
//! the target is stopped; where they cannot be found there, by their names. The target's main
//! thread runs the bootstrap at its next bytecode boundary, with the GIL held: a safe point, as
//! with a signal handler. This is what memray and pyrasite do (their `PyGILState_Ensure` variant
//! runs the code *during* gdb's call, so a target holding the GIL in a long C call would hang
//! gdb; a pending call is only queued, and a target that never reaches a safe point is handled by
//! a timeout that cancels the request instead).
//!
//! The calls are made on the main thread on purpose: `Py_AddPendingCall` sets the eval breaker
//! only when called from the thread that handles pending calls (3.11's `COMPUTE_EVAL_BREAKER`),
//! so a call from another thread could wait until something else wakes the main thread. Both
//! functions are exported by every version heaplens captures, so the same commands serve them
//! all.
//!
//! The page (4 KiB) stays mapped in the target: it cannot be unmapped while the pending call may
//! still be waiting to read it.
//!
//! Not here: what the bootstrap runs ([`super::protocol`]); `sys.remote_exec`, which replaces
//! all of this on Python 3.14 and newer where remote debugging is enabled
//! ([`super::remote_exec`]).
//!
//! If gdb does not finish in time (a call blocked on a lock the stopped target holds, say), a
//! watchdog sends `SIGURG` to the target's main thread: gdb is told to stop on it and not pass
//! it on, and `unwindonsignal` makes gdb restore the thread as it was before the call. The
//! target is never killed; gdb is, as a last resort. `SIGURG` is chosen because its default
//! action is to ignore it, so the signal is harmless even if gdb has detached meanwhile.

use super::symbols::{self, Functions};
use super::target::Target;
use super::Failure;
use crate::progress::Progress;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The size of the page mapped in the target, and so the longest bootstrap source.
pub const PAGE: usize = 4096;

/// How long gdb gets after the watchdog's signal before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// Finds gdb on `PATH`.
pub fn find() -> Result<PathBuf> {
    find_in(std::env::var_os("PATH")).ok_or_else(|| {
        Failure::new(
            "gdb is not installed (heaplens attach uses it to reach into the running process)",
            "install gdb (apt-get install gdb, dnf install gdb, or apk add gdb) and put it on PATH",
        )
        .into()
    })
}

fn find_in(path: Option<OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&path?)
        .map(|dir| dir.join("gdb"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The gdb command file that queues `source` (without its NUL) as a pending call, calling the
/// functions at `functions` when given, else by name.
fn commands(source: &[u8], functions: Option<Functions>) -> String {
    // Through a pointer of the function's type, or by its name (with gdb's casts of the
    // arguments, as the functions' types are unknown without debug information).
    let (mmap, add_pending_call, run_simple_string) = match functions {
        Some(f) => (
            format!(
                "((void *(*)(void *, unsigned long, int, int, int, long)) {:#x})",
                f.mmap
            ),
            format!("((int (*)(void *, void *)) {:#x})", f.add_pending_call),
            format!("{:#x}", f.run_simple_string),
        ),
        None => (
            "mmap".to_string(),
            "Py_AddPendingCall".to_string(),
            "PyRun_SimpleString".to_string(),
        ),
    };
    let mut text = format!(
        "set pagination off\n\
         set confirm off\n\
         set print pretty off\n\
         set unwindonsignal on\n\
         handle SIGURG stop print nopass\n\
         set $heaplens_page = (char *) {mmap}((void *) 0, (unsigned long) 4096, 3, 0x22, -1, (long) 0)\n\
         printf \"heaplens-page: %ld\\n\", (long) $heaplens_page\n\
         if (long) $heaplens_page == -1 || (long) $heaplens_page == 0\n  \
           detach\n  \
           quit 3\n\
         end\n",
    );
    // The source is written as native-endian 64-bit words (gdb runs on the target's machine),
    // which needs no escaping; the zero padding of the last word is the terminating NUL.
    let mut bytes = source.to_vec();
    bytes.push(0);
    bytes.resize(bytes.len().div_ceil(8) * 8, 0);
    for (i, word) in bytes.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        text.push_str(&format!(
            "set {{unsigned long long}} ($heaplens_page + {}) = {:#x}\n",
            i * 8,
            u64::from_ne_bytes(w)
        ));
    }
    text.push_str(&format!(
        "set $heaplens_queued = (int) {add_pending_call}((void *) {run_simple_string}, (void *) $heaplens_page)\n\
         printf \"heaplens-queued: %d\\n\", $heaplens_queued\n\
         detach\n\
         quit\n",
    ));
    text
}

/// Runs gdb on the target to queue `source`; `budget` bounds gdb's run. `scratch` is a private
/// directory for gdb's command file and output.
pub fn inject(
    gdb: &Path,
    target: &Target,
    source: &[u8],
    scratch: &Path,
    budget: Duration,
    progress: &Progress,
) -> Result<()> {
    if source.len() >= PAGE {
        anyhow::bail!(
            "the bootstrap is {} bytes, more than a page; use a shorter temporary directory \
             (TMPDIR)",
            source.len()
        );
    }
    let script = scratch.join("inject.gdb");
    let functions = symbols::find(target.pid, &target.root);
    std::fs::write(&script, commands(source, functions))
        .with_context(|| format!("cannot write {}", script.display()))?;
    let log_path = scratch.join("gdb.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let log_err = log.try_clone().context("cannot duplicate gdb's log file")?;

    let mut command = Command::new(gdb);
    command
        // --readnever: the ELF symbols are all that is called, and reading the debug
        // information of big libraries (a libpython built with -g, say) takes seconds.
        .args(["-nx", "-batch", "--readnever", "-p"])
        .arg(target.pid.to_string())
        // Before attaching: no scripts from the target's files (python3.11-gdb.py), no
        // downloads of debug information, no questions.
        .args(["-iex", "set auto-load off"])
        .args(["-iex", "set debuginfod enabled off"])
        .args(["-iex", "set confirm off"])
        // The libraries' symbols are not needed where the functions' addresses are known.
        .args(if functions.is_some() {
            &["-iex", "set auto-solib-add off"][..]
        } else {
            &[]
        })
        .arg("-x")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // gdb's own terminal settings and the `gdb` in its messages.
        .env("LC_ALL", "C")
        .env("TERM", "dumb");
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in the terminal reaches heaplens, not gdb (which would
        // pass it on to the target as if it came from there).
        command.process_group(0);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", gdb.display()))?;

    let started = Instant::now();
    let mut waiting = progress.waiting(format!("attaching gdb to process {}", target.pid));
    let mut signalled = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for gdb")? {
            break Some(status);
        }
        let elapsed = started.elapsed();
        if !signalled && elapsed > budget {
            signalled = true;
            waiting.set(format!(
                "gdb has not finished in {} s; undoing its call in process {}",
                budget.as_secs(),
                target.pid
            ));
            interrupt_main_thread(target.pid);
        }
        if signalled && elapsed > budget + GRACE {
            // Last resort: gdb itself is stuck. The kernel detaches the target when its tracer
            // dies; SIGCONT undoes the SIGSTOP that attaching may have left pending.
            let _ = child.kill();
            let _ = child.wait();
            send(target.pid, libc::SIGCONT);
            break None;
        }
        waiting.tick();
        std::thread::sleep(Duration::from_millis(20));
    };
    waiting.finish();
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        None => Err(Failure::new(
            format!(
                "gdb did not finish attaching to process {} within {} s and was stopped; the \
                 process was left running",
                target.pid,
                (budget + GRACE).as_secs()
            ),
            "check the process is not in uninterruptible sleep (state D in `ps`), then try again \
             with a longer --timeout",
        )
        .into()),
        Some(_) => interpret(&output, target, signalled, budget),
    }
}

/// What gdb's output says happened.
fn interpret(output: &str, target: &Target, signalled: bool, budget: Duration) -> Result<()> {
    let pid = target.pid;
    let value = |key: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    if value("heaplens-queued:") == Some("0") {
        return Ok(());
    }
    if output.contains("ptrace: Operation not permitted") {
        return Err(target.ptrace_refused().into());
    }
    if output.contains("ptrace: No such process") {
        return Err(Failure::new(
            format!("process {pid} exited before gdb could attach"),
            "give the PID of a running Python process",
        )
        .into());
    }
    if output.contains("was signaled while in a function called from GDB") {
        let message = if signalled {
            format!(
                "gdb's call into process {pid} did not return within {} s (it may have been \
                 stopped holding a lock); the call was undone and nothing was queued",
                budget.as_secs()
            )
        } else {
            format!(
                "process {pid} received a signal during gdb's call; the call was undone and \
                 nothing was queued"
            )
        };
        return Err(Failure::new(message, "try again").into());
    }
    if let Some(symbol) = missing_symbol(output) {
        return Err(Failure::new(
            format!(
                "gdb cannot find `{symbol}` in process {pid}: its Python does not export the \
                 C API symbols heaplens calls (a statically linked or stripped build)"
            ),
            "use a Python built with a shared libpython or exported symbols (the python.org, \
             distribution and pyenv builds are), or take the snapshot from inside the program \
             with heaplens.snapshot()",
        )
        .into());
    }
    match value("heaplens-page:") {
        Some("-1") | Some("0") => {
            return Err(Failure::new(
                format!(
                    "gdb could not map a page of memory in process {pid} (mmap failed); nothing \
                     was changed"
                ),
                "the process may be at its memory limit, or a security policy forbids new \
                 mappings; check its memory use and try again",
            )
            .into())
        }
        _ => {}
    }
    if value("heaplens-queued:") == Some("-1") {
        return Err(Failure::new(
            format!("Python's queue of pending calls in process {pid} is full"),
            "try again in a moment",
        )
        .into());
    }
    Err(Failure::new(
        format!(
            "gdb could not queue the snapshot in process {pid}; its last words:\n{}",
            last_lines(output, 8)
        ),
        "run again with `gdb` output in view, or report it with the lines above",
    )
    .into())
}

/// The symbol in gdb's `No symbol "X" in current context.`, or its complaint that there is no
/// symbol table at all.
fn missing_symbol(output: &str) -> Option<String> {
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("No symbol \"") {
            if let Some((symbol, _)) = rest.split_once('"') {
                return Some(symbol.to_string());
            }
        }
        if line.contains("No symbol table is loaded") {
            return Some("Py_AddPendingCall".to_string());
        }
    }
    None
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends the watchdog's `SIGURG` to the target's main thread (whose thread id is its PID).
fn interrupt_main_thread(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: tgkill only sends a signal; both ids are plain integers.
    unsafe {
        libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGURG);
    }
}

fn send(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill only sends a signal.
    unsafe {
        libc::kill(pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        super::super::target::tests_support::target(4242)
    }

    fn message(r: Result<()>) -> (String, String) {
        let e = r.unwrap_err();
        let hint = super::super::hint(&e).unwrap_or_default().to_string();
        (e.to_string(), hint)
    }

    #[test]
    fn a_queued_call_is_success() {
        let out =
            "heaplens-page: 140000\nheaplens-queued: 0\n[Inferior 1 (process 4242) detached]\n";
        assert!(interpret(out, &target(), false, Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn gdbs_operation_not_permitted_becomes_the_permission_hint() {
        let out = "Attaching to process 4242\n\
                   Could not attach to process.  If your uid matches the uid of the target\n\
                   process, check the setting of /proc/sys/kernel/yama/ptrace_scope, or try\n\
                   again as the root user.  For more details, see /etc/sysctl.d/10-ptrace.conf\n\
                   ptrace: Operation not permitted.\n\
                   No symbol table is loaded.  Use the \"file\" command.\n";
        let (msg, hint) = message(interpret(out, &target(), false, Duration::from_secs(30)));
        assert!(
            msg.starts_with("no permission to trace process 4242"),
            "{msg}"
        );
        assert!(
            hint.contains("sudo") && hint.contains("SYS_PTRACE"),
            "{hint}"
        );
    }

    #[test]
    fn missing_python_symbols_are_named() {
        let out = "heaplens-page: 140000\n\
                   inject.gdb:15: Error in sourced command file:\n\
                   No symbol \"Py_AddPendingCall\" in current context.\n";
        let (msg, _) = message(interpret(out, &target(), false, Duration::from_secs(30)));
        assert!(msg.contains("`Py_AddPendingCall`"), "{msg}");
    }

    #[test]
    fn a_failed_mmap_changes_nothing() {
        let out = "heaplens-page: -1\n[Inferior 1 (process 4242) detached]\n";
        let (msg, _) = message(interpret(out, &target(), false, Duration::from_secs(30)));
        assert!(
            msg.contains("mmap failed") && msg.contains("nothing was changed"),
            "{msg}"
        );
    }

    #[test]
    fn an_undone_call_says_whether_the_watchdog_did_it() {
        let out = "The program being debugged was signaled while in a function called from GDB.\n\
                   GDB has restored the context to what it was before the call.\n";
        let (msg, _) = message(interpret(out, &target(), true, Duration::from_secs(7)));
        assert!(msg.contains("did not return within 7 s"), "{msg}");
        let (msg, _) = message(interpret(out, &target(), false, Duration::from_secs(7)));
        assert!(msg.contains("received a signal"), "{msg}");
    }

    #[test]
    fn a_full_queue_and_unknown_errors_are_reported() {
        let out = "heaplens-page: 140000\nheaplens-queued: -1\n";
        let (msg, _) = message(interpret(out, &target(), false, Duration::from_secs(30)));
        assert!(msg.contains("queue of pending calls"), "{msg}");
        let (msg, _) = message(interpret(
            "something odd\n",
            &target(),
            false,
            Duration::ZERO,
        ));
        assert!(msg.contains("something odd"), "{msg}");
    }

    #[test]
    fn functions_with_known_addresses_are_called_through_them() {
        let functions = Functions {
            mmap: 0x7f00_0000_1000,
            add_pending_call: 0x7f00_0000_2000,
            run_simple_string: 0x7f00_0000_3000,
        };
        let text = commands(b"print('hi')\n", Some(functions));
        assert!(text.contains(
            "(char *) ((void *(*)(void *, unsigned long, int, int, int, long)) 0x7f0000001000)((void *) 0,"
        ), "{text}");
        assert!(text.contains(
            "(int) ((int (*)(void *, void *)) 0x7f0000002000)((void *) 0x7f0000003000, (void *) $heaplens_page)"
        ), "{text}");
        for name in ["mmap(", "Py_AddPendingCall", "PyRun_SimpleString"] {
            assert!(!text.contains(name), "{name} in {text}");
        }
    }

    #[test]
    fn the_source_is_written_whole_and_nul_terminated() {
        let source = b"print('hi')\n";
        let text = commands(source, None);
        let mut written = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("set {unsigned long long} ($heaplens_page + ") {
                let (offset, value) = rest.split_once(") = 0x").unwrap();
                assert_eq!(offset.parse::<usize>().unwrap(), written.len());
                let word = u64::from_str_radix(value, 16).unwrap();
                written.extend_from_slice(&word.to_ne_bytes());
            }
        }
        assert_eq!(&written[..source.len()], source);
        assert_eq!(written[source.len()], 0);
        // The page is checked before anything is written, and the call comes last.
        let check = text.find("quit 3").unwrap();
        assert!(check < text.find("set {unsigned").unwrap());
        assert!(text.find("Py_AddPendingCall").unwrap() > text.rfind("set {unsigned").unwrap());
    }

    #[test]
    fn gdb_is_found_on_path_only() {
        assert_eq!(
            find_in(Some(OsString::from("/nonexistent:/also/not"))),
            None
        );
        assert_eq!(find_in(None), None);
    }
}
