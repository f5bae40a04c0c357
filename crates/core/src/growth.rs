//! objgraph's growth: which types have more objects than ever before.
//!
//! A [`PeakTracker`] remembers the highest count seen for each type. Each update reports the types
//! whose count now exceeds that peak, by how much, and raises the peak. Counts that go up and down
//! (a request's temporary objects, garbage waiting for the collector) stop being reported once
//! their peak is reached; a leak keeps setting new peaks. State lives in the tracker, never in a
//! mutable default argument.

use crate::analysis::ranking;
use crate::census::Census;
use hashbrown::HashMap;

/// One type that grew past its peak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrowthRow {
    pub name: String,
    /// The count now.
    pub count: u64,
    /// How far above the previous peak it is.
    pub delta: u64,
}

/// Remembers peak counts per type name.
#[derive(Clone, Debug, Default)]
pub struct PeakTracker {
    peaks: HashMap<String, u64>,
}

impl PeakTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `counts` (by display name) and returns the types above their previous peak, in
    /// the order of [`PeakTracker::update_ranked`] with [`ranking::is_generic`].
    pub fn update<'a>(
        &mut self,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Vec<GrowthRow> {
        self.update_ranked(counts, ranking::is_generic)
    }

    /// Records `counts` and returns the types above their previous peak, by the one ranking rule
    /// of every report: the types a developer would name (classes) first, then the generic ones
    /// (`generic`: builtins, weak references), each largest growth first (ties by name). The
    /// first update reports every type, as objgraph's first `growth()` does. `generic` is asked
    /// by the name given (a caller with objgraph's short names knows which are builtins).
    pub fn update_ranked<'a>(
        &mut self,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
        generic: impl Fn(&str) -> bool,
    ) -> Vec<GrowthRow> {
        let mut out = Vec::new();
        for (name, count) in counts {
            match self.peaks.get_mut(name) {
                Some(peak) if count <= *peak => {}
                Some(peak) => {
                    out.push(GrowthRow {
                        name: name.to_string(),
                        count,
                        delta: count - *peak,
                    });
                    *peak = count;
                }
                None => {
                    if count > 0 {
                        out.push(GrowthRow {
                            name: name.to_string(),
                            count,
                            delta: count,
                        });
                    }
                    self.peaks.insert(name.to_string(), count);
                }
            }
        }
        out.sort_by_cached_key(|r| (generic(&r.name), std::cmp::Reverse(r.delta), r.name.clone()));
        out
    }

    /// The recorded peak of `name`.
    pub fn peak(&self, name: &str) -> Option<u64> {
        self.peaks.get(name).copied()
    }

    /// Forgets every peak.
    pub fn reset(&mut self) {
        self.peaks.clear();
    }

    pub fn peaks(&self) -> impl Iterator<Item = (&str, u64)> {
        self.peaks.iter().map(|(k, &v)| (k.as_str(), v))
    }
}

/// Which types grow on *every* step of a repeated run: a leak check calls the code several times
/// and records a census after each call; a type that grows each time leaks, one that grows
/// once (a cache filled lazily) does not.
#[derive(Clone, Debug)]
pub struct SteadyGrowth {
    baseline: HashMap<String, u64>,
    last: HashMap<String, u64>,
    growing: Option<hashbrown::HashSet<String>>,
    steps: usize,
}

impl SteadyGrowth {
    /// Starts from the counts before the first step.
    pub fn new(baseline: &Census) -> SteadyGrowth {
        let counts = counts_of(baseline);
        SteadyGrowth {
            baseline: counts.clone(),
            last: counts,
            growing: None,
            steps: 0,
        }
    }

    /// Records the counts after one more step.
    pub fn record(&mut self, now: &Census) {
        let counts = counts_of(now);
        let grew: hashbrown::HashSet<String> = counts
            .iter()
            .filter(|(name, &c)| c > self.last.get(*name).copied().unwrap_or(0))
            .map(|(name, _)| name.clone())
            .collect();
        self.growing = Some(match self.growing.take() {
            None => grew,
            Some(before) => before.intersection(&grew).cloned().collect(),
        });
        self.last = counts;
        self.steps += 1;
    }

