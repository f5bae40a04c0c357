//! The background sampler: a census every few seconds, from a thread of its own, into a
//! history of samples (and optionally a history file), for `heaplens run` and the dashboard.
//!
//! The thread is a plain Rust thread: it takes the GIL only for the census itself (which runs no
//! Python code), so the program sees it as a pause of a few milliseconds per sample and nothing
//! else; no Python thread, no Python objects. It stretches its period so that censuses take at
//! most `max_overhead` of the time (1% by default): on a heap where a census takes 0.1 s it
//! samples every 10 s at most. It never runs `gc.collect()`.
//!
//! Shutdown: the thread must not ask for the GIL once the interpreter is finalizing, so the
//! Python package stops every sampler from an `atexit` hook. Around a `fork()` the thread is
//! stopped (`_before_fork`) and started again in the parent (`_after_fork_in_parent`); the child
//! gets a new one with a history of its own (`_reinit_after_fork`).

use crate::errors::{capture_error, core_error};
use crate::py_snapshot::PySnapshot;
use heaplens_capture as capture;
use heaplens_core::census::Census;
use heaplens_core::history::{self, store::HistoryWriter, History, Sample};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the sampler thread and the Python object share.
struct State {
    history: History,
    writer: Option<HistoryWriter>,
    /// The period asked for, and the one in use (stretched on big heaps).
    period: f64,
    effective_period: f64,
    max_overhead: f64,
    gc_only: bool,
    stop: bool,
    /// The last error of the thread (a history file that cannot be written), for the caller.
    error: Option<String>,
    /// Smoothed census time, in seconds.
    census_seconds: f64,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    /// A sampler's state before its first sample.
    fn new(
        capacity: usize,
        writer: Option<HistoryWriter>,
        period: f64,
        max_overhead: f64,
        gc_only: bool,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                history: History::new(capacity),
                writer,
                period,
                effective_period: period,
                max_overhead,
                gc_only,
                stop: false,
                error: None,
                census_seconds: 0.0,
            }),
            wake: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state inconsistent in a way that
        // matters (every field is a plain value), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A sampler's history, for a reader on another thread (the live dashboard). It follows the
/// sampler's lock-order rule: [`HistoryHandle::with_history`] holds the state mutex while its
/// closure runs, so the closure must not wait for the GIL (the sampler thread takes the mutex
/// while holding the GIL). Call it with the GIL released, or at least never attach inside it.
#[derive(Clone)]
pub(crate) struct HistoryHandle(Arc<Shared>);

impl HistoryHandle {
    /// Calls `f` with the history, under the state mutex.
    pub(crate) fn with_history<R>(&self, f: impl FnOnce(&History) -> R) -> R {
        f(&self.0.lock().history)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A census of this process and its figures. The GIL must be held (`py`).
fn take_sample(py: Python<'_>, gc_only: bool) -> Result<(Sample, Census), capture::CaptureError> {
    let started = Instant::now();
    let census = capture::census(py, gc_only)?;
    let census_us = started.elapsed().as_micros() as u64;
    let rss = heaplens_core::procmem::current()
        .ok()
        .and_then(|m| m.rss)
        .unwrap_or(0);
    let sample = Sample {
        taken_ms: now_ms(),
        pid: std::process::id(),
        rss,
        objects: census.total_count(),
        bytes: census.total_bytes(),
        gc_only,
        census_us,
    };
    Ok((sample, census))
}

/// Records a sample: in the history, in the file, and in the period's cost estimate. Returns a
/// warning to log once the lock is released (logging runs Python code, which needs the GIL, and
/// the GIL must never be waited for while holding the lock).
#[must_use]
fn record(state: &mut State, sample: Sample, census: &Census) -> Option<String> {
    let changes = state.history.push(sample, census);
    let mut warning = None;
    if let Some(writer) = state.writer.as_mut() {
        if let Err(e) = writer.append(&sample, &changes) {
            // A full disk or a deleted directory must not stop the program: sampling goes on
            // in memory, and the error is reported once.
            warning = Some(format!("history file: {e}; sampling in memory only"));
            state.error = Some(e.to_string());
            state.writer = None;
        }
    }
    let seconds = sample.census_us as f64 / 1e6;
    state.census_seconds = if state.census_seconds == 0.0 {
        seconds
    } else {
        0.7 * state.census_seconds + 0.3 * seconds
    };
    state.effective_period = state
        .period
        .max(state.census_seconds / state.max_overhead.max(1e-6));
    warning
}

fn warn(warning: Option<String>) {
    if let Some(w) = warning {
        log::warn!(target: "heaplens.sampler", "{w}");
    }
}

/// The sampler thread's body. A panic in it (a heaplens bug) ends sampling, as the thread ends,
/// but says so: logged, and in [`PySampler::error`] (which `heaplens run` reports at exit), where
/// the history would otherwise just stop growing.
fn sample_until_stopped(shared: Arc<Shared>) {
    let after_panic = Arc::clone(&shared);
    let sampled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sampler_thread(shared)));
    if sampled.is_err() {
        const WHY: &str = "sampling stopped after an internal error (a heaplens bug: please \
                           report it with the message above)";
        // The lock is free again: the guard of a panic while holding it dropped in the unwind.
        after_panic.lock().error = Some(WHY.to_string());
        log::error!(target: "heaplens.sampler", "{WHY}");
    }
}

