//! `heaplens run`: the arguments. Running the program needs the Python interpreter the
//! `heaplens` console script runs in, so this crate only parses them; the Python package runs
//! the program (see [`crate::Outcome::RunPython`]).

use std::path::PathBuf;

/// Run a Python program as `python script.py args...` (or `python -m module args...`) would,
/// sampling its heap in the background; at exit, print the types that grew steadily and the
/// retaining path of each. Samples go to a history file (SQLite) as they are taken, so the
/// growth curve survives a crash or an out-of-memory kill: read it with `heaplens history`.
/// Ctrl-C and SIGTERM end the program with the report of what was sampled; SIGUSR1 prints the
/// report so far and the program goes on.
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
    #[arg(long, value_name = "[HOST:]PORT", value_parser = address)]
    pub serve: Option<String>,
    /// The token the dashboard requires (needed to serve on an address other than loopback).
    #[arg(long, value_name = "TOKEN", requires = "serve")]
    pub token: Option<String>,
    /// Forked children (gunicorn or multiprocessing workers) report too, each when it ends (or
    /// on SIGTERM or SIGUSR1), under a header with its pid. By default only the process heaplens
    /// started reports; the children's samples are in the history file either way.
    #[arg(long)]
    pub report_children: bool,
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

/// `[HOST:]PORT`, checked here so that a mistake is a usage error before the program runs: a
/// port from 0 to 65535 and, when given, a host that is an IP address (IPv6 in brackets) or
/// `localhost`.
fn address(text: &str) -> Result<String, String> {
    let (host, port) = text.rsplit_once(':').unwrap_or(("", text));
    let bad = || {
        format!(
            "expected [HOST:]PORT with a port from 0 to 65535 and an IP address or localhost as \
             the host, not {text:?}"
        )
    };
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !(host.is_empty() || host == "localhost" || host.parse::<std::net::IpAddr>().is_ok()) {
        return Err(bad());
    }
    Ok(text.to_string())
}

/// What can be checked before the program runs, so that a mistake costs a moment and not the
/// report of a long run: the files it will write (the snapshot at exit, the history file).
pub fn check(args: &Args) -> anyhow::Result<()> {
    if let Some(path) = &args.snapshot_at_exit {
        crate::output::check(path)?;
    }
    if let Some(path) = &args.history {
        crate::output::check(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_a_port_and_an_ip_address_or_localhost() {
        for good in [
            "0",
            "8000",
            "127.0.0.1:0",
            "localhost:65535",
            "[::1]:80",
            "0.0.0.0:80",
        ] {
            assert_eq!(address(good).as_deref(), Ok(good));
        }
        for bad in [
            "70000",
            "-1",
            "host:80",
            "127.0.0.1:",
            "abc",
            "[::1]:99999",
            "",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
