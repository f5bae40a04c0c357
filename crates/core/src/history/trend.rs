//! Which types grow steadily over a history, and how fast.
//!
//! A leak shows as a count that keeps reaching new highs. The run is cut into (up to) four equal
//! stretches of samples; a type grows steadily when every stretch after the first reaches a
//! higher count than anything before it, and it has not fallen back by the end. The first
//! stretch is allowed to be warm-up (caches filling, pools growing to size), so a type that only
//! grew at start-up is not reported, nor is one that goes up and down with the work in flight.

use super::History;
use crate::analysis::ranking;

/// How many samples of a long history the trends look at.
const TREND_POINTS: usize = 2000;

/// How one type's count moved over a history.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeTrend {
    pub name: String,
    /// Counts at the oldest and newest sample, and the extremes in between.
    pub first: u64,
    pub last: u64,
    pub min: u64,
    pub max: u64,
    /// Bytes at the newest sample.
    pub bytes: u64,
    /// Whether the type kept growing over the whole run (see the module documentation).
    pub steady: bool,
    /// Growth per hour after the first stretch (warm-up), in objects.
    pub per_hour: f64,
    /// The count at every kept sample, oldest first; for a history of more than 2,000
    /// samples, at 2,000 samples evenly spread over it ([`History::spread`]).
    pub counts: Vec<u64>,
}

impl TypeTrend {
    pub fn growth(&self) -> i64 {
        self.last as i64 - self.first as i64
    }
}

/// The stretch boundaries of `n` samples: sample indexes `b[0] = 0 < b[1] < ... < b[k] = n - 1`.
fn stretches(n: usize) -> Vec<usize> {
    let k = 4.min(n - 1);
    (0..=k).map(|j| (j * (n - 1) + k / 2) / k).collect()
}

/// Whether `counts` grows steadily (needs at least three samples).
fn is_steady(counts: &[u64]) -> bool {
    let n = counts.len();
    if n < 3 {
        return false;
    }
    let b = stretches(n);
    let k = b.len() - 1;
    let mut before = counts[0];
    for j in 1..=k {
        let stretch = &counts[b[j - 1] + 1..=b[j]];
        let high = stretch.iter().copied().max().unwrap_or(0);
        // The first stretch may be warm-up; with only two stretches both must rise.
        let must_rise = j > 1 || k <= 2;
        if must_rise && high <= before {
            return false;
        }
        before = before.max(high);
    }
    let (first, last) = (counts[0], counts[n - 1]);
    last > first && last - first >= (before - first).div_ceil(2)
}

/// The trend of every type of `history` that had objects at some sample: steady growers first,
/// fastest first; then the rest by how much they grew.
pub fn trends(history: &History) -> Vec<TypeTrend> {
    let at = history.spread(TREND_POINTS);
    let columns = history.count_columns_at(&at);
    let all_times: Vec<u64> = history.samples().map(|s| s.taken_ms).collect();
    let times: Vec<u64> = at.iter().map(|&i| all_times[i]).collect();
    let n = times.len();
    if n == 0 {
        return Vec::new();
    }
    let b = if n >= 2 { stretches(n) } else { vec![0] };
    let from = if b.len() > 2 { b[1] } else { 0 };
    let hours = (times[n - 1].saturating_sub(times[from])) as f64 / 3_600_000.0;
    let current: hashbrown::HashMap<&str, u64> =
        history.current().map(|(name, v)| (name, v.1)).collect();
    let mut out: Vec<TypeTrend> = history
        .type_names()
        .iter()
        .zip(columns)
        .filter(|(_, counts)| counts.iter().any(|&c| c > 0))
        .map(|(name, counts)| {
            let (first, last) = (counts[0], counts[n - 1]);
            let per_hour = if hours > 0.0 {
                (last as f64 - counts[from] as f64) / hours
            } else {
                0.0
            };
            TypeTrend {
                name: name.clone(),
                first,
                last,
                min: counts.iter().copied().min().unwrap_or(0),
                max: counts.iter().copied().max().unwrap_or(0),
                bytes: current.get(name.as_str()).copied().unwrap_or(0),
                steady: is_steady(&counts),
                per_hour,
                counts,
            }
        })
        .collect();
    // Steady growers first; among them, the one ranking rule of every report: the classes
    // before the builtins that grow inside them, each fastest first.
    out.sort_by(|a, b| {
        b.steady
            .cmp(&a.steady)
            .then(
                (a.steady && ranking::is_generic(&a.name))
                    .cmp(&(b.steady && ranking::is_generic(&b.name))),
            )
            .then(
                b.per_hour
                    .total_cmp(&a.per_hour)
                    .then(b.growth().cmp(&a.growth())),
            )
            .then(a.name.cmp(&b.name))
    });
    out
}

