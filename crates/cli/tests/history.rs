//! `heaplens history` on real history files, written as `heaplens run` writes them.

mod common;

use common::TempDir;
use heaplens_core::history::store::HistoryWriter;
use heaplens_core::history::{History, Sample};
use std::path::Path;

/// 2025-11-24 16:00:00 UTC, when the sampled runs start.
const T0: u64 = 1_764_000_000_000;
const PYTHON: &str = "3.11.7 (main, Dec  4 2023, 18:10:11) [GCC 12.2.0]";

/// The leaky app: orders and sessions pile up; a cache warms up then stays; tuples come and go.
fn leaky(i: u64) -> Vec<(&'static str, u64)> {
    vec![
        ("app.Order", 100 + 25 * i),
        ("app.Session", 10 + 5 * i),
        ("dict", (50 + 200 * i).min(1000)),
        ("tuple", 500 + (i % 5) * 40),
    ]
}

/// A worker that leaks nothing: the same cache and tuples.
fn healthy(i: u64) -> Vec<(&'static str, u64)> {
    vec![
        ("dict", (50 + 200 * i).min(1000)),
        ("tuple", 500 + (i % 5) * 40),
    ]
}

/// Registers a process in the history file at `path` and appends `n` samples a minute apart,
/// each type taking 56 bytes an object. The writer is returned open, as a running program's is.
fn write(
    path: &Path,
    pid: u32,
    program: &str,
    n: u64,
    values: fn(u64) -> Vec<(&'static str, u64)>,
) -> HistoryWriter {
    let mut writer = HistoryWriter::open(path, pid, program, PYTHON).unwrap();
    let mut history = History::new(usize::MAX);
    for i in 0..n {
        append(&mut writer, &mut history, pid, i, values);
    }
    writer
}

fn append(
    writer: &mut HistoryWriter,
    history: &mut History,
    pid: u32,
    i: u64,
    values: fn(u64) -> Vec<(&'static str, u64)>,
) {
    let types = values(i);
    let objects: u64 = types.iter().map(|t| t.1).sum();
    let sample = Sample {
        taken_ms: T0 + i * 60_000,
        pid,
        rss: (30 << 20) + objects * 1024,
        objects,
        bytes: objects * 56,
        gc_only: true,
        census_us: 200,
    };
    let changes = history.push_values(sample, types.iter().map(|&(n, c)| (n, c, c * 56)));
    writer.append(&sample, &changes).unwrap();
}

/// app.db in `dir`: the leaky app (pid 100, 40 samples), then a healthy worker (pid 200, 40
/// samples).
fn two_processes(dir: &TempDir) -> String {
    let path = dir.path("app.db");
    write(Path::new(&path), 100, "app.py", 40, leaky);
    write(Path::new(&path), 200, "worker.py", 40, healthy);
    path
}

/// Runs `heaplens history ARGS...`.
fn run(args: &[&str]) -> (i32, String, String) {
    let all: Vec<&str> = std::iter::once("history")
        .chain(args.iter().copied())
        .collect();
    common::run(&all)
}

/// `out` with the start times (the writer's clock) replaced by `<start>`.
fn without_start_times(out: &str) -> String {
    let mut text = out.to_string();
    while let Some(at) = text.find("started 2") {
        let from = at + "started ".len();
        text.replace_range(from..from + "2025-11-24 16:00:00".len(), "<start>");
    }
    text
}

/// The row of the table naming `name`, in the section of `pid`.
fn row<'a>(out: &'a str, pid: u32, name: &str) -> Option<&'a str> {
    let section = out.split(&format!("(pid {pid}")).nth(1)?;
    let section = section.split("(pid ").next()?;
    section
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn prints_each_process_with_its_steady_growers_or_its_movers() {
    let dir = TempDir::new("report");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 0, "{err}");
    let expected = format!(
        "{path}: 2 processes, oldest first

app.py (pid 100, Python 3.11.7): started <start> UTC; 40 samples over 39 min
  rss 30.6 MiB -> 32.9 MiB; Python objects (gc-tracked) 660 -> 2,940

Types that grew steadily:
  type               first           last        growth  trend
  app.Order            100 ->       1,075       +25/min  ▁▁▁▂▂▂▃▃▃▄▄▅▅▅▆▆▆▇▇█
  app.Session           10 ->         205     +5.00/min  ▁▁▁▂▂▂▃▃▃▄▄▅▅▅▆▆▆▇▇█

worker.py (pid 200, Python 3.11.7): started <start> UTC; 40 samples over 39 min
  rss 30.5 MiB -> 31.6 MiB; Python objects (gc-tracked) 550 -> 1,660

No type grew steadily.

Types that moved most:
  type         first           last        growth  trend
  dict            50 ->       1,000      +950 net  ▁▄██████████████████
  tuple          500 ->         660      +160 net  ▁▅█▃█▁▅█▃█▁▅█▃█▁▅█▃█
"
    );
    assert_eq!(without_start_times(&out), expected);
}

