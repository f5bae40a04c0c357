//! The text report of a sampled run: what `heaplens run` prints at exit.

use super::chart::{duration, native_growth_beside, rate};
use super::{sparkline, History, TypeTrend};
use crate::analysis::ranking;
use crate::analysis::report::{bytes, count, signed};
use std::fmt::Write;

pub use crate::analysis::held::WhereHeld;

/// When the resident set grew much more than the Python objects did (the rule of
/// [`native_growth`]), what to say about it.
pub fn native_growth_note(history: &History, own: u64) -> Option<String> {
    let g = native_growth_beside(history, own)?;
    Some(format!(
        "rss grew by {} while Python objects{} grew by {}: the growth is mostly outside Python \
         objects (C extensions, native buffers, allocator fragmentation{}).",
        bytes(g.rss_to.saturating_sub(g.rss_from)),
        if g.gc_only { " (gc-tracked)" } else { "" },
        bytes(g.bytes_to.saturating_sub(g.bytes_from)),
        if g.gc_only {
            "; or objects the collector does not track, which a gc-only census does not \
             count: str, bytes, numbers, and dicts and tuples holding only those; sample with \
             --all-objects to tell"
        } else {
            ""
        }
    ))
}

/// Why `samples` samples cannot tell steady growth from noise, or None when they can (three
/// at least: the steadiness rule compares the quarters of a run).
pub fn too_few_samples(samples: usize) -> Option<String> {
    (samples < 3).then(|| {
        format!(
            "Too few samples ({samples}) to tell steady growth from noise: run longer, or sample \
             more often (--period)."
        )
    })
}

/// How memory moved from the first sample of `history` to the newest (RSS, Python objects),
/// and the native-growth note when there is one: the lines under a report's heading.
pub fn memory_lines(history: &History, own: u64, out: &mut String) {
    let (Some(first), Some(last)) = (history.samples().next(), history.latest()) else {
        return;
    };
    let _ = writeln!(
        out,
        "  rss {} -> {}; Python objects{} {} -> {}",
        bytes(first.rss),
        bytes(last.rss),
        if last.gc_only { " (gc-tracked)" } else { "" },
        count(first.objects),
        count(last.objects)
    );
    if let Some(note) = native_growth_note(history, own) {
        let _ = writeln!(out, "  {note}");
    }
}

/// The table of `trends`: type, first and last count, growth (for steady growers the rate, in
/// the unit that suits a history spanning `span_ms`, see [`rate`]; for the others the net
/// change), sparkline.
pub fn trend_table(trends: &[&TypeTrend], span_ms: u64, out: &mut String) {
    let width = trends
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>11}    {:>11}  {:>12}  trend",
        "type", "first", "last", "growth"
    );
    for t in trends {
        let name: String = t.name.chars().take(width).collect();
        let _ = writeln!(
            out,
            "  {:<width$}  {:>11} -> {:>11}  {:>12}  {}",
            name,
            count(t.first),
            count(t.last),
            // A rate only means something for steady growth; for the rest, the net change
            // (a sawtooth's rate depends on where the last sample fell).
            if t.steady {
                rate(t.per_hour, span_ms)
            } else {
                format!("{} net", signed(t.last as i64 - t.first as i64))
            },
            sparkline(&t.counts, 20)
        );
    }
}

