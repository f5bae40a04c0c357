//! The peak tracker behind `heaplens.growth()` (heaplens-core's [`PeakTracker`]).

use crate::py_census::PyCensus;
use heaplens_core::growth::{render_growth, GrowthRow, PeakTracker, SteadyGrowth};
use pyo3::prelude::*;
use std::collections::HashMap;

/// Peak counts per type name; :meth:`update` reports the names that passed their peak.
#[pyclass(module = "heaplens._native", name = "PeakTracker")]
pub struct PyPeakTracker {
    inner: PeakTracker,
}

#[pymethods]
impl PyPeakTracker {
    /// A tracker, optionally starting from ``peaks`` (``{name: count}``).
    #[new]
    #[pyo3(signature = (peaks=None))]
    fn new(peaks: Option<HashMap<String, u64>>) -> Self {
        let mut inner = PeakTracker::new();
        if let Some(p) = peaks {
            inner.update(p.iter().map(|(k, v)| (k.as_str(), *v)));
        }
        PyPeakTracker { inner }
    }

    /// Records ``counts`` (``[(name, count), ...]``, or ``(name, count, generic)`` where the
    /// name no longer tells a builtin from a class) and returns ``[(name, count, delta), ...]``
    /// for the names above their previous peak: classes first, then builtins and weak
    /// references, each largest growth first.
    fn update(&mut self, counts: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<(String, u64, u64)>> {
        let mut rows: Vec<(String, u64)> = Vec::with_capacity(counts.len());
        let mut generic: std::collections::HashSet<String> = std::collections::HashSet::new();
        for row in &counts {
            let (name, count, is_generic) = match row.extract::<(String, u64, bool)>() {
                Ok(t) => t,
                Err(_) => {
                    let (name, count) = row.extract::<(String, u64)>()?;
                    let g = heaplens_core::analysis::ranking::is_generic(&name);
                    (name, count, g)
                }
            };
            if is_generic {
                generic.insert(name.clone());
            }
            rows.push((name, count));
        }
        Ok(self
            .inner
            .update_ranked(rows.iter().map(|(k, v)| (k.as_str(), *v)), |n| {
                generic.contains(n)
            })
            .into_iter()
            .map(|r| (r.name, r.count, r.delta))
            .collect())
    }

    /// The peaks, as ``{name: count}``.
    fn peaks(&self) -> HashMap<String, u64> {
        self.inner
            .peaks()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

/// objgraph's ``show_growth`` table for ``[(name, count, delta), ...]``.
#[pyfunction]
pub fn format_growth(rows: Vec<(String, u64, u64)>) -> String {
    let rows: Vec<GrowthRow> = rows
        .into_iter()
        .map(|(name, count, delta)| GrowthRow { name, count, delta })
        .collect();
    render_growth(&rows)
}

/// The bookkeeping of a leak check, kept out of the heap it measures: the counts of every
/// census live in Rust, so between censuses the check holds this one object and nothing else.
#[pyclass(module = "heaplens._native", name = "SteadyGrowth")]
pub struct PySteadyGrowth {
    inner: SteadyGrowth,
}

#[pymethods]
impl PySteadyGrowth {
    /// Starts from the census taken before the first step.
    #[new]
    fn new(baseline: &PyCensus) -> Self {
        PySteadyGrowth {
            inner: SteadyGrowth::new(&baseline.inner),
        }
    }

    /// Records the census taken after one more step.
    fn record(&mut self, now: &PyCensus) {
        self.inner.record(&now.inner);
    }

    /// ``[(type name, total growth), ...]`` for the types that grew on every step.
    fn steady(&self) -> Vec<(String, u64)> {
        self.inner.steady()
    }
}
