//! `GET <path>/metrics`: the Prometheus text exposition format, version 0.0.4, designed for
//! finding the leaking process of a fleet.
//!
//! Every series carries a `pid` label (the workers of a pre-fork server each sample their own
//! heap; a history file read by `heaplens metrics` holds several processes). The families, in
//! Prometheus' conventions (base units, `_bytes`, `_seconds`, `_ratio`):
//!
//! | family | type | what |
//! |---|---|---|
//! | `heaplens_info{pid,program}` | gauge | always 1: the program's name, for dashboards |
//! | `heaplens_rss_bytes`, `heaplens_peak_rss_bytes` | gauge | resident set size and its peak (each only when known) |
//! | `heaplens_own_memory_bytes` | gauge | what heaplens itself holds in the process: its kept snapshots and their analyses (a live dashboard's only) |
//! | `heaplens_python_objects`, `heaplens_python_object_bytes` | gauge | objects counted by the newest census and their shallow bytes |
//! | `heaplens_type_objects{type}`, `heaplens_type_object_bytes{type}` | gauge | per type, for the [chosen types](select_types) only |
//! | `heaplens_type_steady_growth{type}` | gauge | 1 when the type's count grew steadily over the sampled window (warm-up left out), else 0 |
//! | `heaplens_steady_growth_types` | gauge | how many types grew steadily: the process's leak signal (0: none) |
//! | `heaplens_history_window_seconds` | gauge | the time the samples span, which the steady verdicts judge |
//! | `heaplens_samples` | gauge | samples kept in that window |
//! | `heaplens_sampler_census_seconds` | gauge | how long the newest census took (the sampler's own cost) |
//! | `heaplens_sampler_overhead_ratio` | gauge | census time over the window's time: the share of one core the sampler took |
//!
//! The per-type label set is bounded: the [`TOP_TYPES`] types with the highest count over the
//! window, the [`TOP_BYTES`] with the most bytes now, and the [`TOP_GROWERS`] steady growers,
//! so at most 40 types per process however many classes the program creates. Choosing by the
//! highest count over the window (not the count now) keeps the set stable from one scrape to
//! the next, and a type that drops to zero keeps its series (at 0) while it is in the window.
//!
//! Type names are whatever the program called its classes: label values are escaped as the
//! format requires (`\\`, `\"`, `\n`) and shortened to [`MAX_LABEL`] characters.

use crate::api::short_name;
use crate::{Response, Source};
use heaplens_core::history::{trends, History, TypeTrend};
use std::fmt::Write;

/// How many types get series for having the highest count over the window.
pub const TOP_TYPES: usize = 20;
/// How many types get series for having the most bytes now.
pub const TOP_BYTES: usize = 10;
/// How many steady growers get series.
pub const TOP_GROWERS: usize = 10;
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

/// One metric family: its help, type, and series (label text, value text).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    series: Vec<(String, String)>,
}