/// `values` as a line of `width` block characters (each the highest value of its bucket), scaled
/// between the lowest and highest value: `▁▂▄▆█`. A flat series is a flat line.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let width = width.min(values.len());
    let buckets: Vec<u64> = (0..width)
        .map(|i| {
            let lo = i * values.len() / width;
            let hi = ((i + 1) * values.len() / width).max(lo + 1);
            values[lo..hi].iter().copied().max().unwrap_or(0)
        })
        .collect();
    let lo = buckets.iter().copied().min().unwrap_or(0);
    let hi = buckets.iter().copied().max().unwrap_or(0);
    buckets
        .iter()
        .map(|&v| {
            if hi == lo {
                BLOCKS[0]
            } else {
                BLOCKS[((v - lo) as u128 * 7 / (hi - lo) as u128) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{History, Sample};
    use super::*;

    fn history(series: &[(&str, &[u64])]) -> History {
        let n = series[0].1.len();
        let mut h = History::new(1000);
        for s in 0..n {
            let sample = Sample {
                taken_ms: s as u64 * 60_000,
                ..Sample::default()
            };
            h.push_values(
                sample,
                series.iter().map(|(name, c)| (*name, c[s], c[s] * 10)),
            );
        }
        h
    }

    #[test]
    fn a_leak_is_steady_and_a_warm_cache_or_a_sawtooth_is_not() {
        let leak: Vec<u64> = (0..40).map(|i| 100 + i * 3 + (i % 3)).collect();
        let cache: Vec<u64> = (0..40).map(|i| if i < 5 { i * 100 } else { 500 }).collect();
        let saw: Vec<u64> = (0..40).map(|i| 50 + (i % 5) * 10).collect();
        let warm_then_leak: Vec<u64> = (0..40)
            .map(|i| if i < 8 { i * 50 } else { 400 + i })
            .collect();
        let h = history(&[
            ("cache", &cache),
            ("leak", &leak),
            ("saw", &saw),
            ("warm_then_leak", &warm_then_leak),
        ]);
        let t = trends(&h);
        let steady: Vec<&str> = t
            .iter()
            .filter(|t| t.steady)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(steady, vec!["leak", "warm_then_leak"]);
        let leak = t.iter().find(|t| t.name == "leak").unwrap();
        assert_eq!((leak.first, leak.last, leak.min), (100, 217, 100));
        assert_eq!(leak.bytes, 2170);
        // About 3 per minute after the first stretch.
        assert!((leak.per_hour - 180.0).abs() < 10.0, "{}", leak.per_hour);
    }

    #[test]
    fn a_steady_class_comes_before_the_builtins_growing_faster_inside_it() {
        let orders: Vec<u64> = (0..40).map(|i| 100 + i * 3).collect();
        let strings: Vec<u64> = (0..40).map(|i| 5000 + i * 30).collect();
        let flat: Vec<u64> = vec![9000; 40];
        let h = history(&[("str", &strings), ("app.Order", &orders), ("dict", &flat)]);
        let names: Vec<String> = trends(&h).into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["app.Order", "str", "dict"]);
    }

    #[test]
    fn a_leak_that_stopped_and_fell_back_is_not_steady() {
        let mut grew: Vec<u64> = (0..30).map(|i| i * 10).collect();
        grew.extend([20, 10, 5]);
        assert!(!is_steady(&grew));
        assert!(is_steady(&[1, 2, 3]));
        assert!(!is_steady(&[1, 2]));
        assert!(!is_steady(&[3, 3, 3, 3]));
    }

    #[test]
    fn sparklines_scale_between_the_extremes() {
        assert_eq!(sparkline(&[0, 7, 14], 3), "▁▄█");
        assert_eq!(sparkline(&[5, 5, 5, 5], 10), "▁▁▁▁");
        assert_eq!(sparkline(&[1, 9, 2, 2, 3, 10], 3), "▇▁█");
        assert_eq!(sparkline(&[], 5), "");
    }
}
