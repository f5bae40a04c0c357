//! The type page, the object page and the picture of a retaining path.
//!
//! Objects are named by their node number in the current snapshot (`id`), which the type page
//! lists; the address (`id()` in Python) is shown beside it as a hex string. Referrers are the
//! objects that keep this one alive (strong references; a weak reference is listed only when it
//! comes from one of them), each with how it refers, in Dozer's words ("via its 'k' key").
//!
//! Shapes:
//! - `/api/types/<name>?group=`: `{name, count, bytes, page, per_page, pages, history: [counts]
//!   | null, held_by: [{group, holder: object | null, path, count, instances, objects, bytes,
//!   retained_size, sample, sample_label}], group: {group, path, count} | null, listed, instances:
//!   [object]}`: what holds the instances, grouped by holder (most first; `count` held directly,
//!   `instances` in the group in all, `retained_size` what freeing them would free), then the
//!   instances, largest retained size first: all of them, or one group's (`?group=`; `listed`
//!   says how many the pages hold).
//! - `/api/objects/<id>`: `object` plus `{referrers: [ref], referents: [ref], more_referrers,
//!   more_referents, path: {text, garbage, steps: [{id, type, label, via}], elided} | null}`.
//! - `/api/report?limit=`: `{retainers: [object + {path, allocated_at}], garbage: {objects,
//!   bytes, entries: [object]}}`: the snapshot's report, as `heaplens report` prints it (the
//!   objects that keep the most memory alive, with their retaining paths; the cyclic garbage).
//! - `object` is `{id, address, type, label, repr, size, retained_size, retained_count, flags}`;
//!   `ref` is `{id, type, label, via, edge, weak}`.

use super::{no_snapshot, short, short_name, thin, MAX_TEXT};
use crate::source::Snapshot;
use crate::{Response, Source};
use heaplens_core::analysis::accumulation::{groups_of_types, holders_of_types, Holder};
use heaplens_core::analysis::diff::DiffOptions;
use heaplens_core::analysis::paths::{display, Start};
use heaplens_core::analysis::report::bytes;
use heaplens_core::graph::{NodeFlags, NodeId};
use heaplens_core::render::picture::{self, edge_label, node_text, Edge, Format, Node, NodeKind};
use heaplens_core::types::TypeId;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Most referrers or referents listed on an object page.
pub const MAX_NEIGHBOURS: usize = 200;
/// Most steps of a retaining path shown (the first and last half of a longer one).
pub const MAX_PATH_STEPS: usize = 200;
/// Most boxes in a path picture (the ones nearest the object).
pub const MAX_PICTURE_NODES: usize = 24;
/// Points of a type's count over time.
pub const HISTORY_POINTS: usize = 300;
/// Longest repr shown.
pub const MAX_REPR: usize = 120;

fn object_json(source: &dyn Source, snap: &Snapshot, v: NodeId) -> Value {
    let g = &snap.graph();
    let (_, text) = node_text(g, v);
    let repr = source.repr(snap, v).map(|r| short(&r, MAX_REPR));
    let synthetic = g.flags(v).contains(NodeFlags::SYNTHETIC);
    json!({
        "id": v,
        "address": if synthetic { Value::Null } else { json!(format!("{:#x}", g.addr(v))) },
        "type": short_name(&g.type_name(v), MAX_TEXT),
        "label": short(&display(g, v), MAX_TEXT),
        "name": short(&text, MAX_TEXT),
        "repr": repr,
        "size": g.size(v),
        "retained_size": snap.dominators().retained_size(v),
        "retained_count": snap.dominators().retained_count(v),
        "flags": g.flags(v).names(),
    })
}

fn neighbour_json(snap: &Snapshot, v: NodeId, label: heaplens_core::label::Label) -> Value {
    let g = &snap.graph();
    json!({
        "id": v,
        "type": short_name(&g.type_name(v), MAX_TEXT),
        "label": short(&display(g, v), MAX_TEXT),
        "via": short(&edge_label(g, label, 1), MAX_TEXT),
        "edge": short(&g.describe_label(label), MAX_TEXT),
        "weak": label.is_weak(),
    })
}

