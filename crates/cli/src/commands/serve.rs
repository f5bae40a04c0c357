//! `heaplens serve`: the dashboard, read-only, from a snapshot file.
//!
//! A thin host around [`heaplens_dashboard::handle`]: it loads and analyses the snapshot (and
//! optionally a sample history), binds a blocking HTTP/1.1 server ([`tiny_http`]), and moves
//! bytes between the socket and the dashboard on a few worker threads. Routing, security rules
//! (token, loopback-only without one, CSRF guard) and the page all live in the dashboard crate;
//! this module only parses HTTP, says whether the peer is on the loopback interface, caps what a
//! client may send, and stops on Ctrl-C.
//!
//! The command runs inside the Python console script with the GIL released, where Python's
//! SIGINT handler only sets a flag: the accept loop therefore waits at most
//! [`POLL`] at a time and asks [`crate::Caller::interrupted`] in between (on the thread that
//! called the command line, the main thread in the console script, which is where Python runs
//! signal handlers).

use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use heaplens_core::history::store::{self, ProcessHistory};
use heaplens_dashboard::{Config, FileSource};
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// Serve the dashboard for a snapshot file, read-only, over HTTP: the same page as the live
/// dashboard of the WSGI/ASGI middleware (types, instances, retaining paths, /metrics).
///
/// It listens on 127.0.0.1 unless --host says otherwise; any other address needs --token, as
/// the dashboard shows the process's private data (every string of its heap). The URL to open
/// is printed once the server listens; Ctrl-C stops it.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The snapshot file (.hlsnap).
    #[arg(value_name = "FILE.hlsnap")]
    pub snapshot: PathBuf,
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

/// How long the accept loop waits for a request before it checks for Ctrl-C.
pub const POLL: Duration = Duration::from_millis(100);
/// The largest request body accepted (the dashboard's only POST has none); larger is a 413.
pub const MAX_BODY: u64 = 1 << 20;
/// The most header bytes (names and values) and headers a request may carry; more is a 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADERS: usize = 100;
/// How many threads answer requests.
const WORKERS: usize = 4;

/// A failure of this command with what to do about it.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hint: &'static str,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn failure(message: impl Into<String>, hint: &'static str) -> anyhow::Error {
    Failure {
        message: message.into(),
        hint,
    }
    .into()
}

/// What to do about a failure of this command, when it is one of its own.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .map(|f| f.hint)
}

/// Runs `heaplens serve` until Ctrl-C (or the caller's interruption flag).
pub fn run(
    args: &Args,
    caller: &crate::Caller,
    progress: &Progress,
    out: &mut impl Write,
) -> Result<i32> {
    let addrs = resolve(args)?;
    if args.token.as_deref() == Some("") {
        return Err(failure(
            "the token is empty",
            "pick a long random token, e.g. --token \"$(python -c 'import secrets; print(secrets.token_urlsafe())')\"",
        ));
    }
    if args.token.is_none() {
        if let Some(remote) = addrs.iter().find(|a| !a.ip().to_canonical().is_loopback()) {
            return Err(failure(
                format!(
                    "refusing to listen on {} without a token: anyone who can reach it would \
                     see the process's private data (every string of its heap)",
                    remote.ip()
                ),
                "add --token TOKEN (clients then send it as `Authorization: Bearer TOKEN` or open \
                 the printed URL), or keep the default --host 127.0.0.1 and use an SSH tunnel",
            ));
        }
    }

    let graph = super::load(&args.snapshot, progress)?;
    let name = args
        .snapshot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.snapshot.display().to_string());
    let snapshot_pid = graph.meta().pid;
    let mut source = progress.step("analysing", || FileSource::from_graph(graph, &name));
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
            .map_err(|why| failure(&why, "pick a long random token"))?,
        allow_downloads: args.allow_downloads,
    };

    let server = tiny_http::Server::http(&addrs[..]).map_err(|e| {
        failure(
            format!("cannot listen on {}:{}: {e}", args.host, args.port),
            "the port may be in use: pick another with --port, or --port 0 for any free one",
        )
    })?;
    let addr = match server.server_addr().to_ip() {
        Some(addr) => addr,
        None => bail!("the server is not listening on an IP address"),
    };
    writeln!(out, "heaplens dashboard for {name}: {}", url(addr, &config))?;
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;

    let interrupted = || caller.interrupted.is_some_and(|f| f());
    let (send, receive) = mpsc::channel::<tiny_http::Request>();
    let receive = Mutex::new(receive);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                // Holding the lock only to take one request: the others wait for the next.
                let next = match receive.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(request) => answer(&config, &source, request),
                    Err(_) => return,
                }
            });
        }
        let result = loop {
            if interrupted() {
                break Ok(());
            }
            match server.recv_timeout(POLL) {
                Ok(Some(request)) => {
                    if send.send(request).is_err() {
                        break Ok(());
                    }
                }
                Ok(None) => {}
                Err(e) => break Err(anyhow::Error::from(e).context("the server stopped")),
            }
        };
        drop(send);
        result
    })?;
    writeln!(out, "interrupted; the dashboard is stopped")?;
    Ok(crate::OK)
}

