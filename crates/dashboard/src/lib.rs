//! heaplens-dashboard: the heaplens web dashboard (Dozer's successor) as one pure function,
//! [`handle`]: an HTTP [`Request`] in, a [`Response`] out, over a data [`Source`] that is either a
//! live process or a snapshot file. The routing, the JSON API, the Prometheus metrics, the
//! security rules and the page itself (embedded, so it loads with no network) all live here, so
//! the WSGI middleware, the ASGI middleware and `heaplens serve` are thin hosts that only move
//! bytes, and all of them show the same page.
//!
//! What it is not: an HTTP server (no sockets, no parsing of the wire format, no threads, no
//! async), and it never touches Python. The hosts parse HTTP, strip the mount point, say whether
//! the client is on the loopback interface, and send back what [`handle`] returns. The live
//! [`Source`] (sampling history behind a mutex, taking snapshots) belongs to the bindings crate;
//! [`FileSource`], a loaded `.hlsnap`, is here.
//!
//! Design reasons: a pure function is tested and fuzzed with plain `cargo test` (every route,
//! every status code, every security rule, hostile strings), and one router means the live and
//! offline dashboards cannot drift apart. The API is specified in [`router`]; the page builds its
//! DOM with `textContent` only, because every string it shows (type names, labels, reprs) comes
//! from the heap being inspected and is attacker-controlled.
//!
//! ```
//! use heaplens_core::graph::{GraphBuilder, NodeFlags};
//! use heaplens_dashboard::{handle, Config, FileSource, Request};
//! let mut b = GraphBuilder::new();
//! let t = b.intern_type("app", "Order", "Order");
//! let n = b.add_node(0x1000);
//! b.set_node(n, t, 56, NodeFlags::GC_TRACKED);
//! b.end_node();
//! let source = FileSource::from_graph(b.finish().unwrap(), "after.hlsnap");
//! let response = handle(&Config::default(), &source, &Request::get("/api/overview"));
//! assert_eq!(response.status, 200);
//! let body = String::from_utf8(response.body).unwrap();
//! assert!(body.contains("app.Order"));
//! // Only loopback clients are answered unless a token is configured.
//! let mut remote = Request::get("/");
//! remote.loopback = false;
//! assert_eq!(handle(&Config::default(), &source, &remote).status, 403);
//! ```

pub mod api;
pub mod assets;
pub mod endpoints;
pub mod grafana;
pub mod metrics;
pub mod router;
pub mod security;
pub mod source;

pub use source::{ActionError, EndpointGrowth, FileSource, ProcessInfo, Snapshot, Source};

/// One HTTP request, as the host received it.
///
/// `path` is the path *below the mount point*, percent-encoded as it came on the wire and always
/// starting with `/`: with the middleware mounted at `/_heaplens`, a request for
/// `/_heaplens/api/info` arrives here as `/api/info`, and `/_heaplens/` as `/`. Keeping the mount
/// prefix out of the router means one router serves any mount point; the page uses relative
/// URLs only, so it works under any prefix. For the same reason a host should redirect the bare
/// mount point (`/_heaplens`, no slash) to `/_heaplens/`: relative URLs on a page at
/// `/_heaplens` resolve against `/`. (An empty path is answered like `/`.)
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `GET`, `POST`, ... (compared case-sensitively, as HTTP methods are).
    pub method: String,
    /// The path below the mount point, still percent-encoded (see above).
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: String,
    /// Header names and values; names are matched case-insensitively.
    pub headers: Vec<(String, String)>,
    /// Whether the client connected from a loopback address (127.0.0.0/8, ::1). The host decides:
    /// behind a reverse proxy every client looks local, which is why a token can be required.
    pub loopback: bool,
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` from a loopback client; `target` may carry a query (`/api/types/dict?page=2`).
    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// A request from a loopback client with no headers and no body.
    pub fn new(method: &str, target: &str) -> Request {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            loopback: true,
            body: Vec::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// The value of the first of `headers` called `name` (header names are case-insensitive).
fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The answer: status, headers (security headers included), body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a `Content-Type`.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        // Serialising a `Value` cannot fail (its map keys are strings).
        let text = serde_json::to_string(value).unwrap_or_default();
        Response::new(
            status,
            "application/json; charset=utf-8",
            html_safe(&text).into_bytes(),
        )
    }

    /// A JSON error: `{"error": message, "status": status}`.
    pub fn error(status: u16, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "error": message, "status": status }),
        )
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// JSON text with `<`, `>`, `&` and the JavaScript line separators U+2028/U+2029 written as
/// `\uXXXX` escapes. They can only occur inside JSON strings, where the escape means the same
/// character, so the value is unchanged; but no answer then contains a tag or an entity,
/// whatever a browser (or a proxy's error page) takes it for.
pub fn html_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// How the dashboard is configured by whoever mounts it.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// When set, every request must carry this token (see [`security`]), and clients that are
    /// not on the loopback interface are answered.
    pub token: Option<String>,
    /// Whether the snapshot may be downloaded (`.hlsnap`, Chrome `.heapsnapshot`). Off by
    /// default: a snapshot holds every string of the process.
    pub allow_downloads: bool,
}

/// A configured token as requests are compared with it: without surrounding whitespace (a
/// token read from a file or an environment variable often ends in a newline, and clients
/// send it trimmed). An empty token is none; one of whitespace only is refused, as it would
/// lock everyone out or, trimmed to nothing, silently turn the token off.
pub fn configured_token(token: Option<&str>) -> Result<Option<String>, String> {
    match token {
        None | Some("") => Ok(None),
        Some(t) if t.trim().is_empty() => Err("the token is only whitespace".into()),
        Some(t) => Ok(Some(t.trim().to_string())),
    }
}

/// Answers one request. Pure apart from what `source` does, and never panics: a bug that
/// panics in a route anyway is caught here and answered with a 500, so a host process is never
/// brought down by its dashboard. Every response carries the security headers of
/// [`security::HEADERS`].
pub fn handle(config: &Config, source: &dyn Source, req: &Request) -> Response {
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match security::check(config, req) {
            Some(refusal) => refusal,
            None => {
                let mut response = router::route(config, source, req);
                security::remember_token(config, req, &mut response);
                response
            }
        }
    }));
    let mut response =
        answer.unwrap_or_else(|_| Response::error(500, "internal error in the dashboard"));
    if req.method == "HEAD" {
        response.body.clear();
    }
    security::add_headers(&mut response);
    response
}