/// The type `name` stands for: itself when some type has that name, else the type whose name as
/// the API shows it ([`short`]: invisible characters escaped, cut) is `name`, so the names the
/// overview gives can be asked for. Snapshot types first, then the history's.
fn resolve_type_name(source: &dyn Source, name: &str) -> String {
    // The name as the page shows it first: escapes are unambiguous, so a class literally named
    // `evil\u202etxt.exe` (shown `evil\\u202etxt.exe`) cannot take the link of the one whose
    // name holds U+202E. Then the name as it is (an API client's own spelling).
    let shown = |full: &str| short_name(full, MAX_TEXT) == name;
    let mut found = None;
    if let Some(snap) = source.snapshot() {
        let g = &snap.graph();
        let types = g.types();
        let names: Vec<String> = types
            .iter()
            .map(|(id, _)| types.display_name(id, g.strings()))
            .collect();
        found = names
            .iter()
            .find(|n| shown(n))
            .or_else(|| names.iter().find(|n| *n == name))
            .cloned();
    }
    if found.is_none() {
        source.with_history(&mut |h| {
            found = h
                .type_names()
                .iter()
                .find(|n| shown(n))
                .or_else(|| h.type_names().iter().find(|n| *n == name))
                .cloned();
        });
    }
    found.unwrap_or_else(|| name.to_string())
}

/// `GET /api/types/<name>?page=&per_page=&group=`. Pages count from 1; a page past the end is
/// empty. With `group` (a `held_by` entry's), the instances are those that holder keeps.
pub fn type_page(
    source: &dyn Source,
    name: &str,
    page: usize,
    per_page: usize,
    group: Option<u32>,
) -> Response {
    let (page, per_page) = (page.max(1), per_page.max(1));
    let resolved = resolve_type_name(source, name);
    let name = resolved.as_str();
    let mut history: Option<Vec<u64>> = None;
    source.with_history(&mut |h| {
        let counts: Vec<u64> = h.series(name).iter().map(|v| v.0).collect();
        if !counts.is_empty() {
            history = Some(thin(&counts, HISTORY_POINTS));
        }
    });
    let Some(snap) = source.snapshot() else {
        // Without a snapshot there is no telling whether the type exists (a type named on the
        // endpoints table may not be in a sample yet): the page says what to do.
        let count = history.as_ref().and_then(|h| h.last().copied());
        return Response::json(
            200,
            &json!({"name": short_name(name, MAX_TEXT), "count": count, "bytes": null,
                    "page": 1, "per_page": per_page, "pages": 0, "history": history,
                    "instances": [], "note": "no snapshot yet: take one to see the instances"}),
        );
    };
    let g = &snap.graph();
    let types: Vec<TypeId> = g
        .types()
        .iter()
        .filter(|(id, _)| g.types().display_name(*id, g.strings()) == name)
        .map(|(id, _)| id)
        .collect();
    let mut nodes: Vec<NodeId> = if types.is_empty() {
        Vec::new()
    } else {
        g.objects()
            .filter(|&v| types.contains(&g.type_id(v)))
            .collect()
    };
    if nodes.is_empty() && history.is_none() {
        return Response::error(404, "no objects of that type in the snapshot");
    }
    let count = nodes.len();
    let total_bytes: u64 = nodes.iter().map(|&v| g.size(v)).sum();
    let held_by = held_by(source, &snap, name);
    let mut group_json = Value::Null;
    if let Some(group) = group {
        let Some(shown) = held_by.iter().find(|h| h["group"] == json!(group)) else {
            return Response::error(
                404,
                "no such group of holders for this type in this snapshot (take the link from \
                 its page again: a new snapshot groups anew)",
            );
        };
        group_json = json!({"group": group, "path": shown["path"], "count": shown["count"]});
        let keys = groups_of_types(g, snap.paths(), &[name.to_string()]);
        nodes.retain(|&v| keys[v as usize] == group);
    }
    let dom = &snap.dominators();
    nodes.sort_by(|&a, &b| {
        dom.retained_size(b)
            .cmp(&dom.retained_size(a))
            .then(a.cmp(&b))
    });
    // Paged: the instances of the type, or of the group asked for.
    let listed = nodes.len();
    let pages = listed.div_ceil(per_page);
    let start = (page - 1).saturating_mul(per_page).min(listed);
    let end = start.saturating_add(per_page).min(listed);
    let instances: Vec<Value> = nodes[start..end]
        .iter()
        .map(|&v| object_json(source, &snap, v))
        .collect();
    Response::json(
        200,
        &json!({
            "name": short_name(name, MAX_TEXT),
            "count": count,
            "bytes": total_bytes,
            "page": page,
            "per_page": per_page,
            "pages": pages,
            "history": history,
            "held_by": held_by,
            "group": group_json,
            "listed": listed,
            "instances": instances,
        }),
    )
}