/// Series of several processes, grouped by family as the format requires (all the series of a
/// family follow its `# HELP` and `# TYPE` lines).
#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    fn add(&mut self, name: &'static str, help: &'static str, labels: String, value: String) {
        let family = match self.families.iter().position(|f| f.name == name) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push(Family {
                    name,
                    kind: "gauge",
                    help,
                    series: Vec::new(),
                });
                self.families.last_mut().expect("just pushed")
            }
        };
        family.series.push((labels, value));
    }

    /// Adds the series of one process: `pid`, its program's name when known, its RSS and peak
    /// when known, and its sample history or (without one) its snapshot's census.
    pub fn add_process(&mut self, process: &ProcessMetrics<'_>) {
        let pid = process.pid;
        let labels = format!("pid=\"{pid}\"");
        let history = process.history.filter(|h| !h.is_empty());
        if let Some(program) = process.program {
            let program = escape_label(&short_name(program, MAX_LABEL));
            let help = "Always 1: the process and its program's name.";
            let labels = format!("{labels},program=\"{program}\"");
            self.add("heaplens_info", help, labels, "1".into());
        }
        let mut rss = process.rss;
        let mut peak = process.peak_rss;
        let mut totals = process.totals;
        let mut types: Vec<TypeRow> = Vec::new();
        let mut steady = 0;
        if let Some(h) = history {
            if let Some(s) = h.latest() {
                rss = rss.or((s.rss > 0).then_some(s.rss));
                totals = Some((s.objects, s.bytes));
            }
            peak = peak.or(h.samples().map(|s| s.rss).max().filter(|&r| r > 0));
            let all = trends(h);
            steady = all.iter().filter(|t| t.steady).count();
            types = select_trends(all);
        } else if !process.census.is_empty() {
            types = select_census(process.census);
        }
        if let Some(rss) = rss {
            let help = "Resident set size of the process.";
            self.add("heaplens_rss_bytes", help, labels.clone(), rss.to_string());
        }
        if let Some(peak) = peak {
            let help = "Peak resident set size of the process.";
            self.add(
                "heaplens_peak_rss_bytes",
                help,
                labels.clone(),
                peak.to_string(),
            );
        }
        if let Some(own) = process.own_bytes {
            let help = "Memory heaplens itself holds in the process: the snapshots it keeps and \
                        their analyses.";
            self.add(
                "heaplens_own_memory_bytes",
                help,
                labels.clone(),
                own.to_string(),
            );
        }
        if let Some((objects, bytes)) = totals {
            let help = "Python objects counted by the newest census.";
            self.add(
                "heaplens_python_objects",
                help,
                labels.clone(),
                objects.to_string(),
            );
            let help = "Shallow bytes of the Python objects counted by the newest census.";
            let name = "heaplens_python_object_bytes";
            self.add(name, help, labels.clone(), bytes.to_string());
        }
        for row in &types {
            let t = escape_label(&short_name(&row.name, MAX_LABEL));
            let l = format!("{labels},type=\"{t}\"");
            let help = "Objects of a type, for the types with the most objects or bytes and \
                        the steady growers (at most 40 types per process).";
            self.add(
                "heaplens_type_objects",
                help,
                l.clone(),
                row.count.to_string(),
            );
            let help = "Shallow bytes of the objects of a type (the same types).";
            self.add(
                "heaplens_type_object_bytes",
                help,
                l.clone(),
                row.bytes.to_string(),
            );
            if history.is_some() {
                let help = "1 when the type's count grew steadily over the sampled window (a \
                            warm-up left out), else 0.";
                let value = u8::from(row.steady).to_string();
                self.add("heaplens_type_steady_growth", help, l, value);
            }
        }
        let Some(h) = history else { return };
        let help = "Types whose count grew steadily over the sampled window: the process's \
                    leak signal (0: none).";
        let name = "heaplens_steady_growth_types";
        self.add(name, help, labels.clone(), steady.to_string());
        let first = h.samples().next().map_or(0, |s| s.taken_ms);
        let last = h.latest().map_or(0, |s| s.taken_ms);
        let span = last.saturating_sub(first) as f64 / 1000.0;
        let help = "Time the kept samples span, which the steady-growth verdicts judge.";
        let name = "heaplens_history_window_seconds";
        self.add(name, help, labels.clone(), seconds(span));
        let help = "Samples kept in the window.";
        self.add(
            "heaplens_samples",
            help,
            labels.clone(),
            h.len().to_string(),
        );
        if let Some(s) = h.latest() {
            let help = "How long the newest census took: the sampler's own cost per sample.";
            let value = seconds(s.census_us as f64 / 1e6);
            self.add(
                "heaplens_sampler_census_seconds",
                help,
                labels.clone(),
                value,
            );
        }
        if span > 0.0 {
            // The first sample's census ran before the window began.
            let busy: u64 = h.samples().skip(1).map(|s| s.census_us).sum();
            let help = "Time the sampler's censuses took over the window's time (0.001: a \
                        thousandth of one core).";
            let value = seconds(busy as f64 / 1e6 / span);
            self.add("heaplens_sampler_overhead_ratio", help, labels, value);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for (labels, value) in &f.series {
                let _ = writeln!(out, "{}{{{labels}}} {value}", f.name);
            }
        }
        out
    }
}

