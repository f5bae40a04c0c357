//! `_native.Dashboard`: the live dashboard of this process, for the WSGI and ASGI middleware.
//!
//! The dashboard itself (routes, JSON API, page, security rules) is heaplens-dashboard's pure
//! [`heaplens_dashboard::handle`]; this file only gives it a live [`Source`]: the sampler's
//! history (lent under the sampler's mutex), and snapshots of this heap taken on request. The
//! middleware parses HTTP and calls [`PyDashboard::handle`], which releases the GIL for the whole
//! request: only the start of a snapshot takes it back (a `fork()`, whose child walks the heap
//! and streams the snapshot back; the whole walk where a fork cannot be used, see
//! [`crate::take`]), and the snapshot is read and analysed (dominators, retaining paths, census)
//! after the GIL is released again, so a request for the dashboard costs the program's other
//! threads the fork and nothing more.
//!
//! Lock order (the sampler's rule): no lock here is held while waiting for the GIL. The
//! sampler's state mutex is held only inside [`Source::with_history`] (which runs without the
//! GIL), and the snapshot pair's mutex only to swap `Arc`s.
//!
//! Per-endpoint growth: with `trace_every=N` the dashboard owns a [`RequestTracer`], which the
//! middleware calls around every request (`trace_start`/`trace_finish`) and `/api/endpoints`
//! reads.
//!
//! Not here: HTTP parsing and reading the framework's route (the Python middleware).

use crate::py_sampler::{HistoryHandle, PySampler};
use crate::request_tracing::RequestTracer;
use heaplens_capture::{self as capture, SnapshotOptions};
use heaplens_core::history::History;
use heaplens_dashboard::{
    ActionError, Config, EndpointGrowth, ProcessInfo, Request, Snapshot, Source,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The current snapshot and the one before it.
#[derive(Default)]
struct Snapshots {
    current: Option<Arc<Snapshot>>,
    previous: Option<Arc<Snapshot>>,
}

/// A mutex whose data stays usable after a panic elsewhere (every value in it is replaced
/// whole, never left half-written).
fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The live source of one request: the dashboard's snapshots and the sampler's history as it
/// is now (after a fork the sampler has a new history, so it is looked up per request).
struct LiveSource<'a> {
    dashboard: &'a PyDashboard,
    history: Option<HistoryHandle>,
}

/// Thread names by ident, as `heaplens.snapshot()` gathers them (Python code: before the walk).
fn thread_names(py: Python<'_>) -> SnapshotOptions {
    let mut options = SnapshotOptions::default();
    let names = py
        .import("heaplens._snapshot")
        .and_then(|m| m.call_method0("_thread_names"))
        .and_then(|d| d.extract::<std::collections::HashMap<u64, String>>());
    match names {
        Ok(names) => options.thread_names.extend(names),
        Err(e) => log::debug!(target: "heaplens.dashboard", "no thread names: {e}"),
    }
    options
}

impl Source for LiveSource<'_> {
    fn info(&self) -> ProcessInfo {
        let memory = heaplens_core::procmem::current().ok();
        ProcessInfo {
            pid: std::process::id(),
            program: self.dashboard.program.clone(),
            python_version: capture::python_version().unwrap_or_default().to_string(),
            live: true,
            rss: memory.and_then(|m| m.rss),
            peak_rss: memory.map(|m| m.peak_rss),
            can_take_snapshot: capture::unsupported_reason().is_none(),
            multiprocess: self.dashboard.multiprocess.load(Ordering::Relaxed),
        }
    }

    fn with_history(&self, f: &mut dyn FnMut(&History)) -> bool {
        match &self.history {
            // Called without the GIL (`handle` detaches), so holding the sampler's mutex here
            // keeps the lock order.
            Some(h) => {
                h.with_history(|history| f(history));
                true
            }
            None => false,
        }
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        locked(&self.dashboard.snapshots).current.clone()
    }

    fn previous_snapshot(&self) -> Option<Arc<Snapshot>> {
        locked(&self.dashboard.snapshots).previous.clone()
    }

    fn release_previous(&self) {
        locked(&self.dashboard.snapshots).previous = None;
    }

    fn take_snapshot(&self) -> Result<(), ActionError> {
        if let Some(why) = capture::unsupported_reason() {
            return Err(ActionError::NotAvailable(why));
        }
        // One snapshot at a time: two clicks do not walk the heap twice at once. This lock is
        // held while the walk waits for the GIL, which is safe because no thread ever waits for
        // it while holding the GIL (`handle` detaches before routing).
        let _one_at_a_time = locked(&self.dashboard.taking);
        // In a forked child where it can be: the program is held for the fork, and the child's
        // snapshot is read here, without the GIL.
        let taken = Python::attach(|py| {
            let options = thread_names(py);
            crate::take::start(py, options, true)
        })
        .map_err(|e| ActionError::Failed(e.to_string()))?;
        let graph = match taken {
            crate::take::Taken::Walked(graph) => *graph,
            crate::take::Taken::Forked(child) => crate::take::read_graph(child, None)
                .map_err(|e| ActionError::Failed(e.to_string()))?,
        };
        // The analysis runs without the GIL: the program's threads go on meanwhile.
        let snapshot = Arc::new(Snapshot::new(graph));
        let mut pair = locked(&self.dashboard.snapshots);
        pair.previous = pair.current.take();
        pair.current = Some(snapshot);
        Ok(())
    }

    fn endpoints(&self) -> Option<Vec<EndpointGrowth>> {
        self.dashboard.tracer.as_ref().map(RequestTracer::growth)
    }
}

