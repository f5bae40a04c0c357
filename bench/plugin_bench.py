"""What `pytest --heaplens` costs a test suite.

    python bench/plugin_bench.py                 # a 150k-object heap, 12 tests
    python bench/plugin_bench.py --objects 5e5 --tests 24

Writes a small project into a temporary directory: a conftest that grows the heap to about
`--objects` objects (what a middling application imports and keeps: dicts, lists, strings), and
`--tests` clean tests of the everyday kinds (JSON, regular expressions, sorting, small classes,
logging, a bounded cache), each doing a few tens of milliseconds of work. The suite runs three
times without the plugin and three times with `--heaplens` (warm-up 1, runs 3), in fresh
interpreters; each figure is the median of pytest's own session time ("N passed in X s"), so
interpreter start-up is not counted.

Reported per test: the test's own time; its time under the plugin; the slow-down (the second
over the first); and heaplens' own work, the time under the plugin less the four runs of the
test's body the check makes (one warm-up and three counted), over the test's own time. Target:
heaplens' own work at most 2 times the test's own time on a 150k-object heap.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

CONFTEST = """
import gc
# The application's heap: {objects} objects in all with pytest's and the interpreter's own.
BALLAST = [{{"id": i, "name": f"item {{i}}", "tags": [i, str(i)]}} for i in range({ballast})]
"""

TESTS = '''
import collections, functools, json, logging, re

log = logging.getLogger("suite")

@functools.lru_cache(maxsize=256)
def price(n):
    return round(n * 1.07, 2)

class Line:
    def __init__(self, sku, qty):
        self.sku, self.qty = sku, qty

def work(scale):
    """About {ms} ms of the ordinary work of a test."""
    for _ in range(scale):
        data = {{"orders": [{{"id": i, "lines": [i, i + 1], "note": "x" * 20}} for i in range(200)]}}
        assert json.loads(json.dumps(data)) == data
'''

KINDS = [
    "assert re.findall(r'\\d+', 'a1b22c333' * 50)[:3] == ['1', '22', '333']",
    "assert collections.Counter('mississippi' * 100)['s'] == 400",
    "assert sorted(range(5000), key=lambda x: -x)[0] == 4999",
    "log.warning('order %s placed', 42)",
    "assert sum(price(n % 300) for n in range(1000)) > 0",
    "assert [Line(str(i), i).qty for i in range(2000)][-1] == 1999",
]


def calibrate(ms):
    """How many rounds of `work` take about `ms` milliseconds here."""
    import json
    import time

    start = time.perf_counter()
    rounds = 0
    while time.perf_counter() - start < 0.2:
        data = {"orders": [{"id": i, "lines": [i, i + 1], "note": "x" * 20} for i in range(200)]}
        assert json.loads(json.dumps(data)) == data
        rounds += 1
    per_round = 0.2 / rounds
    return max(1, round(ms / 1000 / per_round))


def session_seconds(directory, *options):
    """pytest's own session time for the suite in `directory`."""
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    found = re.search(r"(\d+) passed in ([\d.]+)s", r.stdout)
    if r.returncode != 0 or not found:
        sys.exit(f"the suite did not pass:\n{r.stdout}{r.stderr}")
    return int(found.group(1)), float(found.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=float, default=150e3)
    parser.add_argument("--tests", type=int, default=12)
    parser.add_argument("--ms", type=float, default=40, help="each test's own work (ms)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scale = calibrate(args.ms)
    with tempfile.TemporaryDirectory(prefix="heaplens-plugin-bench-") as directory:

        def write_conftest(ballast):
            with open(os.path.join(directory, "conftest.py"), "w") as f:
                f.write(CONFTEST.format(objects=int(args.objects), ballast=ballast))

        def heap_in_a_test():
            with open(os.path.join(directory, "test_heap.py"), "w") as f:
                f.write("import heaplens\ndef test_heap():\n"
                        "    print('HEAP', heaplens.census().total_count)\n")
            r = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
                 "test_heap.py"],
                cwd=directory, capture_output=True, text=True,
            )
            os.remove(os.path.join(directory, "test_heap.py"))
            return int(re.search(r"HEAP (\d+)", r.stdout).group(1))

        # The heap a test sees, pytest's own objects included; each ballast entry adds four.
        write_conftest(0)
        ballast = max(0, int((args.objects - heap_in_a_test()) / 4))
        write_conftest(ballast)
        heap = heap_in_a_test()
        body = TESTS.format(ms=args.ms)
        for i in range(args.tests):
            body += f"\ndef test_{i}():\n    work({scale})\n    {KINDS[i % len(KINDS)]}\n"
        with open(os.path.join(directory, "test_suite.py"), "w") as f:
            f.write(body)
        plain = [session_seconds(directory)[1] for _ in range(args.repeat)]
        checked = [session_seconds(directory, "--heaplens")[1] for _ in range(args.repeat)]

    own = statistics.median(plain) / args.tests
    under = statistics.median(checked) / args.tests
    heaplens_work = under - 4 * own
    print(f"heap: {heap:,} objects in a test; {args.tests} tests of about {args.ms:g} ms each")
    print(f"  the test's own time            {own * 1000:8.1f} ms")
    print(f"  under pytest --heaplens        {under * 1000:8.1f} ms  (slow-down x{under / own:.1f})")
    print(f"  heaplens' own work per test    {heaplens_work * 1000:8.1f} ms  "
          f"({heaplens_work / own:.2f} x the test's time; target <= 2)")


if __name__ == "__main__":
    main()
