"""Per-endpoint growth: the middleware's trace mode, over real Flask (on waitress) and Starlette
apps, read through the dashboard's /api/endpoints as the page reads it."""

import gc
import http.client
import importlib.util
import json
import random
import threading
import time

import pytest

from heaplens.wsgi import HeapLens

from conftest import FinishedRequests

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("flask") is None or importlib.util.find_spec("waitress") is None,
    reason="Flask and waitress are needed",
)

MOUNT = "/_heaplens"


class DocumentValidationError(Exception):
    """What POST /upload leaves behind: three per request, kept in ``_ERRORS``, each with the
    document's fields (a dict) and their problems (a list): nine objects per request."""

    def __init__(self, message):
        super().__init__(message)
        self.fields = {"title": None}
        self.problems = [message]


_ERRORS = []


def make_flask_app(**options):
    import flask

    app = flask.Flask("uploads")
    app.config["slow"] = threading.Event()
    app.config["slow_started"] = threading.Event()

    @app.route("/upload", methods=["POST"])
    def upload():
        for _ in range(3):
            _ERRORS.append(DocumentValidationError("missing title"))
        return "stored"

    @app.route("/health")
    def health():
        return "ok"

    @app.route("/orders/<int:order_id>")
    def order(order_id):
        return {"id": order_id, "lines": [1, 2, 3]}

    @app.route("/cycle")
    def cycle():
        # An exception caught and kept in a local: a frame <-> traceback cycle, garbage at once.
        try:
            raise ValueError("handled")
        except ValueError as e:
            kept = e
        return type(kept).__name__

    @app.route("/slow")
    def slow():
        app.config["slow_started"].set()
        app.config["slow"].wait(30)
        return "slow"

    @app.route("/fail")
    def fail():
        raise RuntimeError("the view failed")

    @app.route("/collect")
    def collect():
        # A full collection: it may reorder every old object in the collector's lists.
        return str(gc.collect())

    everything = options.pop("everything", False)
    app.wsgi_app = HeapLens(app.wsgi_app, period=60, **options)
    if everything:
        # Each census counts every tracked object, as the tracer did before it counted only the
        # objects tracked since a mark (and still does on 3.14.0-3.14.4): the same answers.
        app.wsgi_app._mount.dashboard._trace_everything(True)
    return app


class Server:
    """A real waitress server in a thread, and a keep-alive client for it (as browsers and
    proxies send requests: one after another on a connection)."""

    def __init__(self, app):
        from waitress.server import create_server

        self.app = app  # the HeapLens middleware, or a Flask app wrapping it
        self.finished = FinishedRequests(app)
        self.server = create_server(self.finished, host="127.0.0.1", port=0, threads=4)
        self.port = self.server.effective_port
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def _run(self):
        # waitress's own run() loops for ever; closing its sockets under it fails the loop.
        while not self.stopping.is_set():
            self.server.asyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()

    def request(self, method, path, conn=None):
        """One request; on the client's own connection, it also waits until the server is done
        with it (see FinishedRequests), as on a quiet server."""
        waits = conn is None
        conn = conn or self.conn
        headers = self.finished.sent() if waits else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        answer = response.status, response.read()
        if waits:
            self.finished.wait()
        return answer

    def new_connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def endpoints(self):
        status, body = self.request("GET", MOUNT + "/api/endpoints")
        assert status == 200, body
        return json.loads(body)

    def close(self):
        self.conn.close()
        self.stopping.set()
        self.thread.join(30)
        middleware = getattr(self.app, "wsgi_app", self.app)
        middleware.close()


