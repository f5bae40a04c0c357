//! The routes: which path and method gets which answer. This table is the API's specification.
//!
//! Paths are below the mount point (see [`crate::Request`]). Every JSON answer is an object;
//! every error is `{"error": "<what went wrong>", "status": <code>}`. Names in paths are
//! percent-encoded UTF-8 (`/api/types/app.Order`, `/api/types/%3Cscript%3E`).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/` | the page (`index.html`) |
//! | GET | `/assets/app.js`, `/assets/app.css` | the page's script and style |
//! | GET | `/api/info` | the process: pid, program, Python version, live or file, RSS, what is available |
//! | GET | `/api/overview?limit=` | totals, memory (RSS vs Python bytes, native growth), types: census and trends, steady growers first ([`crate::api::overview`]) |
//! | GET | `/api/types/<name>?page=&per_page=&group=` | a type's count over time, what holds its instances (grouped by holder) and its instances, largest retained size first, paged: all of them, or the ones of one holder's `group` ([`crate::api::type_page`]) |
//! | GET | `/api/types?name=<name>&page=&per_page=` | the same, with the name in the query: servers decode `%2F` in paths before the host sees them, so a type name with a `/` only survives there (the page uses this form) |
//! | GET | `/api/objects/<id>` | one object (`id`: its node number): referrers and referents with labels, retaining path, retained size ([`crate::api::object_page`]) |
//! | GET | `/api/objects/<id>/path.svg` | a picture of the object's retaining path |
//! | GET | `/api/report?limit=` | the snapshot's report: the biggest retainers with their retaining paths, and the cyclic garbage ([`crate::api::report`]) |
//! | GET | `/api/chart.svg` | the growth chart of the history (404 without one) |
//! | GET | `/api/endpoints` | growth per endpoint from the host's trace mode: `{tracing, endpoints}` |
//! | GET | `/api/diff` | the previous snapshot compared with the current one: what grew, leak suspects |
//! | POST | `/api/snapshot` | takes a snapshot now (header `X-HeapLens: 1` required; 501 offline) |
//! | GET | `/metrics` | Prometheus text format ([`crate::metrics`]) |
//! | GET | `/download/snapshot.hlsnap`, `/download/snapshot.heapsnapshot` | the snapshot, as a heaplens file or for Chrome DevTools (403 unless downloads are allowed) |
//!
//! `HEAD` is answered like `GET` without a body. A known path asked with another method is a 405
//! with an `Allow` header; an unknown path a 404; a malformed id, name or number a 400.

use crate::{api, assets, metrics, Config, Request, Response, Source};

/// How many bytes of a path or query the router looks at; longer ones are refused (414).
pub const MAX_TARGET: usize = 8192;

/// Answers a request that passed the security checks.
pub fn route(config: &Config, source: &dyn Source, req: &Request) -> Response {
    if req.path.len() + req.query.len() > MAX_TARGET {
        return Response::error(414, "the request's path and query are too long");
    }
    let path = if req.path.is_empty() { "/" } else { &req.path };
    let Some(rest) = path.strip_prefix('/') else {
        return Response::error(404, "no such page: paths start with '/'");
    };
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    for s in raw {
        match percent_decode(s, false) {
            Some(s) => segments.push(s),
            None => return Response::error(400, "the path is not valid percent-encoded UTF-8"),
        }
    }
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let post = req.method == "POST";
    let q = &req.query;
    match segs.as_slice() {
        [""] | ["index.html"] if get => assets::index(),
        ["assets", "app.js"] if get => assets::script(),
        ["assets", "app.css"] if get => assets::style(),
        ["api", "info"] if get => api::info(config, source),
        ["api", "overview"] if get => match number(q, "limit", 200, 1, 10_000) {
            Ok(limit) => api::overview(source, limit),
            Err(e) => e,
        },
        ["api", "types", name] if get => type_page(source, name, q),
        ["api", "types"] if get => {
            let Some(name) = query_param(q, "name") else {
                return Response::error(
                    400,
                    "which type? `name=` is missing (or not valid percent-encoded UTF-8)",
                );
            };
            type_page(source, &name, q)
        }
        ["api", "objects", id] if get => match node_id(id) {
            Ok(id) => api::object_page(source, id),
            Err(e) => e,
        },
        ["api", "objects", id, "path.svg"] if get => match node_id(id) {
            Ok(id) => api::path_picture(source, id),
            Err(e) => e,
        },
        ["api", "report"] if get => match number(q, "limit", 10, 1, 100) {
            Ok(limit) => api::report(source, limit),
            Err(e) => e,
        },
        ["api", "chart.svg"] if get => api::chart(source),
        ["api", "diff"] if get => api::diff(source),
        ["api", "endpoints"] if get => api::endpoints(source),
        ["api", "snapshot"] if post => api::take_snapshot(source),
        ["metrics"] if get => metrics::response(source),
        ["download", "snapshot.hlsnap"] if get => api::download(config, source, false),
        ["download", "snapshot.heapsnapshot"] if get => api::download(config, source, true),
        // Known paths asked with the wrong method.
        [""]
        | ["index.html"]
        | ["assets", "app.js" | "app.css"]
        | ["api", "info" | "overview" | "report" | "chart.svg" | "diff" | "endpoints"]
        | ["api", "types"]
        | ["api", "types", _]
        | ["api", "objects", _]
        | ["api", "objects", _, "path.svg"]
        | ["metrics"]
        | ["download", "snapshot.hlsnap" | "snapshot.heapsnapshot"] => {
            Response::error(405, "this page only answers GET").with_header("Allow", "GET, HEAD")
        }
        ["api", "snapshot"] => Response::error(
            405,
            "taking a snapshot changes state: POST to it, with the header `X-HeapLens: 1`",
        )
        .with_header("Allow", "POST"),
        _ => Response::error(404, "no such page"),
    }
}

