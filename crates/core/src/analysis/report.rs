//! Reports a person reads: the summary of one snapshot (biggest types, biggest retainers,
//! garbage) and of a comparison (what grew, and the leak suspects with their paths).
//!
//! Plain text, aligned, sizes in KiB/MiB/GiB, counts with thousands separators. Every name in a
//! report comes from the heap being analysed, which is untrusted: names are printed through
//! [`crate::label::quote`] where they appear in paths, and the text is never interpreted.

use super::diff::{Holder, SnapshotDiff};
use super::dominators::Dominators;
use super::paths::RetainingPaths;
use crate::census::Census;
use crate::graph::{Graph, NodeFlags, NodeId};
use crate::label::LabelKind;
use crate::text::visible_name;
use std::fmt::Write;

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count: `+1,024`, `-3`.
pub fn signed(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", count(n.unsigned_abs()))
}

/// Bytes as `512 B`, `3.4 KiB`, `12.1 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn signed_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", bytes(n.unsigned_abs()))
}

/// The width of a column of names, in characters (as `{:<width$}` pads), 4 to 60.
fn column_width(names: &[std::borrow::Cow<'_, str>]) -> usize {
    names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60)
}

/// Whether `v` is interpreter infrastructure rather than data: modules, classes, the dicts
/// that are their `__dict__`, synthetic nodes. The biggest-retainer list leaves them out: a
/// module retaining its globals says nothing.
pub fn is_infrastructure(graph: &Graph, paths: &RetainingPaths, v: NodeId) -> bool {
    let flags = graph.flags(v);
    if flags.intersects(NodeFlags::SYNTHETIC | NodeFlags::MODULE | NodeFlags::TYPE) {
        return true;
    }
    match paths.parent(graph, v) {
        Some(p)
            if graph
                .flags(p)
                .intersects(NodeFlags::MODULE | NodeFlags::TYPE) =>
        {
            graph
                .edge_range(p)
                .map(|e| graph.edge(e))
                .any(|(t, l)| t == v && l.kind() == LabelKind::Field)
        }
        _ => false,
    }
}

fn header(graph: &Graph) -> String {
    let census = Census::from_graph(graph);
    let meta = graph.meta();
    let python = meta.python_version.split_whitespace().next().unwrap_or("?");
    format!(
        "{} objects, {} references, {} (Python {python}, pid {}, {})",
        count(census.total_count()),
        count(graph.edge_count() as u64),
        bytes(census.total_bytes()),
        meta.pid,
        meta.producer,
    )
}

/// The summary of one snapshot.
pub fn snapshot_report(
    graph: &Graph,
    dominators: &Dominators,
    paths: &RetainingPaths,
    limit: usize,
) -> String {
    let mut out = String::new();
    let census = Census::from_graph(graph);
    let _ = writeln!(out, "heaplens report: {}\n", header(graph));

    let _ = writeln!(out, "Biggest types (shallow size)");
    let rows = census.top_by_bytes(limit);
    let names: Vec<_> = rows.iter().map(|r| visible_name(&r.name)).collect();
    let width = column_width(&names);
    for (r, name) in rows.iter().zip(&names) {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>12} objects  {:>10}",
            name,
            count(r.count),
            bytes(r.bytes)
        );
    }

    let _ = writeln!(
        out,
        "\nBiggest retainers (retained size: what freeing the object would free)"
    );
    let top = dominators.top_retainers(graph, limit, |v| is_infrastructure(graph, paths, v));
    for v in top {
        let path = paths
            .path(graph, v)
            .map(|p| p.render(graph))
            .unwrap_or_else(|| super::paths::display(graph, v));
        let _ = writeln!(
            out,
            "  {:>10}  {:>10} objects  {path}",
            bytes(dominators.retained_size(v)),
            count(dominators.retained_count(v)),
        );
        // The line that made it, when the snapshot recorded where objects were allocated.
        if let Some(line) = graph.allocated_at(v).last() {
            let _ = writeln!(out, "  {:>10}  {:>10}          allocated at {line}", "", "");
        }
    }

    let garbage: Vec<NodeId> = graph
        .objects()
        .filter(|&v| graph.flags(v).contains(NodeFlags::UNREACHABLE))
        .collect();
    if garbage.is_empty() {
        let _ = writeln!(
            out,
            "\nNo unreachable objects (no cyclic garbage waiting for the collector)."
        );
    } else {
        let total: u64 = garbage.iter().map(|&v| graph.size(v)).sum();
        let _ = writeln!(
            out,
            "\nUnreachable: {} objects, {} of cyclic garbage the collector has not freed (is gc disabled?)",
            count(garbage.len() as u64),
            bytes(total)
        );
        let mut entries = dominators.garbage_entries().to_vec();
        entries.sort_by_key(|&v| std::cmp::Reverse(dominators.retained_size(v)));
        for &v in entries.iter().take(limit.min(5)) {
            let _ = writeln!(
                out,
                "  {:>10}  {:>10} objects  {}",
                bytes(dominators.retained_size(v)),
                count(dominators.retained_count(v)),
                super::paths::display(graph, v)
            );
        }
    }
    out
}

