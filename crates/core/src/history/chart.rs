//! Growth charts of a history (SVG and PNG). Drawn by `heaplens history -o`.
//!
//! A chart answers the two questions of a growth table at a glance. The top panel is the
//! process's memory over time: RSS and the shallow bytes of the Python objects on one byte
//! axis, so a growing RSS over a flat Python heap (native memory, see [`native_growth`]) shows
//! as two lines drifting apart. Below, one small panel per type that grows steadily (at most
//! [`MAX_TYPES`], fastest first; when none does, the types that moved most): each type gets its
//! own vertical scale, because a leak of 50 objects next to one of 50,000 would be a flat line on
//! a shared axis, and steady growers normalised onto one axis all draw the same diagonal and
//! hide each other. Every panel shares the time axis (seconds, minutes or hours since the first
//! sample, by the span).
//!
//! The SVG is written like the pictures' ([`crate::render::picture::svg`]): self-contained, the
//! bundled DejaVu Sans measured for every label that could collide, every string cleaned
//! ([`text::clean`]) and escaped, since type names are whatever the program called its classes.
//! PNG goes through the pictures' `resvg` path ([`crate::render::picture::png`]). Long series
//! are thinned to the highest and lowest value per pixel column, so a day of one-second samples
//! makes a file of kilobytes that still shows every spike.
//!
//! The formatting helpers ([`utc`], [`duration`], [`rate`]) are shared with the command line's
//! growth table, so the table and the chart say the same thing the same way.
//!
//! ```
//! use heaplens_core::history::{chart, trends, History, Sample};
//! let mut h = History::new(100);
//! for i in 0..10u64 {
//!     let s = Sample { taken_ms: i * 60_000, rss: (40 + i) << 20, bytes: 1 << 20, ..Sample::default() };
//!     h.push_values(s, [("app.Order", 100 + 10 * i, 5600 + 560 * i)]);
//! }
//! let svg = chart::svg(&h, &trends(&h), "app.py <pid 7>");
//! assert!(svg.contains("app.Order") && svg.contains("app.py &lt;pid 7&gt;"));
//! assert_eq!(&chart::png(&h, &trends(&h), "app.py").unwrap()[1..4], b"PNG");
//! ```

use super::{History, Sample, TypeTrend};
use crate::analysis::report::{bytes, count};
use crate::error::Result;
use crate::render::picture::svg::escape;
use crate::render::picture::{png as picture_png, text};
use std::fmt::Write;

/// Most types drawn in the lower panels.
pub const MAX_TYPES: usize = 6;
/// RSS growth below this is never called native memory (allocator noise, page cache).
pub const NATIVE_MIN_GROWTH: u64 = 10 << 20;

const WIDTH: f64 = 960.0;
const MARGIN: f64 = 24.0;
/// Room left of the memory panel for its byte labels.
const AXIS_LEFT: f64 = 84.0;
const TYPE_COLOURS: [&str; MAX_TYPES] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const RSS_COLOUR: &str = "#1f5fbf";
const PY_COLOUR: &str = "#e07b00";
const GRID: &str = "#e3e7ec";
const INK: &str = "#263238";
const GREY: &str = "#607d8b";

/// RSS that grew while the Python objects' bytes stayed flat: memory held outside Python objects
/// (C extensions, allocator fragmentation). See [`native_growth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeGrowth {
    /// RSS and Python-object bytes at the end of the warm-up, and at the newest sample.
    pub rss_from: u64,
    pub rss_to: u64,
    pub bytes_from: u64,
    pub bytes_to: u64,
    /// Whether the census counted gc-tracked objects only: then `str`, `bytes` and numbers are
    /// not in the Python bytes, and a leak of them also looks like native memory.
    pub gc_only: bool,
}

/// Whether RSS grew while the Python objects did not (the rule the table and the chart share).
///
/// Measured, like [`super::trends`], after a warm-up: from the sample a quarter into the run (of
/// those with a known RSS, at least three) to the newest. RSS must have grown by at least
/// [`NATIVE_MIN_GROWTH`] and 20%, and the Python objects' bytes by less than a quarter of that.
pub fn native_growth(history: &History) -> Option<NativeGrowth> {
    native_growth_beside(history, 0)
}