/// What `heaplens run` prints at exit: the run's figures, the types that grew steadily (at most
/// `limit`), and where each is held (`held`, from a snapshot at exit).
pub fn run_report(
    program: &str,
    history: &History,
    trends: &[TypeTrend],
    period: f64,
    held: &[WhereHeld],
    limit: usize,
    own: u64,
) -> String {
    let mut out = String::new();
    let (Some(first), Some(last)) = (history.samples().next(), history.latest()) else {
        let _ = writeln!(out, "heaplens: {program}: no samples were taken.");
        return out;
    };
    let span_ms = last.taken_ms.saturating_sub(first.taken_ms);
    let _ = writeln!(
        out,
        "heaplens: {program} ran for {}: {} samples (every {} s)",
        duration(span_ms),
        count(history.len() as u64),
        // Two significant digits: 0.05, 0.25, 1.0, 12.
        if period < 1.0 {
            format!("{period:.2}")
        } else {
            format!("{period:.1}")
        }
    );
    memory_lines(history, own, &mut out);
    if let Some(why) = too_few_samples(history.len()) {
        let _ = writeln!(out, "\n{why}");
        return out;
    }
    let where_held = |t: &TypeTrend| held.iter().find(|h| h.type_name == t.name);
    // A cache filling up to the bound it declares grows steadily, and stops: no leak. Nor is
    // cyclic garbage the collector will free, which a census between collections counts.
    let (collectable, steady): (Vec<&TypeTrend>, Vec<&TypeTrend>) = trends
        .iter()
        .filter(|t| t.steady)
        .partition(|t| where_held(t).is_some_and(|h| h.collectable));
    let (bounded, mut steady): (Vec<&TypeTrend>, Vec<&TypeTrend>) = steady
        .into_iter()
        .partition(|t| where_held(t).is_some_and(|h| h.bounded));
    // The one ranking of every report (`analysis::ranking`): the type that is the leak (what
    // its container holds) first, then other classes, then the generic types that grow inside
    // them (the list in each leaked order); the sort is stable, so within each the fastest
    // growers come first. Ranked before the limit, so a class is not cut off by library types
    // that grow as fast.
    let tier = |t: &TypeTrend| match where_held(t) {
        Some(h) if !h.entry_type.is_empty() && h.entry_type != t.name => 2,
        _ if ranking::is_generic(&t.name) => 1,
        _ => 0,
    };
    steady.sort_by_key(|t| tier(t));
    steady.truncate(limit);
    if !bounded.is_empty() {
        let _ = writeln!(out, "\nFilling caches up to their bound (not leaks):");
        for t in &bounded {
            let h = where_held(t).expect("partitioned on it");
            let _ = writeln!(out, "  {} held by {}", t.name, h.holder);
        }
    }
    if !collectable.is_empty() {
        let names: Vec<&str> = collectable.iter().map(|t| t.name.as_str()).collect();
        let _ = writeln!(
            out,
            "\nGrew between collections (cyclic garbage the collector frees, not leaks): {}",
            names.join(", ")
        );
    }
    if steady.is_empty() {
        let _ = writeln!(out, "\nNo type grew steadily.");
        return out;
    }
    let _ = writeln!(out, "\nTypes that grew steadily:");
    let mut table = String::new();
    trend_table(&steady, span_ms, &mut table);
    let mut lines = table.lines();
    if let Some(header) = lines.next() {
        let _ = writeln!(out, "{header}");
    }
    for (t, row) in steady.iter().zip(lines) {
        let _ = writeln!(out, "{row}");
        if let Some(h) = held.iter().find(|h| h.type_name == t.name) {
            let _ = write!(out, "      held by {}", h.holder);
            if h.entries > 0 {
                if h.entry_type == h.type_name || h.entry_type.is_empty() {
                    let _ = write!(out, " ({} of them", count(h.entries));
                } else {
                    // A payload type (the lists inside leaked orders): say whose.
                    let _ = write!(
                        out,
                        " (inside the {} {} it holds",
                        count(h.entries),
                        h.entry_type
                    );
                }
                if !h.sample_label.is_empty() {
                    let _ = write!(out, ", e.g. {}", h.sample_label);
                }
                let _ = write!(out, ")");
            }
            let _ = writeln!(out);
            if let Some(frame) = h.allocated_at.last() {
                let _ = writeln!(out, "      allocated at {frame}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{trends, Sample};
    use super::*;

    #[test]
    fn the_report_names_the_steady_type_where_it_is_held_and_its_rate() {
        let mut h = History::new(100);
        for s in 0..10u64 {
            let sample = Sample {
                taken_ms: s * 1000,
                pid: 1,
                rss: (20 << 20) + s * (1 << 20),
                objects: 1000 + s * 100,
                bytes: 100_000 + s * 10_000,
                gc_only: true,
                census_us: 100,
            };
            h.push_values(
                sample,
                [("app.Session", s * 100, s * 5600), ("dict", 50, 5000)],
            );
        }
        let t = trends(&h);
        let held = [WhereHeld {
            type_name: "app.Session".into(),
            holder: "module app -> .__dict__['_SESSIONS'] -> dict".into(),
            entries: 900,
            entry_type: "app.Session".into(),
            sample_label: "['req-1']".into(),
            bounded: false,
            sample_address: 0,
            allocated_at: vec![
                "app.py:3: login()".into(),
                "app.py:9: _SESSIONS[k] = Session()".into(),
            ],
            collectable: false,
        }];
        let text = run_report("app.py", &h, &t, 1.0, &held, 10, 0);
        assert!(
            text.starts_with("heaplens: app.py ran for 9 s: 10 samples (every 1.0 s)\n"),
            "{text}"
        );
        assert!(
            text.contains("rss 20.0 MiB -> 29.0 MiB; Python objects (gc-tracked) 1,000 -> 1,900")
        );
        assert!(
            text.contains("Types that grew steadily:\n  type "),
            "{text}"
        );
        assert_eq!(text.matches("  type ").count(), 1, "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("app.Session"))
            .unwrap();
        assert!(
            row.contains("0 ->         900") && row.contains("+100/s"),
            "{row}"
        );
        assert!(text.contains(
            "      held by module app -> .__dict__['_SESSIONS'] -> dict (900 of them, e.g. ['req-1'])\n      allocated at app.py:9: _SESSIONS[k] = Session()\n"
        ));
        assert!(
            !text.contains("dict  "),
            "a flat type is not listed: {text}"
        );
    }

    #[test]
    fn the_leaking_class_comes_first_and_bounded_caches_are_no_leak() {
        let mut h = History::new(100);
        for s in 0..10u64 {
            let sample = Sample {
                taken_ms: s * 1000,
                gc_only: true,
                ..Sample::default()
            };
            h.push_values(
                sample,
                [
                    ("weakref.ReferenceType", s * 200, s * 80),
                    ("list", s * 150, s * 80),
                    ("app.Handler", s * 100, s * 80),
                    ("app.Rendered", s * 120, s * 80),
                ],
            );
        }
        let t = trends(&h);
        let held = |type_name: &str, entry_type: &str, bounded| WhereHeld {
            type_name: type_name.into(),
            holder: "module app -> .__dict__['x'] -> list".into(),
            entries: 900,
            entry_type: entry_type.into(),
            sample_label: String::new(),
            bounded,
            sample_address: 0,
            allocated_at: Vec::new(),
            collectable: false,
        };
        let held = [
            held("app.Handler", "app.Handler", false),
            held("list", "app.Handler", false),
            held("app.Rendered", "app.Rendered", true),
        ];
        let text = run_report("app.py", &h, &t, 1.0, &held, 1, 0);
        let rows = text.split("Types that grew steadily:\n").nth(1).unwrap();
        let first = rows.lines().nth(1).unwrap().trim_start();
        assert!(first.starts_with("app.Handler "), "{text}");
        assert_eq!(
            rows.lines().filter(|l| l.contains("->  ")).count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("Filling caches up to their bound (not leaks):\n  app.Rendered held by"),
            "{text}"
        );
        assert!(!rows.contains("app.Rendered"), "{text}");
    }

    #[test]
    fn too_few_samples_and_no_growth_are_said_plainly() {
        let mut h = History::new(10);
        let s = Sample::default();
        h.push_values(s, [("dict", 1, 1)]);
        h.push_values(s, [("dict", 2, 1)]);
        assert!(run_report("x", &h, &trends(&h), 1.0, &[], 5, 0).contains("Too few samples (2)"));
        h.push_values(s, [("dict", 2, 1)]);
        h.push_values(s, [("dict", 2, 1)]);
        assert!(run_report("x", &h, &trends(&h), 1.0, &[], 5, 0).contains("No type grew steadily."));
        assert!(run_report("x", &History::new(5), &[], 1.0, &[], 5, 0).contains("no samples"));
    }

    #[test]
    fn native_growth_is_pointed_out() {
        let mut h = History::new(10);
        for s in 0..8u64 {
            let sample = Sample {
                taken_ms: s * 1000,
                rss: (50 << 20) + s * (20 << 20),
                bytes: 1 << 20,
                gc_only: true,
                ..Sample::default()
            };
            h.push_values(sample, [("dict", 1 + s % 2, 1)]);
        }
        let text = run_report("x", &h, &trends(&h), 1.0, &[], 5, 0);
        assert!(
            text.contains("rss grew by 100.0 MiB while Python objects (gc-tracked) grew by 0 B"),
            "{text}"
        );
        assert!(text.contains("--all-objects"));
    }

    #[test]
    fn cyclic_garbage_the_collector_frees_is_no_steady_growth() {
        let mut h = History::new(100);
        for s in 0..12u64 {
            let sample = Sample {
                taken_ms: s * 50,
                pid: 1,
                objects: 1000 + s * 10,
                gc_only: true,
                ..Sample::default()
            };
            h.push_values(sample, [("app.Node", s * 30, s * 1600)]);
        }
        let t = trends(&h);
        assert!(t[0].steady, "the counts alone look like a leak");
        let held = [WhereHeld {
            type_name: "app.Node".into(),
            holder: "cyclic garbage the collector has not freed yet".into(),
            entries: 56,
            entry_type: "app.Node".into(),
            collectable: true,
            ..WhereHeld::default()
        }];
        let text = run_report("app.py", &h, &t, 0.05, &held, 10, 0);
        assert!(!text.contains("Types that grew steadily"), "{text}");
        assert!(text.contains("No type grew steadily."), "{text}");
        assert!(
            text.contains("Grew between collections (cyclic garbage the collector frees, not leaks): app.Node"),
            "{text}"
        );
        // The same growth held by a container is a leak.
        let kept = [WhereHeld {
            collectable: false,
            holder: "module app -> .__dict__['NODES'] -> list".into(),
            ..held[0].clone()
        }];
        let text = run_report("app.py", &h, &t, 0.05, &kept, 10, 0);
        assert!(text.contains("Types that grew steadily"), "{text}");
    }
}
