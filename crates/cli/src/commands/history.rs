//! `heaplens history`: the growth table (and chart) of a sample history file.
//!
//! It says what `heaplens run` says at exit, the same way (the table is
//! [`report::trend_table`]), for every process of the file: a file outlives its program (a
//! crash, an out-of-memory kill) and can hold several processes (successive runs, the workers
//! of a server). The history of a program still running can be read while it is written; a
//! `-wal` file beside it (SQLite's log of the newest samples, left by a killed program) is folded
//! into the file when the file is writable, so that the file alone can be copied elsewhere.

use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use heaplens_core::analysis::report::count;
use heaplens_core::history::chart::{self, duration, utc};
use heaplens_core::history::report;
use heaplens_core::history::store::{self, ProcessHistory};
use heaplens_core::history::{trends, TypeTrend};
use std::fmt::{self, Write as _};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Show what grew in a history file: per process (oldest first), its figures and the types that
/// grew steadily, with their growth rate and trend; when none did, the types that moved most.
///
/// History files are written by `heaplens run` (heaplens-<program>-<pid>.db in the directory it
/// ran in, or --history FILE.db); a file still being written by a running program can be read.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The history file (SQLite).
    #[arg(value_name = "FILE.db")]
    pub history: PathBuf,
    /// Only the process with this pid (a file holds one per run or forked worker).
    #[arg(long)]
    pub pid: Option<u32>,
    /// How many types to list per process.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = at_least_one)]
    pub top: usize,
    /// List every type whose count changed (steady growers first), not only the steady growers.
    #[arg(long)]
    pub all: bool,
    /// Draw the growth chart of one process (the newest, or the one of --pid): RSS and Python
    /// objects over time, and a panel per growing type. The extension picks the format.
    #[arg(short, long, value_name = "FILE.svg|FILE.png")]
    pub output: Option<PathBuf>,
    /// Print this type's count at every sample (seconds since the first sample, count, bytes)
    /// instead of the table. Repeat it for several types.
    #[arg(long = "type", value_name = "NAME")]
    pub types: Vec<String>,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "expected a number of rows (1 or more), not {text:?}"
        )),
    }
}

/// The context of every failure to read the history file, so that [`hint`] knows the file was
/// meant to be a history.
#[derive(Debug)]
pub struct Reading(pub PathBuf);

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read the history {}", self.0.display())
    }
}

/// A history file (or the chosen process) without a single sample.
#[derive(Debug)]
struct NoSamples(String);

impl fmt::Display for NoSamples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoSamples {}

/// What to do about a failure of this command, when it is about the history file.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    e.downcast_ref::<Reading>()?;
    if e.downcast_ref::<NoSamples>().is_some() {
        return Some(
            "the program stopped (or is still starting) before its first sample, which is taken \
             one --period after start: run it longer, or try again in a moment",
        );
    }
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>())?;
    match io.kind() {
        std::io::ErrorKind::NotFound => Some(
            "check the path; `heaplens run` writes heaplens-<program>-<pid>.db in the directory \
             it ran in (or the file given with --history)",
        ),
        std::io::ErrorKind::PermissionDenied => {
            Some("check the file's permissions, or run as a user who can read it")
        }
        std::io::ErrorKind::IsADirectory => Some(
            "give the history file itself: `heaplens run` writes heaplens-<program>-<pid>.db in \
             the directory it ran in (or the file given with --history)",
        ),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChartFormat {
    Svg,
    Png,
}

fn chart_format(path: &Path) -> Result<ChartFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase);
    match ext.as_deref() {
        Some("svg") => Ok(ChartFormat::Svg),
        Some("png") => Ok(ChartFormat::Png),
        _ => bail!(
            "cannot tell the chart format from {}: name the file .svg or .png",
            path.display()
        ),
    }
}

/// `app.py (pid 4242, Python 3.11.7)`.
fn describe(p: &ProcessHistory) -> String {
    let mut s = if p.program.is_empty() {
        format!("pid {}", p.pid)
    } else {
        format!("{} (pid {}", p.program, p.pid)
    };
    // `sys.version` is `3.11.7 (main, Dec  4 2023, ...) [GCC ...]`: its first word says enough.
    if let Some(version) = p.python.split_whitespace().next() {
        s.push_str(if p.program.is_empty() { " (" } else { ", " });
        let _ = write!(s, "Python {version}");
    } else if p.program.is_empty() {
        return s;
    }
    s.push(')');
    s
}

