"""Dict-heavy heaps against the same objects in a list: no cliff (issue 13, item 3).

A cache keyed by ids, the commonest leak there is, is one dict of millions of int keys; a dict
of str keys is its twin. Each distinct key is a label on the dict's edges ("['k']", "[42]"),
so a snapshot of such a heap once cost 8 to 10 times one of a list of the same objects. The
target: a dict of N int or str keys costs at most 2 times a list of the same N objects, in
snapshot time and in extra peak memory.

    python bench/dict_bench.py                  # N = 2M
    python bench/dict_bench.py --keys 2e6 5e6

Each shape is built in a fresh child process (one heap per process, nothing shared); the
snapshot's time is the median of 3, its extra peak RSS measured in a forked child (VmHWM
minus the RSS at the fork), as bench/heap_bench.py does. Results are printed as a table and
the two ratios per key kind, with their verdicts.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from heap_bench import peak_in_fork  # noqa: E402

RUNS = 3
TARGET = 2.0

#: name -> code that builds `held` from `n` (the same n objects in every pair).
SHAPES = {
    "list of ints": "held = [10**9 + i for i in range(n)]",
    "dict of int keys": "held = dict.fromkeys(10**9 + i for i in range(n))",
    # The dict refers to each object a second time (its value): so does its twin, which holds
    # the same ints and the same objects (an object referred to twice costs the walk a lookup
    # in its address map, whatever holds it; a twin holding the ints alone measured that too).
    "list of ids and objs": (
        "objs = [object() for _ in range(n)]; held = [id(o) for o in objs] + objs"
    ),
    "dict keyed by id()": "objs = [object() for _ in range(n)]; held = {id(o): o for o in objs}",
    "list of strs": "held = [f'key-{i}' for i in range(n)]",
    "dict of str keys": "held = dict.fromkeys(f'key-{i}' for i in range(n))",
}
PAIRS = [
    ("dict of int keys", "list of ints"),
    ("dict keyed by id()", "list of ids and objs"),
    ("dict of str keys", "list of strs"),
]


def child(shape, n):
    import heaplens

    scope = {"n": n}
    exec(SHAPES[shape], scope)
    gc.collect()
    gc.disable()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        snap = heaplens.snapshot()
        times.append(time.perf_counter() - start)
        objects = len(snap.graph) if hasattr(snap, "graph") else None
        del snap
    peak = peak_in_fork(heaplens.snapshot)
    print(json.dumps({"seconds": statistics.median(times), "peak": peak, "objects": objects}))


def measure(shape, n):
    out = subprocess.run(
        [sys.executable, __file__, "--child", shape, "--keys", str(n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", nargs="+", type=float, default=[2e6])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, int(args.keys[0]))
        return 0
    import heaplens

    print(f"heaplens {heaplens.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    failed = False
    for n in (int(k) for k in args.keys):
        rows = {shape: measure(shape, n) for shape in SHAPES}
        print(f"\nN = {n:,}")
        print(f"{'heap':<22} {'snapshot s':>11} {'extra peak MB':>14}")
        for shape, r in rows.items():
            print(f"{shape:<22} {r['seconds']:>11.3f} {r['peak'] / 1e6:>14.1f}")
        for dict_shape, list_shape in PAIRS:
            d, l = rows[dict_shape], rows[list_shape]
            t = d["seconds"] / l["seconds"]
            m = d["peak"] / max(l["peak"], 1)
            ok = t <= TARGET and m <= TARGET
            failed |= not ok
            print(
                f"{dict_shape} / {list_shape}: time {t:.2f}, peak {m:.2f} "
                f"(target <= {TARGET}: {'met' if ok else 'MISSED'})"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
