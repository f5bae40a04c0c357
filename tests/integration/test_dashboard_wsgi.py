"""The dashboard as WSGI middleware, over a real Flask app that leaks on every request."""

import contextlib
import doctest
import gc
import importlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
from conftest import ReverseProxy, http_get, refcount_at, wait_for_samples

from heaplens.wsgi import HeapLens

# Flask is imported by the tests that use it, not when this file is collected: importing it
# leaves cyclic garbage whose collection, in the middle of another test's pair of snapshots (in
# the same xdist worker), frees addresses that test's new objects then reuse.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("flask") is None, reason="Flask is not installed"
)

MOUNT = "/_heaplens"
CSRF = {"X-HeapLens": "1"}


class LeakyOrder:
    """What the app leaks: one per request to /order, kept in ``_ORDERS`` for ever."""

    def __init__(self, n):
        self.n = n
        self.lines = [n] * 4


_ORDERS = []


def make_app(**options):
    import flask

    app = flask.Flask("leaky_shop")

    @app.route("/order")
    def order():
        _ORDERS.append(LeakyOrder(len(_ORDERS)))
        return {"orders": len(_ORDERS)}

    @app.route("/echo/<path:rest>")
    def echo(rest):
        environ = flask.request.environ
        return {"path_info": environ["PATH_INFO"], "query": environ["QUERY_STRING"]}

    app.wsgi_app = HeapLens(app.wsgi_app, **options)
    return app


@pytest.fixture
def app():
    app = make_app(period=0.05)
    yield app
    app.wsgi_app.close()
    _ORDERS.clear()


@pytest.fixture(autouse=True)
def no_garbage_left_behind():
    """Collects the apps' reference cycles after each test: other tests in this worker compare
    snapshots, and a collection in the middle of theirs frees addresses their new objects reuse.
    """
    yield
    gc.collect()


def test_requests_outside_the_mount_reach_the_app_untouched(app):
    client = app.test_client()
    answer = client.get("/echo/a%20b/_heaplens?x=1")
    assert answer.status_code == 200
    assert answer.get_json() == {"path_info": "/echo/a b/_heaplens", "query": "x=1"}
    # A path that only starts like the mount point is the app's too.
    assert client.get("/_heaplensx").status_code == 404
    assert "Content-Security-Policy" not in client.get("/order").headers


def test_the_bare_mount_redirects_to_the_page(app):
    answer = app.test_client().get(MOUNT + "?token=t")
    assert answer.status_code == 301
    assert answer.headers["Location"].endswith(MOUNT + "/?token=t")


def test_the_page_is_served_with_security_headers(app):
    answer = app.test_client().get(MOUNT + "/")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/html")
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Length"] == str(len(answer.data))
    info = app.test_client().get(MOUNT + "/api/info").get_json()
    assert info["live"] is True
    assert info["can_take_snapshot"] is True
    assert info["program"] == "leaky_shop", "the Flask app's import name, not its wsgi_app"


def test_the_overview_shows_the_type_that_leaks(app):
    client = app.test_client()
    sampler = app.wsgi_app.sampler
    for _ in range(4):
        for _ in range(25):
            assert client.get("/order").status_code == 200
        wait_for_samples(sampler, 1)
    overview = client.get(MOUNT + "/api/overview").get_json()
    rows = {row["name"]: row for row in overview["types"]}
    name = next(n for n in rows if n.endswith("LeakyOrder"))
    assert rows[name]["count"] >= 100
    assert rows[name]["trend"]["last"] > rows[name]["trend"]["first"]


