//! The sample history: per-type counts of one process over time, and which types grow steadily.
//!
//! A sampler (in the capture layer) takes a census every few seconds; each [`Sample`] keeps the
//! process figures and, per type, the count and bytes. Most types do not change between two
//! samples of a running program, so a [`History`] stores per sample only the types that changed
//! (a type's value holds until the next change): hours of samples of a program with thousands of
//! types cost little, and the same encoding is what [`store`] writes to SQLite.
//!
//! [`trends`] reads a history the way a leak hunter reads a growth chart: a type grows steadily
//! when it keeps reaching new highs over the whole run, not when it jumped once (a cache filled
//! at start-up) or went up and down (work in flight).
//!
//! What it is not: it does not take samples (the capture layer does) and does not draw them
//! ([`chart`] does).

pub mod chart;
pub mod follow;
pub mod report;
pub mod store;
mod trend;

pub use trend::{sparkline, trends, TypeTrend};

use crate::census::Census;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// The process-wide figures of one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub taken_ms: u64,
    pub pid: u32,
    /// Resident set size, in bytes (0 when unknown).
    pub rss: u64,
    /// Objects counted by the census, and their shallow bytes.
    pub objects: u64,
    pub bytes: u64,
    /// Whether the census counted gc-tracked objects only.
    pub gc_only: bool,
    /// How long the census took, in microseconds (the sampler's own cost).
    pub census_us: u64,
}

/// One type's value at a sample: count and bytes.
pub type Value = (u64, u64);

/// A stored sample: its figures and the types whose value changed since the previous sample
/// (`(type index, count, bytes)`; a count of 0 means the type is gone).
#[derive(Clone, Debug)]
struct Entry {
    sample: Sample,
    changes: Vec<(u32, u64, u64)>,
}

/// The samples of one process, oldest first, at most `capacity` of them (older ones are folded
/// into a base state, so values stay exact).
#[derive(Clone, Debug)]
pub struct History {
    capacity: usize,
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// Per type, the value before the oldest kept sample.
    base: Vec<Value>,
    /// Per type, the value at the newest sample.
    current: Vec<Value>,
    entries: VecDeque<Entry>,
}