/// The live dashboard of this process, as the WSGI and ASGI middleware serve it: give it the
/// :class:`Sampler` whose history it shows (or None: snapshots only), a ``token`` to answer
/// clients other than loopback ones, and ``allow_downloads=True`` to offer the snapshot as a
/// file, ``trace_every=N`` to trace 1 request in N (the middleware then calls
/// :meth:`trace_start` and :meth:`trace_finish` around each request). :meth:`handle` answers one
/// request below the mount point.
#[pyclass(module = "heaplens._native", name = "Dashboard", frozen)]
pub struct PyDashboard {
    config: Config,
    program: String,
    sampler: Option<Py<PySampler>>,
    /// The sampler's history as last seen, for a request that arrives while the sampler is
    /// busy (its `stop()` holds it mutably while joining the thread).
    last_history: Mutex<Option<HistoryHandle>>,
    snapshots: Mutex<Snapshots>,
    taking: Mutex<()>,
    tracer: Option<RequestTracer>,
    /// The tracer panicked once (a heaplens bug): tracing is off from then on.
    tracer_failed: AtomicBool,
    multiprocess: AtomicBool,
}

impl PyDashboard {
    /// Runs the tracer's part of one of the program's requests. A panic there (a heaplens bug)
    /// must not fail the request, nor unwind into the server's code as the `BaseException` PyO3
    /// makes of it: it turns tracing off, is logged, and the request goes on untraced
    /// (`fallback`), as do the ones after it. The dashboard's own answers are guarded the same
    /// way in [`heaplens_dashboard::handle`].
    fn with_tracer<T>(&self, fallback: T, f: impl FnOnce(&RequestTracer) -> T) -> T {
        let Some(tracer) = &self.tracer else {
            return fallback;
        };
        if self.tracer_failed.load(Ordering::Relaxed) {
            return fallback;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tracer))) {
            Ok(value) => value,
            Err(_) => {
                self.tracer_failed.store(true, Ordering::Relaxed);
                log::error!(
                    target: "heaplens.dashboard",
                    "request tracing stopped after an internal error (a heaplens bug: please \
                     report it with the message above); the application is unaffected"
                );
                fallback
            }
        }
    }

    fn history(&self, py: Python<'_>) -> Option<HistoryHandle> {
        let sampler = self.sampler.as_ref()?;
        let mut last = locked(&self.last_history);
        if let Ok(s) = sampler.bind(py).try_borrow() {
            *last = Some(s.history_handle());
        }
        last.clone()
    }
}

#[pymethods]
impl PyDashboard {
    #[new]
    #[pyo3(signature = (sampler=None, token=None, allow_downloads=false, program=String::new(), trace_every=0))]
    fn new(
        py: Python<'_>,
        sampler: Option<Py<PySampler>>,
        token: Option<String>,
        allow_downloads: bool,
        program: String,
        trace_every: u64,
    ) -> PyResult<PyDashboard> {
        let token = heaplens_dashboard::configured_token(token.as_deref())
            .map_err(pyo3::exceptions::PyValueError::new_err)?;
        Ok(PyDashboard {
            tracer: (trace_every > 0).then(|| RequestTracer::new(py, trace_every)),
            tracer_failed: AtomicBool::new(false),
            multiprocess: AtomicBool::new(false),
            config: Config {
                token,
                allow_downloads,
            },
            program,
            sampler,
            last_history: Mutex::new(None),
            snapshots: Mutex::new(Snapshots::default()),
            taking: Mutex::new(()),
        })
    }