/// A number of seconds (or a ratio) as the format writes it.
fn seconds(value: f64) -> String {
    if value.is_finite() {
        format!("{value}")
    } else {
        "0".to_string()
    }
}

/// What one process's series are made of.
#[derive(Default)]
pub struct ProcessMetrics<'a> {
    pub pid: u32,
    pub program: Option<&'a str>,
    pub rss: Option<u64>,
    pub peak_rss: Option<u64>,
    /// Objects and bytes, when there is no history to take them from.
    pub totals: Option<(u64, u64)>,
    pub history: Option<&'a History>,
    /// Per type (name, count, bytes), when there is no history: a snapshot's census.
    pub census: &'a [(String, u64, u64)],
    /// What heaplens itself holds in the process (its kept snapshots and their analyses), when
    /// the process is this one.
    pub own_bytes: Option<u64>,
}

/// One type's series.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeRow {
    pub name: String,
    pub count: u64,
    pub bytes: u64,
    pub steady: bool,
}

/// The types of a history that get series: the [`TOP_TYPES`] with the highest count over the
/// window, the [`TOP_BYTES`] with the most bytes now and the first [`TOP_GROWERS`] steady
/// growers (each type once), most objects now first.
pub fn select_types(history: &History) -> Vec<TypeRow> {
    select_trends(trends(history))
}

/// [`select_types`] of the trends of a history.
fn select_trends(all: Vec<TypeTrend>) -> Vec<TypeRow> {
    let mut chosen = vec![false; all.len()];
    // `trends` puts the steady growers first, fastest first.
    for (i, t) in all.iter().enumerate().take(TOP_GROWERS) {
        chosen[i] |= t.steady;
    }
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| {
        all[b]
            .max
            .cmp(&all[a].max)
            .then(all[a].name.cmp(&all[b].name))
    });
    for &i in order.iter().take(TOP_TYPES) {
        chosen[i] = true;
    }
    order.sort_by(|&a, &b| {
        all[b]
            .bytes
            .cmp(&all[a].bytes)
            .then(all[a].name.cmp(&all[b].name))
    });
    for &i in order.iter().take(TOP_BYTES) {
        chosen[i] = true;
    }
    let mut rows: Vec<TypeRow> = all
        .into_iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(t, _)| TypeRow {
            name: t.name,
            count: t.last,
            bytes: t.bytes,
            steady: t.steady,
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    rows
}

