"""Why is it alive: retaining paths, retained sizes, top retainers, the report, diff."""

import gc
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


def test_analysis_arguments_are_checked():
    snap = heaplens.snapshot()
    with pytest.raises(KeyError):
        snap.paths_to(object())  # created after the snapshot
    with pytest.raises(TypeError):
        snap.diff("not a snapshot")
    assert snap.paths_to(CACHE, k=0) == []