/// Most groups of a type's instances shown, by what holds them.
const MAX_HOLDERS: usize = 10;

/// What holds the instances of the type `name`, grouped by holder (the containers holding most
/// of them first): per group its path, how many instances it holds directly, the objects and
/// bytes they bring, what freeing them would free (their retained size, each byte once), and
/// one of them. 4,978 identical rows say less than "4,978 held by module shop ->
/// .__dict__['QUOTES'] -> list". `group` names the group for `?group=`.
pub(crate) fn held_by(source: &dyn Source, snap: &Snapshot, name: &str) -> Vec<Value> {
    let g = snap.graph();
    let names = [name.to_string()];
    let groups = holders_of_types(g, snap.paths(), &names, held_by_options());
    // The members of the groups shown, for their retained size: one pass over the heap.
    let mut members: HashMap<u32, Vec<NodeId>> =
        groups.iter().map(|s| (s.group, Vec::new())).collect();
    if !groups.is_empty() {
        for (v, key) in groups_of_types(g, snap.paths(), &names)
            .into_iter()
            .enumerate()
        {
            if let Some(m) = members.get_mut(&key) {
                m.push(v as NodeId);
            }
        }
    }
    let dom = snap.dominators();
    groups
        .iter()
        .map(|s| {
            let (holder, path) = match s.holder {
                Holder::Node(v) => (
                    object_json(source, snap, v),
                    s.holder_path
                        .as_ref()
                        .map_or_else(|| display(g, v), |p| p.render(g)),
                ),
                Holder::Roots => (Value::Null, "held from outside the heap (roots)".into()),
                Holder::Garbage => (Value::Null, "cyclic garbage no root reaches".into()),
            };
            let group = members.get(&s.group).map_or(&[][..], Vec::as_slice);
            json!({
                "group": s.group,
                "holder": holder,
                "path": short(&path, 2000),
                "count": s.entries,
                "instances": group.len(),
                "objects": s.objects,
                "bytes": s.bytes,
                "retained_size": dom.retained_size_of_set(group),
                "sample": s.sample,
                "sample_label": short(&s.sample_label, MAX_TEXT),
            })
        })
        .collect()
}

