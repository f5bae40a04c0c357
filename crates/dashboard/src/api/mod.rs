//! The JSON API (and the few non-JSON answers next to it: the growth chart, downloads).
//!
//! Every function here takes what the router parsed and returns a complete [`Response`]. Strings
//! from the heap (type names, labels, reprs) go into JSON strings untouched apart from
//! shortening: `serde_json` escapes quotes and control characters, and [`Response::json`]
//! additionally writes `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`, so no answer contains a
//! tag whatever a browser takes it for. The page shows every string with `textContent`.
//!
//! Shapes (fields that may be absent are `null`, never missing):
//! - `/api/info`: `{pid, program, python_version, live, rss, peak_rss, can_take_snapshot,
//!   multiprocess, has_history, has_snapshot, has_previous, memory: {own_bytes},
//!   allow_downloads, version}` (`has_previous`: a comparison can be shown; `own_bytes`: what
//!   heaplens itself holds in the process).
//! - `/api/overview`: `{info, snapshot: {objects, bytes, types, references, taken_at_ms} | null,
//!   memory: {rss, peak_rss, python_objects, python_bytes, samples, span_ms, native, series}
//!   | null, sorted_by: "steady growth" | "growth per hour (none grew steadily)" | "count", types: [{name, count, bytes, snapshot_count,
//!   trend: {first, last, min, max, per_hour, steady, sparkline} | null}], more}`.
//! - `/api/endpoints`: `{tracing, endpoints: [{endpoint, requests, traced, overlapped, measured,
//!   approximate, few_traces, objects, bytes, objects_per_request, bytes_per_request, types:
//!   [{name, per_request}], held_by: {type, holder: id | null, path, count} | null}], more}`,
//!   most objects per request first (`held_by`: what holds the instances of the classes an
//!   endpoint leaves behind, from the snapshot, for endpoints leaving at least one object a
//!   request), endpoints with
//!   `few_traces` (under [`FEW_TRACES`]) last. `overlapped` traces ran beside
//!   other requests; the per-request figures are trimmed means over the `measured` (most recent)
//!   clean traces, or the overlapped ones while there is no clean one (`approximate`)
//!   ([`crate::endpoints`]).
//! - `/api/diff`: `{before, after, new_objects, new_bytes, grew: [...], suspects: [...], text}`,
//!   or `{error}` when the two snapshots cannot be compared.
//! - `/api/types/...`, `/api/objects/...`: see [`objects`].

pub mod objects;

pub use objects::{object_page, path_picture, report, type_page};

use crate::source::{ActionError, EndpointGrowth, Snapshot};
use crate::{Config, Response, Source};
use heaplens_core::analysis::diff::{DiffOptions, Holder};
use heaplens_core::analysis::ranking::is_generic;
use heaplens_core::analysis::report::diff_report;
use heaplens_core::history::{chart, trends, History};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Points in a sparkline; longer series keep each stretch's highest count.
pub const SPARKLINE_POINTS: usize = 60;
/// Points in the memory series of the overview.
pub const MEMORY_POINTS: usize = 300;
/// Longest string (in characters) of a name or label in a JSON answer.
pub const MAX_TEXT: usize = 300;

/// `text` with its invisible characters escaped (see [`visible`]), cut to `max` characters,
/// with `…` when cut.
pub fn short(text: &str, max: usize) -> String {
    cut(&visible(text, false), max)
}

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

pub use heaplens_core::text::visible;

/// A bare name from the heap as [`heaplens_core::text::visible_name`] writes it (backslashes
/// doubled: a class literally named `evil\u202etxt.exe` cannot pass for, nor take the link
/// of, the one whose name holds U+202E), cut to `max` characters as [`short`] cuts.
pub fn short_name(name: &str, max: usize) -> String {
    cut(&heaplens_core::text::visible_name(name), max)
}

/// At most `points` values: the highest of each of `points` equal stretches of `values`.
pub fn thin(values: &[u64], points: usize) -> Vec<u64> {
    if values.len() <= points || points == 0 {
        return values.to_vec();
    }
    (0..points)
        .map(|k| {
            let (from, to) = (k * values.len() / points, (k + 1) * values.len() / points);
            values[from..to.max(from + 1)]
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
        })
        .collect()
}

pub(crate) fn no_snapshot() -> Response {
    Response::error(
        404,
        "no snapshot yet: take one with the page's \"Take a snapshot\" button (POST \
         /api/snapshot)",
    )
}