def test_two_snapshots_name_the_leak_and_what_holds_it(app):
    client = app.test_client()
    # Taking a snapshot changes state: a GET is refused, and so is a POST without the header.
    assert client.get(MOUNT + "/api/snapshot").status_code == 405
    assert client.post(MOUNT + "/api/snapshot").status_code == 403
    assert client.get(MOUNT + "/api/diff").status_code == 404
    for _ in range(20):
        client.get("/order")

    def own_bytes():
        return client.get(MOUNT + "/api/info").get_json()["memory"]["own_bytes"]

    gc.collect()
    before = own_bytes()
    first = client.post(MOUNT + "/api/snapshot", headers=CSRF)
    assert first.status_code == 200, first.data
    one = own_bytes() - before
    assert one > 0, "a kept snapshot is heaplens' own memory"
    for _ in range(300):
        client.get("/order")
    second = client.post(MOUNT + "/api/snapshot", headers=CSRF)
    assert second.status_code == 200, second.data
    assert second.get_json()["diff"] is not None
    # The first snapshot is let go once compared: the dashboard keeps one, not two.
    assert own_bytes() - before < 1.5 * one, (before, one, own_bytes())
    assert client.get(MOUNT + "/api/info").get_json()["has_previous"] is True
    metrics = client.get(MOUNT + "/metrics").get_data(as_text=True)
    assert "\nheaplens_own_memory_bytes{pid=" in metrics

    diff = client.get(MOUNT + "/api/diff").get_json()
    grew = {row["name"]: row["count_delta"] for row in diff["grew"]}
    leaked = next(n for n in grew if n.endswith("LeakyOrder"))
    assert grew[leaked] >= 300
    suspect = next(
        s for s in diff["suspects"] if any(t["name"] == leaked for t in s["types"])
    )
    assert "_ORDERS" in suspect["holder_path"]
    assert "LeakyOrder" in diff["text"]


def test_trace_alloc_shows_where_the_suspects_objects_were_allocated():
    """``trace_alloc=True`` starts tracemalloc with the middleware: the comparison then says,
    beside the path, which line of the view allocated the leaked orders."""
    import tracemalloc

    assert not tracemalloc.is_tracing()
    app = make_app(period=60, trace_alloc=True)
    try:
        assert tracemalloc.is_tracing()
        client = app.test_client()
        assert client.post(MOUNT + "/api/snapshot", headers=CSRF).status_code == 200
        for _ in range(200):
            client.get("/order")
        assert client.post(MOUNT + "/api/snapshot", headers=CSRF).status_code == 200
        diff = client.get(MOUNT + "/api/diff").get_json()
    finally:
        tracemalloc.stop()
        app.wsgi_app.close()
        _ORDERS.clear()
    suspect = diff["suspects"][0]
    assert suspect["entry_type"].endswith("LeakyOrder"), diff["text"]
    assert suspect["allocated_at"][-1].endswith(
        "test_dashboard_wsgi.py:51: _ORDERS.append(LeakyOrder(len(_ORDERS)))"
    ), suspect["allocated_at"]
    assert "allocated at (most recent call last):" in diff["text"]


def test_only_loopback_clients_are_answered_without_a_token(app):
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    client = app.test_client()
    answer = client.get(MOUNT + "/api/info", environ_overrides=remote)
    assert answer.status_code == 403
    assert "token" in answer.get_json()["error"]
    # The app itself still answers everyone.
    assert client.get("/order", environ_overrides=remote).status_code == 200
    assert client.get(MOUNT + "/api/info", environ_overrides={"REMOTE_ADDR": "::1"}).status_code == 200


def test_a_token_lets_remote_clients_in_and_is_required_of_everyone():
    app = make_app(period=60, token="s3cret")
    try:
        client = app.test_client()
        remote = {"REMOTE_ADDR": "10.1.2.3"}
        url = MOUNT + "/api/info"
        assert client.get(url, environ_overrides=remote).status_code == 401
        assert client.get(url).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert client.get(url, headers=bad, environ_overrides=remote).status_code == 403
        good = {"Authorization": "Bearer s3cret"}
        assert client.get(url, headers=good, environ_overrides=remote).status_code == 200
        assert client.get(MOUNT + "/?token=s3cret", environ_overrides=remote).status_code == 200
    finally:
        app.wsgi_app.close()


def test_a_configured_token_is_trimmed_and_a_blank_one_refused():
    # A token read from a file or an environment variable often ends in a newline.
    app = make_app(period=60, token=" s3cret\n")
    try:
        good = {"Authorization": "Bearer s3cret"}
        remote = {"REMOTE_ADDR": "10.1.2.3"}
        assert app.test_client().get(MOUNT + "/api/info", headers=good, environ_overrides=remote).status_code == 200
    finally:
        app.wsgi_app.close()
    with pytest.raises(ValueError, match="the token is only whitespace"):
        make_app(period=60, token=" \n")


