"""heaplens.objgraph is a drop-in for objgraph: its signatures, its documented examples, its
results (compared with the real objgraph where both are deterministic), and no leaks of its own.
"""

import collections
import doctest
import gc
import inspect
import io
import os
import random
import re
import sys
import tempfile
import types
import warnings

import pytest

import heaplens.objgraph as objgraph
from conftest import gc_disabled, refcount_at

#: objgraph 3.7's public functions and their signatures. Two defaults differ on purpose: objgraph
#: keeps state in mutable default arguments (peak_stats={}, _state={}), heaplens.objgraph in
#: module-level objects.
SIGNATURES = {
    "count": "(typename, objects=None)",
    "typestats": "(objects=None, shortnames=True, filter=None)",
    "most_common_types": "(limit=10, objects=None, shortnames=True, filter=None)",
    "show_most_common_types": "(limit=10, objects=None, shortnames=True, file=None, filter=None)",
    "growth": "(limit=10, peak_stats=None, shortnames=True, filter=None)",
    "show_growth": "(limit=10, peak_stats=None, shortnames=True, file=None, filter=None)",
    "get_new_ids": (
        "(skip_update=False, limit=10, sortby='deltas', shortnames=None, file=None, _state=None)"
    ),
    "get_leaking_objects": "(objects=None)",
    "by_type": "(typename, objects=None)",
    "at": "(addr)",
    "at_addrs": "(address_set)",
    "find_ref_chain": "(obj, predicate, max_depth=20, extra_ignore=())",
    "find_backref_chain": "(obj, predicate, max_depth=20, extra_ignore=())",
    "show_chain": "(*chains, **kw)",
    "show_backrefs": (
        "(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None, "
        "filename=None, extra_info=None, refcounts=False, shortnames=True, output=None, "
        "extra_node_attrs=None)"
    ),
    "show_refs": (
        "(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None, "
        "filename=None, extra_info=None, refcounts=False, shortnames=True, output=None, "
        "extra_node_attrs=None)"
    ),
    "is_proper_module": "(obj)",
}
STATE_DEFAULTS = {("growth", "peak_stats"), ("get_new_ids", "_state")}


@pytest.fixture
def real_objgraph():
    return pytest.importorskip("objgraph")


class MyBigFatObject:
    pass


def computate_something(_cache={}):  # noqa: B006 - objgraph's documented leak, on purpose
    _cache[42] = dict(foo=MyBigFatObject(), bar=MyBigFatObject())
    x = MyBigFatObject()  # this one doesn't leak
    return x is not None


class MyUnpicklableObject:
    def __getstate__(self):
        raise NotImplementedError


class Fresh:
    pass


class Counted:
    pass


class Tallied:
    pass


class Orphan:
    pass


class Sentinel:
    pass


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def test_the_module_offers_objgraphs_whole_public_api():
    assert sorted(objgraph.__all__) == sorted(SIGNATURES)
    for name in SIGNATURES:
        assert callable(getattr(objgraph, name)), name


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_every_function_has_objgraphs_signature(name):
    assert str(inspect.signature(getattr(objgraph, name))) == SIGNATURES[name]


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signatures_match_the_installed_objgraph_apart_from_state_defaults(name, real_objgraph):
    ours = inspect.signature(getattr(objgraph, name)).parameters
    theirs = inspect.signature(getattr(real_objgraph, name)).parameters
    assert list(ours) == list(theirs)
    for param in theirs:
        a, b = ours[param], theirs[param]
        assert a.kind == b.kind, param
        if (name, param) in STATE_DEFAULTS:
            assert b.default == {} and a.default is None
        else:
            assert a.default == b.default, param


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_no_function_keeps_state_in_a_mutable_default(name):
    for param in inspect.signature(getattr(objgraph, name)).parameters.values():
        assert not isinstance(param.default, (dict, list, set)), param


# ---------------------------------------------------------------------------------------------
# objgraph's documented examples (docs/index.txt, chain.txt, generator-sample.txt, docstrings)
# ---------------------------------------------------------------------------------------------