/// The addresses `--host --port` name (a name such as `localhost` may give several).
fn resolve(args: &Args) -> Result<Vec<SocketAddr>> {
    let host = args
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&args.host);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, args.port)],
        Err(_) => (host, args.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default(),
    };
    if addrs.is_empty() {
        return Err(failure(
            format!("cannot find the address of --host {}", args.host),
            "give an IP address (127.0.0.1, ::1, 0.0.0.0 with --token) or a name this machine \
             resolves",
        ));
    }
    Ok(addrs)
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

/// Answers one request; a client that went away is not an error.
fn answer(config: &Config, source: &FileSource, mut request: tiny_http::Request) {
    let response = match read_request(&mut request) {
        Ok(req) => heaplens_dashboard::handle(config, source, &req),
        Err(refusal) => {
            let mut refusal = refusal;
            heaplens_dashboard::security::add_headers(&mut refusal);
            refusal
        }
    };
    // tiny_http would otherwise name itself in a `Server` header.
    let server = ("Server".to_string(), "heaplens".to_string());
    let headers = response
        .headers
        .iter()
        .chain(std::iter::once(&server))
        .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).ok())
        .collect();
    let length = response.body.len();
    let reply = tiny_http::Response::new(
        tiny_http::StatusCode(response.status),
        headers,
        std::io::Cursor::new(response.body),
        Some(length),
        None,
    );
    let _ = request.respond(reply);
}

/// The dashboard's request for a wire request, or the refusal when it is too large.
fn read_request(
    request: &mut tiny_http::Request,
) -> std::result::Result<heaplens_dashboard::Request, heaplens_dashboard::Response> {
    use heaplens_dashboard::Response;
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len())
        .sum();
    if request.headers().len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Err(Response::error(431, "the request's headers are too large"));
    }
    if request.body_length().is_some_and(|n| n as u64 > MAX_BODY) {
        return Err(Response::error(413, "the request's body is too large"));
    }
    let mut body = Vec::new();
    if request
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .is_err()
    {
        return Err(Response::error(400, "the request's body could not be read"));
    }
    if body.len() as u64 > MAX_BODY {
        return Err(Response::error(413, "the request's body is too large"));
    }
    // HEAD is answered as GET: the server leaves out the body but keeps its Content-Length.
    let method = match request.method() {
        tiny_http::Method::Head => "GET".to_string(),
        m => m.as_str().to_string(),
    };
    let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
    // An absolute-form target (`GET http://host/path`) names the path after the authority.
    let path = match path.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    Ok(heaplens_dashboard::Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect(),
        loopback: request
            .remote_addr()
            .is_some_and(|a| a.ip().to_canonical().is_loopback()),
        body,
    })
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
