//! `heaplens serve` on a real snapshot file, over real HTTP/1.1 connections.
//!
//! The server runs in a thread through the public entry point ([`heaplens_cli::dispatch_from`]),
//! on port 0; the test learns the port from the URL it prints, and stops it the way the console
//! script does on Ctrl-C: through [`heaplens_cli::Caller::interrupted`].

mod common;

use common::{heap, run, TempDir};
use heaplens_cli::{Caller, Outcome};
use heaplens_core::history::store::HistoryWriter;
use heaplens_core::history::{History, Sample};
use heaplens_core::snapfile;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PID: u32 = 4242;

/// A history of process [`PID`] whose Orders grow by 25 a minute.
fn write_history(path: &std::path::Path) {
    let mut writer = HistoryWriter::open(path, PID, "app.py", "3.11.7 (main)").unwrap();
    let mut history = History::new(usize::MAX);
    for i in 0..20u64 {
        let orders = 100 + 25 * i;
        let sample = Sample {
            taken_ms: 1_764_000_000_000 + i * 60_000,
            pid: PID,
            rss: 30 << 20,
            objects: orders,
            bytes: orders * 56,
            gc_only: true,
            census_us: 200,
        };
        let changes = history.push_values(sample, [("app.Order", orders, orders * 56)]);
        writer.append(&sample, &changes).unwrap();
    }
}

/// An output stream the test reads while the server writes it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// One HTTP/1.1 exchange: status, headers (names lowercased), body, and the raw answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    raw: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn request(addr: &str, method: &str, target: &str, extra: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    // A guard against a hang, not a timing assertion.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in extra {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Answer {
        status,
        headers,
        body,
        raw: String::from_utf8_lossy(&raw).into_owned(),
    }
}

/// A running `heaplens serve`: its address and how to stop it.
struct Server {
    addr: String,
    url: String,
    out: Shared,
    thread: Option<std::thread::JoinHandle<(i32, String)>>,
    stop: &'static AtomicBool,
}

impl Server {
    fn start(args: Vec<String>, stop: &'static AtomicBool, interrupted: fn() -> bool) -> Server {
        let out = Shared::default();
        let thread_out = out.clone();
        let thread = std::thread::spawn(move || {
            let caller = Caller {
                python_path: None,
                interrupted: Some(interrupted),
                ..Caller::default()
            };
            let mut out = thread_out;
            let mut err = Vec::new();
            let argv = std::iter::once("heaplens".to_string()).chain(args);
            let status = match heaplens_cli::dispatch_from(&caller, argv, &mut out, &mut err) {
                Outcome::Exit(status) => status,
                Outcome::RunPython(_) => panic!("not `heaplens run`"),
            };
            (status, String::from_utf8(err).unwrap())
        });
        // The URL is printed once the server listens (the loop is a guard against a hang).
        let mut waited = 0;
        let url = loop {
            let text = out.text();
            if let Some(url) = text.split_whitespace().find(|w| w.starts_with("http://")) {
                break url.to_string();
            }
            assert!(
                !thread.is_finished(),
                "the server stopped: {}",
                thread.join().unwrap().1
            );
            waited += 1;
            assert!(waited < 6000, "no URL printed: {text}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let addr = url
            .strip_prefix("http://")
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        Server {
            addr,
            url,
            out,
            thread: Some(thread),
            stop,
        }
    }

    fn get(&self, target: &str) -> Answer {
        request(&self.addr, "GET", target, &[])
    }

    fn stop(mut self) -> (i32, String, String) {
        self.stop.store(true, Ordering::SeqCst);
        let (status, err) = self.thread.take().unwrap().join().unwrap();
        (status, self.out.text(), err)
    }
}

static STOP_PLAIN: AtomicBool = AtomicBool::new(false);
fn stop_plain() -> bool {
    STOP_PLAIN.load(Ordering::SeqCst)
}

static STOP_DOWNLOADS: AtomicBool = AtomicBool::new(false);
fn stop_downloads() -> bool {
    STOP_DOWNLOADS.load(Ordering::SeqCst)
}

static STOP_TOKEN: AtomicBool = AtomicBool::new(false);
fn stop_token() -> bool {
    STOP_TOKEN.load(Ordering::SeqCst)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn serve_answers_the_dashboard_over_http_and_stops_when_interrupted() {
    let dir = TempDir::new("plain");
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(30, PID), std::path::Path::new(&snap)).unwrap();
    let db = dir.path("app.db");
    write_history(std::path::Path::new(&db));
    let server = Server::start(
        args(&["serve", &snap, "--port", "0", "--history", &db]),
        &STOP_PLAIN,
        stop_plain,
    );
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(
        !server.url.ends_with(":0/"),
        "the real port: {}",
        server.url
    );

    // The page, with the security headers and a Content-Length.
    let page = server.get("/");
    assert_eq!(page.status, 200, "{}", page.raw);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        page.header("content-length").unwrap(),
        page.body.len().to_string()
    );
    assert!(page.text().contains("<html") || page.text().contains("<!doctype"));

    // HEAD: no body, the Content-Length of the GET.
    let head = request(&server.addr, "HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").unwrap(),
        page.body.len().to_string()
    );

