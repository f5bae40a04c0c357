//! The checks `heaplens attach` makes on the target process before touching it: that it exists
//! and is running, that it is a CPython of a version heaplens captures, and that this user may
//! trace it. Everything here only reads `/proc`; nothing stops, signals or traces the target.
//!
//! Not here: which versions are captured and what follows from the target's (`python.rs`),
//! reaching into the target (`remote_exec.rs`, `gdb.rs`), the files exchanged with it
//! (`protocol.rs`).
//!
//! The checks predict what the kernel and gdb would refuse, so that the user gets the reason
//! and the remedy instead of gdb's one-line `ptrace: Operation not permitted.`. A prediction
//! can be wrong (a `PR_SET_PTRACER` exception, a security module with its own rules): gdb's own
//! refusal is mapped to the same explanation ([`Target::ptrace_refused`]).

use super::python::{self, Version};
use super::Failure;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `CAP_SYS_PTRACE`'s bit in the capability sets of `/proc/PID/status`.
const CAP_SYS_PTRACE: u32 = 19;

/// A process that passed the checks.
#[derive(Debug, Clone)]
pub struct Target {
    pub pid: u32,
    /// The command name (`/proc/PID/comm`), for messages.
    pub name: String,
    /// Real user and group ids: the files given to the target must be its own.
    pub uid: u32,
    pub gid: u32,
    /// Where this process sees the target's `/`: `/` itself, or `/proc/PID/root` when the target
    /// runs in another mount namespace (a container), whose `/tmp` is not ours.
    pub root: PathBuf,
    /// Its Python version, when its libpython or its program's name tells (`python3` does not).
    pub python: Option<Version>,
    /// Its program (`/proc/PID/exe`), as the target sees it (under [`Target::root`] for us).
    pub exe: Option<PathBuf>,
    /// The start time (`/proc/PID/stat`, field 22), to tell the target from a new process that
    /// got its PID after it exited.
    start_time: u64,
}

/// What `/proc/PID/status` tells the checks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    name: String,
    /// Real, effective, saved and filesystem uids.
    uids: Vec<u32>,
    gids: Vec<u32>,
    tracer: u32,
    cap_eff: u64,
}

