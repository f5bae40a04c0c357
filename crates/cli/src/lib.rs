//! heaplens-cli: the `heaplens` command line. It reads snapshot files (`.hlsnap`) and answers
//! the questions of a leak hunt offline, on any machine, without Python: `heaplens report` (what
//! is big, what retains it), `heaplens diff` (what grew between two snapshots and what holds it;
//! exit status 1 when there are leak suspects, so a CI job can gate on it), `heaplens export`
//! (to Chrome DevTools' `.heapsnapshot`).
//!
//! It is a library, not a binary: the Python package runs it in-process as the `heaplens`
//! console script (`heaplens._native.cli_main`), so one `pip install` provides it. `heaplens
//! history` reads sample histories; `heaplens attach` snapshots another running process;
//! `heaplens serve` shows a snapshot file in the web dashboard. For a fleet watched by
//! Prometheus, `heaplens metrics` serves the metrics of every process of a history file,
//! `heaplens prometheus-rules` prints alerting rules for a steady leak, and `heaplens
//! grafana-dashboard` a Grafana dashboard. `heaplens run` needs the
//! interpreter the console script runs in: this crate parses its arguments and hands them back
//! ([`Outcome::RunPython`]) for the Python package to run the program.
//!
//! Exit status: 0 success, 1 leak suspects found (`diff`), 2 error. An error says what failed
//! and why, and ends with a hint of what to do.
//!
//! ```
//! let status = heaplens_cli::run(["heaplens", "--version"]);
//! assert_eq!(status, 0);
//! ```

mod commands;
mod output;
mod progress;

use clap::{Parser, Subcommand};
use std::io::Write;

/// Find memory leaks in Python programs: what is growing, and what keeps it alive.
#[derive(Parser, Debug)]
#[command(name = "heaplens", version, about, long_about = None)]
pub struct Cli {
    /// No progress messages on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Report(commands::report::Args),
    Diff(commands::diff::Args),
    Export(commands::export::Args),
    History(commands::history::Args),
    Run(commands::run::Args),
    Attach(commands::attach::Args),
    Serve(commands::serve::Args),
    Metrics(commands::metrics::Args),
    PrometheusRules(commands::prometheus_rules::Args),
    GrafanaDashboard(commands::grafana_dashboard::Args),
}

/// What a command line came to.
#[derive(Debug)]
pub enum Outcome {
    /// The command ran; this is its exit status.
    Exit(i32),
    /// `heaplens run`: the Python package runs the program with these arguments.
    RunPython(commands::run::Args),
}

pub use commands::run::Args as RunArgs;

/// Exit statuses.
pub const OK: i32 = 0;
pub const LEAK_FOUND: i32 = 1;
pub const ERROR: i32 = 2;

/// Runs the command line `args` (the first is the program name) on the process's standard
/// output and error, and returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    run_with(
        args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// Runs the command line `args`, writing results to `out` and messages to `err`.
pub fn run_with<I, T>(args: I, out: &mut impl Write, err: &mut impl Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match dispatch(args, out, err) {
        Outcome::Exit(status) => status,
        Outcome::RunPython(_) => {
            let _ = writeln!(
                err,
                "heaplens: error: `heaplens run` needs Python\n\
                 hint: run it through the `heaplens` console script of the Python package"
            );
            ERROR
        }
    }
}

/// Runs the command line `args` like [`run_with`], except that `heaplens run` is handed back
/// for the caller to run in its interpreter.
pub fn dispatch<I, T>(args: I, out: &mut impl Write, err: &mut impl Write) -> Outcome
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    dispatch_from(&Caller::default(), args, out, err)
}

/// What the program running this command line knows and the command line cannot find out.
#[derive(Debug, Default, Clone)]
pub struct Caller {
    /// The directory that holds the `heaplens` Python package running this command line (the
    /// console script passes it): `heaplens attach` offers it to a process that has no heaplens
    /// of its own, unless `--python-path` says otherwise.
    pub python_path: Option<std::path::PathBuf>,
    /// Whether the user asked to stop (Ctrl-C), for a caller whose signal handling keeps
    /// SIGINT from this command line (Python's does); polled during long waits.
    pub interrupted: Option<fn() -> bool>,
    /// The version, `(major, minor)`, of the Python running this command line (None when
    /// unknown): `heaplens attach` lends its heaplens package ([`Caller::python_path`]) only to a
    /// process of the same version, since its extension module is built for one.
    pub python_version: Option<(u8, u8)>,
}