def test_metrics_are_prometheus_text(app):
    client = app.test_client()
    assert not app.wsgi_app.sampler.running  # started by the first request, not before
    client.get("/order")
    assert app.wsgi_app.sampler.running
    wait_for_samples(app.wsgi_app.sampler, 1)
    answer = client.get(MOUNT + "/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    text = answer.get_data(as_text=True)
    assert "heaplens_python_objects " in text
    assert "heaplens_type_objects{" in text


def test_downloads_are_off_unless_allowed(app):
    client = app.test_client()
    assert client.get(MOUNT + "/download/snapshot.hlsnap").status_code == 403
    allowed = make_app(period=60, allow_downloads=True)
    try:
        client = allowed.test_client()
        assert client.post(MOUNT + "/api/snapshot", headers=CSRF).status_code == 200
        answer = client.get(MOUNT + "/download/snapshot.hlsnap")
        assert answer.status_code == 200
        assert "attachment" in answer.headers["Content-Disposition"]
    finally:
        allowed.wsgi_app.close()


def test_a_large_body_is_refused_without_being_read(app):
    answer = app.test_client().post(
        MOUNT + "/api/snapshot", headers=CSRF, data=b"x" * ((1 << 20) + 1)
    )
    assert answer.status_code == 413


def test_a_real_server_over_http():
    from werkzeug.serving import make_server  # Flask brings werkzeug

    app = make_app(period=60)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(base + "/order") as answer:
            assert json.load(answer) == {"orders": len(_ORDERS)}
        # urllib follows the redirect of the bare mount to the page.
        with urllib.request.urlopen(base + MOUNT) as answer:
            assert answer.url == base + MOUNT + "/"
            assert answer.headers["Content-Security-Policy"]
        post = urllib.request.Request(base + MOUNT + "/api/snapshot", method="POST", headers=CSRF)
        with urllib.request.urlopen(post) as answer:
            assert json.load(answer)["taken"] is True
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(base + MOUNT + "/api/types/no.Such%3CType%3E")
        assert error.value.code == 404
        error.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        app.wsgi_app.close()
        _ORDERS.clear()


@contextlib.contextmanager
def served(app):
    """Serves ``app`` with werkzeug on a free port of 127.0.0.1; yields ``host:port``."""
    from werkzeug.serving import make_server  # Flask brings werkzeug

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_behind_a_reverse_proxy_only_a_token_lets_clients_in(header):
    """Behind a proxy on the same host every client connects from loopback: without a token,
    a request that came through a proxy is refused (the app itself still answers)."""
    app = make_app(period=60)
    try:
        with served(app) as upstream, ReverseProxy(upstream, header=header) as proxy:
            status, answer = http_get(proxy.url + MOUNT + "/api/info")
            assert status == 403
            assert header in answer["error"] and "token" in answer["error"]
            status, answer = http_get(proxy.url + MOUNT + "/api/snapshot", "POST", CSRF)
            assert status == 403
            assert http_get(proxy.url + "/order")[0] == 200
            # Straight to the app, from this machine, it answers.
            assert http_get(f"http://{upstream}{MOUNT}/api/info")[0] == 200
    finally:
        app.wsgi_app.close()
    secured = make_app(period=60, token="s3cret")
    try:
        with served(secured) as upstream, ReverseProxy(upstream, header=header) as proxy:
            token = {"Authorization": "Bearer s3cret"}
            assert http_get(proxy.url + MOUNT + "/api/info", headers=token)[0] == 200
            assert http_get(proxy.url + MOUNT + "/api/info")[0] == 401
    finally:
        secured.wsgi_app.close()
        _ORDERS.clear()


def test_requests_for_another_host_name_are_refused_without_a_token():
    """DNS rebinding: a page at http://rebind.test:PORT, once the name resolves to 127.0.0.1,
    reaches the dashboard from the browser of the developer, same-origin. Without a token only
    requests addressed to a loopback address or to localhost are answered."""
    app = make_app(period=60)
    try:
        with served(app) as upstream:
            port = upstream.rsplit(":", 1)[1]
            url = f"http://{upstream}{MOUNT}/api/info"
            for host in (f"rebind.test:{port}", "rebind.test", f"127.0.0.1.evil.test:{port}",
                         f"localhost.evil.test:{port}", f"10.0.0.1:{port}"):
                status, answer = http_get(url, headers={"Host": host})
                assert status == 403, host
                assert "Host" in answer["error"] and "token" in answer["error"]
                status, _ = http_get(url.replace("api/info", "api/snapshot"), "POST",
                                     {"Host": host, **CSRF})
                assert status == 403, host
            for host in (upstream, f"localhost:{port}", "localhost", f"LOCALHOST:{port}",
                         f"[::1]:{port}", f"127.0.0.2:{port}"):
                assert http_get(url, headers={"Host": host})[0] == 200, host
    finally:
        app.wsgi_app.close()
    secured = make_app(period=60, token="s3cret")
    try:
        with served(secured) as upstream:
            headers = {"Host": "dashboard.example.com", "Authorization": "Bearer s3cret"}
            assert http_get(f"http://{upstream}{MOUNT}/api/info", headers=headers)[0] == 200
    finally:
        secured.wsgi_app.close()


@pytest.mark.parametrize("name", ["heaplens.wsgi", "heaplens._middleware"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def _plain_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _wsgi_get(wrapped, path, method="GET", **environ):
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_HEAPLENS": "1",
        "wsgi.input": io.BytesIO(),
    }
    base.update(environ)
    seen = []
    body = b"".join(wrapped(base, lambda status, headers: seen.append(status)))
    return seen[0], body


@pytest.mark.parametrize(
    "path, method",
    [
        ("/", "GET"),
        ("/elsewhere", "GET"),
        (MOUNT, "GET"),
        (MOUNT + "/", "GET"),
        (MOUNT + "/api/info", "GET"),
        (MOUNT + "/api/overview", "GET"),
        (MOUNT + "/api/snapshot", "POST"),
        (MOUNT + "/api/diff", "GET"),
        (MOUNT + "/metrics", "GET"),
    ],
)
def test_a_request_creates_no_cycles_and_keeps_nothing_alive(path, method):
    wrapped = HeapLens(_plain_app, period=60)
    try:
        sentinel = LeakyOrder(0)
        _wsgi_get(wrapped, path, method, sentinel=sentinel)  # warm one-time caches
        gc.collect()
        refcount = refcount_at(id(sentinel))
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            status, _ = _wsgi_get(wrapped, path, method, sentinel=sentinel)
            assert gc.collect() == 0, f"{method} {path} left cyclic garbage behind"
        finally:
            if was_enabled:
                gc.enable()
        assert refcount_at(id(sentinel)) == refcount, f"{method} {path} kept the environ alive"
        assert not status.startswith("5"), status
    finally:
        wrapped.close()


# Runs in an interpreter of its own, where heaplens' threads are the only ones besides the main
# thread: CPython 3.12+ warns (an error here, with -W error) when a process with other threads
# forks, and a test worker may still have another test's server threads winding down.
FORKED_WORKER = r"""
import io, json, os, sys, time
from heaplens.wsgi import HeapLens

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

def get(wrapped, path, method="GET"):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
               "REMOTE_ADDR": "127.0.0.1", "HTTP_X_HEAPLENS": "1", "wsgi.input": io.BytesIO()}
    seen = []
    body = b"".join(wrapped(environ, lambda status, headers: seen.append(status)))
    return seen[0], body

def wait_for_samples(sampler, n):
    target = len(sampler) + n
    deadline = time.monotonic() + 60  # only ends a hang
    while len(sampler) < target:
        assert time.monotonic() < deadline, "the sampler took no samples"
        time.sleep(0.05)

wrapped = HeapLens(app, period=0.05)
get(wrapped, "/_heaplens/api/snapshot", "POST")
assert wrapped.sampler.running
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # the child: answer through the pipe, then leave at once
    try:
        wait_for_samples(wrapped.sampler, 2)
        status, body = get(wrapped, "/_heaplens/api/info")
        info = json.loads(body)
        ok = (status.startswith("200") and info["pid"] == os.getpid()
              and not info["has_snapshot"] and wrapped.sampler.running)
        os.write(write, b"ok" if ok else body)
    finally:
        os._exit(0)
os.close(write)
with os.fdopen(read, "rb") as pipe:
    answer = pipe.read()
assert os.waitpid(pid, 0)[1] == 0
assert answer == b"ok", answer
# The parent's sampler was stopped for the fork and runs again.
assert wrapped.sampler.running
wrapped.close()
print("forked worker ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_a_forked_worker_samples_itself_and_forgets_the_parents_snapshots():
    # No thread of heaplens runs across the fork (CPython 3.12+ warns about forking a
    # multi-threaded process, and the child could inherit a lock held by a sampler thread).
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", FORKED_WORKER],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0 and "forked worker ok" in done.stdout, done.stderr
