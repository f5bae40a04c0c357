"""The WSGI dashboard under load: a real Flask app that leaks a little per request, served by a
real multi-threaded server (waitress, 4 threads), takes over 10,000 requests from keep-alive
clients while the sampler samples every few tenths of a second and another client polls the
dashboard (overview, info, metrics, the leaking type's page, an object page, snapshots, diffs).

Nothing here is timed: the load runs until it has sent its requests and the sampler has taken
its samples (a generous deadline only ends a hang), then every answer is checked.
"""

import contextlib
import gc
import http.client
import importlib.util
import json
import logging
import re
import threading
import time
import urllib.parse

import pytest

import heaplens._middleware
from heaplens.wsgi import HeapLens

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("flask") is None or importlib.util.find_spec("waitress") is None,
    reason="Flask or waitress is not installed",
)

MOUNT = "/_heaplens"
CSRF = {"X-HeapLens": "1"}
REQUESTS = 10_000
CLIENTS = 3
SAMPLES = 20
#: The dashboard poller takes a snapshot every this many rounds.
SNAPSHOT_EVERY = 15
#: Only ends a hang; a 2-core machine needs about 15 s.
DEADLINE = 240.0


class LoadLeak:
    """What the app leaks: one per request to /order, kept in ``_LEAKS`` for ever."""

    def __init__(self, n):
        self.n = n
        self.lines = [n, n + 1]


_LEAKS = []


def make_app():
    import flask

    app = flask.Flask("leaky_load")

    @app.route("/order")
    def order():
        n = int(flask.request.args["n"])
        _LEAKS.append(LoadLeak(n))
        return {"order": n}

    @app.route("/hello/<name>")
    def hello(name):
        return f"hello {name}", 200, {"Content-Type": "text/plain; charset=utf-8"}

    # A short period: many samples during the run (the sampler stretches it so that censuses
    # take at most the budget the `served` fixture sets, so it ends up a few tenths of a second).
    app.wsgi_app = HeapLens(app.wsgi_app, period=0.05)
    return app


class Problems(logging.Handler):
    """Every warning or error logged by anyone (waitress, Flask, heaplens' sampler) during the
    run, except waitress' note that requests queue up for a free thread, which load causes."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        if record.name != "waitress.queue":
            self.records.append(f"{record.name}: {self.format(record)}")


@pytest.fixture
def problems():
    handler = Problems()
    root = logging.getLogger()
    root.addHandler(handler)
    queue = logging.getLogger("waitress.queue")
    level = queue.level
    queue.setLevel(logging.ERROR)  # not worth pytest's captured log, either
    try:
        yield handler.records
    finally:
        queue.setLevel(level)
        root.removeHandler(handler)


@pytest.fixture
def served(monkeypatch):
    """The app, served by waitress from a thread: (app, port)."""
    import waitress
    from waitress import wasyncore

    # The middleware's sampler stretches its period to spend at most 0.5% of the time on
    # censuses: under this load that is one sample every few seconds, and the test would spend
    # minutes waiting for its samples. A budget of 5% keeps it sampling every few tenths of a
    # second, concurrently with the requests, which is what is tested here.
    monkeypatch.setattr(heaplens._middleware, "SAMPLER_BUDGET", 0.05)
    app = make_app()
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield app, server.effective_port
    finally:
        # Closed from waitress' own loop thread (the trigger runs the thunk there), which then
        # finds its map empty and returns. A trigger already closed (seen once on CI, after
        # every request had been answered) means the loop has ended: close what is left here.
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:
            thread.join(10)
            wasyncore.close_all(server._map)
        thread.join(10)
        server.task_dispatcher.shutdown()
        app.wsgi_app.close()
        _LEAKS.clear()
        gc.collect()  # Flask's cycles, before another test in this worker compares snapshots


class Client:
    """One keep-alive HTTP/1.1 connection; ``get`` and ``post`` return (status, headers, body)."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, headers=None):
        self.connection.request(method, path, headers=headers or {})
        answer = self.connection.getresponse()
        body = answer.read()
        if answer.will_close:
            raise AssertionError(f"{method} {path}: the server closed the connection")
        return answer.status, answer.headers, body

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, headers):
        return self.request("POST", path, headers)

    def close(self):
        self.connection.close()


# One line of Prometheus' text exposition format (version 0.0.4).
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf)"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{(?:{_LABEL}(?:,{_LABEL})*,?)?\}})? ({_VALUE})(?: -?[0-9]+)?")
_HELP = re.compile(rf"# HELP ({_NAME}) .*")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")


