//! Per-endpoint growth: what requests to each endpoint leave behind, from the hosts' trace mode.
//!
//! A host in trace mode takes a census before and after 1 request in N and hands both to
//! [`EndpointTable::record_trace`]; every other request is only counted
//! ([`EndpointTable::record_request`]). The table adds up, per endpoint, the objects and bytes
//! the traced requests left behind and the change of every type, so the dashboard can say
//! "POST /upload leaves 3 DocumentValidationError behind per call".
//!
//! Endpoints are named by the route the framework matched when the host knows it
//! (`GET /orders/<int:id>`), else by the path with its identifier-looking segments replaced
//! ([`endpoint_name`]: `/orders/123` → `/orders/{id}`), so one route is one row; requests the
//! framework found no route for (a 404) share one row per method ([`not_found_name`]). The
//! table keeps at most [`MAX_ENDPOINTS`] rows: a crawler hitting random URLs cannot grow it
//! without bound, nor push out the routes that matter (rows named by a path are evicted first,
//! least requested first, into [`OTHER_ENDPOINTS`]).
//!
//! What it is not: the measuring itself (the bindings take the censuses, holding the GIL), and
//! not exact under concurrency: a census counts every thread's objects, so a traced request that
//! overlapped other requests also counts what they did meanwhile. Such traces are counted as
//! `overlapped`, for the page to say how clean the figures are.

use crate::source::EndpointGrowth;
use heaplens_core::analysis::ranking::is_generic;
use heaplens_core::census::Census;
use std::collections::{HashMap, VecDeque};

/// Most endpoints kept; requests to further endpoints are counted under [`OTHER_ENDPOINTS`].
pub const MAX_ENDPOINTS: usize = 200;
/// The row that collects endpoints past [`MAX_ENDPOINTS`].
pub const OTHER_ENDPOINTS: &str = "(other endpoints)";
/// Longest endpoint name kept, in bytes (cut on a character boundary).
pub const MAX_NAME: usize = 200;
/// Most path segments kept in a name made from a path.
const MAX_SEGMENTS: usize = 12;

/// Most recent traces an endpoint's per-request figures are estimated from (clean and
/// overlapped traces apart).
pub const WINDOW: usize = 50;
/// The share of those traces dropped at each end before averaging: one trace that also counted
/// something else (an import, a background thread's burst between two requests) does not make an
/// endpoint look like it leaks, while a leak in a fifth of the requests still shows.
pub const TRIM: f64 = 0.1;
/// Most type names remembered; types past it are counted as [`OTHER_TYPES`] (a program making
/// a class per request cannot grow the table without bound).
pub const MAX_TYPES: usize = 100_000;
/// The name that collects types past [`MAX_TYPES`].
pub const OTHER_TYPES: &str = "(other types)";

/// What one traced request left behind: the change of each type that changed (by type index;
/// an index may appear twice, for [`OTHER_TYPES`]).
#[derive(Debug)]
struct Trace {
    objects: i64,
    bytes: i64,
    types: Vec<(u32, i64)>,
}

/// Traced requests of one kind (clean or overlapped) to one endpoint: totals over all of them,
/// and the most recent ones.
#[derive(Debug, Default)]
struct Traces {
    count: u64,
    objects: i64,
    bytes: i64,
    recent: VecDeque<Trace>,
}

