//! `heaplens serve`: the dashboard, read-only, from a snapshot file.
//!
//! A thin host around [`heaplens_dashboard::handle`]: it loads and analyses the snapshot (and
//! optionally a sample history), listens, and hands each request to the dashboard on a few
//! worker threads ([`http`]: deadlines on every read, so that no slow client holds a worker).
//! Routing, security rules (token, loopback-only without one, CSRF guard) and the page all live
//! in the dashboard crate; this module only says whether the peer is on the loopback interface
//! and stops on Ctrl-C.
//!
//! The command runs inside the Python console script with the GIL released, where Python's
//! SIGINT handler only sets a flag: the accept loop therefore asks [`crate::Caller::interrupted`]
//! every [`http::INTERRUPT_POLL`] (on the thread that called the command line, the main thread
//! in the console script, which is where Python runs signal handlers).

use super::failure::failure;
use super::listen;
use crate::progress::Progress;
use anyhow::{Context, Result};
use heaplens_core::history::store::{self, ProcessHistory};
use heaplens_dashboard::{Config, FileSource};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub mod http;

/// Serve the dashboard for a snapshot file, read-only, over HTTP: the same page as the live
/// dashboard of the WSGI/ASGI middleware (types, instances, retaining paths, /metrics). Given
/// two files of one process, BEFORE and AFTER, the page also compares them (Compare: what grew
/// and the leak suspects, as `heaplens diff` says).
///
/// It listens on 127.0.0.1 unless --host says otherwise; any other address needs --token, as
/// the dashboard shows the process's private data (every string of its heap). The URL to open
/// is printed once the server listens; Ctrl-C stops it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snapshot file (.hlsnap); with two, the earlier and the later snapshot of one
    /// process, compared on the page.
    #[arg(value_name = "[BEFORE.hlsnap] FILE.hlsnap", num_args = 1..=2, required = true)]
    pub snapshots: Vec<PathBuf>,
    /// The address to listen on. Anything but a loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one (the URL printed says which).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Require this token from every client (as `Authorization: Bearer TOKEN`, or `?token=TOKEN`
    /// in the page's address); then clients on other machines are answered too.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Let clients download the snapshot (.hlsnap, or .heapsnapshot for Chrome DevTools).
    #[arg(long)]
    pub allow_downloads: bool,
    /// A sample history (written by `heaplens run`) to show beside the snapshot: type counts
    /// over time and the growth chart.
    #[arg(long, value_name = "FILE.db")]
    pub history: Option<PathBuf>,
    /// The process of the history file to show (default: the snapshot's process when the file
    /// has it, else the newest one with samples).
    #[arg(long, requires = "history")]
    pub pid: Option<u32>,
}

