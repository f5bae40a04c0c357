//! `GET <path>/metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Gauges, each with a `pid` label:
//! - `heaplens_rss_bytes`, `heaplens_peak_rss_bytes` (each only when known),
//! - `heaplens_python_objects`, `heaplens_python_object_bytes` (newest sample, else the snapshot),
//! - `heaplens_type_objects{type="..."}` for the [`TOP_TYPES`] most numerous types only, so the
//!   number of series stays bounded however many classes the program creates.
//!
//! Type names are whatever the program called its classes: label values are escaped as the
//! format requires (`\\`, `\"`, `\n`) and shortened to [`MAX_LABEL`] characters.

use crate::api::short_name;
use crate::{Response, Source};
use std::fmt::Write;

/// How many types get a `heaplens_type_objects` series.
pub const TOP_TYPES: usize = 20;
/// Longest label value, in characters.
pub const MAX_LABEL: usize = 200;
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value for the text format: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, pid: u32, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name}{{pid=\"{pid}\"}} {value}");
}

/// The metrics text.
pub fn render(source: &dyn Source) -> String {
    let info = source.info();
    let pid = info.pid;
    let mut rss = info.rss;
    let mut peak = info.peak_rss;
    let mut totals: Option<(u64, u64)> = None;
    let mut top: Vec<(String, u64)> = Vec::new();
    source.with_history(&mut |h| {
        if let Some(s) = h.latest() {
            rss = rss.or((s.rss > 0).then_some(s.rss));
            totals = Some((s.objects, s.bytes));
        }
        let best = h.samples().map(|s| s.rss).max().filter(|&r| r > 0);
        peak = peak.or(best);
        let mut now: Vec<(String, u64)> = h
            .current()
            .filter(|(_, v)| v.0 > 0)
            .map(|(n, v)| (n.to_string(), v.0))
            .collect();
        now.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        now.truncate(TOP_TYPES);
        top = now;
    });
    if totals.is_none() || top.is_empty() {
        if let Some(snap) = source.snapshot() {
            let census = &snap.census();
            totals = totals.or(Some((census.total_count(), census.total_bytes())));
            if top.is_empty() {
                top = census
                    .rows()
                    .iter()
                    .take(TOP_TYPES)
                    .map(|r| (r.name.clone(), r.count))
                    .collect();
            }
        }
    }
    let mut out = String::new();
    if let Some(rss) = rss {
        gauge(
            &mut out,
            "heaplens_rss_bytes",
            "Resident set size of the process.",
            pid,
            rss,
        );
    }
    if let Some(peak) = peak {
        let help = "Peak resident set size of the process.";
        gauge(&mut out, "heaplens_peak_rss_bytes", help, pid, peak);
    }
    if let Some((objects, bytes)) = totals {
        let help = "Python objects counted by the newest census.";
        gauge(&mut out, "heaplens_python_objects", help, pid, objects);
        let help = "Shallow bytes of the Python objects counted by the newest census.";
        gauge(&mut out, "heaplens_python_object_bytes", help, pid, bytes);
    }
    if !top.is_empty() {
        let name = "heaplens_type_objects";
        let _ = writeln!(
            out,
            "# HELP {name} Objects of each of the {TOP_TYPES} most numerous types."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (t, count) in top {
            let t = escape_label(&short_name(&t, MAX_LABEL));
            let _ = writeln!(out, "{name}{{pid=\"{pid}\",type=\"{t}\"}} {count}");
        }
    }
    out
}

/// The `/metrics` response.
pub fn response(source: &dyn Source) -> Response {
    Response::new(200, CONTENT_TYPE, render(source).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("<script>"), "<script>");
        assert_eq!(escape_label("tab\there"), "tab\there");
    }
}