/// The process's description (`info`, read once per request: live, it reads `/proc`).
fn info_json(source: &dyn Source, info: &crate::ProcessInfo) -> Value {
    let has_history = source.with_history(&mut |_| {});
    json!({
        "pid": info.pid,
        "program": short(&info.program, MAX_TEXT),
        "python_version": short(&info.python_version, MAX_TEXT),
        "live": info.live,
        "rss": info.rss,
        "peak_rss": info.peak_rss,
        "can_take_snapshot": info.can_take_snapshot,
        "multiprocess": info.multiprocess,
        "has_history": has_history,
        "has_snapshot": source.snapshot().is_some(),
        "has_previous": source.previous_snapshot().is_some()
            || source.snapshot().is_some_and(|s| s.comparison().is_some()),
        "memory": own_memory_json(),
        "version": heaplens_core::VERSION,
    })
}

/// What heaplens itself holds in this process: the snapshots it keeps and their analyses, the
/// sample history, the tables of traced requests (`own_bytes`), beside the process's RSS.
fn own_memory_json() -> Value {
    json!({ "own_bytes": heaplens_core::own::memory() })
}

/// `GET /api/info`, with whether downloads are allowed (the page shows the links only then).
pub fn info(config: &Config, source: &dyn Source) -> Response {
    let mut v = info_json(source, &source.info());
    v["allow_downloads"] = json!(config.allow_downloads);
    Response::json(200, &v)
}

fn memory_json(history: &History, peak: Option<u64>) -> Value {
    let samples: Vec<_> = history.samples().collect();
    let latest = history.latest();
    let span = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.taken_ms.saturating_sub(a.taken_ms),
        _ => 0,
    };
    let at = history.spread(MEMORY_POINTS);
    let pick = |f: &dyn Fn(&heaplens_core::history::Sample) -> u64| -> Vec<u64> {
        at.iter()
            .filter_map(|&i| samples.get(i))
            .map(|s| f(s))
            .collect()
    };
    // The snapshots the dashboard keeps are heaplens' memory, not the program's native memory.
    let native = chart::native_growth_beside(history, heaplens_core::own::memory()).map(|n| {
        json!({
            "rss_from": n.rss_from, "rss_to": n.rss_to,
            "bytes_from": n.bytes_from, "bytes_to": n.bytes_to, "gc_only": n.gc_only,
            "message": "RSS grows while the Python objects do not: the memory is held outside \
                        Python objects (a C extension, native buffers, allocator fragmentation)",
        })
    });
    let peak = peak.or_else(|| samples.iter().map(|s| s.rss).max().filter(|&r| r > 0));
    json!({
        "rss": latest.map(|s| s.rss).filter(|&r| r > 0),
        "peak_rss": peak,
        "python_objects": latest.map(|s| s.objects),
        "python_bytes": latest.map(|s| s.bytes),
        "samples": samples.len(),
        "span_ms": span,
        "native": native,
        "series": {
            "taken_ms": pick(&|s| s.taken_ms),
            "rss": pick(&|s| s.rss),
            "python_bytes": pick(&|s| s.bytes),
        },
    })
}

fn snapshot_json(snap: &Snapshot) -> Value {
    let census = snap.census();
    json!({
        "objects": census.total_count(),
        "bytes": census.total_bytes(),
        "types": census.len(),
        "references": snap.graph().edge_count(),
        "taken_at_ms": snap.graph().meta().taken_at_ms,
    })
}

