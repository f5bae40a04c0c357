"""What background sampling costs the program it watches: heaplens' sampler against the
Dozer-style peer (a Python thread calling objgraph's ``typestats()`` every period).

    python bench/sampler_bench.py --objects 1e6 --period 1
    python bench/sampler_bench.py --objects 1e6 5e6 --period 1 --seconds 20

On the web-app-like heap of ``heap_bench.py`` (built once per size, in a fresh child process),
a CPU-bound pure-Python workload (it allocates and frees dicts, as request handling does) runs
for ``--seconds`` (three interleaved rounds, the median counts) three ways: alone, with ``heaplens._native.Sampler(period)`` (what
``heaplens run`` uses, here held to exactly ``period``), and with a Python thread that calls ``objgraph.typestats()`` every
``period`` seconds (how Dozer and hand-written samplers count types). Reported: the workload's
throughput under each sampler relative to alone (1.00 = no cost), samples taken, and the
sampler's own figure for the time one census takes. Ratios only: no timing assertion anywhere.
"""

import argparse
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heap_bench import build_heap  # noqa: E402

from heaplens import _native  # noqa: E402

ROUNDS = 3


def workload(seconds):
    """Iterations of a request-like loop done in `seconds`."""
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        for i in range(200):
            payload = {"id": i, "items": [i, i + 1, i + 2], "name": "req"}
            payload["total"] = sum(payload["items"])
        done += 1
    return done


def with_heaplens(seconds, period):
    # max_overhead=1: sample at exactly `period`, as the peer does (heaplens run stretches the
    # period so that sampling stays under 1% of a core; that is measured separately).
    sampler = _native.Sampler(period=period, max_overhead=1.0)
    sampler.start()
    try:
        done = workload(seconds)
    finally:
        sampler.stop()
    return done, len(sampler), sampler.period


def with_objgraph(seconds, period):
    import objgraph

    stop = threading.Event()
    samples = []

    def sample():
        while not stop.wait(period):
            started = time.perf_counter()
            objgraph.typestats()
            samples.append(time.perf_counter() - started)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        done = workload(seconds)
    finally:
        stop.set()
        thread.join()
    return done, samples


def child(n_objects, seconds, period):
    heap = build_heap(n_objects)
    gc.collect()
    # No automatic collection: one triggered by the workload would land on whichever run it
    # fell in. (Not gc.freeze(): objgraph would no longer see the frozen heap.)
    gc.disable()
    started = time.perf_counter()
    _native.census(gc_only=True)
    census_seconds = time.perf_counter() - started
    # Rounds interleave the three runs so that a noisy neighbour hits all of them alike; the
    # median round counts.
    alone_runs, h_runs, o_runs = [], [], []
    for _ in range(ROUNDS):
        alone_runs.append(workload(seconds))
        h_runs.append(with_heaplens(seconds, period))
        try:
            o_runs.append(with_objgraph(seconds, period))
        except ImportError:
            o_runs.append((None, []))
    alone = statistics.median(alone_runs)
    h_done, h_samples, h_period = sorted(h_runs)[len(h_runs) // 2]
    o_done, o_samples = sorted(o_runs, key=lambda r: r[0] or 0)[len(o_runs) // 2]
    del heap
    return {
        "objects": n_objects,
        "seconds": seconds,
        "period": period,
        "census_seconds": census_seconds,
        "alone": alone,
        "heaplens": {"done": h_done, "samples": h_samples, "effective_period": h_period},
        "objgraph": {
            "done": o_done,
            "samples": len(o_samples),
            "mean_sample_seconds": sum(o_samples) / len(o_samples) if o_samples else None,
        },
    }


def report(r):
    alone = r["alone"]
    h = r["heaplens"]
    o = r["objgraph"]
    print(f"\n{r['objects'] / 1e6:.1f}M objects, {r['seconds']:g} s of work, period {r['period']:g} s")
    print(f"  one gc-only census: {r['census_seconds'] * 1000:.0f} ms")
    print(
        f"  heaplens sampler: throughput {h['done'] / alone:.3f} of alone, "
        f"{h['samples']} samples (effective period {h['effective_period']:.2f} s)"
    )
    if o["done"] is None:
        print("  objgraph typestats thread: objgraph not installed")
    else:
        print(
            f"  objgraph typestats thread: throughput {o['done'] / alone:.3f} of alone, "
            f"{o['samples']} samples ({(o['mean_sample_seconds'] or 0) * 1000:.0f} ms each)"
        )
        # What one sample costs the program: the work lost, spread over the samples taken
        # (the peer, slower, takes fewer samples in the same time).
        per_h = (1 - h["done"] / alone) * r["seconds"] / max(h["samples"], 1)
        per_o = (1 - o["done"] / alone) * r["seconds"] / max(o["samples"], 1)
        print(
            f"  cost to the program per sample: heaplens {per_h * 1000:.0f} ms, "
            f"objgraph {per_o * 1000:.0f} ms"
        )
        if per_h > 0.0005:
            print(f"  => a sample costs the program {per_o / per_h:.1f}x less with heaplens")
        else:
            print(f"  => heaplens' cost is within noise; objgraph's is {per_o * 1000:.0f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=float, nargs="+", default=[1e6])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(int(args.objects[0]), args.seconds, args.period)))
        return
    for n in args.objects:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--objects", str(n), "--seconds",
             str(args.seconds), "--period", str(args.period)],
            check=True, capture_output=True, text=True,
        ).stdout
        report(json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
