//! `heaplens attach`: a snapshot of a running Python process, without restarting it.

use crate::progress::Progress;
use anyhow::Result;
use std::io::Write;

/// Take a snapshot of a running CPython process.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The process id.
    pub pid: u32,
}

pub fn run(_args: &Args, _progress: &Progress, _out: &mut impl Write) -> Result<i32> {
    anyhow::bail!("heaplens attach is not implemented yet")
}
