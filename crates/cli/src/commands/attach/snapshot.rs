//! One snapshot of the target, from the request to the file saved where the user asked: the
//! steps of [`super::protocol`] and of the way in ([`super::remote_exec`] or [`super::gdb`]) in
//! order, and the target's answer turned into a saved file or a [`Failure`].
//!
//! Not here: the checks before any of it ([`super::target`]), what is done with the snapshot
//! (reporting, comparing: [`super::run`]).

use super::python::{self, NotImportable};
use super::remote_exec::{self, Unavailable};
use super::target::Target;
use super::{gdb, protocol, Failure};
use crate::progress::Progress;
use anyhow::{Context, Result};
use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One snapshot taken and saved.
pub struct Saved {
    pub path: PathBuf,
    pub objects: u64,
    pub seconds: f64,
}

/// The heaplens offered to a target that has none of its own.
pub struct Offer<'a> {
    /// The directory to import it from: `--python-path`, or the running command's when the
    /// target runs the same Python version.
    pub python_path: Option<&'a Path>,
    /// Whether that is the user's `--python-path`.
    pub python_path_given: bool,
    /// The version of the Python running this command, when known.
    pub ours: Option<(u8, u8)>,
}

/// How the target is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    RemoteExec,
    Gdb,
}

/// What every snapshot of one `heaplens attach` shares.
pub struct Session<'a> {
    target: &'a Target,
    offer: Offer<'a>,
    timeout: Duration,
    progress: &'a Progress,
    /// Whether the user asked to stop (Ctrl-C), checked while waiting.
    interrupted: &'a dyn Fn() -> bool,
    /// The way that reached the target last (announced once), so that a second snapshot
    /// (`--diff`) does not try `sys.remote_exec` again where it failed.
    way: Cell<Option<Way>>,
    gdb: OnceCell<PathBuf>,
}

impl<'a> Session<'a> {
    pub fn new(
        target: &'a Target,
        offer: Offer<'a>,
        timeout: Duration,
        progress: &'a Progress,
        interrupted: &'a dyn Fn() -> bool,
    ) -> Session<'a> {
        Session {
            target,
            offer,
            timeout,
            progress,
            interrupted,
            way: Cell::new(None),
            gdb: OnceCell::new(),
        }
    }

    /// Takes a snapshot and saves it to `destination`, or to a new file with the default name
    /// in the current directory.
    pub fn take(&self, destination: Option<&Path>) -> Result<Saved> {
        let target = self.target;
        let mut exchange = protocol::Exchange::create(target, self.offer.python_path)?;
        self.reach(&mut exchange)?;
        // Once claimed, a snapshot takes about a second per million objects; a generous bound
        // only guards against a target that stopped in a way /proc does not show.
        let snapshot_limit = Duration::from_secs(600).max(self.timeout);
        let answer = exchange.wait(
            target,
            self.timeout,
            snapshot_limit,
            self.progress,
            self.interrupted,
        )?;
        let field = |key: &str| answer.fields.get(key).map(String::as_str);
        let pid = target.pid;
        if field("status") != Some("ok") {
            if field("kind") == Some("import") {
                let program = target.exe.as_deref().and_then(Path::to_str);
                return Err(NotImportable {
                    pid,
                    release: field("python"),
                    version: target.python,
                    executable: field("executable").filter(|e| !e.is_empty()),
                    program,
                    ours: self.offer.ours,
                    python_path_given: self.offer.python_path_given,
                    detail: &answer.message,
                }
                .failure()
                .into());
            }
            return Err(refusal(pid, field("kind"), field("python"), &answer.message).into());
        }
        let objects = field("objects").and_then(|n| n.parse().ok()).unwrap_or(0);
        let seconds = field("seconds").and_then(|n| n.parse().ok()).unwrap_or(0.0);
        let path = match destination {
            Some(path) => path.to_path_buf(),
            None => unused_name(&default_name(pid, std::time::SystemTime::now())),
        };
        move_file(&exchange.snapshot(), &path)?;
        Ok(Saved {
            path,
            objects,
            seconds,
        })
    }

    /// Makes the target run the bootstrap: through `sys.remote_exec` where its Python has it,
    /// else (or when that fails) through gdb. Says which, the first time.
    fn reach(&self, exchange: &mut protocol::Exchange) -> Result<()> {
        let target = self.target;
        let pid = target.pid;
        let mut why_not = None;
        if python::has_remote_exec(target.python) && self.way.get() != Some(Way::Gdb) {
            if self.way.get().is_none() {
                self.progress
                    .note(&format!("reaching process {pid} through sys.remote_exec"));
            }
            self.way.set(Some(Way::RemoteExec));
            match remote_exec::queue(
                target,
                &exchange.bootstrap_file(),
                exchange.directories(),
                self.timeout,
                self.progress,
            ) {
                Ok(()) => {
                    exchange.sent_by_path();
                    return Ok(());
                }
                Err(Unavailable(why)) => {
                    self.progress.note(&format!(
                        "sys.remote_exec cannot reach process {pid}: {why}; trying gdb"
                    ));
                    why_not = Some(why);
                }
            }
        }
        let gdb = match self.gdb.get() {
            Some(gdb) => gdb,
            None => {
                let found = gdb::find().map_err(|e| match &why_not {
                    Some(why) => anyhow::Error::from(Failure::new(
                        format!(
                            "sys.remote_exec cannot reach process {pid} ({why}), and gdb, the \
                             other way in, is not installed"
                        ),
                        "install gdb (apt-get install gdb, dnf install gdb, or apk add gdb), or \
                         start the process with remote debugging enabled (without \
                         PYTHON_DISABLE_REMOTE_DEBUG or -X disable-remote-debug)",
                    )),
                    None => e,
                })?;
                self.gdb.get_or_init(|| found)
            }
        };
        if self.way.get() != Some(Way::Gdb) {
            self.progress
                .note(&format!("reaching process {pid} through gdb"));
            self.way.set(Some(Way::Gdb));
        }
        gdb::inject(
            gdb,
            target,
            &exchange.bootstrap(),
            exchange.scratch(),
            self.timeout,
            self.progress,
        )
    }
}

