//! Who may use the dashboard, and the headers every answer carries.
//!
//! The dashboard shows private data (every string in the heap), so:
//! - With no token configured, only loopback clients are answered; anyone else gets a 403 that
//!   says how to configure a token. Two kinds of request look local and are not, and are refused
//!   the same way: one that came through a proxy (behind nginx on the same host every client
//!   connects from loopback; the proxy says so in a header such as `X-Forwarded-For`, see
//!   [`PROXY_HEADERS`]), and one addressed to a `Host` other than a loopback address or
//!   `localhost` (DNS rebinding: a page at `http://rebind.test:PORT`, once that name resolves
//!   to 127.0.0.1, is the developer's own browser reading the dashboard same-origin). A proxy
//!   that adds no such header cannot be told from a local client: behind one, set a token.
//! - With a token configured, every request must carry it, from any client: in the header
//!   `Authorization: Bearer <token>` or `X-HeapLens-Token: <token>`, in the cookie [`COOKIE`],
//!   or, for loading the page itself (`GET /`) from a link, as `?token=<token>`. A token that
//!   came in the page's address is moved out of it: the page is answered with the token in an
//!   `HttpOnly`, `SameSite=Strict` cookie scoped to the mount point (its script cannot read it,
//!   another site's requests do not carry it), and the page's script removes it from the
//!   address bar and the history, so it does not linger in copied links, bookmarks or later
//!   access logs; reloads and API calls carry the cookie. A missing token is a 401, a wrong one a
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
/// The cookie that carries the token once the page was opened with it in its address.
pub const COOKIE: &str = "heaplens_token";

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

/// Headers a proxy adds to say whom it forwards for (standard, de facto and CDN ones). Without a
/// token, a request carrying any of them is refused: the loopback peer is the proxy.
pub const PROXY_HEADERS: [&str; 12] = [
    "Forwarded",
    "X-Forwarded-For",
    "X-Forwarded-Host",
    "X-Forwarded-Proto",
    "X-Forwarded-Server",
    "X-Real-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
    "True-Client-IP",
    "CF-Connecting-IP",
    "Fastly-Client-IP",
    "Via",
];

/// The first of [`PROXY_HEADERS`] the request carries.
fn proxy_header(req: &Request) -> Option<&'static str> {
    PROXY_HEADERS
        .iter()
        .copied()
        .find(|name| req.header_value(name).is_some())
}

/// Whether a `Host` header value names this machine by a loopback address or `localhost`, with
/// or without a port: `127.0.0.1:8000`, `[::1]`, `localhost`, `LOCALHOST.` (IPv4 in the
/// dotted-quad form only: `127.1` and `2130706433` are names a resolver may be asked for).
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((address, port))
                if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) =>
            {
                return address
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback());
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A `Host` value as an error message shows it: control and invisible characters escaped, cut.
fn shown_host(host: &str) -> String {
    let visible = crate::api::visible(host, false);
    let mut shown: String = visible.chars().take(100).collect();
    if visible.chars().nth(100).is_some() {
        shown.push('…');
    }
    shown
}

/// 1 to 5 digits.
fn is_port(digits: &str) -> bool {
    (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The `Host` values of the request that are not local (see [`is_local_host`]).
fn foreign_host(req: &Request) -> Option<&str> {
    req.headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Host"))
        .map(|(_, value)| value.as_str())
        .find(|value| !is_local_host(value))
}

/// How to configure a token and send it, the end of every refusal that asks for one.
const SET_A_TOKEN: &str = "configure a token (HeapLens(app, token=...) or \
    `heaplens serve --token ...`) and send it as `Authorization: Bearer <token>`, or open the page \
    as <mount>/?token=<token>.";

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
    if let Some(token) = cookie_token(req) {
        return Some(token);
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
                &format!(
                    "heaplens answers only local (loopback) clients. To open the dashboard \
                     from another machine, {SET_A_TOKEN}"
                ),
            ));
        }
        None => {
            if let Some(header) = proxy_header(req) {
                return Some(Response::error(
                    403,
                    &format!(
                        "this request came through a proxy (it carries {header}): behind a \
                         proxy every client looks local, so heaplens answers only with a token: \
                         {SET_A_TOKEN}"
                    ),
                ));
            }
            if let Some(host) = foreign_host(req) {
                return Some(Response::error(
                    403,
                    &format!(
                        "this request is addressed to the Host {}, not to localhost or a \
                         loopback address: without a token heaplens answers only requests for \
                         this machine by those names (a guard against DNS rebinding). Open it \
                         as http://127.0.0.1:<port>/ or http://localhost:<port>/, or \
                         {SET_A_TOKEN}",
                        shown_host(host)
                    ),
                ));
            }
        }
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

/// The token in the [`COOKIE`] of `req`'s `Cookie` headers (percent-encoded there).
fn cookie_token(req: &Request) -> Option<String> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| crate::router::percent_decode(value.trim(), false))
        .map(|t| t.trim().to_string())
}