/// [`native_growth`] in the process that holds `own` bytes of heaplens' own (kept snapshots and
/// their analyses, [`crate::own::memory`]): that much of the RSS growth is heaplens', not
/// native memory of the program's (counted as grown since the warm-up, the worst case).
pub fn native_growth_beside(history: &History, own: u64) -> Option<NativeGrowth> {
    let known: Vec<&Sample> = history.samples().filter(|s| s.rss > 0).collect();
    if known.len() < 3 {
        return None;
    }
    let (from, to) = (known[known.len() / 4], known[known.len() - 1]);
    let rss = to.rss.saturating_sub(from.rss).saturating_sub(own);
    let py = to.bytes.saturating_sub(from.bytes);
    (rss >= NATIVE_MIN_GROWTH && rss >= from.rss / 5 && py < rss / 4).then(|| NativeGrowth {
        rss_from: from.rss,
        rss_to: to.rss,
        bytes_from: from.bytes,
        bytes_to: to.bytes,
        gc_only: known.iter().any(|s| s.gc_only),
    })
}

/// How far a type's count moved over the run: its net change or its swing, whichever is larger.
/// Ranks the types that did not grow steadily.
pub fn movement(t: &TypeTrend) -> u64 {
    t.growth().unsigned_abs().max(t.max - t.min)
}

/// The types a chart draws: the steady growers (at most [`MAX_TYPES`], in trend order), and
/// whether they are steady; when none is, the types that moved most.
pub fn charted(trends: &[TypeTrend]) -> (Vec<&TypeTrend>, bool) {
    let steady: Vec<&TypeTrend> = trends.iter().filter(|t| t.steady).take(MAX_TYPES).collect();
    if !steady.is_empty() {
        return (steady, true);
    }
    let mut movers = movers(trends);
    movers.truncate(MAX_TYPES);
    (movers, false)
}

/// Every type whose count changed, the ones that moved most first (by [`movement`], then by
/// name): the ranking the chart falls back on, and `heaplens history`'s when nothing grew
/// steadily.
pub fn movers(trends: &[TypeTrend]) -> Vec<&TypeTrend> {
    let mut movers: Vec<&TypeTrend> = trends.iter().filter(|t| movement(t) > 0).collect();
    movers.sort_by(|a, b| movement(b).cmp(&movement(a)).then(a.name.cmp(&b.name)));
    movers
}

/// Milliseconds since the Unix epoch as `2026-11-24 06:00:00` (UTC).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    // Days to a civil date (Howard Hinnant's algorithm), for dates from 1970 on.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A span of milliseconds as people say it: `850 ms`, `42 s`, `12 min 5 s`, `1 h 30 min`,
/// `2 d 3 h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms} ms"),
        0..60 => format!("{s} s"),
        60..3600 if s % 60 == 0 => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 if s % 3600 < 60 => format!("{} h", s / 3600),
        3600..86_400 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

/// The unit growth rates are given in over a run of `span_ms`: per second for runs shorter
/// than two minutes, per minute for runs shorter than an hour (a rate per hour would
/// extrapolate past what was seen), per hour otherwise.
pub fn rate_unit(span_ms: u64) -> (&'static str, f64) {
    if span_ms < 120_000 {
        ("s", 3600.0)
    } else if span_ms < 3_600_000 {
        ("min", 60.0)
    } else {
        ("h", 1.0)
    }
}

/// A growth rate of `per_hour` objects in the unit [`rate_unit`] picks: `+6,667/h`, `+2.5/min`.
pub fn rate(per_hour: f64, span_ms: u64) -> String {
    let (unit, per) = rate_unit(span_ms);
    format!("{}/{unit}", signed_number(per_hour / per))
}

/// `v` with a sign and as many decimals as its size needs: `+1,234`, `-12.5`, `+0.25`, `0`.
fn signed_number(v: f64) -> String {
    if !v.is_finite() || v.abs() < 0.005 {
        return "0".to_string();
    }
    let sign = if v < 0.0 { "-" } else { "+" };
    let a = v.abs();
    match a {
        _ if a >= 99.5 || (a >= 9.95 && (a - a.round()).abs() < 0.05) => {
            format!("{sign}{}", count(a.round() as u64))
        }
        _ if a >= 9.95 => format!("{sign}{a:.1}"),
        _ => format!("{sign}{a:.2}"),
    }
}

/// `text`, cleaned, cut (with `…`) to fit `max_width` pixels at `size` in the bundled font.
fn fit(raw: &str, size: f64, bold: bool, max_width: f64) -> String {
    let mut s = text::clean(raw, text::MAX_CHARS);
    while text::width(&s, size, bold) > max_width && s.chars().count() > 1 {
        if s.ends_with('…') {
            s.pop();
        }
        s.pop();
        s.push('…');
    }
    s
}

