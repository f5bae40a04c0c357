"""The "what grew and why" loop against objgraph's, and heaplens' walk and analyses by thread count.

On heap_bench's web-app heap (with its leak: sessions piling up in a module-level cache), each
size in a fresh process:

- **the loop**: heaplens takes a snapshot, the app leaks 1,000 more sessions, heaplens takes a
  second snapshot, compares them and renders the top suspect's path (the comparison and the
  path are also shown apart, as "diff"); objgraph runs `growth()`,
  the same leak, `growth()` again, `by_type()` of the leaked type and `find_backref_chain()` from
  one of them to a module (what its docs prescribe). Both must name the same leak.
- **`snapshot()`** and **`analyze()`** (dominators, retaining paths, referrers) against
  `gc.collect()`.

heaplens' part runs once per thread count in `--threads` (the analyses read `HEAPLENS_THREADS`;
the default is 1 and every core this process may use, so the bench runs unchanged on a machine
of 2 cores or 16). objgraph's loop runs once per size (`--no-objgraph` skips it).

```sh
pip install objgraph
python bench/loop_bench.py --objects 5e6 10e6
python bench/loop_bench.py --objects 1e6 --threads 1 2 4
```
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import heap_bench  # noqa: E402  (the same heap, the same leak)

RUNS = 3
_leaks = iter(range(1, 1 << 30))  # each leak adds sessions of its own
LOOP_TARGET = 10  # issue 13: objgraph's loop / heaplens' loop, at 5M and 10M objects
SNAPSHOT_TARGET = 0.5  # issue 13: snapshot() / gc.collect() at 10M objects on 2 cores


_timed = heap_bench._timed


def _median(fn, runs=RUNS):
    return statistics.median(_timed(fn)[0] for _ in range(runs))


def heaplens_loop():
    """Two snapshots around the leak, the comparison and the top suspect's path: seconds and
    what it found."""
    import heaplens

    gc.collect()
    start = time.perf_counter()
    before = heaplens.snapshot()
    heap_bench.leak_more(seed=next(_leaks))
    after = heaplens.snapshot()
    compared = time.perf_counter()
    top = after.diff(before).suspects[0]
    found = (top.entry_type, str(top.holder_path))
    end = time.perf_counter()
    return end - start, end - compared, found


def objgraph_loop():
    """objgraph's way to the same answer: seconds, the type that grew most and its chain."""
    import objgraph

    peaks = {}
    start = time.perf_counter()
    objgraph.growth(peak_stats=peaks)
    heap_bench.leak_more(seed=next(_leaks))
    grown = objgraph.growth(peak_stats=peaks)
    leaked = objgraph.by_type("LeakedSession")
    chain = objgraph.find_backref_chain(leaked[-1], objgraph.is_proper_module)
    seconds = time.perf_counter() - start
    del leaked
    names = [name for name, *_ in grown]
    return seconds, {"grew": names[:3], "chain_length": len(chain)}


def child(n_objects, threads, with_objgraph):
    import heaplens

    gc.disable()
    heap_bench.build_heap(n_objects)
    gc.collect()
    objects = len(heaplens.snapshot())
    result = {"requested": n_objects, "objects": objects, "cpus": os.cpu_count(), "rows": []}
    gc_seconds = _median(gc.collect)
    result["gc_collect_s"] = gc_seconds
    for t in threads:
        os.environ["HEAPLENS_THREADS"] = str(t)
        snapshot_s = _median(heaplens.snapshot)

        def analyse():
            snap = heaplens.snapshot()
            return _timed(snap.analyze)[0]

        analyze_s = statistics.median(analyse() for _ in range(RUNS))
        loops = [heaplens_loop() for _ in range(RUNS)]
        loop_s = statistics.median(s for s, _, _ in loops)
        diff_s = statistics.median(d for _, d, _ in loops)
        found = {f for _, _, f in loops}
        result["rows"].append({
            "threads": t, "snapshot_s": snapshot_s, "analyze_s": analyze_s, "loop_s": loop_s,
            "diff_s": diff_s, "found": sorted(found),
        })
    if with_objgraph:
        try:
            seconds, found = objgraph_loop()
            result["objgraph_loop_s"] = seconds
            result["objgraph_found"] = found
        except ImportError:
            result["objgraph_loop_s"] = None
    print(json.dumps(result))


def report(result):
    n, gc_s = result["objects"], result["gc_collect_s"]
    og = result.get("objgraph_loop_s")
    print(f"\n{n / 1e6:.2f}M objects, {result['cpus']} cores, gc.collect() {gc_s:.3f} s"
          + (f", objgraph's loop {og:.2f} s" if og else ", objgraph not run"))
    print(f"  {'threads':>7} {'snapshot s':>10} {'/gc':>5} {'analyze s':>9} {'/gc':>5} "
          f"{'loop s':>7} {'(diff s)':>8} {'objgraph/loop':>13}  found")
    for row in result["rows"]:
        ratio = f"{og / row['loop_s']:.2f}" if og else "-"
        found = "; ".join(f"{t} held by {p}" for t, p in row["found"])
        print(f"  {row['threads']:>7} {row['snapshot_s']:>10.3f} {row['snapshot_s'] / gc_s:>5.2f} "
              f"{row['analyze_s']:>9.3f} {row['analyze_s'] / gc_s:>5.2f} {row['loop_s']:>7.3f} "
              f"{row['diff_s']:>8.3f} "
              f"{ratio:>13}  {found}")
    if og:
        print(f"  objgraph found: {result['objgraph_found']}")
    print(f"  targets (issue 13): objgraph/loop >= {LOOP_TARGET} at 5M and 10M; "
          f"snapshot/gc <= {SNAPSHOT_TARGET} at 10M on 2 cores")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=heap_bench._count, nargs="+", default=[1_000_000],
                        metavar="N", help="heap sizes, e.g. 5e6 10e6 (default 1e6)")
    parser.add_argument("--threads", type=int, nargs="+", metavar="T",
                        help="thread counts (default: 1 and every core this process may use)")
    parser.add_argument("--no-objgraph", action="store_true", help="skip objgraph's loop")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = args.threads or sorted({1, len(os.sched_getaffinity(0))})
    if args.child:
        (n,) = args.objects
        child(n, threads, not args.no_objgraph)
        return
    print(f"python {sys.version.split()[0]}, threads {threads}")
    for n in args.objects:
        cmd = [sys.executable, __file__, "--child", "--objects", str(n),
               "--threads", *map(str, threads)]
        if args.no_objgraph:
            cmd.append("--no-objgraph")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        report(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