@pytest.fixture
def serve():
    servers = []

    def start(**options):
        server = Server(make_flask_app(**options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
    _ERRORS.clear()
    gc.collect()


def by_endpoint(answer):
    return {e["endpoint"]: e for e in answer["endpoints"]}


@pytest.mark.parametrize("everything", [False, True], ids=["since-a-mark", "every-object"])
def test_the_endpoint_that_leaks_is_ranked_first_with_what_it_leaves_per_request(
    serve, everything
):
    server = serve(trace_every=1, everything=everything)
    # In a shuffled order, as real traffic comes: a fixed order would put the server's own
    # per-request bookkeeping (objects alive at one census and not the next) on the same
    # endpoints every time.
    paths = [("POST", "/upload"), ("GET", "/health"), ("GET", "/cycle")] * 40
    paths += [("GET", f"/orders/{order_id}") for order_id in range(40)]
    random.Random(5).shuffle(paths)
    for method, path in paths:
        assert server.request(method, path)[0] == 200
    answer = server.endpoints()
    assert answer["tracing"] is True
    rows = answer["endpoints"]
    assert rows[0]["endpoint"] == "POST /upload", rows
    upload = rows[0]
    assert (upload["requests"], upload["traced"], upload["overlapped"]) == (40, 40, 0)
    left = {t["name"]: t["per_request"] for t in upload["types"]}
    leaking = f"{__name__}.DocumentValidationError"
    assert left[leaking] == 3.0, left
    # Their payload, three of each per request, give or take one of the server's own.
    assert left["dict"] >= 2 and left["list"] >= 2, left
    # Nine objects per request in all (three errors, their dicts and lists), give or take the
    # server's own (the figure is a trimmed mean of each trace's net change).
    assert upload["objects_per_request"] > 6
    # Flask's matched rule names the endpoint, so 40 order ids are one row.
    endpoints = by_endpoint(answer)
    assert set(endpoints) == {"POST /upload", "GET /health", "GET /orders/<int:order_id>",
                              "GET /cycle"}
    for name in ("GET /health", "GET /orders/<int:order_id>", "GET /cycle"):
        row = endpoints[name]
        assert row["traced"] == 40
        # What the server holds per request cancels out and the cycle is collected: none of
        # the leaking type, and about one object of any type per request at most (warming
        # caches such as urllib.parse's, and the server's own bookkeeping when its worker
        # thread finishes a request after the client has read the response).
        assert all(t["name"] != leaking for t in row["types"]), row
        assert all(t["per_request"] < 1.5 for t in row["types"]), (name, row["types"])
    # The dashboard's own requests are not endpoints of the application.
    assert not any(e.startswith("GET " + MOUNT) for e in endpoints)


def test_full_collections_during_traced_requests_make_no_endpoint_look_leaky(serve):
    """A full collection may put any old object after the mark a trace counts from: the trace
    it runs in is dropped (its request only counted), and the next one counts every object."""
    server = serve(trace_every=1)
    paths = [("POST", "/upload"), ("GET", "/health"), ("GET", "/collect")] * 25
    random.Random(7).shuffle(paths)
    for method, path in paths:
        assert server.request(method, path)[0] == 200
    rows = server.endpoints()["endpoints"]
    endpoints = by_endpoint({"endpoints": rows})
    assert rows[0]["endpoint"] == "POST /upload", rows
    leaking = f"{__name__}.DocumentValidationError"
    assert {t["name"]: t["per_request"] for t in rows[0]["types"]}[leaking] == 3.0
    collect, health = endpoints["GET /collect"], endpoints["GET /health"]
    assert (collect["requests"], health["requests"]) == (25, 25)
    # Its own traces spanned a full collection: dropped, but for the ones whose scope was
    # every object already (a /collect right after another).
    assert collect["traced"] < 25, collect
    assert health["traced"] == 25
    for row in (collect, health):
        assert all(t["name"] != leaking for t in row["types"]), row
        assert all(t["per_request"] < 1.5 for t in row["types"]), row
        assert row["objects_per_request"] < 5, row


def test_one_request_in_n_is_traced_and_every_one_is_counted(serve):
    server = serve(trace_every=5)
    for _ in range(30):
        server.request("GET", "/health")
        server.request("POST", "/upload")
    endpoints = by_endpoint(server.endpoints())
    health, upload = endpoints["GET /health"], endpoints["POST /upload"]
    assert (health["requests"], upload["requests"]) == (30, 30)
    # Requests 5, 10, ... 60 are traced: the odd ones are /health, the even ones uploads.
    assert (health["traced"], upload["traced"]) == (6, 6)
    assert {t["name"]: t["per_request"] for t in upload["types"]}[
        f"{__name__}.DocumentValidationError"
    ] == 3.0


def test_a_trace_that_ran_beside_another_request_is_marked_overlapped(serve):
    server = serve(trace_every=1)
    slow_connection = server.new_connection()
    slow = threading.Thread(target=server.request, args=("GET", "/slow", slow_connection))
    slow.start()
    assert server.app.config["slow_started"].wait(60)
    # /slow is in flight (it waits for the event) while /health runs and completes.
    assert server.request("GET", "/health")[0] == 200
    server.app.config["slow"].set()
    slow.join(60)
    slow_connection.close()
    # The client has its answer before the server has closed the response and ended the trace:
    # wait for the trace, so the next request does not run beside it on a busy machine.
    deadline = time.monotonic() + 60
    while by_endpoint(server.endpoints()).get("GET /slow", {}).get("traced", 0) < 1:
        assert time.monotonic() < deadline, "the /slow trace never ended"
        time.sleep(0.01)
    server.request("GET", "/health")  # a clean one, after both
    endpoints = by_endpoint(server.endpoints())
    assert endpoints["GET /slow"]["overlapped"] == 1
    assert endpoints["GET /health"]["traced"] == 2
    assert endpoints["GET /health"]["overlapped"] == 1


def test_a_failing_view_is_counted_and_does_not_leave_a_request_in_flight(serve):
    server = serve(trace_every=1)
    assert server.request("GET", "/fail")[0] == 500
    assert server.request("GET", "/health")[0] == 200
    endpoints = by_endpoint(server.endpoints())
    assert endpoints["GET /fail"]["traced"] == 1
    # Had /fail stayed "in flight", the next trace would count as overlapped.
    assert endpoints["GET /health"]["overlapped"] == 0


def test_tracing_is_off_unless_asked_and_bad_values_are_refused(serve):
    server = serve()
    server.request("POST", "/upload")
    assert server.endpoints() == {"tracing": False, "endpoints": []}
    for bad in (0, -3, 2.5, "10", True):
        with pytest.raises(ValueError, match="trace_every"):
            HeapLens(lambda environ, start_response: [], trace_every=bad)


def test_paths_without_a_route_are_grouped_by_their_shape():
    """A plain WSGI app (no framework route): identifiers in paths become ``{id}``, and the app
    can name its endpoints itself with ``environ["heaplens.route"]``."""

    def app(environ, start_response):
        if environ["PATH_INFO"].startswith("/named/"):
            environ["heaplens.route"] = "/named/<slug>"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = HeapLens(app, period=60, trace_every=1)
    try:
        from waitress.server import create_server

        server = Server(wrapped)

        def get(path):
            return server.request("GET", path)[1]

        for i in range(3):
            get(f"/users/{1000 + i}/avatar")
            get(f"/files/9f1c2d3e-0b1a-4c5d-8e9f-a0b1c2d3e4f{i}")
            get(f"/named/page-{i}")
        answer = json.loads(get(MOUNT + "/api/endpoints"))
        names = {e["endpoint"]: e["requests"] for e in answer["endpoints"]}
        assert names == {
            "GET /users/{id}/avatar": 3,
            "GET /files/{id}": 3,
            "GET /named/<slug>": 3,
        }
    finally:
        server.close()


def test_a_path_that_is_not_ascii_is_shown_as_the_text_it_is():
    """PEP 3333 hands the WSGI app its path as latin-1 text: `/café` arrives as `/cafÃ©`."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = Server(HeapLens(app, period=60, trace_every=1))
    try:
        server.request("GET", "/caf%C3%A9/men%C3%BC")
        names = [e["endpoint"] for e in server.endpoints()["endpoints"]]
        assert names == ["GET /café/menü"], names
    finally:
        server.close()


@pytest.mark.skipif(importlib.util.find_spec("starlette") is None, reason="needs Starlette")
def test_starlette_routes_name_the_endpoints_and_the_leak_is_found():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from heaplens.asgi import HeapLens as AsgiHeapLens

    async def item(request):
        for _ in range(3):
            _ERRORS.append(DocumentValidationError(request.path_params["item_id"]))
        return PlainTextResponse("ok")

    async def health(request):
        return PlainTextResponse("ok")

    routes = [Route("/items/{item_id}", item, methods=["POST"]), Route("/health", health)]
    # The test client's address is not an IP address, so not loopback: it needs the token.
    app = AsgiHeapLens(Starlette(routes=routes), period=60, trace_every=1, token="t")
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            paths = [f"/items/{i}" for i in range(40)] + ["/health"] * 40
            random.Random(5).shuffle(paths)
            for path in paths:
                method = client.post if path.startswith("/items/") else client.get
                method(path).close()
            answer = client.get(MOUNT + "/api/endpoints",
                                headers={"X-HeapLens-Token": "t"}).json()
        rows = by_endpoint(answer)
        assert set(rows) == {"POST /items/{item_id}", "GET /health"}
        items = rows["POST /items/{item_id}"]
        assert (items["requests"], items["traced"]) == (40, 40)
        assert answer["endpoints"][0]["endpoint"] == "POST /items/{item_id}", rows
        left = {t["name"]: t["per_request"] for t in items["types"]}
        assert left[f"{__name__}.DocumentValidationError"] == 3.0, left
    finally:
        app.close()
        _ERRORS.clear()
        gc.collect()


def test_a_scanners_404s_share_one_row_and_cannot_push_out_the_routes(serve):
    """250 made-up paths answered 404 (`/wp-17/.env`): one row for them, and the routes that
    were served before and after keep their own rows."""
    server = serve(trace_every=50)
    for _ in range(5):
        server.request("GET", "/health")
    for i in range(250):
        status, _ = server.request("GET", f"/wp-{i}/.env")
        assert status == 404
    for _ in range(5):
        server.request("POST", "/upload")
    rows = by_endpoint(server.endpoints())
    assert rows["GET (no route: 404)"]["requests"] == 250, sorted(rows)
    assert rows["GET /health"]["requests"] == 5
    assert rows["POST /upload"]["requests"] == 5
    assert not any("/wp-" in name for name in rows), sorted(rows)


def test_starlette_404s_share_one_row():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from heaplens.asgi import HeapLens as AsgiHeapLens

    async def health(request):
        return PlainTextResponse("ok")

    app = AsgiHeapLens(Starlette(routes=[Route("/health", health)]), period=60, trace_every=10,
                       token="t")
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for i in range(30):
                assert client.get(f"/.git/config-{i}").status_code == 404
            client.get("/health").close()
            answer = client.get(MOUNT + "/api/endpoints",
                                headers={"X-HeapLens-Token": "t"}).json()
        rows = by_endpoint(answer)
        assert set(rows) == {"GET (no route: 404)", "GET /health"}, sorted(rows)
        assert rows["GET (no route: 404)"]["requests"] == 30
    finally:
        app.close()
