"""Roots: modules, thread stacks, objects held from outside the heap; garbage is kept and
flagged unreachable."""

import gc
import sys

import pytest

import heaplens

from conftest import gc_disabled


class Leaked:
    pass


MODULE_CACHE = {"entries": [Leaked()]}


def test_modules_in_sys_modules_are_roots():
    snap = heaplens.snapshot()
    roots = dict(snap.roots())
    assert roots[f"sys.modules[{__name__!r}]"].address == id(sys.modules[__name__])
    assert "module" in snap[id(sys)].flags


def test_a_module_global_leak_is_reachable_and_not_flagged():
    snap = heaplens.snapshot()
    node = snap[id(MODULE_CACHE["entries"][0])]
    assert not node.unreachable
    assert node.gc_tracked


def test_an_object_held_only_by_another_threads_local_names_the_thread(thread_holding):
    with thread_holding(lambda: Leaked(), name="leaky-worker") as holder:
        snap = heaplens.snapshot()
        node = snap[holder.held_id]
        assert node.type.endswith("Leaked") and not node.unreachable
        (label, frame), = node.referrers
        assert label == "local 'held'"
        assert "frame" in frame.flags and frame.name.startswith("ThreadHolding._run (")
        threads = [src for _, src in frame.referrers if "thread" in src.flags]
        assert [t.name for t in threads] == ["leaky-worker"]
        roots = dict(snap.roots())
        assert roots["thread 'leaky-worker'"] == threads[0]


def test_cyclic_garbage_under_gc_disable_is_kept_and_marked_unreachable():
    with gc_disabled():
        a = [Leaked()]
        b = [a]
        a.append(b)
        ids = {id(a), id(b), id(a[0])}
        del a, b
        snap = heaplens.snapshot()
        for i in ids:
            assert snap[i].unreachable
        unreachable = {o.address for o in snap.unreachable()}
        assert ids <= unreachable
        census = snap.census()
        assert census.count("Leaked") >= 1
        gc.collect()


def test_objects_held_from_c_are_external_roots():
    snap = heaplens.snapshot()
    # sys.modules is held by the interpreter state as well as by sys.__dict__.
    modules = snap.object(sys.modules)
    assert "external" in modules.flags
    assert not modules.unreachable
    assert ("<external>", modules) in snap.roots()


def test_every_object_is_reachable_or_flagged():
    snap = heaplens.snapshot()
    assert len(snap) > 1000
    assert len(snap.unreachable()) < len(snap) // 10
    assert snap.root.type == "(root)"
    assert snap.python_version == sys.version


@pytest.mark.skipif(sys.version_info < (3, 12), reason="immortal objects are new in 3.12")
def test_immortal_objects_are_roots_of_their_own_not_held_outside_the_heap():
    # None, small ints and static types have reference counts that mean nothing from 3.12: they
    # are the interpreter's, never freed, and must not all look "held from C".
    snap = heaplens.snapshot()
    roots = snap.roots()
    for obj in (None, True, 5, int, ()):
        node = snap.object(obj)
        assert "external" not in node.flags, obj
        assert not node.unreachable
        assert (heaplens.IMMORTAL_ROOT, node) in roots, obj
    external = [node for label, node in roots if label == "<external>"]
    assert not any(node.type in ("NoneType", "bool") for node in external)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="immortal objects are new in 3.12")
def test_an_immortal_object_reached_only_from_garbage_is_not_garbage():
    class Cycle:
        pass

    with gc_disabled():
        a, b = Cycle(), Cycle()
        a.peer, b.peer = b, a
        a.flag = True  # immortal
        addresses = id(a), id(b)
        del a, b
        snap = heaplens.snapshot()
        assert snap[addresses[0]].unreachable and snap[addresses[1]].unreachable
        assert not snap.object(True).unreachable
    gc.collect()
