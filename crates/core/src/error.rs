//! The one error type of heaplens-core.

use std::fmt;

/// Everything that can go wrong in the core. Each variant carries the context a user needs to act.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file or a `/proc` entry failed.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Text we had to parse (a `/proc` file, an argument) was not in the expected form.
    Parse { what: String, detail: String },
    /// A structure outgrew the limits of the compact graph model (u32 ids and offsets).
    TooLarge { what: &'static str, limit: u64 },
    /// The graph handed to [`crate::graph::GraphBuilder::finish`] was inconsistent.
    InvalidGraph(String),
    /// The operation is not available on this platform.
    Unsupported(String),
    /// A snapshot file is not one heaplens can read: not a snapshot, truncated, corrupt, or
    /// hostile. `detail` says what was wrong and where.
    Format { path: String, detail: String },
    /// A snapshot file of a format version this heaplens does not read.
    Version {
        path: String,
        found: u32,
        supported: u32,
    },
    /// A picture could not be drawn: its input was inconsistent, or rendering it failed.
    Picture(String),
    /// A history file (SQLite) could not be read or written: not a history, corrupt, locked.
    History { path: String, detail: String },
    /// An output path that is not a regular file (a FIFO, a device, a directory, a loop of
    /// links): heaplens does not write there (see [`crate::output`]). `detail` says what it is.
    NotAFile { path: String, detail: String },
    /// Two snapshots that cannot be compared: from different processes, or in the wrong order.
    NotComparable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::Parse { what, detail } => write!(f, "could not parse {what}: {detail}"),
            Error::TooLarge { what, limit } => {
                write!(f, "too many {what}: heaplens graphs hold at most {limit}")
            }
            Error::InvalidGraph(why) => write!(f, "invalid heap graph: {why}"),
            Error::Unsupported(what) => write!(f, "not supported on this platform: {what}"),
            Error::Format { path, detail } => {
                write!(f, "{path}: not a readable heaplens snapshot: {detail}")
            }
            Error::Version {
                path,
                found,
                supported,
            } => write!(
                f,
                "{path}: snapshot format version {found}, but this heaplens reads versions up to {supported}"
            ),
            Error::Picture(why) => write!(f, "cannot draw the picture: {why}"),
            Error::History { path, detail } => {
                write!(f, "{path}: not a usable heaplens history: {detail}")
            }
            Error::NotAFile { path, detail } => write!(f, "{path}: {detail}"),
            Error::NotComparable(why) => write!(f, "cannot compare: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