/// A node id from the path: a decimal number (range-checked against the snapshot later).
fn node_id(text: &str) -> Result<u32, Response> {
    let valid = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u32>() {
        Ok(id) if valid => Ok(id),
        _ => Err(Response::error(
            400,
            "an object id is a number (the id shown on the type page)",
        )),
    }
}

/// A number from the query, `default` when absent, a 400 when malformed or outside `min..=max`.
/// `/api/types/<name>?page=&per_page=&group=`: a type's page, or the instances one holder keeps
/// (`group`, from the page's `held_by`).
fn type_page(source: &dyn Source, name: &str, q: &str) -> Response {
    let page = number(q, "page", 1, 1, u32::MAX as usize);
    let per_page = number(q, "per_page", 50, 1, 500);
    let group = match query_param(q, "group") {
        None => Ok(None),
        Some(_) => number(q, "group", 0, 0, u32::MAX as usize - 1).map(|g| Some(g as u32)),
    };
    match (page, per_page, group) {
        (Ok(page), Ok(per_page), Ok(group)) => api::type_page(source, name, page, per_page, group),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => e,
    }
}

fn number(
    query: &str,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, Response> {
    let Some(text) = query_param(query, name) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Response::error(
            400,
            &format!("`{name}` must be a whole number from {min} to {max}"),
        )),
    }
}

/// The decoded value of the first `name=value` pair of a query string (`+` is a space), or
/// `None` when absent or not valid percent-encoded UTF-8.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| percent_decode(k, true).as_deref() == Some(name))
        .and_then(|(_, v)| percent_decode(v, true))
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set); `None` for a malformed escape
/// or bytes that are not UTF-8.
pub fn percent_decode(text: &str, plus: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_and_bad_ones_are_refused() {
        assert_eq!(percent_decode("a%3Cb%3e", false).as_deref(), Some("a<b>"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("%", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%ff", false), None, "not UTF-8");
        assert_eq!(percent_decode("%C3%A9", false).as_deref(), Some("é"));
    }

    #[test]
    fn query_parameters_are_found_by_decoded_name() {
        let q = "a=1&page=2&page=3&flag&x%20y=z+w";
        assert_eq!(query_param(q, "page").as_deref(), Some("2"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "x y").as_deref(), Some("z w"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("", "a"), None);
    }

    #[test]
    fn numbers_are_checked() {
        assert_eq!(number("", "page", 1, 1, 10).unwrap(), 1);
        assert_eq!(number("page=10", "page", 1, 1, 10).unwrap(), 10);
        for bad in [
            "page=0", "page=11", "page=-1", "page=x", "page=", "page=1e3",
        ] {
            assert_eq!(number(bad, "page", 1, 1, 10).unwrap_err().status, 400);
        }
        assert_eq!(node_id("12").unwrap(), 12);
        for bad in ["", "-1", "+1", "1.0", "4294967296", "0x10", "99999999999"] {
            assert_eq!(node_id(bad).unwrap_err().status, 400, "{bad}");
        }
    }
}