/// [`dispatch`], for a caller that knows more (see [`Caller`]).
pub fn dispatch_from<I, T>(
    caller: &Caller,
    args: I,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Outcome
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Outcome::Exit(match execute(caller, args, out, err) {
        Ok(status) => status,
        Err(run) => return Outcome::RunPython(*run),
    })
}

fn execute<I, T>(
    caller: &Caller,
    args: I,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<i32, Box<RunArgs>>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let is_error = e.use_stderr();
            let text = e.render().to_string();
            let _ = if is_error {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return Ok(if is_error { ERROR } else { OK });
        }
    };
    let progress = progress::Progress::new(!cli.quiet);
    let out = &mut output::Watched::new(out);
    let result = match &cli.command {
        Command::Report(args) => commands::report::run(args, &progress, out),
        Command::Diff(args) => commands::diff::run(args, &progress, out),
        Command::Export(args) => commands::export::run(args, &progress, out),
        Command::History(args) => commands::history::run(args, &progress, out),
        Command::Attach(args) => commands::attach::run(args, caller, &progress, out),
        Command::Serve(args) => commands::serve::run(args, caller, &progress, out),
        Command::Metrics(args) => commands::metrics::run(args, caller, &progress, out),
        Command::PrometheusRules(args) => commands::prometheus_rules::run(args, out),
        Command::GrafanaDashboard(args) => commands::grafana_dashboard::run(args, out),
        // The output paths are checked before the program runs: a mistyped directory must not
        // cost the run's report.
        Command::Run(args) => match commands::run::check(args) {
            Ok(()) => return Err(Box::new(args.clone())),
            Err(e) => Err(e),
        },
    };
    // Output still buffered counts: a full disk may show only here.
    let flushed = out.flush();
    let result = match (result, flushed) {
        (Ok(_), Err(e)) => Err(anyhow::Error::from(e)),
        (result, _) => result,
    };
    let result = match result {
        Err(e) if out.failed() => Err(e.context(output::Writing::stdout())),
        result => result,
    };
    Ok(match result {
        Ok(status) => status,
        Err(e) if is_broken_pipe(&e) => OK,
        Err(e) => {
            let _ = writeln!(err, "heaplens: error: {}", message(&e));
            if let Some(hint) = commands::hint(&e) {
                let _ = writeln!(err, "hint: {hint}");
            }
            let _ = err.flush();
            ERROR
        }
    })
}

/// The error and its causes on one line, each said once: a cause that repeats the path its
/// context already ends with (`cannot read the snapshot a.hlsnap` then `a.hlsnap: No such
/// file...`), or the whole of the message before it (an I/O error wrapped in one that quotes
/// it), is not said again.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let mut part = cause.to_string();
        if text.is_empty() {
            text = part;
            continue;
        }
        if let Some((head, rest)) = part.split_once(": ") {
            if text == head || text.ends_with(&format!(" {head}")) {
                part = rest.to_string();
            }
        }
        if part.is_empty() || text.ends_with(&part) {
            continue;
        }
        text.push_str(": ");
        text.push_str(&part);
    }
    text
}

/// Output piped into `head` that closes early is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_its_path_and_its_reason_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let core = heaplens_core::Error::Io {
            path: "a.hlsnap".into(),
            source: io,
        };
        let e = anyhow::Error::from(core).context("cannot read the snapshot a.hlsnap");
        assert_eq!(
            message(&e),
            "cannot read the snapshot a.hlsnap: entity not found"
        );
        let e = anyhow::anyhow!("disk full").context("cannot write out.json");
        assert_eq!(message(&e), "cannot write out.json: disk full");
    }
}