fn sampler_thread(shared: Arc<Shared>) {
    loop {
        let gc_only = {
            let mut state = shared.lock();
            let deadline = Instant::now() + Duration::from_secs_f64(state.effective_period);
            while !state.stop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = shared
                    .wake
                    .wait_timeout(state, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if state.stop {
                return;
            }
            state.gc_only
        };
        let taken = Python::attach(|py| {
            // Checked again with the GIL held: `stop()` may have run while we waited for it.
            if shared.lock().stop {
                return None;
            }
            Some(take_sample(py, gc_only))
        });
        match taken {
            None => return,
            Some(Ok((sample, census))) => {
                let warning = record(&mut shared.lock(), sample, &census);
                warn(warning);
            }
            // A collection was running (a finalizer released the GIL mid-collection): skip.
            Some(Err(e)) => log::debug!(target: "heaplens.sampler", "sample skipped: {e}"),
        }
    }
}

/// Takes a census every ``period`` seconds in a background thread (stretched so that sampling
/// costs at most ``max_overhead`` of the time), keeping the last ``maxhistory`` samples and, with
/// ``history``, appending each to that SQLite file as it is taken. ``gc_only=False`` counts every
/// object, not only the gc-tracked ones. Call :meth:`start`, and :meth:`stop` before exit (the
/// Python package does it from an ``atexit`` hook).
#[pyclass(module = "heaplens._native", name = "Sampler")]
pub struct PySampler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The thread was stopped for a `fork()` (see [`PySampler::_before_fork`]).
    paused_for_fork: bool,
    history_path: Option<PathBuf>,
    program: String,
}

fn open_writer(path: &Option<PathBuf>, program: &str) -> PyResult<Option<HistoryWriter>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let python = capture::python_version().unwrap_or_default();
    HistoryWriter::open(path, std::process::id(), program, python)
        .map(Some)
        .map_err(core_error)
}

impl PySampler {
    /// The history, for the dashboard. After `_reinit_after_fork` the sampler has a new one:
    /// ask again rather than keep the handle for the life of the process.
    pub(crate) fn history_handle(&self) -> HistoryHandle {
        HistoryHandle(Arc::clone(&self.shared))
    }
}