/// What holds most of the objects of the types `names` together: `{type, holder: id | null,
/// path, count}` (`type`: the one its holder collects, by the one ranking rule), or `None` when
/// none is in the snapshot. Together, because what a request leaves behind is an instance with
/// its parts (an order and its card): each part is held by its order, the orders by the list.
/// Lighter than [`held_by`] (one group, no retained sizes): the endpoints table asks it for each
/// endpoint that leaves objects behind.
pub(crate) fn top_holder(snap: &Snapshot, names: &[String]) -> Option<Value> {
    let g = snap.graph();
    let options = DiffOptions {
        max_suspects: 1,
        ..held_by_options()
    };
    let top = holders_of_types(g, snap.paths(), names, options)
        .into_iter()
        .next()?;
    let (holder, path) = match top.holder {
        Holder::Node(v) => (
            json!(v),
            top.holder_path
                .as_ref()
                .map_or_else(|| display(g, v), |p| p.render(g)),
        ),
        Holder::Roots => (Value::Null, "held from outside the heap (roots)".into()),
        Holder::Garbage => (Value::Null, "cyclic garbage no root reaches".into()),
    };
    Some(json!({
        "type": short_name(&top.entry_type, MAX_TEXT),
        "holder": holder,
        "path": short(&path, 2000),
        "count": top.entries,
    }))
}

fn held_by_options() -> DiffOptions {
    DiffOptions {
        min_objects: 1,
        min_bytes: u64::MAX,
        max_suspects: MAX_HOLDERS,
        // A bounded cache holds its instances too: here it is an answer, not a suspect.
        keep_bounded: true,
        ..DiffOptions::default()
    }
}

/// The current snapshot and its object `id`, or the 404 that says which is missing.
fn snapshot_node(source: &dyn Source, id: u32) -> Result<(Arc<Snapshot>, NodeId), Response> {
    let snap = source.snapshot().ok_or_else(no_snapshot)?;
    if (id as usize) < snap.graph().node_count() {
        Ok((snap, id))
    } else {
        Err(Response::error(
            404,
            "no object with that id in this snapshot",
        ))
    }
}

/// `GET /api/objects/<id>`.
/// `GET /api/report?limit=`: the biggest retainers of the current snapshot with their
/// retaining paths, and its cyclic garbage (see the module documentation).
pub fn report(source: &dyn Source, limit: usize) -> Response {
    let Some(snap) = source.snapshot() else {
        return no_snapshot();
    };
    let g = snap.graph();
    let (paths, dom) = (snap.paths(), snap.dominators());
    let retainers: Vec<Value> = dom
        .top_retainers(g, limit, |v| {
            heaplens_core::analysis::report::is_infrastructure(g, paths, v)
        })
        .into_iter()
        .map(|v| {
            let mut o = object_json(source, &snap, v);
            let path = paths
                .path(g, v)
                .map(|p| p.render(g))
                .unwrap_or_else(|| display(g, v));
            o["path"] = json!(short(&path, 4000));
            o["allocated_at"] = json!(g.allocated_at(v).last().map(|l| short(l, MAX_TEXT)));
            o
        })
        .collect();
    let (mut objects, mut total) = (0u64, 0u64);
    for v in g.objects() {
        if g.flags(v).contains(NodeFlags::UNREACHABLE) {
            objects += 1;
            total += g.size(v);
        }
    }
    let mut entries = dom.garbage_entries().to_vec();
    entries.sort_by_key(|&v| std::cmp::Reverse(dom.retained_size(v)));
    entries.truncate(limit.min(5));
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|v| object_json(source, &snap, v))
        .collect();
    Response::json(
        200,
        &json!({
            "retainers": retainers,
            "garbage": {"objects": objects, "bytes": total, "entries": entries},
        }),
    )
}

