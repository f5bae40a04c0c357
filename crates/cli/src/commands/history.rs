//! `heaplens history`: the growth table (and chart) of a sample history file.

use crate::progress::Progress;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// Show what grew in a history file written by `heaplens run` or the dashboard's sampler.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The history file (SQLite, written by `heaplens run --history`).
    pub history: PathBuf,
}

pub fn run(_args: &Args, _progress: &Progress, _out: &mut impl Write) -> Result<i32> {
    anyhow::bail!("heaplens history is not implemented yet")
}
