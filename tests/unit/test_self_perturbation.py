"""Every public function leaves no reference cycle behind and keeps no object alive (objgraph's
own self-perturbation test): a leak hunter must not add leaks of its own."""

import gc
import io
import os
import sys
import tempfile

import pytest

import heaplens

from conftest import refcount_at


class Sentinel:
    pass


def _public_calls():
    tracker = heaplens.Tracker()
    return {
        "memory": lambda: heaplens.memory(),
        "census": lambda: heaplens.census(),
        "census_gc_only": lambda: heaplens.census(gc_only=True),
        "census_of_objects": lambda: heaplens.census(objects=[1, "a"]),
        "count": lambda: heaplens.count("Sentinel"),
        "typestats": lambda: heaplens.typestats(),
        "typestats_filtered": lambda: heaplens.typestats(filter=lambda o: isinstance(o, Sentinel)),
        "most_common_types": lambda: heaplens.most_common_types(),
        "show_most_common_types": lambda: heaplens.show_most_common_types(file=io.StringIO()),
        "by_type": lambda: heaplens.by_type("Sentinel"),
        "growth": lambda: heaplens.growth(),
        "growth_every_object": lambda: heaplens.growth(gc_only=False),
        "growth_peak_stats": lambda: heaplens.growth(peak_stats={}),
        "show_growth": lambda: heaplens.show_growth(file=io.StringIO()),
        "tracker_growth": lambda: tracker.growth(),
        "snapshot": lambda: heaplens.snapshot(),
        "snapshot_queries": lambda: _query_snapshot(heaplens.snapshot()),
        "snapshot_forked": lambda: heaplens.snapshot(fork=True),
        "snapshot_to_a_file": lambda: _snapshot_to_a_file(),
        "show_refs": lambda: heaplens.show_refs(sys.modules[__name__], output=io.StringIO()),
        "show_backrefs": lambda: heaplens.show_backrefs(
            Sentinel, filter=lambda o: True, highlight=callable, output=io.StringIO()
        ),
        "show_backrefs_png": lambda: _draw_png(Sentinel),
        "show_chain": lambda: heaplens.show_chain(
            [sys.modules[__name__], Sentinel], output=io.StringIO()
        ),
    }


def _draw_png(obj):
    with tempfile.TemporaryDirectory() as folder:
        heaplens.show_backrefs(obj, filename=os.path.join(folder, "picture.png"))


def _snapshot_to_a_file():
    with tempfile.TemporaryDirectory() as folder:
        heaplens.snapshot(os.path.join(folder, "now.hlsnap"))


def _query_snapshot(snap):
    node = snap.object(sys.modules[__name__])
    return node.referents, node.referrers, snap.roots(), snap.census(), snap.unreachable()


@pytest.mark.parametrize("name", sorted(_public_calls()))
def test_a_call_creates_no_cycles_and_keeps_nothing_alive(name):
    call = _public_calls()[name]
    sentinel = Sentinel()
    call()  # warm one-time caches
    gc.collect()
    refcount = refcount_at(id(sentinel))
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        call()
        assert gc.collect() == 0, f"{name} left cyclic garbage behind"
    finally:
        if was_enabled:
            gc.enable()
    assert refcount_at(id(sentinel)) == refcount, f"{name} kept a reference to an object"