#[pymethods]
impl PySampler {
    #[new]
    #[pyo3(signature = (period=5.0, maxhistory=720, history=None, gc_only=true, program=String::new(), max_overhead=0.01))]
    fn new(
        period: f64,
        maxhistory: usize,
        history: Option<PathBuf>,
        gc_only: bool,
        program: String,
        max_overhead: f64,
    ) -> PyResult<Self> {
        if !(period.is_finite() && period > 0.0) {
            return Err(PyValueError::new_err(format!(
                "period must be a positive number of seconds, not {period}"
            )));
        }
        if maxhistory < 2 {
            return Err(PyValueError::new_err(format!(
                "maxhistory must be at least 2, not {maxhistory}"
            )));
        }
        if !(max_overhead.is_finite() && max_overhead > 0.0 && max_overhead <= 1.0) {
            return Err(PyValueError::new_err(format!(
                "max_overhead is a fraction of the time, in (0, 1], not {max_overhead}"
            )));
        }
        let writer = open_writer(&history, &program)?;
        Ok(PySampler {
            shared: Shared::new(maxhistory, writer, period, max_overhead, gc_only),
            thread: None,
            paused_for_fork: false,
            history_path: history,
            program,
        })
    }

    /// Starts the background thread (once; later calls do nothing).
    fn start(&mut self) -> PyResult<()> {
        if self.thread.is_some() {
            return Ok(());
        }
        self.shared.lock().stop = false;
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("heaplens-sampler".into())
            .spawn(move || sample_until_stopped(shared))
            .map_err(|e| PyValueError::new_err(format!("cannot start the sampler thread: {e}")))?;
        self.thread = Some(handle);
        Ok(())
    }

