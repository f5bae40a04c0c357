"""The heap walk on several threads (``HEAPLENS_THREADS``, by default every core): the same
snapshot as the walk on one thread, object for object, reference for reference."""

import logging
import os
import subprocess
import sys
import textwrap

import pytest

import heaplens

from test_forked_snapshot import describe

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="switches the setting with libc's setenv"
)

# A heap of more than 200,000 tracked objects (below that the walk stays on one thread) with
# everything the parts of a split walk must agree on: objects several threads meet (an interned
# name, a shared tuple, small ints), objects only their C type's tp_traverse reports the
# references of (functools.partial, itertools.count: left to the thread that holds the GIL),
# an object held from outside the heap, declared bounds (a deque's maxlen, an lru_cache, a
# cache naming its maxsize), cyclic garbage and a second thread. The thread count is switched
# outside the Python heap (libc's setenv), so that each snapshot is taken by the same code with
# the same objects.
SAME_HEAP = textwrap.dedent(
    """
    import collections, ctypes, functools, gc, itertools, sys, threading
    import heaplens

    gc.disable()
    libc = ctypes.CDLL(None)

    class Order:
        pass

    class Cache:
        def __init__(self):
            self.maxsize = 100
            self.entries = {}

    SHARED = ("shared", 1, 2.5)
    STATUS = sys.intern("status-shipped")
    ORDERS = {}
    for i in range(55_000):          # four tracked objects each, always tracked
        order = Order()
        order.id = i                 # an untracked int the dict's key, too, refers to
        order.status = STATUS
        order.lines = [SHARED, str(i), i % 7]
        order.tags = {STATUS, i % 7}
        order.history = []
        ORDERS[i] = order
    CALLS = [functools.partial(print, ORDERS[i], SHARED) for i in range(0, 55_000, 50)]
    COUNTERS = [itertools.count(i) for i in range(200)]
    HELD = Order()
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(HELD))  # a reference from outside the heap
    LAST = collections.deque(range(50), maxlen=5)
    CACHE = Cache()
    CACHE.entries.update((i, str(i)) for i in range(60))

    @functools.lru_cache(maxsize=32)
    def lookup(x):
        return [x]

    for i in range(40):
        lookup(i)
    garbage = []
    garbage.append(garbage)          # cyclic garbage the collector (off) has not freed
    del garbage, order, i
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="waiter")
    worker.start()                   # a second thread's stack

    def threads(n):
        libc.setenv(b"HEAPLENS_THREADS", str(n).encode(), 1)

    D = sys.argv[1]
    for warm_up in range(1):
        for n in (1, 2, 4):
            threads(n); heaplens.snapshot(fork=False).save(D + "/warm.hlsnap")
    del warm_up
    threads(1); heaplens.snapshot(fork=False).save(D + "/1.hlsnap")
    threads(2); heaplens.snapshot(fork=False).save(D + "/2.hlsnap")
    threads(4); heaplens.snapshot(fork=False).save(D + "/4.hlsnap")
    # The same heap is walked on several threads (logging only now: its records and caches
    # are objects of the program, which must be the same in the three snapshots).
    import logging
    logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    for n in (1, 2, 4):
        threads(n); heaplens.snapshot(fork=False)
    stop.set()
    worker.join()
    """
)


def test_a_walk_on_several_threads_is_the_walk_on_one(tmp_path):
    program = tmp_path / "same_heap.py"
    program.write_text(SAME_HEAP)
    # The assembly of a split walk moves the pages of the parts it has copied into the graph's
    # arrays where no thread has written yet: into arrays mapped apart (by the extension's
    # allocator from 128 KiB, by glibc from 64 KiB with this setting), below 64 MiB of arrays
    # only with the first setting.
    env = dict(os.environ, HEAPLENS_RECYCLE_LEAST_BYTES="0", MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(
        [sys.executable, str(program), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("heaplens.capture: ")]
    walked = [line.rsplit(" walked on ", 1)[-1] for line in said if " walked on " in line]
    assert walked == ["1 thread", "2 threads", "4 threads"], said
    moved = [float(line.rsplit("; ", 1)[1].split()[0]) for line in said if "pages moved" in line]
    assert len(moved) == 2 and all(mb > 1 for mb in moved), said
    one = describe(heaplens.load(tmp_path / "1.hlsnap"))
    assert sum(n for name, n, _ in one["census"] if name.endswith(".Order")) == 55_001
    assert any(name == "functools.partial" and n >= 1100 for name, n, _ in one["census"])
    assert one["unreachable"]
    assert len(one["threads"]) == 2
    assert any(label == "<external>" for label, _ in one["roots"])
    # The root's references are the same, in another order (the walk on several threads adds
    # the objects held from outside part by part).
    one["roots"].sort()
    for n in (2, 4):
        split = describe(heaplens.load(tmp_path / f"{n}.hlsnap"))
        split["roots"].sort()
        for key in one:
            assert split[key] == one[key], (n, key)


def test_a_big_heap_is_walked_on_several_threads(monkeypatch, caplog):
    heap = [[i] for i in range(250_000)]  # tracked lists, enough for a split walk
    said = {}
    for n in ("1", "2"):
        monkeypatch.setenv("HEAPLENS_THREADS", n)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="heaplens.capture"):
            snap = heaplens.snapshot(fork=False)
        said[n] = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
        assert snap[id(heap)].referents[0][1].referents[0][1].address == id(heap[0][0])
    assert any(m.endswith("walked on 1 thread") for m in said["1"]), said["1"]
    assert any(m.endswith("walked on 2 threads") for m in said["2"]), said["2"]
    # Where the split walk's time went, phase by phase (what bench/README reads it from).
    phases = [m for m in said["2"] if m.startswith("split walk on 2 threads: ")]
    assert len(phases) == 1, said["2"]
    assert phases[0].endswith("; 0.0 MB of pages moved into the graph"), phases  # a small graph
    assert [p.split(" ")[0] for p in phases[0].split(": ", 1)[1].split(", ")][:3] == [
        "stash", "parts", "ranges"
    ], phases
    assert not any(m.startswith("split walk") for m in said["1"]), said["1"]
    del heap


def test_objects_past_the_shared_table_are_numbered_once(monkeypatch, caplog):
    # Untracked objects with more than one reference go through a table the threads share,
    # sized for a quarter of the tracked objects; 400,000 str each held by a list and a dict
    # overflow it, and the thread that holds the GIL numbers the rest after the others.
    keys = [f"key-{i}" for i in range(400_000)]
    held = dict.fromkeys(keys)
    lists = [[] for _ in range(250_000)]
    taken = {}
    for n in ("1", "2"):
        monkeypatch.setenv("HEAPLENS_THREADS", n)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="heaplens.capture"):
            taken[n] = heaplens.snapshot(fork=False)
        said = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
        threads = "1 thread" if n == "1" else "2 threads"
        assert any(m.endswith(f"walked on {threads}") for m in said), said
    one, two = taken["1"], taken["2"]
    for i in range(0, 400_000, 997):
        a, b = one[id(keys[i])], two[id(keys[i])]
        assert sorted(label for label, _ in b.referrers) == [f"<key 'key-{i}'>", f"[{i}]"]
        assert sorted((l, o.address) for l, o in a.referrers) == sorted(
            (l, o.address) for l, o in b.referrers
        )
        assert (a.type, a.size, sorted(a.flags)) == (b.type, b.size, sorted(b.flags))
    del keys, held, lists
