//! objgraph's growth: which types have more objects than ever before.
//!
//! A [`PeakTracker`] remembers the highest count seen for each type. Each update reports the types
//! whose count now exceeds that peak, by how much, and raises the peak. Counts that go up and down
//! (a request's temporary objects, garbage waiting for the collector) stop being reported once
//! their peak is reached; a leak keeps setting new peaks. State lives in the tracker, never in a
//! mutable default argument.

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

    /// Records `counts` and returns the types above their previous peak, largest growth first
    /// (ties by name). The first update reports every type, as objgraph's first `growth()` does.
    pub fn update<'a>(
        &mut self,
        counts: impl IntoIterator<Item = (&'a str, u64)>,
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
        out.sort_by(|a, b| b.delta.cmp(&a.delta).then(a.name.cmp(&b.name)));
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
