//! What the dashboard reads: the [`Source`] trait, and [`FileSource`], a snapshot file.
//!
//! A source gives the process's description, its sample [`History`] (type counts over time) if
//! it has one, and the current analysed [`Snapshot`] (the object graph with dominators and
//! retaining paths) if one was taken. Actions (taking a snapshot) have default implementations
//! that answer "not available", so a source is read-only unless it says otherwise.
//!
//! The live source (in the bindings crate) keeps its history behind a mutex, shared with the
//! sampler thread: [`Source::with_history`] lends it to a closure for as long as a request needs
//! it, so nothing is cloned and the lock is never held beyond one call. Snapshots are handed out
//! as `Arc`s, so a request keeps reading the snapshot it started with while a new one replaces it.

use heaplens_core::analysis::Analysed;
use heaplens_core::graph::{Graph, NodeId};
use heaplens_core::history::History;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

/// Who the dashboard is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The program (`app.py`, the WSGI app's name) or, offline, the snapshot file's name.
    pub program: String,
    /// `sys.version` of the process.
    pub python_version: String,
    /// A running process (`true`) or a file read offline (`false`).
    pub live: bool,
    /// Resident set size and its peak, in bytes, when known.
    pub rss: Option<u64>,
    pub peak_rss: Option<u64>,
    /// Whether [`Source::take_snapshot`] can work (the page shows the button only then).
    pub can_take_snapshot: bool,
    /// The process is one worker of a multi-process server (gunicorn's workers, say): each
    /// worker has a heap of its own and answers the requests it happens to get, so the page
    /// says which worker answered.
    pub multiprocess: bool,
}

/// A snapshot as the dashboard keeps it: the core's [`Analysed`] snapshot (which it derefs to),
/// analysed when taken or loaded (the overview and `/metrics` are asked often; neither walks
/// the graph again), and the last comparison made with it.
#[derive(Debug)]
pub struct Snapshot {
    analysed: Analysed,
    /// The comparison with an earlier snapshot, once made (a diff of big heaps takes a while,
    /// and the page asks for it again after taking a snapshot): that snapshot, and the answer.
    pub(crate) compared: Mutex<Option<(Weak<Snapshot>, Arc<serde_json::Value>)>>,
}

impl Snapshot {
    /// Analyses `graph`: dominators and retained sizes, retaining paths, the census. Not the
    /// referrers of every object (4 bytes per reference, for one object page at a time): an
    /// object page finds its object's referrers by one pass over the references.
    pub fn new(graph: Graph) -> Snapshot {
        let analysed = Analysed::new(graph);
        analysed.dominators();
        analysed.paths();
        analysed.census();
        Snapshot {
            analysed,
            compared: Mutex::new(None),
        }
    }

    /// The comparison with the snapshot before this one, once made (kept after that snapshot
    /// is let go: [`Source::release_previous`]).
    pub fn comparison(&self) -> Option<Arc<serde_json::Value>> {
        let slot = self.compared.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|(_, v)| Arc::clone(v))
    }
}

impl std::ops::Deref for Snapshot {
    type Target = Analysed;

    fn deref(&self) -> &Analysed {
        &self.analysed
    }
}

/// What requests to one endpoint left behind, measured by the host's trace mode (a census
/// before and after 1 request in N; see [`crate::endpoints`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointGrowth {
    /// The endpoint as the host names it (`GET /orders/{id}`).
    pub endpoint: String,
    /// Requests seen, and how many of them were traced.
    pub requests: u64,
    pub traced: u64,
    /// Traced requests that ran while other requests did (their censuses also counted what the
    /// others did meanwhile).
    pub overlapped: u64,
    /// How many traces the per-request figures are estimated from: the most recent clean ones
    /// (up to [`crate::endpoints::WINDOW`]), or, while there is no clean one, the overlapped
    /// ones (then the figures are approximate).
    pub measured: u64,
    /// Objects and bytes left behind, in total over all the traces of that kind (negative:
    /// freed).
    pub objects: i64,
    pub bytes: i64,
    /// Objects and bytes left behind per request: trimmed means over the measured traces.
    pub objects_per_request: f64,
    pub bytes_per_request: f64,
    /// The types left behind, most per request first: (name, count per request).
    pub types: Vec<(String, f64)>,
}

/// Why an action could not be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// This source cannot do it (a snapshot file cannot take a new snapshot). Answered with 501.
    NotAvailable(String),
    /// It was tried and failed. Answered with 500 and the message.
    Failed(String),
}

/// Where the dashboard's data comes from: a live process or a file. See the module docs.
pub trait Source {
    /// The process's description.
    fn info(&self) -> ProcessInfo;

    /// Calls `f` with the sample history and returns `true`, or returns `false` when there is
    /// none (then `f` is not called).
    fn with_history(&self, f: &mut dyn FnMut(&History)) -> bool {
        let _ = f;
        false
    }

    /// The current snapshot, if one was taken or loaded.
    fn snapshot(&self) -> Option<Arc<Snapshot>>;

