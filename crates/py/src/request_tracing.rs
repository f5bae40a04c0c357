//! The dashboard's trace mode: a census before and after 1 request in N, per endpoint.
//!
//! The middleware calls [`RequestTracer::start`] when a request for the application arrives and
//! [`RequestTracer::finish`] when its response is done (the WSGI body closed, the ASGI app
//! returned). One request in `every` is traced: a census when it starts, and another when the
//! *next* request arrives (or the dashboard is asked, [`RequestTracer::settle`]); the difference
//! is what the request left behind, added to its endpoint in the [`EndpointTable`]. The other
//! requests are only counted.
//!
//! Why the second census waits for the next request: when the response is done, the server
//! still holds the request's objects (its task, the response and its headers), and a census then
//! would show every request leaving them behind. When the next request arrives the server has
//! let go of them and holds the new request's objects instead, of the same kinds as when the
//! traced request arrived, so they cancel out. That census also counts whatever the program did
//! in between (a background thread's work, an import): the table's per-request figures are
//! trimmed means, so such a trace now and then does not count. One census serves as the next
//! trace's first when requests are traced back to back.
//!
//! Why each census follows a collection of the young generations: a request that makes
//! reference cycles (an exception and its traceback, a framework's request context) leaves them
//! for the collector, and without collecting them first every such request would look like a
//! leak. Collecting generations 0 and 1 costs little (their objects are young and few); cycles
//! that survive into the oldest generation are counted until the next full collection. This is
//! the one place heaplens calls the collector on its own, and only in the trace mode the user
//! asked for.
//!
//! Why it is approximate under concurrency: the census counts every thread's objects, so a trace
//! during which other requests ran also counts what they did. The tracer counts requests started
//! and in flight and marks such traces as overlapped; the page shows how many were.
//!
//! Not here: naming endpoints and adding up figures ([`heaplens_dashboard::endpoints`], pure),
//! reading the framework's matched route (the Python middleware).

