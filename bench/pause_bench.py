"""How long a dashboard snapshot stops the program: the walk in the program against the walk in a
forked child, on the same heap in the same run.

```sh
python bench/pause_bench.py --objects 1e6 5e6
python bench/pause_bench.py --objects 1e6 --repeat 5
python bench/pause_bench.py --objects 1e6 5e6 --attach    # heaplens attach instead
```

With ``--attach`` the snapshots are ``heaplens attach PID`` (the target runs the command on
itself, its main thread running Python code meanwhile), through ``sys.remote_exec`` on 3.14 and
newer, gdb before: the longest stall then includes gdb's own stop of the process. No memory
round.

Each size runs in a fresh target process that builds ``heap_bench``'s web-app heap, mounts the
WSGI dashboard over a tiny app and runs a thread that ticks every millisecond
(``time.sleep(0.001)`` in a loop), noting the longest gap between two ticks. The main thread then
asks the dashboard for snapshots (``POST api/snapshot``, as the page's button does), ``--repeat``
times each way, the two ways taking turns: the walk in the program (``HEAPLENS_NO_FORK=1``,
today's walk) and the walk in a forked child. Per snapshot it notes:

- the **longest stall**: the longest gap between two ticks while the request ran, less the 1 ms
  the thread sleeps: how long the program's threads were stopped, at most, in one stretch;
- **held for the fork**: how long the program held the GIL for the ``fork()`` (the capture's
  own figure, from its debug log), where a child took it;
- the **longest request**: the target also serves its app over HTTP (a threaded `wsgiref`
  server on loopback), and a client process sends it one request every 5 ms (a bounded load:
  the next request waits for the previous one); the longest a request took while the snapshot
  ran, against the median of those around it: what a user of the server would see;
- the **request's time**: until the dashboard has the snapshot and its analysis;
- in one more round each way, with the memory watched (allocator memory handed back to the OS
  first, with ``malloc_trim``): **extra memory**, the memory the system gave out for the
  snapshot, seen every 10 ms by a watcher process: the program's RSS growth plus the child's
  private pages (what the child wrote, its graph and buffers, and the old copies of the pages
  the program changed since the fork, which only the child maps then). Both ways include the
  snapshot the dashboard reads back and keeps.

Linux only (``/proc``). The machine's other load shows in the stalls: run it on a quiet machine
for figures to quote, and compare the two ways in the same run.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TICK = 0.001


def parse_count(text):
    return int(float(text))


# -- the watcher process: private pages of the target and its children -----------------------

WATCHER = r"""
import os, sys, threading, time, json
target = int(sys.argv[1])

def kib(pid, fields):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(l.split()[1]) for l in f if l.startswith(fields))
    except OSError:
        return None

