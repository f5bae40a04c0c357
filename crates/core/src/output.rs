//! Writing a file the user named: through a symbolic link to the file it points at, never over
//! a FIFO, a device, a socket or a directory, and atomically.
//!
//! The new content goes to a temporary file beside the destination, is synced, then renamed
//! over it, so the path never holds half a file and a failed write leaves no temporary file
//! behind. A rename would replace whatever is at the path: a symbolic link would become a
//! regular file (and whoever reads its target would read stale data), and a FIFO or a device
//! node (`/dev/full`, as root: a device of the machine) would be replaced. So the destination
//! is resolved first: links are followed to the file they name (created if it does not exist
//! yet), and anything that is not a regular file is refused with an error that says what it is.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Error, Result};

/// How many symbolic links one path may go through (Linux's own limit, `ELOOP`).
const MAX_LINKS: usize = 40;

/// Writes the file at `path`: `write` gets a new, empty temporary file beside the destination
/// (see [`destination`]) and gives it back when done; it is then synced and renamed over the
/// destination. Errors name `path` as the user gave it; a destination that is not a regular
/// file is [`Error::NotAFile`].
pub fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<File>) -> Result<()> {
    let shown = path.display().to_string();
    let io_error = |source| Error::Io {
        path: shown.clone(),
        source,
    };
    let target = writable_destination(path)?;
    let (temp_path, file) = create_temp_beside(&target).map_err(io_error)?;
    let written = write(file).and_then(|file| {
        // Without the sync, a crash soon after the rename can leave an empty file at `path`.
        file.sync_all().map_err(io_error)?;
        fs::rename(&temp_path, &target).map_err(io_error)
    });
    if written.is_err() {
        // If removing the incomplete file fails too, the first error is still the one to report.
        let _ = fs::remove_file(&temp_path);
    }
    written
}

/// [`destination`], with errors that name `path`: [`Error::NotAFile`] for what is not a regular
/// file, [`Error::Io`] when the path cannot be examined.
pub fn writable_destination(path: &Path) -> Result<PathBuf> {
    destination(path).map_err(|source| {
        let path = path.display().to_string();
        match source.kind() {
            io::ErrorKind::InvalidInput => Error::NotAFile {
                path,
                detail: source.to_string(),
            },
            _ => Error::Io { path, source },
        }
    })
}

/// The regular file that writing to `path` should replace (or create): `path` itself, or the
/// file its chain of symbolic links ends at (relative links resolve against the directory of
/// the link). An error of kind `InvalidInput` when that is not a regular file or a name not
/// taken yet.
pub fn destination(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let metadata = match fs::symlink_metadata(&current) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            other => other?,
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&current)?;
            current = match current.parent() {
                Some(dir) if target.is_relative() => dir.join(target),
                _ => target,
            };
        } else if kind.is_file() {
            return Ok(current);
        } else {
            let what = what_it_is(&kind);
            let through = if current == path {
                String::new()
            } else {
                format!(" (where the link leads: {})", current.display())
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{what}{through}, not a regular file: heaplens writes only regular files \
                     (or through a symbolic link to one)"
                ),
            ));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("more than {MAX_LINKS} symbolic links in a chain (a loop?)"),
    ))
}

fn what_it_is(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "something"
    }
}

/// Creates a new, empty file beside `path`, with a name no other write is using.
fn create_temp_beside(path: &Path) -> io::Result<(PathBuf, File)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ));
    };
    loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        let attempt = NEXT.fetch_add(1, Ordering::Relaxed);
        temp_name.push(format!(".{}.{attempt}.tmp", std::process::id()));
        let temp_path = path.with_file_name(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            // Left by a crashed write of an earlier process that had our pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            opened => return opened.map(|file| (temp_path, file)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "heaplens-output-{name}-{}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

    fn write_text(path: &Path, text: &str) -> Result<()> {
        write_atomically(path, |mut file| {
            file.write_all(text.as_bytes()).unwrap();
            Ok(file)
        })
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_regular_file_is_replaced_and_no_temporary_file_stays() {
        let dir = TempDir::new("regular");
        let path = dir.0.join("a.hlsnap");
        write_text(&path, "one").unwrap();
        write_text(&path, "two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(entries(&dir.0), ["a.hlsnap"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_stays_a_link_and_its_target_gets_the_content() {
        let dir = TempDir::new("link");
        fs::create_dir(dir.0.join("real")).unwrap();
        let target = dir.0.join("real/snap.hlsnap");
        fs::write(&target, "old").unwrap();
        let link = dir.0.join("latest.hlsnap");
        std::os::unix::fs::symlink("real/snap.hlsnap", &link).unwrap();
        let chained = dir.0.join("chained.hlsnap");
        std::os::unix::fs::symlink(&link, &chained).unwrap();
        write_text(&chained, "new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(&chained)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        // A link to a file not there yet creates it.
        let dangling = dir.0.join("next.hlsnap");
        std::os::unix::fs::symlink("real/next.hlsnap", &dangling).unwrap();
        write_text(&dangling, "created").unwrap();
        assert_eq!(
            fs::read_to_string(dir.0.join("real/next.hlsnap")).unwrap(),
            "created"
        );
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        // A loop is an error, not a hang.
        let (a, b) = (dir.0.join("a"), dir.0.join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let error = write_text(&a, "x").unwrap_err().to_string();
        assert!(error.contains("symbolic links"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_devices_and_directories_are_refused_and_left_as_they_are() {
        let dir = TempDir::new("special");
        let fifo = dir.0.join("pipe");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = write_text(&fifo, "x").unwrap_err().to_string();
        assert!(
            error.contains("a FIFO") && error.contains("pipe"),
            "{error}"
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

        let error = write_text(Path::new("/dev/null"), "x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("a device"), "{error}");
        let through = dir.0.join("to-null");
        std::os::unix::fs::symlink("/dev/null", &through).unwrap();
        let error = write_text(&through, "x").unwrap_err().to_string();
        assert!(
            error.contains("a device") && error.contains("/dev/null"),
            "{error}"
        );

        let error = write_text(&dir.0, "x").unwrap_err().to_string();
        assert!(error.contains("a directory"), "{error}");
        assert_eq!(entries(&dir.0), ["pipe", "to-null"]);
    }
}