    /// The types that grew on every recorded step, with their total growth, largest first.
    pub fn steady(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .growing
            .iter()
            .flatten()
            .map(|name| {
                let now = self.last.get(name).copied().unwrap_or(0);
                let then = self.baseline.get(name).copied().unwrap_or(0);
                (name.clone(), now.saturating_sub(then))
            })
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    pub fn steps(&self) -> usize {
        self.steps
    }
}

fn counts_of(census: &Census) -> HashMap<String, u64> {
    census
        .rows()
        .iter()
        .map(|r| (r.name.clone(), r.count))
        .collect()
}

/// objgraph's `show_growth` table: name left-aligned, count and signed delta right-aligned.
pub fn render_growth(rows: &[GrowthRow]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        out.push_str(&format!(
            "{:<width$}{:>9} {:>+9}\n",
            r.name, r.count, r.delta as i64
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_come_before_builtins_that_grew_more() {
        let mut t = PeakTracker::new();
        t.update([("dict", 100), ("app.Order", 5), ("str", 50)]);
        let rows = t.update([("dict", 400), ("app.Order", 8), ("str", 90)]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["app.Order", "dict", "str"]);
        // objgraph's short names: the caller says which are builtins.
        let mut t = PeakTracker::new();
        let rows = t.update_ranked([("dict", 400), ("Order", 8)], |n| n == "dict");
        assert_eq!(rows[0].name, "Order");
    }

    #[test]
    fn the_first_update_reports_everything_and_later_ones_only_new_peaks() {
        let mut t = PeakTracker::new();
        let first = t.update([("dict", 100), ("Order", 5)]);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].name, "dict");
        assert!(t.update([("dict", 100), ("Order", 5)]).is_empty());
        let grown = t.update([("dict", 90), ("Order", 8)]);
        assert_eq!(
            grown,
            vec![GrowthRow {
                name: "Order".into(),
                count: 8,
                delta: 3
            }]
        );
    }

    #[test]
    fn a_count_that_falls_and_recovers_is_not_growth_until_it_passes_its_peak() {
        let mut t = PeakTracker::new();
        t.update([("list", 50)]);
        assert!(t.update([("list", 10)]).is_empty());
        assert!(t.update([("list", 50)]).is_empty());
        assert_eq!(t.update([("list", 51)])[0].delta, 1);
        assert_eq!(t.peak("list"), Some(51));
    }

    fn census(counts: &[(&str, u64)]) -> Census {
        let mut strings = crate::strings::StringTable::new();
        let mut types = crate::types::TypeTable::new();
        for (name, _) in counts {
            types
                .push(crate::types::TypeInfo {
                    module: strings.intern("app"),
                    name: strings.intern(name),
                    qualname: strings.intern(name),
                    flags: crate::types::TypeFlags::default(),
                })
                .unwrap();
        }
        let c: Vec<u64> = counts.iter().map(|x| x.1).collect();
        Census::from_counts(&types, &strings, &c, &c, false)
    }

    #[test]
    fn only_types_that_grow_on_every_step_are_steady() {
        let mut g = SteadyGrowth::new(&census(&[("Leak", 1), ("Cache", 1), ("Flat", 5)]));
        g.record(&census(&[("Leak", 2), ("Cache", 9), ("Flat", 5)]));
        g.record(&census(&[("Leak", 3), ("Cache", 9), ("Flat", 6)]));
        g.record(&census(&[
            ("Leak", 4),
            ("Cache", 9),
            ("Flat", 5),
            ("New", 1),
        ]));
        assert_eq!(g.steady(), vec![("app.Leak".to_string(), 3)]);
        assert_eq!(g.steps(), 3);
    }

    #[test]
    fn the_table_matches_objgraphs_layout() {
        let rows = vec![
            GrowthRow {
                name: "dict".into(),
                count: 1234,
                delta: 10,
            },
            GrowthRow {
                name: "MyLeakyObject".into(),
                count: 3,
                delta: 3,
            },
        ];
        assert_eq!(
            render_growth(&rows),
            "dict              1234       +10\nMyLeakyObject        3        +3\n"
        );
    }
}
