"""What the dashboard keeps in the process it observes (issue 13, item 5): the RSS it adds and
what it counts as its own (``/api/info``'s ``memory.own_bytes``), per object of the heap,
after one snapshot and after more.

    python bench/dashboard_memory_bench.py --objects 150e3 1e6 --snapshots 3

Each size runs in a fresh child process: a heap of about ``--objects`` objects (instances
with a ``__dict__``, a str and a list each), a WSGI app wrapped in ``HeapLens`` (``period`` of
an hour: the sampler's history is not what is measured), then the requests a user's page
makes: take a snapshot, the overview, the report, the diff and a type page, again for each
snapshot. RSS is read after each step, with free allocator memory handed back to the system
(``malloc_trim``) so that what is counted is what is held.
"""

import argparse
import ctypes
import gc
import io
import json
import subprocess
import sys


def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


class Item:
    def __init__(self, i):
        self.i = i
        self.name = f"item-{i}"
        self.tags = [i, str(i)]


def child(objects, snapshots):
    from heaplens.wsgi import HeapLens

    data = [Item(i) for i in range(objects // 5)]  # about 5 objects an item

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = HeapLens(app, period=3600)

    def call(method, path, query=""):
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": "/_heaplens" + path, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1", "HTTP_X_HEAPLENS": "1", "CONTENT_LENGTH": "0",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
        }
        status = []
        body = b"".join(wrapped(environ, lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), (path, status, body[:200])
        return json.loads(body) if body.startswith(b"{") else None

    trim = ctypes.CDLL("libc.so.6").malloc_trim
    gc.collect()
    trim(0)
    base = rss()
    heap = None
    rows = []
    for n in range(1, snapshots + 1):
        call("POST", "/api/snapshot")
        overview = call("GET", "/api/overview")
        heap = overview["snapshot"]["objects"]
        call("GET", "/api/report")
        if n > 1:
            call("GET", "/api/diff")
        call("GET", "/api/types", "name=__main__.Item")
        own = call("GET", "/api/info").get("memory", {}).get("own_bytes")
        trim(0)
        rows.append({"snapshots": n, "rss_added": rss() - base, "own_bytes": own})
        data.append(Item(-n))
    print(json.dumps({"objects": heap, "rows": rows}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=float, nargs="+", default=[150e3, 1e6])
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child), args.snapshots)
    print("| heap objects | snapshots taken | RSS added | per object | heaplens' own | per object |")
    print("|---|---|---|---|---|---|")
    for objects in args.objects:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(objects), "--snapshots",
             str(args.snapshots)], capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        n = result["objects"]
        for row in result["rows"]:
            own = row["own_bytes"]  # None from a heaplens older than /api/info's memory
            own_text = "- | -" if own is None else f"{own / 1e6:.1f} MB | {own / n:.0f} B"
            print(f"| {n:,} | {row['snapshots']} | {row['rss_added'] / 1e6:.1f} MB | "
                  f"{row['rss_added'] / n:.0f} B | {own_text} |")


if __name__ == "__main__":
    main()
