//! The HTTP/1.1 layer of `heaplens serve`: accepts connections, reads each request head within a
//! deadline, refuses what the dashboard cannot take before reading it, and hands whole requests to
//! a few workers that never touch a socket.
//!
//! Why not tiny_http, which served here before: it gives no access to its sockets, so no read
//! could have a deadline, and a worker reading a request's body waited for it as long as the
//! client liked. Four clients that sent `Content-Length: 100000` and then nothing held the four
//! workers, before any token was checked; it also took the first of two conflicting
//! `Content-Length` headers. hyper would bring an async runtime, much of the binary for a page one
//! person looks at. So the request head is parsed by httparse (hyper's parser: no dependencies, no
//! allocation) and the rest is the standard library:
//!
//! - Each connection has a thread of its own, at most [`MAX_CONNECTIONS`] at once (the next one
//!   is answered 503 at once). That thread only reads and writes; the dashboard's work runs on
//!   [`WORKERS`] workers, so no client, however slow, holds one.
//! - A request head must arrive whole within [`HEAD_DEADLINE`] (from the connection's start for
//!   its first request, from its first byte for a later one), else 408; a kept-alive connection
//!   waits [`IDLE`] for its next request, then is closed.
//! - No request has a body (the dashboard's one POST takes none): a `Content-Length` other than
//!   0, or a `Transfer-Encoding`, is refused (413) before a byte of the body is read; two
//!   `Content-Length` values that differ, or one that is not a number, are a 400.
//! - A response goes out in pieces of [`WRITE_CHUNK`], each of which the client must take within
//!   [`WRITE_STALL`].
//! - A refusal closes the connection: the server stops sending, then reads and drops what the
//!   client still sends for at most [`LINGER`], so that the client reads the refusal instead of a
//!   reset.
//!
//! The accept loop runs on the caller's thread, which must ask for Ctrl-C (see the parent
//! module): the listener does not block, the loop sleeps [`ACCEPT_POLL`] when no client is
//! waiting and asks every [`INTERRUPT_POLL`]. At the end every open connection is shut down, so that the threads end at
//! once rather than at their deadlines.

use heaplens_dashboard::Response;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// How many threads answer requests.
pub const WORKERS: usize = 4;
/// The most connections served at once; the next one is answered 503.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a client has to send a whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE: Duration = Duration::from_secs(5);
/// How long a client may take to accept each [`WRITE_CHUNK`] of a response.
pub const WRITE_STALL: Duration = Duration::from_secs(10);
pub const WRITE_CHUNK: usize = 64 * 1024;
/// How long a refused client's remaining bytes are read (and dropped) before the connection
/// closes.
pub const LINGER: Duration = Duration::from_secs(2);
/// How long the accept loop sleeps when no client is waiting.
pub const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// How often the accept loop asks whether to stop (in the console script that takes the GIL).
pub const INTERRUPT_POLL: Duration = Duration::from_millis(100);
/// The most bytes of a request head (request line and headers); more is a 431.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header bytes (names and values) and headers a request may carry; more is a 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
pub const MAX_HEADERS: usize = 100;
/// The stack of a connection's thread: it parses a head and copies bytes, nothing deep.
const CONNECTION_STACK: usize = 256 * 1024;

/// A request head, as the handler gets it: a request has no body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub method: String,
    /// The request target as sent (`/path?query`, or an absolute URL).
    pub target: String,
    /// Names and values in the order sent (values that are not UTF-8 are read lossily).
    pub headers: Vec<(String, String)>,
    pub peer: SocketAddr,
}

/// What reading a request head gave.
#[derive(Debug)]
enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A whole head of `len` bytes; `close` when the connection ends after the answer.
    Head {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        close: bool,
        len: usize,
    },
}

/// A refusal, with the security headers of every dashboard answer.
fn refusal(status: u16, message: &str) -> Response {
    let mut response = Response::error(status, message);
    heaplens_dashboard::security::add_headers(&mut response);
    response
}

/// Parses the head at the start of `buf`, or says why it is refused.
fn parse(buf: &[u8]) -> Result<Parsed, Response> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEAD {
                return Err(refusal(431, "the request's headers are too large"));
            }
            return Ok(Parsed::Partial);
        }
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refusal(431, "the request has too many headers"))
        }
        Err(httparse::Error::Version) => {
            return Err(refusal(505, "only HTTP/1.0 and HTTP/1.1 are served"))
        }
        Err(e) => return Err(refusal(400, &format!("a malformed request: {e}"))),
    };
    if len > MAX_HEAD {
        return Err(refusal(431, "the request's headers are too large"));
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(refusal(431, "the request's headers are too large"));
    }
    check_no_body(&headers)?;
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let close = request.version != Some(1)
        || named("connection")
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"));
    Ok(Parsed::Head {
        method: request.method.unwrap_or_default().to_string(),
        target: request.path.unwrap_or_default().to_string(),
        headers,
        close,
        len,
    })
}