/// A plot area, and the value range its vertical axis shows.
struct Plot {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    span: f64,
    lo: f64,
    hi: f64,
}

impl Plot {
    fn px(&self, t: f64) -> f64 {
        self.x + (t / self.span).clamp(0.0, 1.0) * self.w
    }
    fn py(&self, v: f64) -> f64 {
        let f = if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        self.y + self.h - f.clamp(0.0, 1.0) * self.h
    }
}

/// A step of 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// Ticks covering `lo..=hi` in about `target` steps of at least `min_step`: (first, last, step).
fn ticks(lo: f64, hi: f64, target: f64, min_step: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        ((lo - min_step).max(0.0), hi + min_step)
    };
    let step = nice_step((hi - lo) / target).max(min_step);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

fn decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    }
}

/// A tick label: `v` in steps of `step`, with thousands separators when whole.
fn number(v: f64, step: f64) -> String {
    match decimals(step) {
        0 => count(v.round().max(0.0) as u64),
        d => format!("{v:.d$}"),
    }
}

/// How a value axis is labelled: the divisor and the unit (`MiB`, `k`).
fn byte_scale(hi: f64) -> (f64, &'static str) {
    let mut scale = (1.0, "B");
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        if hi < scale.0 * 1024.0 {
            break;
        }
        scale = (scale.0 * 1024.0, unit);
    }
    scale
}

fn count_scale(hi: f64) -> (f64, &'static str) {
    match hi {
        _ if hi < 100_000.0 => (1.0, ""),
        _ if hi < 100_000_000.0 => (1e3, "k"),
        _ => (1e6, "M"),
    }
}

/// The time axis of a run of `span` ms over `width` pixels: its unit (ms per unit, name) and
/// step, with labels far enough apart not to touch.
fn time_axis(span: f64, width: f64) -> (f64, &'static str, f64) {
    let (per, name) = match span {
        _ if span < 120_000.0 => (1000.0, "s"),
        _ if span < 7_200_000.0 => (60_000.0, "min"),
        _ => (3_600_000.0, "h"),
    };
    let units = span / per;
    let mut step = nice_step(units / (width / 90.0).max(1.0));
    // Widen the step until the widest label fits between two ticks.
    loop {
        let widest = text::width(&format!("{} {name}", number(units, step)), 11.0, false);
        if (step / units) * width >= widest + 12.0 || step >= units {
            return (per, name, step);
        }
        step = nice_step(step * 2.0);
    }
}

/// `points` (ms since start, value) thinned for a plot: the lowest and highest value of each
/// pixel column, in time order, so no spike is lost.
fn thin(points: &[(f64, f64)], plot: &Plot) -> Vec<(f64, f64)> {
    if points.len() <= 2 * plot.w as usize {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(2 * plot.w as usize + 2);
    let mut column = f64::NAN;
    let (mut lo, mut hi) = (0usize, 0usize);
    let flush = |out: &mut Vec<(f64, f64)>, lo: usize, hi: usize| {
        let (a, b) = (lo.min(hi), lo.max(hi));
        out.push(points[a]);
        if b != a {
            out.push(points[b]);
        }
    };
    for (i, p) in points.iter().enumerate() {
        let c = plot.px(p.0).floor();
        if c != column {
            if i > 0 {
                flush(&mut out, lo, hi);
            }
            (column, lo, hi) = (c, i, i);
        } else if p.1 < points[lo].1 {
            lo = i;
        } else if p.1 > points[hi].1 {
            hi = i;
        }
    }
    flush(&mut out, lo, hi);
    out
}

fn line(out: &mut String, plot: &Plot, points: &[(f64, f64)], colour: &str, extra: &str) {
    let thinned = thin(points, plot);
    if let [only] = thinned.as_slice() {
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
            plot.px(only.0),
            plot.py(only.1)
        );
        return;
    }
    let mut d = String::with_capacity(thinned.len() * 14);
    for (i, (t, v)) in thinned.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            plot.px(*t),
            plot.py(*v)
        );
    }
    let _ = writeln!(
        out,
        "<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" \
         stroke-linejoin=\"round\"{extra}/>"
    );
}

