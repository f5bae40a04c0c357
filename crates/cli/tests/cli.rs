//! The `heaplens` command line on real snapshot files, as a user runs it.

mod common;

use common::{heap, run, TempDir};

#[test]
fn report_shows_the_biggest_retainer_with_its_path() {
    let dir = TempDir::new("report");
    let after = dir.save("after.hlsnap", &heap(500, 7));
    let (status, out, err) = run(&["report", &after]);
    assert_eq!(status, 0, "{err}");
    assert!(out.starts_with("heaplens report: "), "{out}");
    assert!(
        out.contains("module app -> .__dict__['CACHE'] -> dict"),
        "{out}"
    );
    assert!(out.contains("app.Order"), "{out}");
}

#[test]
fn diff_exits_1_and_names_the_leak_when_something_accumulates() {
    let dir = TempDir::new("diff");
    let before = dir.save("before.hlsnap", &heap(10, 7));
    let after = dir.save("after.hlsnap", &heap(510, 7));
    let (status, out, _) = run(&["diff", &before, &after]);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("1. app.Order x500"), "{out}");
    assert!(
        out.contains("held by: module app -> .__dict__['CACHE'] -> dict"),
        "{out}"
    );
    let (status, out, _) = run(&["diff", &before, &after, "--min-objects", "1000"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("No leak suspects"), "{out}");
}

#[test]
fn diff_exits_0_without_growth() {
    let dir = TempDir::new("same");
    let a = dir.save("a.hlsnap", &heap(100, 7));
    let b = dir.save("b.hlsnap", &heap(100, 7));
    let (status, out, _) = run(&["diff", &a, &b]);
    assert_eq!(status, 0, "{out}");
}

#[test]
fn diff_refuses_snapshots_of_two_processes() {
    let dir = TempDir::new("pids");
    let a = dir.save("a.hlsnap", &heap(10, 7));
    let b = dir.save("b.hlsnap", &heap(100, 8));
    let (status, _, err) = run(&["diff", &a, &b]);
    assert_eq!(status, 2);
    assert!(err.contains("different processes"), "{err}");
}

#[test]
fn export_writes_a_chrome_heap_snapshot() {
    let dir = TempDir::new("export");
    let after = dir.save("after.hlsnap", &heap(20, 7));
    let out_path = dir.0.join("after.heapsnapshot");
    let out_arg = out_path.to_string_lossy().into_owned();
    let (status, _, err) = run(&["export", &after, "--format", "chrome", "-o", &out_arg]);
    assert_eq!(status, 0, "{err}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        text.starts_with("{\"snapshot\":"),
        "{}",
        &text[..text.len().min(80)]
    );
    assert!(text.contains("app.Order"));
    let (status, stdout, _) = run(&["export", &after, "-o", "-"]);
    assert_eq!(status, 0);
    assert_eq!(stdout, text);
}

#[test]
fn errors_are_clear_and_end_with_a_hint() {
    let dir = TempDir::new("errors");
    let missing = dir.0.join("missing.hlsnap").to_string_lossy().into_owned();
    let (status, _, err) = run(&["report", &missing]);
    assert_eq!(status, 2);
    assert!(err.contains("missing.hlsnap"), "{err}");
    assert!(err.contains("hint: check the path"), "{err}");

    let corrupt = dir.0.join("corrupt.hlsnap");
    std::fs::write(&corrupt, b"this is not a snapshot at all").unwrap();
    let (status, _, err) = run(&["report", &corrupt.to_string_lossy()]);
    assert_eq!(status, 2);
    assert!(err.contains("not a readable heaplens snapshot"), "{err}");
    assert!(err.contains("hint: the file is damaged"), "{err}");
}

#[test]
fn bad_arguments_are_usage_errors_and_help_is_not() {
    let (status, _, err) = run(&["diff", "only-one.hlsnap"]);
    assert_eq!(status, 2);
    assert!(err.contains("Usage"), "{err}");
    let (status, _, err) = run(&["frobnicate"]);
    assert_eq!(status, 2, "{err}");
    let (status, out, _) = run(&["--help"]);
    assert_eq!(status, 0);
    for command in ["report", "diff", "export"] {
        assert!(out.contains(command), "{out}");
    }
    let (status, out, _) = run(&["--version"]);
    assert_eq!(status, 0);
    assert!(out.contains(heaplens_core::VERSION));
}