    let info = server.get("/api/info");
    assert_eq!(info.status, 200, "{}", info.raw);
    assert!(info.header("content-type").unwrap().contains("json"));
    assert!(info.text().contains("after.hlsnap"), "{}", info.text());
    println!("GET /api/info ->\n{}", info.raw);

    let overview = server.get("/api/overview");
    assert_eq!(overview.status, 200);
    assert!(overview.text().contains("app.Order"));

    // The history given with --history is shown: the chart exists.
    let chart = server.get("/api/chart.svg");
    assert_eq!(chart.status, 200, "{}", chart.raw);
    assert!(chart.text().contains("<svg"));

    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(metrics.text().contains("# TYPE"), "{}", metrics.text());

    // Downloads are off unless allowed; unknown paths are 404; the file cannot take snapshots.
    assert_eq!(server.get("/download/snapshot.hlsnap").status, 403);
    assert_eq!(server.get("/no/such/page").status, 404);
    let post = request(
        &server.addr,
        "POST",
        "/api/snapshot",
        &[("X-HeapLens", "1"), ("Content-Length", "0")],
    );
    assert_eq!(post.status, 501, "{}", post.raw);
    // Without the CSRF header a POST is refused before it is routed.
    let post = request(
        &server.addr,
        "POST",
        "/api/snapshot",
        &[("Content-Length", "0")],
    );
    assert_eq!(post.status, 403);
    // A body over the cap is refused, not read.
    let big = request(
        &server.addr,
        "POST",
        "/api/snapshot",
        &[("X-HeapLens", "1"), ("Content-Length", "2000000")],
    );
    assert_eq!(big.status, 413, "{}", big.raw);
    // A client that goes away mid-request harms nothing.
    {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.write_all(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    assert_eq!(server.get("/api/info").status, 200);
    // Without a token, what only looks local is refused: a request through a proxy, and one
    // for another host name (DNS rebinding; here a second Host header after the real one).
    for extra in [("X-Forwarded-For", "203.0.113.9"), ("Host", "rebind.test")] {
        let refused = request(&server.addr, "GET", "/api/info", &[extra]);
        assert_eq!(refused.status, 403, "{}", refused.raw);
        assert!(
            refused.raw.contains(extra.0) && refused.raw.contains("token"),
            "{}",
            refused.raw
        );
    }

    let (status, out, err) = server.stop();
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("stopped"), "{out}");
}

#[test]
fn downloads_are_served_when_allowed() {
    let dir = TempDir::new("downloads");
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(3, PID), std::path::Path::new(&snap)).unwrap();
    let server = Server::start(
        args(&["serve", &snap, "--port", "0", "--allow-downloads"]),
        &STOP_DOWNLOADS,
        stop_downloads,
    );
    let download = server.get("/download/snapshot.hlsnap");
    assert_eq!(download.status, 200, "{}", download.raw);
    assert!(!download.body.is_empty());
    // Without --history there is no chart.
    assert_eq!(server.get("/api/chart.svg").status, 404);
    assert_eq!(server.stop().0, 0);
}

