"""What the dashboard middleware costs a web app: requests/s of a Flask app on waitress with and
without ``heaplens.wsgi.HeapLens``, on a heap of about a million objects.

    python bench/dashboard_bench.py --objects 1e6
    python bench/dashboard_bench.py --objects 1e6 --rounds 24 --seconds 5
    python bench/dashboard_bench.py --objects 1e6 --no-in-process --no-http   # tracing only

One server process per variant builds ``heap_bench.py``'s web-app-like heap (``--objects``, held
for the life of the process as a real app's caches and sessions would be), then serves a small
Flask app (one JSON route reading that heap) with waitress (4 threads) on 127.0.0.1:

- ``plain``: the app alone;
- ``heaplens``: wrapped in ``HeapLens(app.wsgi_app)`` with the defaults (period 5 s);
- ``heaplens period=1``: the same with ``period=1``;
- ``heaplens + page``: the defaults, with the dashboard polled: a client fetches
  ``/_heaplens/api/overview`` and ``/_heaplens/api/chart.svg`` (what the page's overview loads)
  on arrival and every 5 s;
- ``heaplens trace=100``: the defaults with ``trace_every=100`` (per-endpoint growth).

This process is the load generator: ``--connections`` threads (3) on stdlib ``http.client``
keep-alive connections, requesting as fast as answers come. Each round gives every variant a
slice (``--warmup`` seconds unmeasured, then ``--seconds`` measured; the order rotates each
round) while the other servers are stopped (SIGSTOP), so that only the measured one runs, its
sampler included. A variant's ratio is the median over rounds of its requests/s over plain's in
the same round: slices seconds apart share most of the noise of other programs. Rounds in which
other programs used more than ``--quiet-cores`` cores are left out when at least 3 are left.

Over HTTP on 2 cores, slices of the same variant differ by tens of percent (waitress's threads,
its I/O thread and the client compete for the cores), which hides a 1% cost. So the bench also
measures without the network (``--in-process``, on by default; ``--no-in-process`` skips it):
two processes, plain and ``HeapLens`` with the defaults, each with the same heap and Flask app,
call the WSGI application in a loop from one thread (as a server's worker thread does, with an
environ like waitress's), taking turns of ``--block`` seconds for ``--in-process-rounds``
rounds, while the other waits idle; the ratio is the heaplens process's calls per second over
all its turns divided by plain's. The sampler runs on the wall clock all along, so its censuses
fall in the turns at the rate they would in a server.

What tracing requests costs (``--tracing``, on by default, first): one child process builds the
heap (``--objects``) and the Flask app and calls it in a loop from one thread through each
variant in turn (``--trace-block`` seconds each, the order rotating, ``--trace-rounds`` rounds):
the app alone, ``HeapLens`` without tracing, and ``trace_every=1`` and ``--trace-every`` (100),
each as the tracer counts now ("after": the objects tracked since a mark placed a request
early) and as it did before ("before": every tracked object, twice per trace;
``Dashboard._trace_everything(True)``), all in the same run on the same heap. Reported: calls/s,
the ratio to no tracing (target for ``trace_every=100``: >= 0.99) and to the app alone, and
the cost of one traced request (target: at most 0.5 ms at 1M objects): for ``trace_every=1``
the mean call's excess over no tracing, for ``trace_every=100`` the excess of the three calls
that pay for a trace (the mark, the first census, the second) over an untraced call's median.

Reported: requests/s and the ratio (target >= 0.99 for the default period), the server's CPU
time per request, the sampler's samples, census time, effective period and share of the time
holding the GIL (from the server's own sampler), the cores other programs used, the cost of the
middleware's ``__call__`` per request (timed in this process), and what those parts add up to.
Ratios only: no timing assertion anywhere. Linux only (CPU times come from ``/proc``).
"""

import argparse
import gc
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MOUNT = "/_heaplens"
VARIANTS = {
    # name: (HeapLens options or None, poll the page)
    "plain": (None, False),
    "heaplens": ({}, False),
    "heaplens period=1": ({"period": 1.0}, False),
    "heaplens + page": ({}, True),
    "heaplens trace=100": ({"trace_every": 100}, False),
}
TARGET = 0.99
PAGE_EVERY = 5.0


# The server (a child process) --------------------------------------------------------------


