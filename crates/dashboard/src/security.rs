//! Who may use the dashboard, and the headers every answer carries.
//!
//! The dashboard shows private data (every string in the heap), so:
//! - With no token configured, only loopback clients are answered; anyone else gets a 403 that
//!   says how to configure a token.
//! - With a token configured, every request must carry it, from any client: in the header
//!   `Authorization: Bearer <token>` or `X-HeapLens-Token: <token>`, or, for loading the page
//!   itself (`GET /`) from a link, as `?token=<token>`. A missing token is a 401, a wrong one a
//!   403. Tokens are compared in constant time ([`constant_time_eq`]). The one exception is the
//!   page's script and style sheet ([`PUBLIC_ASSETS`]): a browser loads them from `<script src>`
//!   and `<link href>`, which cannot carry a header, and they hold no data (they are the same
//!   for everyone, and ship in the wheel). Without a token, non-loopback clients get nothing,
//!   assets included.
//! - Every `POST` must carry the header `X-HeapLens: 1`. A cross-site form can post to the
//!   dashboard but cannot set a header, so this is the CSRF guard (no state-changing `GET`
//!   exists: the router answers `GET` on an action with 405).
//! - Every response carries [`HEADERS`]: a content security policy that allows only the page's
//!   own script and style (no inline script, so an escaping bug cannot become script execution),
//!   `nosniff`, `no-store` and `no-referrer` (the token may be in the page's address).

use crate::{Config, Request, Response};

/// The headers added to every response.
pub const HEADERS: [(&str, &str); 5] = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
];

/// The header a `POST` must carry, with the value `1`.
pub const CSRF_HEADER: &str = "X-HeapLens";
/// The header that may carry the token.
pub const TOKEN_HEADER: &str = "X-HeapLens-Token";

/// Paths answered without the token (when a token is configured): static, data-free files.
pub const PUBLIC_ASSETS: [&str; 2] = ["/assets/app.js", "/assets/app.css"];

/// Whether two byte strings are equal, in time that depends only on their lengths, never on
/// where they first differ (so a wrong token does not reveal how much of it was right).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The token a request carries, if any (see the module documentation for where it may be).
pub fn presented_token(req: &Request) -> Option<String> {
    if let Some(auth) = req.header_value("Authorization") {
        // `get` rather than slicing: a header need not have a char boundary at byte 7.
        let auth = auth.trim();
        if let (Some(scheme), Some(token)) = (auth.get(..7), auth.get(7..)) {
            if scheme.eq_ignore_ascii_case("bearer ") {
                return Some(token.trim().to_string());
            }
        }
    }
    if let Some(token) = req.header_value(TOKEN_HEADER) {
        return Some(token.trim().to_string());
    }
    let page =
        matches!(req.method.as_str(), "GET" | "HEAD") && matches!(req.path.as_str(), "/" | "");
    if page {
        return crate::router::query_param(&req.query, "token");
    }
    None
}

/// The refusal for a request that may not be answered, or `None` when it may.
pub fn check(config: &Config, req: &Request) -> Option<Response> {
    match config.token.as_deref() {
        None if !req.loopback => {
            return Some(Response::error(
                403,
                "heaplens answers only local (loopback) clients. To open the dashboard from \
                 another machine, configure a token (HeapLens(app, token=...) or \
                 `heaplens serve --token ...`) and send it as `Authorization: Bearer <token>`, \
                 or open the page as <mount>/?token=<token>.",
            ));
        }
        None => {}
        Some(_) if is_public_asset(req) => {}
        Some(expected) => match presented_token(req) {
            None => {
                return Some(
                    Response::error(
                        401,
                        "a token is required: send `Authorization: Bearer <token>` or \
                         `X-HeapLens-Token: <token>`, or open the page as <mount>/?token=<token>",
                    )
                    .with_header("WWW-Authenticate", "Bearer realm=\"heaplens\""),
                );
            }
            Some(given) if !constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
                return Some(Response::error(403, "wrong token"));
            }
            Some(_) => {}
        },
    }
    if req.method == "POST" && req.header_value(CSRF_HEADER).map(str::trim) != Some("1") {
        return Some(Response::error(
            403,
            "POST requests must carry the header `X-HeapLens: 1` (a guard against cross-site \
             requests)",
        ));
    }
    None
}

fn is_public_asset(req: &Request) -> bool {
    matches!(req.method.as_str(), "GET" | "HEAD") && PUBLIC_ASSETS.contains(&req.path.as_str())
}

/// Adds [`HEADERS`] to `response` (replacing any the route set).
pub fn add_headers(response: &mut Response) {
    response
        .headers
        .retain(|(n, _)| !HEADERS.iter().any(|(h, _)| n.eq_ignore_ascii_case(h)));
    for (name, value) in HEADERS {
        response.headers.push((name.to_string(), value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_compare_equal_and_any_difference_does_not() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"t3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        assert!(!constant_time_eq(b"", b"x"));
        // A prefix padded with zero bytes is still not equal.
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }

    #[test]
    fn the_token_is_read_from_either_header_or_from_the_page_query() {
        let r = Request::get("/api/info").header("authorization", "Bearer  abc ");
        assert_eq!(presented_token(&r).as_deref(), Some("abc"));
        let r = Request::get("/api/info").header("x-heaplens-token", "abc");
        assert_eq!(presented_token(&r).as_deref(), Some("abc"));
        assert_eq!(
            presented_token(&Request::get("/?token=a%20b")).as_deref(),
            Some("a b")
        );
        assert_eq!(presented_token(&Request::get("/api/info?token=abc")), None);
        assert_eq!(presented_token(&Request::new("POST", "/?token=abc")), None);
    }

    #[test]
    fn security_headers_replace_any_the_route_set() {
        let mut r = Response::error(404, "x").with_header("cache-control", "max-age=60");
        add_headers(&mut r);
        assert_eq!(r.header_value("Cache-Control"), Some("no-store"));
        let n = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
            .count();
        assert_eq!(n, 1);
    }
}
