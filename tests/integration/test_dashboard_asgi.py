"""The dashboard as ASGI middleware, over a real Starlette app that leaks on every request.

Starlette's TestClient connects as the client ``("testclient", 50000)``, which is not an IP
address and so not loopback: the tests either set the client to 127.0.0.1 or use a token.
Its default host name, ``testserver``, is not local either: they address ``localhost``.
"""

import contextlib
import doctest
import gc
import importlib
import importlib.util

import pytest
from conftest import wait_for_samples

from heaplens.asgi import HeapLens

# Starlette is imported by the tests, not when this file is collected (see the WSGI tests: an
# import's cyclic garbage, collected during another test's pair of snapshots, skews its diff).
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("starlette") is None, reason="Starlette is not installed"
)


def TestClient(app, **options):  # noqa: N802  (stands for Starlette's class)
    from starlette.testclient import TestClient

    # Starlette's default host name, `testserver`, is not local: without a token the dashboard
    # answers only requests addressed to localhost or a loopback address (DNS rebinding).
    options.setdefault("base_url", "http://localhost")
    return TestClient(app, **options)

MOUNT = "/_heaplens"
CSRF = {"X-HeapLens": "1"}
LOCAL = ("127.0.0.1", 50000)


class LeakyAsgiOrder:
    """What the app leaks: one per request to /order, kept in ``_ASGI_ORDERS`` for ever."""

    def __init__(self, n):
        self.n = n


_ASGI_ORDERS = []
_STARTED = []


def make_app(**options):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute

    async def order(request):
        _ASGI_ORDERS.append(LeakyAsgiOrder(len(_ASGI_ORDERS)))
        return JSONResponse({"orders": len(_ASGI_ORDERS)})

    async def echo(request):
        return JSONResponse({"path": request.url.path, "query": request.url.query})

    async def ws(websocket):
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        _STARTED.append(True)
        yield

    app = Starlette(
        routes=[
            Route("/order", order),
            Route("/echo/{rest:path}", echo),
            WebSocketRoute("/_heaplens/ws", ws),
        ],
        lifespan=lifespan,
    )
    return HeapLens(app, **options)


@pytest.fixture
def app():
    app = make_app(period=0.05)
    yield app
    app.close()
    _ASGI_ORDERS.clear()


@pytest.fixture(autouse=True)
def no_garbage_left_behind():
    """Collects the apps' reference cycles after each test: other tests in this worker compare
    snapshots, and a collection in the middle of theirs frees addresses their new objects reuse.
    """
    yield
    gc.collect()


def test_other_paths_lifespan_and_websockets_reach_the_app(app):
    _STARTED.clear()
    with TestClient(app, client=LOCAL) as client:
        assert _STARTED == [True]
        answer = client.get("/echo/a%20b/_heaplens?x=1")
        assert answer.json() == {"path": "/echo/a b/_heaplens", "query": "x=1"}
        assert "content-security-policy" not in answer.headers
        assert client.get("/_heaplensx").status_code == 404
        # A websocket under the mount point is the app's: the dashboard answers http only.
        with client.websocket_connect(MOUNT + "/ws") as ws:
            assert ws.receive_text() == "hello"


def test_the_bare_mount_redirects_and_the_page_has_security_headers(app):
    client = TestClient(app, client=LOCAL, follow_redirects=False)
    answer = client.get(MOUNT)
    assert answer.status_code == 301
    assert answer.headers["location"] == MOUNT + "/"
    page = client.get(MOUNT + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-length"] == str(len(page.content))


def test_the_overview_shows_the_type_that_leaks(app):
    client = TestClient(app, client=LOCAL)
    for _ in range(4):
        for _ in range(25):
            assert client.get("/order").status_code == 200
        wait_for_samples(app.sampler, 1)
    rows = {row["name"]: row for row in client.get(MOUNT + "/api/overview").json()["types"]}
    name = next(n for n in rows if n.endswith("LeakyAsgiOrder"))
    assert rows[name]["count"] >= 100
    assert rows[name]["trend"]["last"] > rows[name]["trend"]["first"]


def test_two_snapshots_name_the_leak_and_what_holds_it(app):
    client = TestClient(app, client=LOCAL)
    assert client.post(MOUNT + "/api/snapshot").status_code == 403  # no CSRF header
    for _ in range(20):
        client.get("/order")
    assert client.post(MOUNT + "/api/snapshot", headers=CSRF).status_code == 200
    for _ in range(300):
        client.get("/order")
    assert client.post(MOUNT + "/api/snapshot", headers=CSRF).status_code == 200
    diff = client.get(MOUNT + "/api/diff").json()
    grew = {row["name"]: row["count_delta"] for row in diff["grew"]}
    leaked = next(n for n in grew if n.endswith("LeakyAsgiOrder"))
    assert grew[leaked] >= 300
    suspect = next(
        s for s in diff["suspects"] if any(t["name"] == leaked for t in s["types"])
    )
    assert "_ASGI_ORDERS" in suspect["holder_path"]


def test_a_client_that_is_not_loopback_needs_the_token():
    app = make_app(period=60, token="s3cret")
    try:
        client = TestClient(app)  # the client is "testclient": not loopback
        url = MOUNT + "/api/info"
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 403
        answer = client.get(url, headers={"X-HeapLens-Token": "s3cret"})
        assert answer.status_code == 200
        assert answer.json()["live"] is True
    finally:
        app.close()
    untokened = make_app(period=60)
    try:
        remote = TestClient(untokened, client=("10.1.2.3", 4000))
        assert remote.get(MOUNT + "/api/info").status_code == 403
        assert TestClient(untokened).get(MOUNT + "/api/info").status_code == 403
        assert remote.get("/order").status_code == 200
        assert TestClient(untokened, client=("::1", 1)).get(MOUNT + "/").status_code == 200
    finally:
        untokened.close()


def test_a_request_through_a_proxy_or_for_another_host_needs_the_token():
    """Behind a proxy on the same host every client is loopback, and a page at
    http://rebind.test resolving to 127.0.0.1 is the developer's own browser (DNS rebinding):
    without a token neither is answered."""
    untokened = make_app(period=60)
    try:
        local = TestClient(untokened, client=LOCAL)
        assert local.get(MOUNT + "/api/info").status_code == 200
        proxied = local.get(MOUNT + "/api/info", headers={"X-Forwarded-For": "203.0.113.9"})
        assert proxied.status_code == 403 and "X-Forwarded-For" in proxied.json()["error"]
        assert local.get("/order", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
        rebound = TestClient(untokened, client=LOCAL, base_url="http://rebind.test:8000")
        answer = rebound.post(MOUNT + "/api/snapshot", headers=CSRF)
        assert answer.status_code == 403 and "Host" in answer.json()["error"]
        assert rebound.get(MOUNT + "/api/info").status_code == 403
    finally:
        untokened.close()
    app = make_app(period=60, token="s3cret")
    try:
        token = {"Authorization": "Bearer s3cret", "X-Forwarded-For": "203.0.113.9"}
        client = TestClient(app, base_url="https://heaplens.example.com")
        assert client.get(MOUNT + "/api/info", headers=token).status_code == 200
    finally:
        app.close()


def test_metrics_are_prometheus_text(app):
    client = TestClient(app, client=LOCAL)
    client.get("/order")
    wait_for_samples(app.sampler, 1)
    answer = client.get(MOUNT + "/metrics")
    assert answer.status_code == 200
    assert "heaplens_python_objects " in answer.text


def test_docstring_examples():
    result = doctest.testmod(importlib.import_module("heaplens.asgi"))
    assert result.attempted > 0
    assert result.failed == 0