impl History {
    /// An empty history keeping at most `capacity` samples (at least 2).
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(2),
            names: Vec::new(),
            index: HashMap::new(),
            base: Vec::new(),
            current: Vec::new(),
            entries: VecDeque::new(),
        }
    }

    fn type_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        self.base.push((0, 0));
        self.current.push((0, 0));
        i
    }

    /// Adds a sample with its census; returns the changes it stored, by type name (what a writer
    /// persists).
    pub fn push(&mut self, sample: Sample, census: &Census) -> Vec<(&str, u64, u64)> {
        let values = census
            .rows()
            .iter()
            .map(|r| (r.name.as_str(), r.count, r.bytes));
        self.push_values(sample, values)
    }

    /// Adds a sample given as `(type name, count, bytes)` for every type present; types absent
    /// from `values` are gone (count 0).
    pub fn push_values<'a>(
        &mut self,
        sample: Sample,
        values: impl IntoIterator<Item = (&'a str, u64, u64)>,
    ) -> Vec<(&str, u64, u64)> {
        let mut seen = vec![false; self.names.len()];
        let mut changes = Vec::new();
        for (name, count, bytes) in values {
            let i = self.type_index(name) as usize;
            if i >= seen.len() {
                seen.resize(i + 1, false);
            }
            seen[i] = true;
            if self.current[i] != (count, bytes) {
                self.current[i] = (count, bytes);
                changes.push((i as u32, count, bytes));
            }
        }
        for (i, present) in seen.iter().enumerate() {
            if !present && self.current[i] != (0, 0) {
                self.current[i] = (0, 0);
                changes.push((i as u32, 0, 0));
            }
        }
        self.apply(sample, changes)
    }

    /// Adds a sample given as changes since the previous one (as [`store`] reads them).
    pub fn push_changes<'a>(
        &mut self,
        sample: Sample,
        changes: impl IntoIterator<Item = (&'a str, u64, u64)>,
    ) {
        let mut stored = Vec::new();
        for (name, count, bytes) in changes {
            let i = self.type_index(name);
            self.current[i as usize] = (count, bytes);
            stored.push((i, count, bytes));
        }
        self.apply(sample, stored);
    }

    fn apply(&mut self, sample: Sample, changes: Vec<(u32, u64, u64)>) -> Vec<(&str, u64, u64)> {
        if self.entries.len() == self.capacity {
            if let Some(oldest) = self.entries.pop_front() {
                for (i, count, bytes) in oldest.changes {
                    self.base[i as usize] = (count, bytes);
                }
            }
        }
        self.entries.push_back(Entry { sample, changes });
        let last = self.entries.back().expect("just pushed");
        last.changes
            .iter()
            .map(|&(i, c, b)| (self.names[i as usize].as_str(), c, b))
            .collect()
    }

    /// How many samples it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many samples are kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The samples' figures, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> + '_ {
        self.entries.iter().map(|e| &e.sample)
    }

    /// The newest sample's figures.
    pub fn latest(&self) -> Option<&Sample> {
        self.entries.back().map(|e| &e.sample)
    }

    /// Every type name ever seen.
    pub fn type_names(&self) -> &[String] {
        &self.names
    }

    /// The value of each type at the newest sample, by name (types with count 0 left out).
    pub fn current(&self) -> impl Iterator<Item = (&str, Value)> + '_ {
        self.names
            .iter()
            .zip(&self.current)
            .filter(|(_, v)| v.0 > 0)
            .map(|(n, &v)| (n.as_str(), v))
    }

    /// One type's value at every kept sample, oldest first (empty for an unknown type).
    pub fn series(&self, name: &str) -> Vec<Value> {
        let Some(&i) = self.index.get(name) else {
            return Vec::new();
        };
        let mut value = self.base[i as usize];
        self.entries
            .iter()
            .map(|e| {
                if let Some(&(_, c, b)) = e.changes.iter().find(|c| c.0 == i) {
                    value = (c, b);
                }
                value
            })
            .collect()
    }

    /// Every type's count at every kept sample: `columns[t][s]` for type `t` of
    /// [`History::type_names`] at sample `s`. One pass, for analyses over all types.
    pub fn count_columns(&self) -> Vec<Vec<u64>> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        self.count_columns_at(&all)
    }

    /// Every type's count at the samples `at` (increasing indexes): `columns[t][k]` for type `t`
    /// at sample `at[k]`. A long history is analysed at a few thousand evenly spaced samples
    /// (see [`History::spread`]) so the columns stay small.
    pub fn count_columns_at(&self, at: &[usize]) -> Vec<Vec<u64>> {
        let mut now: Vec<u64> = self.base.iter().map(|v| v.0).collect();
        let mut columns = vec![Vec::with_capacity(at.len()); self.names.len()];
        let mut wanted = at.iter().peekable();
        for (s, e) in self.entries.iter().enumerate() {
            for &(i, c, _) in &e.changes {
                now[i as usize] = c;
            }
            if wanted.next_if_eq(&&s).is_some() {
                for (column, &c) in columns.iter_mut().zip(&now) {
                    column.push(c);
                }
            }
        }
        columns
    }

    /// At most `points` sample indexes, evenly spread from the oldest to the newest sample (all
    /// of them when there are no more than `points`).
    pub fn spread(&self, points: usize) -> Vec<usize> {
        let n = self.entries.len();
        if n <= points || points < 2 {
            return (0..n).collect();
        }
        let mut out: Vec<usize> = (0..points).map(|k| k * (n - 1) / (points - 1)).collect();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample {
            taken_ms: t * 1000,
            pid: 7,
            ..Sample::default()
        }
    }

    #[test]
    fn only_changes_are_stored_and_series_are_exact() {
        let mut h = History::new(100);
        let stored = h.push_values(sample(0), [("dict", 10, 100), ("Order", 1, 56)]);
        assert_eq!(stored.len(), 2);
        let stored = h.push_values(sample(1), [("dict", 10, 100), ("Order", 2, 112)]);
        assert_eq!(stored, vec![("Order", 2, 112)]);
        // A type that disappears is stored as gone.
        let stored = h.push_values(sample(2), [("dict", 10, 100)]);
        assert_eq!(stored, vec![("Order", 0, 0)]);
        assert_eq!(h.series("Order"), vec![(1, 56), (2, 112), (0, 0)]);
        assert_eq!(h.series("dict"), vec![(10, 100); 3]);
        assert!(h.series("nope").is_empty());
        assert_eq!(h.count_columns(), vec![vec![10, 10, 10], vec![1, 2, 0]]);
        assert_eq!(h.current().collect::<Vec<_>>(), vec![("dict", (10, 100))]);
    }

    #[test]
    fn long_histories_are_read_at_evenly_spread_samples() {
        let mut h = History::new(10_000);
        for t in 0..5000u64 {
            h.push_values(sample(t), [("Order", t, t)]);
        }
        let at = h.spread(11);
        assert_eq!(
            at,
            vec![0, 499, 999, 1499, 1999, 2499, 2999, 3499, 3999, 4499, 4999]
        );
        assert_eq!(
            h.count_columns_at(&at)[0],
            at.iter().map(|&i| i as u64).collect::<Vec<_>>()
        );
        assert_eq!(h.spread(10_000).len(), 5000);
    }

    #[test]
    fn old_samples_fold_into_the_base() {
        let mut h = History::new(3);
        for t in 0..10u64 {
            h.push_values(sample(t), [("Order", t, t * 56), ("dict", 5, 50)]);
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.samples().next().unwrap().taken_ms, 7000);
        assert_eq!(h.series("Order"), vec![(7, 392), (8, 448), (9, 504)]);
        assert_eq!(h.series("dict"), vec![(5, 50); 3]);
    }
}
