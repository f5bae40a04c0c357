//! The files `heaplens attach` exchanges with the target, in a private directory: the request,
//! the script the target runs, its result and the snapshot; and the wait for the result.
//!
//! Not here: how the target is made to run the script ([`super::remote_exec`], [`super::gdb`]).
//!
//! The directory (mode 0700, owned by the target's user) holds:
//! - `attach.py`: `python/heaplens/_attach_target.py`, compiled into this crate so that the
//!   script always speaks this command line's protocol, whatever heaplens the target imports;
//! - `bootstrap.py`: the bootstrap (below), the file `sys.remote_exec` has the target read;
//! - `request`: `key: value` lines (`pid`, `action`, `python_path`), written aside and renamed,
//!   so the target never reads half of it;
//! - then, written by the target: `claimed` (the request, renamed when the target takes it),
//!   `snapshot`, and `result` (`key: value` lines, an empty line, an error message).
//!
//! Cancelling is deleting `request`: the target's rename and this deletion race, and exactly one
//! wins. If the rename won, the snapshot is under way and is waited for. If the deletion wins,
//! the target will find nothing when it runs (later, or never). Through gdb, the bootstrap is in
//! the target's memory, and the directory is removed at once: a late run finds no `attach.py`
//! and does nothing. Through `sys.remote_exec`, the target reads `bootstrap.py` when it runs, and
//! a missing file would be reported on its stderr, so the directory stays, without `request`,
//! and the late run of `attach.py`, finding no request, removes it.
//!
//! The bootstrap runs in a namespace of the target's: its `__main__` (that is what gdb's
//! `PyRun_SimpleString` does), or a fresh dictionary (`sys.remote_exec`). It binds no name there:
//! it compiles a second stage and runs it in a fresh dictionary; that stage reads `attach.py` and
//! runs it in another one, whose `__name__` is `__heaplens_attach__`, and swallows every
//! exception, because an exception escaping a pending call surfaces in the target as a
//! `SystemError` in whatever code its main thread was running (and one escaping a
//! `sys.remote_exec` script is printed on its stderr).

use super::target::Target;
use super::{Failure, DIRECTORY_PREFIX};
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The script the target runs.
const SCRIPT: &str = include_str!("../../../../../python/heaplens/_attach_target.py");

/// How often the directory is looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The private directory shared with one target for one snapshot. Dropping it removes it,
/// unless the target may still be writing into it.
pub struct Exchange {
    /// The directory as this process reaches it.
    ours: PathBuf,
    /// The same directory as the target sees it (different when it is in a container).
    theirs: PathBuf,
    /// A directory of this process's own, for gdb's command file and output: gdb runs with
    /// this process's rights, and the shared directory may belong to the target's user, who
    /// must not be able to change what gdb is told.
    scratch: PathBuf,
    keep: bool,
    /// Whether the target was sent the path of `bootstrap.py` (`sys.remote_exec`), which it
    /// reads when it runs it: a withdrawn request then leaves the directory for that run.
    sent_by_path: bool,
}

/// What the target answered.
#[derive(Debug)]
pub struct Answer {
    pub fields: BTreeMap<String, String>,
    pub message: String,
}

impl Exchange {
    /// Creates the directory, with the script and the request, for a snapshot of `target`.
    pub fn create(target: &Target, python_path: Option<&Path>) -> Result<Exchange> {
        let (ours_base, theirs_base) = if target.root == Path::new("/") {
            let tmp = std::env::temp_dir();
            (tmp.clone(), tmp)
        } else {
            // Our TMPDIR means nothing in the target's mount namespace; its /tmp does.
            (target.root.join("tmp"), PathBuf::from("/tmp"))
        };
        let name = unique_name(target.pid);
        let scratch = std::env::temp_dir().join(format!("{name}-gdb"));
        create_private_dir(&scratch)?;
        let mut exchange = Exchange {
            ours: ours_base.join(&name),
            theirs: theirs_base.join(&name),
            scratch,
            // Nothing to remove until the shared directory exists.
            keep: true,
            sent_by_path: false,
        };
        create_private_dir(&exchange.ours)?;
        exchange.keep = false;
        exchange.write_private("attach.py", SCRIPT.as_bytes())?;
        exchange.write_private("bootstrap.py", &exchange.bootstrap())?;
        let mut request = format!("pid: {}\naction: snapshot\npython_path: ", target.pid);
        if let Some(path) = python_path {
            let path = path.to_str().with_context(|| {
                format!("the Python path {} is not valid UTF-8", path.display())
            })?;
            if path.contains('\n') {
                bail!("the Python path {path:?} contains a line break");
            }
            request.push_str(path);
        }
        request.push('\n');
        exchange.write_private("request.part", request.as_bytes())?;
        exchange.give_to(target)?;
        let part = exchange.ours.join("request.part");
        std::fs::rename(&part, exchange.ours.join("request"))
            .with_context(|| format!("cannot rename {}", part.display()))?;
        Ok(exchange)
    }

