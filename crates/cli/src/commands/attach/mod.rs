//! `heaplens attach PID`: a snapshot of a running CPython process (of a version heaplens
//! captures: 3.11 to 3.15), without restarting it (a web server under load, say), saved where the
//! user asked and optionally reported or compared with a second one.
//!
//! How (each step in its own module):
//! 1. [`target`]: checks, reading `/proc` only, that the process exists and runs, is a CPython of
//!    a version heaplens captures ([`python`]: the list comes from the binding, see
//!    `heaplens_capture::SUPPORTED`), and may be traced by this user;
//! 2. [`protocol`]: writes a request and the script the target will run into a private
//!    directory;
//! 3. makes the target's main thread run the script at its next safe point (a bytecode
//!    boundary, with the GIL held), in one of two ways, and says which on stderr:
//!    - [`remote_exec`], for Python 3.14 and newer: the target's own interpreter, run as a
//!      child, calls `sys.remote_exec` (PEP 768); no gdb, and nothing is mapped in the target;
//!    - [`gdb`], for older ones, and when remote debugging is disabled in the target or its
//!      interpreter cannot be run: gdb queues a pending call that runs the script, then
//!      detaches at once;
//! 4. [`protocol`]: waits for the target's answer, with progress and a timeout that withdraws
//!    the request; the target imports heaplens (its own, or the one running this command when
//!    both run the same Python version, see [`Args::python_path`]), takes the snapshot and
//!    writes it to the directory;
//! 5. [`snapshot`]: moves the snapshot where the user asked; here, it is reported on or compared
//!    with a second one, with the `report` and `diff` commands' code.
//!
//! What it is not: a way to run arbitrary code in a process (the script only snapshots), a
//! profiler, or a dashboard (`--serve` belongs to the dashboard, which does not exist yet).
//!
//! The target is never killed: a refused or failed step leaves it as it was. What stays in it is,
//! when gdb was used, one 4 KiB page gdb mapped (see [`gdb`]) and, if it had not imported heaplens
//! before, heaplens (an extension module cannot be unloaded); its `sys.path` and `__main__` are
//! left as they were, and the directory is removed (by the script itself, when a request sent
//! through `sys.remote_exec` was withdrawn: see [`protocol`]). Every failure is a [`Failure`]:
//! what happened, and a hint of what to do.
//!
//! Linux only (it reads `/proc`, and relies on gdb and ptrace, or on `process_vm_writev`, which
//! `sys.remote_exec` uses and the kernel permits as it does ptrace).

#[cfg(target_os = "linux")]
mod gdb;
#[cfg(target_os = "linux")]
mod protocol;
#[cfg(target_os = "linux")]
mod python;
#[cfg(target_os = "linux")]
mod remote_exec;
#[cfg(target_os = "linux")]
mod snapshot;
#[cfg(target_os = "linux")]
mod symbols;
#[cfg(target_os = "linux")]
mod target;

use crate::progress::Progress;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;
#[cfg(target_os = "linux")]
use std::time::Duration;

/// Take a snapshot of a running CPython process (3.11 to 3.15) without restarting it, and save
/// it (or report on it). heaplens must be importable in the process; when it is not, the heaplens
/// that runs this command is offered to it if it runs the same Python version, or give
/// --python-path. Uses sys.remote_exec on Python 3.14 and newer, gdb otherwise (or when remote
/// debugging is disabled in the process), and needs permission to trace the process (same user,
/// or root).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process id.
    pub pid: u32,
    /// Where to save the snapshot [default: heaplens-PID-<UTC time>.hlsnap in the current
    /// directory].
    #[arg(long, value_name = "FILE.hlsnap", conflicts_with = "diff")]
    pub snapshot: Option<PathBuf>,
    /// Print the report of the snapshot, as `heaplens report` does.
    #[arg(long, conflicts_with = "serve")]
    pub report: bool,
    /// Take two snapshots SECONDS apart (both saved under their default names) and print what
    /// grew between them, as `heaplens diff` does; exit status 1 when there are leak suspects.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, conflicts_with = "report")]
    pub diff: Option<f64>,
    /// How long to wait for the process's main thread to reach a safe point (run Python code),
    /// and for gdb or sys.remote_exec, before giving up; the process is left as it was.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub timeout: f64,
    /// The directory that holds the `heaplens` package to import in the process when it has none
    /// of its own (a site-packages directory, as the process sees it, with heaplens built for
    /// the process's Python version) [default: the one running this command, if the process runs
    /// the same Python version].
    #[arg(long, value_name = "DIR")]
    pub python_path: Option<PathBuf>,
    /// How many rows per section of --report and --diff.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Then serve the snapshot in the dashboard at http://[HOST:]PORT/ (HOST defaults to
    /// 127.0.0.1; port 0 picks a free one), as `heaplens serve` does, until Ctrl-C.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = address, conflicts_with = "diff")]
    pub serve: Option<(String, u16)>,
    /// The token the dashboard requires (needed to serve on an address other than loopback).
    #[arg(long, value_name = "TOKEN", requires = "serve")]
    pub token: Option<String>,
}