/// When the page was opened with the token in its address (and the request passed
/// [`check`]), sets the [`COOKIE`] that carries it from now on. No `Path` attribute: a cookie
/// set by `<mount>/` is scoped by default to the mount point, which the dashboard does not know
/// (hosts strip it). No `Secure`: a dashboard on a plain-HTTP address would never get it back.
pub fn remember_token(config: &Config, req: &Request, response: &mut Response) {
    let page =
        matches!(req.method.as_str(), "GET" | "HEAD") && matches!(req.path.as_str(), "/" | "");
    if config.token.is_none() || !page || response.status != 200 {
        return;
    }
    let Some(token) = crate::router::query_param(&req.query, "token") else {
        return;
    };
    let value: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    response.headers.push((
        "Set-Cookie".into(),
        format!("{COOKIE}={value}; HttpOnly; SameSite=Strict"),
    ));
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
    fn a_configured_token_is_trimmed_and_a_blank_one_refused() {
        use crate::configured_token;
        assert_eq!(
            configured_token(Some(" s3cret\n")),
            Ok(Some("s3cret".into()))
        );
        assert_eq!(configured_token(Some("")), Ok(None));
        assert_eq!(configured_token(None), Ok(None));
        assert!(configured_token(Some(" \t\n")).is_err());
    }

    fn with_token() -> Config {
        Config {
            token: Some("t".into()),
            ..Config::default()
        }
    }

    fn refusal(req: &Request) -> Option<String> {
        check(&Config::default(), req).map(|r| String::from_utf8_lossy(&r.body).into_owned())
    }

    #[test]
    fn without_a_token_a_request_through_a_proxy_is_refused_and_says_which_header() {
        assert_eq!(refusal(&Request::get("/api/info")), None);
        for header in PROXY_HEADERS {
            let req = Request::get("/api/info").header(&header.to_ascii_lowercase(), "203.0.113.9");
            let message = refusal(&req).expect(header);
            assert!(
                message.contains(header) && message.contains("token"),
                "{message}"
            );
        }
        let req = Request::get("/api/info")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("Authorization", "Bearer t");
        assert!(check(&with_token(), &req).is_none());
    }

    #[test]
    fn only_loopback_addresses_and_localhost_are_local_host_names() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8000",
            "127.1.2.3:1",
            "localhost",
            "LocalHost:65535",
            "localhost.",
            "[::1]",
            "[::1]:8000",
            "[::ffff:127.0.0.1]:80",
            " localhost ",
        ] {
            assert!(is_local_host(host), "{host}");
        }
        for host in [
            "rebind.test",
            "rebind.test:8000",
            "127.0.0.1.evil.test",
            "localhost.evil.test:80",
            "evil.localhost.test",
            "10.0.0.1",
            "0.0.0.0:80",
            "[::]:80",
            "[::2]",
            "127.1",
            "2130706433",
            "localhost:",
            "localhost:port",
            "localhost:123456",
            "[::1]x",
            "[::1",
            "",
            ":80",
            "local\u{202e}host",
            "localhost:80:80",
        ] {
            assert!(!is_local_host(host), "{host}");
        }
    }

    #[test]
    fn without_a_token_a_request_for_a_foreign_host_is_refused() {
        assert_eq!(
            refusal(&Request::get("/").header("Host", "localhost:8000")),
            None
        );
        let message = refusal(
            &Request::new("POST", "/api/snapshot")
                .header("X-HeapLens", "1")
                .header("host", "rebind.test:8000"),
        )
        .unwrap();
        assert!(message.contains("rebind.test:8000") && message.contains("DNS rebinding"));
        // A second Host header cannot smuggle a foreign name past the first.
        let twice = Request::get("/")
            .header("Host", "127.0.0.1")
            .header("Host", "rebind.test");
        assert!(refusal(&twice).is_some());
        // The name is shown escaped, and cut.
        let hostile = format!("evil\u{202e}{}", "x".repeat(500));
        let message = refusal(&Request::get("/").header("Host", &hostile)).unwrap();
        assert!(
            !message.contains('\u{202e}') && message.len() < 1500,
            "{message}"
        );
        let req = Request::get("/api/info")
            .header("Host", "heaplens.example.com")
            .header("X-HeapLens-Token", "t");
        assert!(check(&with_token(), &req).is_none());
    }

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
    fn the_token_is_read_from_its_cookie_and_a_page_opened_with_it_sets_the_cookie() {
        let config = with_token();
        let r = Request::get("/api/info").header("Cookie", "a=b; heaplens_token=t%20; c=d");
        assert_eq!(presented_token(&r).as_deref(), Some("t"));
        assert!(check(&config, &r).is_none());
        let wrong = Request::get("/api/info").header("Cookie", "heaplens_token=x");
        assert_eq!(check(&config, &wrong).map(|r| r.status), Some(403));

        let secret = Config {
            token: Some("s;e cr=t".into()),
            ..Config::default()
        };
        let page = Request::get("/?token=s%3Be+cr%3Dt");
        assert!(check(&secret, &page).is_none());
        let mut response = Response::error(200, "page");
        remember_token(&secret, &page, &mut response);
        let cookie = &response.headers.last().unwrap().1;
        assert_eq!(
            cookie,
            "heaplens_token=s%3Be%20cr%3Dt; HttpOnly; SameSite=Strict"
        );
        let value = cookie.split(';').next().unwrap().to_string();
        let back = Request::get("/api/info").header("Cookie", &value);
        assert!(
            check(&secret, &back).is_none(),
            "the cookie set carries the token back"
        );

        // Only the page opened with the token sets it.
        for (req, status) in [
            (Request::get("/api/info?token=t"), 200),
            (Request::get("/"), 200),
            (Request::get("/?token=t"), 403),
        ] {
            let mut response = Response::error(status, "x");
            remember_token(&config, &req, &mut response);
            assert!(!response.headers.iter().any(|(n, _)| n == "Set-Cookie"));
        }
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