def test_show_most_common_types_prints_objgraphs_table():
    out = io.StringIO()
    objgraph.show_most_common_types(file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    width = max(len(line.split()[0]) for line in lines)
    for line in lines:
        name, n = line.split()
        assert line == "%-*s %i" % (width, name, int(n))
    counts = [int(line.split()[1]) for line in lines]
    assert counts == sorted(counts, reverse=True)


def test_the_memory_leak_example_finds_the_leak_and_its_chain_to_a_module():
    growth_line = re.compile(r"^(\S+) +(\d+) +\+(\d+)$")
    out = io.StringIO()
    objgraph.show_growth(limit=3, file=out)
    assert len(out.getvalue().splitlines()) == 3
    assert all(growth_line.match(line) for line in out.getvalue().splitlines())

    computate_something()
    out = io.StringIO()
    objgraph.show_growth(file=out)
    rows = [growth_line.match(line).groups() for line in out.getvalue().splitlines()]
    assert ("MyBigFatObject", "2", "2") in rows
    width = max(len(name) for name, _, _ in rows)
    assert out.getvalue().splitlines()[0] == "%-*s%9d %+9d" % (
        width, rows[0][0], int(rows[0][1]), int(rows[0][2])
    )

    leaked = random.choice(objgraph.by_type("MyBigFatObject"))
    chain = objgraph.find_backref_chain(leaked, objgraph.is_proper_module)
    assert objgraph.is_proper_module(chain[0]) and chain[-1] is leaked
    for referrer, referent in zip(chain, chain[1:]):
        assert any(r is referent for r in gc.get_referents(referrer))
    assert chain[0] is sys.modules[__name__]
    assert [type(o).__name__ for o in chain] == [
        "module", "dict", "function", "tuple", "dict", "dict", "MyBigFatObject"
    ]


def test_the_memory_leak_examples_chain_is_objgraphs(real_objgraph):
    computate_something()
    for leaked in objgraph.by_type("MyBigFatObject"):
        ours = objgraph.find_backref_chain(leaked, objgraph.is_proper_module)
        theirs = real_objgraph.find_backref_chain(leaked, real_objgraph.is_proper_module)
        assert [id(o) for o in theirs] == [id(o) for o in ours]


def test_the_generator_sample_finds_the_canary_held_by_a_running_generator():
    class Canary:
        pass

    def count_to_three():
        tweety = Canary()  # noqa: F841 - kept alive by the suspended generator
        yield 1
        yield 2

    it = count_to_three()
    next(it)
    assert objgraph.count("Canary") == 1
    chain = objgraph.find_backref_chain(objgraph.by_type("Canary")[0], lambda x: x is it)
    assert chain[0] is it and type(chain[-1]).__name__ == "Canary"


def _my_object():
    return dict(
        foo=dict(unrelated="things"),
        bar=[dict(nesting="fun"), dict(boobytrap=MyUnpicklableObject())],
    )


def is_unpicklable(x):
    return isinstance(x, MyUnpicklableObject)


def test_the_graph_search_example_finds_the_unpicklable_object():
    my_object = _my_object()
    chain = objgraph.find_ref_chain(my_object, is_unpicklable)
    assert chain[0] is my_object and is_unpicklable(chain[-1])
    assert [type(o).__name__ for o in chain] == ["dict", "list", "dict", "MyUnpicklableObject"]


def test_the_graph_search_examples_chain_is_objgraphs(real_objgraph):
    my_object = _my_object()
    ours = objgraph.find_ref_chain(my_object, is_unpicklable)
    theirs = real_objgraph.find_ref_chain(my_object, is_unpicklable)
    assert [id(o) for o in theirs] == [id(o) for o in ours]


def test_get_new_ids_example_sees_new_lists():
    out = io.StringIO()
    objgraph.get_new_ids(file=out)
    objgraph.get_new_ids(file=out)
    a = [0, 1, 2]
    b = [3, 4, 5]
    out = io.StringIO()
    new_ids = objgraph.get_new_ids(limit=3, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 7
    assert lines[0] == lines[2] == lines[6] == "=" * len(lines[0])
    width = len(lines[0]) - 13 * 4
    assert lines[1] == "%-*s%13s%13s%13s%13s" % (
        width, "Type", "Old_ids", "Current_ids", "New_ids", "Count_Deltas"
    )
    for line in lines[3:6]:
        assert re.match(r"^\S+ *( +\d+){2}( +[+-]\d+){2}$", line), line
    new_lists = objgraph.at_addrs(new_ids["list"])
    assert a in new_lists
    assert b in new_lists
    assert objgraph.get_new_ids(skip_update=True) is new_ids


def test_get_leaking_objects_example_counts_roots_by_type():
    roots = objgraph.get_leaking_objects()
    assert len(roots) > 0
    assert all(gc.is_tracked(o) for o in roots)
    out = io.StringIO()
    objgraph.show_most_common_types(objects=roots, file=out)
    assert out.getvalue().count("\n") == 10


def test_is_proper_module_docstring():
    assert objgraph.is_proper_module([]) is False
    assert objgraph.is_proper_module(types) is True
    assert objgraph.is_proper_module(types.ModuleType("foo")) is False


def test_the_quick_start_draws_references_and_backreferences():
    x = []
    y = [x, [x], dict(x=x)]
    out = io.StringIO()
    assert objgraph.show_refs([y], output=out) is None
    assert out.getvalue().startswith("digraph")
    out = io.StringIO()
    objgraph.show_backrefs([x], output=out)
    assert out.getvalue().startswith("digraph")
    out = io.StringIO()
    objgraph.show_chain(objgraph.find_backref_chain(x, objgraph.is_proper_module), output=out)
    assert out.getvalue().startswith("digraph")


QUICK_START = """
>>> x = []
>>> y = [x, [x], dict(x=x)]
>>> objgraph.show_refs([y], filename=os.path.join(folder, 'sample-graph.png'))
Graph written to ....dot (5 nodes)
Image generated as .../sample-graph.png
>>> objgraph.show_backrefs([x], filename=os.path.join(folder, 'sample-backref-graph.png'))
Graph written to ....dot (... nodes)
Image generated as .../sample-backref-graph.png
>>> objgraph.show_refs([y], filename=os.path.join(folder, 'refs.dot'))
Graph written to .../refs.dot (5 nodes)
>>> chain = objgraph.find_backref_chain(x, objgraph.is_proper_module)
>>> objgraph.show_chain(chain, filename=os.path.join(folder, 'chain.png'))
Graph written to ....dot (... nodes)
Image generated as .../chain.png
"""


def test_objgraphs_quick_start_prints_what_objgraph_prints_and_returns_nothing(
    tmp_path, monkeypatch
):
    """objgraph's documented examples, as doctests (their ``....dot`` is a temporary file):
    each call prints where the graph was written and the image generated, and returns None."""
    test = doctest.DocTestParser().get_doctest(
        QUICK_START,
        {"objgraph": objgraph, "os": os, "folder": str(tmp_path)},
        "quick start",
        None,
        0,
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
    for name in ("sample-graph.png", "sample-backref-graph.png", "chain.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
    assert (tmp_path / "refs.dot").read_text().startswith("digraph")


def test_without_a_file_name_the_picture_is_a_png_beside_the_dot_file(
    capsys, monkeypatch, tmp_path
):
    # objgraph spawns xdot when it is installed; without it, it draws a PNG (heaplens needs no
    # Graphviz for it).
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    x = []
    assert objgraph.show_refs([[x]]) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Graph written to ") and lines[0].endswith(".dot (2 nodes)")
    dot = lines[0][len("Graph written to ") : -len(" (2 nodes)")]
    assert lines[1:] == [
        "Graph viewer (xdot) not found, generating a png instead",
        f"Image generated as {dot[:-4]}.png",
    ]
    assert dot.startswith(str(tmp_path))
    with open(dot[:-4] + ".png", "rb") as png:
        assert png.read(4) == b"\x89PNG"
    # A format only Graphviz draws, without Graphviz: objgraph's words.
    assert objgraph.show_refs([[x]], filename=dot[:-4] + ".pdf") is None
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Image renderer (dot) not found, not doing anything else"
    )


def test_the_printed_lines_are_objgraphs(tmp_path, capsys, monkeypatch, real_objgraph):
    x = []
    y = [x, [x], dict(x=x)]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for module in (real_objgraph, objgraph):
        with warnings.catch_warnings():
            # objgraph 3.6 writes .dot files with codecs.open, deprecated in Python 3.14.
            warnings.simplefilter("ignore", DeprecationWarning)
            assert module.show_refs([y], filename=str(tmp_path / "a.dot")) is None
            assert module.show_backrefs([x], filename=str(tmp_path / "b.dot")) is None
    printed = capsys.readouterr().out.splitlines()
    theirs, ours = printed[:2], printed[2:]
    assert [line.rsplit("(", 1)[0] for line in ours] == [
        line.rsplit("(", 1)[0] for line in theirs
    ]


def _doctests():
    finder = doctest.DocTestFinder()
    return [t for t in finder.find(objgraph) if t.examples]


@pytest.mark.parametrize("test", _doctests(), ids=lambda t: t.name)
def test_docstring_examples(test):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


# ---------------------------------------------------------------------------------------------
# Results compared with objgraph's
# ---------------------------------------------------------------------------------------------


def test_count_and_by_type_match_objgraph_for_short_and_long_names(real_objgraph):
    things = [Counted() for _ in range(7)]
    for name in ("Counted", f"{__name__}.Counted"):
        assert objgraph.count(name) == real_objgraph.count(name) == 7
        ours, theirs = objgraph.by_type(name), real_objgraph.by_type(name)
        assert sorted(map(id, ours)) == sorted(map(id, theirs)) == sorted(map(id, things))
    assert objgraph.count("Counted", things[:3] + [1, "a"]) == 3
    assert objgraph.by_type("Counted", things[:3] + [1]) == things[:3]


def test_a_qualname_is_not_objgraphs_long_name(real_objgraph):
    class Inner:
        pass

    kept = Inner()
    qualified = f"{__name__}.{Inner.__qualname__}"
    assert real_objgraph.by_type(qualified) == objgraph.by_type(qualified) == []
    assert objgraph.by_type(f"{__name__}.Inner") == [kept]
    assert objgraph.count("NoSuchTypeAnywhere") == 0 and objgraph.by_type("NoSuchType") == []


def test_objects_the_collector_does_not_track_are_not_counted_as_objgraph_does():
    numbers = [10**30 + i for i in range(100)]
    assert objgraph.by_type("int") == []
    assert objgraph.at(id(numbers[0])) is None
    assert objgraph.count("int", numbers) == 100


def test_typestats_of_given_objects_matches_objgraph(real_objgraph):
    objects = [[], [], {}, (1, []), Tallied(), Tallied(), Tallied(), "x", 2.5]
    for shortnames in (True, False):
        assert objgraph.typestats(objects, shortnames) == real_objgraph.typestats(
            objects, shortnames
        )
    def is_container(o):
        return isinstance(o, (list, dict))
    assert objgraph.typestats(objects, filter=is_container) == real_objgraph.typestats(
        objects, filter=is_container
    )
    assert objgraph.typestats()["Tallied"] == real_objgraph.typestats()["Tallied"] == 3


def test_most_common_types_and_its_table_match_objgraph(real_objgraph):
    objects = [Tallied()] * 4 + [[]] * 3 + [{}] * 2 + [()]
    for limit in (10, 2, 0, None):
        assert objgraph.most_common_types(limit, objects) == real_objgraph.most_common_types(
            limit, objects
        )
    ours, theirs = io.StringIO(), io.StringIO()
    objgraph.show_most_common_types(3, objects, file=ours)
    real_objgraph.show_most_common_types(3, objects, file=theirs)
    assert ours.getvalue() == theirs.getvalue() == "Tallied 4\nlist    3\ndict    2\n"


def test_growth_with_peak_stats_matches_objgraph(real_objgraph):
    def only_fresh(o):
        return type(o) is Fresh

    ours, theirs = {}, {}
    assert objgraph.growth(peak_stats=ours, filter=only_fresh) == []
    assert real_objgraph.growth(peak_stats=theirs, filter=only_fresh) == []
    kept = [Fresh() for _ in range(12)]
    assert objgraph.growth(peak_stats=ours, filter=only_fresh) == [("Fresh", 12, 12)]
    assert real_objgraph.growth(peak_stats=theirs, filter=only_fresh) == [("Fresh", 12, 12)]
    assert ours == theirs == {"Fresh": 12}
    kept += [Fresh() for _ in range(3)]
    out_ours, out_theirs = io.StringIO(), io.StringIO()
    objgraph.show_growth(peak_stats=ours, filter=only_fresh, file=out_ours)
    real_objgraph.show_growth(peak_stats=theirs, filter=only_fresh, file=out_theirs)
    assert out_ours.getvalue() == out_theirs.getvalue() == "Fresh       15        +3\n"
    del kept


def test_growth_collects_garbage_first_as_objgraph_does():
    def only_fresh(o):
        return type(o) is Fresh

    peaks = {}
    objgraph.growth(peak_stats=peaks, filter=only_fresh)
    with gc_disabled():
        cycle = [Fresh()]
        cycle.append(cycle)
        del cycle
        assert objgraph.growth(peak_stats=peaks, filter=only_fresh) == []


def test_growth_limit_follows_objgraph():
    # objgraph slices with `if limit:`, so 0 and None both mean every row.
    assert len(objgraph.growth(limit=None, peak_stats={})) > 10
    assert len(objgraph.growth(limit=0, peak_stats={})) > 10
    assert len(objgraph.growth(limit=3, peak_stats={})) == 3


def test_get_new_ids_table_matches_objgraphs_layout_exactly(real_objgraph):
    outputs = []
    for module in (objgraph, real_objgraph):
        state = {}
        module.get_new_ids(limit=0, _state=state)
        fresh = [Fresh() for _ in range(50_000)]
        out = io.StringIO()
        new_ids = module.get_new_ids(limit=1, sortby="new", _state=state, file=out)
        assert new_ids["Fresh"] == {id(f) for f in fresh}
        assert isinstance(new_ids, collections.defaultdict) and new_ids["NoSuchType"] == set()
        outputs.append(out.getvalue())
        del fresh, new_ids
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[3] == "%-*s%13d%13d%+13d%+13d" % (5, "Fresh", 0, 50000, 50000, 50000)


def test_get_new_ids_rows_for_types_whose_objects_died():
    state = {}
    objgraph.get_new_ids(limit=0, _state=state)
    fresh = [Fresh() for _ in range(5)]
    assert len(objgraph.get_new_ids(limit=0, _state=state)["Fresh"]) == 5
    del fresh
    out = io.StringIO()
    new_ids = objgraph.get_new_ids(limit=None, _state=state, file=out)
    assert new_ids["Fresh"] == set()
    assert re.search(r"^Fresh +5 +0 +\+0 +-5$", out.getvalue(), re.M)
    out = io.StringIO()
    objgraph.get_new_ids(limit=None, _state=state, file=out)
    assert not re.search(r"^Fresh ", out.getvalue(), re.M)


def test_get_new_ids_remembers_shortnames():
    state = {}
    objgraph.get_new_ids(limit=0, shortnames=False, _state=state)
    kept = [Fresh()]
    new_ids = objgraph.get_new_ids(limit=0, _state=state)
    assert new_ids[f"{__name__}.Fresh"] == {id(kept[0])}
    assert "builtins.dict" in new_ids and "dict" not in new_ids


# objgraph's get_leaking_objects() asks gc.get_referents of every tracked object (even when
# given the candidates), and 3.12's `_asyncio` module answers with the dead future iterators of
# its free list: objgraph holds them, drops them, and the free list becomes a cycle on which the
# next collection spins for ever (heaplens skips objects whose reference count is 0).
REAL_GET_LEAKING_OBJECTS_HANGS_THIS_PYTHON = sys.version_info[:2] == (3, 12)


def test_get_leaking_objects_of_given_objects_matches_objgraph(real_objgraph):
    held, loose = Orphan(), Orphan()
    keeper = {"held": held}
    candidates = [held, loose, 12345678901234567890]
    assert objgraph.get_leaking_objects(candidates) == [loose, 12345678901234567890]
    if not REAL_GET_LEAKING_OBJECTS_HANGS_THIS_PYTHON:
        assert real_objgraph.get_leaking_objects(candidates) == [loose, 12345678901234567890]
    # Any iterable, where objgraph needs a list (it goes through `objects` twice).
    del candidates
    assert objgraph.get_leaking_objects(o for o in (held, loose)) == [loose]
    del keeper


@pytest.mark.parametrize("module", ["heaplens.objgraph", "objgraph"])
def test_get_leaking_objects_finds_an_object_only_a_frame_holds(module):
    if module == "objgraph" and REAL_GET_LEAKING_OBJECTS_HANGS_THIS_PYTHON:
        pytest.skip("objgraph's get_leaking_objects() corrupts 3.12's asyncio free list")
    get_leaking_objects = pytest.importorskip(module).get_leaking_objects
    only_in_this_frame = Orphan()
    in_a_dict = {"x": Orphan()}
    ids = {id(o) for o in get_leaking_objects()}
    assert id(only_in_this_frame) in ids and id(in_a_dict["x"]) not in ids


def test_at_and_at_addrs_find_tracked_objects_only():
    a, b = [1], {"k": [2]}
    assert objgraph.at(id(a)) is a and objgraph.at(id(b)) is b
    assert objgraph.at(id(1)) is None and objgraph.at(-5) is None
    found = objgraph.at_addrs({id(a), id(b), id("text"), 1})
    assert sorted(map(id, found)) == sorted([id(a), id(b)])
    assert objgraph.at_addrs([]) == []


def test_chains_avoid_the_ids_in_extra_ignore_as_objgraph_does(real_objgraph):
    target = Orphan()
    via_list = [target]
    via_dict = {"t": target}
    holder = {"a": via_list, "b": via_dict}

    def is_target(o):
        return o is target

    for ignore in ([id(via_list)], [id(via_dict)]):
        ours = objgraph.find_ref_chain(holder, is_target, extra_ignore=ignore)
        theirs = real_objgraph.find_ref_chain(holder, is_target, extra_ignore=ignore)
        assert len(ours) == 3 and id(ours[1]) not in ignore
        assert [id(o) for o in ours] == [id(o) for o in theirs]
    both = [id(via_list), id(via_dict)]
    assert objgraph.find_ref_chain(holder, is_target, extra_ignore=both) == [holder]

    def is_holder(o):
        return o is holder

    for ignore in ([id(via_list)], [id(via_dict)]):
        ours = objgraph.find_backref_chain(target, is_holder, extra_ignore=ignore)
        theirs = real_objgraph.find_backref_chain(target, is_holder, extra_ignore=ignore)
        assert [id(o) for o in ours] == [id(o) for o in theirs]
        assert len(ours) == 3 and id(ours[1]) not in ignore
    assert objgraph.find_backref_chain(target, is_holder, extra_ignore=both) == [target]


def test_chains_stop_at_max_depth_and_test_the_start_object():
    deep = leaf = Orphan()
    for _ in range(5):
        deep = [deep]

    def is_leaf(o):
        return o is leaf

    assert len(objgraph.find_ref_chain(deep, is_leaf)) == 6
    assert objgraph.find_ref_chain(deep, is_leaf, max_depth=4) == [deep]
    assert len(objgraph.find_ref_chain(deep, is_leaf, max_depth=5)) == 6
    assert objgraph.find_ref_chain(leaf, is_leaf) == [leaf]

    def is_deep(o):
        return o is deep

    assert len(objgraph.find_backref_chain(leaf, is_deep, max_depth=5)) == 6
    assert objgraph.find_backref_chain(leaf, is_deep, max_depth=4) == [leaf]
    assert objgraph.find_backref_chain(deep, is_deep, max_depth=0) == [deep]


def test_a_weak_reference_is_not_a_referrer_as_in_objgraph():
    import weakref

    target = Orphan()
    ref = weakref.ref(target)
    assert objgraph.find_backref_chain(target, lambda o: o is ref) == [target]
    assert objgraph.find_ref_chain(ref, lambda o: o is target) == [ref]


def test_a_backref_chain_does_not_start_in_garbage():
    target = Orphan()
    keep = [target]
    with gc_disabled():
        garbage = {"target": target}
        garbage["self"] = garbage
        garbage_id = id(garbage)
        del garbage
        chain = objgraph.find_backref_chain(target, lambda o: isinstance(o, dict))
    assert all(id(o) != garbage_id for o in chain)
    del keep


KEPT = []


def test_garbage_does_not_change_a_chain_from_a_module():
    # find_backref_chain(obj, is_proper_module) skips objgraph's gc.collect(): no chain from a
    # module can pass through garbage.
    target = Orphan()
    KEPT.append(target)
    try:
        with gc_disabled():
            garbage = {"target": target}
            garbage["self"] = garbage
            del garbage
            chain = objgraph.find_backref_chain(target, objgraph.is_proper_module)
        assert chain[0] is sys.modules[__name__] and chain[-2] is KEPT and chain[-1] is target
    finally:
        KEPT.clear()
        gc.collect()


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: objgraph.count(dict), TypeError),
        (lambda: objgraph.by_type(Orphan), TypeError),
        (lambda: objgraph.at("0x10"), TypeError),
        (lambda: objgraph.find_ref_chain([], "not callable"), TypeError),
        (lambda: objgraph.find_backref_chain([], objgraph.is_proper_module, max_depth=-1),
         ValueError),
        (lambda: objgraph.find_backref_chain([], objgraph.is_proper_module, extra_ignore=[[]]),
         TypeError),
        (lambda: objgraph.get_new_ids(sortby="size", _state={}), ValueError),
    ],
)
def test_wrong_arguments_get_a_clear_error(call, error):
    with pytest.raises(error):
        call()


