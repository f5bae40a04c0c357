//! Has the target run the bootstrap through `sys.remote_exec` (PEP 768, Python 3.14 and newer):
//! the way in that needs no gdb and maps nothing in the target.
//!
//! `sys.remote_exec(pid, path)` writes `path` into the target's main thread state and sets its
//! eval breaker (with `process_vm_writev`, which the kernel permits as it does ptrace); the main
//! thread reads the file and runs it at its next safe point, as with a pending call, and the
//! call returns at once. It must be called from a Python of the target's own minor version, so
//! the target's own interpreter is run, as a child, in isolated mode (`-I`: no environment
//! variables, no user site, no current directory on `sys.path`):
//! `<the target's program> -I -c '...sys.remote_exec(PID, PATH)...' PID PATH`. The program is
//! `/proc/PID/exe`, reached under `/proc/PID/root` when the target runs in another mount
//! namespace (a container).
//!
//! The caller checks that PATH is readable, in its own mount namespace, and the target opens it
//! in its own: for a target in a container, a link from the target's path to the directory
//! (under `/proc/PID/root`) is made in this namespace for the call, and removed after it.
//!
//! It fails, and [`queue`] says why so that gdb is tried instead, when remote debugging is
//! disabled in the target (`PYTHON_DISABLE_REMOTE_DEBUG` in its environment, `-X
//! disable-remote-debug`, or a build without it: the child exits with the `RuntimeError`), when
//! its program is not a Python interpreter that can be run from here, or when the call does not
//! return in time.
//!
//! Not here: what the bootstrap runs, and the files ([`super::protocol`]).

use super::target::Target;
use crate::progress::Progress;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the child runs: the call, and its failure as one line on stderr and exit status 1.
const CALL: &str = "import sys\n\
try:\n    sys.remote_exec(int(sys.argv[1]), sys.argv[2])\n\
except BaseException as error:\n    sys.exit(f'{type(error).__name__}: {error}')\n";

/// Why `sys.remote_exec` could not be used: the rest of a sentence that starts with "sys.remote_exec
/// cannot reach process N: ".
#[derive(Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// Has `target` run `script` (its path as the target sees it, in `directory`, which this
/// process reaches as `ours`), waiting at most `budget` for the call.
pub fn queue(
    target: &Target,
    script: &Path,
    (ours, theirs): (&Path, &Path),
    budget: Duration,
    progress: &Progress,
) -> Result<(), Unavailable> {
    let program = interpreter(target)?;
    // In another mount namespace, the target's path to the script means nothing here: make it.
    let link = if target.root == Path::new("/") {
        None
    } else {
        std::os::unix::fs::symlink(ours, theirs).map_err(|e| {
            Unavailable(format!(
                "it runs in another mount namespace (a container), and its path {} cannot be \
                 made here ({e})",
                theirs.display()
            ))
        })?;
        Some(theirs)
    };
    let result = call(&program, target.pid, script, budget, progress);
    if let Some(link) = link {
        let _ = std::fs::remove_file(link);
    }
    result
}

/// The target's own interpreter, as this process can run it.
fn interpreter(target: &Target) -> Result<PathBuf, Unavailable> {
    let Some(exe) = target.exe.as_deref() else {
        return Err(Unavailable(
            "its program (/proc/PID/exe) cannot be read".to_string(),
        ));
    };
    let deleted = exe.to_str().is_some_and(|e| e.ends_with(" (deleted)"));
    if !deleted && !is_python_program(exe) {
        return Err(Unavailable(format!(
            "its program, {}, is not a Python interpreter to call sys.remote_exec with",
            exe.display()
        )));
    }
    target.program().ok_or_else(|| {
        Unavailable(format!(
            "its program, {}, is no longer there (replaced since it started?)",
            exe.display()
        ))
    })
}

/// `python`, `python3`, `python3.14`, `python3.14t`: a program that runs `-I -c`.
fn is_python_program(exe: &Path) -> bool {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(rest) = name.strip_prefix("python") else {
        return false;
    };
    rest.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b't' || b == b'd')
}

