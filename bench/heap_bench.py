"""heaplens against its peers (objgraph, guppy3, Pympler) on the same web-app-like heap.

Run it from the repository root, in an environment where heaplens is installed (the peers are
optional; a missing one is reported as "not installed")::

    pip install objgraph guppy3 pympler
    python bench/heap_bench.py --objects 1e6
    python bench/heap_bench.py --objects 1e6 5e6 10e6

Each size runs in a fresh child process (this script re-invoked with ``--child``), so heaps and
peak RSS of one size do not leak into the next. The child:

1. builds a deterministic (seeded) heap of about ``--objects`` objects shaped like a web app's:
   requests and users with a ``__dict__``, ``__slots__`` points, JSON-like dicts, lists, tuples,
   many distinct str, large int, float and bytes, parent<->child reference cycles, and a module
   global cache that keeps 1% of the objects (``LeakedSession`` instances) alive through
   several hops;
2. on that one heap, times each step with ``time.perf_counter`` (median of 3 runs; guppy3 and
   Pympler once) and measures its extra peak RSS: the high-water mark (``VmHWM``) minus the
   RSS at the start of the step, with the mark reset between steps through
   ``/proc/self/clear_refs``. Where the kernel does not reset it, the memory-heavy steps are
   re-run once in a forked child for their peak, and the others report no peak;
3. prints a table per size and the ratios against heaplens' performance targets (PASS/FAIL),
   and writes everything to ``bench/results/<objects>.json``.

Automatic garbage collection is off during the steps (as in ``timeit``), so a collection
triggered by one tool's allocations is not charged to it. objgraph's ``growth()`` runs a
``gc.collect()`` first; heaplens' ``growth()`` does not by default: that cost is part of the
ratio, as it is of what a user waits for. Both count gc-tracked objects by default;
``heaplens.growth(gc_only=False)`` counts every object and is measured too.

guppy3 and Pympler take minutes on big heaps: they are skipped above 5M objects unless
``--slow-peers`` is given, and never run with ``--no-slow-peers``.
"""

import argparse
import ctypes
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import heaplens

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FAST_RUNS = 3
SLOW_PEERS_AUTO_LIMIT = 5_000_000
SEED = 20240611
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# The heap: a web app that keeps every session it ever saw.
# ---------------------------------------------------------------------------------------------


class User:
    def __init__(self, user_id, name, email, score, tags, prefs):
        self.user_id = user_id
        self.name = name
        self.email = email
        self.score = score
        self.tags = tags
        self.prefs = prefs


class Request:
    def __init__(self, method, path, headers, body, user, started, params):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.user = user
        self.started = started
        self.params = params


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y


class Node:
    """One half of a parent<->child pair: a reference cycle."""

    def __init__(self, label, parent=None):
        self.label = label
        self.parent = parent
        self.child = None


class LeakedSession:
    def __init__(self, token, user, created):
        self.token = token
        self.user = user
        self.created = created


class SessionStore:
    """The holder in the leak chain: _SESSION_CACHE -> list -> SessionStore -> dict -> session."""

    def __init__(self):
        self.by_token = {}


#: The leak: a module global that nobody ever prunes.
_SESSION_CACHE = {}
#: Everything else the "app" holds on to.
_APP = {}

AGENTS = ("Mozilla/5.0 (X11; Linux x86_64)", "curl/8.4.0", "python-requests/2.31")
TAGS = ("admin", "beta", "staff", "vip", "trial")
METHODS = ("GET", "GET", "GET", "POST", "PUT")

#: Objects one pass of build_heap's loop creates, measured with heaplens' full census on
#: CPython 3.11: used only to size the heap; the real count is measured and printed.
OBJECTS_PER_REQUEST = 27
#: One request in SESSION_EVERY leaks a LeakedSession (about 1% of all objects).
SESSION_EVERY = 4
#: Requests share users: one User per USER_EVERY requests.
USER_EVERY = 3


