"""``heaplens serve`` against slow, idle and malformed clients, over real sockets.

The server answers on 4 worker threads. Before it had deadlines, four clients that sent a request
head with ``Content-Length: 100000`` and then nothing held all four (each waiting for a body that
never came) and every other client waited with them, token or not. Here more clients than
workers stall in every way a client can (half a request line, headers dripping in, a body
announced and not sent, a kept-alive connection left idle, nothing at all), and a normal client
must still be answered. Timeouts are generous guards against a hang, never timing assertions.
"""

import contextlib
import re
import socket
import threading
import urllib.error
import urllib.request

import pytest

import conftest
import heaplens


# More stalled clients of each kind than the server has workers (4).
STALLED = 8
# Guards against a hang (the machine may be loaded), not timing assertions.
PATIENCE = 60
TOKEN = "s3cret-t0ken-for-tests"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve-clients") / "app.hlsnap"
    heaplens.snapshot().save(str(path))
    return path


@contextlib.contextmanager
def serving(snapshot, *extra):
    """A ``heaplens serve`` subprocess on a free port: yields the port; stopped with Ctrl-C."""
    with conftest.serving("serve", snapshot, "--port", "0", *extra) as url:
        yield int(re.search(r"http://127\.0\.0\.1:(\d+)/", url).group(1))


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def read_answer(sock):
    """Status and body of one response (framed by its Content-Length); None at end of stream."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def exchange(port, raw):
    """Sends ``raw`` on a new connection and reads the answer."""
    with connect(port) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def normal_get(port, token=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/info")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=PATIENCE) as answer:
        return answer.status, answer.read()


def ends_without_a_body_read(sock):
    """What a stalled client gets in the end: a refusal's status, or None when simply closed."""
    try:
        answer = read_answer(sock)
    except ConnectionResetError:
        return None
    return answer[0] if answer else None


@pytest.mark.parametrize(
    "options, token",
    [([], None), (["--host", "0.0.0.0", "--token", TOKEN], TOKEN)],
    ids=["loopback", "any-host-with-token"],
)
def test_stalled_clients_do_not_hold_the_workers(snapshot, options, token):
    with serving(snapshot, *options) as port:
        stalled = {kind: [] for kind in ("body", "request-line", "headers", "idle", "silent")}
        stop_dripping = threading.Event()
        drippers = []
        try:
            for _ in range(STALLED):
                # A request head announcing a body, and then nothing.
                sock = connect(port)
                sock.sendall(b"POST /api/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
                stalled["body"].append(sock)
                # Half a request line.
                sock = connect(port)
                sock.sendall(b"GET /api/in")
                stalled["request-line"].append(sock)
                # Headers dripping in, one at a time, never ending (slowloris).
                sock = connect(port)
                sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
                stalled["headers"].append(sock)
                # A kept-alive connection, answered once and left idle.
                sock = connect(port)
                sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                first = read_answer(sock)
                assert first is not None and first[0] in (200, 401, 403), first
                stalled["idle"].append(sock)
                # Connected, and nothing sent.
                stalled["silent"].append(connect(port))

            def drip(sock):
                n = 0
                while not stop_dripping.wait(0.5):
                    n += 1
                    try:
                        sock.sendall(b"X-Drip-%d: y\r\n" % n)
                    except OSError:
                        return

            for sock in stalled["headers"]:
                thread = threading.Thread(target=drip, args=(sock,), daemon=True)
                thread.start()
                drippers.append(thread)

            # Every stalled client is still connected: a normal client is answered.
            for _ in range(3):
                status, body = normal_get(port, token)
                assert status == 200, body
                assert b"snapshot" in body or b"{" in body

            # A body announced where none is expected is refused at once, without waiting for it.
            for sock in stalled["body"]:
                assert ends_without_a_body_read(sock) == 413
            # The others are ended by the server's deadlines (a request half sent: 408; a
            # connection that sent nothing, or is idle between requests: closed).
            for sock in stalled["request-line"] + stalled["headers"]:
                assert ends_without_a_body_read(sock) in (408, None)
            for sock in stalled["idle"] + stalled["silent"]:
                assert ends_without_a_body_read(sock) is None
            status, _ = normal_get(port, token)
            assert status == 200
        finally:
            stop_dripping.set()
            for thread in drippers:
                thread.join(timeout=PATIENCE)
            for sockets in stalled.values():
                for sock in sockets:
                    sock.close()


def test_conflicting_content_lengths_are_refused(snapshot):
    with serving(snapshot) as port:
        for lengths in ((0, 100000), (100000, 0), (0, 5)):
            head = b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            for n in lengths:
                head += b"Content-Length: %d\r\n" % n
            status, body = exchange(port, head + b"\r\n")
            assert status == 400, body
            assert b"conflicting Content-Length" in body
        # Malformed lengths too.
        for value in (b"+5", b"0x10", b"5 5", b"-1"):
            status, _ = exchange(
                port, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + value + b"\r\n\r\n"
            )
            assert status == 400, value
        # The same length twice is one length.
        status, _ = exchange(
            port,
            b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert status == 200


def test_a_body_where_none_is_expected_is_refused_without_reading_it(snapshot):
    with serving(snapshot) as port:
        # Announced and not sent: answered at once (the server does not wait for it).
        for method in (b"GET", b"HEAD", b"DELETE", b"POST"):
            status, body = exchange(
                port, method + b" /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
            )
            assert status == 413, (method, body)
        # Sent along with the head: the refusal still reaches the client (no reset).
        status, body = exchange(
            port, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert status == 413, body
        # A chunked body, and one with both framings.
        status, _ = exchange(
            port, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert status == 413
        status, _ = exchange(
            port,
            b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 3\r\n\r\n",
        )
        assert status == 400
        # The dashboard's one POST, with no body, is routed as before (offline: 501).
        status, _ = exchange(
            port,
            b"POST /api/snapshot HTTP/1.1\r\nHost: 127.0.0.1\r\nX-HeapLens: 1\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
        )
        assert status == 501
        assert normal_get(port)[0] == 200


def test_kept_alive_and_pipelined_requests_are_answered_in_order(snapshot):
    with serving(snapshot) as port, connect(port) as sock:
        sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answer(sock)[0] == 200
        # Two at once, the second closing the connection.
        sock.sendall(
            b"GET /no/such/page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"HEAD /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        # Both answers may come in one read: read to the end, then take the 404 off the front.
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        first, _, rest = data.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 404 "), data
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", first)
        assert length, first
        head = rest[int(length.group(1)) :].decode("latin-1")
        assert head.startswith("HTTP/1.1 200 "), head
        assert "Connection: close" in head
        # HEAD: no body after the head, whatever its Content-Length says.
        assert head.endswith("\r\n\r\n"), head


def test_malformed_requests_are_refused(snapshot):
    with serving(snapshot) as port:
        assert exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")[0] == 400
        assert exchange(port, b"GET / HTTP/2.0\r\n\r\n")[0] == 505
        many = b"".join(b"X-%d: y\r\n" % i for i in range(200))
        assert exchange(port, b"GET / HTTP/1.1\r\n" + many + b"\r\n")[0] == 431
        assert normal_get(port)[0] == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/api/info", data=b"x" * 10),
                timeout=PATIENCE,
            )
        assert refused.value.code == 413
        refused.value.close()
