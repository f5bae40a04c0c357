//! The native half of `heaplens.show_refs`, `show_backrefs` and `show_chain`: the walk over a
//! snapshot that picks what a picture shows, and the drawing itself (heaplens-core's
//! `render::picture`). The Python layer in between asks the live objects for their reprs and
//! applies the caller's predicates; nothing here touches an object.

use crate::errors::capture_error;
use crate::py_snapshot::{AnalysedInPython, SnapshotData};
use hashbrown::HashSet;
use heaplens_capture as capture;
use heaplens_core::graph::{NodeFlags, NodeId};
use heaplens_core::render::picture::{self, Edge, Format, Node, NodeKind, Picture};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::collections::HashMap;
use std::sync::Arc;

/// `(nodes, edges, elided)`, as `Snapshot._neighbourhood` documents them.
pub type NeighbourhoodResult = (
    Vec<(u64, String, String, u64, bool, usize)>,
    Vec<(usize, usize, String)>,
    Vec<(usize, usize)>,
);

/// The arguments of a walk (see `Snapshot._neighbourhood`).
pub struct Walk<'py> {
    pub starts: Vec<u64>,
    pub backwards: bool,
    pub max_depth: usize,
    pub too_many: usize,
    pub ignore: Vec<u64>,
    pub keep: Option<Bound<'py, PyAny>>,
    pub only: Option<Vec<u64>>,
    pub skip_frames_in: Vec<String>,
}

pub fn neighbourhood(
    py: Python<'_>,
    data: &Arc<SnapshotData>,
    walk: Walk<'_>,
) -> PyResult<NeighbourhoodResult> {
    let g = data.graph();
    let starts: Vec<NodeId> = walk
        .starts
        .iter()
        .filter_map(|&a| g.node_by_addr(a))
        .collect();
    let mut ignore: HashSet<NodeId> = walk
        .ignore
        .iter()
        .filter_map(|&a| g.node_by_addr(a))
        .collect();
    ignore.extend(g.frames_running(&walk.skip_frames_in));
    let options = picture::Options {
        max_depth: walk.max_depth,
        too_many: walk.too_many,
        ignore,
    };
    let direction = if walk.backwards {
        picture::Direction::Backwards {
            predecessors: data.predecessors_in(py),
            paths: data.paths_in(py),
        }
    } else {
        picture::Direction::Forwards
    };
    let only: Option<HashSet<u64>> = walk.only.map(|v| v.into_iter().collect());
    let mut error: Option<PyErr> = None;
    let found = picture::neighbourhood(g, direction, &starts, &options, |ids| {
        let mut answers = vec![false; ids.len()];
        let mut asked = Vec::new();
        let mut addresses = Vec::new();
        for (k, &v) in ids.iter().enumerate() {
            let synthetic = g.flags(v).contains(NodeFlags::SYNTHETIC);
            // `only` names objects: frames and threads are not among them.
            let admitted = only
                .as_ref()
                .is_none_or(|o| !synthetic && o.contains(&g.addr(v)));
            if !admitted {
                continue;
            }
            // The caller's filter judges objects; a frame is drawn as the root it is.
            if synthetic || walk.keep.is_none() {
                answers[k] = true;
            } else {
                asked.push(k);
                addresses.push(g.addr(v));
            }
        }
        if let Some(keep) = walk.keep.as_ref().filter(|_| !addresses.is_empty()) {
            if error.is_none() {
                match keep
                    .call1((addresses,))
                    .and_then(|r| r.extract::<Vec<bool>>())
                {
                    Ok(flags) => {
                        for (&k, f) in asked.iter().zip(flags) {
                            answers[k] = f;
                        }
                    }
                    Err(e) => error = Some(e),
                }
            }
        }
        answers
    });
    if let Some(e) = error {
        return Err(e);
    }
    let nodes = found
        .nodes
        .iter()
        .zip(&found.depth)
        .map(|(&v, &depth)| {
            let (title, text) = picture::node_text(g, v);
            (
                g.addr(v),
                title,
                text,
                g.size(v),
                picture::is_root(g, v),
                depth,
            )
        })
        .collect();
    let edges = found
        .edges
        .iter()
        .map(|&(from, to, label, count)| (from, to, picture::edge_label(g, label, count)))
        .collect();
    Ok((nodes, edges, found.elided))
}

/// A node as Python passes it: `(title, text, note, kind, level, dot_attrs)`.
type PictureNode = (String, String, String, String, i32, Vec<(String, String)>);

/// Draws a picture and returns the file's bytes. ``nodes`` are ``(title, text, note, kind,
/// level, dot_attrs)`` with ``kind`` one of ``normal``, ``target``, ``root``, ``highlighted``,
/// ``elided``; ``edges`` are ``(from, to, label, elided)``; ``format`` is ``dot``, ``svg`` or
/// ``png``. The GIL is released while it draws.
/// The reference count of every value of `live` (address -> object), less the references of
/// `live` itself and of this count: the references the program holds. `None` for an immortal
/// object. Read natively, so the calling code's own stack references (which 3.14's compiler
/// keeps or borrows depending on the call site) do not count.
#[pyfunction]
pub fn reference_counts(live: &Bound<'_, PyDict>) -> PyResult<HashMap<u64, Option<i64>>> {
    let mut counts = HashMap::new();
    for (address, obj) in live.iter() {
        let count = capture::reference_count(&obj).map_err(capture_error)?;
        counts.insert(address.extract::<u64>()?, count.map(|c| c as i64 - 2));
    }
    Ok(counts)
}

#[pyfunction]
pub fn render_picture<'py>(
    py: Python<'py>,
    nodes: Vec<PictureNode>,
    edges: Vec<(usize, usize, String, bool)>,
    format: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let format = Format::from_name(format).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown picture format {format:?}; heaplens draws \"dot\", \"svg\" and \"png\""
        ))
    })?;
    let mut picture = Picture::default();
    for (title, text, note, kind, level, dot_attrs) in nodes {
        let kind = NodeKind::from_name(&kind)
            .ok_or_else(|| PyValueError::new_err(format!("unknown node kind {kind:?}")))?;
        picture.nodes.push(Node {
            title,
            text,
            note,
            kind,
            level,
            dot_attrs,
        });
    }
    for (from, to, label, elided) in edges {
        picture.edges.push(Edge {
            from,
            to,
            label,
            elided,
        });
    }
    let bytes = py
        .detach(|| picture::render(&picture, format))
        .map_err(crate::errors::core_error)?;
    Ok(PyBytes::new(py, &bytes))
}