def parse_metrics(text):
    """{metric name: [values]} of a Prometheus text exposition; raises on a malformed line."""
    assert text.endswith("\n"), "the exposition does not end with a newline"
    values, typed = {}, set()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            kind = _TYPE.fullmatch(line)
            if kind:
                assert kind[1] not in typed, f"two TYPE lines for {kind[1]}"
                typed.add(kind[1])
            else:
                assert _HELP.fullmatch(line), f"malformed comment line: {line!r}"
            continue
        sample = _SAMPLE.fullmatch(line)
        assert sample, f"malformed sample line: {line!r}"
        assert sample[1] in typed, f"{sample[1]} has no TYPE line before its samples"
        values.setdefault(sample[1], []).append(float(sample[2]))
    return values


def test_parse_metrics_refuses_what_is_not_exposition_text():
    good = '# HELP a_b An a.\n# TYPE a_b gauge\na_b{pid="1",type="x\\"y"} 3\na_b 4.5e3\n'
    assert parse_metrics(good) == {"a_b": [3.0, 4500.0]}
    for bad in [
        "a_b 3\n",  # no TYPE line
        "# TYPE a_b gauge\na_b{pid=1} 3\n",  # unquoted label value
        "# TYPE a_b gauge\na_b three\n",  # not a number
        "# TYPE a_b gauge\na_b 3",  # no final newline
        "# TYPE a_b gauge\n<b>a_b 3\n",
    ]:
        with pytest.raises(AssertionError):
            parse_metrics(bad)


def load(port, client_index, sent, stop, failures):
    """Requests app pages on one keep-alive connection until ``stop`` is set."""
    client = Client(port)
    try:
        k = 0
        while not stop.is_set():
            n = client_index * 1_000_000 + k
            if k % 2 == 0:
                status, headers, body = client.get(f"/order?n={n}")
                expected = {"order": n}
                got = json.loads(body) if status == 200 else body
            else:
                status, headers, body = client.get(f"/hello/c{n}")
                expected = f"hello c{n}"
                got = body.decode() if status == 200 else body
            if status != 200 or got != expected:
                failures.append(f"app request {n}: {status} {got!r}, expected {expected!r}")
            # Requests outside the mount get none of the dashboard's headers.
            if "Content-Security-Policy" in headers:
                failures.append(f"app request {n} got the dashboard's headers")
            sent[client_index] += 1
            k += 1
    except Exception as e:  # noqa: BLE001 - reported by the test, not lost in a thread
        failures.append(f"client {client_index}: {e!r}")
    finally:
        client.close()


class Poller:
    """Polls the dashboard as its page would (plus metrics, snapshots and diffs), checking every
    answer, until ``stop`` is set."""

    def __init__(self, port, leak_type):
        self.port = port
        self.leak_type = leak_type
        self.failures = []
        self.rounds = 0
        self.answers = 0
        self.snapshots = 0
        self.last_diff = None
        self.last_overview = None

    def expect(self, path, status, answer, kind="json"):
        got, headers, body = answer
        self.answers += 1
        if got != status:
            self.failures.append(f"{path}: status {got}, expected {status}: {body[:300]!r}")
            return None
        content_type = headers.get("Content-Type", "")
        if kind == "json":
            if not content_type.startswith("application/json"):
                self.failures.append(f"{path}: Content-Type {content_type}")
            return json.loads(body)
        if kind == "metrics":
            assert content_type.startswith("text/plain"), content_type
            return parse_metrics(body.decode())
        return body

    def one_round(self, client):
        info = self.expect("info", 200, client.get(MOUNT + "/api/info"))
        assert info["live"] is True and info["can_take_snapshot"] is True, info
        overview = self.expect("overview", 200, client.get(MOUNT + "/api/overview"))
        assert overview["memory"]["samples"] >= 1, overview["memory"]
        self.last_overview = overview
        metrics = self.expect("metrics", 200, client.get(MOUNT + "/metrics"), "metrics")
        assert metrics["heaplens_python_objects"][0] > 0, metrics
        assert "heaplens_type_objects" in metrics, sorted(metrics)
        quoted = urllib.parse.quote(self.leak_type, safe="")
        page = self.expect("type page", 200, client.get(f"{MOUNT}/api/types/{quoted}"))
        assert page["name"] == self.leak_type and page["count"] >= 1, page
        # Two snapshots make a diff; before the second there is none (404, as documented).
        diff = client.get(MOUNT + "/api/diff")
        if self.snapshots >= 2:
            self.last_diff = self.expect("diff", 200, diff)
        else:
            self.expect("diff before two snapshots", 404, diff)
        if self.rounds % SNAPSHOT_EVERY == 0:
            taken = self.expect("snapshot", 200, client.post(MOUNT + "/api/snapshot", CSRF))
            assert taken["taken"] is True, taken
            assert (taken["diff"] is not None) == (self.snapshots >= 1), taken
            self.snapshots += 1
            # With a snapshot, the type page lists instances, and each has its own page.
            page = self.expect("type page", 200, client.get(f"{MOUNT}/api/types/{quoted}"))
            assert page["instances"], page
            first = page["instances"][0]["id"]
            obj = self.expect("object page", 200, client.get(f"{MOUNT}/api/objects/{first}"))
            assert obj["type"] == self.leak_type and obj["referrers"], obj
            html = self.expect("page", 200, client.get(MOUNT + "/"), "html")
            assert b"<html" in html.lower(), html[:200]

    def run(self, stop):
        client = Client(self.port)
        try:
            while not stop.is_set():
                self.one_round(client)
                self.rounds += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"poller, round {self.rounds}: {e!r}")
        finally:
            client.close()


