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
//! Why a census counts only the objects tracked since a mark, and what that costs: what a
//! request leaves behind is among the objects made during it, so counting the whole heap twice
//! per trace (4.4 ms a census at 58k objects, 20 ms at 1M) bought nothing but cost. When the
//! request [`MARK_LEAD`] before a traced one starts, the tracer places a mark (a new empty
//! list, at the end of the youngest GC list) and both censuses of the trace count only the
//! gc-tracked objects after it in the collector's order ([`capture::census_since`]): they cost
//! the objects made since that request, whatever the heap's size. The mark comes early so that
//! the server's objects for the traced request (made before it reaches the application), and
//! those it keeps for a few requests, are after it and cancel out against the next request's as
//! above. The difference of the two censuses
//! is the whole heap's, less the objects older than the mark that died during the trace: a
//! request that puts one entry in a bounded cache and evicts an old one shows the entry it
//! added. A collection of the oldest generation can put any old object after the mark: one
//! between the mark and the first census makes that trace count everything (as the tracer did
//! before marks), one between the two censuses drops it (its request only counted). Where the
//! collector keeps no such order (the incremental collector of 3.14.0 to 3.14.4), both
//! censuses count every tracked object, as before.
//!
//! Why it is approximate under concurrency: the census counts every thread's objects, so a trace
//! during which other requests ran also counts what they did. The tracer counts requests started
//! and in flight and marks such traces as overlapped; the page shows how many were.
//!
//! Not here: naming endpoints and adding up figures ([`heaplens_dashboard::endpoints`], pure),
//! reading the framework's matched route (the Python middleware).

