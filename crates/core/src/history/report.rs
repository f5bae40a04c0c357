//! The text report of a sampled run: what `heaplens run` prints at exit.

use super::chart::{duration, native_growth, rate};
use super::{sparkline, History, TypeTrend};
use crate::analysis::report::{bytes, count, signed};
use std::fmt::Write;

/// Where the objects of a growing type are held, as found in a snapshot taken at the end.
#[derive(Clone, Debug, Default)]
pub struct WhereHeld {
    pub type_name: String,
    /// The rendered retaining path of the container (`module app -> .__dict__['CACHE'] -> dict`),
    /// or what holds them when it is not one container (`uncollected cyclic garbage`).
    pub holder: String,
    /// How many objects the container holds directly...
    pub entries: u64,
    /// ...and their type: the growing type itself, or the type of the objects it is part of
    /// (`app.Order` for the `list` of each order's lines).
    pub entry_type: String,
    /// The label of the container's reference to one of them (`['k42']`, `[17]`).
    pub sample_label: String,
}

/// When the resident set grew much more than the Python objects did (the rule of
/// [`native_growth`]), what to say about it.
pub fn native_growth_note(history: &History) -> Option<String> {
    let g = native_growth(history)?;
    Some(format!(
        "rss grew by {} while Python objects{} grew by {}: the growth is mostly outside Python \
         objects (C extensions, native buffers, allocator fragmentation{}).",
        bytes(g.rss_to.saturating_sub(g.rss_from)),
        if g.gc_only { " (gc-tracked)" } else { "" },
        bytes(g.bytes_to.saturating_sub(g.bytes_from)),
        if g.gc_only {
            "; or str, bytes and numbers, which a gc-only census does not count: \
             sample with --all-objects to tell"
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
pub fn memory_lines(history: &History, out: &mut String) {
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
    if let Some(note) = native_growth_note(history) {
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
    memory_lines(history, &mut out);
    if let Some(why) = too_few_samples(history.len()) {
        let _ = writeln!(out, "\n{why}");
        return out;
    }
    let mut steady: Vec<&TypeTrend> = trends.iter().filter(|t| t.steady).take(limit).collect();
    // A type that grows inside another (the list in each leaked order) comes after the type
    // that is the leak; the sort is stable, so the fastest growers still come first.
    let is_payload = |t: &TypeTrend| {
        held.iter()
            .any(|h| h.type_name == t.name && !h.entry_type.is_empty() && h.entry_type != t.name)
    };
    steady.sort_by_key(|t| is_payload(t));
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
        }];
        let text = run_report("app.py", &h, &t, 1.0, &held, 10);
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
            "      held by module app -> .__dict__['_SESSIONS'] -> dict (900 of them, e.g. ['req-1'])"
        ));
        assert!(
            !text.contains("dict  "),
            "a flat type is not listed: {text}"
        );
    }

    #[test]
    fn too_few_samples_and_no_growth_are_said_plainly() {
        let mut h = History::new(10);
        let s = Sample::default();
        h.push_values(s, [("dict", 1, 1)]);
        h.push_values(s, [("dict", 2, 1)]);
        assert!(run_report("x", &h, &trends(&h), 1.0, &[], 5).contains("Too few samples (2)"));
        h.push_values(s, [("dict", 2, 1)]);
        h.push_values(s, [("dict", 2, 1)]);
        assert!(run_report("x", &h, &trends(&h), 1.0, &[], 5).contains("No type grew steadily."));
        assert!(run_report("x", &History::new(5), &[], 1.0, &[], 5).contains("no samples"));
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
        let text = run_report("x", &h, &trends(&h), 1.0, &[], 5);
        assert!(
            text.contains("rss grew by 100.0 MiB while Python objects (gc-tracked) grew by 0 B"),
            "{text}"
        );
        assert!(text.contains("--all-objects"));
    }
}