#[test]
fn pid_picks_one_process_and_an_unknown_pid_lists_the_others() {
    let dir = TempDir::new("pid");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path, "--pid", "200"]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.starts_with("worker.py (pid 200, Python 3.11.7): started "),
        "{out}"
    );
    assert!(
        !out.contains("app.py") && !out.contains("processes"),
        "{out}"
    );
    assert!(row(&out, 200, "dict").is_some(), "{out}");

    let (status, out, err) = run(&[&path, "--pid", "100"]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("Types that grew steadily:"), "{out}");
    assert!(!out.contains("worker.py"), "{out}");

    let (status, out, err) = run(&[&path, "--pid", "999"]);
    assert_eq!(status, 2, "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "no process with pid 999 in {path}; it holds app.py (pid 100, Python 3.11.7), \
             worker.py (pid 200, Python 3.11.7)"
        )),
        "{err}"
    );
}

#[test]
fn top_limits_the_rows_and_says_how_many_are_left() {
    let dir = TempDir::new("top");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path, "--pid", "100", "--top", "1"]);
    assert_eq!(status, 0, "{err}");
    assert!(row(&out, 100, "app.Order").is_some(), "{out}");
    assert!(row(&out, 100, "app.Session").is_none(), "{out}");
    assert!(
        out.contains("  and 1 more (--top 2 lists them all)\n"),
        "{out}"
    );
    let (status, _, err) = run(&[&path, "--top", "0"]);
    assert_eq!(status, 2);
    assert!(err.contains("expected a number of rows"), "{err}");
}

#[test]
fn all_lists_every_type_that_changed_steady_growers_first() {
    let dir = TempDir::new("all");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path, "--pid", "100", "--all"]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("Types that changed, steady growers first:"),
        "{out}"
    );
    let names: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Types that changed"))
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["app.Order", "app.Session", "dict", "tuple"],
        "{out}"
    );
    // Without --all, the cache and the tuples are not leaks.
    let (_, out, _) = run(&[&path, "--pid", "100"]);
    assert!(row(&out, 100, "dict").is_none(), "{out}");
    assert!(row(&out, 100, "tuple").is_none(), "{out}");
}

#[test]
fn type_prints_the_raw_series_of_each_process() {
    let dir = TempDir::new("type");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path, "--type", "app.Order"]);
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "app.Order in app.py (pid 100, Python 3.11.7):");
    assert_eq!(lines[1], "       seconds         count           bytes");
    assert_eq!(lines[2], "             0           100            5600");
    assert_eq!(lines[3], "            60           125            7000");
    assert_eq!(lines[41], "          2340          1075           60200");
    assert_eq!(lines[42], "");
    assert_eq!(
        lines[43],
        "app.Order in worker.py (pid 200, Python 3.11.7):"
    );
    assert_eq!(lines[44], "  never seen in this process");
    assert_eq!(lines.len(), 45, "{out}");

    let (status, out, err) = run(&[&path, "--pid", "200", "--type", "dict", "--type", "tuple"]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("dict in worker.py") && out.contains("tuple in worker.py"),
        "{out}"
    );
    assert!(
        out.contains("\n             0            50            2800\n"),
        "{out}"
    );
    assert!(
        out.contains("\n           240           660           36960\n"),
        "{out}"
    );
}