use heaplens_capture::{self as capture, Mark};
use heaplens_core::census::Census;
use heaplens_dashboard::endpoints::{endpoint_name, not_found_name, EndpointTable};
use heaplens_dashboard::EndpointGrowth;
use pyo3::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most traces open at once; past it requests are only counted (a server that never closes its
/// responses cannot grow the tracer without bound).
const MAX_OPEN_TRACES: usize = 64;
/// Types listed per endpoint.
pub const TYPES_PER_ENDPOINT: usize = 10;
/// How many requests before a traced one its mark is placed. What the server keeps for a few
/// requests is then made after the mark and cancels out: a waitress worker thread's wait lock
/// lives until that thread's next request, four requests later with its four threads, and with
/// the mark one request early every endpoint showed 0.75 `_thread.lock` per request. What was
/// made before the mark and dies during the trace is not seen (see the module docs).
pub const MARK_LEAD: u64 = 8;

/// What a trace's censuses count: the objects tracked since its mark (the census of young
/// objects), or, where marks cannot be used, every tracked object.
#[derive(Clone)]
enum Scope {
    Since(Arc<Mark>),
    Everything,
}

/// A mark placed for a traced request to come, with when it was placed (requests started
/// then) and the count of full collections then.
struct PlacedMark {
    mark: Arc<Mark>,
    at_request: u64,
    full_collections: u64,
}

/// A request being traced: the census when it started, and what was running then.
struct OpenTrace {
    before: Census,
    scope: Scope,
    /// Collections of the oldest generation when `before` was taken: one in between spoils
    /// the order a census since a mark relies on, and such a trace is dropped.
    full_collections: u64,
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
    /// Marks for the traced requests to come, oldest first: one placed [`MARK_LEAD`] requests
    /// before each (and one when tracing starts).
    marks: VecDeque<PlacedMark>,
    table: EndpointTable,
}

/// The censuses taken at one moment: one per mark (oldest first), or one of everything.
struct Measured {
    full_collections: u64,
    since: Vec<(Arc<Mark>, Census)>,
    everything: Option<Census>,
}

impl Measured {
    fn of(&self, scope: &Scope) -> Option<&Census> {
        match scope {
            Scope::Everything => self.everything.as_ref(),
            Scope::Since(mark) => self
                .since
                .iter()
                .find(|(m, _)| Arc::ptr_eq(m, mark))
                .map(|(_, c)| c),
        }
    }
}

impl Traces {
    /// Keeps `mark` for the traced requests to come.
    fn keep_mark(&mut self, mark: Option<PlacedMark>) {
        let Some(mark) = mark else {
            return;
        };
        // Never more than the traces to come need (a request count that wrapped).
        if self.marks.len() > MARK_LEAD as usize {
            self.marks.pop_front();
        }
        self.marks.push_back(mark);
    }

    /// Ends every done trace with `measured`, taken when `started` requests had started and
    /// `in_flight` were running (counting one that is just starting, `starting`). A trace
    /// whose second census is missing (a full collection in between, a frozen mark) is counted
    /// as a request that was not traced.
    fn settle(&mut self, measured: &Measured, started: u64, in_flight: u64, starting: bool) {
        for done in std::mem::take(&mut self.done) {
            let t = &done.trace;
            let after = match (&t.scope, measured.of(&t.scope)) {
                (Scope::Everything, Some(after)) => after,
                (Scope::Since(_), Some(after))
                    if t.full_collections == measured.full_collections =>
                {
                    after
                }
                _ => {
                    self.table.record_request(&done.endpoint, done.routed);
                    continue;
                }
            };
            let overlapped = t.in_flight_at_start > 1
                || started != t.started_total + u64::from(starting)
                || in_flight > u64::from(starting);
            self.table
                .record_trace(&done.endpoint, done.routed, &t.before, after, overlapped);
        }
    }
}

/// One dashboard's trace mode; see the module docs.
pub struct RequestTracer {
    every: u64,
    /// Count every tracked object in each census, not only those since a mark (what the tracer
    /// did before marks: the benchmark's "before", and a check of the figures).
    everything: AtomicBool,
    /// Requests started, and requests started but not finished.
    started: AtomicU64,
    in_flight: AtomicU64,
    traces: Mutex<Traces>,
}

fn locked(m: &Mutex<Traces>) -> std::sync::MutexGuard<'_, Traces> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many collections of the oldest generation have run so far (`gc.get_stats()`), after
/// collecting the young generations when `collect` (see the module docs); `None` when the
/// collector cannot say.
fn collections(py: Python<'_>, collect: bool) -> Option<u64> {
    let result = py.import("gc").and_then(|gc| {
        if collect {
            gc.call_method1("collect", (1,))?;
        }
        let stats = gc.call_method0("get_stats")?;
        stats
            .get_item(-1)?
            .get_item("collections")?
            .extract::<u64>()
    });
    match result {
        Ok(n) => Some(n),
        Err(e) => {
            log::debug!(target: "heaplens.dashboard", "trace: no collection: {e}");
            None
        }
    }
}

/// Censuses for traces, taken right after collecting the young generations (which left
/// `full_collections` collections of the oldest one so far): since each of `marks` (oldest
/// first), and of everything when `everything` (the collector keeps no order to mark).
fn measure(
    py: Python<'_>,
    full_collections: u64,
    marks: &[Arc<Mark>],
    everything: bool,
) -> Measured {
    let mut measured = Measured {
        full_collections,
        since: Vec::new(),
        everything: None,
    };
    if !marks.is_empty() {
        let refs: Vec<&Mark> = marks.iter().map(|m| &**m).collect();
        match capture::census_since(py, &refs) {
            Ok(Some(censuses)) => {
                measured.since = marks.iter().cloned().zip(censuses).collect();
            }
            Ok(None) => log::debug!(target: "heaplens.dashboard", "trace: a mark lost its place"),
            Err(e) => log::debug!(target: "heaplens.dashboard", "trace: no census: {e}"),
        }
    }
    if everything {
        match capture::census(py, true) {
            Ok(c) => measured.everything = Some(c),
            Err(e) => log::debug!(target: "heaplens.dashboard", "trace: no census: {e}"),
        }
    }
    measured
}

/// What to count for the given scopes, each with the count of full collections it was taken
/// or placed at: the marks, oldest first (marks are placed in order, and a later one is never
/// older), and whether everything. A mark placed before a full collection that has since run
/// is left out (the collection may have put any old object after it: its walk would cost the
/// heap, and its trace is dropped anyway).
fn scopes_needed<'a>(
    scopes: impl Iterator<Item = (&'a Scope, u64)>,
    full_collections: u64,
) -> (Vec<Arc<Mark>>, bool) {
    let mut marks: Vec<Arc<Mark>> = Vec::new();
    let mut everything = false;
    for (scope, at) in scopes {
        match scope {
            Scope::Everything => everything = true,
            Scope::Since(m) if at == full_collections => {
                if !marks.iter().any(|k| Arc::ptr_eq(k, m)) {
                    marks.push(Arc::clone(m));
                }
            }
            Scope::Since(_) => {}
        }
    }
    marks.sort_by_key(|m| m.order());
    (marks, everything)
}

impl RequestTracer {
    /// Traces 1 request in `every` (`every` ≥ 1). A mark is placed now, for the traced requests
    /// that come before [`MARK_LEAD`] requests have started.
    pub fn new(py: Python<'_>, every: u64) -> RequestTracer {
        let every = every.max(1);
        let tracer = RequestTracer {
            every,
            everything: AtomicBool::new(false),
            started: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            traces: Mutex::new(Traces::default()),
        };
        let mark = tracer.new_mark(py, 0, None);
        locked(&tracer.traces).keep_mark(mark);
        tracer
    }

    /// A new mark for a traced request to come, placed when request `at_request` starts (none
    /// where marks cannot be used: that request's censuses count everything). It needs no
    /// collection: what was tracked before it and moves after it before the first census is
    /// counted by both censuses. Made without the tracer's lock: making an object may start a
    /// collection (at once on 3.11), whose finalizers run Python code and may let another
    /// thread in, which would wait for the lock while holding the GIL.
    fn new_mark(
        &self,
        py: Python<'_>,
        at_request: u64,
        full_collections: Option<u64>,
    ) -> Option<PlacedMark> {
        if self.everything.load(Ordering::Relaxed) {
            return None;
        }
        let full_collections = full_collections.or_else(|| collections(py, false))?;
        match capture::place_mark(py) {
            Ok(mark) => mark.map(|mark| PlacedMark {
                mark: Arc::new(mark),
                at_request,
                full_collections,
            }),
            Err(e) => {
                log::debug!(target: "heaplens.dashboard", "trace: no mark: {e}");
                None
            }
        }
    }

    /// Whether each census counts every tracked object (`true`) or only those since a mark
    /// (`false`, the default where the collector allows it). From the next trace on.
    pub fn count_everything(&self, everything: bool) {
        self.everything.store(everything, Ordering::Relaxed);
    }

    /// A request arrived: returns its ticket for [`RequestTracer::finish`], 0 when it is not
    /// traced. Takes a census (the GIL is held: `py`) when it is traced, or when a traced request
    /// is waiting for its second census; places a mark when the request [`MARK_LEAD`] after it
    /// will be traced.
    pub fn start(&self, py: Python<'_>) -> u64 {
        let started = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let in_flight = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        let (traced, waiting) = {
            let t = locked(&self.traces);
            let room = t.open.len() + t.done.len() < MAX_OPEN_TRACES;
            (started % self.every == 0 && room, !t.done.is_empty())
        };
        let mark_ahead = (started + MARK_LEAD) % self.every == 0;
        if !traced && !waiting {
            if mark_ahead {
                // Only the mark for a request to come: no collection, no census.
                let mark = self.new_mark(py, started, None);
                locked(&self.traces).keep_mark(mark);
            }
            return 0;
        }
        // This request's scope: since the mark placed MARK_LEAD requests before it (or the
        // oldest one younger than that, when tracing started since), or everything where the
        // collector keeps no order. Where marks can be used but none was placed (after a fork),
        // it is not traced.
        let scope = {
            let mut t = locked(&self.traces);
            // The newest mark placed MARK_LEAD or more requests ago, else the oldest one; older
            // ones serve no trace to come.
            let floor = started.saturating_sub(MARK_LEAD);
            while t.marks.len() > 1 && t.marks[1].at_request <= floor {
                t.marks.pop_front();
            }
            let mark = t
                .marks
                .front()
                .map(|p| (Arc::clone(&p.mark), p.full_collections));
            let everything = self.everything.load(Ordering::Relaxed) || !capture::marks_supported();
            match (traced, mark) {
                (false, _) => None,
                (true, _) if everything => Some((Scope::Everything, 0)),
                (true, Some((mark, at))) => Some((Scope::Since(mark), at)),
                (true, None) => None,
            }
        };
        let Some(full_collections) = collections(py, true) else {
            return 0;
        };
        // A mark placed before a full collection that has run since may have any old object
        // after it: this trace counts everything instead (as the tracer did before marks).
        let scope = scope.map(|(scope, at)| match scope {
            Scope::Since(_) if at == full_collections => (scope, at),
            _ => (Scope::Everything, full_collections),
        });
        let (marks, everything) = {
            let t = locked(&self.traces);
            let done = t
                .done
                .iter()
                .map(|d| (&d.trace.scope, d.trace.full_collections));
            let this = scope.as_ref().map(|(s, at)| (s, *at));
            scopes_needed(done.chain(this), full_collections)
        };
        // The census runs without the tracer's lock: it may take a while, and only ever one
        // thread at a time runs it (it holds the GIL).
        let measured = measure(py, full_collections, &marks, everything);
        let mark = mark_ahead
            .then(|| self.new_mark(py, started, Some(full_collections)))
            .flatten();
        let mut t = locked(&self.traces);
        t.settle(&measured, started, in_flight, true);
        t.keep_mark(mark);
        let Some((scope, _)) = scope else {
            return 0;
        };
        let Some(before) = measured.of(&scope).cloned() else {
            return 0;
        };
        t.next_ticket += 1;
        let ticket = t.next_ticket;
        t.open.insert(
            ticket,
            OpenTrace {
                before,
                scope,
                full_collections,
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
        let Some(full_collections) = collections(py, true) else {
            return;
        };
        let (marks, everything) = {
            let t = locked(&self.traces);
            let done = t
                .done
                .iter()
                .map(|d| (&d.trace.scope, d.trace.full_collections));
            scopes_needed(done, full_collections)
        };
        let measured = measure(py, full_collections, &marks, everything);
        let started = self.started.load(Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        locked(&self.traces).settle(&measured, started, in_flight, false);
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