/// Inspects process `pid` and returns it when heaplens can attach to it; otherwise a
/// [`Failure`] that says why and what to do. `supported` lists the Python versions heaplens
/// captures (empty: unknown, no version is refused here).
pub fn inspect(pid: u32, supported: &[(u8, u8)]) -> Result<Target> {
    if pid == std::process::id() {
        return Err(Failure::new(
            format!("{pid} is this heaplens process itself"),
            "give the PID of the Python process to snapshot (to snapshot the current process, \
             call heaplens.snapshot() in it)",
        )
        .into());
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Some((state, start_time)) = read_stat(&proc)? else {
        return Err(no_process(pid).into());
    };
    match state {
        'Z' | 'X' | 'x' => {
            return Err(Failure::new(
                format!(
                    "process {pid} has exited (it is a zombie, waiting for its parent to reap it)"
                ),
                "give the PID of a running Python process (`pgrep -a python` lists them)",
            )
            .into())
        }
        'T' | 't' => {
            // gdb could attach, but the main thread would never reach a safe point.
            return Err(Failure::new(
                format!("process {pid} is stopped (by Ctrl-Z, SIGSTOP or a debugger)"),
                "resume it first (`kill -CONT PID`, or `fg` in its shell), then attach",
            )
            .into());
        }
        _ => {}
    }
    let status = read_status(&proc)?.ok_or_else(|| no_process(pid))?;
    if status.tracer != 0 {
        return Err(Failure::new(
            format!(
                "process {pid} is already being traced by process {} (a debugger, strace, or \
                 another heaplens attach); a process can have one tracer only",
                status.tracer
            ),
            "detach the other tracer (or wait for the other heaplens attach to finish), then \
             try again",
        )
        .into());
    }
    let own = read_status(Path::new("/proc/self"))?.context("cannot read /proc/self/status")?;
    let uid = status.uids.first().copied().unwrap_or(u32::MAX);
    let gid = status.gids.first().copied().unwrap_or(u32::MAX);
    let access = Access {
        our_uid: own.uids.first().copied().unwrap_or(u32::MAX),
        target_uids: status.uids.clone(),
        has_cap_sys_ptrace: own.cap_eff & (1 << CAP_SYS_PTRACE) != 0,
        yama_scope: read_yama_scope(),
    };
    if let Some(reason) = access.refusal() {
        return Err(permission_failure(pid, &reason).into());
    }
    let maps = match std::fs::read_to_string(proc.join("maps")) {
        Ok(maps) => maps,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_process(pid).into()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(permission_failure(
                pid,
                "this user may not read its memory map (/proc/PID/maps), so it may not trace it \
                 either",
            )
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}/maps", proc.display())),
    };
    let exe = std::fs::read_link(proc.join("exe")).ok();
    // An unversioned python goes on: the target reports its version with any failure.
    let python = match find_python(&maps, exe.as_deref()) {
        Python::Version(major, minor) => Some((major, minor)),
        Python::Unversioned => None,
        Python::No => {
            let program = exe
                .as_deref()
                .map(|e| e.display().to_string())
                .unwrap_or_else(|| status.name.clone());
            return Err(Failure::new(
                format!(
                    "process {pid} ({}) is not a Python process: no libpython3.x is loaded in it \
                     and its program, {program}, is not python3.x",
                    status.name
                ),
                "give the PID of a Python process (`pgrep -a python` lists them; for a server \
                 with workers, the PID of a worker)",
            )
            .into());
        }
    };
    if let Some(refusal) = python::fence(pid, python, supported) {
        return Err(refusal.into());
    }
    let root = if same_mount_namespace(&proc) {
        PathBuf::from("/")
    } else {
        proc.join("root")
    };
    Ok(Target {
        pid,
        name: status.name,
        uid,
        gid,
        root,
        python,
        exe,
        start_time,
    })
}

impl Target {
    /// The target's program as this process reaches it (under [`Target::root`]), when it still
    /// exists.
    pub fn program(&self) -> Option<PathBuf> {
        let exe = self.exe.as_deref()?;
        let path = self.root.join(exe.strip_prefix("/").unwrap_or(exe));
        // A program replaced since it started (an upgrade) reads as `/usr/bin/python3.14
        // (deleted)`.
        path.is_file().then_some(path)
    }

    /// Whether the target is still the process that was inspected, and has not exited.
    pub fn is_alive(&self) -> bool {
        matches!(
            read_stat(Path::new(&format!("/proc/{}", self.pid))),
            Ok(Some((state, start))) if start == self.start_time && !matches!(state, 'Z' | 'X' | 'x')
        )
    }

    /// The failure for gdb's `ptrace: Operation not permitted.`: the same explanation as the
    /// checks give, with the reasons that apply here.
    pub fn ptrace_refused(&self) -> Failure {
        let reason = match read_yama_scope() {
            Some(scope) if scope > 0 => format!(
                "the kernel refused to let gdb trace it (kernel.yama.ptrace_scope = {scope}, or \
                 a container without CAP_SYS_PTRACE)"
            ),
            _ => "the kernel refused to let gdb trace it (a container without CAP_SYS_PTRACE, \
                  a security module, or a program that made itself undumpable)"
                .to_string(),
        };
        permission_failure(self.pid, &reason)
    }
}

fn no_process(pid: u32) -> Failure {
    Failure::new(
        format!("no process {pid}"),
        "check the PID: `pgrep -a python` lists the Python processes (in a container, run \
         heaplens inside it, or use the PID the host sees)",
    )
}

fn permission_failure(pid: u32, reason: &str) -> Failure {
    Failure::new(
        format!("no permission to trace process {pid}: {reason}"),
        "run heaplens as the user the process runs as, or with sudo; in a container, start it \
         with --cap-add=SYS_PTRACE; where kernel.yama.ptrace_scope is 1, \
         `sudo sysctl kernel.yama.ptrace_scope=0` allows tracing until the next reboot",
    )
}

/// The state letter and the start time from `/proc/PID/stat`, or None when there is no such
/// process.
fn read_stat(proc: &Path) -> Result<Option<(char, u64)>> {
    let text = match std::fs::read_to_string(proc.join("stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ESRCH: the process exited while the file was read.
        Err(e) if e.raw_os_error() == Some(3) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}/stat", proc.display())),
    };
    Ok(parse_stat(&text))
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

fn read_status(proc: &Path) -> Result<Option<Status>> {
    match std::fs::read_to_string(proc.join("status")) {
        Ok(text) => Ok(Some(parse_status(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(3) => {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}/status", proc.display())),
    }
}

fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    let ids = |v: &str| {
        v.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => status.name = value.to_string(),
            "Uid" => status.uids = ids(value),
            "Gid" => status.gids = ids(value),
            "TracerPid" => status.tracer = value.parse().unwrap_or(0),
            "CapEff" => status.cap_eff = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    status
}

/// Yama's ptrace restriction, when the kernel has Yama.
fn read_yama_scope() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Who may trace whom, as the kernel decides it for `PTRACE_ATTACH` (`ptrace_may_access` and
/// Yama), reduced to what `/proc` shows.
#[derive(Debug)]
struct Access {
    our_uid: u32,
    target_uids: Vec<u32>,
    has_cap_sys_ptrace: bool,
    yama_scope: Option<u8>,
}

impl Access {
    /// Why tracing will be refused, or None when it should work.
    fn refusal(&self) -> Option<String> {
        if self.yama_scope == Some(3) {
            return Some(
                "tracing is disabled on this machine (kernel.yama.ptrace_scope = 3, which only a \
                 reboot resets)"
                    .to_string(),
            );
        }
        if self.has_cap_sys_ptrace {
            return None;
        }
        // Without the capability, every uid of the target (real, effective, saved) must be ours.
        if let Some(&other) = self
            .target_uids
            .iter()
            .take(3)
            .find(|&&uid| uid != self.our_uid)
        {
            return Some(format!(
                "it runs as uid {other} and heaplens as uid {}, without CAP_SYS_PTRACE",
                self.our_uid
            ));
        }
        match self.yama_scope {
            Some(2) => Some(
                "only a process with CAP_SYS_PTRACE may trace (kernel.yama.ptrace_scope = 2)"
                    .to_string(),
            ),
            // gdb is a child of heaplens, never an ancestor of the target.
            Some(1) => Some(
                "kernel.yama.ptrace_scope = 1 lets a process trace only its own descendants, \
                 unless it has CAP_SYS_PTRACE"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// What the memory map and the program say about Python.
#[derive(Debug, PartialEq, Eq)]
enum Python {
    Version(u32, u32),
    /// A program called `python` or `python3` with no libpython: a Python whose version the
    /// name does not tell (gdb and the target will).
    Unversioned,
    No,
}

fn find_python(maps: &str, exe: Option<&Path>) -> Python {
    // A libpython mapped in the process is the interpreter running (an embedding program such as
    // uWSGI has no python in its name); a statically linked python has none, so its program's
    // name tells.
    for line in maps.lines() {
        // The path is the sixth field and may contain spaces.
        let Some(path) = line.splitn(6, char::is_whitespace).nth(5) else {
            continue;
        };
        let path = path.trim().trim_end_matches(" (deleted)");
        let name = path.rsplit('/').next().unwrap_or(path);
        if let Some(rest) = name.strip_prefix("libpython") {
            if let Some(version) = parse_version(rest) {
                return Python::Version(version.0, version.1);
            }
        }
    }
    let exe_name = exe
        .and_then(|e| e.file_name())
        .and_then(|n| n.to_str())
        .map(|n| n.trim_end_matches(" (deleted)"))
        .unwrap_or("");
    if let Some(rest) = exe_name.strip_prefix("python") {
        if let Some((major, minor)) = parse_version(rest) {
            return Python::Version(major, minor);
        }
        if rest.is_empty() || rest == "3" {
            return Python::Unversioned;
        }
    }
    Python::No
}

/// `3.11.so.1.0`, `3.11d.so`, `3.12t`, `3.11` → (3, minor).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, rest) = text.split_once('.')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let minor = rest[..digits].parse().ok()?;
    // After the version only an ABI flag (d, t, m, u) and/or `.so...` may follow.
    let tail = rest[digits..].trim_start_matches(['d', 't', 'm', 'u']);
    if !(tail.is_empty() || tail.starts_with(".so")) {
        return None;
    }
    Some((major.parse().ok()?, minor))
}

fn same_mount_namespace(proc: &Path) -> bool {
    match (
        std::fs::read_link(proc.join("ns/mnt")),
        std::fs::read_link("/proc/self/ns/mnt"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        // Unreadable: assume the common case; a wrong guess gives the target a path it cannot
        // open, which it reports as nothing more than a timeout, harmlessly.
        _ => true,
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::Target;
    use std::path::PathBuf;

    /// A target for tests of other modules: no such process.
    pub fn target(pid: u32) -> Target {
        Target {
            pid,
            name: "python3".to_string(),
            uid: 1000,
            gid: 1000,
            root: PathBuf::from("/"),
            python: Some((3, 11)),
            exe: Some(PathBuf::from("/usr/bin/python3.11")),
            start_time: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/python3.11
7f0000000000-7f0000100000 r-xp 00000000 08:01 99 /opt/py/lib/libpython3.12.so.1.0
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";

    #[test]
    fn a_mapped_libpython_tells_the_version() {
        assert_eq!(find_python(MAPS, None), Python::Version(3, 12));
    }

    #[test]
    fn a_static_python_is_known_by_its_program_name() {
        let maps = "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1 /usr/bin/python3.11\n";
        let exe = Path::new("/usr/bin/python3.11");
        assert_eq!(find_python(maps, Some(exe)), Python::Version(3, 11));
        let exe = Path::new("/usr/local/bin/python3.13t (deleted)");
        assert_eq!(find_python("", Some(exe)), Python::Version(3, 13));
        assert_eq!(
            find_python("", Some(Path::new("/x/python3"))),
            Python::Unversioned
        );
    }

    #[test]
    fn other_programs_are_not_python() {
        let maps = "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1 /usr/bin/sleep\n\
                    7f0000000000-7f0000100000 r-xp 00000000 08:01 9 /lib/libc.so.6\n";
        assert_eq!(
            find_python(maps, Some(Path::new("/usr/bin/sleep"))),
            Python::No
        );
        // Names that only start like python.
        assert_eq!(
            find_python("", Some(Path::new("/bin/pythonic"))),
            Python::No
        );
        assert_eq!(
            find_python("", Some(Path::new("/bin/python3.11-config"))),
            Python::No
        );
    }

    #[test]
    fn versions_parse_with_abi_flags_and_so_suffixes() {
        assert_eq!(parse_version("3.11.so.1.0"), Some((3, 11)));
        assert_eq!(parse_version("3.11d.so"), Some((3, 11)));
        assert_eq!(parse_version("3.9"), Some((3, 9)));
        assert_eq!(parse_version("3.x"), None);
        assert_eq!(parse_version("3.11-gdb.py"), None);
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "42 (we ird) (name)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 \
                    1000 10 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
        assert_eq!(parse_stat("42 (x) Z"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_gives_ids_tracer_and_capabilities() {
        let status = "Name:\tpython3\nState:\tS (sleeping)\nTracerPid:\t77\n\
                      Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n\
                      CapEff:\t00000000a80425fb\n";
        let s = parse_status(status);
        assert_eq!(s.name, "python3");
        assert_eq!(s.uids, vec![1000; 4]);
        assert_eq!(s.gids, vec![100; 4]);
        assert_eq!(s.tracer, 77);
        assert_eq!(s.cap_eff & (1 << CAP_SYS_PTRACE), 0);
    }

    fn access(our_uid: u32, target_uid: u32, cap: bool, yama: Option<u8>) -> Access {
        Access {
            our_uid,
            target_uids: vec![target_uid; 4],
            has_cap_sys_ptrace: cap,
            yama_scope: yama,
        }
    }

    #[test]
    fn the_same_user_may_trace_without_yama() {
        assert_eq!(access(1000, 1000, false, None).refusal(), None);
        assert_eq!(access(1000, 1000, false, Some(0)).refusal(), None);
    }

    #[test]
    fn another_users_process_needs_cap_sys_ptrace() {
        let why = access(1000, 33, false, Some(0)).refusal().unwrap();
        assert!(why.contains("uid 33") && why.contains("uid 1000"), "{why}");
        assert_eq!(access(0, 33, true, Some(1)).refusal(), None);
    }

    #[test]
    fn yama_scopes_are_explained() {
        let why = access(1000, 1000, false, Some(1)).refusal().unwrap();
        assert!(why.contains("ptrace_scope = 1"), "{why}");
        let why = access(1000, 1000, false, Some(2)).refusal().unwrap();
        assert!(why.contains("ptrace_scope = 2"), "{why}");
        // Scope 3 refuses even root with the capability.
        let why = access(0, 0, true, Some(3)).refusal().unwrap();
        assert!(why.contains("ptrace_scope = 3"), "{why}");
    }

    #[test]
    fn a_missing_process_is_reported_by_pid() {
        // PIDs are below pid_max, which is at most 2^22.
        let e = inspect(u32::MAX - 1, &[(3, 11)]).unwrap_err();
        assert_eq!(e.to_string(), format!("no process {}", u32::MAX - 1));
        assert!(super::super::hint(&e).unwrap().contains("pgrep"));
    }

    #[test]
    fn this_process_is_refused() {
        let e = inspect(std::process::id(), &[(3, 11)]).unwrap_err();
        assert!(e.to_string().contains("this heaplens process itself"));
    }
}