/// `GET /api/overview?limit=`: the types, steady growers first when there is a history.
pub fn overview(source: &dyn Source, limit: usize) -> Response {
    let snap = source.snapshot();
    let census = snap.as_ref().map(|s| s.census());
    let in_snapshot = |name: &str| census.as_ref().and_then(|c| c.get(name)).map(|r| r.count);
    let mut rows: Vec<Value> = Vec::new();
    let mut memory = Value::Null;
    let info = source.info();
    let peak = info.peak_rss;
    let mut seen = std::collections::HashSet::new();
    let mut any_steady = false;
    let mut verdict = Value::Null;
    let has_history = source.with_history(&mut |h| {
        memory = memory_json(h, peak);
        let all = trends(h);
        verdict = verdict_json(source, snap.as_deref(), h, &all);
        for t in all {
            any_steady |= t.steady;
            if t.last == 0 && t.max == 0 {
                continue;
            }
            seen.insert(t.name.clone());
            rows.push(json!({
                "name": short_name(&t.name, MAX_TEXT),
                "count": t.last,
                "bytes": t.bytes,
                "snapshot_count": in_snapshot(&t.name),
                "trend": {
                    "first": t.first, "last": t.last, "min": t.min, "max": t.max,
                    "per_hour": if t.per_hour.is_finite() { t.per_hour } else { 0.0 },
                    "steady": t.steady,
                    "sparkline": thin(&t.counts, SPARKLINE_POINTS),
                },
            }));
        }
    });
    if let Some(c) = &census {
        for r in c.rows().iter().filter(|r| !seen.contains(&r.name)) {
            rows.push(json!({
                "name": short_name(&r.name, MAX_TEXT),
                "count": r.count,
                "bytes": r.bytes,
                "snapshot_count": r.count,
                "trend": null,
            }));
        }
    }
    let more = rows.len().saturating_sub(limit);
    rows.truncate(limit);
    let snapshot = snap.as_ref().map_or(Value::Null, |s| snapshot_json(s));
    Response::json(
        200,
        &json!({
            "info": info_json(source, &info),
            "verdict": verdict,
            "snapshot": snapshot,
            "memory": memory,
            // The same words as the chart above the table: with no steady grower, the rows
            // are by growth per hour, and the heading must not say "steady".
            "sorted_by": match (has_history, any_steady) {
                (true, true) => "steady growth",
                (true, false) => "growth per hour (none grew steadily)",
                (false, _) => "count",
            },
            "types": rows,
            "more": more,
        }),
    )
}

/// Samples a history needs before its verdict: fewer cannot tell steady growth from a step.
const MIN_SAMPLES: usize = 3;