#[test]
fn an_unknown_type_is_an_error_with_close_names() {
    let dir = TempDir::new("unknown-type");
    let path = two_processes(&dir);
    let (status, out, err) = run(&[&path, "--type", "Order"]);
    assert_eq!(status, 2, "{out}");
    assert!(
        err.contains(&format!(
            "no type named \"Order\" in {path}; did you mean app.Order?"
        )),
        "{err}"
    );
    let (status, _, err) = run(&[&path, "--type", "app.Sesion"]);
    assert_eq!(status, 2);
    assert!(err.contains("did you mean app.Session?"), "{err}");
    // Known in the file, but not in the chosen process.
    let (status, _, err) = run(&[&path, "--pid", "200", "--type", "app.Order"]);
    assert_eq!(status, 2);
    assert!(err.contains("no type named \"app.Order\""), "{err}");
    let (status, _, err) = run(&[&path, "--type", "zzzzzz"]);
    assert_eq!(status, 2);
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn output_draws_the_newest_process_and_says_which() {
    let dir = TempDir::new("svg");
    let path = two_processes(&dir);
    let svg_path = dir.path("growth.svg");
    let (status, out, err) = run(&[&path, "-o", &svg_path]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.ends_with(&format!(
            "\nChart of worker.py (pid 200, Python 3.11.7) written to {svg_path} (the newest \
             of the 2 processes; --pid picks another)\n"
        )),
        "{out}"
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(svg.contains("worker.py (pid 200"), "{svg}");
    assert!(!svg.contains("app.Order"));

    let (status, out, err) = run(&[&path, "--pid", "100", "--output", &svg_path]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.ends_with(&format!(
            "\nChart of app.py (pid 100, Python 3.11.7) written to {svg_path}\n"
        )),
        "{out}"
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        doc.descendants().any(|n| n.text() == Some("app.Order")),
        "{svg}"
    );
}

#[test]
fn output_png_is_a_png_and_other_extensions_are_refused() {
    let dir = TempDir::new("png");
    let path = two_processes(&dir);
    let png_path = dir.path("growth.PNG");
    let (status, _, err) = run(&[&path, "--pid", "100", "-o", &png_path]);
    assert_eq!(status, 0, "{err}");
    let png = std::fs::read(&png_path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    for bad in ["growth.jpg", "growth"] {
        let bad_path = dir.path(bad);
        let (status, out, err) = run(&[&path, "-o", &bad_path]);
        assert_eq!(status, 2, "{out}");
        assert!(out.is_empty(), "{out}");
        assert!(
            err.contains(&format!(
                "cannot tell the chart format from {bad_path}: name the file .svg or .png"
            )),
            "{err}"
        );
        assert!(!Path::new(&bad_path).exists());
    }
}

#[test]
fn a_missing_file_is_an_error_with_a_hint() {
    let dir = TempDir::new("missing");
    let missing = dir.path("nope.db");
    let (status, out, err) = run(&[&missing]);
    assert_eq!(status, 2, "{out}");
    let first = err.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "heaplens: error: cannot read the history {missing}: "
        )),
        "{err}"
    );
    // The reason once, the path once.
    assert_eq!(first.matches(&missing).count(), 1, "{err}");
    assert!(
        err.contains("hint: check the path; `heaplens run` writes"),
        "{err}"
    );
    assert!(
        !Path::new(&missing).exists(),
        "reading must not create the file"
    );
}

#[test]
fn files_that_are_not_histories_are_refused_with_a_hint() {
    let dir = TempDir::new("not-history");
    let text = dir.path("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text padding it out\n",
    )
    .unwrap();
    let (status, _, err) = run(&[&text]);
    assert_eq!(status, 2);
    assert!(err.contains("not an SQLite database"), "{err}");
    assert!(
        err.contains("hint: the file is damaged or is not a heaplens history"),
        "{err}"
    );

    let other = dir.path("users.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE users(name TEXT); INSERT INTO users VALUES ('ann')")
        .unwrap();
    drop(conn);
    let (status, _, err) = run(&[&other]);
    assert_eq!(status, 2);
    assert!(err.contains("not a heaplens history"), "{err}");
    assert!(
        err.contains("hint: the file is damaged or is not a heaplens history"),
        "{err}"
    );

    // A history of a future format version.
    let newer = dir.path("newer.db");
    drop(write(Path::new(&newer), 1, "app.py", 3, leaky));
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'version'", [])
        .unwrap();
    drop(conn);
    let (status, _, err) = run(&[&newer]);
    assert_eq!(status, 2);
    assert!(err.contains("history format version 99"), "{err}");
    assert!(
        err.contains("hint: read it with the heaplens version that wrote it"),
        "{err}"
    );
}