/// The mean of `values` without the [`TRIM`] share at each end (sorts `values`).
fn trimmed_mean(values: &mut [i64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let cut = (values.len() as f64 * TRIM) as usize;
    let kept = &values[cut..values.len() - cut];
    kept.iter().map(|&v| v as f64).sum::<f64>() / kept.len() as f64
}

impl Traces {
    fn add(&mut self, trace: Trace) {
        self.count += 1;
        self.objects = self.objects.saturating_add(trace.objects);
        self.bytes = self.bytes.saturating_add(trace.bytes);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(trace);
    }

    /// Objects and bytes per request, and each type's count per request, as trimmed means over
    /// the recent traces (a type that did not change in a trace counts 0 there).
    fn per_request(&self) -> (f64, f64, Vec<(u32, f64)>) {
        let mut objects: Vec<i64> = self.recent.iter().map(|t| t.objects).collect();
        let mut bytes: Vec<i64> = self.recent.iter().map(|t| t.bytes).collect();
        // Each changed type's count in every recent trace (0 where it did not change), built in
        // one pass over the traces.
        let mut counts: HashMap<u32, Vec<i64>> = HashMap::new();
        for (i, trace) in self.recent.iter().enumerate() {
            for &(ty, c) in &trace.types {
                let count = &mut counts
                    .entry(ty)
                    .or_insert_with(|| vec![0; self.recent.len()])[i];
                *count = count.saturating_add(c);
            }
        }
        let types = counts
            .into_iter()
            .map(|(ty, mut values)| (ty, trimmed_mean(&mut values)))
            .collect();
        (trimmed_mean(&mut objects), trimmed_mean(&mut bytes), types)
    }
}

/// One endpoint. Clean traces (no other request ran meanwhile) and overlapped ones are kept
/// apart: the figures shown are the clean ones, or the overlapped ones while there is no clean
/// one (then marked approximate).
#[derive(Debug, Default)]
struct Row {
    requests: u64,
    clean: Traces,
    overlapped: Traces,
    /// Named by the route the framework matched (kept when the table is full), rather than by
    /// the path (evicted first).
    routed: bool,
}

/// The endpoints seen so far and what their traced requests left behind.
#[derive(Debug, Default)]
pub struct EndpointTable {
    rows: HashMap<String, Row>,
    type_names: Vec<String>,
    type_index: HashMap<String, u32>,
}

impl EndpointTable {
    pub fn new() -> EndpointTable {
        EndpointTable::default()
    }

    /// The row of `endpoint`. When the table is full, a new endpoint takes the place of the
    /// least requested one named by its path (a crawler's made-up URLs), whose requests go to
    /// [`OTHER_ENDPOINTS`]; routes the framework matched are never evicted, and when only they
    /// are left, the new endpoint is counted under [`OTHER_ENDPOINTS`].
    fn row(&mut self, endpoint: &str, routed: bool) -> &mut Row {
        if !self.rows.contains_key(endpoint) {
            let key = if self.rows.len() < MAX_ENDPOINTS || self.evict_one() {
                endpoint
            } else {
                OTHER_ENDPOINTS
            };
            if !self.rows.contains_key(key) {
                let row = Row {
                    routed: routed && key == endpoint,
                    ..Row::default()
                };
                self.rows.insert(key.to_string(), row);
            }
            return self.rows.get_mut(key).expect("inserted above");
        }
        self.rows.get_mut(endpoint).expect("checked above")
    }

    /// Evicts the least requested row named by a path (ties: the first name), counting its
    /// requests under [`OTHER_ENDPOINTS`]; false when there is none.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .rows
            .iter()
            .filter(|(name, row)| !row.routed && name.as_str() != OTHER_ENDPOINTS)
            .min_by(|a, b| a.1.requests.cmp(&b.1.requests).then(a.0.cmp(b.0)))
            .map(|(name, _)| name.clone());
        let Some(victim) = victim else {
            return false;
        };
        let gone = self.rows.remove(&victim).expect("found above");
        let other = self.rows.entry(OTHER_ENDPOINTS.to_string()).or_default();
        other.requests += gone.requests;
        // The other row itself takes a place: one more must go when it was just made.
        self.rows.len() < MAX_ENDPOINTS || self.evict_one()
    }

    fn type_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.type_index.get(name) {
            return id;
        }
        let name = if self.type_names.len() < MAX_TYPES {
            name
        } else {
            OTHER_TYPES
        };
        if let Some(&id) = self.type_index.get(name) {
            return id;
        }
        let id = self.type_names.len() as u32;
        self.type_names.push(name.to_string());
        self.type_index.insert(name.to_string(), id);
        id
    }

    /// Counts one request that was not traced; `routed` says the endpoint is a route the
    /// framework matched (see [`EndpointTable::row`]).
    pub fn record_request(&mut self, endpoint: &str, routed: bool) {
        self.row(endpoint, routed).requests += 1;
    }

    /// Counts one traced request: `before` and `after` are censuses taken around it;
    /// `overlapped` says other requests ran meanwhile.
    pub fn record_trace(
        &mut self,
        endpoint: &str,
        routed: bool,
        before: &Census,
        after: &Census,
        overlapped: bool,
    ) {
        let mut trace = Trace {
            objects: 0,
            bytes: 0,
            types: Vec::new(),
        };
        for d in after.diff(before) {
            trace.objects = trace.objects.saturating_add(d.count_delta);
            trace.bytes = trace.bytes.saturating_add(d.bytes_delta);
            if d.count_delta != 0 {
                // (Types past MAX_TYPES share an id: `per_request` adds them up.)
                let id = self.type_id(&d.name);
                trace.types.push((id, d.count_delta));
            }
        }
        let row = self.row(endpoint, routed);
        row.requests += 1;
        match overlapped {
            false => row.clean.add(trace),
            true => row.overlapped.add(trace),
        }
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every endpoint with its figures (see [`EndpointGrowth`]); each endpoint's types are those
    /// left behind (more than 0 per request), classes first, then builtins, each most first, at
    /// most `types_per_endpoint` of them.
    pub fn growth(&self, types_per_endpoint: usize) -> Vec<EndpointGrowth> {
        let mut out: Vec<EndpointGrowth> = self
            .rows
            .iter()
            .map(|(name, row)| {
                let traces = match row.clean.count {
                    0 => &row.overlapped,
                    _ => &row.clean,
                };
                let (objects_per_request, bytes_per_request, per_type) = traces.per_request();
                let mut types: Vec<(String, f64)> = per_type
                    .into_iter()
                    .filter(|&(_, n)| n > 0.0)
                    .map(|(ty, n)| (self.type_names[ty as usize].clone(), n))
                    .collect();
                // The one ranking rule: the classes the requests leave behind before the
                // builtins that come with them, each most per request first.
                types.sort_by(|a, b| {
                    is_generic(&a.0)
                        .cmp(&is_generic(&b.0))
                        .then(b.1.total_cmp(&a.1))
                        .then_with(|| a.0.cmp(&b.0))
                });
                types.truncate(types_per_endpoint);
                EndpointGrowth {
                    endpoint: name.clone(),
                    requests: row.requests,
                    traced: row.clean.count + row.overlapped.count,
                    overlapped: row.overlapped.count,
                    measured: traces.recent.len() as u64,
                    objects: traces.objects,
                    bytes: traces.bytes,
                    objects_per_request,
                    bytes_per_request,
                    types,
                }
            })
            .collect();
        out.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        out
    }
}

