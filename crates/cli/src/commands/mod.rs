//! One module per subcommand, each with an `Args` struct whose doc comment is its help.

pub mod attach;
pub mod diff;
pub mod export;
pub mod failure;
pub mod grafana_dashboard;
pub mod history;
pub mod listen;
pub mod metrics;
pub mod prometheus_rules;
pub mod report;
pub mod run;
pub mod serve;

use crate::progress::Progress;
use anyhow::{Context, Result};
use heaplens_core::analysis::Analysed;
use heaplens_core::graph::Graph;
use std::path::Path;

/// Loads a snapshot file, with progress.
pub fn load(path: &Path, progress: &Progress) -> Result<Graph> {
    progress
        .step(&format!("loading {}", path.display()), || {
            heaplens_core::snapfile::load(path)
        })
        .with_context(|| format!("cannot read the snapshot {}", path.display()))
}

/// Opens `path` to see that it can be read, before a store that says less about why not (SQLite
/// calls a directory a "disk I/O error", a missing file "entity not found").
pub fn check_input(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "a directory, not a file",
        ));
    }
    Ok(())
}

/// Loads a snapshot file to be analysed; the parts an answer needs are computed when asked.
pub fn load_analysed(path: &Path, progress: &Progress) -> Result<Analysed> {
    load(path, progress).map(Analysed::new)
}

/// What to do about an error, when there is something to say.
pub fn hint(e: &anyhow::Error) -> Option<&str> {
    // Before the hints about files read: a path that cannot be written is no snapshot missing.
    if let Some(hint) = crate::output::hint(e) {
        return Some(hint);
    }
    if let Some(hint) = failure::hint(e) {
        return Some(hint);
    }
    if let Some(hint) = history::hint(e) {
        return Some(hint);
    }
    for cause in e.chain() {
        if let Some(core) = cause.downcast_ref::<heaplens_core::Error>() {
            return match core {
                heaplens_core::Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Some("check the path; snapshots are written by `snapshot.save(path)` in Python")
                }
                heaplens_core::Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    Some("check the file's permissions, or run as a user who can read it")
                }
                heaplens_core::Error::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::IsADirectory =>
                {
                    Some("give the snapshot file (.hlsnap) itself, not a directory")
                }
                heaplens_core::Error::Io { .. } => {
                    Some("check the file, the disk it is on, and its permissions")
                }
                heaplens_core::Error::NotAFile { .. } => {
                    Some("give the name of a regular file (a symbolic link to one is written through)")
                }
                heaplens_core::Error::Version { .. } => {
                    Some("read it with the heaplens version that wrote it, or take a new snapshot")
                }
                heaplens_core::Error::Format { .. } => Some(
                    "the file is damaged or is not a heaplens snapshot (.hlsnap); take a new snapshot",
                ),
                heaplens_core::Error::History { detail, .. } if detail.contains("version") => {
                    Some("read it with the heaplens version that wrote it")
                }
                heaplens_core::Error::History { .. } => Some(
                    "the file is damaged or is not a heaplens history file: histories are written \
                     by `heaplens run`",
                ),
                heaplens_core::Error::NotComparable(_) => {
                    Some("give two snapshots of one process, the earlier one first")
                }
                _ => None,
            };
        }
    }
    None
}
