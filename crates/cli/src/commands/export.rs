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
    let graph = load(&args.snapshot, progress)?;
    let write = |w: &mut dyn Write| -> Result<()> {
        match args.format {
            Format::Chrome => heaplens_core::render::chrome::write_heapsnapshot(&graph, w)?,
        }
        Ok(())
    };
    if args.output.as_os_str() == "-" {
        progress.step("exporting", || write(out))?;
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output.display()))?;
        let mut file = BufWriter::new(file);
        progress.step(&format!("writing {}", args.output.display()), || {
            write(&mut file)
        })?;
        file.flush()
            .with_context(|| format!("cannot write {}", args.output.display()))?;
    }
    Ok(crate::OK)
}