#[test]
fn a_history_without_samples_is_an_error_with_a_hint() {
    let dir = TempDir::new("empty");
    let path = dir.path("app.db");
    let writer = write(Path::new(&path), 100, "app.py", 0, leaky);
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 2, "{out}");
    assert!(
        err.contains(&format!(
            "cannot read the history {path}: no samples in it yet (1 process registered)"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: the program stopped (or is still starting)"),
        "{err}"
    );
    drop(writer);

    // An empty file: what a program killed while it created its history leaves.
    let empty = dir.path("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (status, _, err) = run(&[&empty]);
    assert_eq!(status, 2);
    assert!(
        err.contains("no samples in it yet (no process registered)"),
        "{err}"
    );
    assert!(
        err.contains("hint: the program stopped (or is still starting)"),
        "{err}"
    );

    // A second process with samples: the first is shown as having none, and cannot be chosen.
    drop(write(Path::new(&path), 200, "app.py", 5, leaky));
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("app.py (pid 100, Python 3.11.7): started "),
        "{out}"
    );
    assert!(out.contains(" UTC; no samples yet\n"), "{out}");
    let (status, _, err) = run(&[&path, "--pid", "100"]);
    assert_eq!(status, 2);
    assert!(err.contains("pid 100 has no samples in it yet"), "{err}");
}

#[test]
fn a_history_being_written_can_be_read_and_shows_new_samples() {
    let dir = TempDir::new("live");
    let path = dir.path("app.db");
    let mut writer = write(Path::new(&path), 100, "app.py", 20, leaky);
    // The samples are in the write-ahead log, not yet in the database file.
    assert!(Path::new(&format!("{path}-wal")).exists());
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("; 20 samples over 19 min"), "{out}");
    let mut history = History::new(usize::MAX);
    for i in 0..20 {
        history.push_values(
            Sample::default(),
            leaky(i).iter().map(|&(n, c)| (n, c, c * 56)),
        );
    }
    for i in 20..30 {
        append(&mut writer, &mut history, 100, i, leaky);
    }
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("; 30 samples over 29 min"), "{out}");
    let order = row(&out, 100, "app.Order").expect(&out);
    assert!(order.contains("100 ->         825"), "{order}");
    // The reader left the writer able to go on.
    append(&mut writer, &mut history, 100, 30, leaky);
}

#[test]
fn few_samples_are_said_plainly() {
    let dir = TempDir::new("few");
    let path = dir.path("app.db");
    drop(write(Path::new(&path), 100, "app.py", 2, leaky));
    let (status, out, err) = run(&[&path]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("; 2 samples over 1 min\n"), "{out}");
    assert!(
        out.contains("Too few samples (2) to tell steady growth from noise"),
        "{out}"
    );
    assert!(out.contains("Types that moved most:"), "{out}");
}

#[test]
fn help_describes_the_options() {
    let (status, out, _) = run(&["--help"]);
    assert_eq!(status, 0);
    for option in ["--pid", "--top", "--all", "--output", "--type", "FILE.db"] {
        assert!(out.contains(option), "{option}: {out}");
    }
}

#[test]
fn series_times_have_the_decimals_the_samples_need() {
    let dir = TempDir::new("decimals");
    for (name, gaps, expected) in [
        ("slow.db", [1234, 1266], ["0.0", "1.2", "2.5"]),
        ("fast.db", [250, 250], ["0.000", "0.250", "0.500"]),
    ] {
        let path = dir.path(name);
        let mut writer = HistoryWriter::open(Path::new(&path), 1, "app.py", PYTHON).unwrap();
        let mut history = History::new(10);
        let mut taken_ms = T0;
        for (i, gap) in [0, gaps[0], gaps[1]].into_iter().enumerate() {
            taken_ms += gap;
            let sample = Sample {
                taken_ms,
                ..Sample::default()
            };
            let changes = history.push_values(sample, [("app.Order", i as u64, 56)]);
            writer.append(&sample, &changes).unwrap();
        }
        let (status, out, err) = run(&[&path, "--type", "app.Order"]);
        assert_eq!(status, 0, "{err}");
        let times: Vec<&str> = out
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(times, expected, "{out}");
    }
}