pub fn object_page(source: &dyn Source, id: u32) -> Response {
    let (snap, v) = match snapshot_node(source, id) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let g = &snap.graph();
    let mut out = object_json(source, &snap, v);
    let referents: Vec<Value> = g
        .edges(v)
        .take(MAX_NEIGHBOURS)
        .map(|(t, l)| neighbour_json(&snap, t, l))
        .collect();
    // The referrers: from the index when something built it, else by one pass over the
    // references (the dashboard does not keep 4 bytes per reference for one page at a time).
    let mut preds: Vec<NodeId> = match snap.computed_predecessors() {
        Some(p) => p.of(v).to_vec(),
        None => (0..g.node_count() as NodeId)
            .filter(|&p| {
                g.targets(p)
                    .iter()
                    .zip(g.labels(p))
                    .any(|(&t, l)| t == v && !l.is_weak())
            })
            .collect(),
    };
    preds.sort_unstable();
    preds.dedup();
    let mut referrers = Vec::new();
    let mut more_referrers = 0usize;
    for p in preds {
        for (t, l) in g.edges(p) {
            if t != v {
                continue;
            }
            if referrers.len() < MAX_NEIGHBOURS {
                referrers.push(neighbour_json(&snap, p, l));
            } else {
                more_referrers += 1;
            }
        }
    }
    out["referents"] = json!(referents);
    out["more_referents"] = json!(g.edges(v).len().saturating_sub(MAX_NEIGHBOURS));
    out["referrers"] = json!(referrers);
    out["more_referrers"] = json!(more_referrers);
    out["path"] = path_json(&snap, v);
    Response::json(200, &out)
}

/// The retaining path of `v`: its steps from the root (first and last halves of a long one).
fn path_json(snap: &Snapshot, v: NodeId) -> Value {
    let g = &snap.graph();
    let Some(path) = snap.paths().path(g, v) else {
        return Value::Null;
    };
    let nodes = path.nodes(g);
    let mut vias: Vec<String> = Vec::with_capacity(nodes.len());
    let garbage = match path.start {
        Start::Root { edge } => {
            vias.push(g.describe_label(g.edge(edge).1));
            false
        }
        Start::Garbage { .. } => {
            vias.push("unreachable garbage".to_string());
            true
        }
    };
    vias.extend(path.edges.iter().map(|&e| edge_label(g, g.edge(e).1, 1)));
    let n = nodes.len();
    let keep =
        |i: usize| n <= MAX_PATH_STEPS || i < MAX_PATH_STEPS / 2 || i >= n - MAX_PATH_STEPS / 2;
    let steps: Vec<Value> = nodes
        .iter()
        .zip(&vias)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (&node, via))| {
            json!({
                "id": node,
                "type": short_name(&g.type_name(node), MAX_TEXT),
                "label": short(&display(g, node), MAX_TEXT),
                "via": short(via, MAX_TEXT),
            })
        })
        .collect();
    json!({
        "text": short(&path.render(g), 4000),
        "garbage": garbage,
        "steps": steps,
        "elided": n.saturating_sub(MAX_PATH_STEPS),
    })
}

