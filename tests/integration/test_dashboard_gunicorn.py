"""The dashboard in a multi-process server: real gunicorn with two workers, each sampling its
own heap; every answer says which worker gave it, and the metrics carry its pid."""

import http.client
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gunicorn") is None or sys.platform != "linux",
    reason="needs gunicorn (Linux)",
)

APP = textwrap.dedent(
    """
    import time

    from heaplens.wsgi import HeapLens

    KEPT = []

    class WorkerLeak:
        pass

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/busy":  # keeps this worker busy: the next goes elsewhere
            time.sleep(0.5)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"busy"]
        KEPT.append(WorkerLeak())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = HeapLens(app, period=0.2, trace_every=1)
    """
)


@pytest.fixture(params=[False, True], ids=["import-in-each-worker", "preload-then-fork"])
def gunicorn(request, tmp_path):
    (tmp_path / "gunicorn_leaky_app.py").write_text(APP)
    args = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0",
            "--log-level", "info", "gunicorn_leaky_app:app"]
    if request.param:
        args.insert(3, "--preload")  # the middleware is made in the master, before the fork
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        port = None
        deadline = time.monotonic() + 60  # ends a hang; not a timing assertion
        while port is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(rb"Listening at: http://127\.0\.0\.1:(\d+)", log.read_bytes())
            booted = log.read_bytes().count(b"Booting worker") >= 2
            if found and booted:
                port = int(found.group(1))
            time.sleep(0.05)
        assert port, log.read_text(errors="replace")
        yield port, log
    finally:
        process.terminate()
        process.wait(30)


def get(port, path):
    """A request on a connection of its own, so any worker may take it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def from_each_worker(port, path, workers=2):
    """``{pid: (status, body)}`` of ``path`` from every worker. Which worker accepts a new
    connection is up to the kernel, and one may win every time; so while a ``/busy`` request
    keeps one worker sleeping, the next connection goes to another."""
    answers = {}
    deadline = time.monotonic() + 120  # ends a hang; not a timing assertion
    while len(answers) < workers:
        assert time.monotonic() < deadline, f"only workers {sorted(answers)} answered"
        busy = threading.Thread(target=get, args=(port, "/busy"))
        busy.start()
        time.sleep(0.1)  # pacing only: the busy request reaches a worker first, usually
        status, headers, body = get(port, path)
        answers[int(headers["X-HeapLens-Pid"])] = (status, body)
        busy.join(60)
    return answers


def test_each_worker_answers_for_itself_and_says_so(gunicorn):
    port, log = gunicorn
    sent = 0
    for _ in range(20):
        assert get(port, "/")[0] == 200
        sent += 1
    workers = {}
    for pid, (status, body) in from_each_worker(port, "/_heaplens/api/info").items():
        assert status == 200, body
        info = json.loads(body)
        assert info["pid"] == pid and info["live"] is True
        assert info["multiprocess"] is True
        workers[pid] = info
    assert len(workers) == 2
    assert os.getpid() not in workers
    # The metrics of whichever worker answers carry that worker's pid.
    status, headers, body = get(port, "/_heaplens/metrics")
    assert status == 200
    text = body.decode()
    pid = headers["X-HeapLens-Pid"]
    assert f'heaplens_python_objects{{pid="{pid}"}}' in text
    assert set(re.findall(r'pid="(\d+)"', text)) == {pid}
    # Each worker traces its own requests: the "GET /" counts of the two add up to the requests
    # sent, and each names the type it leaks, one per request. A trace needs the mark placed
    # by the request before it and the census of the request after it: a worker the kernel
    # handed only a request or two has no measured trace yet, so more are sent until each has.
    def endpoints_of_each_worker():
        found = {}
        for pid, (status, body) in from_each_worker(port, "/_heaplens/api/endpoints").items():
            assert status == 200, body
            found[pid] = json.loads(body)["endpoints"]
        return found

    def unmeasured(rows):
        return any(r["endpoint"] == "GET /" and r["measured"] == 0 for r in rows)

    endpoints = endpoints_of_each_worker()
    while any(unmeasured(rows) for rows in endpoints.values()) and sent < 400:
        # In pairs at once: a sync worker serves one at a time, so each gets some.
        for _ in range(5):
            pair = [threading.Thread(target=get, args=(port, "/")) for _ in range(2)]
            for t in pair:
                t.start()
            for t in pair:
                t.join(60)
            sent += 2
        endpoints = endpoints_of_each_worker()
    assert set(endpoints) == set(workers)
    served = 0
    for rows in endpoints.values():
        for row in rows:
            assert row["endpoint"] in ("GET /", "GET /busy"), row
            if row["endpoint"] == "GET /":
                served += row["requests"]
                left = {t["name"]: t["per_request"] for t in row["types"]}
                assert left.get("gunicorn_leaky_app.WorkerLeak") == 1.0, row
    assert served == sent
    assert b"Traceback" not in log.read_bytes()