#[test]
fn a_token_is_required_when_set_and_printed_in_the_url() {
    let dir = TempDir::new("token");
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(3, PID), std::path::Path::new(&snap)).unwrap();
    let server = Server::start(
        args(&["serve", &snap, "--port", "0", "--token", "s3cret"]),
        &STOP_TOKEN,
        stop_token,
    );
    assert!(server.url.ends_with("/?token=s3cret"), "{}", server.url);
    assert_eq!(server.get("/api/info").status, 401);
    let with = request(
        &server.addr,
        "GET",
        "/api/info",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(with.status, 200);
    assert_eq!(server.get("/?token=s3cret").status, 200);
    assert_eq!(server.get("/?token=wrong").status, 403);
    assert_eq!(server.stop().0, 0);
}

#[test]
fn a_non_loopback_host_needs_a_token() {
    let dir = TempDir::new("host");
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(3, PID), std::path::Path::new(&snap)).unwrap();
    let (status, out, err) = run(&["serve", &snap, "--host", "0.0.0.0", "--port", "0"]);
    assert_eq!(status, 2, "{out}{err}");
    assert!(err.contains("without a token"), "{err}");
    assert!(err.contains("hint: add --token"), "{err}");
    assert!(out.is_empty(), "nothing is served: {out}");
    let (status, _, err) = run(&["serve", &snap, "--token", "", "--port", "0"]);
    assert_eq!(status, 2);
    assert!(err.contains("empty") && err.contains("hint:"), "{err}");
}

#[test]
fn a_missing_or_damaged_file_is_an_error_with_a_hint() {
    let dir = TempDir::new("errors");
    let missing = dir.path("missing.hlsnap");
    let (status, out, err) = run(&["serve", &missing, "--port", "0"]);
    assert_eq!(status, 2, "{out}{err}");
    assert!(err.contains("cannot read the snapshot"), "{err}");
    assert!(err.contains("hint: check the path"), "{err}");

    let damaged = dir.path("damaged.hlsnap");
    std::fs::write(&damaged, b"HLSNAP but not really a snapshot at all").unwrap();
    let (status, _, err) = run(&["serve", &damaged, "--port", "0"]);
    assert_eq!(status, 2);
    assert!(err.contains("hint:"), "{err}");

    // A history file that is not one, or lacks the process asked for.
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(3, PID), std::path::Path::new(&snap)).unwrap();
    let (status, _, err) = run(&["serve", &snap, "--history", &damaged, "--port", "0"]);
    assert_eq!(status, 2);
    assert!(err.contains("cannot read the history"), "{err}");
    let db = dir.path("app.db");
    write_history(std::path::Path::new(&db));
    let (status, _, err) = run(&[
        "serve",
        &snap,
        "--history",
        &db,
        "--pid",
        "7",
        "--port",
        "0",
    ]);
    assert_eq!(status, 2);
    assert!(err.contains("no samples of process 7"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // --pid needs --history.
    let (status, _, _) = run(&["serve", &snap, "--pid", "7"]);
    assert_eq!(status, 2);
}

static STOP_STALLED: AtomicBool = AtomicBool::new(false);
fn stop_stalled() -> bool {
    STOP_STALLED.load(Ordering::SeqCst)
}

#[test]
fn stalled_clients_do_not_hold_the_workers_and_stop_does_not_wait_for_them() {
    let dir = TempDir::new("stalled");
    let snap = dir.path("after.hlsnap");
    snapfile::save(&heap(3, PID), std::path::Path::new(&snap)).unwrap();
    let server = Server::start(
        args(&["serve", &snap, "--port", "0"]),
        &STOP_STALLED,
        stop_stalled,
    );
    // Twice as many of each kind as there are workers, all left open.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        for start in [
            &b"POST /api/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"[..],
            b"GET /api/in",
            b"GET /api/info HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
            b"",
        ] {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(start).unwrap();
            stalled.push(s);
        }
    }
    for _ in 0..3 {
        let answer = server.get("/api/info");
        assert_eq!(answer.status, 200, "{}", answer.raw);
    }
    // The announced bodies were refused without being waited for.
    for s in stalled.iter_mut().step_by(4) {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    }
    // Ctrl-C with the other clients still connected: the server stops (their threads are shut
    // down, not waited for until their deadlines).
    let (status, out, err) = server.stop();
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("stopped"), "{out}");
    drop(stalled);
}
