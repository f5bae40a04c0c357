//! heaplens's Python exceptions, declared in one place and mapped from Rust errors in one place.
//!
//! ```text
//! HeapLensError
//! ├── CaptureError              the heap could not be walked now
//! │   └── UnsupportedPythonError   this interpreter is not one heaplens can walk
//! ├── UnknownTypeError          no type of that name exists in the process
//! ├── SnapshotFormatError       a snapshot file heaplens cannot read (corrupt, truncated,
//! │                             another format version)
//! └── LeakError                 code checked by `no_leaks` left objects behind
//! ```
//! File and process errors become the builtin `OSError` subclasses (`FileNotFoundError`,
//! `PermissionError`, `ProcessLookupError`) so callers can catch them the usual way.

use heaplens_capture::CaptureError as RustCaptureError;
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::PyErr;

create_exception!(
    heaplens,
    HeapLensError,
    PyException,
    "Base class of every heaplens error."
);
create_exception!(
    heaplens,
    CaptureError,
    HeapLensError,
    "The heap could not be walked (for example during a garbage collection)."
);
create_exception!(
    heaplens,
    UnsupportedPythonError,
    CaptureError,
    "This interpreter is not one heaplens can walk (version or build)."
);

create_exception!(
    heaplens,
    UnknownTypeError,
    HeapLensError,
    "No type of the given name exists in the process."
);

create_exception!(
    heaplens,
    SnapshotFormatError,
    HeapLensError,
    "A snapshot file heaplens cannot read: not a snapshot, truncated, corrupt, or of another format version."
);

create_exception!(
    heaplens,
    LeakError,
    HeapLensError,
    "Code checked by heaplens.no_leaks left objects behind: the message lists each leaking type \
     with its count per call and the retaining path of a sample; `leaks` holds the same as data."
);

pub fn capture_error(e: RustCaptureError) -> PyErr {
    match e {
        RustCaptureError::Unsupported(why) => UnsupportedPythonError::new_err(why),
        RustCaptureError::CollectionRunning | RustCaptureError::Child(_) => {
            CaptureError::new_err(e.to_string())
        }
        RustCaptureError::Core(core) => core_error(core),
    }
}

pub fn core_error(e: heaplens_core::Error) -> PyErr {
    use heaplens_core::Error;
    match e {
        Error::Io { ref source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(e.to_string()),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(e.to_string()),
            _ => PyOSError::new_err(e.to_string()),
        },
        Error::NotAFile { .. } => PyOSError::new_err(e.to_string()),
        Error::Parse { .. } | Error::NotComparable(_) => PyValueError::new_err(e.to_string()),
        Error::TooLarge { .. } | Error::InvalidGraph(_) => CaptureError::new_err(e.to_string()),
        Error::Unsupported(_) | Error::Picture(_) | Error::History { .. } => {
            HeapLensError::new_err(e.to_string())
        }
        Error::Format { .. } | Error::Version { .. } => SnapshotFormatError::new_err(e.to_string()),
    }
}