pub fn run(args: &Args, progress: &Progress, out: &mut impl Write) -> Result<i32> {
    let format = args.output.as_deref().map(chart_format).transpose()?;
    if let Some(file) = &args.output {
        crate::output::check(file)?;
    }
    let path = &args.history;
    let reading = || Reading(path.clone());
    // A missing or unreadable file, or a directory, said plainly (the store's error repeats
    // path and reason, and SQLite calls a directory a "disk I/O error").
    super::check_input(path).with_context(reading)?;
    let processes = progress
        .step(&format!("reading {}", path.display()), || store::read(path))
        .with_context(reading)?;
    if processes.iter().all(|p| p.history.is_empty()) {
        let registered = match processes.len() {
            0 => "no process registered".to_string(),
            1 => "1 process registered".to_string(),
            n => format!("{n} processes registered"),
        };
        return Err(NoSamples(format!("no samples in it yet ({registered})")))
            .with_context(reading);
    }
    let selected: Vec<&ProcessHistory> = match args.pid {
        None => processes.iter().collect(),
        Some(pid) => {
            let chosen: Vec<&ProcessHistory> = processes.iter().filter(|p| p.pid == pid).collect();
            if chosen.is_empty() {
                let list: Vec<String> = processes.iter().map(describe).collect();
                bail!(
                    "no process with pid {pid} in {}; it holds {}",
                    path.display(),
                    list.join(", ")
                );
            }
            if chosen.iter().all(|p| p.history.is_empty()) {
                return Err(NoSamples(format!("pid {pid} has no samples in it yet")))
                    .with_context(reading);
            }
            chosen
        }
    };
    let all_trends: Vec<Vec<TypeTrend>> = progress.step("finding trends", || {
        selected.iter().map(|p| trends(&p.history)).collect()
    });

    let mut text = String::new();
    if args.types.is_empty() {
        if selected.len() > 1 {
            let _ = writeln!(
                text,
                "{}: {} processes, oldest first\n",
                path.display(),
                selected.len()
            );
        }
        for (i, (p, t)) in selected.iter().zip(&all_trends).enumerate() {
            if i > 0 {
                text.push('\n');
            }
            process_report(p, t, args, &mut text);
        }
    } else {
        for name in &args.types {
            check_type(name, &selected, path)?;
        }
        for name in &args.types {
            for p in &selected {
                if !text.is_empty() {
                    text.push('\n');
                }
                series(p, name, &mut text);
            }
        }
    }
    out.write_all(text.as_bytes())?;

    if let (Some(file), Some(format)) = (&args.output, format) {
        // Some selected process has samples (checked above): the newest of those.
        let mut newest = selected.iter().zip(&all_trends).rev();
        let (p, t) = newest
            .find(|(p, _)| !p.history.is_empty())
            .context("no process to draw")?;
        // The chart's subtitle gives the time of the first sample.
        let title = describe(p);
        let drawn = progress.step(&format!("drawing {}", file.display()), || {
            Ok::<_, heaplens_core::Error>(match format {
                ChartFormat::Svg => chart::svg(&p.history, t, &title).into_bytes(),
                ChartFormat::Png => chart::png(&p.history, t, &title)?,
            })
        })?;
        // Atomically, through a symbolic link, never over a FIFO or a device (as snapshots).
        heaplens_core::output::write_atomically(file, |mut f| {
            f.write_all(&drawn)
                .map(|()| f)
                .map_err(|source| heaplens_core::Error::Io {
                    path: file.display().to_string(),
                    source,
                })
        })
        .with_context(|| crate::output::Writing::file(file))?;
        let which = match (selected.len(), args.pid) {
            (1, _) => String::new(),
            (n, None) => format!(" (the newest of the {n} processes; --pid picks another)"),
            (n, Some(_)) => format!(" (the newest of the {n} runs with that pid)"),
        };
        writeln!(
            out,
            "\nChart of {} written to {}{which}",
            describe(p),
            file.display()
        )?;
    }
    Ok(crate::OK)
}

