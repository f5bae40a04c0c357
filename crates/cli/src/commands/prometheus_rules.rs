//! `heaplens prometheus-rules`: Prometheus alerting rules that fire on a steady leak.
//!
//! The rules are written here, in Rust, from three figures (the window, and the least growth of
//! objects and of RSS worth an alert), so that the shipped file and the one a test loads with a
//! window of seconds are the same text. What they judge, in PromQL, is what the history's trend
//! judges in the process ([`heaplens_core::history::trends`]): a leak keeps growing over the whole
//! window, a warm-up grows and stops. The slope of each quarter of the window
//! (`deriv(x[W/4])`), taken every eighth of it, must stay above zero for the whole window and a
//! quarter more (`for:`), and the window must have added at least the least growth. A cache that
//! fills for an hour after a deploy stops rising, its quarter slopes fall to zero, and the alert
//! never fires; a type that gains objects with every request for hours does.

use anyhow::{bail, Result};
use std::io::Write;

/// Print Prometheus alerting rules (YAML) that fire on a steady leak: a type's objects, or a
/// process's RSS, growing over hours (not a warm-up), per process of every instance.
///
/// Load the file with `rule_files:` in prometheus.yml; `promtool check rules` accepts it. The
/// rules read the series of heaplens' /metrics (the middleware's `<path>/metrics`, or
/// `heaplens metrics FILE.db`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long a growth must last before the alert fires (a number and s, m, h or d; at least
    /// 8s). The alert fires after the window and a quarter more of growth.
    #[arg(long, default_value = "2h", value_parser = parse_duration)]
    pub window: u64,
    /// The least growth of one type's objects over the window worth an alert.
    #[arg(long, default_value_t = 1000)]
    pub min_objects: u64,
    /// The least growth of a process's RSS over the window worth an alert, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub min_rss_bytes: u64,
}

/// Seconds from `2h`, `90m`, `30s`, `1d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{text}` is not a duration such as 2h, 90m or 30s")),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("`{text}` is not a duration such as 2h, 90m or 30s"))?;
    if seconds < 8 {
        return Err(format!("{text} is too short: the window is at least 8s"));
    }
    Ok(seconds)
}

/// A number of seconds as Prometheus writes a duration, in the largest unit that divides it.
pub fn duration(seconds: u64) -> String {
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// The rules file for a window of `window` seconds.
pub fn rules(args: &Args) -> String {
    let w = args.window;
    let (window, quarter, step) = (duration(w), duration(w / 4), duration((w / 8).max(1)));
    let min_objects = args.min_objects;
    let min_rss = args.min_rss_bytes;
    let mib = min_rss as f64 / f64::from(1 << 20);
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"# Prometheus alerting rules for heaplens' metrics (heaplens {version}):
#   heaplens prometheus-rules --window {window} --min-objects {min_objects} --min-rss-bytes {min_rss}
# A steady leak: over the last {window}, every {quarter} stretch's slope stayed above zero, for {quarter}
# more (for:), and the {window} added at least the least growth. A warm-up (a cache filling after
# a start) rises and stops, and does not fire. Each alert names the instance, the process (pid)
# and, for types, the type.
groups:
  - name: heaplens
    rules:
      # Objects per second each type gained over the window: the fleet's growing types.
      - record: heaplens:type_objects:deriv{window}
        expr: deriv(heaplens_type_objects[{window}])
      - record: heaplens:rss_bytes:deriv{window}
        expr: deriv(heaplens_rss_bytes[{window}])
      - alert: HeapLensTypeGrowing
        expr: >-
          min_over_time(deriv(heaplens_type_objects[{quarter}])[{window}:{step}]) > 0
          and delta(heaplens_type_objects[{window}]) >= {min_objects}
        for: {quarter}
        labels:
          severity: warning
        annotations:
          summary: "{{{{ $labels.type }}}} keeps growing in process {{{{ $labels.pid }}}} on {{{{ $labels.instance }}}}"
          description: >-
            The count of {{{{ $labels.type }}}} objects grew steadily for more than {window}
            (at least {{{{ $value | humanize }}}} objects a second in every {quarter}), with no sign of
            levelling off: a leak.
            Open the instance's heaplens page and follow the type's retaining path.
      - alert: HeapLensMemoryGrowing
        expr: >-
          min_over_time(deriv(heaplens_rss_bytes[{quarter}])[{window}:{step}]) > 0
          and delta(heaplens_rss_bytes[{window}]) >= {min_rss}
        for: {quarter}
        labels:
          severity: warning
        annotations:
          summary: "RSS of process {{{{ $labels.pid }}}} on {{{{ $labels.instance }}}} keeps growing"
          description: >-
            Its resident set size grew steadily for more than {window}, by {mib} MiB or more.
            If heaplens_python_object_bytes stays flat meanwhile, the growth is in native memory.
      - alert: HeapLensSteadyGrowth
        expr: heaplens_steady_growth_types > 0 and heaplens_history_window_seconds >= {w}
        for: {quarter}
        labels:
          severity: info
        annotations:
          summary: "heaplens sees {{{{ $value }}}} types growing steadily in process {{{{ $labels.pid }}}} on {{{{ $labels.instance }}}}"
          description: >-
            The process's own sampler found types whose count kept reaching new highs over a
            window of {window} or more (heaplens_type_steady_growth says which).
"#
    )
}

/// Prints the rules.
pub fn run(args: &Args, out: &mut impl Write) -> Result<i32> {
    if args.window < 8 {
        bail!("the window is at least 8 seconds");
    }
    out.write_all(rules(args).as_bytes())?;
    Ok(crate::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_and_written_as_prometheus_does() {
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("24"), Ok(24));
        assert_eq!(parse_duration("1d"), Ok(86400));
        for bad in ["", "h", "2w", "-1h", "1.5h", "7s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(1800), "30m");
        assert_eq!(duration(5400), "90m");
        assert_eq!(duration(6), "6s");
        assert_eq!(duration(86400), "1d");
    }

    #[test]
    fn the_rules_judge_quarters_of_the_window() {
        let args = Args {
            window: 7200,
            min_objects: 1000,
            min_rss_bytes: 64 << 20,
        };
        let text = rules(&args);
        assert!(text.contains(
            "min_over_time(deriv(heaplens_type_objects[30m])[2h:15m]) > 0\n          \
             and delta(heaplens_type_objects[2h]) >= 1000\n        for: 30m"
        ));
        assert!(text.contains("delta(heaplens_rss_bytes[2h]) >= 67108864"));
        assert!(text.contains("heaplens_history_window_seconds >= 7200"));
        assert!(text.contains("{{ $labels.type }} keeps growing"));
        assert!(!text.contains('\t'));
    }
}