/// The name of an endpoint: `METHOD route` when the framework's matched route is known
/// (`route`, such as Flask's `/orders/<int:id>` or Starlette's `/orders/{id}`), else
/// `METHOD path` with every segment that looks like an identifier (a number, a UUID, a long hex
/// or mixed letters-and-digits token) replaced by `{id}`. Names are cut to [`MAX_NAME`] bytes,
/// control characters become `?`, an odd method becomes `?`.
///
/// ```
/// use heaplens_dashboard::endpoints::endpoint_name;
/// assert_eq!(endpoint_name("GET", "/orders/123/items", None), "GET /orders/{id}/items");
/// assert_eq!(endpoint_name("POST", "/upload", None), "POST /upload");
/// assert_eq!(endpoint_name("GET", "/orders/7", Some("/orders/<int:id>")), "GET /orders/<int:id>");
/// assert_eq!(
///     endpoint_name("GET", "/u/9f1c2d3e-0b1a-4c5d-8e9f-a0b1c2d3e4f5", None),
///     "GET /u/{id}"
/// );
/// ```
pub fn endpoint_name(method: &str, path: &str, route: Option<&str>) -> String {
    endpoint_name_of(method, Some(path), route)
}

/// The row of requests the application answered 404 without a route: one per method, whatever
/// their paths (`/wp-admin/.env`, `/.git/config`: a scanner's, not endpoints).
///
/// ```
/// use heaplens_dashboard::endpoints::not_found_name;
/// assert_eq!(not_found_name("GET"), "GET (no route: 404)");
/// ```
pub fn not_found_name(method: &str) -> String {
    endpoint_name_of(method, None, None)
}