/// The types of a census that get series: the most numerous and the biggest.
fn select_census(census: &[(String, u64, u64)]) -> Vec<TypeRow> {
    let mut order: Vec<usize> = (0..census.len()).collect();
    let mut chosen = vec![false; census.len()];
    order.sort_by(|&a, &b| {
        census[b]
            .1
            .cmp(&census[a].1)
            .then(census[a].0.cmp(&census[b].0))
    });
    for &i in order.iter().take(TOP_TYPES) {
        chosen[i] = true;
    }
    order.sort_by(|&a, &b| {
        census[b]
            .2
            .cmp(&census[a].2)
            .then(census[a].0.cmp(&census[b].0))
    });
    for &i in order.iter().take(TOP_BYTES) {
        chosen[i] = true;
    }
    let mut rows: Vec<TypeRow> = census
        .iter()
        .zip(chosen)
        .filter(|(r, c)| *c && r.1 > 0)
        .map(|((name, count, bytes), _)| TypeRow {
            name: name.clone(),
            count: *count,
            bytes: *bytes,
            steady: false,
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    rows
}

/// The metrics text of a dashboard's process.
pub fn render(source: &dyn Source) -> String {
    let info = source.info();
    let mut exposition = Exposition::default();
    let mut done = false;
    source.with_history(&mut |h| {
        if h.is_empty() {
            return;
        }
        exposition.add_process(&ProcessMetrics {
            pid: info.pid,
            program: Some(&info.program),
            rss: info.rss,
            peak_rss: info.peak_rss,
            history: Some(h),
            own_bytes: info.live.then(heaplens_core::own::memory),
            ..ProcessMetrics::default()
        });
        done = true;
    });
    if !done {
        let mut census = Vec::new();
        let mut totals = None;
        if let Some(snap) = source.snapshot() {
            let c = snap.census();
            totals = Some((c.total_count(), c.total_bytes()));
            census = c
                .rows()
                .iter()
                .map(|r| (r.name.clone(), r.count, r.bytes))
                .collect();
        }
        exposition.add_process(&ProcessMetrics {
            pid: info.pid,
            program: Some(&info.program),
            rss: info.rss,
            peak_rss: info.peak_rss,
            totals,
            census: &census,
            own_bytes: info.live.then(heaplens_core::own::memory),
            ..ProcessMetrics::default()
        });
    }
    exposition.render()
}

/// The `/metrics` response.
pub fn response(source: &dyn Source) -> Response {
    Response::new(200, CONTENT_TYPE, render(source).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplens_core::history::Sample;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("<script>"), "<script>");
        assert_eq!(escape_label("tab\there"), "tab\there");
    }

    /// A history of `samples` samples a second apart: `Leak` grows by 10 a sample, `Warm` fills
    /// to 500 in the first sample and stays, 100 types `T<i>` hold `i` objects each.
    fn history(pid: u32, samples: u64) -> History {
        let mut h = History::new(1000);
        for s in 0..samples {
            let mut values: Vec<(String, u64, u64)> = (0..100)
                .map(|i| (format!("app.T{i:03}"), i, i * 16))
                .collect();
            values.push(("app.Leak".into(), 10 * (s + 1), 640 * (s + 1)));
            values.push(("app.Warm".into(), 500, 32_000));
            let sample = Sample {
                taken_ms: 1_000_000 + s * 1000,
                pid,
                rss: 50_000_000 + s * 4096,
                objects: 10_000 + s,
                bytes: 1_000_000,
                gc_only: false,
                census_us: 2_000,
            };
            h.push_values(sample, values.iter().map(|(n, c, b)| (n.as_str(), *c, *b)));
        }
        h
    }

    fn series<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .collect()
    }

    #[test]
    fn the_families_follow_prometheus_conventions() {
        let h = history(7, 20);
        let mut e = Exposition::default();
        e.add_process(&ProcessMetrics {
            pid: 7,
            program: Some("app.py"),
            history: Some(&h),
            ..ProcessMetrics::default()
        });
        let text = e.render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(name.starts_with("heaplens_"), "{line}");
            assert!(line.contains("pid=\"7\""), "{line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert_eq!(
            series(&text, "heaplens_rss_bytes"),
            [format!(
                "heaplens_rss_bytes{{pid=\"7\"}} {}",
                50_000_000 + 19 * 4096
            )]
        );
        assert!(text.contains("heaplens_info{pid=\"7\",program=\"app.py\"} 1\n"));
        assert!(text.contains("heaplens_type_objects{pid=\"7\",type=\"app.Leak\"} 200\n"));
        assert!(text.contains("heaplens_type_object_bytes{pid=\"7\",type=\"app.Leak\"} 12800\n"));
        assert!(text.contains("heaplens_history_window_seconds{pid=\"7\"} 19\n"));
        assert!(text.contains("heaplens_samples{pid=\"7\"} 20\n"));
        assert!(text.contains("heaplens_sampler_census_seconds{pid=\"7\"} 0.002\n"));
        // 19 censuses of 2 ms in 19 s.
        assert!(text.contains("heaplens_sampler_overhead_ratio{pid=\"7\"} 0.002\n"));
    }

    #[test]
    fn the_steady_grower_is_flagged_and_the_warm_up_is_not() {
        let text = {
            let h = history(7, 20);
            let mut e = Exposition::default();
            e.add_process(&ProcessMetrics {
                pid: 7,
                history: Some(&h),
                ..ProcessMetrics::default()
            });
            e.render()
        };
        let steady: Vec<&str> = series(&text, "heaplens_type_steady_growth")
            .into_iter()
            .filter(|l| l.ends_with(" 1"))
            .collect();
        assert_eq!(
            steady,
            ["heaplens_type_steady_growth{pid=\"7\",type=\"app.Leak\"} 1"]
        );
        assert!(text.contains("heaplens_type_steady_growth{pid=\"7\",type=\"app.Warm\"} 0\n"));
        assert!(text.contains("heaplens_steady_growth_types{pid=\"7\"} 1\n"));
    }

    #[test]
    fn the_type_label_set_is_bounded_and_stable_across_scrapes() {
        let mut h = history(7, 20);
        let rows = select_types(&h);
        assert!(rows.len() <= TOP_TYPES + TOP_BYTES + TOP_GROWERS);
        // 20 by count over the window (Leak, Warm and T099..T082), the grower is among them.
        assert_eq!(rows.len(), TOP_TYPES);
        assert_eq!(rows[0].name, "app.Warm");
        // The top type drops to 0 now: it keeps its series while the window remembers it.
        let values = [("app.Warm", 0u64, 0u64)];
        let sample = Sample {
            taken_ms: 1_000_000 + 20_000,
            pid: 7,
            ..Sample::default()
        };
        h.push_changes(sample, values.iter().copied());
        let names = |rows: &[TypeRow]| {
            let mut n: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
            n.sort();
            n
        };
        let after = select_types(&h);
        assert_eq!(names(&after), names(&rows));
        assert_eq!(
            after.iter().find(|r| r.name == "app.Warm").unwrap().count,
            0
        );
    }

    #[test]
    fn the_leak_signal_counts_every_steady_grower_not_only_those_with_series() {
        let mut h = History::new(100);
        for s in 0..10u64 {
            let mut values: Vec<(String, u64, u64)> = (0..30)
                .map(|i| (format!("big.T{i}"), 1000 + i, 1 << 20))
                .collect();
            values.extend((0..15).map(|i| (format!("leak.T{i}"), s + 1, 16 * (s + 1))));
            let sample = Sample {
                taken_ms: 1000 * s,
                ..Sample::default()
            };
            h.push_values(sample, values.iter().map(|(n, c, b)| (n.as_str(), *c, *b)));
        }
        let mut e = Exposition::default();
        e.add_process(&ProcessMetrics {
            pid: 1,
            history: Some(&h),
            ..ProcessMetrics::default()
        });
        let text = e.render();
        assert!(
            text.contains("heaplens_steady_growth_types{pid=\"1\"} 15\n"),
            "{text}"
        );
        let flagged = series(&text, "heaplens_type_steady_growth")
            .into_iter()
            .filter(|l| l.ends_with(" 1"))
            .count();
        assert_eq!(flagged, TOP_GROWERS);
    }

    #[test]
    fn several_processes_share_each_family_header() {
        let (a, b) = (history(7, 5), history(8, 5));
        let mut e = Exposition::default();
        for (pid, h) in [(7, &a), (8, &b)] {
            e.add_process(&ProcessMetrics {
                pid,
                history: Some(h),
                ..ProcessMetrics::default()
            });
        }
        let text = e.render();
        assert_eq!(text.matches("# TYPE heaplens_rss_bytes gauge").count(), 1);
        let rss = series(&text, "heaplens_rss_bytes");
        assert_eq!(rss.len(), 2);
        assert!(rss[0].contains("pid=\"7\"") && rss[1].contains("pid=\"8\""));
        // Every family's series are together, right after its header.
        let mut seen = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            if seen.last() != Some(&name) {
                assert!(!seen.contains(&name), "{name} is split");
                seen.push(name);
            }
        }
    }

    #[test]
    fn a_census_without_history_gives_the_most_numerous_and_biggest_types() {
        let census: Vec<(String, u64, u64)> = (0..50)
            .map(|i| (format!("t{i:02}"), i, if i == 3 { 1 << 30 } else { i }))
            .collect();
        let rows = select_census(&census);
        assert_eq!(rows.len(), TOP_TYPES + 1);
        assert!(rows.iter().any(|r| r.name == "t03"));
        let mut e = Exposition::default();
        e.add_process(&ProcessMetrics {
            pid: 1,
            totals: Some((10, 20)),
            census: &census,
            ..ProcessMetrics::default()
        });
        let text = e.render();
        assert!(text.contains("heaplens_python_objects{pid=\"1\"} 10\n"));
        assert!(!text.contains("heaplens_type_steady_growth"));
        assert!(!text.contains("heaplens_sampler"));
    }
}
