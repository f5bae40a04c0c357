"""The census counts every live object exactly, gc-tracked or not."""

import gc
import sys

import heaplens


class Widget:
    pass


class Gadget:
    pass


class Gizmo:
    pass


class SlottedWidget:
    __slots__ = ("a", "b")


def test_a_thousand_new_instances_show_as_exactly_a_thousand():
    before = heaplens.census()
    widgets = [Widget() for _ in range(1000)]
    after = heaplens.census()
    assert after.count("Widget") - before.count("Widget") == 1000
    assert len(widgets) == 1000


def test_instances_of_slotted_classes_are_counted():
    before = heaplens.count("SlottedWidget") if "SlottedWidget" in heaplens.census() else 0
    items = [SlottedWidget() for _ in range(250)]
    assert heaplens.count("SlottedWidget") - before == 250
    del items


def test_objects_the_collector_does_not_track_are_counted():
    # Big ints are not gc-tracked: objgraph cannot see them, heaplens must. Another thread of
    # this process (pytest-xdist's) makes ints too: it must not run between the two censuses.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(60)
    try:
        before = heaplens.census()
        numbers = [10**30 + i for i in range(1000)]
        after = heaplens.census()
    finally:
        sys.setswitchinterval(switch)
    assert after.count("int") - before.count("int") == 1000
    gc_view = heaplens.census(gc_only=True)
    assert gc_view.gc_only
    assert "int" not in gc_view
    del numbers


def test_untracked_dicts_and_tuples_are_found_and_counted():
    # Tuples holding only atomic values are untracked by the collector (lazily, during a
    # collection, before 3.14), and so are such dicts before 3.14 (3.14 tracks every dict).
    records = [{"id": i} for i in range(500)]
    pairs = [(i, i + 1) for i in range(300, 600)]
    gc.collect()
    untracked = [o for o in records + pairs if not gc.is_tracked(o)]
    assert len(untracked) >= 300
    snap = heaplens.snapshot()
    for o in records + pairs:
        node = snap[id(o)]
        assert node.type == type(o).__name__
        assert node.gc_tracked == gc.is_tracked(o)
    census = snap.census()
    assert census.count("dict") >= 500 and census.count("tuple") >= 300


def test_dict_str_keys_are_objects_and_are_counted():
    before = heaplens.census()
    d = {("k%d" % i) * 3: None for i in range(200)}
    after = heaplens.census()
    assert after.count("str") - before.count("str") >= 200
    del d


def test_gc_only_census_matches_gc_get_objects():
    objects = gc.get_objects()
    # gc.get_objects() leaves out the permanent generation (gc.freeze(); 3.12 freezes a few
    # hundred objects at startup), which heaplens counts: they are alive and tracked.
    expected = len(objects) + gc.get_freeze_count()
    del objects
    census = heaplens.census(gc_only=True)
    # gc.get_objects() counts its own result list; everything else is the same set.
    assert abs(census.total_count - (expected - 1)) <= 2


def test_census_bytes_are_getsizeof_sums():
    before = heaplens.census()
    blobs = [b"x" * (100 + i) for i in range(100)]
    after = heaplens.census()
    grown = after["bytes"].size - before["bytes"].size
    assert grown == sum(sys.getsizeof(b) for b in blobs)


def test_census_rows_index_and_render():
    c = heaplens.census()
    assert c["dict"].name == "dict"
    assert c["builtins.dict"].long_name == "builtins.dict"
    assert c["dict"].count == c.count("dict") > 0
    assert c.rows[0].count >= c.rows[-1].count
    assert "dict" in c and "NoSuchTypeAtAll" not in c
    table = str(c)
    assert table.splitlines()[0].split() == ["type", "count", "bytes"]
    assert c.top(3, by="size")[0].size >= c.top(3, by="size")[1].size
    assert c.as_dict()["dict"] == (c["dict"].count, c["dict"].size)
    assert sum(r.count for r in c) == c.total_count


def test_census_diff_names_what_grew():
    before = heaplens.census()
    keep = [Widget() for _ in range(42)]
    after = heaplens.census()
    grown = {name: delta for name, _, delta, _ in after.diff(before)}
    assert grown[f"{__name__}.Widget"] == 42
    del keep


def test_census_of_given_objects():
    c = heaplens.census(objects=[1, "a", "b", [], {}])
    assert c.count("str") == 2 and c.count("int") == 1 and c.total_count == 5


def test_typestats_and_most_common_types_follow_objgraph():
    items = [Widget() for _ in range(30)]
    # Garbage other tests left would be freed by a collection between the two counts below.
    gc.collect()
    stats = heaplens.typestats()
    assert stats["Widget"] >= 30
    long_stats = heaplens.typestats(shortnames=False)
    assert long_stats[f"{__name__}.Widget"] >= 30
    assert abs(long_stats["builtins.dict"] - stats["dict"]) < 10
    only_widgets = heaplens.typestats(filter=lambda o: isinstance(o, Widget))
    assert only_widgets == {"Widget": 30}
    top = heaplens.most_common_types(limit=5)
    assert len(top) == 5 and top[0][1] >= top[-1][1]
    assert heaplens.most_common_types(limit=None, objects=items) == [("Widget", 30)]
    del items


def test_show_most_common_types_prints_objgraphs_table(capsys):
    heaplens.show_most_common_types(limit=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    name, n = lines[0].split()
    assert int(n) > 0


def test_count_accepts_names_and_types():
    ws = [Gadget() for _ in range(7)]
    assert heaplens.count("Gadget") == 7
    assert heaplens.count(f"{__name__}.Gadget") == 7
    assert heaplens.count(Gadget) == 7
    assert heaplens.count("Gadget", objects=ws[:3]) == 3
    assert heaplens.count("Gadget", gc_only=True) == 7
    del ws


def test_by_type_returns_the_live_instances():
    ws = [Gizmo() for _ in range(5)]
    found = heaplens.by_type("Gizmo")
    assert sorted(map(id, found)) == sorted(map(id, ws))
    assert heaplens.by_type(Gizmo, gc_only=True) == heaplens.by_type(Gizmo)
    big = 10**40 + 7
    assert any(o is big for o in heaplens.by_type("int"))
    assert heaplens.by_type("Gizmo", objects=[ws[0], 1, "x"]) == [ws[0]]
    del ws, found


def test_two_long_class_names_that_share_their_start_are_two_types():
    """Names are cut for display, with a fingerprint of the whole name: two classes whose
    names share their first 200 characters are still counted apart."""
    prefix = "Generated" + "X" * 240
    first = type(prefix + "Alpha", (), {})
    second = type(prefix + "Beta", (), {})
    objects = [first() for _ in range(3)] + [second() for _ in range(5)]
    counts = sorted(
        row.count for row in heaplens.census() if row.name.startswith(f"{__name__}.Generated")
    )
    assert counts == [3, 5], counts
    del objects
