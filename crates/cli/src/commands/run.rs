//! `heaplens run`: the arguments. Running the program needs the Python interpreter the
//! `heaplens` console script runs in, so this crate only parses them; the Python package runs
//! the program (see [`crate::Outcome::RunPython`]).

use std::path::PathBuf;

/// Run a Python program as `python script.py args...` (or `python -m module args...`) would,
/// sampling its heap in the background; at exit, print the types that grew steadily and the
/// retaining path of each. Samples go to a history file (SQLite) as they are taken, so the
/// growth curve survives a crash or an out-of-memory kill: read it with `heaplens history`.
#[derive(clap::Args, Debug, Clone)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Seconds between samples [default: 1, stretched on big heaps so that sampling stays under
    /// 1% of the time]. A period you give is kept unless a sample takes more than a tenth of
    /// it.
    #[arg(long, value_parser = positive_seconds)]
    pub period: Option<f64>,
    /// The history file [default: heaplens-<program>-<pid>.db in the current directory].
    #[arg(long, value_name = "FILE.db", conflicts_with = "no_history")]
    pub history: Option<PathBuf>,
    /// Keep samples in memory only.
    #[arg(long)]
    pub no_history: bool,
    /// Also save a snapshot of the heap at exit (.hlsnap), for `heaplens report` or `diff`.
    #[arg(long, value_name = "FILE.hlsnap")]
    pub snapshot_at_exit: Option<PathBuf>,
    /// Count every object in each sample, not only the gc-tracked ones (slower on big heaps).
    #[arg(long)]
    pub all_objects: bool,
    /// Trace allocations (`tracemalloc`, 10 frames) so that the report says where each growing
    /// type's objects were allocated; the program runs slower meanwhile, and uses more memory.
    #[arg(long)]
    pub trace_alloc: bool,
    /// Serve the live dashboard of the program at http://[HOST:]PORT/_heaplens/ while it runs
    /// (HOST defaults to 127.0.0.1; port 0 picks a free one).
    #[arg(long, value_name = "[HOST:]PORT")]
    pub serve: Option<String>,
    /// The token the dashboard requires (needed to serve on an address other than loopback).
    #[arg(long, value_name = "TOKEN", requires = "serve")]
    pub token: Option<String>,
    /// Run a library module as a script, as `python -m` does.
    #[arg(short = 'm', value_name = "MODULE")]
    pub module: Option<String>,
    /// The script and its arguments (with -m: the module's arguments).
    #[arg(allow_hyphen_values = true, value_name = "SCRIPT [ARGS]")]
    pub argv: Vec<String>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!(
            "expected a positive number of seconds, not {text:?}"
        )),
    }
}