# An environ as waitress gives the application (the in-process loops call it without a
# server), for GET /order/<i>.
ENVIRON_BASE = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "REMOTE_HOST": "127.0.0.1", "REMOTE_PORT": "40000",
    "HTTP_HOST": "127.0.0.1:8080", "HTTP_ACCEPT_ENCODING": "identity",
    "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": False,
    "wsgi.run_once": False, "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
}


def order_environ(i):
    return dict(ENVIRON_BASE, PATH_INFO=f"/order/{i}", **{"wsgi.input": io.BytesIO()})


def start_response(status, headers, exc_info=None):
    if not status.startswith("200"):
        raise RuntimeError(status)


def serve(variant, n_objects):
    """Builds the heap, then serves the app until killed; prints its facts (JSON) first."""
    import ctypes
    import logging

    # Killed with the bench, even if the bench is killed while this server is stopped.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    import flask
    import waitress

    from heap_bench import _APP, build_heap
    from heaplens import _native
    from heaplens.wsgi import HeapLens

    build_heap(n_objects)
    gc.collect()
    facts = {
        "gc_objects": len(gc.get_objects()),
        "objects": _native.census(gc_only=False).total_count,
    }
    started = time.perf_counter()
    _native.census(gc_only=True)
    facts["census_seconds"] = time.perf_counter() - started

    app = flask.Flask("bench_shop")
    records = _APP["records"]
    users = _APP["users"]

    @app.route("/order/<int:i>")
    def order(i):
        record = records[i % len(records)]
        user = users[i % len(users)]
        return {"order": i, "user": user.name, "fields": len(record)}

    options, _ = VARIANTS[variant]
    middleware = None
    if options is not None:
        middleware = HeapLens(app.wsgi_app, **options)
        app.wsgi_app = middleware

    @app.route("/_bench/stats")
    def stats():
        if middleware is None:
            return {"sampler": None}
        sampler = middleware.sampler
        return {
            "sampler": {
                "period": sampler.period,
                # (taken_ms, rss, objects, bytes, census_us)
                "samples": [[s[0], s[4]] for s in sampler.samples()],
            }
        }

    # Waitress warns whenever a request waits for a free thread, which is the point here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    facts["port"] = server.effective_port
    print(json.dumps(facts), flush=True)
    server.run()


# Without the network: the app called in a loop ------------------------------------------------