def children(pid):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    found += [int(c) for c in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found

state = {"on": False}
def commands():
    for line in sys.stdin:
        word = line.strip()
        if word == "start":
            state.update(base=kib(target, "Rss:"), peak=0, child=0, program=0, samples=0, on=True)
        elif word == "stop":
            state["on"] = False
            time.sleep(0.05)
            keys = ("base", "peak", "child", "program", "samples")
            print(json.dumps({k: state[k] for k in keys}), flush=True)
    os._exit(0)
threading.Thread(target=commands, daemon=True).start()
while True:
    if state["on"]:
        # What the system gave out since the start: the program's RSS growth, and each child's
        # private pages (what it wrote, and the pages the program changed since the fork, whose
        # old copies only the child maps now).
        rss = kib(target, "Rss:")
        child = sum(
            kib(c, ("Private_Clean:", "Private_Dirty:")) or 0
            for c in children(target)
            if c != os.getpid()
        )
        if rss is not None and state["on"]:
            grown = rss - state["base"]
            state["peak"] = max(state["peak"], grown + child)
            state["child"] = max(state["child"], child)
            state["program"] = max(state["program"], grown)
            state["samples"] += 1
    time.sleep(0.01)
"""


# -- the load process: requests at a bounded rate, their latency ------------------------------

LOAD = r"""
import http.client, json, sys, threading, time
port = int(sys.argv[1])
PERIOD = 0.005
state = {"on": False, "latencies": [], "window": 0}
lock = threading.Lock()

def commands():
    for line in sys.stdin:
        word = line.strip()
        with lock:
            if word == "start":
                state["on"] = True
                state["latencies"] = []
                state["window"] += 1
            elif word == "stop":
                state["on"] = False
                print(json.dumps(state["latencies"]), flush=True)
    state["quit"] = True
threading.Thread(target=commands, daemon=True).start()
while not state.get("quit"):
    with lock:
        # Only requests sent inside the window count: one sent before (during the target's
        # gc.collect() between snapshots, say) is not this snapshot's.
        window = state["window"] if state["on"] else None
    started = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/orders/1")
        connection.getresponse().read()
        connection.close()
    except OSError:
        pass
    took = time.perf_counter() - started
    with lock:
        if state["on"] and state["window"] == window:
            state["latencies"].append(took)
    time.sleep(max(0.0, PERIOD - took))
"""


# -- the target process -----------------------------------------------------------------------


class Ticker:
    """A thread that sleeps 1 ms at a time and notes the longest gap between two ticks."""

    def __init__(self):
        self.longest = 0.0
        self.ticks = 0
        self.stopped = False
        self.thread = threading.Thread(target=self.run, name="ticker", daemon=True)
        self.thread.start()

    def run(self):
        last = time.perf_counter()
        while not self.stopped:
            time.sleep(TICK)
            now = time.perf_counter()
            gap = now - last
            if gap > self.longest:
                self.longest = gap
            self.ticks += 1
            last = now

    def reset(self):
        self.longest = 0.0
        self.ticks = 0


class ForkTimes(logging.Handler):
    """Collects the capture's own figure: how long the program was held for the fork."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.held_ms = []

    def emit(self, record):
        message = record.getMessage()
        if "held" in message and "for the fork" in message:
            self.held_ms.append(float(message.split(" held ")[1].split(" ms")[0]))


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def trim():
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def attach_snapshot():
    """``heaplens attach`` of this process, run from here, while the main thread runs Python code
    (the attach's script runs in it, at a bytecode boundary)."""
    import tempfile

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "attach.hlsnap")
    proc = subprocess.Popen(
        [sys.executable, "-m", "heaplens", "attach", str(os.getpid()), "--snapshot", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    while proc.poll() is None:
        time.sleep(TICK)
    said = proc.stderr.read()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"heaplens attach failed: {said}")
    os.remove(path)
    os.rmdir(folder)
    return "gdb" if "through gdb" in said else "sys.remote_exec"


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def serve(app):
    """Serves `app` over HTTP on loopback from a thread of its own (a thread per request), quietly."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="server", daemon=True).start()
    return server


def target(n_objects, repeat, attach=False):
    import gc

    sys.path.insert(0, str(BENCH))
    from heap_bench import build_heap

    import heaplens
    from heaplens.wsgi import HeapLens

    build_heap(n_objects)
    gc.collect()
    objects = heaplens._native.census(gc_only=False).total_count

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    dashboard = HeapLens(app, period=3600)
    server = serve(dashboard)
    load = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(server.server_port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )

    def post_snapshot():
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/_heaplens/api/snapshot",
            "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1", "HTTP_X_HEAPLENS": "1",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
            "wsgi.url_scheme": "http", "CONTENT_LENGTH": "0",
        }
        import io

        environ["wsgi.input"] = io.BytesIO(b"")
        status = []
        body = b"".join(dashboard(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"snapshot request failed: {status[0]} {body[:200]!r}")

    fork_times = ForkTimes()
    capture_log = logging.getLogger("heaplens.capture")
    capture_log.addHandler(fork_times)
    capture_log.setLevel(logging.DEBUG)

    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    ticker = Ticker()
    # The first request starts the sampler (a census) and warms everything up.
    os.environ["HEAPLENS_NO_FORK"] = "1"
    post_snapshot()
    gc.collect()
    results = {"walk": [], "fork": []}
    memory = {}
    way_in = None
    for round_ in range(repeat + (0 if attach else 1)):
        watch = round_ == repeat  # the last round watches the memory
        for way in ("walk", "fork"):
            if way == "walk":
                os.environ["HEAPLENS_NO_FORK"] = "1"
            else:
                os.environ.pop("HEAPLENS_NO_FORK", None)
            fork_times.held_ms.clear()
            if watch:
                # Free allocator memory goes back to the OS, so that the snapshot's memory shows
                # as RSS growth rather than reusing what an earlier one freed.
                gc.collect()
                trim()
                watcher.stdin.write("start\n")
                watcher.stdin.flush()
            load.stdin.write("start\n")
            load.stdin.flush()
            time.sleep(0.2)
            ticker.reset()
            started = time.perf_counter()
            if attach:
                way_in = attach_snapshot()
            else:
                post_snapshot()
            seconds = time.perf_counter() - started
            longest = ticker.longest
            ticks = ticker.ticks
            time.sleep(0.2)  # the request caught in the stall completes
            load.stdin.write("stop\n")
            load.stdin.flush()
            latencies = json.loads(load.stdout.readline())
            if watch:
                time.sleep(0.1)
                watcher.stdin.write("stop\n")
                watcher.stdin.flush()
                seen = json.loads(watcher.stdout.readline())
                memory[way] = {
                    "extra_kib": seen["peak"],
                    "child_kib": seen["child"],
                    "program_kib": seen["program"],
                    "samples": seen["samples"],
                    "seconds": seconds,
                }
            else:
                results[way].append(
                    {
                        "stall_ms": max(0.0, longest - TICK) * 1e3,
                        "request_ms": max(latencies, default=0.0) * 1e3,
                        "median_request_ms": median(latencies) * 1e3,
                        "held_ms": fork_times.held_ms[0] if fork_times.held_ms else None,
                        "seconds": seconds,
                        "ticks": ticks,
                    }
                )
            gc.collect()
    ticker.stopped = True
    watcher.stdin.close()
    watcher.wait()
    load.stdin.close()
    load.wait()
    server.shutdown()
    print(
        json.dumps(
            {
                "objects": objects,
                "rss_mib": rss_kib() / 1024,
                "results": results,
                "memory": memory,
                "attach": way_in,
            }
        )
    )


# -- the driver -------------------------------------------------------------------------------


def fmt_ms(values):
    return f"{max(values):.0f}" if values else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", nargs="+", type=parse_count, default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="snapshots each way (default 3)")
    parser.add_argument(
        "--attach", action="store_true",
        help="snapshots by heaplens attach (run by the target on itself) instead of the dashboard",
    )
    parser.add_argument("--target", type=parse_count, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.target:
        target(args.target, args.repeat, args.attach)
        return 0
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; load {os.getloadavg()}")
    header = (
        "| objects | RSS | way | longest stall, ms (each run) | longest request, ms (each run; "
        "median) | held for the fork, ms | request, s "
        "| extra memory, MiB (peaks: child's private, program's RSS growth) |"
    )
    rows = []
    for n in args.objects:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--target", str(n), "--repeat", str(args.repeat)]
            + (["--attach"] if args.attach else []),
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        out = json.loads(done.stdout.strip().splitlines()[-1])
        results_dir = BENCH / "results"
        results_dir.mkdir(exist_ok=True)
        kind = f"attach-{out['attach']}" if args.attach else "dashboard"
        (results_dir / f"pause-{kind}-{n}.json").write_text(json.dumps(out, indent=2))
        for way in ("walk", "fork"):
            runs = out["results"][way]
            stalls = ", ".join(f"{r['stall_ms']:.0f}" for r in runs)
            requests = ", ".join(f"{r['request_ms']:.0f}" for r in runs)
            held = [r["held_ms"] for r in runs if r["held_ms"] is not None]
            mem = out["memory"].get(way, {})
            extra = mem.get("extra_kib")
            if extra is None:
                memory = "-"
            else:
                memory = (
                    f"{extra / 1024:.0f} (child {mem['child_kib'] / 1024:.0f}, program "
                    f"{mem['program_kib'] / 1024:.0f})"
                )
            rows.append(
                f"| {out['objects'] / 1e6:.2f}M | {out['rss_mib']:.0f} MiB "
                f"| {(out['attach'] + ': ') if args.attach else ''}"
                f"{'in the program' if way == 'walk' else 'forked child'} "
                f"| **{max(r['stall_ms'] for r in runs):.0f}** ({stalls}) "
                f"| {max(r['request_ms'] for r in runs):.0f} ({requests}; "
                f"{median([r['median_request_ms'] for r in runs]):.1f}) "
                f"| {', '.join(f'{h:.1f}' for h in held) if held else '-'} "
                f"| {sum(r['seconds'] for r in runs) / len(runs):.2f} | {memory} |"
            )
        print(f"  {n:,} objects: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