/// One process's figures and growth table.
fn process_report(p: &ProcessHistory, trends: &[TypeTrend], args: &Args, out: &mut String) {
    let h = &p.history;
    let _ = write!(out, "{}: started {} UTC", describe(p), utc(p.started_ms));
    let (Some(first), Some(last)) = (h.samples().next(), h.latest()) else {
        let _ = writeln!(out, "; no samples yet");
        return;
    };
    let span_ms = last.taken_ms.saturating_sub(first.taken_ms);
    let n = h.len();
    let _ = writeln!(
        out,
        "; {} sample{} over {}",
        count(n as u64),
        if n == 1 { "" } else { "s" },
        duration(span_ms)
    );
    // A history file read elsewhere: no snapshot of heaplens' was in the program's memory.
    report::memory_lines(h, 0, out);
    let steady: Vec<&TypeTrend> = trends.iter().filter(|t| t.steady).collect();
    let movers = || chart::movers(trends).into_iter().filter(|t| !t.steady);
    let (title, rows): (&str, Vec<&TypeTrend>) = if args.all {
        let rows = steady.iter().copied().chain(movers()).collect();
        ("Types that changed, steady growers first:", rows)
    } else if !steady.is_empty() {
        ("Types that grew steadily:", steady)
    } else {
        let why = report::too_few_samples(n);
        let _ = writeln!(
            out,
            "\n{}",
            why.as_deref().unwrap_or("No type grew steadily.")
        );
        ("Types that moved most:", movers().collect())
    };
    if rows.is_empty() {
        let _ = writeln!(out, "\nNo type changed.");
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let shown = rows.len().min(args.top);
    report::trend_table(&rows[..shown], span_ms, out);
    if rows.len() > shown {
        let _ = writeln!(
            out,
            "  and {} more (--top {} lists them all)",
            count((rows.len() - shown) as u64),
            rows.len()
        );
    }
}

/// Fails, with the closest names, when no selected process ever had objects of type `name`.
fn check_type(name: &str, selected: &[&ProcessHistory], path: &Path) -> Result<()> {
    let known = |p: &&&ProcessHistory| p.history.type_names().iter().any(|n| n == name);
    if selected.iter().any(|p| known(&p)) {
        return Ok(());
    }
    let names = selected
        .iter()
        .flat_map(|p| p.history.type_names())
        .map(String::as_str);
    let close = close_matches(name, names);
    let also = match close.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        more => format!("; did you mean one of {}?", more.join(", ")),
    };
    bail!("no type named {name:?} in {}{also}", path.display())
}

/// At most three of `names` that look like `wanted`: the same name in another case, the class
/// name of a qualified one (`Order` for `app.models.Order`), or a near spelling.
fn close_matches<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let short = lower.rsplit('.').next().unwrap_or(&lower);
            let score = if lower == wanted || short == wanted {
                2.0
            } else {
                strsim::jaro_winkler(&wanted, &lower).max(strsim::jaro_winkler(&wanted, short))
            };
            (score >= 0.85).then_some((score, name))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let mut out: Vec<&str> = scored.into_iter().map(|(_, n)| n).collect();
    out.dedup();
    out.truncate(3);
    out
}

/// `name`'s count and bytes at every sample of `p`: plain numbers, to paste elsewhere.
fn series(p: &ProcessHistory, name: &str, out: &mut String) {
    let values = p.history.series(name);
    let _ = writeln!(out, "{name} in {}:", describe(p));
    if values.is_empty() {
        let _ = writeln!(out, "  never seen in this process");
        return;
    }
    let t0 = p.history.samples().next().map_or(0, |s| s.taken_ms);
    let offsets: Vec<u64> = p
        .history
        .samples()
        .map(|s| s.taken_ms.saturating_sub(t0))
        .collect();
    // As many decimals as the sample times need: none for whole seconds, milliseconds when
    // samples are less than a second apart.
    let closest = offsets.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
    let decimals = match () {
        _ if offsets.iter().all(|ms| ms % 1000 == 0) => 0,
        _ if closest >= 1000 => 1,
        _ => 3,
    };
    let _ = writeln!(out, "  {:>12}  {:>12}  {:>14}", "seconds", "count", "bytes");
    for (ms, (c, b)) in offsets.iter().zip(values) {
        let seconds = *ms as f64 / 1000.0;
        let _ = writeln!(out, "  {seconds:>12.decimals$}  {c:>12}  {b:>14}");
    }
}
