"""Runs one program of this directory the way a developer hunting a leak would, through every
flow that compares heaps (``Snapshot.diff``, the saved snapshots for ``heaplens diff``,
``no_leaks``, and the dashboard's Compare of a WSGI app serving the program), and prints what
each flow found as JSON:

    python drive.py PROGRAM.py OUT_DIR

A program is a module with a ``request()`` function (one unit of the program's work) and
optionally ``WARMUP`` (calls before the first snapshot; default 50) and ``RUNS`` (calls between
the snapshots; default 300). The two snapshots are saved to OUT_DIR for ``heaplens diff``.
"""

import gc
import importlib.util
import io
import json
import sys

import heaplens
from heaplens.wsgi import HeapLens


def load(path):
    spec = importlib.util.spec_from_file_location("program", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["program"] = module
    spec.loader.exec_module(module)
    return module


def dashboard_compare(program, warmup, runs):
    """The dashboard's Compare, as a user takes it: the program served as a WSGI app with the
    dashboard mounted, a snapshot from the page, the requests, a second snapshot; returns the
    comparison's suspects as (entry type, holder path)."""

    def app(environ, start_response):
        program.request()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    mounted = HeapLens(app, path="/_heaplens")

    def call(method, path):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "localhost:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_HEAPLENS": "1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }
        status = []
        body = b"".join(mounted(environ, lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:300])
        return body

    for _ in range(warmup):
        call("GET", "/")
    call("POST", "/_heaplens/api/snapshot")
    for _ in range(runs):
        call("GET", "/")
    call("POST", "/_heaplens/api/snapshot")
    compared = json.loads(call("GET", "/_heaplens/api/diff"))
    return [f"{s['entry_type']} x{s['entries']} held by {s['holder_path']}" for s in compared["suspects"]]


def main(path, out):
    program = load(path)
    warmup, runs = getattr(program, "WARMUP", 50), getattr(program, "RUNS", 300)
    for _ in range(warmup):
        program.request()
    if gc.isenabled():
        gc.collect()
    before = heaplens.snapshot()
    for _ in range(runs):
        program.request()
    after = heaplens.snapshot()
    before.save(f"{out}/before.hlsnap")
    after.save(f"{out}/after.hlsnap")
    diff = after.diff(before)
    found = {
        "diff": [f"{s.entry_type} x{s.entries} held by {s.holder_path}" for s in diff.suspects],
        "diff_text": str(diff),
    }
    del before, after, diff
    try:
        heaplens.no_leaks(warmup=1, runs=3)(program.request)()
        found["no_leaks"] = []
    except heaplens.LeakError as e:
        found["no_leaks"] = [str(e)]
    found["dashboard"] = dashboard_compare(program, warmup, runs)
    print(json.dumps(found))


if __name__ == "__main__":
    main(*sys.argv[1:])
