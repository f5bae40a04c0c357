//! Ten thousand random requests: no panic, a valid status, the security headers.

use crate::support::*;
use heaplens_dashboard::{handle, router, Config, Request, Source};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

#[test]
fn random_requests_never_panic_and_get_a_valid_status() {
    let pieces = [
        "",
        "/",
        "api",
        "types",
        "objects",
        "info",
        "overview",
        "chart.svg",
        "path.svg",
        "diff",
        "snapshot",
        "metrics",
        "download",
        "snapshot.hlsnap",
        "snapshot.heapsnapshot",
        "assets",
        "app.js",
        "app.css",
        "index.html",
        "..",
        ".",
        "%",
        "%2",
        "%zz",
        "%ff",
        "%C3%A9",
        "%00",
        "%2F",
        "0",
        "1",
        "2",
        "3",
        "-1",
        "4294967295",
        "4294967296",
        "99999999999999999999",
        "list",
        "dict",
        "app.%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "é",
        "\u{0}",
        "\n",
        "//",
        "?",
        "#",
        "+",
        " ",
    ];
    let queries = [
        "",
        "page=1",
        "page=0",
        "page=-5",
        "page=2&per_page=3",
        "per_page=100000",
        "limit=3",
        "limit=abc",
        "token=x",
        "=",
        "&&&",
        "page",
        "page=%",
        "page=%ff",
        "per_page=%31",
        "limit=18446744073709551616",
        "page=4294967296&per_page=500",
    ];
    let methods = [
        "GET", "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "get", "", "OPTIONS",
    ];
    let valid = [200, 400, 401, 403, 404, 405, 414, 500, 501];
    let live = Live::new();
    let file = file_source();
    let configs = [
        Config::default(),
        Config {
            token: Some("t".into()),
            allow_downloads: true,
        },
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..10_000 {
        let mut path = String::new();
        if rng.below(10) > 0 {
            path.push('/');
        }
        for k in 0..rng.below(6) {
            if k > 0 {
                path.push('/');
            }
            path.push_str(rng.pick(&pieces));
            if rng.below(20) == 0 {
                let c = char::from_u32(rng.next() as u32 % 0x3000).unwrap_or('x');
                path.push(c);
            }
        }
        let mut query = rng.pick(&queries).to_string();
        if rng.below(3) == 0 {
            query = format!("{query}&{}", rng.pick(&queries));
        }
        let mut req = Request::new(rng.pick(&methods), "");
        req.path = path;
        req.query = query;
        req.loopback = rng.below(4) > 0;
        if rng.below(3) == 0 {
            req.headers.push(("X-HeapLens".into(), "1".into()));
        }
        if rng.below(3) == 0 {
            let token = if rng.below(2) == 0 {
                "Bearer t"
            } else {
                "Bearer é\u{0}"
            };
            req.headers.push(("Authorization".into(), token.into()));
        }
        let config = &configs[rng.below(2)];
        // Mostly read-only sources, so the live one's snapshots stay few and small.
        let source: &dyn Source = if i % 50 == 0 { &live } else { &file };
        let routed = router::route(config, source, &req);
        assert!(
            valid.contains(&routed.status),
            "{req:?} -> {}",
            routed.status
        );
        assert_ne!(routed.status, 500, "{req:?}: {}", text(&routed));
        let r = handle(config, source, &req);
        assert!(valid.contains(&r.status), "{req:?} -> {}", r.status);
        assert!(r.header_value("Content-Security-Policy").is_some());
        *seen.entry(r.status).or_insert(0u32) += 1;
    }
    // The generator reaches past the security checks into the routes.
    for status in [200, 400, 401, 403, 404, 405] {
        assert!(seen.get(&status).is_some_and(|&n| n >= 20), "{seen:?}");
    }
}

#[test]
fn random_methods_paths_and_routes_make_short_clean_endpoint_names() {
    use heaplens_dashboard::endpoints::{endpoint_name, EndpointTable, MAX_NAME};
    let pieces = [
        "",
        "/",
        "GET",
        "post",
        "orders",
        "123",
        "é",
        "\u{0}",
        "\u{1b}[31m",
        "\u{202e}",
        "{id}",
        "9f1c2d3e-0b1a-4c5d",
        "?q=1",
        "#frag",
        "<script>",
        "%2F",
        "..",
        "a".repeat(300).leak(),
    ];
    let mut rng = Rng(0x5eed);
    let mut table = EndpointTable::new();
    for _ in 0..10_000 {
        let part = |rng: &mut Rng| {
            (0..rng.below(8))
                .map(|_| rng.pick(&pieces))
                .collect::<Vec<_>>()
                .join(if rng.below(2) == 0 { "/" } else { "" })
        };
        let (method, path, route) = (part(&mut rng), part(&mut rng), part(&mut rng));
        let route = (rng.below(3) == 0).then_some(route.as_str());
        let name = endpoint_name(&method, &path, route);
        assert!(name.len() <= MAX_NAME + '…'.len_utf8(), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        table.record_request(&name, false);
    }
    // However many names, the table stays bounded.
    assert!(table.growth(10).len() <= heaplens_dashboard::endpoints::MAX_ENDPOINTS + 1);
}