fn label(out: &mut String, x: f64, y: f64, size: f64, fill: &str, anchor: &str, text: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" fill=\"{fill}\" \
         text-anchor=\"{anchor}\">{}</text>",
        escape(text)
    );
}

/// Draws the frame, value grid and labels of `plot`, and the time ticks (labelled when
/// `time_labels`); `scale` divides values for their labels.
fn axes(
    out: &mut String,
    plot: &Plot,
    step: f64,
    scale: (f64, &str),
    time: (f64, &str, f64),
    time_labels: bool,
) {
    out.push_str("<g class=\"axes\">\n");
    let mut v = plot.lo;
    while v <= plot.hi + step * 0.01 {
        let y = plot.py(v);
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>",
            plot.x,
            plot.x + plot.w
        );
        let unit = if scale.1.is_empty() || scale.1 == "k" || scale.1 == "M" {
            scale.1.to_string()
        } else {
            format!(" {}", scale.1)
        };
        let text = format!("{}{unit}", number(v / scale.0, step / scale.0));
        label(out, plot.x - 6.0, y + 4.0, 11.0, GREY, "end", &text);
        v += step;
    }
    let (per, name, tstep) = time;
    let mut k = 0.0;
    while k * tstep * per <= plot.span + 1e-9 {
        let x = plot.px(k * tstep * per);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{GRID}\"/>",
            plot.y,
            plot.y + plot.h + 4.0
        );
        if time_labels {
            let text = if k == 0.0 {
                "0".to_string()
            } else {
                format!("{} {name}", number(k * tstep, tstep))
            };
            label(out, x, plot.y + plot.h + 17.0, 11.0, GREY, "middle", &text);
        }
        k += 1.0;
    }
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#b0bac5\"/>",
        plot.x, plot.y, plot.w, plot.h
    );
    out.push_str("</g>\n");
}

/// The history as a growth chart (an SVG document). `trends` are the history's
/// ([`super::trends`]); `title` names the process and is shown as given, escaped.
pub fn svg(history: &History, trends: &[TypeTrend], title: &str) -> String {
    svg_beside(history, trends, title, 0)
}