def call_loop(variant, n_objects):
    """A child process: builds the heap and the app, then answers ``run SECONDS`` lines on stdin
    by calling the app in a loop for that long and printing (calls, seconds, samples) as JSON."""
    import flask

    from heap_bench import _APP, build_heap
    from heaplens.wsgi import HeapLens

    build_heap(n_objects)
    gc.collect()
    app = flask.Flask("bench_shop")
    records, users = _APP["records"], _APP["users"]

    @app.route("/order/<int:i>")
    def order(i):
        record = records[i % len(records)]
        user = users[i % len(users)]
        return {"order": i, "user": user.name, "fields": len(record)}

    wsgi = app.wsgi_app
    middleware = None
    if variant == "heaplens":
        middleware = wsgi = HeapLens(app.wsgi_app)
    def call(i):
        environ = order_environ(i)
        body = wsgi(environ, start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    for i in range(2000):  # warm: imports, caches, the sampler started
        call(i)
    print(json.dumps({"ready": True}), flush=True)
    i = 0
    for line in sys.stdin:
        seconds = float(line.split()[1])
        samples_before = len(middleware.sampler) if middleware else 0
        calls = 0
        cpu_started = time.process_time()  # every thread of this process: the sampler's too
        started = time.perf_counter()
        deadline = started + seconds
        while True:
            for _ in range(100):
                call(i)
                i += 1
            calls += 100
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        samples = (len(middleware.sampler) - samples_before) if middleware else 0
        period = middleware.sampler.period if middleware else None
        print(json.dumps({"calls": calls, "seconds": elapsed, "cpu_seconds": cpu,
                          "samples": samples, "period": period}), flush=True)


def in_process(args):
    """Plain and HeapLens called in turns, without the network; returns the summary."""
    children = {}
    try:
        for name in ("plain", "heaplens"):
            children[name] = subprocess.Popen(
                [sys.executable, __file__, "--call-loop", name, "--objects", str(args.objects)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
        for child in children.values():
            assert json.loads(child.stdout.readline())["ready"]
        turns = {name: [] for name in children}
        for k in range(args.in_process_rounds):
            order = ["plain", "heaplens"] if k % 2 == 0 else ["heaplens", "plain"]
            for name in order:
                child = children[name]
                child.stdin.write(f"run {args.block}\n")
                child.stdin.flush()
                turn = json.loads(child.stdout.readline())
                turns[name].append(turn)
                print(
                    f"in-process turn {k + 1}/{args.in_process_rounds} {name:<9} "
                    f"{turn['calls'] / turn['seconds']:7.0f} calls/s, {turn['samples']} samples",
                    file=sys.stderr, flush=True,
                )
    finally:
        for child in children.values():
            child.kill()
            child.wait()
    rate = {
        name: sum(t["calls"] for t in ts) / sum(t["seconds"] for t in ts)
        for name, ts in turns.items()
    }
    paired = [
        (h["calls"] / h["seconds"]) / (p["calls"] / p["seconds"])
        for h, p in zip(turns["heaplens"], turns["plain"], strict=True)
    ]
    cpu_rate = {
        name: sum(t["calls"] for t in ts) / sum(t["cpu_seconds"] for t in ts)
        for name, ts in turns.items()
    }
    seconds = sum(t["seconds"] for t in turns["heaplens"])
    return {
        "rate": rate,
        "ratio": rate["heaplens"] / rate["plain"],
        # Calls per CPU second of the whole process (the sampler's census included): less
        # disturbed by other programs taking the cores than calls per second.
        "cpu_ratio": cpu_rate["heaplens"] / cpu_rate["plain"],
        "paired_ratios": paired,
        "samples": sum(t["samples"] for t in turns["heaplens"]),
        "seconds": seconds,
        "period": turns["heaplens"][-1]["period"],
        "turns": turns,
    }


def report_in_process(args, result):
    print(
        f"\nwithout the network: the Flask app called in a loop from one thread, plain and with "
        f"HeapLens (defaults) in turns of {args.block:g} s, {args.in_process_rounds} turns each"
    )
    print(
        f"plain {result['rate']['plain']:.0f} calls/s, heaplens {result['rate']['heaplens']:.0f} "
        f"calls/s: throughput ratio {result['ratio']:.4f} "
        f"({'meets' if result['ratio'] >= TARGET else 'MISSES'} the target >= {TARGET}); "
        f"per turn {min(result['paired_ratios']):.3f}-{max(result['paired_ratios']):.3f}"
    )
    print(
        f"calls per CPU second of the process (the sampler's counting included): ratio "
        f"{result['cpu_ratio']:.4f}"
    )
    print(
        f"sampler: {result['samples']} samples in {result['seconds']:.0f} s of heaplens turns "
        f"(effective period {result['period']:.2f} s)"
    )


# Tracing requests: what a traced request costs ------------------------------------------------


def _flask_wsgi(n_objects):
    """The bench's heap and Flask app (as `call_loop` builds them): its WSGI callable."""
    import flask

    from heap_bench import _APP, build_heap

    build_heap(n_objects)
    gc.collect()
    app = flask.Flask("bench_shop")
    records, users = _APP["records"], _APP["users"]

    @app.route("/order/<int:i>")
    def order(i):
        record = records[i % len(records)]
        user = users[i % len(users)]
        return {"order": i, "user": user.name, "fields": len(record)}

    return app.wsgi_app


def trace_loop(n_objects, every, block, rounds):
    """A child process: one heap and one Flask app, called in a loop from one thread through
    each tracing variant in turn (`block` seconds each, the order rotating, `rounds` times);
    prints the results as JSON. Variants: the app alone, ``HeapLens`` without tracing, and
    ``trace_every`` 1 and `every`, each as the tracer counts now (since a mark) and as it did
    before (every tracked object: ``Dashboard._trace_everything(True)``). Every middleware has
    ``period=3600``: its sampler takes one census when it starts and none while measured."""
    from heaplens import _native
    from heaplens.wsgi import HeapLens

    app = _flask_wsgi(n_objects)
    facts = {
        "gc_objects": len(gc.get_objects()),
        "objects": _native.census(gc_only=False).total_count,
    }
    variants = {"app alone": (app, 0)}
    variants["no tracing"] = (HeapLens(app, period=3600), 0)
    for n in sorted({1, every}):
        for when in ("before", "after"):
            middleware = HeapLens(app, period=3600, trace_every=n)
            middleware._mount.dashboard._trace_everything(when == "before")
            variants[f"trace_every={n} {when}"] = (middleware, n)
    def call(wsgi, i):
        environ = order_environ(i)
        body = wsgi(environ, start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    clock = time.perf_counter_ns
    # Requests each middleware has started: its tracer's count, so the position of a call among
    # the traced ones is known (n - 1: the mark; 0: the traced request; 1: its second census).
    started = {name: 0 for name in variants}
    for name, (wsgi, _) in variants.items():
        for i in range(500):  # warm: imports, caches, the sampler's first census
            call(wsgi, i)
        started[name] += 500
    results = {name: {"calls": 0, "ns": 0, "durations": []} for name in variants}
    names = list(variants)
    for k in range(rounds):
        for name in names[k % len(names):] + names[: k % len(names)]:
            wsgi, n = variants[name]
            result = results[name]
            durations = []
            deadline = clock() + int(block * 1e9)
            first = clock()
            now = first
            while now < deadline:
                before = now
                call(wsgi, started[name])
                started[name] += 1
                now = clock()
                durations.append((started[name], now - before))
            result["calls"] += len(durations)
            result["ns"] += now - first
            result["durations"].extend(durations)
        print(f"tracing round {k + 1}/{rounds}", file=sys.stderr, flush=True)
    # Where a trace's cost falls (`MARK_LEAD` in request_tracing.rs): its mark is placed when the
    # request 8 before it starts, its first census when it starts, its second when the next starts.
    lead = 8

    def paying(p, n):
        return n > 0 and (p % n == 0 or p % n == 1 % n or (p + lead) % n == 0)

    base = statistics.median(d for _, d in results["no tracing"]["durations"])
    summary = {}
    for name, (_, n) in variants.items():
        result = results[name]
        durations = result["durations"]
        untraced = [d for p, d in durations if not paying(p, n)]
        row = {
            "calls": result["calls"],
            "rate": result["calls"] / (result["ns"] / 1e9),
            "mean_us": result["ns"] / result["calls"] / 1e3,
            "median_us": statistics.median(d for _, d in durations) / 1e3,
            # What an untraced call costs beyond a call with tracing off (medians).
            "untraced_us": (statistics.median(untraced) - base) / 1e3 if untraced else None,
        }
        if n == 1:
            # Every request is traced (and pays one trace's three parts): the median call's
            # excess over no tracing's.
            row["traced_cost_ms"] = (statistics.median(d for _, d in durations) - base) / 1e6
        elif n > 1:
            # A traced request's cost: what the three calls that pay for it took beyond an
            # untraced call of the same middleware (their median); the median over traces, which
            # a collection of the oldest generation or the OS' preemption falling on one of them
            # does not move, and the mean, which they do.
            typical = statistics.median(untraced)
            at = dict(durations)
            costs = [
                at[p - lead] + at[p] + at[p + 1] - 3 * typical
                for p in at
                if p % n == 0 and p - lead in at and p + 1 in at
            ]
            row["traced_cost_ms"] = statistics.median(costs) / 1e6
            row["traced_cost_mean_ms"] = statistics.mean(costs) / 1e6
            row["traces"] = len(costs)
        summary[name] = row
    for name in variants:
        row = summary[name]
        row["ratio"] = row["rate"] / summary["no tracing"]["rate"]
        row["ratio_to_app"] = row["rate"] / summary["app alone"]["rate"]
    print(json.dumps({"facts": facts, "variants": summary}), flush=True)


def tracing(args):
    """Runs `trace_loop` in a child process; returns its results."""
    child = subprocess.run(
        [sys.executable, __file__, "--trace-loop", "--objects", str(args.objects),
         "--trace-every", str(args.trace_every), "--trace-block", str(args.trace_block),
         "--trace-rounds", str(args.trace_rounds)],
        stdout=subprocess.PIPE, text=True, check=True,
    )
    return json.loads(child.stdout.splitlines()[-1])


def report_tracing(args, result):
    facts = result["facts"]
    print(
        f"\ntracing requests: the Flask app called in a loop from one thread, "
        f"{facts['objects'] / 1e6:.2f}M objects ({facts['gc_objects'] / 1e6:.2f}M gc-tracked); "
        f"each variant {args.trace_block:g} s per round, {args.trace_rounds} rounds; before: "
        f"each census counts every tracked object; after: only those since the mark"
    )
    header = (
        f"{'variant':<24} {'calls/s':>8} {'median us':>9} {'ratio':>7} {'to app':>7} "
        f"{'untraced +us':>12} {'ms per traced request':>22}"
    )
    print(header)
    print("-" * len(header))
    for name, row in result["variants"].items():
        cost = row.get("traced_cost_ms")
        cost = "-" if cost is None else f"{cost:.3f}"
        if row.get("traced_cost_mean_ms") is not None:
            cost += f" (mean {row['traced_cost_mean_ms']:.3f})"
        untraced = row.get("untraced_us")
        untraced = "-" if untraced is None or name in ("app alone", "no tracing") else (
            f"{untraced:.2f}"
        )
        print(
            f"{name:<24} {row['rate']:>8.0f} {row['median_us']:>9.1f} {row['ratio']:>7.4f} "
            f"{row['ratio_to_app']:>7.4f} {untraced:>12} {cost:>22}"
        )
    print(
        "ratio: calls/s over no tracing's (HeapLens without trace_every); to app: over the app "
        "alone's; untraced +us: an untraced call's median over no tracing's; ms per traced "
        "request: trace_every=1: the median call over no tracing's; "
        f"trace_every={args.trace_every}: the three calls that pay for one trace (its mark, "
        "first and second census) over an untraced call's median, median over traces (mean)"
    )


# The load generator (this process) ---------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_jiffies():
    """CPU time (clock ticks) spent by every process on the machine so far."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return user + nice + system + irq + softirq + steal


def get(connection, path):
    connection.request("GET", path)
    answer = connection.getresponse()
    body = answer.read()
    return answer.status, body


def stats(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, body = get(connection, "/_bench/stats")
    finally:
        connection.close()
    assert status == 200, body
    return json.loads(body)


def load(port, connections, warmup, seconds, poll_page, pid):
    """Drives one server for `warmup` then `seconds`; returns the measured figures."""
    measuring = threading.Event()
    stop = threading.Event()
    counts = [0] * connections
    errors = []
    page_times = []

    def client(k):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = k
        try:
            while not stop.is_set():
                status, body = get(connection, f"/order/{i}")
                if status != 200 or not body.startswith(b"{"):
                    errors.append(f"{status} {body[:100]!r}")
                if measuring.is_set():
                    counts[k] += 1
                i += connections
        except Exception as e:  # noqa: BLE001 - reported with the slice
            errors.append(repr(e))
        finally:
            connection.close()

    def page():
        # What the page's overview loads, on arrival and then every PAGE_EVERY seconds.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                for path in ("/api/overview", "/api/chart.svg"):
                    status, body = get(connection, MOUNT + path)
                    if status != 200:
                        errors.append(f"page {path}: {status} {body[:100]!r}")
                page_times.append(time.perf_counter() - started)
                stop.wait(PAGE_EVERY)
        except Exception as e:  # noqa: BLE001
            errors.append(f"page: {e!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    if poll_page:
        threads.append(threading.Thread(target=page))
        threads[-1].start()
    cpu_before, busy_before, mine_before = cpu_seconds(pid), busy_jiffies(), os.times()
    window = [time.time() * 1000]
    measuring.set()
    time.sleep(seconds)
    measuring.clear()
    window.append(time.time() * 1000)
    cpu = cpu_seconds(pid) - cpu_before
    mine_after = os.times()
    mine = (mine_after.user - mine_before.user) + (mine_after.system - mine_before.system)
    busy = (busy_jiffies() - busy_before) / os.sysconf("SC_CLK_TCK")
    # Read while the load still runs: the sampler is as it was in the window.
    sampler = stats(port)["sampler"]
    stop.set()
    for thread in threads:
        thread.join(60)
    done = sum(counts)
    result = {
        "requests": done,
        "rps": done / seconds,
        "server_cpu_us_per_request": cpu / max(done, 1) * 1e6,
        "server_cpu_share": cpu / seconds,
        # CPU used by everything else on the machine (other programs: noise), in cores.
        "foreign_cores": max(0.0, busy - cpu - mine) / seconds,
        "errors": errors[:10],
        "error_count": len(errors),
        "page_seconds": page_times,
    }
    if sampler is not None:
        inside = [us for taken, us in sampler["samples"] if window[0] <= taken <= window[1]]
        result["sampler"] = {
            "effective_period": sampler["period"],
            "samples_in_window": len(inside),
            "census_us": inside or [us for _, us in sampler["samples"]],
            "census_share": sum(inside) / 1e6 / seconds,
        }
    return result


class Server:
    """One variant's server process; stopped (SIGSTOP) while another variant is measured, so
    that its sampler takes nothing from the one measured."""

    def __init__(self, variant, n_objects):
        self.variant = variant
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", variant, "--objects", str(n_objects)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.facts = json.loads(self.process.stdout.readline())
        self.port = self.facts["port"]

    def pause(self):
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self):
        self.process.kill()
        self.process.wait()


def call_overhead(calls=200_000):
    """Microseconds the middleware's ``__call__`` adds to a request outside its mount point."""
    from heaplens.wsgi import HeapLens

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    # About what waitress puts in an environ.
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/order/12",
        "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_HOST": "127.0.0.1",
        "REMOTE_PORT": "40000", "HTTP_HOST": "127.0.0.1:8080", "HTTP_ACCEPT_ENCODING": "identity",
        "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.multithread": True,
    }

    def start_response(status, headers):
        pass

    wrapped = HeapLens(app, period=3600)
    wrapped(environ, start_response)  # starts the sampler (one census of this small heap)
    best = {}
    for _ in range(5):
        for name, fn in (("app", app), ("wrapped", wrapped)):
            started = time.perf_counter()
            for _ in range(calls):
                fn(environ, start_response)
            elapsed = (time.perf_counter() - started) / calls * 1e6
            best[name] = min(best.get(name, elapsed), elapsed)
    wrapped.close()
    return best["wrapped"] - best["app"]


def quiet_rounds(slices, threshold):
    """The rounds in which no slice saw other programs use more than `threshold` cores."""
    rounds = len(slices["plain"])
    return [
        k for k in range(rounds)
        if all(runs[k]["foreign_cores"] <= threshold for runs in slices.values())
    ]


def summarize(slices, overhead_us, threshold):
    quiet = quiet_rounds(slices, threshold)
    # Too few quiet rounds for a median: all of them count, and the report says so.
    kept = quiet if len(quiet) >= 3 else list(range(len(slices["plain"])))
    slices = {name: [runs[k] for k in kept] for name, runs in slices.items()}
    plain_runs = slices["plain"]
    plain_rps = statistics.median(r["rps"] for r in plain_runs)
    plain_cpu = statistics.median(r["server_cpu_us_per_request"] for r in plain_runs)
    rows = {}
    for variant, runs in slices.items():
        # A variant's slice and plain's in the same round ran seconds apart: their ratio is
        # what the noise of other programs (which drifts over minutes) disturbs least.
        paired = [r["rps"] / p["rps"] for r, p in zip(runs, plain_runs, strict=True)]
        cpu = statistics.median(r["server_cpu_us_per_request"] for r in runs)
        samplers = [r["sampler"] for r in runs if r.get("sampler")]
        rows[variant] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "rps_all": [r["rps"] for r in runs],
            "ratio": statistics.median(paired),
            "ratio_of_medians": statistics.median(r["rps"] for r in runs) / plain_rps,
            "paired_ratios": paired,
            "cpu_us_per_request": cpu,
            "cpu_ratio": plain_cpu / cpu,
            "server_cpu_share": statistics.median(r["server_cpu_share"] for r in runs),
            "foreign_cores": statistics.median(r["foreign_cores"] for r in runs),
            "errors": sum(r["error_count"] for r in runs),
            "sampler": samplers and {
                "samples_per_second": sum(s["samples_in_window"] for s in samplers)
                / (len(samplers) * runs[0]["seconds"]),
                "census_ms": statistics.median(
                    us / 1000 for s in samplers for us in s["census_us"]
                ),
                "effective_period": samplers[-1]["effective_period"],
                "census_share": statistics.mean(s["census_share"] for s in samplers),
            },
            "page_ms": [t * 1000 for r in runs for t in r["page_seconds"]],
        }
    rows["_rounds_kept"] = kept
    rows["_quiet"] = kept is quiet
    rows["_call_overhead_us"] = overhead_us
    # The middleware's per-request Python, as a share of a plain request's server CPU time.
    rows["_call_overhead_share"] = overhead_us / plain_cpu
    return rows


def report(args, heap, rows):
    print(
        f"\nFlask app on waitress (4 threads), {heap['objects'] / 1e6:.2f}M objects "
        f"({heap['gc_objects'] / 1e6:.2f}M gc-tracked); {args.connections} keep-alive client "
        f"connections; {args.seconds:g} s per variant per round"
    )
    kept = len(rows["_rounds_kept"])
    if rows["_quiet"]:
        print(
            f"{kept} of {args.rounds} rounds counted: those in which other programs used at most "
            f"{args.quiet_cores:g} of {os.cpu_count()} cores during every slice"
        )
    else:
        print(
            f"all {args.rounds} rounds counted: fewer than 3 were quiet (other programs used at "
            f"most {args.quiet_cores:g} cores); the machine was busy, expect noise"
        )
    print(f"one gc-only census at startup: {heap['census_seconds'] * 1000:.1f} ms\n")
    header = (
        f"{'variant':<18} {'req/s':>7} {'ratio':>6} {'CPU us/req':>10} {'CPU ratio':>9} "
        f"{'samples/min':>11} {'census ms':>9} {'period s':>8} {'GIL share':>9} "
        f"{'others':>6} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for variant in VARIANTS:
        r = rows[variant]
        s = r["sampler"]
        sampled = f"{'-':>11} {'-':>9} {'-':>8} {'-':>9}"
        if s:
            sampled = (
                f"{s['samples_per_second'] * 60:>11.1f} {s['census_ms']:>9.1f} "
                f"{s['effective_period']:>8.2f} {s['census_share'] * 100:>8.2f}%"
            )
        print(
            f"{variant:<18} {r['rps']:>7.0f} {r['ratio']:>6.3f} {r['cpu_us_per_request']:>10.0f} "
            f"{r['cpu_ratio']:>9.3f} {sampled} {r['foreign_cores']:>6.2f} {r['errors']:>6}"
        )
    print(
        "\nratio: median over rounds of req/s / plain's req/s in the same round; CPU ratio: "
        "plain's server CPU time per request / the variant's; GIL share: census time / time;\n"
        "others: cores used by other programs during the slices (median)."
    )
    default = rows["heaplens"]
    verdict = "meets" if default["ratio"] >= TARGET else "MISSES"
    print(
        f"default period: throughput ratio {default['ratio']:.3f} ({verdict} the target >= "
        f"{TARGET}); ratio of median req/s {default['ratio_of_medians']:.3f}"
    )
    print(
        f"middleware __call__ outside its mount: {rows['_call_overhead_us']:.2f} us per request "
        f"= {rows['_call_overhead_share'] * 100:.2f}% of a plain request's server CPU time"
    )
    if default["sampler"]:
        # What the parts measured directly add up to: the time the census holds the GIL (no
        # request runs meanwhile), one census per effective period in a steady run, and the
        # middleware's Python on every request.
        census = default["sampler"]["census_ms"] / 1000 / default["sampler"]["effective_period"]
        cost = census + rows["_call_overhead_share"]
        print(
            f"accounted cost at the default period: census {census * 100:.2f}% (one "
            f"{default['sampler']['census_ms']:.0f} ms census per "
            f"{default['sampler']['effective_period']:.2f} s) + __call__ "
            f"{rows['_call_overhead_share'] * 100:.2f}% = {cost * 100:.2f}% "
            f"(expected ratio {1 - cost:.3f})"
        )
    page = rows["heaplens + page"]["page_ms"]
    if page:
        print(
            f"page poll (overview + chart.svg) every {PAGE_EVERY:g} s, under load: median "
            f"{statistics.median(page):.1f} ms per poll"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=float, default=1e6)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per slice")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument(
        "--quiet-cores", type=float, default=0.3,
        help="count only rounds in which other programs used at most this many cores",
    )
    parser.add_argument(
        "--in-process", action=argparse.BooleanOptionalAction, default=True,
        help="also measure without the network (the app called in a loop; default: on)",
    )
    parser.add_argument("--block", type=float, default=10.0, help="seconds per in-process turn")
    parser.add_argument("--in-process-rounds", type=int, default=8)
    parser.add_argument("--http", action=argparse.BooleanOptionalAction, default=True,
                        help="measure over HTTP (default: on)")
    parser.add_argument(
        "--tracing", action=argparse.BooleanOptionalAction, default=True,
        help="measure what trace_every costs, before and after (default: on)",
    )
    parser.add_argument("--trace-every", type=int, default=100,
                        help="the sparse tracing measured beside trace_every=1 (default 100)")
    parser.add_argument("--trace-block", type=float, default=2.0,
                        help="seconds per tracing variant per round")
    parser.add_argument("--trace-rounds", type=int, default=5)
    parser.add_argument("--trace-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--call-loop", choices=("plain", "heaplens"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.objects = int(args.objects)
    if args.serve:
        serve(args.serve, args.objects)
        return
    if args.call_loop:
        call_loop(args.call_loop, args.objects)
        return
    if args.trace_loop:
        trace_loop(args.objects, args.trace_every, args.trace_block, args.trace_rounds)
        return
    results = {}
    if args.tracing:
        results["tracing"] = tracing(args)
        report_tracing(args, results["tracing"])
        from heap_bench import machine_facts

        out = HERE / "results" / f"dashboard-tracing-{args.objects}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(
            {"machine": machine_facts(), "args": vars(args), **results["tracing"]}, indent=1
        ))
        print(f"results: {out.relative_to(HERE.parent)}")
    if args.in_process:
        results["in_process"] = in_process(args)
        report_in_process(args, results["in_process"])
    if not args.http:
        return

    names = list(VARIANTS)
    servers = {}
    try:
        for name in names:
            servers[name] = Server(name, args.objects)
            # A first request starts the sampler; then the server waits, stopped, for its turn.
            load(servers[name].port, args.connections, 1.0, 0.1, False, servers[name].process.pid)
            servers[name].pause()
        slices = {name: [] for name in names}
        for k in range(args.rounds):
            for name in names[k % len(names):] + names[: k % len(names)]:
                server = servers[name]
                server.resume()
                try:
                    result = load(
                        server.port, args.connections, args.warmup, args.seconds,
                        VARIANTS[name][1], server.process.pid,
                    )
                finally:
                    server.pause()
                result["seconds"] = args.seconds
                slices[name].append(result)
                print(
                    f"round {k + 1}/{args.rounds} {name:<18} {result['rps']:6.0f} req/s, "
                    f"others {result['foreign_cores']:.2f} cores"
                    + (f", {result['error_count']} errors: {result['errors'][:2]}"
                       if result["error_count"] else ""),
                    file=sys.stderr, flush=True,
                )
    finally:
        for server in servers.values():
            server.resume()
            server.close()
    overhead = call_overhead()
    rows = summarize(slices, overhead, args.quiet_cores)
    heap = servers["plain"].facts
    report(args, heap, rows)
    if "tracing" in results:
        # What tracing costs a served request, from the parts measured without the network: an
        # untraced request's bookkeeping, and one traced request's cost spread over `every`.
        sparse = results["tracing"]["variants"][f"trace_every={args.trace_every} after"]
        per_request_us = sparse["untraced_us"] + sparse["traced_cost_ms"] * 1e3 / args.trace_every
        plain_cpu = rows["plain"]["cpu_us_per_request"]
        print(
            f"accounted cost of trace_every={args.trace_every}: {sparse['untraced_us']:.2f} us "
            f"per untraced request + {sparse['traced_cost_ms']:.3f} ms per traced one / "
            f"{args.trace_every} = {per_request_us:.2f} us per request = "
            f"{per_request_us / plain_cpu * 100:.2f}% of a plain request's server CPU time "
            f"({plain_cpu:.0f} us)"
        )

    from heap_bench import machine_facts

    out = HERE / "results" / f"dashboard-{args.objects}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine_facts(),
        "args": vars(args),
        "heap": heap,
        "summary": rows,
        "slices": slices,
    }, indent=1))
    print(f"\nresults: {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