/// `GET /api/objects/<id>/path.svg`: the retaining path drawn, nearest boxes to the object.
pub fn path_picture(source: &dyn Source, id: u32) -> Response {
    let (snap, v) = match snapshot_node(source, id) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let g = &snap.graph();
    let Some(path) = snap.paths().path(g, v) else {
        return Response::error(
            404,
            "no root reaches this object (or it is the root itself)",
        );
    };
    let nodes = path.nodes(g);
    let mut labels: Vec<String> = vec![String::new()];
    labels.extend(path.edges.iter().map(|&e| edge_label(g, g.edge(e).1, 1)));
    let skip = nodes.len().saturating_sub(MAX_PICTURE_NODES);
    let mut pic = picture::Picture::default();
    for (i, &node) in nodes.iter().enumerate().skip(skip) {
        let (title, text) = node_text(g, node);
        let kind = if node == v {
            NodeKind::Target
        } else if i == 0 || picture::is_root(g, node) {
            NodeKind::Root
        } else {
            NodeKind::Normal
        };
        let repr = source.repr(&snap, node).unwrap_or(text);
        pic.nodes.push(Node::new(
            &title,
            &short(&repr, MAX_REPR),
            &bytes(g.size(node)),
            kind,
        ));
        if i > skip {
            let at = pic.nodes.len() - 1;
            pic.edges.push(Edge::new(at - 1, at, &labels[i]));
        }
    }
    if skip > 0 {
        pic.nodes.insert(
            0,
            Node::new(&format!("{skip} more"), "", "", NodeKind::Elided),
        );
        for e in &mut pic.edges {
            e.from += 1;
            e.to += 1;
        }
        let mut elided = Edge::new(0, 1, "");
        elided.elided = true;
        pic.edges.insert(0, elided);
    }
    match picture::render(&pic, Format::Svg) {
        Ok(svg) => Response::new(200, "image/svg+xml; charset=utf-8", svg),
        Err(e) => Response::error(500, &format!("could not draw the path: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileSource;
    use heaplens_core::graph::GraphBuilder;

    #[test]
    fn pages_out_of_range_are_empty_not_a_panic() {
        let mut b = GraphBuilder::new();
        let t = b.intern_type("builtins", "dict", "dict");
        for i in 0..3 {
            let n = b.add_node(0x10 * (i + 1));
            b.set_node(n, t, 64, NodeFlags::GC_TRACKED);
            b.end_node();
        }
        let source = FileSource::from_graph(b.finish().unwrap(), "x");
        for (page, per_page) in [(0, 0), (usize::MAX, usize::MAX), (2, 2), (5, 1)] {
            let r = type_page(&source, "dict", page, per_page, None);
            assert_eq!(r.status, 200, "{page} {per_page}");
        }
        assert_eq!(object_page(&source, u32::MAX).status, 404);
        assert_eq!(path_picture(&source, u32::MAX).status, 404);
    }

    /// Two lists held by the roots, one holding three orders, the other one.
    fn two_holders() -> FileSource {
        use heaplens_core::label::Label;
        let mut b = GraphBuilder::new();
        let list = b.intern_type("builtins", "list", "list");
        let order = b.intern_type("app", "Order", "Order");
        let nodes: Vec<NodeId> = (0..6).map(|i| b.add_node(0x100 * (i + 1))).collect();
        // 0: list of 1, 2, 3; 4: list of 5.
        let children = |v: NodeId| match v {
            0 => vec![1, 2, 3],
            4 => vec![5],
            _ => vec![],
        };
        for &v in &nodes {
            let ty = if v == 0 || v == 4 { list } else { order };
            b.set_node(v, ty, 100, NodeFlags::GC_TRACKED);
            for (i, c) in children(v).into_iter().enumerate() {
                b.push_edge(c, Label::index(i));
            }
            b.end_node();
        }
        b.add_root_node();
        b.push_edge(0, Label::root_external());
        b.push_edge(4, Label::root_external());
        b.end_node();
        FileSource::from_graph(b.finish().unwrap(), "x")
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn a_type_page_groups_by_holder_and_lists_one_groups_instances() {
        let source = two_holders();
        let page = body(&type_page(&source, "app.Order", 1, 50, None));
        let groups = page["held_by"].as_array().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0]["holder"]["id"], 0);
        assert_eq!(groups[0]["instances"], 3);
        assert_eq!(groups[0]["retained_size"], 300);
        assert_eq!(groups[1]["holder"]["id"], 4);
        assert_eq!(groups[1]["instances"], 1);
        assert_eq!(page["count"], 4);
        assert_eq!(page["listed"], 4);
        assert_eq!(page["group"], Value::Null);

        let key = groups[0]["group"].as_u64().unwrap() as u32;
        let r = type_page(&source, "app.Order", 1, 2, Some(key));
        assert_eq!(r.status, 200);
        let one = body(&r);
        assert_eq!(one["count"], 4, "the type's count stays");
        assert_eq!(one["listed"], 3);
        assert_eq!(one["pages"], 2);
        let ids: Vec<u64> = one["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(one["group"]["group"], key);
        // A group this type does not have is a 404 that says what to do.
        assert_eq!(
            type_page(&source, "app.Order", 1, 50, Some(key + 1000)).status,
            404
        );
    }
}
