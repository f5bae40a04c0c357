"""Why is it alive: retaining paths, retained sizes, top retainers, the report, diff."""

import gc
import sys
import threading

import pytest

import heaplens

from conftest import gc_disabled


class Order:
    def __init__(self, n):
        self.n = n
        self.lines = [f"line {n}-{i}" for i in range(3)]


CACHE = {"k": [Order(0), Order(1), Order(2), Order(3)]}


def test_paths_to_reads_like_the_code_that_holds_the_object():
    snap = heaplens.snapshot()
    (path,) = snap.paths_to(CACHE["k"][3])
    assert str(path) == (
        f"module {__name__} -> .__dict__['CACHE'] -> dict['k'] -> list[3] -> {__name__}.Order"
    )
    assert path.root == f"sys.modules[{__name__!r}]"
    assert path.labels == [".__dict__", "['CACHE']", "['k']", "[3]"]
    assert [o.type for o in path.objects][-1] == f"{__name__}.Order"
    assert len(path) == 5
    assert snap.path_to(CACHE["k"][3]) == path or str(snap.path_to(CACHE["k"][3])) == str(path)


def test_several_distinct_paths_shortest_first():
    extra_holder = [CACHE["k"][0]]
    snap = heaplens.snapshot()
    paths = [str(p) for p in snap.paths_to(CACHE["k"][0], k=5)]
    assert len(paths) == len(set(paths)) >= 2
    assert any("local 'extra_holder'" in p for p in paths), paths
    assert any("['CACHE']" in p for p in paths), paths
    lengths = [len(p) for p in snap.paths_to(CACHE["k"][0], k=5)]
    assert lengths == sorted(lengths)
    del extra_holder


def test_retained_size_counts_everything_only_that_object_keeps_alive():
    import sys

    order = Order(99)
    expected = sys.getsizeof(order) + sys.getsizeof(order.lines) + sum(map(sys.getsizeof, order.lines))
    snap = heaplens.snapshot()
    assert snap.retained_size(order) == expected
    assert snap.object(order).retained_size == expected
    shared = [order.lines, order.lines]
    snap = heaplens.snapshot()
    assert snap.retained_size(order) == sys.getsizeof(order), "the lines are shared now"
    del shared


def test_top_retainers_find_the_big_cache_and_skip_modules():
    big = {i: [b"x" * 5000] for i in range(2000)}
    snap = heaplens.snapshot()
    sizes = {o.address: size for o, size in snap.top_retainers(5)}
    assert sizes[id(big)] > 2000 * 5000
    assert list(sizes.values()) == sorted(sizes.values(), reverse=True)
    assert all("module" not in o.flags for o, _ in snap.top_retainers(20))
    report = snap.report()
    assert "Biggest retainers" in report and "local 'big'" in report
    del big


def test_the_path_of_an_object_held_by_another_thread():
    started, release = threading.Event(), threading.Event()
    holder = {}

    def work():
        items = [Order(7)]
        holder["id"] = id(items[0])
        started.set()
        release.wait()

    t = threading.Thread(target=work, name="worker-7")
    t.start()
    try:
        assert started.wait(10)
        snap = heaplens.snapshot()
        path = str(snap[holder["id"]].path)
        assert path.startswith("thread 'worker-7' -> frame ")
        assert path.endswith(f"local 'items' -> list[0] -> {__name__}.Order"), path
    finally:
        release.set()
        t.join()


def test_garbage_paths_say_the_object_is_unreachable():
    with gc_disabled():
        a = [Order(1)]
        a.append(a)
        address = id(a[0])
        del a
        snap = heaplens.snapshot()
        assert "(unreachable garbage)" in str(snap[address].path)
        assert "Unreachable:" in snap.report()
        gc.collect()


