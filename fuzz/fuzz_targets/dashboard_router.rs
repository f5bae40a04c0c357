//! Fuzzes the dashboard's router with arbitrary requests against the golden snapshot: every
//! request must get an answer with a valid status (never a panic, a hang or a 500, which is
//! what a caught panic turns into), whatever its method, path, query, headers and body.
//!
//! The input is split on newlines: the first byte picks loopback or not, token or none,
//! downloads on or off; then the method, the target (path and query), then `name: value`
//! header lines; the rest is the body. Run from this directory:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run dashboard_router corpus/dashboard_router -- -max_total_time=300
//! ```

#![no_main]

use heaplens_dashboard::{handle, Config, FileSource, Request};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn source() -> &'static FileSource {
    static SOURCE: OnceLock<FileSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/golden-v1.hlsnap");
        FileSource::open(std::path::Path::new(golden)).expect("the golden snapshot reads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.splitn(64, '\n');
    let method = lines.next().unwrap_or("GET").to_string();
    let target = lines.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    let mut body = Vec::new();
    for line in lines.by_ref() {
        match line.split_once(": ") {
            Some((name, value)) if headers.len() < 32 => {
                headers.push((name.to_string(), value.to_string()))
            }
            _ => {
                body = line.as_bytes().to_vec();
                break;
            }
        }
    }
    let config = Config {
        token: (flags & 2 != 0).then(|| "fuzz-token".to_string()),
        allow_downloads: flags & 4 != 0,
    };
    let request = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        loopback: flags & 1 != 0,
        body,
    };
    let answer = handle(&config, source(), &request);
    assert!((200..600).contains(&answer.status), "status {}", answer.status);
    assert_ne!(answer.status, 500, "a 500 from a file source is a caught panic");
});
