"""The dashboard's pages in Chromium on a big snapshot: how long each takes to show (issue 14).

Builds a heap of about `--objects` objects in a child process (instances of a class with a
`__dict__`, their str and list payloads, held by one module-level list, beside the interpreter's
own), saves a snapshot of it, serves it with `heaplens serve`, and opens in Chromium the pages a
user opens: the overview (with the report of the biggest retainers), the page of the leaking
type (what holds its instances, then the first 50 of them) and the page of one instance (its
referrers, its retaining path and the path's picture). Each page's time is from navigation to
its content on screen, the median of 3; the first API answer of each page is timed apart, from
Python, as the server's share.

    python bench/page_bench.py                  # 1M objects
    python bench/page_bench.py --objects 1e6 5e6

Needs Playwright (`pip install playwright`) and a Chromium (Debian's `chromium`, or
`HEAPLENS_CHROMIUM`). The first request of a snapshot also computes its analyses (dominators,
retaining paths): that one is reported apart ("first overview").
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

RUNS = 3

BUILD = """
import sys, heaplens
class Quote:
    def __init__(self, n):
        self.n = n
        self.note = "quote %d" % n
        self.lines = [n, n + 1]
QUOTES = [Quote(n) for n in range(int(sys.argv[2]) // 5)]
snap = heaplens.snapshot()
snap.save(sys.argv[1])
"""


def chromium():
    chosen = os.environ.get("HEAPLENS_CHROMIUM") or shutil.which("chromium")
    if not chosen:
        sys.exit("no Chromium: install Debian's chromium, or set HEAPLENS_CHROMIUM")
    return chosen


def serve(path):
    process = subprocess.Popen(
        ["heaplens", "serve", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not found:
        process.kill()
        sys.exit("heaplens serve did not start: " + line + process.stderr.read())
    return process, found.group(1)


def timed_get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        answer.read()
    return time.perf_counter() - start


def measure(objects):
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="heaplens-page-bench-"))
    path = folder / "big.hlsnap"
    subprocess.run([sys.executable, "-c", BUILD, str(path), str(objects)], check=True)
    process, url = serve(path)
    rows = []
    try:
        # The report (biggest retainers) needs the dominator tree and the retaining paths,
        # computed on the first request that asks.
        first = timed_get(url + "api/report")
        rows.append(("first report (analyses computed)", first, None))
        with urllib.request.urlopen(url + "api/overview", timeout=600) as answer:
            facts = json.load(answer)["snapshot"]
        print(f"the snapshot: {facts['objects']:,} objects, {facts['references']:,} references")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def show(target, selector):
                times = []
                for _ in range(RUNS):
                    page.goto("about:blank")
                    start = time.perf_counter()
                    page.goto(target)
                    page.wait_for_selector(selector, timeout=600_000)
                    times.append(time.perf_counter() - start)
                return statistics.median(times)

            overview = show(url, "main h2:has-text('Types')")
            rows.append(("overview", timed_get(url + "api/overview"), overview))
            name = "__main__.Quote"
            type_url = url + "#/type/" + urllib.request.quote(name, safe="") + "/1"
            api = url + "api/types?name=" + urllib.request.quote(name, safe="")
            rows.append(("type page", timed_get(api), show(type_url, "main table >> nth=-1")))
            page.goto(type_url)
            page.wait_for_selector("main table >> nth=-1")
            link = page.locator("main table").last.locator("tbody tr a").first
            object_id = link.get_attribute("href").rsplit("/", 1)[1]
            object_url = url + "#/object/" + object_id
            rows.append((
                "object page",
                timed_get(url + "api/objects/" + object_id),
                show(object_url, "main p.path"),
            ))
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", nargs="+", type=float, default=[1e6])
    args = parser.parse_args(argv)
    for n in (int(x) for x in args.objects):
        print(f"\n{n:,} objects (a snapshot served by heaplens serve, Chromium {RUNS} runs)")
        print(f"{'page':<36} {'API s':>8} {'on screen s':>12}")
        for name, api, screen in measure(n):
            api = "" if api is None else f"{api:.3f}"
            screen = "" if screen is None else f"{screen:.3f}"
            print(f"{name:<36} {api:>8} {screen:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