/// [`svg`] drawn in the process that holds `own` bytes of heaplens' own (the snapshots a
/// dashboard keeps): they are not counted as native memory ([`native_growth_beside`]).
pub fn svg_beside(history: &History, trends: &[TypeTrend], title: &str, own: u64) -> String {
    let samples: Vec<&Sample> = history.samples().collect();
    let t0 = samples.first().map_or(0, |s| s.taken_ms);
    let times: Vec<f64> = samples
        .iter()
        .map(|s| s.taken_ms.saturating_sub(t0) as f64)
        .collect();
    let span = times.iter().copied().fold(0.0, f64::max).max(1000.0);
    let (types, steady) = charted(trends);
    let cols = match types.len() {
        4 => 2,
        n => n.clamp(1, 3),
    };
    let rows = types.len().div_ceil(cols).max(1);
    let cell_h = 150.0;
    let types_top = 404.0;
    let height = types_top + rows as f64 * cell_h + 34.0;

    let mut out = String::with_capacity(16_384);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {WIDTH:.0} {height:.0}\" font-family=\"'{}', Verdana, sans-serif\">",
        text::FAMILY
    );
    let title = fit(title, 17.0, true, WIDTH - 2.0 * MARGIN);
    let _ = writeln!(out, "<title>heaplens growth: {}</title>", escape(&title));
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let _ = writeln!(
        out,
        "<text class=\"title\" x=\"{MARGIN}\" y=\"32\" font-size=\"17\" font-weight=\"bold\" \
         fill=\"{INK}\">{}</text>",
        escape(&title)
    );
    let subtitle = match (samples.first(), samples.last()) {
        (Some(first), Some(last)) => format!(
            "{} samples over {}, from {} UTC",
            count(samples.len() as u64),
            duration(last.taken_ms.saturating_sub(first.taken_ms)),
            utc(first.taken_ms)
        ),
        _ => "no samples recorded".to_string(),
    };
    label(&mut out, MARGIN, 54.0, 12.0, GREY, "start", &subtitle);

    // The memory panel.
    let rss: Vec<(f64, f64)> = times
        .iter()
        .zip(&samples)
        .filter(|(_, s)| s.rss > 0)
        .map(|(&t, s)| (t, s.rss as f64))
        .collect();
    let py: Vec<(f64, f64)> = times
        .iter()
        .zip(&samples)
        .map(|(&t, s)| (t, s.bytes as f64))
        .collect();
    out.push_str("<g class=\"memory\">\n");
    label(&mut out, MARGIN, 90.0, 14.0, INK, "start", "Memory");
    let mut x = WIDTH - MARGIN;
    let legend = [
        (
            PY_COLOUR,
            " stroke-dasharray=\"6 4\"",
            "Python objects (shallow bytes)",
        ),
        (
            RSS_COLOUR,
            "",
            if rss.is_empty() {
                "RSS (not recorded)"
            } else {
                "RSS"
            },
        ),
    ];
    for (colour, dash, name) in legend {
        let w = text::width(name, 12.0, false);
        x -= w;
        label(&mut out, x, 90.0, 12.0, INK, "start", name);
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"86\" x2=\"{:.1}\" y2=\"86\" stroke=\"{colour}\" stroke-width=\"2.5\"{dash}/>",
            x - 30.0,
            x - 6.0
        );
        x -= 30.0 + 22.0;
    }
    if let Some(n) = native_growth_beside(history, own) {
        let note = format!(
            "RSS +{}, Python objects +{}: native memory (C extensions, allocator fragmentation){}",
            bytes(n.rss_to - n.rss_from),
            bytes(n.bytes_to.saturating_sub(n.bytes_from)),
            if n.gc_only {
                ", or str/bytes (not in a gc-only census)"
            } else {
                ""
            }
        );
        let note = fit(&note, 12.0, false, WIDTH - 2.0 * MARGIN);
        let _ = writeln!(
            out,
            "<text class=\"native\" x=\"{MARGIN}\" y=\"112\" font-size=\"12\" fill=\"#b71c1c\">{}</text>",
            escape(&note)
        );
    }
    let values = rss.iter().chain(&py).map(|p| p.1);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = if lo > hi { 0.0 } else { lo };
    let scale = byte_scale(hi);
    let (lo, hi, step) = ticks(lo, hi, 5.0, scale.0 / 10.0);
    let memory = Plot {
        x: AXIS_LEFT,
        y: 124.0,
        w: WIDTH - AXIS_LEFT - MARGIN,
        h: 190.0,
        span,
        lo,
        hi,
    };
    let time = time_axis(span, memory.w);
    axes(&mut out, &memory, step, scale, time, true);
    line(
        &mut out,
        &memory,
        &py,
        PY_COLOUR,
        " stroke-dasharray=\"6 4\"",
    );
    line(&mut out, &memory, &rss, RSS_COLOUR, "");
    out.push_str("</g>\n");

    // One panel per type.
    let heading = match (steady, types.is_empty(), samples.len() < 3) {
        (true, ..) => "Types growing steadily (object counts, each on its own scale)",
        (false, true, _) => "No type's count changed",
        (false, false, true) => "Too few samples to tell steady growth: the types that changed most",
        (false, false, false) => "No type grew steadily: the types that changed most (object counts, each on its own scale)",
    };
    label(&mut out, MARGIN, 372.0, 14.0, INK, "start", heading);
    let cell_w = (WIDTH - 2.0 * MARGIN) / cols as f64;
    for (i, t) in types.iter().enumerate() {
        let (cx, cy) = (
            MARGIN + (i % cols) as f64 * cell_w,
            types_top + (i / cols) as f64 * cell_h,
        );
        let colour = TYPE_COLOURS[i % TYPE_COLOURS.len()];
        let _ = writeln!(out, "<g class=\"type\" data-rank=\"{}\">", i + 1);
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" rx=\"2\" fill=\"{colour}\"/>",
            cx + 4.0,
            cy - 10.0
        );
        let facts = format!(
            "{} \u{2192} {}, {}",
            count(t.first),
            count(t.last),
            rate(t.per_hour, span as u64)
        );
        let facts_w = text::width(&facts, 11.0, false);
        let name = fit(&t.name, 12.0, true, cell_w - 36.0 - facts_w);
        let _ = writeln!(
            out,
            "<text class=\"name\" x=\"{:.1}\" y=\"{cy:.1}\" font-size=\"12\" font-weight=\"bold\" \
             fill=\"{INK}\">{}</text>",
            cx + 19.0,
            escape(&name)
        );
        label(&mut out, cx + cell_w - 12.0, cy, 11.0, GREY, "end", &facts);
        let scale = count_scale(t.max as f64);
        let (lo, hi, step) = ticks(t.min as f64, t.max as f64, 3.0, 1.0);
        let plot = Plot {
            x: cx + 58.0,
            y: cy + 12.0,
            w: cell_w - 58.0 - 12.0,
            h: 88.0,
            span,
            lo,
            hi,
        };
        let time = time_axis(span, plot.w);
        axes(&mut out, &plot, step, scale, time, true);
        let points: Vec<(f64, f64)> = times
            .iter()
            .zip(&t.counts)
            .map(|(&x, &c)| (x, c as f64))
            .collect();
        line(&mut out, &plot, &points, colour, "");
        out.push_str("</g>\n");
    }
    let axis = match time.1 {
        "s" => "seconds",
        "min" => "minutes",
        _ => "hours",
    };
    let caption = format!(
        "time: {axis} since the first sample{}",
        samples
            .first()
            .map_or(String::new(), |s| format!(" ({} UTC)", utc(s.taken_ms)))
    );
    label(
        &mut out,
        WIDTH / 2.0,
        height - 12.0,
        11.0,
        GREY,
        "middle",
        &caption,
    );
    out.push_str("</svg>\n");
    out
}

