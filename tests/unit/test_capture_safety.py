"""A capture changes nothing in the program it observes, and survives exotic objects."""

import array
import asyncio
import collections
import ctypes
import gc
import io
import re
import subprocess
import sys
import threading
import types
import weakref

import heaplens
import heaplens.objgraph


class Sample:
    def __init__(self):
        self.a = 1
        self.b = "two"


def blocks_left_by(action, times):
    """Python memory blocks still allocated after running ``action`` ``times`` times."""
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(times):
        action()
    gc.collect()
    return sys.getallocatedblocks() - before


def capture_everything():
    snap = heaplens.snapshot()
    census = heaplens.census()
    gc_census = heaplens.census(gc_only=True)
    del snap, census, gc_census


def test_a_capture_leaves_no_python_allocation_behind():
    samples = [Sample() for _ in range(100)]
    capture_everything()  # warm one-time caches (type objects, interned names, loggers)
    few = blocks_left_by(capture_everything, 2)
    many = blocks_left_by(capture_everything, 20)
    # Interpreter free lists may keep a block or two either way; a capture that left anything
    # of its own behind would leave ten times as much after ten times as many captures.
    assert many <= few + 2
    assert few < 10
    del samples


def test_the_heap_is_unchanged_by_a_capture():
    samples = [Sample() for _ in range(100)]
    others = [["list"], {"k": "v"}, "a str", 10**30, Sample]
    capture_everything()
    gc.collect()
    refcounts = [sys.getrefcount(o) for o in samples + others]
    objects = len(gc.get_objects())
    for _ in range(3):
        capture_everything()
    assert len(gc.get_objects()) == objects
    assert [sys.getrefcount(o) for o in samples + others] == refcounts


def test_no_instance_dict_is_created():
    samples = [Sample() for _ in range(500)]
    capture_everything()
    # A materialised __dict__ would be a new allocation per instance.
    assert blocks_left_by(capture_everything, 3) < 10
    snap = heaplens.snapshot()
    assert snap[id(samples[0])].labels_to(samples[0].b) == [".b"]


def test_gc_lists_are_intact_after_a_capture():
    heaplens.snapshot()
    # A full collection walks every list link; corrupted links would crash or lose objects.
    before = len(gc.get_objects())
    gc.collect()
    assert len(gc.get_objects()) <= before

    def make_cycles(n):
        for _ in range(n):
            a, b = [], []
            a.append(b)
            b.append(a)

    gc.disable()
    try:
        make_cycles(1000)
        assert gc.collect() >= 2000
    finally:
        gc.enable()


# Every link of the collector's lists is put back as it was, by the walk on one thread and by
# the walk on several (which a heap of more than 200,000 tracked objects gets), with lists of
# an odd and of an even length (the walk numbers each list from both ends at once): the order
# `gc.get_objects()` follows (`_gc_next`), and the back links, which an object freed after the
# capture is unlinked through (`_gc_prev`; a wrong one would cut objects out of the list); also
# with every object in the permanent generation of `gc.freeze()`.
# In a process of its own: no other thread may touch the oldest generation meanwhile.
LINKS_PUT_BACK = """
import ctypes, gc, sys
import heaplens

gc.disable()
libc = ctypes.CDLL(None)
lists = [[] for _ in range(260_000)]
spare = []

def oldest():
    return [id(o) for o in gc.get_objects(generation=2)]

def check(parity):
    # The objects made here are gone before the next check's collection.
    gc.collect()
    while len(gc.get_objects(generation=2)) % 2 != parity:
        spare.append([])
        gc.collect()
    before = oldest()
    heaplens.snapshot(fork=False)
    assert oldest() == before, "the forward links changed"
    freed = {id(o) for o in lists[parity::97]}
    del lists[parity::97]
    assert oldest() == [i for i in before if i not in freed], "a back link is wrong"

def check_frozen():
    # gc.freeze() moves every object to the permanent generation, a list of its own, and
    # gc.unfreeze() appends it back to the oldest generation as it stands.
    gc.collect()
    before = oldest()
    gc.freeze()
    heaplens.snapshot(fork=False)
    gc.unfreeze()
    kept = set(before)
    assert [i for i in oldest() if i in kept] == before, "the frozen list changed"
    freed = {id(o) for o in lists[::89]}
    del lists[::89]
    assert [i for i in oldest() if i in kept] == [i for i in before if i not in freed]

for threads in (b"1", b"2"):
    libc.setenv(b"HEAPLENS_THREADS", threads, 1)
    for parity in (0, 1):
        check(parity)
    check_frozen()
print("ok")
"""