/// Runs `heaplens serve` until Ctrl-C (or the caller's interruption flag).
pub fn run(
    args: &Args,
    caller: &crate::Caller,
    progress: &Progress,
    out: &mut impl Write,
) -> Result<i32> {
    let addrs = listen::addresses(&args.host, args.port)?;
    if args.token.as_deref() == Some("") {
        return Err(failure(
            "the token is empty",
            "pick a long random token, e.g. --token \"$(python -c 'import secrets; print(secrets.token_urlsafe())')\"",
        ));
    }
    listen::loopback_unless_token(
        &addrs,
        args.token.as_deref(),
        "the process's private data (every string of its heap)",
        "add --token TOKEN (clients then send it as `Authorization: Bearer TOKEN` or open the \
         printed URL), or keep the default --host 127.0.0.1 and use an SSH tunnel",
    )?;

    let (before, after) = match &args.snapshots[..] {
        [after] => (None, after),
        [before, after] => (Some(before), after),
        _ => {
            return Err(failure(
                "give one snapshot file, or two",
                "heaplens serve [BEFORE] FILE",
            ))
        }
    };
    let earlier = before.map(|b| super::load(b, progress)).transpose()?;
    let graph = super::load(after, progress)?;
    if let Some(earlier) = &earlier {
        heaplens_core::analysis::diff::check_pair(earlier, &graph).map_err(|e| {
            failure(
                e.to_string(),
                "give two snapshots of one process, the earlier one first: heaplens serve \
                 BEFORE.hlsnap AFTER.hlsnap",
            )
        })?;
    }
    let name = after
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| after.display().to_string());
    let snapshot_pid = graph.meta().pid;
    let mut source = progress.step("analysing", || FileSource::from_graph(graph, &name));
    if let Some(earlier) = earlier {
        source = source.compared_with(earlier);
    }
    if let Some(path) = &args.history {
        // As `heaplens history` reads one: the same messages, and the hints about histories.
        let reading = || super::history::Reading(path.clone());
        super::check_input(path).with_context(reading)?;
        let processes = progress
            .step(&format!("reading {}", path.display()), || store::read(path))
            .with_context(reading)?;
        let chosen = choose(
            processes,
            args.pid.or(Some(snapshot_pid)),
            args.pid.is_some(),
        )
        .map_err(|message| {
            failure(
                format!("{message} in {}", path.display()),
                "list its processes with `heaplens history FILE.db`, and pick one with --pid",
            )
        })?;
        source = source.with_samples(chosen.history);
    }
    let config = Config {
        token: heaplens_dashboard::configured_token(args.token.as_deref())
            .map_err(|why| failure(why, "pick a long random token"))?,
        allow_downloads: args.allow_downloads,
    };

    let listener = listen::bind(&addrs, &args.host, args.port)?;
    let addr = listener
        .local_addr()
        .context("the server is not listening on an IP address")?;
    writeln!(out, "heaplens dashboard for {name}: {}", url(addr, &config))?;
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;

    let interrupted = || caller.interrupted.is_some_and(|f| f());
    http::serve(listener, &interrupted, &|incoming| {
        heaplens_dashboard::handle(&config, &source, &dashboard_request(incoming))
    })
    .context("the server stopped")?;
    writeln!(out, "interrupted; the dashboard is stopped")?;
    Ok(crate::OK)
}

/// The history of the process to show: `pid` when given (`required`: it must be there), else
/// the newest process with samples.
fn choose(
    mut processes: Vec<ProcessHistory>,
    pid: Option<u32>,
    required: bool,
) -> std::result::Result<ProcessHistory, String> {
    let with_samples = |p: &ProcessHistory| !p.history.is_empty();
    if let Some(pid) = pid {
        if let Some(p) = processes
            .iter()
            .position(|p| p.pid == pid && with_samples(p))
        {
            return Ok(processes.swap_remove(p));
        }
        if required {
            return Err(format!("no samples of process {pid}"));
        }
    }
    processes
        .into_iter()
        .rev()
        .find(with_samples)
        .ok_or_else(|| "no samples".to_string())
}

/// The address to open: `http://127.0.0.1:8765/`, with `?token=` when one is set.
pub fn url(addr: SocketAddr, config: &Config) -> String {
    let ip = addr.ip().to_canonical();
    // A wildcard address is where the server listens, not where a browser connects.
    let shown = if ip.is_unspecified() {
        SocketAddr::new(
            if ip.is_ipv4() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            },
            addr.port(),
        )
    } else {
        SocketAddr::new(ip, addr.port())
    };
    match &config.token {
        Some(token) => format!("http://{shown}/?token={}", percent_encode(token)),
        None => format!("http://{shown}/"),
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The dashboard's request for a request head (no request has a body: see [`http`]).
fn dashboard_request(incoming: http::Incoming) -> heaplens_dashboard::Request {
    // HEAD is answered as GET: the server leaves out the body but keeps its Content-Length.
    let method = match incoming.method.as_str() {
        "HEAD" => "GET".to_string(),
        _ => incoming.method,
    };
    let target = incoming.target.as_str();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // An absolute-form target (`GET http://host/path`) names the path after the authority.
    let path = match path.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    heaplens_dashboard::Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers: incoming.headers,
        loopback: incoming.peer.ip().to_canonical().is_loopback(),
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_shows_a_connectable_address_and_the_encoded_token() {
        let config = Config {
            token: Some("a b&c".into()),
            allow_downloads: false,
        };
        let addr: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        assert_eq!(url(addr, &config), "http://127.0.0.1:8765/?token=a%20b%26c");
        let addr: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(url(addr, &Config::default()), "http://[::1]:80/");
    }
}