    /// The snapshot before the current one, for comparing the two.
    fn previous_snapshot(&self) -> Option<Arc<Snapshot>> {
        None
    }

    /// Lets the previous snapshot go once the current one keeps its comparison with it
    /// ([`Snapshot::comparison`]): nothing else needs it, and a kept snapshot with its analyses
    /// takes as much memory as the current one. A live process does; a file viewer, which
    /// compares only when asked, keeps both.
    fn release_previous(&self) {}

    /// Takes a new snapshot; the current one becomes the previous one.
    fn take_snapshot(&self) -> Result<(), ActionError> {
        Err(ActionError::NotAvailable(
            "this dashboard is read-only: it shows a snapshot file, and cannot take snapshots"
                .to_string(),
        ))
    }

    /// Growth per endpoint, when the host traces requests; `None` when tracing is off.
    fn endpoints(&self) -> Option<Vec<EndpointGrowth>> {
        None
    }

    /// A short repr of an object of `snapshot`, when the source can ask the live object. The
    /// dashboard shortens and escapes it; `None` when unknown (always, offline).
    fn repr(&self, snapshot: &Snapshot, node: NodeId) -> Option<String> {
        let _ = (snapshot, node);
        None
    }
}

/// A snapshot file (`heaplens serve after.hlsnap`): read-only, analysed once when loaded,
/// optionally with a sample history to show beside it.
#[derive(Debug)]
pub struct FileSource {
    info: ProcessInfo,
    snapshot: Arc<Snapshot>,
    /// An earlier snapshot of the process, which the page compares the snapshot with.
    previous: Option<Arc<Snapshot>>,
    history: Option<History>,
}

impl FileSource {
    /// Loads and analyses a `.hlsnap` file.
    pub fn open(path: &Path) -> Result<FileSource, heaplens_core::Error> {
        let graph = heaplens_core::snapfile::load(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(FileSource::from_graph(graph, &name))
    }

    /// Analyses a graph already in memory; `name` is shown as the program.
    pub fn from_graph(graph: Graph, name: &str) -> FileSource {
        let meta = graph.meta();
        let info = ProcessInfo {
            pid: meta.pid,
            program: name.to_string(),
            python_version: meta.python_version.clone(),
            live: false,
            rss: None,
            peak_rss: None,
            can_take_snapshot: false,
            multiprocess: false,
        };
        FileSource {
            info,
            snapshot: Arc::new(Snapshot::new(graph)),
            previous: None,
            history: None,
        }
    }

    /// Compares the snapshot with `earlier`, an earlier snapshot of the same process (the
    /// caller checks that: [`heaplens_core::analysis::diff::check_pair`]).
    pub fn compared_with(mut self, earlier: Graph) -> FileSource {
        self.previous = Some(Arc::new(Snapshot::new(earlier)));
        self
    }

    /// Shows `history` (read from a history file, say) beside the snapshot.
    /// (Named apart from [`Source::with_history`], which lends the history out.)
    pub fn with_samples(mut self, history: History) -> FileSource {
        self.history = Some(history);
        self
    }
}

impl Source for FileSource {
    fn info(&self) -> ProcessInfo {
        self.info.clone()
    }

    fn with_history(&self, f: &mut dyn FnMut(&History)) -> bool {
        match &self.history {
            Some(h) => {
                f(h);
                true
            }
            None => false,
        }
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        Some(Arc::clone(&self.snapshot))
    }

    fn previous_snapshot(&self) -> Option<Arc<Snapshot>> {
        self.previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplens_core::graph::{GraphBuilder, NodeFlags};

    fn graph() -> Graph {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("builtins", "dict", "dict");
        let n = b.add_node(0x10);
        b.set_node(n, t, 64, NodeFlags::GC_TRACKED);
        b.end_node();
        b.meta_mut().pid = 42;
        b.finish().unwrap()
    }

    #[test]
    fn a_file_source_is_read_only_and_has_no_history_unless_given_one() {
        let source = FileSource::from_graph(graph(), "after.hlsnap");
        let info = source.info();
        assert_eq!((info.pid, info.live), (42, false));
        assert!(!info.can_take_snapshot);
        assert!(matches!(
            source.take_snapshot(),
            Err(ActionError::NotAvailable(_))
        ));
        assert!(!source.with_history(&mut |_| panic!("no history")));
        assert!(source.previous_snapshot().is_none());
        let source = source.with_samples(History::new(10));
        let mut seen = false;
        assert!(source.with_history(&mut |h| seen = h.is_empty()));
        assert!(seen);
    }

    #[test]
    fn a_file_source_loads_a_snapshot_file_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("heaplens-dash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("after.hlsnap");
        heaplens_core::snapfile::save(&graph(), &path).unwrap();
        let source = FileSource::open(&path).unwrap();
        assert_eq!(source.info().program, "after.hlsnap");
        assert_eq!(source.snapshot().unwrap().graph().node_count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(FileSource::open(&path).is_err());
    }
}