def newest_sample_ms(sampler):
    samples = sampler.samples()
    return samples[-1][0] if samples else 0


def wait_for_a_new_sample(sampler, timeout=30.0):
    since = newest_sample_ms(sampler)
    deadline = time.monotonic() + timeout
    while newest_sample_ms(sampler) == since:
        assert time.monotonic() < deadline, "the sampler took no sample"
        time.sleep(0.01)


def test_ten_thousand_requests_with_the_sampler_on_and_the_dashboard_polled(served, problems):
    app, port = served
    sampler = app.wsgi_app.sampler
    warm = Client(port)
    assert warm.get("/order?n=-1")[0] == 200  # starts the sampler
    wait_for_a_new_sample(sampler)
    rows = json.loads(warm.get(MOUNT + "/api/overview?limit=10000")[2])["types"]
    warm.close()
    leak_type = next(row["name"] for row in rows if row["name"].endswith(".LoadLeak"))

    stop = threading.Event()
    sent = [0] * CLIENTS
    failures = []
    poller = Poller(port, leak_type)
    threads = [
        threading.Thread(target=load, args=(port, i, sent, stop, failures), name=f"client-{i}")
        for i in range(CLIENTS)
    ]
    threads.append(threading.Thread(target=poller.run, args=(stop,), name="poller"))
    samples_before = len(sampler)
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE
    try:
        while not (
            sum(sent) >= REQUESTS
            and len(sampler) - samples_before >= SAMPLES
            and poller.snapshots >= 3
        ):
            if failures or poller.failures or not all(t.is_alive() for t in threads):
                break
            assert time.monotonic() < deadline, (
                f"hung: {sum(sent)} requests, {len(sampler) - samples_before} samples, "
                f"{poller.snapshots} snapshots"
            )
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not any(t.is_alive() for t in threads), "a client did not finish"

    assert failures == [], failures[:10]
    assert poller.failures == [], poller.failures[:10]
    assert problems == [], problems[:10]
    assert sum(sent) >= REQUESTS
    assert sampler.running and sampler.error is None

    # The overview saw many samples (and its own count of them), and the leaking type growing.
    # After the load stops, one more sample counts every leaked object.
    wait_for_a_new_sample(sampler)
    with contextlib.closing(Client(port)) as client:
        overview = json.loads(client.get(MOUNT + "/api/overview?limit=10000")[2])
        metrics = parse_metrics(client.get(MOUNT + "/metrics")[2].decode())
    assert overview["memory"]["samples"] >= SAMPLES
    assert overview["memory"]["samples"] == len(sampler)
    row = next(r for r in overview["types"] if r["name"] == leak_type)
    assert row["count"] == len(_LEAKS)
    assert len(_LEAKS) >= REQUESTS // 2
    assert row["trend"]["last"] > row["trend"]["first"], row["trend"]
    assert row["trend"]["per_hour"] > 0, row["trend"]
    assert metrics["heaplens_python_objects"] == [overview["memory"]["python_objects"]]
    # The diff of the poller's last two snapshots names the leaking type among those that grew.
    grew = {r["name"]: r["count_delta"] for r in poller.last_diff["grew"]}
    assert grew.get(leak_type, 0) > 0, sorted(grew)
