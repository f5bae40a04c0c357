//! Where commands write: the files a user names (`export -o`, `history -o`, `attach
//! --snapshot`, `run --snapshot-at-exit` and `--history`) and standard output.
//!
//! A named file is checked before the long work that produces it ([`check`]): a mistyped
//! directory then fails in a moment, not after the snapshot was loaded and analysed, the process
//! attached to, or the program run for an hour. Every failure to write carries a [`Writing`]
//! context, so that it says what could not be written and ends with a hint ([`hint`]), and none
//! takes the hints of a file that could not be *read*.

use anyhow::{Context, Result};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The context of a failure to write: what could not be written.
#[derive(Debug)]
pub struct Writing {
    /// The path as the user gave it; None for standard output.
    path: Option<PathBuf>,
}

impl Writing {
    pub fn file(path: &Path) -> Writing {
        Writing {
            path: Some(path.to_path_buf()),
        }
    }

    pub fn stdout() -> Writing {
        Writing { path: None }
    }
}

impl fmt::Display for Writing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "cannot write {}", path.display()),
            None => f.write_str("cannot write to standard output"),
        }
    }
}

/// Checks, without writing it, that a file can be written at `path` the way heaplens writes
/// files (see [`heaplens_core::output`]): it is a regular file or a name not taken yet (a
/// symbolic link counts as the file it leads to), in a directory that exists and in which this
/// process may create a file (tried: a permission, a read-only file system or a full inode
/// table show only then). Nothing is left behind.
pub fn check(path: &Path) -> Result<()> {
    let writing = || Writing::file(path);
    let target = heaplens_core::output::writable_destination(path).with_context(writing)?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(io::Error::new(
                ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            ))
            .with_context(writing)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!("there is no directory {}", dir.display()),
            ))
            .with_context(writing)
        }
        Err(e) => return Err(e).with_context(writing),
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0..100u32 {
        let probe = dir.join(format!(
            ".{name}.{}.{attempt}.heaplens-check",
            std::process::id()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&probe) {
            Ok(file) => {
                drop(file);
                let _ = fs::remove_file(&probe);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(writing),
        }
    }
    Ok(())
}

/// What to do about a failure to write, when it is one.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let writing = e.downcast_ref::<Writing>()?;
    for cause in e.chain() {
        if let Some(heaplens_core::Error::NotAFile { .. }) =
            cause.downcast_ref::<heaplens_core::Error>()
        {
            return Some(
                "give the name of a regular file (a symbolic link to one is written through)",
            );
        }
    }
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    Some(match (kind, &writing.path) {
        (Some(ErrorKind::StorageFull | ErrorKind::QuotaExceeded), None) => {
            "free some space where the output goes, or send it elsewhere"
        }
        (Some(ErrorKind::StorageFull | ErrorKind::QuotaExceeded), Some(_)) => {
            "free some space on that file system, or write elsewhere"
        }
        (_, None) => "check where the output goes (a full disk, a closed file?)",
        (Some(ErrorKind::NotFound | ErrorKind::NotADirectory), Some(_)) => {
            "create the directory first, or give a path in an existing one"
        }
        (Some(ErrorKind::PermissionDenied), Some(_)) => {
            "write to a directory you may create files in, or run as a user who may"
        }
        (Some(ErrorKind::ReadOnlyFilesystem), Some(_)) => {
            "that file system is read-only: write elsewhere"
        }
        (_, Some(_)) => "check the path, or write elsewhere",
    })
}

/// Standard output (or any writer) that remembers whether a write to it failed, so that the
/// failure of a command that was writing its results is said to be one of standard output.
pub struct Watched<'a, W: Write> {
    inner: &'a mut W,
    failed: bool,
}

impl<'a, W: Write> Watched<'a, W> {
    pub fn new(inner: &'a mut W) -> Self {
        Watched {
            inner,
            failed: false,
        }
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    fn watch<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            if e.kind() != ErrorKind::Interrupted {
                self.failed = true;
            }
        }
        result
    }
}

impl<W: Write> Write for Watched<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let result = self.inner.write_all(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("heaplens-cli-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn failure(path: &Path) -> (String, &'static str) {
        let e = check(path).unwrap_err();
        (format!("{e:#}"), hint(&e).expect("a hint"))
    }

    #[test]
    fn a_new_or_existing_file_in_a_writable_directory_passes_and_nothing_stays() {
        let dir = temp_dir("ok");
        check(&dir.join("new.hlsnap")).unwrap();
        fs::write(dir.join("old.hlsnap"), "x").unwrap();
        check(&dir.join("old.hlsnap")).unwrap();
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["old.hlsnap"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_directory_a_directory_and_a_device_fail_with_a_hint() {
        let dir = temp_dir("bad");
        let (message, hint) = failure(&dir.join("nodir/x.hlsnap"));
        assert!(message.contains("there is no directory"), "{message}");
        assert!(message.starts_with("cannot write "), "{message}");
        assert!(hint.contains("create the directory"), "{hint}");
        let (message, hint) = failure(&dir);
        assert!(
            message.contains("a directory, not a regular file"),
            "{message}"
        );
        assert!(hint.contains("regular file"), "{hint}");
        fs::write(dir.join("file"), "x").unwrap();
        let (message, _) = failure(&dir.join("file/x.hlsnap"));
        assert!(message.contains("ot a directory"), "{message}");
        #[cfg(unix)]
        {
            let (message, _) = failure(Path::new("/dev/full"));
            assert!(message.contains("a device"), "{message}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_to_standard_output_is_remembered() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut full = Full;
        let mut watched = Watched::new(&mut full);
        assert!(watched.write_all(b"report").is_err());
        assert!(watched.failed());
        let e =
            anyhow::Error::from(io::Error::from(ErrorKind::StorageFull)).context(Writing::stdout());
        assert_eq!(
            hint(&e),
            Some("free some space where the output goes, or send it elsewhere")
        );
    }
}