def test_a_predicate_that_raises_propagates():
    def boom(o):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        objgraph.find_backref_chain([], boom)
    with pytest.raises(RuntimeError, match="boom"):
        objgraph.find_ref_chain([], boom)


# ---------------------------------------------------------------------------------------------
# Self-perturbation: no call leaves a cycle behind or keeps an object alive
# ---------------------------------------------------------------------------------------------

HOLDER = {"sentinel": Sentinel()}


def _calls():
    sentinel = HOLDER["sentinel"]
    calls = {
        "count": lambda: objgraph.count("Sentinel"),
        "typestats": lambda: objgraph.typestats(),
        "typestats_filtered": lambda: objgraph.typestats(filter=lambda o: o is sentinel),
        "most_common_types": lambda: objgraph.most_common_types(),
        "show_most_common_types": lambda: objgraph.show_most_common_types(file=io.StringIO()),
        "growth": lambda: objgraph.growth(),
        "growth_peak_stats": lambda: objgraph.growth(peak_stats={}),
        "show_growth": lambda: objgraph.show_growth(file=io.StringIO()),
        "get_new_ids": lambda: objgraph.get_new_ids(file=io.StringIO()),
        "get_leaking_objects": lambda: objgraph.get_leaking_objects(),
        "get_leaking_objects_of": lambda: objgraph.get_leaking_objects([sentinel]),
        "by_type": lambda: objgraph.by_type("Sentinel"),
        "at": lambda: objgraph.at(id(sentinel)),
        "at_addrs": lambda: objgraph.at_addrs({id(sentinel)}),
        "find_ref_chain": lambda: objgraph.find_ref_chain(HOLDER, lambda o: o is sentinel),
        "find_backref_chain": lambda: objgraph.find_backref_chain(
            sentinel, objgraph.is_proper_module
        ),
        "find_backref_chain_collecting": lambda: objgraph.find_backref_chain(
            sentinel, lambda o: o is HOLDER
        ),
        "is_proper_module": lambda: objgraph.is_proper_module(sys.modules[__name__]),
    }
    calls["show_refs"] = lambda: objgraph.show_refs([sentinel], output=io.StringIO())
    calls["show_backrefs"] = lambda: objgraph.show_backrefs([sentinel], output=io.StringIO())
    calls["show_chain"] = lambda: objgraph.show_chain([HOLDER, sentinel], output=io.StringIO())
    return calls


@pytest.mark.parametrize("name", sorted(_calls()))
def test_a_call_creates_no_cycles_and_keeps_nothing_alive(name):
    call = _calls()[name]
    sentinel = HOLDER["sentinel"]
    call()  # warm one-time caches and state
    gc.collect()
    refcount = refcount_at(id(sentinel))
    with gc_disabled():
        call()
        assert gc.collect() == 0, f"{name} left cyclic garbage behind"
    assert refcount_at(id(sentinel)) == refcount, f"{name} kept a reference to an object"