/// Refuses a request that has (or may have) a body: the dashboard takes none, so none is read.
fn check_no_body(headers: &[(String, String)]) -> Result<(), Response> {
    let mut length: Option<u64> = None;
    let lengths = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        // `Content-Length: 5, 5` is allowed: a list of one value, repeated.
        .flat_map(|(_, v)| v.split(','));
    for text in lengths {
        let text = text.trim_matches([' ', '\t']);
        let value = match text.parse::<u64>() {
            Ok(v) if text.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => {
                return Err(refusal(
                    400,
                    &format!("the Content-Length {text:?} is not a number of bytes"),
                ))
            }
        };
        if length.is_some_and(|l| l != value) {
            return Err(refusal(
                400,
                "the request has conflicting Content-Length headers",
            ));
        }
        length = Some(value);
    }
    let chunked = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    if chunked && length.is_some() {
        return Err(refusal(
            400,
            "the request has both Transfer-Encoding and Content-Length",
        ));
    }
    if chunked || length.is_some_and(|l| l > 0) {
        return Err(refusal(
            413,
            "the dashboard takes no request body (its one POST has none)",
        ));
    }
    Ok(())
}

/// The reason phrase of the statuses the dashboard and this layer answer with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The bytes of `response`'s status line and headers. Framing headers are this layer's: the
/// handler's own `Content-Length`, `Connection` or `Transfer-Encoding` are left out, and so is
/// any header that could split the head (a CR or LF in it).
fn head_bytes(response: &Response, close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    let framing = [
        "content-length",
        "connection",
        "transfer-encoding",
        "server",
    ];
    for (name, value) in &response.headers {
        if framing.iter().any(|f| name.eq_ignore_ascii_case(f))
            || name.is_empty()
            || format!("{name}{value}").contains(['\r', '\n'])
            || name.contains(':')
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Server: heaplens\r\nContent-Length: {}\r\n",
        response.body.len()
    ));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes `bytes` in pieces of [`WRITE_CHUNK`], each taken by the client within [`WRITE_STALL`].
fn write_paced(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        let deadline = Instant::now() + WRITE_STALL;
        let mut rest = chunk;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            stream.set_write_timeout(Some(left))?;
            match stream.write(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Sends `response` (its body unless `head_only`).
fn respond(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    write_paced(stream, &head_bytes(response, close))?;
    if !head_only {
        write_paced(stream, &response.body)?;
    }
    stream.flush()
}

/// Ends a connection whose client may still be sending: stops sending, and reads (and drops)
/// what comes for at most [`LINGER`], so that the client's kernel does not answer our last bytes
/// with a reset before the client read them.
fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    let mut read = 0usize;
    while read < (1 << 20) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut scratch) {
            Ok(0) => return,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// A request handed to a worker, and where its answer goes.
struct Job {
    request: Incoming,
    reply: mpsc::Sender<Response>,
}

/// The open connections: how many, and a handle on each to shut it down at the end.
#[derive(Default)]
struct Open {
    streams: Mutex<(u64, HashMap<u64, TcpStream>)>,
}

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, TcpStream>)> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `stream`; None when [`MAX_CONNECTIONS`] are open already.
    fn add(&self, stream: &TcpStream) -> Option<u64> {
        let mut open = self.lock();
        if open.1.len() >= MAX_CONNECTIONS {
            return None;
        }
        let handle = stream.try_clone().ok()?;
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, handle);
        Some(id)
    }

    fn remove(&self, id: u64) {
        self.lock().1.remove(&id);
    }

    /// Shuts every open connection down: its thread's read or write fails at once.
    fn shut_all(&self) {
        for stream in self.lock().1.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Serves one connection until the client closes it, a deadline passes or a request is refused.
fn connection(mut stream: TcpStream, peer: SocketAddr, jobs: mpsc::Sender<Job>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut deadline = Instant::now() + HEAD_DEADLINE;
    // Whether the connection waits for its next request (after an answer, with nothing sent).
    let mut idle = false;
    loop {
        // Read until a whole head is in `buf`.
        let (method, target, headers, close, len) = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    Ok(Parsed::Partial) => {}
                    Ok(Parsed::Head {
                        method,
                        target,
                        headers,
                        close,
                        len,
                    }) => break (method, target, headers, close, len),
                    Err(refused) => {
                        let head_only = buf.starts_with(b"HEAD ");
                        let _ = respond(&mut stream, &refused, head_only, true);
                        return linger(stream);
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if !buf.is_empty() {
                    let late = refusal(408, "the request did not arrive in time");
                    let _ = respond(&mut stream, &late, false, true);
                    return linger(stream);
                }
                return; // idle: closed without a word, as servers do
            }
            if stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    if std::mem::take(&mut idle) {
                        // A kept-alive connection's next request has begun: its head has
                        // HEAD_DEADLINE from here (the first request's counts from the start).
                        deadline = Instant::now() + HEAD_DEADLINE;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return,
            }
        };
        buf.drain(..len);
        let head_only = method == "HEAD";
        let (reply, answer) = mpsc::channel();
        let request = Incoming {
            method,
            target,
            headers,
            peer,
        };
        if jobs.send(Job { request, reply }).is_err() {
            return;
        }
        let Ok(response) = answer.recv() else {
            return;
        };
        if respond(&mut stream, &response, head_only, close).is_err() {
            return;
        }
        if close {
            return linger(stream);
        }
        // The next request: already begun (sent right behind this one), or awaited.
        idle = buf.is_empty();
        deadline = Instant::now() + if idle { IDLE } else { HEAD_DEADLINE };
    }
}