/// `[HOST:]PORT` as (host, port); the host defaults to loopback.
fn address(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text.rsplit_once(':').unwrap_or(("127.0.0.1", text));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("expected [HOST:]PORT with a port number, not {text:?}"))?;
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok((host.to_string(), port))
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(s),
        _ => Err(format!(
            "expected a positive number of seconds, not {text:?}"
        )),
    }
}

pub use super::failure::Failure;
#[cfg(test)]
use super::failure::hint;

/// The prefix of the names of the private directories shared with targets: the core
/// recognises the frames of code run from them as heaplens' own (see [`heaplens_core::own`]).
const DIRECTORY_PREFIX: &str = heaplens_core::own::ATTACH_DIRECTORY_PREFIX;

/// Runs `heaplens attach`.
#[cfg(not(target_os = "linux"))]
pub fn run(
    _args: &Args,
    _caller: &crate::Caller,
    _progress: &Progress,
    _out: &mut impl Write,
) -> Result<i32> {
    Err(Failure::new(
        "heaplens attach works on Linux only (it reads /proc, and uses gdb or process_vm_writev)",
        "take the snapshot inside the program: heaplens.snapshot().save(path)",
    )
    .into())
}

/// Runs `heaplens attach`.
#[cfg(target_os = "linux")]
pub fn run(
    args: &Args,
    caller: &crate::Caller,
    progress: &Progress,
    out: &mut impl Write,
) -> Result<i32> {
    // Before the process is reached: a snapshot that could not be saved would pause it for
    // nothing. The path given is checked first of all; without one, the snapshot goes to the
    // current directory under its default name, checked once the process is known to be one
    // that can be reached (its refusal is the more useful to hear).
    if let Some(path) = &args.snapshot {
        crate::output::check(path)?;
    }
    let target = target::inspect(args.pid, heaplens_capture::SUPPORTED)?;
    if args.snapshot.is_none() {
        let name = snapshot::default_name(args.pid, std::time::SystemTime::now());
        crate::output::check(std::path::Path::new(&name))?;
    }
    let interrupted = || caller.interrupted.is_some_and(|f| f());
    // The running heaplens is lent only to the same Python version: its extension module is
    // built for one.
    let lent = caller
        .python_path
        .as_deref()
        .filter(|_| python::lendable(caller.python_version, target.python));
    let session = snapshot::Session::new(
        &target,
        snapshot::Offer {
            python_path: args.python_path.as_deref().or(lent),
            python_path_given: args.python_path.is_some(),
            ours: caller.python_version,
        },
        Duration::from_secs_f64(args.timeout),
        progress,
        &interrupted,
    );
    let announce = |out: &mut dyn Write, saved: &snapshot::Saved| -> Result<()> {
        writeln!(
            out,
            "snapshot of process {} ({}): {} objects in {:.2} s, saved to {}",
            target.pid,
            target.name,
            saved.objects,
            saved.seconds,
            saved.path.display()
        )?;
        Ok(())
    };
    let Some(interval) = args.diff else {
        let saved = session.take(args.snapshot.as_deref())?;
        announce(out, &saved)?;
        if let Some((host, port)) = &args.serve {
            let serve = super::serve::Args {
                snapshots: vec![saved.path],
                host: host.clone(),
                port: *port,
                token: args.token.clone(),
                allow_downloads: false,
                history: None,
                pid: None,
            };
            return super::serve::run(&serve, caller, progress, out);
        }
        if !args.report {
            return Ok(crate::OK);
        }
        writeln!(out)?;
        let report = super::report::Args {
            snapshot: saved.path,
            limit: args.limit,
        };
        return super::report::run(&report, progress, out);
    };
    let before = session.take(None)?;
    announce(out, &before)?;
    let interval = Duration::from_secs_f64(interval);
    let mut waiting = progress.waiting(format!(
        "the second snapshot in {} s",
        interval.as_secs_f64()
    ));
    let until = std::time::Instant::now() + interval;
    while std::time::Instant::now() < until {
        if interrupted() {
            return Err(Failure::new(
                format!(
                    "interrupted; the first snapshot is saved in {}",
                    before.path.display()
                ),
                "compare it with a later one: heaplens diff",
            )
            .into());
        }
        waiting.tick();
        std::thread::sleep(Duration::from_millis(50));
    }
    waiting.finish();
    let after = session.take(None)?;
    announce(out, &after)?;
    writeln!(out)?;
    // `heaplens diff`'s defaults.
    let diff = super::diff::Args {
        before: before.path,
        after: after.path,
        min_objects: 10,
        min_size: 1 << 20,
        limit: args.limit,
        ignore: Vec::new(),
    };
    super::diff::run(&diff, progress, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(seconds("2.5"), Ok(2.5));
        for bad in ["0", "-1", "nan", "inf", "soon", "1e300"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serve_takes_a_port_or_a_host_and_port() {
        assert_eq!(address("8000"), Ok(("127.0.0.1".into(), 8000)));
        assert_eq!(address("0.0.0.0:0"), Ok(("0.0.0.0".into(), 0)));
        assert_eq!(address("[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(address(":81"), Ok(("127.0.0.1".into(), 81)));
        for bad in ["", "host", "1:2:x", "70000"] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
