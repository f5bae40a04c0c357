//! `heaplens export`: a snapshot in another tool's format.

use super::load;
use crate::progress::Progress;
use anyhow::Result;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Convert a snapshot for another tool. `--format chrome` writes a `.heapsnapshot` that Chrome
/// DevTools' Memory panel opens (Load profile): Python types as constructors, labelled
/// references, retainers.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snapshot file (.hlsnap).
    pub snapshot: PathBuf,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Chrome)]
    pub format: Format,
    /// Where to write (`-` for standard output).
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Chrome DevTools heap snapshot (JSON).
    Chrome,
}

pub fn run(args: &Args, progress: &Progress, out: &mut impl Write) -> Result<i32> {
    let graph = load(&args.snapshot, progress)?;
    let write = |w: &mut dyn Write| -> heaplens_core::error::Result<()> {
        match args.format {
            Format::Chrome => heaplens_core::render::chrome::write_heapsnapshot(&graph, w),
        }
    };
    if args.output.as_os_str() == "-" {
        progress.step("exporting", || write(out))?;
    } else {
        // Atomically, through a symbolic link, never over a FIFO or a device (as snapshots).
        let shown = args.output.display().to_string();
        progress.step(&format!("writing {shown}"), || {
            heaplens_core::output::write_atomically(&args.output, |file| {
                let mut buffered = BufWriter::new(file);
                write(&mut buffered)?;
                buffered.into_inner().map_err(|e| heaplens_core::Error::Io {
                    path: shown.clone(),
                    source: e.into_error(),
                })
            })
        })?;
    }
    Ok(crate::OK)
}
