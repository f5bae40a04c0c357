"""growth() and show_growth() follow objgraph: growth of peak counts since the last call."""

import gc
import io

import pytest

import heaplens
from conftest import gc_disabled


class MyLeakyObject:
    pass


CACHE = []


def function_with_leak():
    CACHE.append(MyLeakyObject())


def function_without_leak():
    a = MyLeakyObject()
    return a is not None


class FirstSeen:
    pass


class DefaultTracked:
    pass


class Shown:
    pass


def test_a_tracker_reports_every_type_first_and_then_only_growth():
    tracker = heaplens.Tracker()
    first = tracker.growth(limit=None)
    assert len(first) > 10 and all(delta == count for _, count, delta in first)
    leaked = [FirstSeen() for _ in range(25)]
    assert ("FirstSeen", 25, 25) in tracker.growth(limit=None)
    assert [r for r in tracker.growth(limit=None) if r[0] == "FirstSeen"] == []
    assert tracker.peak_stats["FirstSeen"] == 25
    del leaked


def test_the_origin_articles_leak_is_found_and_the_clean_function_is_not():
    tracker = heaplens.Tracker()
    tracker.growth()
    function_without_leak()
    assert [r for r in tracker.growth(limit=None) if r[0] == "MyLeakyObject"] == []
    for _ in range(3):
        function_with_leak()
    rows = [r for r in tracker.growth(limit=None) if r[0] == "MyLeakyObject"]
    assert rows == [("MyLeakyObject", heaplens.count(MyLeakyObject), 3)]


def leaky_rows(rows):
    return [r for r in rows if r[0] == "MyLeakyObject"]


def test_objects_that_come_and_go_do_not_count_as_growth():
    tracker = heaplens.Tracker(gc_only=True)
    tracker.growth()
    base = len(CACHE)
    temporary = [MyLeakyObject() for _ in range(10)]
    assert leaky_rows(tracker.growth(limit=None)) == [("MyLeakyObject", base + 10, 10)]
    assert base == heaplens.count(MyLeakyObject) - 10
    del temporary
    assert leaky_rows(tracker.growth(limit=None)) == []
    temporary = [MyLeakyObject() for _ in range(5)]
    assert leaky_rows(tracker.growth(limit=None)) == [], "below the peak is not growth"
    del temporary


def test_module_level_growth_with_an_explicit_peak_stats_dict():
    peaks = {}
    heaplens.growth(peak_stats=peaks)
    assert peaks["dict"] > 0
    extra = [MyLeakyObject() for _ in range(4)]
    rows = heaplens.growth(limit=None, peak_stats=peaks)
    assert ("MyLeakyObject", heaplens.count(MyLeakyObject), 4) in rows
    long_rows = heaplens.growth(limit=None, peak_stats={}, shortnames=False)
    assert any(name == f"{__name__}.MyLeakyObject" for name, _, _ in long_rows)
    del extra


def test_module_level_growth_uses_a_default_tracker():
    heaplens.growth()
    extra = [DefaultTracked() for _ in range(6)]
    rows = heaplens.growth(limit=None)
    assert ("DefaultTracked", 6, 6) in rows
    del extra


def test_growth_limits_and_orders_by_delta():
    heaplens.growth()
    extra = [MyLeakyObject() for _ in range(50)] + [object() for _ in range(20)]
    rows = heaplens.growth(limit=2)
    assert len(rows) <= 2
    assert rows[0][2] >= rows[-1][2]
    del extra


def test_show_growth_prints_objgraphs_table():
    tracker = heaplens.Tracker()
    tracker.growth()
    extra = [Shown() for _ in range(3)]
    out = io.StringIO()
    tracker.show_growth(limit=None, file=out)
    line = next(l for l in out.getvalue().splitlines() if l.startswith("Shown"))
    assert line.split() == ["Shown", "3", "+3"]
    out = io.StringIO()
    tracker.show_growth(limit=None, file=out)
    assert "Shown" not in out.getvalue()
    out = io.StringIO()
    heaplens.show_growth(peak_stats={}, limit=1, file=out)
    assert len(out.getvalue().splitlines()) == 1
    del extra