def test_diff_names_the_leak_and_the_cache():
    before = heaplens.snapshot()
    CACHE["leaked"] = [Order(i) for i in range(200)]
    after = heaplens.snapshot()
    try:
        diff = after.diff(before)
        assert diff
        top = diff.suspects[0]
        assert top.entry_type == f"{__name__}.Order" and top.entries == 200
        assert top.kind == "object"
        assert str(top.holder_path) == f"module {__name__} -> .__dict__['CACHE'] -> dict['leaked'] -> list"
        assert top.sample.type == f"{__name__}.Order" and top.sample_label.startswith("[")
        assert top.objects >= 200 * 5
        assert any(name == f"{__name__}.Order" and delta == 200 for name, _, delta, _ in diff.types)
        text = str(diff)
        assert f"{__name__}.Order x200" in text and "held by: module" in text
        assert not after.diff(after), "a snapshot does not differ from itself"
    finally:
        del CACHE["leaked"]


class Service:
    def __init__(self):
        self.cache = {}


SERVICE = Service()


def make_orders(n):
    return [Order(i) for i in range(n)]  # where the orders are allocated


def test_suspects_say_where_their_objects_were_allocated_while_tracemalloc_traces(tmp_path):
    """While tracemalloc traces, a snapshot records where every object was allocated, in its
    file too: compared later, loaded from files, with the objects gone and tracemalloc
    stopped, the suspect still says which line made its objects."""
    import tracemalloc

    line = make_orders.__code__.co_firstlineno + 1
    for tracing in (True, False):
        gc.collect()
        if tracing:
            tracemalloc.start(5)
        try:
            before = heaplens.snapshot()
            CACHE["traced"] = make_orders(200)
            after = heaplens.snapshot()
            diff = after.diff(before)
            before.save(tmp_path / "before.hlsnap")
            after.save(tmp_path / "after.hlsnap")
        finally:
            tracemalloc.stop()
            del CACHE["traced"]
        offline = heaplens.load(tmp_path / "after.hlsnap").diff(
            heaplens.load(tmp_path / "before.hlsnap")
        )
        assert offline.suspects[0].allocated_at == diff.suspects[0].allocated_at
        top = diff.suspects[0]
        assert top.entry_type == f"{__name__}.Order", str(diff)
        if tracing:
            site = f"{__file__}:{line}: return [Order(i) for i in range(n)]  # where the orders are allocated"
            assert site in top.allocated_at[-2:], top.allocated_at
            assert "     allocated at (most recent call last):" in str(diff)
            assert site in str(diff)
        else:
            assert top.allocated_at == [] and "allocated at" not in str(diff)


def test_diff_leaves_out_what_the_user_declares_no_leak():
    """`ignore` names a place (a module global, an instance attribute) or a type (a name with
    `*`, or the class itself): the suspects it names are left out and counted, the others are
    reported as before."""
    gc.collect()
    before = heaplens.snapshot()
    CACHE["declared"] = {i: Order(i) for i in range(200)}
    for i in range(200):
        SERVICE.cache[i] = Order(i)
    after = heaplens.snapshot()
    try:
        held = lambda diff: sorted(str(s.holder_path) for s in diff.suspects)
        everything = after.diff(before)
        in_cache = f"module {__name__} -> .__dict__['CACHE'] -> dict['declared'] -> dict"
        in_service = f"module {__name__} -> .__dict__['SERVICE'] -> {__name__}.Service.cache -> dict"
        assert held(everything) == sorted([in_cache, in_service]) and everything.ignored == 0
        diff = after.diff(before, ignore=[f"{__name__}.CACHE"])
        assert held(diff) == [in_service] and diff.ignored == 1
        assert "(1 suspect ignored, as asked)" in str(diff)
        assert held(after.diff(before, ignore=[f"{__name__}.Service.cache"])) == [in_cache]
        for by_type in ([f"{__name__}.Ord*"], [Order], f"*.Order"):
            diff = after.diff(before, ignore=by_type if not isinstance(by_type, str) else [by_type])
            assert held(diff) == [] and diff.ignored == 2, by_type
            assert f"{__name__}.Order" not in [name for name, *_ in diff.types]
        # A pattern must name a whole name.
        assert len(after.diff(before, ignore=[f"{__name__}.CACH"]).suspects) == 2
        with pytest.raises(TypeError, match="ignore takes type or place names"):
            after.diff(before, ignore=[42])
    finally:
        del CACHE["declared"]
        SERVICE.cache.clear()