/// Answers a client over the connection limit, and closes.
fn busy(mut stream: TcpStream) {
    let mut response = refusal(503, "the server is busy: try again in a moment");
    response
        .headers
        .push(("Retry-After".to_string(), "1".to_string()));
    // A fresh socket's send buffer takes this at once; the timeout is a guard.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&head_bytes(&response, true));
    let _ = stream.write_all(&response.body);
}

/// Serves `listener` until `interrupted` says so, answering each request with `handle` (run on
/// one of [`WORKERS`] threads). Returns when every connection's thread has ended.
pub fn serve(
    listener: TcpListener,
    interrupted: &dyn Fn() -> bool,
    handle: &(dyn Fn(Incoming) -> Response + Sync),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let open = Open::default();
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Mutex::new(queue);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                // Holding the lock only to take one job: the others wait for the next.
                let next = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok(job) = next else { return };
                let _ = job.reply.send(handle(job.request));
            });
        }
        let mut asked = Instant::now();
        loop {
            if asked.elapsed() >= INTERRUPT_POLL {
                if interrupted() {
                    break;
                }
                asked = Instant::now();
            }
            match listener.accept() {
                Ok((stream, peer)) => {
                    // Accepted sockets inherit the listener's non-blocking mode on some systems.
                    if stream.set_nonblocking(false).is_err() {
                        continue;
                    }
                    let Some(id) = open.add(&stream) else {
                        busy(stream);
                        continue;
                    };
                    let jobs = jobs.clone();
                    let open = &open;
                    let spawned = std::thread::Builder::new()
                        .name("heaplens-serve-conn".into())
                        .stack_size(CONNECTION_STACK)
                        .spawn_scoped(scope, move || {
                            connection(stream, peer, jobs);
                            open.remove(id);
                        });
                    if spawned.is_err() {
                        open.remove(id);
                    }
                }
                // No client waiting; or one that went away before it was accepted, or no file
                // descriptor left for now: none of these stops the server.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => std::thread::sleep(ACCEPT_POLL),
            }
        }
        open.shut_all();
        drop(jobs);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Parsed, Response> {
        parse(text.as_bytes())
    }

    fn status(text: &str) -> u16 {
        match head(text) {
            Err(r) => r.status,
            Ok(Parsed::Partial) => 0,
            Ok(Parsed::Head { .. }) => 200,
        }
    }

    #[test]
    fn a_whole_head_is_parsed_with_its_headers_in_order() {
        let text = "GET /api/info?x=1 HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\nGET /next";
        let Ok(Parsed::Head {
            method,
            target,
            headers,
            close,
            len,
        }) = head(text)
        else {
            panic!("not parsed");
        };
        assert_eq!((method.as_str(), target.as_str()), ("GET", "/api/info?x=1"));
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1], ("host".to_string(), "b".to_string()));
        assert!(!close);
        assert_eq!(&text[len..], "GET /next");
    }

    #[test]
    fn half_a_head_asks_for_more() {
        assert_eq!(status("GET /api/in"), 0);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    }

    #[test]
    fn a_body_is_refused_before_it_is_read() {
        assert_eq!(
            status("GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            413
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            413
        );
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 200);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"),
            200
        );
    }

    #[test]
    fn conflicting_or_malformed_lengths_are_a_bad_request() {
        for text in [
            "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 100\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 0, 7\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(status(text), 400, "{text:?}");
        }
    }

    #[test]
    fn oversized_or_malformed_heads_are_refused() {
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
        let long = "x".repeat(MAX_HEAD);
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nX: {long}")), 431);
        assert_eq!(
            status("GET / HTTP/1.1\r\nX: y\r\n a folded line\r\n\r\n"),
            400
        );
        // A TLS handshake sent to the plain-HTTP port.
        let tls = parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
        assert_eq!(tls.err().map(|r| r.status), Some(400));
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
    }

    #[test]
    fn http_1_0_and_connection_close_end_the_connection() {
        for (text, closes) in [
            ("GET / HTTP/1.0\r\n\r\n", true),
            (
                "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
                true,
            ),
            ("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", false),
        ] {
            let Ok(Parsed::Head { close, .. }) = head(text) else {
                panic!("{text:?}");
            };
            assert_eq!(close, closes, "{text:?}");
        }
    }

    #[test]
    fn the_response_head_frames_the_body_itself() {
        let response = Response {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("Content-Length".into(), "999".into()),
                ("X-Split".into(), "a\r\nSet-Cookie: b".into()),
            ],
            body: b"hello".to_vec(),
        };
        let head = String::from_utf8(head_bytes(&response, true)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: heaplens\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }
}