use heaplens_capture as capture;
use heaplens_core::census::Census;
use heaplens_dashboard::endpoints::{endpoint_name, not_found_name, EndpointTable};
use heaplens_dashboard::EndpointGrowth;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most traces open at once; past it requests are only counted (a server that never closes its
/// responses cannot grow the tracer without bound).
const MAX_OPEN_TRACES: usize = 64;
/// Types listed per endpoint.
pub const TYPES_PER_ENDPOINT: usize = 10;

/// A request being traced: the census when it started, and what was running then.
struct OpenTrace {
    before: Census,
    /// Requests started before it and with it.
    started_total: u64,
    in_flight_at_start: u64,
}

/// A traced request whose response is done, waiting for the census that ends its trace.
struct DoneTrace {
    endpoint: String,
    routed: bool,
    trace: OpenTrace,
}

#[derive(Default)]
struct Traces {
    next_ticket: u64,
    open: HashMap<u64, OpenTrace>,
    done: Vec<DoneTrace>,
    table: EndpointTable,
}

impl Traces {
    /// Ends every done trace with `census`, taken when `started` requests had started and
    /// `in_flight` were running (counting one that is just starting, `starting`).
    fn settle(&mut self, census: &Census, started: u64, in_flight: u64, starting: bool) {
        for done in std::mem::take(&mut self.done) {
            let t = &done.trace;
            let overlapped = t.in_flight_at_start > 1
                || started != t.started_total + u64::from(starting)
                || in_flight > u64::from(starting);
            self.table
                .record_trace(&done.endpoint, done.routed, &t.before, census, overlapped);
        }
    }
}

/// One dashboard's trace mode; see the module docs.
pub struct RequestTracer {
    every: u64,
    /// Requests started, and requests started but not finished.
    started: AtomicU64,
    in_flight: AtomicU64,
    traces: Mutex<Traces>,
}

fn locked(m: &Mutex<Traces>) -> std::sync::MutexGuard<'_, Traces> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A census for a trace, after collecting the young generations (see the module docs).
fn measure(py: Python<'_>) -> Option<Census> {
    if let Err(e) = py
        .import("gc")
        .and_then(|gc| gc.call_method1("collect", (1,)))
    {
        log::debug!(target: "heaplens.dashboard", "trace: no collection: {e}");
    }
    match capture::census(py, true) {
        Ok(c) => Some(c),
        Err(e) => {
            log::debug!(target: "heaplens.dashboard", "trace: no census: {e}");
            None
        }
    }
}

impl RequestTracer {
    /// Traces 1 request in `every` (`every` ≥ 1).
    pub fn new(every: u64) -> RequestTracer {
        RequestTracer {
            every: every.max(1),
            started: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            traces: Mutex::new(Traces::default()),
        }
    }

    /// A request arrived: returns its ticket for [`RequestTracer::finish`], 0 when it is not
    /// traced. Takes a census (the GIL is held: `py`) when it is traced, or when a traced request
    /// is waiting for its second census.
    pub fn start(&self, py: Python<'_>) -> u64 {
        let started = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let (traced, waiting) = {
            let t = locked(&self.traces);
            let room = t.open.len() + t.done.len() < MAX_OPEN_TRACES;
            (started % self.every == 0 && room, !t.done.is_empty())
        };
        if !traced && !waiting {
            return 0;
        }
        // The census runs without the tracer's lock: it may take a while, and only ever one
        // thread at a time runs it (it holds the GIL).
        let Some(census) = measure(py) else {
            return 0;
        };
        let mut t = locked(&self.traces);
        t.settle(&census, started, in_flight, true);
        if !traced {
            return 0;
        }
        t.next_ticket += 1;
        let ticket = t.next_ticket;
        t.open.insert(
            ticket,
            OpenTrace {
                before: census,
                started_total: started,
                in_flight_at_start: in_flight,
            },
        );
        ticket
    }

    /// The request of `ticket` is done: counts it for its endpoint (`method`, `path` and the
    /// framework's matched `route` if known); a traced one waits for its second census.
    pub fn finish(
        &self,
        ticket: u64,
        method: &str,
        path: &str,
        route: Option<&str>,
        status: Option<u16>,
    ) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let routed = route.is_some_and(|r| !r.is_empty());
        // Answered 404 without a route: a scanner's made-up path, not an endpoint.
        let endpoint = match (routed, status) {
            (false, Some(404)) => not_found_name(method),
            _ => endpoint_name(method, path, route),
        };
        let mut t = locked(&self.traces);
        let trace = match ticket {
            0 => None,
            ticket => t.open.remove(&ticket),
        };
        match trace {
            Some(trace) => t.done.push(DoneTrace {
                endpoint,
                routed,
                trace,
            }),
            None => t.table.record_request(&endpoint, routed),
        }
    }

    /// Ends the traces waiting for their second census now (the dashboard is about to show the
    /// figures). Nothing to do, and no census, when none is waiting.
    pub fn settle(&self, py: Python<'_>) {
        if locked(&self.traces).done.is_empty() {
            return;
        }
        if let Some(census) = measure(py) {
            let started = self.started.load(Ordering::Relaxed);
            let in_flight = self.in_flight.load(Ordering::Relaxed);
            locked(&self.traces).settle(&census, started, in_flight, false);
        }
    }

    /// The figures so far, per endpoint.
    pub fn growth(&self) -> Vec<EndpointGrowth> {
        locked(&self.traces).table.growth(TYPES_PER_ENDPOINT)
    }

    /// Forgets everything (after a fork, in the child: the figures describe the parent).
    pub fn reset(&self) {
        self.started.store(0, Ordering::Relaxed);
        self.in_flight.store(0, Ordering::Relaxed);
        if let Ok(mut traces) = self.traces.try_lock() {
            *traces = Traces::default();
        }
    }
}
