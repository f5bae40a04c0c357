"""heaplens.objgraph against objgraph: every function, same arguments, same heap.

Run it from the repository root, in an environment where heaplens and objgraph are installed::

    pip install objgraph
    python bench/objgraph_bench.py --objects 1e6
    python bench/objgraph_bench.py --objects 1e6 5e6

Each size runs in a fresh child process (this script re-invoked with ``--child``). The child
builds heap_bench's web-app-like heap (``heap_bench.build_heap``: requests, users, JSON-like
records, reference cycles and a module-level cache leaking ``LeakedSession`` instances), then
times each public function of objgraph and of ``heaplens.objgraph`` called with the same
arguments, alternately, and prints the ratio objgraph time / heaplens time (the target: above 1
for every call). It also checks that both answer the same: the same count, the same objects,
chains of the same length. Results go to ``bench/results/objgraph-<objects>.json``.

Each time is the median of 3 runs with automatic garbage collection off (as in ``timeit``);
calls that keep state (``growth``, ``show_growth``, ``get_new_ids``) are primed with one untimed
call, so the timed calls are the steady state of a program that calls them repeatedly.
``get_new_ids`` is also timed on its first call, which reports every object as new.
"""

import argparse
import gc
import io
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import objgraph

import heap_bench
import heaplens
import heaplens.objgraph as hl_objgraph
from heap_bench import LeakedSession, build_heap

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RUNS = 3
#: Objects whose addresses at_addrs() looks up.
AT_ADDRS_COUNT = 1000


def is_leaked_session(obj):
    return isinstance(obj, LeakedSession)


def is_session_cache(obj):
    return obj is heap_bench._SESSION_CACHE


@dataclass
class Call:
    """One function, called the same way on both modules: ``run(module)``."""

    name: str
    run: object
    prime: bool = False  # one untimed call first (stateful calls)
    # What must agree between the two results, as plain data (ids, counts, lengths): results
    # are reduced at once, so that neither module's objects are held while the other runs
    # (held objects would change what get_leaking_objects finds, for one).
    key: object = None


def _session():
    return next(iter(heap_bench._SESSION_CACHE["sessions"][0].by_token.values()))


def _ids(objects):
    return sorted(map(id, objects))


def calls():
    session = _session()
    addresses = {id(s) for s, _ in zip(
        heap_bench._SESSION_CACHE["sessions"][0].by_token.values(), range(AT_ADDRS_COUNT))}
    out = io.StringIO
    return [
        Call("count('LeakedSession')", lambda m: m.count("LeakedSession"), key=int),
        Call("typestats()", lambda m: m.typestats(), key=lambda r: r["LeakedSession"]),
        Call("most_common_types()", lambda m: m.most_common_types(), key=dict),
        Call("show_most_common_types()", lambda m: m.show_most_common_types(file=out())),
        Call("growth()", lambda m: m.growth(), prime=True),
        Call("show_growth()", lambda m: m.show_growth(file=out()), prime=True),
        Call("get_new_ids() first call", lambda m: m.get_new_ids(file=out(), _state={}),
             key=lambda r: len(r["LeakedSession"])),
        Call("get_new_ids()", lambda m: m.get_new_ids(file=out()), prime=True),
        # objgraph's answer includes one object of its own: the cell of its local `ids`, which
        # only its running frame holds.
        Call("get_leaking_objects()", lambda m: m.get_leaking_objects(),
             key=lambda r: _ids(o for o in r if type(o).__name__ != "cell")),
        Call("by_type('LeakedSession')", lambda m: m.by_type("LeakedSession"), key=_ids),
        Call("at(id(session))", lambda m: m.at(id(session)), key=id),
        Call(f"at_addrs({AT_ADDRS_COUNT} ids)", lambda m: m.at_addrs(addresses), key=_ids),
        Call("find_ref_chain(cache, is LeakedSession)",
             lambda m: m.find_ref_chain(heap_bench._SESSION_CACHE, is_leaked_session),
             key=_ids),
        Call("find_backref_chain(session, is_proper_module)",
             lambda m: m.find_backref_chain(session, m.is_proper_module), key=len),
        Call("find_backref_chain(session, is cache)",
             lambda m: m.find_backref_chain(session, is_session_cache), key=_ids),
        Call("is_proper_module(heap_bench) x 100000",
             lambda m: [m.is_proper_module(heap_bench) for _ in range(100_000)][-1], key=bool),
        Call("show_refs(request, output=...)",
             lambda m: m.show_refs([heap_bench._APP["requests"][0]], output=out())),
        Call("show_backrefs(session, output=...)",
             lambda m: m.show_backrefs([session], output=out())),
        Call("show_chain(backref chain, output=...)",
             lambda m: m.show_chain(m.find_backref_chain(session, m.is_proper_module),
                                    output=out())),
    ]


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(call):
    """Times `call` on objgraph and on heaplens.objgraph, alternately; returns its row."""
    modules = {"objgraph": objgraph, "heaplens": hl_objgraph}
    if call.prime:
        for m in modules.values():
            call.run(m)
    seconds = {name: [] for name in modules}
    keys = {}
    for _ in range(RUNS):
        for name, m in modules.items():
            run_seconds, result = _timed(lambda: call.run(m))
            seconds[name].append(run_seconds)
            keys[name] = None if call.key is None else call.key(result)
            del result
    same = None if call.key is None else keys["objgraph"] == keys["heaplens"]
    row = {"call": call.name, "same_answer": same}
    for name in modules:
        row[name] = statistics.median(seconds[name])
        row[f"{name}_all"] = seconds[name]
    row["ratio"] = row["objgraph"] / row["heaplens"]
    return row


