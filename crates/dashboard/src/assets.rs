//! The page: one HTML file, one script, one style sheet, embedded in the binary so the dashboard
//! loads with no network and no files beside the program.
//!
//! They are hand-written and need no build step. The script builds the DOM with `createElement`
//! and `textContent` only (a test checks it never uses `innerHTML` and friends), and the page
//! links them with relative URLs, so it works under any mount point. No inline script or style:
//! the content security policy ([`crate::security::HEADERS`]) forbids both.

use crate::Response;

/// `index.html`.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// `assets/app.js`.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// `assets/app.css`.
pub const APP_CSS: &str = include_str!("../assets/app.css");

/// `GET /`.
pub fn index() -> Response {
    Response::new(
        200,
        "text/html; charset=utf-8",
        INDEX_HTML.as_bytes().to_vec(),
    )
}

/// `GET /assets/app.js`.
pub fn script() -> Response {
    Response::new(
        200,
        "text/javascript; charset=utf-8",
        APP_JS.as_bytes().to_vec(),
    )
}

/// `GET /assets/app.css`.
pub fn style() -> Response {
    Response::new(200, "text/css; charset=utf-8", APP_CSS.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_never_writes_markup() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute(\"on",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
        assert!(APP_JS.contains("textContent") || APP_JS.contains("createTextNode"));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_remote() {
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            assert!(!text.contains("http://") || text.contains("http://www.w3.org/2000/svg"));
            assert!(!text.contains("https://"));
            assert!(!text.contains("@import"));
        }
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        assert!(!INDEX_HTML.contains(" on"), "no inline event handlers");
        let scripts: Vec<&str> = INDEX_HTML.split("<script").skip(1).collect();
        assert_eq!(scripts.len(), 1);
        assert!(scripts[0].starts_with(" src=\"assets/app.js\""));
        // Relative URLs only, so any mount point works.
        assert!(!INDEX_HTML.contains("href=\"/") && !INDEX_HTML.contains("src=\"/"));
        assert!(!APP_JS.contains("fetch(\"/"));
    }
}