/// The first screen's answer to "is something leaking, what, where from, and what holds it":
/// `{state: "leaking" | "not_leaking" | "too_few_samples", text, top: null | {type, per_hour,
/// count, held_by: group | null, endpoint: {name, per_request} | null}}`. The top type is the
/// first steady grower in the one ranking (the class before the builtins inside it); what
/// holds it needs a snapshot, the endpoint the trace mode.
fn verdict_json(
    source: &dyn Source,
    snap: Option<&Snapshot>,
    history: &History,
    trends: &[heaplens_core::history::TypeTrend],
) -> Value {
    let samples = history.len();
    let span_s = match (history.samples().next(), history.latest()) {
        (Some(a), Some(b)) => b.taken_ms.saturating_sub(a.taken_ms) / 1000,
        _ => 0,
    };
    if samples < MIN_SAMPLES {
        return json!({
            "state": "too_few_samples",
            "text": format!(
                "Not enough samples yet: {samples} of the {MIN_SAMPLES} needed to tell steady \
                 growth from warm-up."
            ),
            "top": null,
        });
    }
    let steady: Vec<_> = trends.iter().filter(|t| t.steady).collect();
    let Some(top) = steady.first() else {
        return json!({
            "state": "not_leaking",
            "text": format!(
                "Not leaking: no type grew steadily over {samples} samples ({span_s} s)."
            ),
            "top": null,
        });
    };
    let name = top.name.as_str();
    let held_by = snap
        .map(|s| objects::held_by(source, s, name))
        .and_then(|groups| groups.into_iter().next());
    let endpoint = source.endpoints().and_then(|eps| {
        eps.iter()
            .filter_map(|e| {
                let per = e.types.iter().find(|(t, _)| t == name).map(|(_, n)| *n)?;
                (per > 0.0).then(|| (e.endpoint.clone(), per))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(endpoint, per)| json!({"name": short(&endpoint, MAX_TEXT), "per_request": per}))
    });
    let others = steady.len() - 1;
    json!({
        "state": "leaking",
        "text": format!(
            "Leaking: {} grew steadily over {samples} samples ({span_s} s), {} per hour{}.",
            short_name(name, MAX_TEXT),
            heaplens_core::analysis::report::signed(if top.per_hour.is_finite() {
                top.per_hour.round() as i64
            } else {
                0
            }),
            match others {
                0 => String::new(),
                1 => ", and 1 more type".to_string(),
                n => format!(", and {n} more types"),
            }
        ),
        "top": {
            "type": short_name(name, MAX_TEXT),
            "per_hour": if top.per_hour.is_finite() { top.per_hour } else { 0.0 },
            "count": top.last,
            "held_by": held_by,
            "endpoint": endpoint,
        },
    })
}

/// `GET /api/chart.svg`: the growth chart, or a 404 without a history.
pub fn chart(source: &dyn Source) -> Response {
    let info = source.info();
    let title = format!("{} <pid {}>", info.program, info.pid);
    let mut svg = None;
    // The snapshots the dashboard keeps are heaplens' memory, not the program's native memory:
    // the chart says what the overview says.
    let own = heaplens_core::own::memory();
    source.with_history(&mut |h| svg = Some(chart::svg_beside(h, &trends(h), &title, own)));
    match svg {
        Some(svg) => Response::new(200, "image/svg+xml; charset=utf-8", svg.into_bytes()),
        None => Response::error(
            404,
            "no sample history: the chart needs the middleware's sampling (or a history file)",
        ),
    }
}

/// `GET /api/diff`: the previous snapshot compared with the current one.
pub fn diff(source: &dyn Source) -> Response {
    let after = source.snapshot();
    match (source.previous_snapshot(), after) {
        (Some(before), Some(after)) => Response::json(200, &diff_json(&before, &after)),
        // The previous snapshot was let go once compared: its comparison stays.
        (None, Some(after)) if after.comparison().is_some() => {
            Response::json(200, &*after.comparison().expect("checked"))
        }
        _ => Response::error(
            404,
            "nothing to compare: take two snapshots (the second is compared with the first)",
        ),
    }
}

/// The comparison of `after` with `before`, made once per pair and kept with `after`.
fn diff_json(before: &Arc<Snapshot>, after: &Arc<Snapshot>) -> Arc<Value> {
    let cached = |slot: &Option<(std::sync::Weak<Snapshot>, Arc<Value>)>| {
        slot.as_ref()
            .filter(|(b, _)| std::ptr::eq(b.as_ptr(), Arc::as_ptr(before)))
            .map(|(_, v)| Arc::clone(v))
    };
    let lock = || after.compared.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = cached(&lock()) {
        return v;
    }
    // Computed without the lock: two requests at once may both compute it, and neither waits.
    let v = Arc::new(compare(before, after));
    *lock() = Some((Arc::downgrade(before), Arc::clone(&v)));
    v
}

fn compare(before: &Arc<Snapshot>, after: &Arc<Snapshot>) -> Value {
    let (b, a) = (before.graph(), after.graph());
    let d = match after.diff_since(before, DiffOptions::default()) {
        Ok(d) => d,
        Err(e) => return json!({ "error": short(&e.to_string(), 2000) }),
    };
    let grew: Vec<Value> = d
        .types
        .iter()
        .filter(|t| t.count_delta > 0)
        .take(50)
        .map(|t| {
            json!({"name": short_name(&t.name, MAX_TEXT), "count": t.count,
                   "count_delta": t.count_delta, "bytes": t.bytes, "bytes_delta": t.bytes_delta})
        })
        .collect();
    let suspects: Vec<Value> = d
        .suspects
        .iter()
        .map(|s| {
            let (holder, holder_id) = match s.holder {
                Holder::Node(v) => ("object", Some(v)),
                Holder::Roots => ("roots", None),
                Holder::Garbage => ("garbage", None),
            };
            let types: Vec<Value> = s
                .types
                .iter()
                .take(5)
                .map(|(n, c, by)| json!({"name": short_name(n, MAX_TEXT), "count": c, "bytes": by}))
                .collect();
            json!({
                "holder": holder,
                "holder_id": holder_id,
                "holder_path": s.holder_path.as_ref().map(|p| short(&p.render(a), 2000)),
                "entry_type": short_name(&s.entry_type, MAX_TEXT),
                "entries": s.entries,
                "objects": s.objects,
                "bytes": s.bytes,
                "types": types,
                "sample_id": s.sample,
                "sample_label": short(&s.sample_label, MAX_TEXT),
                "allocated_at": s.allocated_at.iter().rev().take(ALLOCATION_FRAMES).rev()
                    .map(|f| short(f, 2000)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "before": b.meta().taken_at_ms,
        "after": a.meta().taken_at_ms,
        "new_objects": d.new_objects,
        "new_bytes": d.new_bytes,
        "grew": grew,
        "suspects": suspects,
        "text": visible(&diff_report(b, a, &d, 20), true),
    })
}

/// The most recent calls of an allocation traceback shown per suspect.
const ALLOCATION_FRAMES: usize = 8;

/// Most endpoints listed.
pub const MAX_ENDPOINTS: usize = 200;
/// Most types listed per endpoint.
pub const MAX_ENDPOINT_TYPES: usize = 10;

/// Most endpoints whose holder the endpoints table looks up in the snapshot.
pub const MAX_ENDPOINT_HOLDERS: usize = 10;

/// Fewer measured traces than this, and an endpoint is ranked after the others: the first
/// requests down a code path warm caches and import modules, which one or two traces cannot
/// tell from a leak.
pub const FEW_TRACES: u64 = 5;

/// `GET /api/endpoints`: what traced requests left behind, most per request first (endpoints
/// with fewer than [`FEW_TRACES`] measured traces last).
pub fn endpoints(source: &dyn Source) -> Response {
    let Some(mut list) = source.endpoints() else {
        return Response::json(200, &json!({ "tracing": false, "endpoints": [] }));
    };
    list.sort_by(|a, b| {
        (a.measured < FEW_TRACES)
            .cmp(&(b.measured < FEW_TRACES))
            .then(b.objects_per_request.total_cmp(&a.objects_per_request))
            .then(a.endpoint.cmp(&b.endpoint))
    });
    // Where what an endpoint leaves behind is held, from the snapshot, for the endpoints that
    // leave at least one object a request (a pass over the heap per endpoint, so for a few).
    let snap = source.snapshot();
    let mut holders: HashMap<Vec<String>, Option<Value>> = HashMap::new();
    let mut held_by = |e: &EndpointGrowth| -> Value {
        let Some(snap) = snap.as_deref() else {
            return Value::Null;
        };
        // The classes only: the builtins a request leaves with them (a tuple, a dict) are
        // everywhere in the heap, and the biggest holder of all the heap's tuples says nothing
        // about this endpoint. An endpoint that leaves builtins only gets no holder: its types
        // link to their pages.
        let names: Vec<String> = e
            .types
            .iter()
            .filter(|(n, _)| !is_generic(n))
            .map(|(n, _)| n.clone())
            .collect();
        if names.is_empty() || e.objects_per_request < 1.0 {
            return Value::Null;
        }
        if !holders.contains_key(&names) && holders.len() >= MAX_ENDPOINT_HOLDERS {
            return Value::Null;
        }
        holders
            .entry(names)
            .or_insert_with_key(|names| objects::top_holder(snap, names))
            .clone()
            .unwrap_or(Value::Null)
    };
    let rows: Vec<Value> = list
        .iter()
        .take(MAX_ENDPOINTS)
        .map(|e| {
            let types: Vec<Value> = e
                .types
                .iter()
                .take(MAX_ENDPOINT_TYPES)
                .map(|(n, per_request)| json!({"name": short_name(n, MAX_TEXT), "per_request": per_request}))
                .collect();
            json!({
                "endpoint": short(&e.endpoint, MAX_TEXT),
                "requests": e.requests,
                "traced": e.traced,
                "overlapped": e.overlapped,
                "measured": e.measured,
                "approximate": e.traced > 0 && e.traced == e.overlapped,
                "few_traces": e.measured < FEW_TRACES,
                "objects": e.objects,
                "bytes": e.bytes,
                "objects_per_request": e.objects_per_request,
                "bytes_per_request": e.bytes_per_request,
                "types": types,
                "held_by": held_by(e),
            })
        })
        .collect();
    Response::json(
        200,
        &json!({
            "tracing": true,
            "endpoints": rows,
            "more": list.len().saturating_sub(MAX_ENDPOINTS),
        }),
    )
}

/// `POST /api/snapshot`: takes a snapshot now, and compares it with the previous one if any.
pub fn take_snapshot(source: &dyn Source) -> Response {
    match source.take_snapshot() {
        Ok(()) => {
            let diff = match (source.previous_snapshot(), source.snapshot()) {
                (Some(b), Some(a)) => (*diff_json(&b, &a)).clone(),
                _ => Value::Null,
            };
            // The current snapshot keeps the comparison: the previous one can go.
            source.release_previous();
            Response::json(200, &json!({ "taken": true, "diff": diff }))
        }
        Err(ActionError::NotAvailable(why)) => Response::error(501, &why),
        Err(ActionError::Failed(why)) => {
            Response::error(500, &format!("the snapshot failed: {}", short(&why, 2000)))
        }
    }
}

/// `GET /download/snapshot.hlsnap` and `.heapsnapshot` (Chrome DevTools), when allowed.
pub fn download(config: &Config, source: &dyn Source, chrome: bool) -> Response {
    if !config.allow_downloads {
        return Response::error(
            403,
            "snapshot downloads are off: a snapshot holds every string in the process. Turn them \
             on with allow_downloads=True (or `heaplens serve --allow-downloads`)",
        );
    }
    let Some(snap) = source.snapshot() else {
        return no_snapshot();
    };
    let mut body = Vec::new();
    let pid = snap.graph().meta().pid;
    let (written, content_type, ext) = if chrome {
        let w = heaplens_core::render::chrome::write_heapsnapshot(snap.graph(), &mut body);
        (w, "application/json", "heapsnapshot")
    } else {
        let w = heaplens_core::snapfile::write(snap.graph(), &mut body);
        (w, "application/octet-stream", "hlsnap")
    };
    match written {
        Ok(()) => Response::new(200, content_type, body).with_header(
            "Content-Disposition",
            &format!("attachment; filename=\"heaplens-{pid}.{ext}\""),
        ),
        Err(e) => Response::error(500, &format!("could not write the snapshot: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_written_as_python_writes_them() {
        assert_eq!(visible("app.Order", false), "app.Order");
        assert_eq!(
            visible("a\u{0}b\x1b[31m\u{7}\u{202e}evil\u{2066}", false),
            "a\\x00b\\x1b[31m\\x07\\u202eevil\\u2066"
        );
        assert_eq!(visible("one\ntwo\t", false), "one\\ntwo\\t");
        assert_eq!(visible("one\ntwo\r", true), "one\ntwo\\r");
        assert_eq!(visible("\u{85}é", false), "\\x85é");
        assert_eq!(short("\u{202e}abc", 6), "\\u202e…");
    }

    #[test]
    fn characters_that_show_as_nothing_or_as_a_space_are_escaped_too() {
        for (c, shown) in [
            ('\u{200b}', "\\u200b"),
            ('\u{200c}', "\\u200c"),
            ('\u{200d}', "\\u200d"),
            ('\u{feff}', "\\ufeff"),
            ('\u{2060}', "\\u2060"),
            ('\u{00ad}', "\\xad"),
            ('\u{2028}', "\\u2028"),
            ('\u{2029}', "\\u2029"),
            ('\u{e0041}', "\\U000e0041"),
        ] {
            assert_eq!(
                visible(&format!("Order{c}"), false),
                format!("Order{shown}")
            );
        }
    }

    #[test]
    fn a_bare_name_escapes_unambiguously() {
        // The class whose name holds U+202E and the one literally named with its escape.
        let real = short_name("evil\u{202e}txt.exe", MAX_TEXT);
        let decoy = short_name("evil\\u202etxt.exe", MAX_TEXT);
        assert_eq!(real, "evil\\u202etxt.exe");
        assert_eq!(decoy, "evil\\\\u202etxt.exe");
        assert_ne!(real, decoy);
        assert_eq!(short_name("app.Order", MAX_TEXT), "app.Order");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(short("abcd", 3), "abc…");
        assert_eq!(short("ééé", 2), "éé…");
        assert_eq!(short("", 0), "");
    }

    fn snapshot(objects: u64) -> Arc<Snapshot> {
        use heaplens_core::graph::{GraphBuilder, NodeFlags};
        let mut b = GraphBuilder::new();
        let t = b.intern_type("app", "Order", "Order");
        for i in 0..objects {
            let n = b.add_node(0x1000 + 64 * i);
            b.set_node(n, t, 56, NodeFlags::GC_TRACKED);
            b.end_node();
        }
        Arc::new(Snapshot::new(b.finish().unwrap()))
    }

    #[test]
    fn a_comparison_is_made_once_per_pair_of_snapshots() {
        let (first, second, third) = (snapshot(1), snapshot(3), snapshot(2));
        let a = diff_json(&first, &third);
        assert!(Arc::ptr_eq(&a, &diff_json(&first, &third)));
        assert_eq!(*a, compare(&first, &third));
        // Another earlier snapshot is another comparison.
        let b = diff_json(&second, &third);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(*b, compare(&second, &third));
    }

    #[test]
    fn thinning_keeps_each_stretchs_highest_value() {
        assert_eq!(thin(&[1, 2, 3], 5), vec![1, 2, 3]);
        assert_eq!(thin(&[1, 9, 2, 3, 7, 1], 3), vec![9, 3, 7]);
        assert_eq!(thin(&[1, 2, 3], 0), vec![1, 2, 3]);
        assert_eq!(thin(&(0..1000).collect::<Vec<u64>>(), 60).len(), 60);
    }
}
