//! `heaplens report`: what one snapshot holds.

use super::load_analysed;
use crate::progress::Progress;
use anyhow::Result;
use heaplens_core::analysis::report;
use std::io::Write;
use std::path::PathBuf;

/// Summarise a snapshot: the biggest types, the objects that retain the most memory (with the
/// path that keeps each alive), and uncollected cyclic garbage.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snapshot file (.hlsnap).
    pub snapshot: PathBuf,
    /// How many rows per section.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

pub fn run(args: &Args, progress: &Progress, out: &mut impl Write) -> Result<i32> {
    let snapshot = load_analysed(&args.snapshot, progress)?;
    progress.step("analysing", || snapshot.compute_all());
    let text = report::snapshot_report(
        snapshot.graph(),
        snapshot.dominators(),
        snapshot.paths(),
        args.limit,
    );
    out.write_all(text.as_bytes())?;
    Ok(crate::OK)
}
