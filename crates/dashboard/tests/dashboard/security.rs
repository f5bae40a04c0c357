//! Loopback only without a token, the token rules, the CSRF header, the security headers.

use crate::support::*;
use heaplens_dashboard::{handle, security, Config, Request};

#[test]
fn every_response_carries_the_security_headers() {
    let s = file_source();
    let mut remote = Request::get("/api/info");
    remote.loopback = false;
    let responses = [
        get(&s, "/"),
        get(&s, "/nope"),
        get(&s, "/api/objects/x"),
        handle(&Config::default(), &s, &remote),
        post_snapshot(&s),
    ];
    for r in responses {
        for (name, value) in security::HEADERS {
            assert_eq!(r.header_value(name), Some(value), "{} {name}", r.status);
        }
    }
    let csp = get(&s, "/")
        .header_value("Content-Security-Policy")
        .unwrap()
        .to_string();
    assert_eq!(
        csp,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
    );
}

#[test]
fn remote_clients_need_a_token_and_a_wrong_token_is_refused() {
    let s = file_source();
    let mut remote = Request::get("/api/info");
    remote.loopback = false;
    let r = handle(&Config::default(), &s, &remote);
    assert_eq!(r.status, 403);
    assert!(json(&r)["error"].as_str().unwrap().contains("token"));

    let config = Config {
        token: Some("s3cret-token".to_string()),
        allow_downloads: false,
    };
    for loopback in [true, false] {
        let mut req = Request::get("/api/info");
        req.loopback = loopback;
        let r = handle(&config, &s, &req);
        assert_eq!(r.status, 401, "the token is required from loopback too");
        assert!(r.header_value("WWW-Authenticate").is_some());
        let wrong = [
            req.clone().header("Authorization", "Bearer s3cret-tokeN"),
            req.clone().header("Authorization", "Bearer s3cret-token2"),
            req.clone().header("X-HeapLens-Token", "s3cret"),
            req.clone()
                .header("Authorization", "Basic czNjcmV0LXRva2Vu"),
        ];
        for w in wrong {
            let status = handle(&config, &s, &w).status;
            assert!(status == 403 || status == 401, "{status}");
        }
        for right in [
            req.clone().header("Authorization", "Bearer s3cret-token"),
            req.clone().header("authorization", "bearer s3cret-token"),
            req.clone().header("X-HeapLens-Token", "s3cret-token"),
        ] {
            assert_eq!(handle(&config, &s, &right).status, 200);
        }
    }
    let mut page = Request::get("/?token=s3cret-token");
    page.loopback = false;
    assert_eq!(handle(&config, &s, &page).status, 200);
    page.query = "token=wrong".to_string();
    assert_eq!(handle(&config, &s, &page).status, 403);
    let api = Request::get("/api/info?token=s3cret-token");
    assert_eq!(
        handle(&config, &s, &api).status,
        401,
        "query tokens only load the page"
    );
    let metrics = Request::get("/metrics").header("Authorization", "Bearer s3cret-token");
    assert_eq!(handle(&config, &s, &metrics).status, 200);
    // The page's script and style load from tags that cannot send the token; they hold no data.
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let mut req = Request::get(asset);
        req.loopback = false;
        assert_eq!(handle(&config, &s, &req).status, 200);
        assert_eq!(
            handle(&Config::default(), &s, &req).status,
            403,
            "not without a token"
        );
    }
    let mut other = Request::get("/assets/app.js/../../api/info");
    other.loopback = false;
    assert_eq!(handle(&config, &s, &other).status, 401);
}

#[test]
fn posts_need_the_csrf_header() {
    let live = Live::new();
    let config = Config::default();
    let bare = Request::new("POST", "/api/snapshot");
    assert_eq!(handle(&config, &live, &bare).status, 403);
    let wrong = Request::new("POST", "/api/snapshot").header("X-HeapLens", "yes");
    assert_eq!(handle(&config, &live, &wrong).status, 403);
    assert_eq!(live.snaps.lock().unwrap().len(), 1, "nothing was taken");
    assert_eq!(
        handle(&config, &live, &Request::get("/api/snapshot")).status,
        405
    );
    assert_eq!(live.snaps.lock().unwrap().len(), 1, "no state-changing GET");
    let r = post_snapshot(&live);
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(live.snaps.lock().unwrap().len(), 2);
}
