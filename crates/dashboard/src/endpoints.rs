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
//! ([`endpoint_name`]: `/orders/123` → `/orders/{id}`), so one route is one row. The table keeps
//! at most [`MAX_ENDPOINTS`] rows (later endpoints are counted under [`OTHER_ENDPOINTS`]): a
//! crawler hitting random URLs cannot grow it without bound.
//!
//! What it is not: the measuring itself (the bindings take the censuses, holding the GIL), and
//! not exact under concurrency: a census counts every thread's objects, so a traced request that
//! overlapped other requests also counts what they did meanwhile. Such traces are counted as
//! `overlapped`, for the page to say how clean the figures are.

use crate::source::EndpointGrowth;
use heaplens_core::census::Census;
use std::collections::HashMap;

/// Most endpoints kept; requests to further endpoints are counted under [`OTHER_ENDPOINTS`].
pub const MAX_ENDPOINTS: usize = 200;
/// The row that collects endpoints past [`MAX_ENDPOINTS`].
pub const OTHER_ENDPOINTS: &str = "(other endpoints)";
/// Longest endpoint name kept, in bytes (cut on a character boundary).
pub const MAX_NAME: usize = 200;
/// Most path segments kept in a name made from a path.
const MAX_SEGMENTS: usize = 12;

/// What some traced requests left behind, added up.
#[derive(Debug, Default)]
struct Sums {
    traces: u64,
    objects: i64,
    bytes: i64,
    /// Type name → (count change, bytes change).
    types: HashMap<String, (i64, i64)>,
}

impl Sums {
    fn add(&mut self, before: &Census, after: &Census) {
        self.traces += 1;
        for d in after.diff(before) {
            self.objects = self.objects.saturating_add(d.count_delta);
            self.bytes = self.bytes.saturating_add(d.bytes_delta);
            let entry = self.types.entry(d.name).or_default();
            entry.0 = entry.0.saturating_add(d.count_delta);
            entry.1 = entry.1.saturating_add(d.bytes_delta);
        }
    }
}

/// One endpoint. Clean traces (no other request ran meanwhile) and overlapped ones are added up
/// apart: the figures shown are the clean ones, or the overlapped ones when there is no clean
/// one yet (then marked approximate).
#[derive(Debug, Default)]
struct Row {
    requests: u64,
    clean: Sums,
    overlapped: Sums,
}

/// The endpoints seen so far and what their traced requests left behind.
#[derive(Debug, Default)]
pub struct EndpointTable {
    rows: HashMap<String, Row>,
}

impl EndpointTable {
    pub fn new() -> EndpointTable {
        EndpointTable::default()
    }

    fn row(&mut self, endpoint: &str) -> &mut Row {
        let key = if self.rows.contains_key(endpoint) || self.rows.len() < MAX_ENDPOINTS {
            endpoint
        } else {
            OTHER_ENDPOINTS
        };
        if !self.rows.contains_key(key) {
            self.rows.insert(key.to_string(), Row::default());
        }
        self.rows.get_mut(key).expect("inserted above")
    }

    /// Counts one request that was not traced.
    pub fn record_request(&mut self, endpoint: &str) {
        self.row(endpoint).requests += 1;
    }

    /// Counts one traced request: `before` and `after` are censuses taken around it;
    /// `overlapped` says other requests ran meanwhile.
    pub fn record_trace(
        &mut self,
        endpoint: &str,
        before: &Census,
        after: &Census,
        overlapped: bool,
    ) {
        let row = self.row(endpoint);
        row.requests += 1;
        match overlapped {
            false => row.clean.add(before, after),
            true => row.overlapped.add(before, after),
        }
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every endpoint with its figures (see [`EndpointGrowth`]); each endpoint's types are those
    /// left behind (count up over the measured traces), most first, at most
    /// `types_per_endpoint` of them.
    pub fn growth(&self, types_per_endpoint: usize) -> Vec<EndpointGrowth> {
        let mut out: Vec<EndpointGrowth> = self
            .rows
            .iter()
            .map(|(name, row)| {
                let sums = match row.clean.traces {
                    0 => &row.overlapped,
                    _ => &row.clean,
                };
                let mut types: Vec<(String, i64)> = sums
                    .types
                    .iter()
                    .filter(|(_, &(count, _))| count > 0)
                    .map(|(name, &(count, _))| (name.clone(), count))
                    .collect();
                types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                types.truncate(types_per_endpoint);
                EndpointGrowth {
                    endpoint: name.clone(),
                    requests: row.requests,
                    traced: row.clean.traces + row.overlapped.traces,
                    overlapped: row.overlapped.traces,
                    measured: sums.traces,
                    objects: sums.objects,
                    bytes: sums.bytes,
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
    let method_ok =
        !method.is_empty() && method.len() <= 16 && method.bytes().all(|b| b.is_ascii_alphabetic());
    let mut name = String::with_capacity(64);
    name.push_str(if method_ok { method } else { "?" });
    name.push(' ');
    match route.filter(|r| !r.is_empty()) {
        Some(route) => name.push_str(route),
        None => {
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
        table.record_trace("POST /upload", &before, &after, false);
        table.record_trace("POST /upload", &before, &after, false);
        table.record_trace("POST /upload", &before, &after, true);
        table.record_request("POST /upload");
        table.record_request("GET /health");
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
            upload.types,
            vec![
                ("app.Doc".to_string(), 6),
                ("dict".to_string(), 6),
                ("list".to_string(), 2)
            ]
        );
    }

    #[test]
    fn overlapped_traces_are_shown_only_while_there_is_no_clean_one() {
        let mut table = EndpointTable::new();
        let before = census(&[("dict", 10, 100)]);
        let busy = census(&[("dict", 50, 500)]);
        let quiet = census(&[("dict", 11, 110)]);
        table.record_trace("GET /", &before, &busy, true);
        let row = &table.growth(10)[0];
        assert_eq!(
            (row.traced, row.overlapped, row.measured, row.objects),
            (1, 1, 1, 40)
        );
        table.record_trace("GET /", &before, &quiet, false);
        let row = &table.growth(10)[0];
        assert_eq!(
            (row.traced, row.overlapped, row.measured, row.objects),
            (2, 1, 1, 1)
        );
    }

    #[test]
    fn freed_types_are_not_listed_and_the_list_is_cut() {
        let mut table = EndpointTable::new();
        let before = census(&[("a", 10, 10), ("b", 10, 10), ("c", 10, 10)]);
        let after = census(&[("a", 4, 4), ("b", 12, 12), ("c", 11, 11)]);
        table.record_trace("GET /", &before, &after, false);
        let row = &table.growth(1)[0];
        assert_eq!(row.objects, -3);
        assert_eq!(row.types, vec![("b".to_string(), 2)]);
    }

    #[test]
    fn the_table_is_bounded_whatever_the_paths() {
        let mut table = EndpointTable::new();
        for i in 0..MAX_ENDPOINTS + 50 {
            table.record_request(&format!("GET /page-{i}"));
        }
        let rows = table.growth(10);
        assert_eq!(rows.len(), MAX_ENDPOINTS + 1);
        let other = rows.iter().find(|r| r.endpoint == OTHER_ENDPOINTS).unwrap();
        assert_eq!(other.requests, 50);
        // A known endpoint is still counted under its own name.
        table.record_request("GET /page-0");
        let rows = table.growth(10);
        assert_eq!(
            rows.iter()
                .find(|r| r.endpoint == "GET /page-0")
                .unwrap()
                .requests,
            2
        );
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
