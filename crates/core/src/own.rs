//! heaplens' own footprint in the heaps it observes: the frames of its code (a leak check's
//! bookkeeping, the middleware serving the dashboard, the script `heaplens attach` runs in a
//! target) and the objects of its types (snapshots, censuses). They come and go with every
//! check, so every comparison leaves them out: a tool that reports itself as the leak is noise.
//!
//! Its memory is counted too ([`memory`]): the graphs and analyses it keeps (the dashboard's
//! snapshots) are part of the process's resident set, not the program's growth nor native
//! memory.
//!
//! Recognised by name, so snapshot files loaded anywhere are judged the same way: a frame runs
//! heaplens' code when its file is in a directory named `heaplens` (the installed package) or in
//! a directory attach shares with its target (`heaplens-attach-...`); a type is heaplens' own
//! when its module is `heaplens` or `heaplens._native`.

use crate::analysis::paths::RetainingPaths;
use crate::graph::frames::frame_file;
use crate::graph::{Graph, NodeFlags, NodeId};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes heaplens' graphs and analyses hold in this process (snapshots the dashboard keeps,
/// a leak check's pair): its own share of the resident set, which a report must not blame on
/// the program or on native memory.
static OWN_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The bytes heaplens' live graphs and analyses hold in this process.
pub fn memory() -> u64 {
    OWN_BYTES.load(Ordering::Relaxed) as u64
}

pub(crate) fn account(bytes: usize) {
    OWN_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

pub(crate) fn release(bytes: usize) {
    // Saturating: an accounting slip must not wrap into an absurd figure.
    let _ = OWN_BYTES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
        Some(b.saturating_sub(bytes))
    });
}

/// The prefix of the directories `heaplens attach` shares with a target; the script it runs
/// there lives in one.
pub const ATTACH_DIRECTORY_PREFIX: &str = "heaplens-attach-";

/// Whether a frame named `qualname (file:line)` runs heaplens' own code.
pub fn is_own_frame(name: &str) -> bool {
    let Some(file) = frame_file(name) else {
        return false;
    };
    let parent = file.rsplit(['/', '\\']).nth(1).unwrap_or("");
    parent == "heaplens" || runs_attach_script(file)
}

/// Whether `file` is in one of the directories attach shares with a target.
fn runs_attach_script(file: &str) -> bool {
    file.split(['/', '\\'])
        .any(|d| d.starts_with(ATTACH_DIRECTORY_PREFIX))
}

/// heaplens' classes written in Python, by display name. Named one by one rather than by
/// module: code run in a module's namespace (its doctests) defines classes there too.
const OWN_PYTHON_CLASSES: [&str; 10] = [
    "heaplens._growth.Tracker",
    "heaplens._leaks.Leak",
    "heaplens._leaks.LeakCheck",
    "heaplens._middleware.Mount",
    "heaplens._middleware.Mounted",
    "heaplens._run._Run",
    "heaplens.asgi.HeapLens",
    "heaplens.wsgi.DjangoRoutes",
    "heaplens.wsgi.HeapLens",
    "heaplens.wsgi._TracedBody",
];

/// Whether a type (by its display name, `heaplens._native.Snapshot`) is heaplens' own: one of
/// the native types, of the package's top level, or one of [`OWN_PYTHON_CLASSES`].
pub fn is_own_type(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(module, _)| module == "heaplens" || module == "heaplens._native")
        || OWN_PYTHON_CLASSES.contains(&name)
}

/// Whether `v` is a frame running heaplens' code. New objects that hang from such a frame (its
/// locals: a check's bookkeeping, the dashboard's request) are heaplens' own. An old container
/// merely reached through one (the shortest path may pass through a check's reference to the
/// function it checks) is not: the program holds it too.
pub fn is_own_code_frame(graph: &Graph, v: NodeId) -> bool {
    graph.flags(v).contains(NodeFlags::FRAME) && graph.name(v).is_some_and(is_own_frame)
}

/// Whether `v` is kept alive through a frame of the script `heaplens attach` runs in a target:
/// everything that script reaches is there only while it runs (on `v`'s shortest path, `v`
/// included, some frame runs code from an attach directory).
pub fn is_held_by_attach_script(graph: &Graph, paths: &RetainingPaths, v: NodeId) -> bool {
    let mut at = Some(v);
    for _ in 0..graph.node_count() {
        let Some(node) = at else {
            return false;
        };
        if graph.flags(node).contains(NodeFlags::FRAME)
            && graph
                .name(node)
                .and_then(frame_file)
                .is_some_and(runs_attach_script)
        {
            return true;
        }
        at = paths.parent(graph, node);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_the_package_and_of_the_attach_script_are_own() {
        assert!(is_own_frame(
            "LeakCheck._report (/venv/lib/python3.12/site-packages/heaplens/_leaks.py:163)"
        ));
        assert!(is_own_frame(
            "HeapLens.__call__ (/src/heaplens/python/heaplens/wsgi.py:163)"
        ));
        assert!(is_own_frame(
            "_main (/tmp/heaplens-attach-x1y2/attach.py:132)"
        ));
        assert!(is_own_frame("f (C:\\venv\\heaplens\\_run.py:3)"));
        assert!(!is_own_frame("handle (/srv/app/views.py:12)"));
        assert!(!is_own_frame("handle (/srv/heaplens/app/views.py:12)"));
        assert!(!is_own_frame("handle (/srv/heaplens_demo/app.py:12)"));
        assert!(!is_own_frame("<frame>"));
    }

    #[test]
    fn types_of_the_package_are_own() {
        assert!(is_own_type("heaplens._native.Snapshot"));
        assert!(is_own_type("heaplens.LeakCheck"));
        assert!(!is_own_type("heaplens._leaks.Session"));
        assert!(is_own_type("heaplens._growth.Tracker"));
        assert!(!is_own_type("heaplens._growth.Leaky"), "a doctest's class");
        assert!(!is_own_type("heaplens_app.Order"));
        assert!(!is_own_type("heaplens"));
        assert!(!is_own_type("app.heaplens.Order"));
        assert!(!is_own_type("dict"));
    }
}