    /// Stops the background thread and waits for it (a sample in progress finishes first);
    /// the history file then holds every sample in itself, none only in its `-wal`.
    fn stop(&mut self, py: Python<'_>) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.thread.take() {
            // The thread may be waiting for the GIL to finish its sample: let it have it.
            py.detach(|| {
                let _ = handle.join();
            });
        }
        // Without the GIL: a checkpoint writes and syncs the file.
        let shared = &self.shared;
        py.detach(|| {
            if let Some(writer) = shared.lock().writer.as_mut() {
                writer.checkpoint();
            }
        });
    }

    /// Takes a sample now, on the calling thread.
    fn sample_now(&self, py: Python<'_>) -> PyResult<()> {
        let gc_only = self.shared.lock().gc_only;
        let (sample, census) = take_sample(py, gc_only).map_err(capture_error)?;
        let warning = record(&mut self.shared.lock(), sample, &census);
        warn(warning);
        Ok(())
    }

    /// Whether the background thread runs.
    #[getter]
    fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The period in use, in seconds: the one asked for, or longer where censuses are slow.
    #[getter]
    #[allow(clippy::misnamed_getters)] // the effective period is the one users need to see
    fn period(&self) -> f64 {
        self.shared.lock().effective_period
    }

    /// The history file, or None.
    #[getter]
    fn history_path(&self) -> Option<PathBuf> {
        self.history_path.clone()
    }

    /// Why the history file stopped being written, or None.
    #[getter]
    fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    fn __len__(&self) -> usize {
        self.shared.lock().history.len()
    }

    /// The samples, oldest first: ``(taken_ms, rss, objects, bytes, census_us)``.
    fn samples(&self) -> Vec<(u64, u64, u64, u64, u64)> {
        self.shared
            .lock()
            .history
            .samples()
            .map(|s| (s.taken_ms, s.rss, s.objects, s.bytes, s.census_us))
            .collect()
    }

    /// One type's ``(count, bytes)`` at every sample, oldest first.
    fn series(&self, name: &str) -> Vec<(u64, u64)> {
        self.shared.lock().history.series(name)
    }

    /// Per type, how its count moved: ``(name, first, last, min, max, bytes, steady,
    /// per_hour)``, steady growers first, fastest first.
    #[pyo3(signature = (limit=None))]
    #[allow(clippy::type_complexity)]
    fn trends(&self, limit: Option<usize>) -> Vec<(String, u64, u64, u64, u64, u64, bool, f64)> {
        let state = self.shared.lock();
        history::trends(&state.history)
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|t| {
                (
                    t.name, t.first, t.last, t.min, t.max, t.bytes, t.steady, t.per_hour,
                )
            })
            .collect()
    }

    /// The report of the run so far: process figures, the types that grew steadily and, given a
    /// snapshot, where each accumulates with its retaining path.
    #[pyo3(signature = (snapshot=None, limit=10))]
    fn report(
        &self,
        py: Python<'_>,
        snapshot: Option<PyRef<'_, PySnapshot>>,
        limit: usize,
    ) -> String {
        let steady: Vec<(String, u64)> = {
            let state = self.shared.lock();
            history::trends(&state.history)
                .into_iter()
                .filter(|t| t.steady)
                // Every steady type is looked up, not only the first `limit`: the report ranks
                // them (the leaking class before library types that grow as fast) and drops
                // the bounded caches before it cuts the list.
                .take(limit.max(64))
                .map(|t| (t.name, t.last.saturating_sub(t.first)))
                .collect()
        };
        // Without the lock: the analysis releases the GIL, and the sampler thread takes the
        // lock while holding the GIL.
        let mut holders = match snapshot {
            Some(snap) if !steady.is_empty() => snap.holders_by_type(py, &steady),
            _ => Vec::new(),
        };
        // Where the growing objects come from, when tracemalloc traces (heaplens run
        // --trace-alloc): recorded with the snapshot, or else asked of the live process, for
        // one entry of each holder.
        let wanted: Vec<(u64, String)> = holders
            .iter()
            .map(|h| (h.sample_address, h.entry_type.clone()))
            .collect();
        if let Ok(tracebacks) = crate::allocated::tracebacks(py, &wanted) {
            for (h, traceback) in holders.iter_mut().zip(tracebacks) {
                if h.allocated_at.is_empty() {
                    h.allocated_at = traceback;
                }
            }
        }
        let state = self.shared.lock();
        let trends = history::trends(&state.history);
        heaplens_core::history::report::run_report(
            &self.program,
            &state.history,
            &trends,
            state.effective_period,
            &holders,
            limit,
            heaplens_core::own::memory(),
        )
    }

    /// Before ``os.fork()``: stops the thread (a sample in progress finishes first), so that
    /// the process forks with no thread of heaplens' running: none can hold a lock the child
    /// needs, and CPython (3.15 counts the process's threads) does not warn that a
    /// multi-threaded process forks. `_after_fork_in_parent` and `_reinit_after_fork` start
    /// it again.
    fn _before_fork(&mut self, py: Python<'_>) {
        if self.thread.is_some() {
            self.stop(py);
            self.paused_for_fork = true;
        }
    }

    /// After ``os.fork()``, in the parent: sampling goes on where it was.
    fn _after_fork_in_parent(&mut self) -> PyResult<()> {
        if std::mem::take(&mut self.paused_for_fork) {
            self.start()?;
        }
        Ok(())
    }

    /// After ``os.fork()``, in the child: the parent's thread does not exist here. Starts a
    /// history of this process's own (a new entry in the same history file) and, if the parent
    /// sampled in the background, a thread.
    fn _reinit_after_fork(&mut self) -> PyResult<()> {
        let was_running = self.thread.is_some() || std::mem::take(&mut self.paused_for_fork);
        // The handle names a thread of the parent: joining or dropping it here would be
        // meaningless, so it is forgotten.
        if let Some(handle) = self.thread.take() {
            std::mem::forget(handle);
        }
        let (period, capacity, max_overhead, gc_only) = match self.shared.state.try_lock() {
            Ok(s) => (s.period, s.history.capacity(), s.max_overhead, s.gc_only),
            // The parent's thread held the lock at the fork: the old state is lost to us.
            Err(_) => (5.0, 720, 0.01, true),
        };
        // The parent's SQLite connection must not be used (or closed) in the child.
        if let Ok(mut s) = self.shared.state.try_lock() {
            if let Some(w) = s.writer.take() {
                std::mem::forget(w);
            }
        }
        let writer = open_writer(&self.history_path, &self.program)?;
        self.shared = Shared::new(capacity, writer, period, max_overhead, gc_only);
        if was_running {
            self.start()?;
        }
        Ok(())
    }
}

impl Drop for PySampler {
    fn drop(&mut self) {
        // Without the GIL in hand the thread cannot be joined safely; it is told to stop and
        // ends on its own at its next wake-up.
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
    }
}