    /// Answers one request: ``path`` is below the mount point and still percent-encoded,
    /// ``query`` the raw query string, ``loopback`` whether the client is on 127.0.0.0/8 or ::1.
    /// Returns ``(status, headers, body)``. The GIL is released while it runs (a snapshot takes
    /// it back for the heap walk only).
    #[pyo3(signature = (method, path, query, headers, loopback, body))]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn handle<'py>(
        &self,
        py: Python<'py>,
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        loopback: bool,
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Bound<'py, PyBytes>) {
        let request = Request {
            method,
            path,
            query,
            headers,
            loopback,
            body: body.to_vec(),
        };
        let history = self.history(py);
        let response = py.detach(|| {
            let source = LiveSource {
                dashboard: self,
                history,
            };
            heaplens_dashboard::handle(&self.config, &source, &request)
        });
        let mut headers = response.headers;
        // Which process answered: in a multi-process server each request may reach another.
        headers.push(("X-HeapLens-Pid".to_string(), std::process::id().to_string()));
        (response.status, headers, PyBytes::new(py, &response.body))
    }

    /// Whether requests are traced (``trace_every`` > 0).
    #[getter]
    fn tracing(&self) -> bool {
        self.tracer.is_some()
    }

    /// A request arrived: its ticket for :meth:`trace_finish` (0: not traced, or tracing off).
    /// A traced request costs a mark when the request before it starts, then a young-generation
    /// collection and a census of the objects tracked since the mark when it starts, and again
    /// when the next request arrives: the objects made meanwhile, not the heap, set the cost.
    fn trace_start(&self, py: Python<'_>) -> u64 {
        self.with_tracer(0, |t| t.start(py))
    }

    /// The request of ``ticket`` is done (its response sent): counts it for its endpoint, named
    /// by ``route`` (the framework's matched route, such as ``/orders/<int:id>``) when given,
    /// else by ``path`` with identifier-looking segments replaced by ``{id}``; requests answered
    /// with ``status`` 404 and no route share one row per method (a scanner's paths).
    #[pyo3(signature = (ticket, method, path, route=None, status=None))]
    fn trace_finish(
        &self,
        ticket: u64,
        method: &str,
        path: &str,
        route: Option<&str>,
        status: Option<u16>,
    ) {
        self.with_tracer((), |t| t.finish(ticket, method, path, route, status));
    }

    /// Ends the traces waiting for their second census (the middleware calls it before the
    /// dashboard answers, so the figures include the last traced requests).
    fn trace_settle(&self, py: Python<'_>) {
        self.with_tracer((), |t| t.settle(py));
    }

    /// Makes each census of a trace count every gc-tracked object (``True``), as the tracer did
    /// before it counted only the objects tracked since a mark (``False``): for the benchmark's
    /// "before" and for checking the figures. Private.
    fn _trace_everything(&self, everything: bool) {
        if let Some(t) = &self.tracer {
            t.count_everything(everything);
        }
    }

    /// Notes that this process is one worker of a multi-process server (WSGI's
    /// ``wsgi.multiprocess``): the page then says which worker answered.
    fn _set_multiprocess(&self, multiprocess: bool) {
        self.multiprocess.store(multiprocess, Ordering::Relaxed);
    }

    /// Whether a token is required (and clients other than loopback ones are answered).
    #[getter]
    fn has_token(&self) -> bool {
        self.config.token.is_some()
    }

    /// Whether a snapshot was taken (through the page or ``POST api/snapshot``).
    #[getter]
    fn has_snapshot(&self) -> bool {
        locked(&self.snapshots).current.is_some()
    }

    /// Forgets the snapshots (after ``os.fork()``, in the child: they describe the parent).
    fn _reinit_after_fork(&self) {
        // The parent may have held the lock at the fork; the mutex is then unusable here, and
        // the snapshots are left (they are only ever read).
        if let Ok(mut pair) = self.snapshots.try_lock() {
            *pair = Snapshots::default();
        }
        if let Some(t) = &self.tracer {
            t.reset();
        }
    }
}