/// The failure for an error answer of the target (but heaplens not importable: see
/// [`NotImportable`]).
fn refusal(pid: u32, kind: Option<&str>, python: Option<&str>, message: &str) -> Failure {
    let message = message.trim();
    let python = python.unwrap_or("?");
    match kind {
        Some("interrupted") => Failure::new(
            format!(
                "process {pid} handled a signal while taking the snapshot ({message}); the \
                 snapshot was abandoned"
            ),
            "try again",
        ),
        Some("snapshot") => Failure::new(
            format!("the snapshot failed in process {pid} (Python {python}): {message}"),
            "this is a heaplens bug if the message does not explain it: please report it",
        ),
        _ => Failure::new(
            format!("process {pid} answered: {message}"),
            "use the same heaplens version on both sides",
        ),
    }
}

/// Moves `from` to `to`, across filesystems too.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    // The target wrote it: it must be a plain file, not a link to one this user may read and
    // the target's user may not.
    let is_file = std::fs::symlink_metadata(from).is_ok_and(|m| m.file_type().is_file());
    if !is_file {
        anyhow::bail!(
            "the target's snapshot {} is not a regular file",
            from.display()
        );
    }
    // A symbolic link at `to` is written through to its target, and anything but a regular
    // file (a FIFO, a device) is refused rather than replaced (as every heaplens save does).
    let writing = || crate::output::Writing::file(to);
    let to = &heaplens_core::output::writable_destination(to).with_context(writing)?;
    if std::fs::rename(from, to).is_err() {
        std::fs::copy(from, to).with_context(writing)?;
        let _ = std::fs::remove_file(from);
    }
    // As root, for a target of another user: the file is the user's who asked for it.
    // SAFETY: these calls have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        let _ = std::os::unix::fs::chown(to, Some(uid), Some(gid));
    }
    Ok(())
}

/// `name`, or `name` with `-2`, `-3`... before its extension if taken (two snapshots within one
/// second, with --diff).
fn unused_name(name: &str) -> PathBuf {
    let stem = name.trim_end_matches(".hlsnap");
    std::iter::once(PathBuf::from(name))
        .chain((2..).map(|n| PathBuf::from(format!("{stem}-{n}.hlsnap"))))
        .find(|p| !p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `heaplens-PID-YYYYMMDDTHHMMSSZ.hlsnap`.
pub(super) fn default_name(pid: u32, now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "heaplens-{pid}-{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z.hlsnap",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_carry_the_pid_and_the_utc_time() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_709_251_199);
        assert_eq!(default_name(42, t), "heaplens-42-20240229T235959Z.hlsnap");
        assert_eq!(
            default_name(7, std::time::UNIX_EPOCH),
            "heaplens-7-19700101T000000Z.hlsnap"
        );
    }

    #[test]
    fn dates_are_right_across_leap_years() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
    }

    #[test]
    fn other_answers_are_reported_with_the_targets_words() {
        let f = refusal(42, Some("snapshot"), Some("3.12.1"), "CaptureError: x\n");
        assert_eq!(
            f.to_string(),
            "the snapshot failed in process 42 (Python 3.12.1): CaptureError: x"
        );
        let f = refusal(42, None, None, "garbage");
        assert!(f.to_string().contains("garbage"));
        assert!(f.hint.contains("same heaplens version"));
    }
}