    /// A private directory for gdb's files.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The snapshot the target wrote.
    pub fn snapshot(&self) -> PathBuf {
        self.ours.join("snapshot")
    }

    /// The Python source that makes the target run `attach.py`.
    pub fn bootstrap(&self) -> Vec<u8> {
        bootstrap(self.theirs.as_os_str().as_bytes())
    }

    /// The shared directory, as this process reaches it and as the target sees it.
    pub fn directories(&self) -> (&Path, &Path) {
        (&self.ours, &self.theirs)
    }

    /// `bootstrap.py`, as the target sees it.
    pub fn bootstrap_file(&self) -> PathBuf {
        self.theirs.join("bootstrap.py")
    }

    /// Records that the target was sent the path of `bootstrap.py`, which it reads when it runs
    /// it (`sys.remote_exec`).
    pub fn sent_by_path(&mut self) {
        self.sent_by_path = true;
    }

    fn write_private(&self, name: &str, contents: &[u8]) -> Result<()> {
        use std::io::Write;
        let path = self.ours.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(contents)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// When heaplens runs as root and the target does not, the target must be able to read the
    /// request and write its answer: the directory becomes the target user's.
    fn give_to(&self, target: &Target) -> Result<()> {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 || target.uid == 0 {
            return Ok(());
        }
        for entry in ["attach.py", "bootstrap.py", "request.part", ""] {
            let path = self.ours.join(entry);
            std::os::unix::fs::chown(&path, Some(target.uid), Some(target.gid))
                .with_context(|| format!("cannot give {} to uid {}", path.display(), target.uid))?;
        }
        Ok(())
    }

    /// Waits for the target's answer. Until the target claims the request, waits at most
    /// `timeout`, then cancels it; once claimed, waits while the target is alive, up to
    /// `snapshot_limit`.
    pub fn wait(
        &mut self,
        target: &Target,
        timeout: Duration,
        snapshot_limit: Duration,
        progress: &Progress,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Answer> {
        let pid = target.pid;
        let started = Instant::now();
        let mut claimed_at: Option<Instant> = None;
        let mut waiting =
            progress.waiting(format!("waiting for process {pid} to reach a safe point"));
        loop {
            let result = self.ours.join("result");
            if result.exists() {
                waiting.finish();
                let text = std::fs::read_to_string(&result)
                    .with_context(|| format!("cannot read {}", result.display()))?;
                return Ok(parse_answer(&text));
            }
            if claimed_at.is_none() && self.ours.join("claimed").exists() {
                claimed_at = Some(Instant::now());
                waiting.set(format!("process {pid} is taking the snapshot"));
            }
            if !target.is_alive() {
                waiting.finish();
                // It may have exited mid-snapshot: nothing in the directory is of use any more.
                bail!(Failure::new(
                    format!("process {pid} exited before it answered"),
                    "check why the process exited (its log); nothing of heaplens is left in it",
                ));
            }
            let stop = interrupted();
            match claimed_at {
                None if stop || started.elapsed() > timeout => {
                    match std::fs::remove_file(self.ours.join("request")) {
                        Ok(()) => {
                            waiting.finish();
                            // The target may still read bootstrap.py: the script removes the
                            // directory when it runs and finds no request.
                            let left = self.sent_by_path.then(|| {
                                self.keep = true;
                                self.theirs.as_path()
                            });
                            return Err(if stop {
                                Failure::new(
                                    format!(
                                        "interrupted; the request to process {pid} was \
                                         withdrawn and nothing was changed{}",
                                        left.map(removed_later).unwrap_or_default()
                                    ),
                                    "run it again when you are ready",
                                )
                            } else {
                                timed_out(pid, timeout, left)
                            }
                            .into());
                        }
                        // The target claimed it meanwhile: the snapshot is under way.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            claimed_at = Some(Instant::now());
                            waiting.set(format!("process {pid} is taking the snapshot"));
                        }
                        Err(e) => {
                            // The request could not be withdrawn: the target may still run it,
                            // so its directory must stay.
                            self.keep = true;
                            return Err(e).with_context(|| {
                                format!("cannot cancel the request in {}", self.ours.display())
                            });
                        }
                    }
                }
                Some(at) if at.elapsed() > snapshot_limit => {
                    waiting.finish();
                    self.keep = true;
                    bail!(Failure::new(
                        format!(
                            "process {pid} started the snapshot {} s ago and has not finished; \
                             it may still finish, into {}",
                            at.elapsed().as_secs(),
                            self.ours.display()
                        ),
                        "a heap of tens of millions of objects takes minutes; check the process \
                         with `top`, and remove the directory when it is done",
                    ));
                }
                _ => {}
            }
            waiting.tick();
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.ours);
        }
    }
}