fn endpoint_name_of(method: &str, path: Option<&str>, route: Option<&str>) -> String {
    let method_ok =
        !method.is_empty() && method.len() <= 16 && method.bytes().all(|b| b.is_ascii_alphabetic());
    let mut name = String::with_capacity(64);
    name.push_str(if method_ok { method } else { "?" });
    name.push(' ');
    match (route.filter(|r| !r.is_empty()), path) {
        (Some(route), _) => name.push_str(route),
        (None, None) => name.push_str("(no route: 404)"),
        (None, Some(path)) => {
            let path = path.split(['?', '#']).next().unwrap_or("");
            let segments: Vec<&str> = path.split('/').skip(1).collect();
            if segments.is_empty() {
                name.push('/');
            }
            for (i, segment) in segments.iter().enumerate() {
                if i == MAX_SEGMENTS {
                    name.push_str("/…");
                    break;
                }
                name.push('/');
                name.push_str(if looks_like_an_id(segment) {
                    "{id}"
                } else {
                    segment
                });
            }
        }
    }
    let mut clean: String = name
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.len() > MAX_NAME {
        let mut at = MAX_NAME;
        while !clean.is_char_boundary(at) {
            at -= 1;
        }
        clean.truncate(at);
        clean.push('…');
    }
    clean
}

