//! `heaplens metrics`: Prometheus metrics of every process writing one history file.
//!
//! The exporter for what is not a web server, and for the workers of one: a batch job run with
//! `heaplens run --history job.db`, or a gunicorn app whose middleware has `history=app.db`
//! (every worker registers itself in the file and appends its samples). Scraping gunicorn's own
//! port reaches whichever worker accepts the connection, a different one each scrape; this reads
//! the file at each scrape and answers the series of every process that sampled recently, each
//! with its `pid`, from one address. The series are those of the dashboard's `<path>/metrics`
//! ([`heaplens_dashboard::metrics`]).
//!
//! Without `--port` it prints the metrics once, for node_exporter's textfile collector
//! (`heaplens metrics app.db > /var/lib/node_exporter/textfile/app.prom`, from cron).
//!
//! Each scrape reads only the samples appended since the one before ([`Follower`]); the first
//! reads the whole file. Non-goal: it does not show the dashboard.

use super::failure::failure;
use super::listen;
use super::serve::{self, http};
use crate::progress::Progress;
use anyhow::{Context, Result};
use heaplens_core::history::follow::Follower;
use heaplens_core::history::store::ProcessHistory;
use heaplens_dashboard::metrics::{Exposition, ProcessMetrics, CONTENT_TYPE};
use heaplens_dashboard::{security, Config, Response};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Serve (or print) Prometheus metrics of every process that writes a history file: the workers
/// of a web server whose middleware has `history=FILE.db`, programs run with `heaplens run
/// --history FILE.db`, batch jobs. Each process's series carry its pid.
///
/// With --port it listens (on 127.0.0.1 unless --host says otherwise; any other address needs
/// --token, which Prometheus sends with `authorization: {credentials: TOKEN}`) and reads the file
/// at every scrape of /metrics. Without --port it prints the metrics once.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The history file (SQLite), written by the middleware's `history=` or `heaplens run
    /// --history`.
    #[arg(value_name = "FILE.db")]
    pub history: PathBuf,
    /// Listen on this port and answer /metrics (0 picks a free one; the URL printed says which).
    #[arg(long)]
    pub port: Option<u16>,
    /// The address to listen on. Anything but a loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1", requires = "port")]
    pub host: String,
    /// Require this token from every client (`Authorization: Bearer TOKEN`).
    #[arg(long, value_name = "TOKEN", requires = "port")]
    pub token: Option<String>,
    /// Leave out processes whose newest sample is older than this many seconds (ended or
    /// stuck); 0 keeps every process of the file.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub max_age: u64,
}

/// The exposition of the processes of `path` sampled in the last `max_age` seconds (all of
/// them when 0), as of `now_ms`.
pub fn exposition(path: &Path, max_age: u64, now_ms: u64) -> Result<String> {
    exposition_followed(&mut Follower::new(path), path, max_age, now_ms)
}

/// [`exposition`], reading only what was appended to the file since `follower` last read it.
fn exposition_followed(
    follower: &mut Follower,
    path: &Path,
    max_age: u64,
    now_ms: u64,
) -> Result<String> {
    super::check_input(path).with_context(|| super::history::Reading(path.to_path_buf()))?;
    let processes = follower
        .refresh()
        .with_context(|| super::history::Reading(path.to_path_buf()))?;
    Ok(render(processes, max_age, now_ms))
}