/// Creates `path`, mode 0700; fails if it exists (so no one else can have prepared it).
fn create_private_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create the directory {}", path.display()))
}

/// What a withdrawn request sent by path leaves, until the target runs: `dir` (as the target
/// sees it).
fn removed_later(dir: &Path) -> String {
    format!(
        " (its main thread will remove {} when it next runs Python code)",
        dir.display()
    )
}

fn timed_out(pid: u32, timeout: Duration, left: Option<&Path>) -> Failure {
    Failure::new(
        format!(
            "process {pid} did not reach a safe point within {} s: its main thread has not run \
             Python code in that time (it is blocked in a long C call or a sleep, or holds the \
             GIL in an extension). Nothing was changed: the request was withdrawn, and when the \
             main thread runs Python code again it will find nothing to do{}",
            timeout.as_secs(),
            left.map(removed_later).unwrap_or_default()
        ),
        "try again while the process is busy (for a server, while it handles requests), or with \
         a longer --timeout; heaplens needs the main thread to run Python code",
    )
}

/// A new name for the directory: the target's PID, ours, and the time, so that two attaches
/// at once never share one. (Creating it fails if it exists: no other user can plant it.)
fn unique_name(pid: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{DIRECTORY_PREFIX}{pid}-{}-{nanos:x}", std::process::id())
}

/// A Python bytes literal of `bytes`: printable ASCII as is (but quotes and backslashes),
/// the rest escaped; any file name survives, decoded with `os.fsdecode`.
fn bytes_literal(bytes: &[u8]) -> String {
    let mut literal = String::from("b'");
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'\'' && b != b'\\' || b == b' ' {
            literal.push(b as char);
        } else {
            literal.push_str(&format!("\\x{b:02x}"));
        }
    }
    literal.push('\'');
    literal
}

/// The bootstrap that runs the script `script` in the directory `dir` (as the target sees
/// them): a one-line first stage, the source `PyRun_SimpleString` runs, that compiles and runs
/// the second stage in a fresh namespace.
///
/// Two stages, because the parser's arena of what `PyRun_SimpleString` runs (a list of every
/// token and constant of its source, held from C) lives until that source has finished, so it
/// is in the snapshot: the first stage is kept to a few tokens, so that it stays below what a
/// diff reports as growth. The second stage, compiled by `compile` (whose arena is freed when
/// it returns), has the filename `DIR/bootstrap`, so that its frame is recognised as attach's
/// (see [`heaplens_core::own::is_own_frame`]) like the script's.
fn bootstrap(dir: &[u8]) -> Vec<u8> {
    let mut script = dir.to_vec();
    script.extend_from_slice(b"/attach.py");
    let mut filename = dir.to_vec();
    filename.extend_from_slice(b"/bootstrap");
    let second = format!(
        "try:\n\
         \x20   import io, os\n\
         \x20   path = os.fsdecode({script})\n\
         \x20   with io.open_code(path) as file:\n\
         \x20       code = compile(file.read(), path, 'exec')\n\
         \x20   exec(code, {{'__name__': '__heaplens_attach__', '__file__': path}})\n\
         except BaseException:\n\
         \x20   pass\n",
        script = bytes_literal(&script)
    );
    format!(
        "exec(compile({},{},'exec'),{{}})\n",
        bytes_literal(second.as_bytes()),
        bytes_literal(&filename)
    )
    .into_bytes()
}