def build_heap(n_objects):
    """Fills `_APP` and `_SESSION_CACHE` with about `n_objects` objects; returns the number
    of LeakedSession instances made."""
    rng = random.Random(SEED)
    requests, users, records, pairs = [], [], [], []
    store = SessionStore()
    _SESSION_CACHE["sessions"] = [store]
    _APP.update(requests=requests, users=users, records=records, pairs=pairs)
    for i in range(max(1, n_objects // OBJECTS_PER_REQUEST)):
        if i % USER_EVERY == 0:
            users.append(_new_user(i, rng))
        user = users[-1]
        requests.append(_new_request(i, rng, user))
        records.append(_new_record(i, rng, user))
        parent = Node(f"node-{i}")
        parent.child = Node(f"node-{i}-child", parent)
        pairs.append(parent)
        if i % SESSION_EVERY == 0:
            token = f"sess-{rng.getrandbits(64):016x}"
            store.by_token[token] = LeakedSession(token, user, rng.random() * 1e9)
    return len(store.by_token)


def _new_user(i, rng):
    return User(
        user_id=10**12 + i,
        name=f"user-{i}",
        email=f"user-{i}@example.com",
        score=rng.random(),
        tags=[rng.choice(TAGS) for _ in range(rng.randint(1, 3))],
        prefs={
            "theme": "dark" if i % 2 else "light",
            "lang": "en",
            "page_size": 50,
            "timezone": "UTC",
            "newsletter": bool(i % 5),
        },
    )


def _new_request(i, rng, user):
    headers = {
        "Host": "shop.example.com",
        "User-Agent": AGENTS[i % len(AGENTS)],
        "X-Request-Id": f"{rng.getrandbits(64):016x}",
        "Content-Length": 10**6 + rng.randrange(10**6),
        "Accept": "application/json",
        "Accept-Encoding": "gzip, br",
        "Accept-Language": "en-US,en;q=0.9",
        "Connection": "keep-alive",
    }
    return Request(
        method=METHODS[i % len(METHODS)],
        path=f"/api/orders/{i}",
        headers=headers,
        body=b"{\"order\": %d}" % i,
        user=user,
        started=1.7e9 + i * 0.25,
        params=(f"page={i % 97}", 10**9 + i, rng.random()),
    )


def _new_record(i, rng, user):
    return {
        "id": 10**15 + i,
        "name": f"item-{i}",
        "price": round(rng.uniform(1, 500), 2),
        "tags": [rng.choice(TAGS), f"sku-{i}"],
        "in_stock": bool(i % 3),
        "location": Point(rng.random(), rng.random()),
        "currency": "EUR",
        "seller": user,
    }


# ---------------------------------------------------------------------------------------------
# Measuring time and extra peak RSS.
# ---------------------------------------------------------------------------------------------


def _status_bytes(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only


def _reset_peak():
    """Resets VmHWM to the current RSS; returns False if the kernel does not allow it.

    Free memory the C allocator holds is handed back to the OS first (glibc's malloc_trim), so
    a step's peak counts the pages it needs rather than depending on what earlier steps freed.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_resets():
    """Whether writing "5" to /proc/self/clear_refs resets VmHWM here: raise the mark with a
    freed 64 MiB block, reset, and check the mark came back down."""
    block = bytearray(64 * MIB)
    block[::4096] = b"\1" * len(block[::4096])
    del block
    if not _reset_peak():
        return False
    return _status_bytes("VmHWM") - _status_bytes("VmRSS") < 32 * MIB


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_in_fork(fn):
    """Extra peak RSS of `fn` run in a forked child: its VmHWM minus its starting VmRSS."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            start_rss = _status_bytes("VmRSS")
            fn()
            os.write(write_end, str(_status_bytes("VmHWM") - start_rss).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        reported = reader.read()
    os.waitpid(pid, 0)
    if not reported:
        raise RuntimeError("the forked child measuring peak RSS failed")
    return int(reported)


# ---------------------------------------------------------------------------------------------
# The steps.
# ---------------------------------------------------------------------------------------------

GC_COLLECT = "gc.collect()"
OBJGRAPH_TYPESTATS = "objgraph typestats()"
OBJGRAPH_GROWTH = "objgraph growth() [+gc.collect]"
CENSUS_GC_ONLY = "heaplens census(gc_only=True)"
CENSUS = "heaplens census()"
GROWTH = "heaplens growth()"
GROWTH_EVERY_OBJECT = "heaplens growth(gc_only=False)"
SNAPSHOT = "heaplens snapshot()"
ANALYSIS = "heaplens analyze() (dominators, paths)"
SAVE = "heaplens snapshot.save()"
LOAD = "heaplens load()"
LOOP = "heaplens loop: 2 snapshots + diff + path"
OBJGRAPH_LOOP = "objgraph loop: 2 growth + by_type + backref chain"


@dataclass
class Step:
    name: str
    fn: Callable[[], object]
    runs: int = FAST_RUNS
    prime: Callable[[], object] | None = None  # called once before the timed runs
    describe: Callable[[object], dict] | None = None  # facts about the result, for the report
    heavy: bool = False  # memory-heavy: measured in a fork when VmHWM cannot be reset
    requires: str | None = None  # the peer module it needs
    slow: bool = False  # a slow peer, subject to --slow-peers / --no-slow-peers


def _peer(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _describe_snapshot(snap):
    return {"objects": len(snap), "edges": snap.edge_count, "memory_size": snap.memory_size}


def steps():
    objgraph = _peer("objgraph")
    guppy = _peer("guppy")
    pympler_tracker = _peer("pympler.tracker")
    objgraph_peaks = {}
    return [
        Step(GC_COLLECT, gc.collect, prime=lambda: (gc.collect(), gc.collect())),
        Step("len(gc.get_objects())", lambda: len(gc.get_objects())),
        Step(OBJGRAPH_TYPESTATS, lambda: objgraph.typestats(), requires="objgraph"),
        Step(
            OBJGRAPH_GROWTH,
            lambda: objgraph.growth(peak_stats=objgraph_peaks),
            prime=lambda: objgraph.growth(peak_stats=objgraph_peaks),
            requires="objgraph",
        ),
        Step(CENSUS_GC_ONLY, lambda: heaplens.census(gc_only=True)),
        Step(CENSUS, heaplens.census),
        Step(GROWTH, heaplens.growth, prime=heaplens.growth),
        Step(
            GROWTH_EVERY_OBJECT,
            lambda: heaplens.growth(gc_only=False),
            prime=lambda: heaplens.growth(gc_only=False),
        ),
        Step(SNAPSHOT, heaplens.snapshot, describe=_describe_snapshot, heavy=True),
        Step(
            "guppy3 hpy().heap()",
            lambda: guppy.hpy().heap(),
            runs=1,
            heavy=True,
            requires="guppy",
            slow=True,
        ),
        Step(
            "pympler SummaryTracker().diff()",
            lambda: pympler_tracker.SummaryTracker().diff(),
            runs=1,
            heavy=True,
            requires="pympler.tracker",
            slow=True,
        ),
    ]


def measure(step, resettable):
    """Runs `step` (primed, then `step.runs` times); returns its row of the report."""
    if step.prime is not None:
        step.prime()
    seconds, peaks, result = [], [], None
    for _ in range(step.runs):
        result = None  # let the previous run's result go before the next run
        if resettable:
            _reset_peak()
            start_rss = _status_bytes("VmRSS")
        run_seconds, result = _timed(step.fn)
        seconds.append(run_seconds)
        if resettable:
            peaks.append(_status_bytes("VmHWM") - start_rss)
    details = step.describe(result) if step.describe is not None else None
    del result
    if not resettable and step.heavy:
        peaks.append(peak_in_fork(step.fn))
    return {
        "step": step.name,
        "status": "ok",
        "runs": step.runs,
        "seconds": statistics.median(seconds),
        "all_seconds": seconds,
        "extra_peak_bytes": statistics.median(peaks) if peaks else None,
        "details": details,
    }


def skipped(step, status):
    return {"step": step.name, "status": status, "runs": 0, "seconds": None,
            "all_seconds": [], "extra_peak_bytes": None, "details": None}


# ---------------------------------------------------------------------------------------------
# Targets.
# ---------------------------------------------------------------------------------------------


def ratios(rows, heap_facts):
    """The ratios heaplens is held to, as (name, value or None, comparison, target)."""
    by_step = {r["step"]: r for r in rows}

    def over(a, b):
        x = by_step.get(a, {}).get("seconds")
        y = by_step.get(b, {}).get("seconds")
        return x / y if x is not None and y else None

    snap_row = by_step[SNAPSHOT]
    objects = snap_row["details"]["objects"]
    peak = snap_row["extra_peak_bytes"]
    return [
        ("snapshot time / gc.collect time", over(SNAPSHOT, GC_COLLECT), "<=", 1.5),
        ("objgraph typestats / heaplens census(gc_only=True)",
         over(OBJGRAPH_TYPESTATS, CENSUS_GC_ONLY), ">=", 4),
        ("heaplens census() / objgraph typestats", over(CENSUS, OBJGRAPH_TYPESTATS), "<=", 2),
        ("objgraph growth / heaplens growth()", over(OBJGRAPH_GROWTH, GROWTH), ">=", 4),
        ("objgraph growth / heaplens growth(gc_only=False)",
         over(OBJGRAPH_GROWTH, GROWTH_EVERY_OBJECT), None, None),
        ("snapshot extra peak bytes / object",
         None if peak is None else peak / objects, "<=", 60),
        ("snapshot kept bytes / object",
         snap_row["details"]["memory_size"] / objects, "<=", 40),
        ("analyze() time / gc.collect time", over(ANALYSIS, GC_COLLECT), "<=", 1),
        ("path query, ms", 1000 * by_step["path query (paths_to, after analysis)"]["seconds"],
         "<=", 50),
        ("retained size query, ms",
         1000 * by_step["retained size query (after analysis)"]["seconds"], "<=", 50),
        ("RSS left once snapshots and analyses are dropped, bytes / object",
         heap_facts["analysis"]["rss_left_bytes_per_object"], None, None),
        ("snapshot file bytes / (object + edge)",
         heap_facts["analysis"]["file_bytes_per_unit"], "<=", 10),
        ("save time, s", by_step[SAVE]["seconds"], "<=", 2),
        ("load time, s", by_step[LOAD]["seconds"], "<=", 2),
        ("objgraph loop / heaplens loop", over(OBJGRAPH_LOOP, LOOP), ">=", 10),
    ]


def verdict(value, op, target):
    if value is None:
        return "n/a"
    if target is None:
        return "(no target)"
    ok = value <= target if op == "<=" else value >= target
    return "PASS" if ok else "FAIL"


# ---------------------------------------------------------------------------------------------
# Reporting.
# ---------------------------------------------------------------------------------------------


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_facts():
    with open("/proc/meminfo") as f:
        mem_total_kib = int(f.readline().split()[1])
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_total_gib": round(mem_total_kib / MIB, 1),
        "heaplens": heaplens.__version__,
        "objgraph": _version("objgraph"),
        "guppy3": _version("guppy3"),
        "pympler": _version("Pympler"),
    }


def _fmt(value, width, decimals):
    text = "-" if value is None else f"{value:.{decimals}f}"
    return f"{text:>{width}}"


def print_report(result):
    heap = result["heap"]
    snap = next(r["details"] for r in result["steps"] if r["step"] == SNAPSHOT)
    print(f"== {heap['requested']:,} objects requested ==")
    print(f"  len(gc.get_objects())    {heap['gc_objects']:>12,}")
    print(f"  heaplens census() total  {heap['census_objects']:>12,}"
          f"   ({heap['census_bytes'] / MIB:,.0f} MiB shallow)")
    print(f"  LeakedSession            {heap['leaked_sessions']:>12,}"
          f"   (heaplens counts {heap['leaked_sessions_seen']:,})")
    print(f"  snapshot objects         {snap['objects']:>12,}"
          f"   edges {snap['edges']:,} ({snap['edges'] / snap['objects']:.2f} per object)")
    print(f"  heap built in {heap['build_seconds']:.2f} s; baseline RSS "
          f"{heap['rss_bytes'] / MIB:,.0f} MiB; peak RSS "
          f"{'reset per step' if result['peak_resets'] else 'measured in forks'}")
    print()
    print(f"  {'step':<36} {'time (s)':>9} {'peak +MiB':>10}  runs")
    for row in result["steps"]:
        if row["status"] != "ok":
            print(f"  {row['step']:<36} {row['status']}")
            continue
        peak = row["extra_peak_bytes"]
        print(f"  {row['step']:<36} {row['seconds']:>9.3f} "
              f"{_fmt(None if peak is None else peak / MIB, 10, 1)}  {row['runs']}")
    print("  (objgraph growth() includes its gc.collect(); heaplens growth() collects nothing)")
    print()
    print(f"  {'ratio':<52} {'value':>8}  target")
    for r in result["ratios"]:
        target = "" if r["target"] is None else f"{r['op']} {r['target']:<4} "
        print(f"  {r['name']:<52} {_fmt(r['value'], 8, 2)}  {target}{r['verdict']}")
    print()


LEAK_MORE = 1000  # sessions leaked between the two snapshots of the "what grew and why" loop


def leak_more(n=LEAK_MORE, seed=None):
    """The app keeps leaking: `n` more sessions into the same store (with another `seed`, other
    sessions: the same seed makes the same tokens, which replace the sessions of the last call)."""
    rng = random.Random(n if seed is None else seed)
    store = _SESSION_CACHE["sessions"][0]
    user = _APP["users"][-1]
    for _ in range(n):
        token = f"sess-{rng.getrandbits(64):016x}"
        store.by_token[token] = LeakedSession(token, user, rng.random() * 1e9)


def analysis_rows(tmpdir):
    """The analysis targets: analysis time, query latency, the snapshot file, and the full
    "what grew and why" loop of heaplens against objgraph's."""
    rows = {}
    some_session = next(iter(_SESSION_CACHE["sessions"][0].by_token.values()))

    # What the resident set keeps once the snapshots, their analyses and the loaded copy are
    # dropped: memory heaplens freed that the allocator held on to is no one's growth.
    gc.collect()
    rss_before = _status_bytes("VmRSS")
    times = []
    for _ in range(FAST_RUNS):
        snap = heaplens.snapshot()
        seconds, _ = _timed(snap.analyze)
        times.append(seconds)
    rows[ANALYSIS] = statistics.median(times)
    rows["path query (paths_to, after analysis)"] = statistics.median(
        _timed(lambda: snap.paths_to(some_session))[0] for _ in range(20)
    )
    rows["retained size query (after analysis)"] = statistics.median(
        _timed(lambda: snap.retained_size(some_session))[0] for _ in range(20)
    )
    path = Path(tmpdir) / "bench.hlsnap"
    rows[SAVE], _ = _timed(lambda: snap.save(path))
    file_bytes = path.stat().st_size
    rows[LOAD], loaded = _timed(lambda: heaplens.load(path))
    units = len(snap) + snap.edge_count
    assert len(loaded) == len(snap)
    objects = len(snap)
    del loaded, snap
    path.unlink()
    gc.collect()
    left_bytes = _status_bytes("VmRSS") - rss_before

    # heaplens: two snapshots, the diff, the path of the top suspect.
    gc.collect()
    t_before, before = _timed(heaplens.snapshot)
    leak_more()
    t_after, after = _timed(heaplens.snapshot)

    def explain():
        diff = after.diff(before)
        return str(diff.suspects[0].holder_path), diff.suspects[0].entry_type

    t_explain, (holder, entry) = _timed(explain)
    rows[LOOP] = t_before + t_after + t_explain
    loop_found = {"entry_type": entry, "holder": holder}
    del before, after

    objgraph = _peer("objgraph")
    if objgraph is not None:
        peaks = {}
        t_g1, _ = _timed(lambda: objgraph.growth(peak_stats=peaks))
        leak_more()
        t_g2, _ = _timed(lambda: objgraph.growth(peak_stats=peaks))
        t_by, sessions = _timed(lambda: objgraph.by_type("LeakedSession"))
        target = sessions[-1]
        del sessions
        t_chain, chain = _timed(lambda: objgraph.find_backref_chain(target, objgraph.is_proper_module))
        rows[OBJGRAPH_LOOP] = t_g1 + t_g2 + t_by + t_chain
        loop_found["objgraph_chain_length"] = len(chain)
        del chain, target
    return rows, {"file_bytes": file_bytes, "file_bytes_per_unit": file_bytes / units,
                  "rss_left_bytes_per_object": left_bytes / objects, "loop": loop_found}


def child(n_objects, slow_peers):
    """Builds the heap, measures every step, prints the report and writes the JSON."""
    gc.disable()
    build_start = time.perf_counter()
    leaked = build_heap(n_objects)
    build_seconds = time.perf_counter() - build_start
    gc.collect()
    gc.collect()
    census = heaplens.census()
    heap = {
        "requested": n_objects,
        "gc_objects": len(gc.get_objects()),
        "census_objects": census.total_count,
        "census_bytes": census.total_size,
        "leaked_sessions": leaked,
        "leaked_sessions_seen": census.count("LeakedSession"),
        "build_seconds": build_seconds,
        "rss_bytes": _status_bytes("VmRSS"),
    }
    del census
    resettable = peak_resets()

    rows = []
    for step in steps():
        if step.slow and not slow_peers:
            rows.append(skipped(step, "skipped (slow peer; --slow-peers runs it)"))
        elif step.requires and _peer(step.requires) is None:
            rows.append(skipped(step, "not installed"))
        else:
            rows.append(measure(step, resettable))
    import tempfile

    with tempfile.TemporaryDirectory() as tmpdir:
        analysis_seconds, analysis_facts = analysis_rows(tmpdir)
    for name, seconds in analysis_seconds.items():
        rows.append({"step": name, "status": "ok", "runs": 1, "seconds": seconds,
                     "all_seconds": [seconds], "extra_peak_bytes": None, "details": None})
    heap["analysis"] = analysis_facts
    result = {
        "machine": machine_facts(),
        "peak_resets": resettable,
        "heap": heap,
        "steps": rows,
        "ratios": [
            {"name": name, "value": value, "op": op, "target": target,
             "verdict": verdict(value, op, target)}
            for name, value, op, target in ratios(rows, heap)
        ],
    }
    print_report(result)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{n_objects}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  results: {path}")
    sys.stdout.flush()


def parent(sizes, slow_peers_flag):
    facts = machine_facts()
    print("heaplens peer benchmark")
    for key, value in facts.items():
        print(f"  {key:<18} {value}")
    print()
    failed = []
    for n in sizes:
        slow = n <= SLOW_PEERS_AUTO_LIMIT if slow_peers_flag is None else slow_peers_flag
        cmd = [sys.executable, __file__, "--child", "--objects", str(n)]
        cmd.append("--slow-peers" if slow else "--no-slow-peers")
        sys.stdout.flush()
        if subprocess.run(cmd).returncode != 0:
            failed.append(n)
    if failed:
        sys.exit(f"benchmark failed for: {', '.join(f'{n:,}' for n in failed)} objects")


def _count(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value < 1 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"not a positive whole number of objects: {text!r}")
    return int(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=_count, nargs="+", default=[1_000_000],
                        metavar="N", help="heap sizes, e.g. 1e6 5e6 (default 1e6)")
    slow = parser.add_mutually_exclusive_group()
    slow.add_argument("--slow-peers", dest="slow_peers", action="store_true", default=None,
                      help="run guppy3 and Pympler at every size")
    slow.add_argument("--no-slow-peers", dest="slow_peers", action="store_false",
                      help="never run guppy3 and Pympler")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        (n,) = args.objects
        child(n, bool(args.slow_peers))
    else:
        parent(args.objects, args.slow_peers)


if __name__ == "__main__":
    main()