/// The exposition of `processes` (see [`exposition`]): for a pid used twice, the newer process.
pub fn render(processes: &[ProcessHistory], max_age: u64, now_ms: u64) -> String {
    let recent = |p: &ProcessHistory| {
        p.history.latest().is_some_and(|s| {
            max_age == 0 || now_ms.saturating_sub(s.taken_ms) <= max_age.saturating_mul(1000)
        })
    };
    let mut chosen: Vec<&ProcessHistory> = Vec::new();
    for p in processes.iter().filter(|p| recent(p)) {
        match chosen.iter().position(|c| c.pid == p.pid) {
            Some(i) if chosen[i].started_ms <= p.started_ms => chosen[i] = p,
            Some(_) => {}
            None => chosen.push(p),
        }
    }
    chosen.sort_by_key(|p| p.pid);
    let mut exposition = Exposition::default();
    for p in chosen {
        exposition.add_process(&ProcessMetrics {
            pid: p.pid,
            program: Some(&p.program),
            history: Some(&p.history),
            ..ProcessMetrics::default()
        });
    }
    exposition.render()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Answers one request: /metrics, or a line that says where they are. `follower` has read the
/// file so far: a scrape reads the samples taken since the one before.
fn answer(
    args: &Args,
    config: &Config,
    follower: &Mutex<Follower>,
    request: &heaplens_dashboard::Request,
) -> Response {
    if let Some(refusal) = security::check(config, request) {
        return refusal;
    }
    let get = matches!(request.method.as_str(), "GET" | "HEAD");
    match request.path.as_str() {
        "/metrics" if get => {
            // Scrapes take turns: two at once would read the same rows twice over.
            let mut follower = follower
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match exposition_followed(&mut follower, &args.history, args.max_age, now_ms()) {
                Ok(text) => Response::new(200, CONTENT_TYPE, text.into_bytes()),
                Err(e) => Response::error(500, &format!("{e:#}")),
            }
        }
        "/" | "" if get => Response::new(
            200,
            "text/plain; charset=utf-8",
            format!("heaplens metrics of {}: /metrics\n", args.history.display()).into_bytes(),
        ),
        "/" | "" | "/metrics" => {
            Response::error(405, "this page only answers GET").with_header("Allow", "GET, HEAD")
        }
        _ => Response::error(404, "no such page: the metrics are at /metrics"),
    }
}

/// Listens on `host:port`, on a loopback address unless a token is given.
fn listen(host: &str, port: u16, token: Option<&str>) -> Result<(TcpListener, Config)> {
    let addrs = listen::addresses(host, port)?;
    listen::loopback_unless_token(
        &addrs,
        token,
        "the names of the program's types",
        "add --token TOKEN (Prometheus sends it with `authorization: {credentials: TOKEN}` in \
         its scrape config), or keep the default --host 127.0.0.1",
    )?;
    let config = Config {
        token: heaplens_dashboard::configured_token(token)
            .map_err(|why| failure(why, "pick a long random token"))?,
        allow_downloads: false,
    };
    Ok((listen::bind(&addrs, host, port)?, config))
}

/// The dashboard's request for a request head (the security checks read it).
fn request(incoming: http::Incoming) -> heaplens_dashboard::Request {
    let method = match incoming.method.as_str() {
        "HEAD" => "GET".to_string(),
        _ => incoming.method,
    };
    let target = incoming.target.as_str();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    heaplens_dashboard::Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers: incoming.headers,
        loopback: incoming.peer.ip().to_canonical().is_loopback(),
        body: Vec::new(),
    }
}