def child(n_objects):
    gc.disable()
    build_start = time.perf_counter()
    build_heap(n_objects)
    build_seconds = time.perf_counter() - build_start
    gc.collect()
    gc.collect()
    heap = {
        "requested": n_objects,
        "gc_objects": len(gc.get_objects()),
        "census_objects": heaplens.census().total_count,
        "build_seconds": build_seconds,
    }
    t_collect = statistics.median(_timed(gc.collect)[0] for _ in range(RUNS))
    rows = [measure(call) for call in calls()]
    print(f"== {n_objects:,} objects requested: {heap['census_objects']:,} objects, "
          f"{heap['gc_objects']:,} gc-tracked; gc.collect() {t_collect:.3f} s ==")
    print(f"  {'call':<46} {'objgraph':>9} {'heaplens':>9} {'ratio':>7}  same answer")
    for r in rows:
        same = {None: "-", True: "yes", False: "NO"}[r["same_answer"]]
        verdict = "" if r["ratio"] > 1 else "  SLOWER"
        print(f"  {r['call']:<46} {r['objgraph']:>9.4f} {r['heaplens']:>9.4f} "
              f"{r['ratio']:>7.1f}  {same}{verdict}")
    slower = [r["call"] for r in rows if r["ratio"] <= 1]
    print(f"  every call faster than objgraph's: {'yes' if not slower else 'NO: ' + ', '.join(slower)}")
    print("  (seconds, median of 3; ratio = objgraph time / heaplens time)")
    print()
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"objgraph-{n_objects}.json"
    path.write_text(json.dumps({"heap": heap, "gc_collect_seconds": t_collect, "calls": rows},
                               indent=2) + "\n")
    print(f"  results: {path}")
    sys.stdout.flush()
    return not slower


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=heap_bench._count, nargs="+", default=[1_000_000],
                        metavar="N", help="heap sizes, e.g. 1e6 5e6 (default 1e6)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        (n,) = args.objects
        sys.exit(0 if child(n) else 1)
    failed = []
    for n in args.objects:
        sys.stdout.flush()
        cmd = [sys.executable, __file__, "--child", "--objects", str(n)]
        if subprocess.run(cmd).returncode != 0:
            failed.append(n)
    if failed:
        sys.exit(f"slower than objgraph (or failed) at: {', '.join(f'{n:,}' for n in failed)} "
                 "objects")


if __name__ == "__main__":
    main()