/// The growth chart as PNG, through the pictures' renderer (bundled fonts only).
pub fn png(history: &History, trends: &[TypeTrend], title: &str) -> Result<Vec<u8>> {
    picture_png::write(&svg(history, trends, title))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::trends;

    /// `n` samples a minute apart: a leak, a companion dict, a warm cache and a sawtooth, with
    /// RSS following the leak (or growing alone when `native`).
    fn run(n: u64, native: bool) -> History {
        let mut h = History::new(usize::MAX);
        for i in 0..n {
            let leak = 100 + 40 * i;
            let s = Sample {
                taken_ms: 1_700_000_000_000 + i * 60_000,
                rss: (50 << 20) + i * if native { 2 << 20 } else { 56 * 40 },
                objects: 10_000 + leak,
                bytes: (5 << 20) + if native { 0 } else { leak * 56 },
                ..Sample::default()
            };
            h.push_values(
                s,
                [
                    ("app.Order", leak, leak * 56),
                    ("dict", 5000 + 2 * leak, 0),
                    ("warm", (i * 100).min(500), 0),
                    ("saw", 50 + (i % 5) * 10, 0),
                ],
            );
        }
        h
    }

    /// Parsed the way the PNG renderer parses it: an error on any XML that is not well formed.
    fn parses(svg: &str) {
        let options = resvg::usvg::Options::default();
        if let Err(e) = resvg::usvg::Tree::from_str(svg, &options) {
            panic!("not a well-formed SVG: {e}\n{svg}");
        }
    }

    #[test]
    fn steady_growers_get_a_panel_each_and_the_rest_none() {
        let h = run(40, false);
        let t = trends(&h);
        let svg = svg(&h, &t, "app.py (pid 7)");
        parses(&svg);
        assert_eq!(svg.matches("class=\"type\"").count(), 2, "{svg}");
        assert!(svg.contains(">app.Order</text>") && svg.contains(">dict</text>"));
        assert!(!svg.contains(">warm</text>") && !svg.contains(">saw</text>"));
        assert!(svg.contains("Types growing steadily"));
        // 39 minutes: rates per minute, the time axis in minutes.
        assert!(svg.contains("100 \u{2192} 1,660, +40/min"), "{svg}");
        assert!(svg.contains("minutes since the first sample (2023-11-14 22:13:20 UTC)"));
        assert!(!svg.contains("class=\"native\""));
    }

    #[test]
    fn without_steady_growth_the_movers_are_drawn_and_said_so() {
        let mut h = History::new(100);
        for i in 0..20u64 {
            let s = Sample {
                taken_ms: i * 1000,
                ..Sample::default()
            };
            h.push_values(s, [("saw", 50 + (i % 5) * 10, 0), ("flat", 9, 0)]);
        }
        let svg = svg(&h, &trends(&h), "x");
        parses(&svg);
        assert!(svg.contains("No type grew steadily"));
        assert_eq!(svg.matches("class=\"type\"").count(), 1);
        assert!(svg.contains("seconds since the first sample"));
        assert!(svg.contains("RSS (not recorded)"));
    }

    #[test]
    fn hostile_names_and_titles_stay_text() {
        let hostile = "\u{0}\u{1b}[31m\"><script>alert(1)</script>]]>&";
        let mut h = History::new(100);
        for i in 0..5u64 {
            let s = Sample {
                taken_ms: i * 1000,
                rss: 1 << 20,
                ..Sample::default()
            };
            h.push_values(s, [(hostile, i + 1, 0), (&"x".repeat(5000) as &str, i, 0)]);
        }
        let svg = svg(&h, &trends(&h), hostile);
        parses(&svg);
        assert!(!svg.contains("<script") && !svg.contains("]]>"));
        assert!(!svg.contains('\u{0}') && !svg.contains('\u{1b}'));
        assert!(svg.contains("&lt;script&gt;") && svg.contains(r"\x00\x1b"));
        assert!(!svg.contains(&"x".repeat(100)), "long names are cut");
    }

    #[test]
    fn empty_and_single_sample_histories_draw_without_panicking() {
        let empty = History::new(10);
        let svg_empty = svg(&empty, &trends(&empty), "");
        parses(&svg_empty);
        assert!(svg_empty.contains("no samples recorded"));
        let mut one = History::new(10);
        one.push_values(Sample::default(), [("a", 1, 1)]);
        parses(&svg(&one, &trends(&one), "one"));
        let png = png(&one, &trends(&one), "one").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn native_memory_is_rss_growing_over_a_flat_python_heap() {
        let native = native_growth(&run(40, true)).expect("RSS grew 78 MiB, objects did not");
        assert_eq!(native.bytes_from, native.bytes_to);
        assert!(native.rss_to - native.rss_from >= NATIVE_MIN_GROWTH);
        assert!(native_growth(&run(40, false)).is_none());
        // The same growth, while heaplens keeps 78 MiB of snapshots, is heaplens' own, and the
        // chart drawn there says so too (it called it native memory beside an overview that
        // did not).
        assert!(native_growth_beside(&run(40, true), 78 << 20).is_none());
        let h = run(40, true);
        assert!(svg(&h, &trends(&h), "t").contains("native memory"));
        assert!(!svg_beside(&h, &trends(&h), "t", 78 << 20).contains("native memory"));
        // Growth only during warm-up is not native growth.
        let mut h = History::new(100);
        for i in 0..20u64 {
            let s = Sample {
                taken_ms: i * 1000,
                rss: if i < 3 {
                    (10 + 50 * i) << 20
                } else {
                    110 << 20
                },
                bytes: 1 << 20,
                ..Sample::default()
            };
            h.push_values(s, [("a", 1, 1)]);
        }
        assert!(native_growth(&h).is_none());
        let svg = svg(&run(40, true), &[], "n");
        assert!(svg.contains("class=\"native\""));
    }

    #[test]
    fn long_runs_are_thinned_to_the_pixel_columns_keeping_the_extremes() {
        let plot = Plot {
            x: 0.0,
            y: 0.0,
            w: 100.0,
            h: 100.0,
            span: 99_999.0,
            lo: 0.0,
            hi: 1e6,
        };
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 10.0)).collect();
        points[51_234].1 = 999_999.0;
        points[70_000].1 = 0.0;
        let thin = thin(&points, &plot);
        assert!(thin.len() <= 202, "{}", thin.len());
        assert!(thin.contains(&(51_234.0, 999_999.0)) && thin.contains(&(70_000.0, 0.0)));
        assert!(thin.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(42_000), "42 s");
        assert_eq!(duration(725_000), "12 min 5 s");
        assert_eq!(duration(5_400_000), "1 h 30 min");
        assert_eq!(duration(7_200_000), "2 h");
        assert_eq!(duration(183_600_000), "2 d 3 h");
        assert_eq!(rate(6666.7, 5_400_000), "+6,667/h");
        assert_eq!(rate(150.0, 600_000), "+2.50/min");
        assert_eq!(rate(-1200.0, 600_000), "-20/min");
        assert_eq!(rate(-1230.0, 600_000), "-20.5/min");
        assert_eq!(rate(0.0, 600_000), "0/min");
        assert_eq!(rate(360_000.0, 9_000), "+100/s");
        assert_eq!(ticks(3.0, 97.0, 5.0, 1.0), (0.0, 100.0, 20.0));
        assert_eq!(ticks(7.0, 7.0, 3.0, 1.0), (6.0, 8.0, 1.0));
        assert_eq!(number(12_500.0, 500.0), "12,500");
        assert_eq!(number(0.25, 0.05), "0.25");
    }
}