/// Prints the metrics once, or serves them until Ctrl-C.
pub fn run(
    args: &Args,
    caller: &crate::Caller,
    progress: &Progress,
    out: &mut impl Write,
) -> Result<i32> {
    let Some(port) = args.port else {
        let text = progress.step(&format!("reading {}", args.history.display()), || {
            exposition(&args.history, args.max_age, now_ms())
        })?;
        out.write_all(text.as_bytes())?;
        return Ok(crate::OK);
    };
    let (listener, config) = listen(&args.host, port, args.token.as_deref())?;
    // The file is read once before listening, so that a wrong path is said at once; each
    // scrape then reads what was appended since.
    let mut follower = Follower::new(&args.history);
    exposition_followed(&mut follower, &args.history, args.max_age, now_ms())?;
    let follower = Mutex::new(follower);
    let addr = listener
        .local_addr()
        .context("the server is not listening on an IP address")?;
    let url = serve::url(addr, &Config::default());
    writeln!(
        out,
        "heaplens metrics of {}: {url}metrics",
        args.history.display()
    )?;
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;
    let interrupted = || caller.interrupted.is_some_and(|f| f());
    http::serve(listener, &interrupted, &|incoming| {
        let request = request(incoming);
        let mut response = answer(args, &config, &follower, &request);
        security::add_headers(&mut response);
        response
    })
    .context("the server stopped")?;
    writeln!(out, "interrupted; the metrics are no longer served")?;
    Ok(crate::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplens_core::history::{History, Sample};

    fn process(pid: u32, started_ms: u64, last_ms: u64) -> ProcessHistory {
        let mut history = History::new(100);
        for (i, t) in [last_ms - 2000, last_ms - 1000, last_ms]
            .into_iter()
            .enumerate()
        {
            let sample = Sample {
                taken_ms: t,
                pid,
                rss: 1 << 20,
                ..Sample::default()
            };
            let n = 10 * (i as u64 + 1);
            history.push_values(sample, [("app.Leak", n, n * 64)]);
        }
        ProcessHistory {
            pid,
            started_ms,
            program: "app:app".into(),
            python: "3.12".into(),
            history,
        }
    }

    #[test]
    fn every_recent_process_is_exported_with_its_pid_and_ended_ones_are_not() {
        let now = 10_000_000;
        let processes = [
            process(11, 1_000, now - 500),
            process(12, 1_000, now - 1_000),
            process(13, 1_000, now - 600_000), // ended ten minutes ago
        ];
        let text = render(&processes, 120, now);
        assert!(text.contains("heaplens_type_objects{pid=\"11\",type=\"app.Leak\"} 30\n"));
        assert!(text.contains("heaplens_type_objects{pid=\"12\",type=\"app.Leak\"} 30\n"));
        assert!(!text.contains("pid=\"13\""));
        assert_eq!(text.matches("# TYPE heaplens_rss_bytes gauge").count(), 1);
        assert!(render(&processes, 0, now).contains("pid=\"13\""));
    }

    #[test]
    fn a_reused_pid_is_the_newer_process() {
        let now = 10_000_000;
        let mut old = process(11, 1_000, now - 100);
        old.program = "old".into();
        let text = render(&[process(11, 5_000, now - 100), old], 120, now);
        assert_eq!(text.matches("heaplens_info{").count(), 1);
        assert!(text.contains("program=\"app:app\""));
    }

    #[test]
    fn without_a_port_the_metrics_of_a_history_file_are_printed_once() {
        let dir = std::env::temp_dir().join(format!("heaplens-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("job.db");
        let mut writer =
            heaplens_core::history::store::HistoryWriter::open(&path, 4321, "job.py", "3.12")
                .unwrap();
        for i in 0..3u64 {
            let sample = Sample {
                taken_ms: 1_000 + i * 1000,
                pid: 4321,
                rss: 1 << 20,
                objects: 10,
                bytes: 100,
                ..Sample::default()
            };
            writer
                .append(&sample, &[("job.Row", 5 * (i + 1), 40)])
                .unwrap();
        }
        drop(writer);
        let path_text = path.to_str().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["heaplens", "-q", "metrics", path_text, "--max-age", "0"];
        assert_eq!(crate::run_with(args, &mut out, &mut err), crate::OK);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("heaplens_info{pid=\"4321\",program=\"job.py\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("heaplens_type_objects{pid=\"4321\",type=\"job.Row\"} 15\n"));
        // Samples of 1970 are older than two minutes: no process is shown.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["heaplens", "-q", "metrics", path_text];
        assert_eq!(crate::run_with(args, &mut out, &mut err), crate::OK);
        assert!(out.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let args = ["heaplens", "metrics", path_text];
        assert_eq!(crate::run_with(args, &mut out, &mut err), crate::ERROR);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.contains("cannot read the history") && err.contains("hint:"),
            "{err}"
        );
    }

    #[test]
    fn each_scrape_answers_the_samples_appended_since_the_one_before() {
        let dir =
            std::env::temp_dir().join(format!("heaplens-metrics-scrapes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.db");
        let mut writer =
            heaplens_core::history::store::HistoryWriter::open(&path, 77, "app:app", "3.12")
                .unwrap();
        let mut append = |i: u64| {
            let sample = Sample {
                taken_ms: now_ms() - 10_000 + i * 100,
                pid: 77,
                rss: 1 << 20,
                objects: 10 * i,
                bytes: 100,
                ..Sample::default()
            };
            writer.append(&sample, &[("app.Row", i, 40)]).unwrap();
        };
        append(1);
        let args = Args {
            history: path.clone(),
            port: Some(0),
            host: "127.0.0.1".into(),
            token: None,
            max_age: 120,
        };
        let (config, follower) = (Config::default(), Mutex::new(Follower::new(&path)));
        let scrape = || {
            let r = answer(
                &args,
                &config,
                &follower,
                &heaplens_dashboard::Request::get("/metrics"),
            );
            assert_eq!(r.status, 200);
            String::from_utf8(r.body).unwrap()
        };
        assert!(scrape().contains("heaplens_type_objects{pid=\"77\",type=\"app.Row\"} 1\n"));
        append(2);
        append(3);
        let text = scrape();
        assert!(
            text.contains("heaplens_type_objects{pid=\"77\",type=\"app.Row\"} 3\n"),
            "{text}"
        );
        assert_eq!(
            text,
            exposition(&path, 120, now_ms()).unwrap(),
            "as a full read says"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_metrics_are_answered_and_only_to_loopback_clients_without_a_token() {
        let args = Args {
            history: PathBuf::from("/nonexistent/app.db"),
            port: Some(0),
            host: "127.0.0.1".into(),
            token: None,
            max_age: 120,
        };
        let config = Config::default();
        let follower = Mutex::new(Follower::new(&args.history));
        let get = heaplens_dashboard::Request::get;
        assert_eq!(answer(&args, &config, &follower, &get("/")).status, 200);
        assert_eq!(
            answer(&args, &config, &follower, &get("/api/info")).status,
            404
        );
        let missing = answer(&args, &config, &follower, &get("/metrics"));
        assert_eq!(missing.status, 500);
        let post = heaplens_dashboard::Request::new("POST", "/metrics").header("X-HeapLens", "1");
        assert_eq!(answer(&args, &config, &follower, &post).status, 405);
        let mut remote = get("/metrics");
        remote.loopback = false;
        assert_eq!(answer(&args, &config, &follower, &remote).status, 403);
    }
}