def test_growth_with_collect_runs_the_collector_first():
    tracker = heaplens.Tracker(collect=True, gc_only=True)
    tracker.growth()
    a = []
    a.append(a)
    del a
    assert all(r[0] != "list" for r in tracker.growth(limit=None))


def test_bad_growth_arguments_are_rejected():
    with pytest.raises(ValueError):
        heaplens.growth(limit=-1)
    with pytest.raises(TypeError):
        heaplens.growth(peak_stats=[])


class BothViews:
    pass


def test_growth_counts_gc_tracked_objects_by_default_and_every_object_on_request():
    everything = heaplens.Tracker(gc_only=False)
    tracked = heaplens.Tracker()
    # No collection between the counts: garbage other tests left, freed in between, would
    # lower the count the new objects raise (CI 3.14 saw the tuples' growth fall under 300).
    gc.collect()
    with gc_disabled():
        everything.growth()
        tracked.growth()
        # Objects the collector does not track, so objgraph cannot see them: dicts of atomic
        # values before 3.14, tuples of them from 3.14 (which tracks every dict, and no such
        # tuple).
        records, kind = [{"id": i} for i in range(300)], "dict"
        if gc.is_tracked(records[0]):
            records, kind = [(i, -i) for i in range(300)], "tuple"
        assert not any(gc.is_tracked(r) for r in records)
        grown = everything.growth(limit=None)
        assert any(name == kind and delta >= 300 for name, _, delta in grown), grown
        assert all(name != kind or delta < 300 for name, _, delta in tracked.growth(limit=None))
    del records


def test_the_default_trackers_of_the_two_views_are_independent():
    heaplens.growth(gc_only=False)
    heaplens.growth()
    extra = [BothViews() for _ in range(200)]
    assert ("BothViews", 200, 200) in heaplens.growth(limit=None, gc_only=False)
    assert ("BothViews", 200, 200) in heaplens.growth(limit=None)
    del extra


class Ranked:
    def __init__(self):
        self.payload = [{"n": [i]} for i in range(10)]


def test_the_leaking_class_comes_before_the_builtins_that_grow_faster_inside_it():
    """The one ranking rule: the class a developer would name first, though each of its
    instances brings ten dicts and a list."""
    tracker = heaplens.Tracker()
    tracker.growth()
    kept = [Ranked() for _ in range(30)]
    rows = tracker.growth(limit=None)
    names = [name for name, _, _ in rows]
    assert names[0] == "Ranked", rows
    assert names.index("dict") > 0 and rows[names.index("dict")][2] >= 300
    long_rows = heaplens.Tracker(gc_only=True)
    long_rows.growth(shortnames=False)
    kept += [Ranked() for _ in range(30)]
    assert long_rows.growth(limit=1, shortnames=False)[0][0] == f"{__name__}.Ranked"
    del kept


def test_heaplens_own_objects_are_not_growth():
    """A snapshot, a census or a tracker the caller keeps is the tool's, not the program's:
    growth() and show_growth() (and objgraph's, through heaplens.objgraph) leave them out."""
    import heaplens.objgraph as objgraph

    tracker = heaplens.Tracker()
    tracker.growth()
    peaks = {}
    objgraph.growth(peak_stats=peaks)
    kept = [heaplens.snapshot(), heaplens.census(), heaplens.Tracker()]
    kept[2].growth()
    names = {row[0] for row in tracker.growth(limit=None)}
    names |= {row[0] for row in objgraph.growth(None, peaks)}
    names |= {row[0] for row in heaplens.Tracker(gc_only=False).growth(limit=None, shortnames=False)}
    own = {n for n in names if n.split(".")[-1] in {"Snapshot", "Census", "Tracker", "PeakTracker"}}
    assert not own, own
    del kept
