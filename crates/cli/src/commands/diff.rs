//! `heaplens diff`: what grew between two snapshots, and what holds it.

use super::load_analysed;
use crate::progress::Progress;
use anyhow::{Context, Result};
use heaplens_core::analysis::diff::{check_pair, DiffOptions};
use heaplens_core::analysis::ignore::Ignore;
use heaplens_core::analysis::report;
use std::io::Write;
use std::path::PathBuf;

/// Compare two snapshots of one process: the types that grew, and the leak suspects (each
/// container that accumulates new objects, with its retaining path). Exits with status 1 when
/// there are suspects, so a CI job can fail on a leak.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The earlier snapshot.
    pub before: PathBuf,
    /// The later snapshot.
    pub after: PathBuf,
    /// A container holding at least this many new objects is a suspect...
    #[arg(long, default_value_t = 10)]
    pub min_objects: u64,
    /// ...and so is one whose new objects take at least this many bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub min_size: u64,
    /// How many suspects and rows to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Not a leak: a type (`app.models.Order`) or a place (`app.cache.CACHE`, a module global;
    /// `app.Registry.handlers`, a class attribute; `app.Service.cache`, an instance attribute)
    /// that you know is bounded or expect to grow. `*` matches any run of characters. A
    /// suspect is left out when a pattern names its type or a place or type on its path.
    /// Repeat it for several.
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<String>,
}

pub fn run(args: &Args, progress: &Progress, out: &mut impl Write) -> Result<i32> {
    let before = load_analysed(&args.before, progress)?;
    let after = load_analysed(&args.after, progress)?;
    check_pair(before.graph(), after.graph())
        .with_context(|| format!("{} and {}", args.before.display(), args.after.display()))?;
    progress.step("finding retaining paths", || after.paths());
    let options = DiffOptions {
        min_objects: args.min_objects,
        min_bytes: args.min_size,
        max_suspects: args.limit,
        ignore: Ignore::new(&args.ignore),
        keep_bounded: false,
    };
    let result = progress.step("comparing", || after.diff_since(&before, options))?;
    let text = report::diff_report(before.graph(), after.graph(), &result, args.limit);
    out.write_all(text.as_bytes())?;
    Ok(if result.suspects.is_empty() {
        crate::OK
    } else {
        crate::LEAK_FOUND
    })
}