fn call(
    program: &Path,
    pid: u32,
    script: &Path,
    budget: Duration,
    progress: &Progress,
) -> Result<(), Unavailable> {
    let mut command = Command::new(program);
    command
        .args(["-I", "-c", CALL])
        .arg(pid.to_string())
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C in the terminal reaches heaplens only.
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|e| {
        Unavailable(format!(
            "its interpreter, {}, cannot be run here ({e})",
            program.display()
        ))
    })?;
    let started = Instant::now();
    let mut waiting = progress.waiting(format!("calling sys.remote_exec on process {pid}"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() <= budget => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
        waiting.tick();
        std::thread::sleep(Duration::from_millis(10));
    };
    waiting.finish();
    let mut output = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut output);
    }
    match status {
        Some(status) if status.success() => Ok(()),
        Some(_) => Err(Unavailable(explain(&output))),
        None => Err(Unavailable(format!(
            "the call did not return within {} s",
            budget.as_secs()
        ))),
    }
}

/// The child's last words, as the reason.
fn explain(output: &str) -> String {
    let last = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if last.contains("Remote debugging is not enabled")
        || last.contains("has not been compiled in")
        || last.contains("not supported on this platform")
    {
        return format!(
            "remote debugging is disabled in it (PYTHON_DISABLE_REMOTE_DEBUG in its environment, \
             -X disable-remote-debug, or a Python built without it): {last}"
        );
    }
    if last.is_empty() {
        return "its interpreter exited with an error and said nothing".to_string();
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_python_programs_are_run() {
        for yes in [
            "/usr/bin/python3.14",
            "/usr/bin/python3",
            "/x/python",
            "/x/python3.14t",
            "/x/python3.15d",
        ] {
            assert!(is_python_program(Path::new(yes)), "{yes}");
        }
        for no in [
            "/usr/bin/uwsgi",
            "/usr/bin/python3.14-config",
            "/x/pythonic",
            "/usr/bin/python3.14 (deleted)",
        ] {
            assert!(!is_python_program(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn disabled_remote_debugging_is_named_with_its_switches() {
        let why = explain("RuntimeError: Remote debugging is not enabled in the remote process\n");
        assert!(
            why.starts_with("remote debugging is disabled in it"),
            "{why}"
        );
        assert!(why.contains("PYTHON_DISABLE_REMOTE_DEBUG"), "{why}");
        assert!(why.contains("-X disable-remote-debug"), "{why}");
        assert!(why.ends_with("in the remote process"), "{why}");
        assert_eq!(
            explain("noise\nPermissionError: [Errno 1] Operation not permitted\n\n"),
            "PermissionError: [Errno 1] Operation not permitted"
        );
        assert!(explain("").contains("said nothing"));
    }

    #[test]
    fn a_target_without_a_python_program_is_not_called() {
        let mut target = super::super::target::tests_support::target(4242);
        target.exe = Some(PathBuf::from("/usr/sbin/uwsgi"));
        let Err(Unavailable(why)) = interpreter(&target) else {
            panic!("uwsgi is no interpreter")
        };
        assert!(
            why.contains("/usr/sbin/uwsgi, is not a Python interpreter"),
            "{why}"
        );
        target.exe = Some(PathBuf::from("/nonexistent/bin/python3.14"));
        let Err(Unavailable(why)) = interpreter(&target) else {
            panic!("no such file")
        };
        assert!(why.contains("no longer there"), "{why}");
        target.exe = Some(PathBuf::from("/usr/bin/python3.14 (deleted)"));
        let Err(Unavailable(why)) = interpreter(&target) else {
            panic!("replaced")
        };
        assert!(why.contains("no longer there"), "{why}");
        target.exe = None;
        assert!(interpreter(&target).is_err());
    }

    #[test]
    fn the_call_reports_a_child_that_fails() {
        // `sh -I -c CALL PID PATH` is an error of sh's: a program that fails, run as the child.
        let why = call(
            Path::new("/bin/sh"),
            4242,
            Path::new("/nonexistent"),
            Duration::from_secs(30),
            &Progress::new(false),
        )
        .unwrap_err();
        assert!(!why.0.is_empty());
        let why = call(
            Path::new("/nonexistent/python3.14"),
            4242,
            Path::new("/x"),
            Duration::from_secs(30),
            &Progress::new(false),
        )
        .unwrap_err();
        assert!(why.0.contains("cannot be run here"), "{}", why.0);
    }
}