def test_analysis_arguments_are_checked():
    snap = heaplens.snapshot()
    with pytest.raises(KeyError):
        snap.paths_to(object())  # created after the snapshot
    with pytest.raises(TypeError):
        snap.diff("not a snapshot")
    assert snap.paths_to(CACHE, k=0) == []


class Row:
    def __init__(self, i):
        self.i = i


def test_work_in_flight_is_not_a_leak_but_a_loop_that_keeps_its_results_is():
    """A request still running when the later snapshot is taken holds what it made in a new
    local list: freed when it returns, so it is said apart, not a suspect. A long-running loop
    appending to a list it had before is one."""
    import threading

    started, finish = threading.Event(), threading.Event()
    kept, more = [], threading.Event()

    def handle_request():
        rows = [Row(i) for i in range(300)]  # the request's own work
        started.set()
        finish.wait()
        return len(rows)

    def audit_loop():
        while not finish.is_set():
            if more.wait(0.01):
                more.clear()
                kept.extend(Row(i) for i in range(200))
                started.set()

    auditor = threading.Thread(target=audit_loop, name="auditor")
    auditor.start()
    gc.collect()
    before = heaplens.snapshot()
    request = threading.Thread(target=handle_request, name="worker-1")
    request.start()
    started.wait()
    started.clear()
    more.set()
    started.wait()
    after = heaplens.snapshot()
    finish.set()
    request.join()
    auditor.join()
    diff = after.diff(before)
    suspects = [(s.entry_type, s.entries) for s in diff.suspects]
    assert (f"{__name__}.Row", 200) in suspects, str(diff)
    assert (f"{__name__}.Row", 300) not in suspects, str(diff)
    assert (f"{__name__}.Row", 300) in [(s.entry_type, s.entries) for s in diff.in_flight]
    assert "Not counted: new objects held by code that was still running" in str(diff)
    assert "local 'rows'" in str(diff)


class SizedCache:
    """A hand-written cache that says how many entries it keeps, and one that keeps more."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = {}


def test_a_cache_that_names_its_size_may_fill_up_to_it_but_not_far_past():
    filling, overflowing = SizedCache(500), SizedCache(20)
    gc.collect()
    before = heaplens.snapshot()
    for i in range(300):
        filling.entries[i] = Row(i)
        overflowing.entries[i] = Row(i)
    after = heaplens.snapshot()
    diff = after.diff(before)
    held = [str(s.holder_path) for s in diff.suspects]
    assert any("overflowing" in h for h in held), str(diff)
    assert not any("filling" in h for h in held), str(diff)
    del filling, overflowing


LAZY_MODULE = '''
"""Imported by a request the first time it is served: code, classes and tables."""
import enum

class Color(enum.Enum):
    RED = 1
    GREEN = 2

RATES = {code: [code, code * 1.1] for code in range(3000)}

def convert(amount, code):
    return amount * RATES[code][1]

HANDLERS = [lambda x, i=i: x + i for i in range(200)]
'''


def test_a_module_imported_between_the_snapshots_is_warm_up_not_a_leak(tmp_path, monkeypatch):
    """A lazy import on the first request brings code, classes and tables, all held through the
    new module (and the import system's caches): warm-up, said and not counted."""
    import importlib

    (tmp_path / "lazy_rates.py").write_text(LAZY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    gc.collect()
    before = heaplens.snapshot()
    module = importlib.import_module("lazy_rates")
    kept = [Row(i) for i in range(100)]  # and a real leak beside it, in an old container
    CACHE["lazy"] = kept
    after = heaplens.snapshot()
    try:
        diff = after.diff(before)
        assert [(s.entry_type, s.entries) for s in diff.suspects] == [(f"{__name__}.Row", 100)], str(diff)
        assert "came with modules imported since the earlier snapshot" in str(diff)
        assert module.convert(10, 5) > 0
    finally:
        del CACHE["lazy"]
        sys.modules.pop("lazy_rates", None)