/// A path segment that names one object rather than a route: all digits, a UUID, a long hex
/// string, or a long token mixing letters and digits (a slug such as `v2` or `page-1` is kept).
fn looks_like_an_id(segment: &str) -> bool {
    if segment.is_empty() {
        return false;
    }
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    if digits == segment.len() {
        return true;
    }
    let hex_or_dash = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if hex_or_dash && digits > 0 && segment.len() >= 8 {
        return true; // UUIDs, hashes, hex ids
    }
    // Long tokens with many digits (base64 ids, "ord_8f3k29x0z"), and anything very long.
    (segment.len() >= 16 && digits >= 3) || segment.len() > 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplens_core::census::TypeStat;

    fn census(rows: &[(&str, u64, u64)]) -> Census {
        Census::from_rows(
            rows.iter().map(|&(name, count, bytes)| TypeStat {
                name: name.to_string(),
                short_name: name.to_string(),
                long_name: name.to_string(),
                count,
                bytes,
                approximate_size: false,
            }),
            true,
        )
    }

    #[test]
    fn a_traced_request_adds_what_it_left_behind_and_untraced_ones_are_only_counted() {
        let mut table = EndpointTable::new();
        let before = census(&[("dict", 100, 10_000), ("app.Doc", 5, 280)]);
        let after = census(&[("dict", 103, 10_300), ("app.Doc", 8, 448), ("list", 1, 56)]);
        table.record_trace("POST /upload", true, &before, &after, false);
        table.record_trace("POST /upload", true, &before, &after, false);
        table.record_trace("POST /upload", true, &before, &after, true);
        table.record_request("POST /upload", true);
        table.record_request("GET /health", true);
        let rows = table.growth(10);
        assert_eq!(rows.len(), 2);
        let health = &rows[0];
        assert_eq!(
            (health.endpoint.as_str(), health.requests, health.traced),
            ("GET /health", 1, 0)
        );
        let upload = &rows[1];
        assert_eq!(
            (upload.requests, upload.traced, upload.overlapped),
            (4, 3, 1)
        );
        // The overlapped trace is not added to the clean ones.
        assert_eq!(upload.measured, 2);
        assert_eq!((upload.objects, upload.bytes), (14, 2 * (300 + 168 + 56)));
        assert_eq!(
            (upload.objects_per_request, upload.bytes_per_request),
            (7.0, 524.0)
        );
        assert_eq!(
            upload.types,
            vec![
                ("app.Doc".to_string(), 3.0),
                ("dict".to_string(), 3.0),
                ("list".to_string(), 1.0)
            ]
        );
    }

    #[test]
    fn overlapped_traces_are_shown_only_while_there_is_no_clean_one() {
        let mut table = EndpointTable::new();
        let before = census(&[("dict", 10, 100)]);
        let busy = census(&[("dict", 50, 500)]);
        let quiet = census(&[("dict", 11, 110)]);
        table.record_trace("GET /", true, &before, &busy, true);
        let row = &table.growth(10)[0];
        assert_eq!(
            (row.traced, row.overlapped, row.measured, row.objects),
            (1, 1, 1, 40)
        );
        table.record_trace("GET /", true, &before, &quiet, false);
        let row = &table.growth(10)[0];
        assert_eq!(
            (row.traced, row.overlapped, row.measured, row.objects),
            (2, 1, 1, 1)
        );
    }

    #[test]
    fn one_trace_that_counted_something_else_does_not_make_an_endpoint_leak() {
        let mut table = EndpointTable::new();
        let before = census(&[("dict", 100, 1000), ("app.Doc", 0, 0)]);
        let leak = census(&[("dict", 100, 1000), ("app.Doc", 3, 168)]);
        let import = census(&[("dict", 20_100, 201_000), ("function", 9000, 0)]);
        for _ in 0..19 {
            table.record_trace("POST /upload", true, &before, &leak, false);
        }
        table.record_trace("POST /upload", true, &before, &import, false);
        let row = &table.growth(10)[0];
        // The outlier is trimmed: 3 objects per request, all of them app.Doc.
        assert_eq!(row.objects_per_request, 3.0);
        assert_eq!(row.types, vec![("app.Doc".to_string(), 3.0)]);
        // A leak in a fifth of the requests still shows (trimmed means, not medians).
        let mut table = EndpointTable::new();
        for i in 0..WINDOW {
            let after = if i % 5 == 0 { &leak } else { &before };
            table.record_trace("POST /upload", true, &before, after, false);
        }
        let row = &table.growth(10)[0];
        assert!(row.types[0].1 > 0.3, "{:?}", row.types);
        // The estimate follows the most recent traces; the totals count every trace.
        for _ in 0..WINDOW {
            table.record_trace("POST /upload", true, &before, &before, false);
        }
        let row = &table.growth(10)[0];
        assert_eq!(
            (row.measured, row.traced),
            (WINDOW as u64, 2 * WINDOW as u64)
        );
        assert_eq!(row.objects_per_request, 0.0);
        assert_eq!(row.objects, 3 * (WINDOW as i64 / 5));
    }

    #[test]
    fn the_class_left_behind_comes_before_its_payload() {
        let mut table = EndpointTable::new();
        let before = census(&[("dict", 10, 10), ("str", 10, 10), ("app.Quote", 1, 1)]);
        let after = census(&[("dict", 30, 30), ("str", 50, 50), ("app.Quote", 11, 11)]);
        table.record_trace("POST /quote", true, &before, &after, false);
        let names: Vec<String> = table.growth(3)[0]
            .types
            .iter()
            .map(|t| t.0.clone())
            .collect();
        assert_eq!(names, ["app.Quote", "str", "dict"]);
    }

    #[test]
    fn freed_types_are_not_listed_and_the_list_is_cut() {
        let mut table = EndpointTable::new();
        let before = census(&[("a", 10, 10), ("b", 10, 10), ("c", 10, 10)]);
        let after = census(&[("a", 4, 4), ("b", 12, 12), ("c", 11, 11)]);
        table.record_trace("GET /", true, &before, &after, false);
        let row = &table.growth(1)[0];
        assert_eq!(row.objects, -3);
        assert_eq!(row.types, vec![("b".to_string(), 2.0)]);
    }

    #[test]
    fn the_table_is_bounded_and_scanners_cannot_push_out_the_routes() {
        let mut table = EndpointTable::new();
        let routes: Vec<String> = (0..5).map(|i| format!("GET /route-{i}/<int:id>")).collect();
        for route in &routes {
            for _ in 0..10 {
                table.record_request(route, true);
            }
        }
        // A scanner: 250 made-up paths the application answers without a route.
        for i in 0..MAX_ENDPOINTS + 50 {
            table.record_request(&format!("GET /wp-{i}/.env"), false);
        }
        let rows = table.growth(10);
        assert_eq!(rows.len(), MAX_ENDPOINTS);
        let requests = |rows: &[EndpointGrowth], name: &str| {
            rows.iter().find(|r| r.endpoint == name).map(|r| r.requests)
        };
        for route in &routes {
            assert_eq!(requests(&rows, route), Some(10), "{route}");
        }
        let total: u64 = rows.iter().map(|r| r.requests).sum();
        assert_eq!(
            total,
            5 * 10 + MAX_ENDPOINTS as u64 + 50,
            "no request is lost"
        );
        assert!(requests(&rows, OTHER_ENDPOINTS).unwrap() > 0);
        // A route seen for the first time after the scan still gets its own row.
        table.record_request("POST /checkout", true);
        table.record_request(&routes[0], true);
        let rows = table.growth(10);
        assert_eq!(rows.len(), MAX_ENDPOINTS);
        assert_eq!(requests(&rows, "POST /checkout"), Some(1));
        assert_eq!(requests(&rows, &routes[0]), Some(11));
    }

    #[test]
    fn when_only_routes_are_left_a_new_endpoint_counts_as_other() {
        let mut table = EndpointTable::new();
        for i in 0..MAX_ENDPOINTS {
            table.record_request(&format!("GET /r{i}"), true);
        }
        table.record_request("GET /one-more", true);
        let rows = table.growth(10);
        assert_eq!(rows.len(), MAX_ENDPOINTS + 1);
        assert!(rows
            .iter()
            .any(|r| r.endpoint == OTHER_ENDPOINTS && r.requests == 1));
    }

    #[test]
    fn identifiers_in_paths_become_placeholders_and_route_names_stay() {
        let cases = [
            ("/", "GET /"),
            ("", "GET /"),
            ("/orders/42", "GET /orders/{id}"),
            ("/orders/42/", "GET /orders/{id}/"),
            ("/v2/items", "GET /v2/items"),
            ("/page-1", "GET /page-1"),
            ("/blob/deadbeef01", "GET /blob/{id}"),
            ("/blob/deadbeef", "GET /blob/deadbeef"),
            ("/t/ord_8f3k29x0z7q1m2n", "GET /t/{id}"),
            ("/search?q=1", "GET /search"),
        ];
        for (path, want) in cases {
            assert_eq!(endpoint_name("GET", path, None), want, "{path}");
        }
        assert_eq!(endpoint_name("GET", "/x", Some("")), "GET /x");
    }

    #[test]
    fn hostile_names_are_cut_and_cleaned() {
        let long = format!("/{}", "a/".repeat(500));
        let name = endpoint_name("GET", &long, None);
        assert!(name.ends_with("/…"), "{name}");
        let name = endpoint_name("G\u{0}T", "/é\u{1b}[31m", None);
        assert_eq!(name, "? /é?[31m");
        let route = "é".repeat(300);
        let name = endpoint_name("GET", "/", Some(&route));
        assert!(name.len() <= MAX_NAME + '…'.len_utf8());
        assert!(name.ends_with('…'));
    }
}