/// Parses `key: value` lines, an empty line, then a free-form message.
fn parse_answer(text: &str) -> Answer {
    let mut fields = BTreeMap::new();
    let mut message = String::new();
    let mut lines = text.split_inclusive('\n');
    for line in lines.by_ref() {
        let line = line.trim_end_matches('\n');
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(": ") {
            fields.insert(key.to_string(), value.to_string());
        }
    }
    for line in lines {
        message.push_str(line);
    }
    Answer {
        fields,
        message: message.trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_fields_then_a_message() {
        let a = parse_answer("status: error\nkind: import\npython: 3.11.7\n\nNo module named 'heaplens'\nsecond line\n");
        assert_eq!(a.fields["status"], "error");
        assert_eq!(a.fields["kind"], "import");
        assert_eq!(a.message, "No module named 'heaplens'\nsecond line");
        let a = parse_answer("status: ok\nobjects: 12\n\n");
        assert_eq!(a.fields["objects"], "12");
        assert_eq!(a.message, "");
        // Truncated or garbage answers parse to whatever is there.
        assert!(parse_answer("").fields.is_empty());
        assert!(parse_answer("\u{0}\u{1}garbage").fields.is_empty());
    }

    #[test]
    fn bytes_literals_quote_anything() {
        assert_eq!(
            bytes_literal(b"/tmp/a b'\\\n\xff"),
            r"b'/tmp/a b\x27\x5c\x0a\xff'"
        );
    }

    #[test]
    fn the_bootstrap_is_one_short_line_holding_the_second_stage() {
        let source = String::from_utf8(bootstrap(b"/tmp/heaplens-attach-1'")).unwrap();
        assert_eq!(source.lines().count(), 1);
        assert!(source.starts_with("exec(compile(b'try:\\x0a"), "{source}");
        assert!(source.ends_with(",b'/tmp/heaplens-attach-1\\x27/bootstrap','exec'),{})\n"));
        // The script's path is a literal inside the second stage's literal.
        assert!(source.contains(r"os.fsdecode(b\x27/tmp/heaplens-attach-1\x5cx27/attach.py\x27)"));
        assert!(source.len() < super::super::gdb::PAGE);
    }

    #[test]
    fn frames_of_the_script_are_recognised() {
        let dir = std::env::temp_dir().join(unique_name(42));
        let frame = format!("_main ({}:132)", dir.join("attach.py").display());
        assert!(heaplens_core::own::is_own_frame(&frame), "{frame}");
        let bootstrap = format!("<module> ({}:1)", dir.join("bootstrap").display());
        assert!(heaplens_core::own::is_own_frame(&bootstrap), "{bootstrap}");
        assert!(!heaplens_core::own::is_own_frame(
            "_main (/srv/app/attach.py:3)"
        ));
    }

    #[test]
    fn a_withdrawn_request_sent_by_path_says_who_removes_the_directory() {
        let dir = Path::new("/tmp/heaplens-attach-1-2-3");
        let f = timed_out(42, Duration::from_secs(3), Some(dir));
        assert!(f.to_string().contains("within 3 s"), "{f}");
        assert!(
            f.to_string().ends_with(
                "it will find nothing to do (its main thread will remove \
                 /tmp/heaplens-attach-1-2-3 when it next runs Python code)"
            ),
            "{f}"
        );
        let f = timed_out(42, Duration::from_secs(3), None);
        assert!(f.to_string().ends_with("it will find nothing to do"), "{f}");
    }

    #[test]
    fn the_script_is_the_packages() {
        assert!(SCRIPT.contains("__heaplens_attach__"));
    }
}
