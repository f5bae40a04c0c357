//! Every route's status codes and content types; downloads; HEAD.

use crate::support::*;
use heaplens_dashboard::{handle, Config, Request, Source};
use serde_json::Value;

#[test]
fn every_route_answers_with_its_status_and_type() {
    let s = file_source();
    let cases: &[(&str, u16, &str)] = &[
        ("/", 200, "text/html"),
        ("", 200, "text/html"),
        ("/assets/app.js", 200, "text/javascript"),
        ("/assets/app.css", 200, "text/css"),
        ("/api/info", 200, "application/json"),
        ("/api/overview", 200, "application/json"),
        ("/api/overview?limit=2", 200, "application/json"),
        ("/api/overview?limit=0", 400, "application/json"),
        ("/api/types/list", 200, "application/json"),
        ("/api/types/nothing", 404, "application/json"),
        ("/api/types/list?page=0", 400, "application/json"),
        ("/api/types/list?per_page=501", 400, "application/json"),
        ("/api/types/%ff", 400, "application/json"),
        ("/api/types?name=list", 200, "application/json"),
        ("/api/types?name=nothing", 404, "application/json"),
        ("/api/types?name=list&page=0", 400, "application/json"),
        ("/api/types?name=%ff", 400, "application/json"),
        ("/api/types", 400, "application/json"),
        ("/api/objects/0", 200, "application/json"),
        ("/api/objects/99999", 404, "application/json"),
        ("/api/objects/-1", 400, "application/json"),
        ("/api/objects/abc", 400, "application/json"),
        ("/api/objects/0/path.svg", 200, "image/svg+xml"),
        ("/api/chart.svg", 404, "application/json"),
        ("/api/diff", 404, "application/json"),
        ("/api/endpoints", 200, "application/json"),
        ("/metrics", 200, "text/plain; version=0.0.4"),
        ("/download/snapshot.hlsnap", 403, "application/json"),
        ("/download/snapshot.heapsnapshot", 403, "application/json"),
        ("/api/snapshot", 405, "application/json"),
        ("/api/info/", 404, "application/json"),
        ("/nope", 404, "application/json"),
        ("/../etc/passwd", 404, "application/json"),
        ("nope", 404, "application/json"),
    ];
    for &(target, status, content_type) in cases {
        let r = get(&s, target);
        assert_eq!(r.status, status, "{target}: {}", text(&r));
        let ct = r.header_value("Content-Type").unwrap();
        assert!(ct.starts_with(content_type), "{target}: {ct}");
        if ct.starts_with("application/json") {
            let v = json(&r);
            if status >= 400 {
                assert!(
                    v["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{target}"
                );
            }
        }
    }
    let r = get(&s, "/api/snapshot");
    assert_eq!(r.header_value("Allow"), Some("POST"));
    let r = handle(&Config::default(), &s, &Request::new("DELETE", "/api/info"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header_value("Allow"), Some("GET, HEAD"));
    let r = post_snapshot(&s);
    assert_eq!(r.status, 501, "a file source is read-only");
    let r = handle(&Config::default(), &s, &Request::new("HEAD", "/api/info"));
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn downloads_are_opt_in() {
    let s = file_source();
    let r = get(&s, "/download/snapshot.hlsnap");
    assert_eq!(r.status, 403);
    assert!(json(&r)["error"]
        .as_str()
        .unwrap()
        .contains("allow_downloads"));
    let config = Config {
        token: None,
        allow_downloads: true,
    };
    let r = handle(&config, &s, &Request::get("/download/snapshot.hlsnap"));
    assert_eq!(r.status, 200);
    assert!(r
        .header_value("Content-Disposition")
        .unwrap()
        .contains("heaplens-7.hlsnap"));
    let again = heaplens_core::snapfile::read(&r.body[..]).unwrap();
    assert_eq!(
        again.node_count(),
        s.snapshot().unwrap().graph().node_count()
    );
    let r = handle(
        &config,
        &s,
        &Request::get("/download/snapshot.heapsnapshot"),
    );
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["snapshot"].is_object());
    assert_eq!(
        json(&handle(&config, &s, &Request::get("/api/info")))["allow_downloads"],
        true
    );
}