def test_every_list_link_is_put_back():
    done = subprocess.run(
        [sys.executable, "-c", LINKS_PUT_BACK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def exotic_objects():
    async def coro():
        return 1

    async def agen():
        yield 1

    def gen():
        yield 1

    class WeakSlots:
        __slots__ = ("x", "__weakref__")

    ws = WeakSlots()
    ws.x = 1
    target = Sample()
    wvd = weakref.WeakValueDictionary({"t": target})
    wkd = weakref.WeakKeyDictionary({target: 1})
    try:
        raise KeyError("x")
    except KeyError as e:
        exc = e
    c = coro()
    ag = agen()
    objs = [
        array.array("i", [1, 2, 3]),
        collections.deque([1, 2, 3], maxlen=5),
        collections.OrderedDict(a=1),
        collections.defaultdict(int, a=1),
        collections.Counter("abracadabra"),
        collections.ChainMap({}, {"a": 1}),
        memoryview(b"bytes"),
        weakref.ref(target),
        weakref.proxy(target),
        wvd,
        wkd,
        weakref.WeakSet([target]),
        gen(),
        c,
        ag,
        sys._getframe(),
        exc,
        exc.__traceback__,
        gen.__code__,
        target.__init__,
        property(lambda self: 1),
        ws,
        types.SimpleNamespace(a=1),
        types.MappingProxyType({"a": 1}),
        re.compile(r"(\w+) (\d+)"),
        io.StringIO("text"),
        io.BytesIO(b"bytes"),
        threading.Lock(),
        threading.Event(),
        iter([1, 2]),
        iter({1: 2}.items()),
        map(str, [1]),
        zip([1], [2]),
        enumerate([1]),
        range(5),
        slice(1, 2, 3),
        ctypes.c_int(5),
        complex(1, 2),
        NotImplemented,
        Ellipsis,
        sys.modules,
        sys.flags,
        type("Dynamic", (dict,), {"__slots__": ("z",)})(),
        asyncio.new_event_loop(),
    ]
    return objs, target, (c, ag)


def test_exotic_objects_are_captured_without_a_crash():
    objs, target, (c, ag) = exotic_objects()
    loop = objs[-1]
    try:
        snap = heaplens.snapshot()
        census = heaplens.census()
        assert census.total_count > 1000
        for o in objs:
            node = snap[id(o)]
            assert node.type.rsplit(".", 1)[-1] == type(o).__name__ or node.type == type(o).__name__
        assert snap[id(objs[7])].labels_to(target) == ["<weakref>"]
        assert heaplens.count("WeakValueDictionary") >= 1
    finally:
        loop.close()
        c.close()
        asyncio.run(ag.aclose())


def test_a_capture_from_a_finalizer_during_collection_is_refused():
    errors = []

    class Finalized:
        def __del__(self):
            try:
                heaplens.census()
            except heaplens.CaptureError as e:
                errors.append(str(e))

    a = Finalized()
    a.self = a
    del a
    gc.collect()
    assert errors and "garbage collection is running" in errors[0]


def test_a_million_object_heap_is_captured_exactly():
    class Row:
        __slots__ = ("key", "value")

    rows = []
    for i in range(200_000):
        r = Row()
        r.key = f"k{i}"
        r.value = [i * 1.5, 10**20 + i]
        rows.append(r)
    snap = heaplens.snapshot()
    census = snap.census()
    assert census.count("Row") == 200_000
    assert census.count("float") >= 200_000
    assert len(snap) > 1_000_000
    some = rows[123_456]
    assert snap[id(some)].labels_to(some.value) == [".value"]
    assert snap[id(some.value)].labels_to(some.value[1]) == ["[1]"]


def test_free_list_entries_are_not_objects():
    # A dropped future iterator goes on asyncio's free list, which 3.12's `_asyncio` module
    # reports to traversal. It is dead (reference count 0): no capture may count it or hand it
    # out, or the next collection would find the free list turned into a cycle and never end.
    loop = asyncio.new_event_loop()
    try:
        futures = [loop.create_future() for _ in range(5)]
        iterators = [f.__await__() for f in futures]
        kind = type(iterators[0]).__name__
        del iterators
        assert heaplens.census().count(kind) == 0
        assert heaplens.by_type(kind) == []
        assert heaplens.snapshot().census().count(kind) == 0
        # objgraph's forward search reads references as gc.get_referents does.
        module = sys.modules[type(futures[0]).__module__]
        assert heaplens.objgraph.find_ref_chain(module, lambda o: type(o).__name__ == kind) == [
            module
        ]
        gc.collect()
        iterators = [f.__await__() for f in futures]
        assert len({id(i) for i in iterators}) == 5
        del iterators
        gc.collect()
    finally:
        loop.close()
