//! `heaplens.memory()`: process memory figures as a Python object.

use crate::errors::core_error;
use pyo3::exceptions::PyProcessLookupError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Memory of a process, in bytes: ``rss`` now, ``peak_rss`` (what
/// ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` reports, in bytes on every OS), and on Linux
/// ``uss`` (private pages: what exiting would free), ``pss`` and ``swap``. Fields the OS does not
/// provide are ``None``.
#[pyclass(module = "heaplens", name = "MemoryInfo", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyMemoryInfo {
    #[pyo3(get)]
    pub rss: Option<u64>,
    #[pyo3(get)]
    pub peak_rss: u64,
    #[pyo3(get)]
    pub uss: Option<u64>,
    #[pyo3(get)]
    pub pss: Option<u64>,
    #[pyo3(get)]
    pub swap: Option<u64>,
}

fn mib(v: Option<u64>) -> String {
    v.map_or("n/a".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    })
}

#[pymethods]
impl PyMemoryInfo {
    fn __repr__(&self) -> String {
        format!(
            "MemoryInfo(rss={}, peak_rss={}, uss={}, pss={}, swap={})",
            mib(self.rss),
            mib(Some(self.peak_rss)),
            mib(self.uss),
            mib(self.pss),
            mib(self.swap)
        )
    }

    /// The fields as a dict.
    fn _asdict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("rss", self.rss)?;
        d.set_item("peak_rss", self.peak_rss)?;
        d.set_item("uss", self.uss)?;
        d.set_item("pss", self.pss)?;
        d.set_item("swap", self.swap)?;
        Ok(d)
    }
}

impl From<heaplens_core::procmem::MemoryInfo> for PyMemoryInfo {
    fn from(m: heaplens_core::procmem::MemoryInfo) -> Self {
        PyMemoryInfo {
            rss: m.rss,
            peak_rss: m.peak_rss,
            uss: m.uss,
            pss: m.pss,
            swap: m.swap,
        }
    }
}

/// Memory of this process, or of process ``pid`` (Linux).
#[pyfunction]
#[pyo3(signature = (pid=None))]
pub fn memory(py: Python<'_>, pid: Option<i64>) -> PyResult<PyMemoryInfo> {
    let result = py.detach(|| match pid {
        None => heaplens_core::procmem::current(),
        Some(p) => {
            let p = u32::try_from(p).map_err(|_| heaplens_core::Error::Parse {
                what: "pid".into(),
                detail: format!("{p} is not a process id"),
            })?;
            heaplens_core::procmem::of_pid(p)
        }
    });
    match result {
        Ok(m) => Ok(m.into()),
        Err(heaplens_core::Error::Io { source, .. })
            if pid.is_some() && source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(PyProcessLookupError::new_err(format!(
                "no process with pid {}",
                pid.unwrap_or_default()
            )))
        }
        Err(e) => Err(core_error(e)),
    }
}
