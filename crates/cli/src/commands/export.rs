//! `heaplens export`: a snapshot in another tool's format.

use super::load;
use crate::progress::Progress;
use anyhow::{Context, Result};
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
    let to_stdout = args.output.as_os_str() == "-";
    // Before the snapshot is loaded: a mistyped directory fails at once.
    if !to_stdout {
        crate::output::check(&args.output)?;
    }
    let graph = load(&args.snapshot, progress)?;
    let write = |w: &mut dyn Write| -> heaplens_core::error::Result<()> {
        match args.format {
            Format::Chrome => heaplens_core::render::chrome::write_heapsnapshot(&graph, w),
        }
    };
    if to_stdout {
        // The writer names its destination `<stream>`: here it is standard output.
        progress
            .step("exporting", || write(out))
            .map_err(|e| match e {
                heaplens_core::Error::Io { source, .. } => heaplens_core::Error::Io {
                    path: "standard output".into(),
                    source,
                },
                other => other,
            })
            .context(crate::output::Writing::stdout())?;
    } else {
        // Atomically, through a symbolic link, never over a FIFO or a device (as snapshots).
        let shown = args.output.display().to_string();
        progress
            .step(&format!("writing {shown}"), || {
                heaplens_core::output::write_atomically(&args.output, |file| {
                    let mut buffered = BufWriter::new(file);
                    write(&mut buffered)?;
                    buffered.into_inner().map_err(|e| heaplens_core::Error::Io {
                        path: shown.clone(),
                        source: e.into_error(),
                    })
                })
            })
            .with_context(|| crate::output::Writing::file(&args.output))?;
    }
    Ok(crate::OK)
}