/// The comparison of two snapshots: what grew, and the suspects.
pub fn diff_report(before: &Graph, after: &Graph, diff: &SnapshotDiff, limit: usize) -> String {
    let mut out = String::new();
    let b = Census::from_graph(before);
    let a = Census::from_graph(after);
    let _ = writeln!(
        out,
        "heaplens diff: {} -> {} objects ({}), {} -> {} ({})\n",
        count(b.total_count()),
        count(a.total_count()),
        signed(a.total_count() as i64 - b.total_count() as i64),
        bytes(b.total_bytes()),
        bytes(a.total_bytes()),
        signed_bytes(a.total_bytes() as i64 - b.total_bytes() as i64),
    );
    let grew: Vec<_> = diff
        .types
        .iter()
        .filter(|t| t.count_delta > 0)
        .take(limit)
        .collect();
    if grew.is_empty() {
        let _ = writeln!(out, "No type grew.");
    } else {
        let _ = writeln!(out, "Types that grew");
        let names: Vec<_> = grew.iter().map(|t| visible_name(&t.name)).collect();
        let width = column_width(&names);
        for (t, name) in grew.iter().zip(&names) {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>10}  {:>12} now  {:>11}",
                name,
                signed(t.count_delta),
                count(t.count),
                signed_bytes(t.bytes_delta)
            );
        }
    }
    let _ = writeln!(out);
    let ignored = match diff.ignored {
        0 => String::new(),
        1 => "; 1 suspect ignored, as asked".to_string(),
        n => format!("; {n} suspects ignored, as asked"),
    };
    if diff.suspects.is_empty() {
        let _ = writeln!(
            out,
            "No leak suspects ({} new objects in all{ignored}).",
            count(diff.new_objects)
        );
        settled(&mut out, diff);
        in_flight(&mut out, after, diff);
        return out;
    }
    settled(&mut out, diff);
    if diff.ignored > 0 {
        let _ = writeln!(out, "({})", &ignored[2..]);
    }
    let _ = writeln!(out, "Leak suspects");
    for (i, s) in diff.suspects.iter().enumerate() {
        let what = match s.holder {
            Holder::Garbage => "uncollected cyclic garbage: ".to_string(),
            Holder::Roots => "new roots: ".to_string(),
            Holder::Node(_) => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}. {what}{} x{} (+{} objects, +{} with what they hold)",
            i + 1,
            visible_name(&s.entry_type),
            count(s.entries),
            count(s.objects),
            bytes(s.bytes)
        );
        if let Some(path) = &s.holder_path {
            let _ = writeln!(out, "     held by: {}", path.render(after));
        }
        if !s.sample_label.is_empty() {
            let _ = writeln!(out, "     e.g. via {}", s.sample_label);
        }
        let types: Vec<String> = s
            .types
            .iter()
            .take(5)
            .map(|(name, c, _)| format!("{name} {}", count(*c)))
            .collect();
        let _ = writeln!(out, "     new objects: {}", types.join(", "));
        for also in &s.also {
            let _ = writeln!(out, "     also: {also}");
        }
        if !s.allocated_at.is_empty() {
            // The innermost calls say where; more than a few say little more.
            let _ = writeln!(out, "     allocated at (most recent call last):");
            let shown = s.allocated_at.len().saturating_sub(ALLOCATION_FRAMES);
            for frame in &s.allocated_at[shown..] {
                let _ = writeln!(out, "       {frame}");
            }
        }
    }
    in_flight(&mut out, after, diff);
    out
}

/// How many new objects were warm-up: said, so that the types that grew add up.
fn settled(out: &mut String, diff: &SnapshotDiff) {
    if diff.settled > 0 {
        let _ = writeln!(
            out,
            "({} new objects came with modules imported since the earlier snapshot or with the \
             entries of bounded caches: warm-up, not counted as growth.)",
            count(diff.settled)
        );
    }
}

/// The groups left out as work in flight, briefly: said, so that a user whose leak is in a
/// request still running knows where it went.
fn in_flight(out: &mut String, after: &Graph, diff: &SnapshotDiff) {
    if diff.in_flight.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nNot counted: new objects held by code that was still running (work in flight, freed \
         when it returns; compare again to see whether it does)"
    );
    for s in diff.in_flight.iter().take(3) {
        let held_by = s
            .holder_path
            .as_ref()
            .map(|p| p.render(after))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} x{} held by {held_by}",
            visible_name(&s.entry_type),
            count(s.entries)
        );
    }
    if diff.in_flight.len() > 3 {
        let _ = writeln!(out, "  and {} more", diff.in_flight.len() - 3);
    }
}

/// How many frames of an allocation traceback a report shows (the most recent).
pub const ALLOCATION_FRAMES: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(signed(-1200), "-1,200");
        assert_eq!(signed(5), "+5");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn columns_stay_aligned_when_names_hold_escaped_or_wide_characters() {
        let names = ["app.Order\u{202e}", "app.Café", "a\\b"];
        let shown: Vec<_> = names.iter().map(|n| visible_name(n)).collect();
        assert_eq!(shown[0], "app.Order\\u202e");
        assert_eq!(shown[2], "a\\\\b");
        let width = column_width(&shown);
        let lines: Vec<String> = shown.iter().map(|n| format!("{n:<width$}|")).collect();
        let bars: Vec<usize> = lines
            .iter()
            .map(|l| l.chars().position(|c| c == '|').unwrap())
            .collect();
        assert!(bars.iter().all(|&b| b == bars[0]), "{lines:?}");
    }
}
