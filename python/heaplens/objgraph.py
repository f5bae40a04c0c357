"""objgraph's API, answered by heaplens: ``import heaplens.objgraph as objgraph``.

Every public function of objgraph 3.7 is here with its parameters, defaults, results and printed
tables, and counts what objgraph counts: the objects the garbage collector tracks, and the
references their ``tp_traverse`` reports (what ``gc.get_referents()`` shows). Code written for
objgraph keeps working after the import is switched, and gets most answers several times faster
(``bench/objgraph_bench.py`` times every call against objgraph's).

Why it is faster: objgraph builds a Python list of every tracked object (``gc.get_objects()``) and
runs Python code for each, and ``find_backref_chain`` calls ``gc.get_referrers()``, a walk of
every tracked object, once per object it visits. heaplens walks the collector's lists in Rust and
makes Python objects only for the answer: counts come from one walk, ``at()`` is a lookup during
one walk, a backward search finds the referrers of a whole level of the search in one walk,
``get_leaking_objects()`` marks every reference in one walk, and ``get_new_ids()`` keeps the
addresses it saw in Rust rather than in sets of Python ints.

Differences from objgraph, all deliberate:

- No state in mutable default arguments: ``growth()`` keeps its peaks, and ``get_new_ids()`` its
  state, in module-level objects, so their signatures say ``peak_stats=None`` and ``_state=None``
  where objgraph's say ``{}``. Passing your own dict works as in objgraph.
- Types with equal counts (``most_common_types``, ``growth``) are ordered by name; objgraph leaves
  them in the order the collector happens to list their objects. (``heaplens.growth()`` itself
  puts classes before builtins; this module keeps objgraph's largest-increase-first order.)
- Wrong arguments fail at once with a ``TypeError`` or ``ValueError`` (a type name that is not a
  str, a predicate that is not callable, a negative ``max_depth``, an ``extra_ignore`` entry that
  is an object rather than its ``id()``, an unknown ``sortby``) where objgraph fails later or
  silently ignores them.
- ``find_ref_chain()`` does not run ``gc.collect()`` first: everything a live object refers to is
  alive, so collecting cannot change the chain. ``find_backref_chain()`` skips the collection
  when the predicate is ``is_proper_module``, for the same reason (a module in ``sys.modules``
  is alive, so no chain from one passes through garbage); with any other predicate it collects,
  as objgraph does. ``growth()``, ``get_new_ids()`` and ``get_leaking_objects()`` collect, as
  objgraph does.
- ``get_new_ids()`` returns the same dict every call, as objgraph does, but puts new sets in
  it rather than refilling the old ones. ``get_leaking_objects(objects)`` takes any iterable
  (objgraph goes through ``objects`` twice, so a generator gives it nothing).
- ``show_refs()``, ``show_backrefs()`` and ``show_chain()`` draw with heaplens' own renderer:
  PNG and SVG need no Graphviz (its ``dot`` draws the other formats, as in objgraph). They print
  and return what objgraph's do (``Graph written to ....dot (N nodes)``, ``Image generated as
  X.png``, None); ``heaplens.show_refs()`` and the others return the file's name instead.
- An object whose reference count is 0 is never handed out. On CPython 3.12 the ``_asyncio``
  module reports the dead future iterators of its free list to ``gc.get_referents()``; objgraph
  (``get_leaking_objects()``, a reference search that reaches that module) takes them as live
  objects, and dropping them again frees them twice: the free list becomes a cycle and the next
  garbage collection never ends. heaplens.objgraph leaves them out.

Example:
    >>> import heaplens.objgraph as objgraph
    >>> class BigFatObject:
    ...     pass
    >>> def computate_something(_cache={}):
    ...     _cache[42] = dict(foo=BigFatObject(), bar=BigFatObject())
    >>> computate_something()
    >>> objgraph.count('BigFatObject')
    2
    >>> chain = objgraph.find_backref_chain(objgraph.by_type('BigFatObject')[0],
    ...                                     lambda x: x is computate_something)
    >>> [type(x).__name__ for x in chain]
    ['function', 'tuple', 'dict', 'dict', 'BigFatObject']
"""

import collections
import gc
import operator
import sys

import heaplens
from heaplens import _native, _pictures

__all__ = [
    "at",
    "at_addrs",
    "by_type",
    "count",
    "find_backref_chain",
    "find_ref_chain",
    "get_leaking_objects",
    "get_new_ids",
    "growth",
    "is_proper_module",
    "most_common_types",
    "show_backrefs",
    "show_chain",
    "show_growth",
    "show_most_common_types",
    "show_refs",
    "typestats",
]

is_proper_module = heaplens.is_proper_module

# growth()'s peaks, where objgraph keeps them in a mutable default argument. Its own tracker, so
# that heaplens.growth() and this module's growth() do not take each other's peaks.
_peaks = heaplens.Tracker(gc_only=True, collect=True)

# get_new_ids()'s state when no _state is passed (objgraph: a mutable default argument).
_new_ids_state = {}

_SORT_COLUMNS = {"old": 1, "current": 2, "new": 3, "deltas": 4}


def _check_typename(typename, func):
    if not isinstance(typename, str):
        raise TypeError(
            f"{func}() needs a type name such as 'dict' or 'myapp.Order' (a str), "
            f"not {type(typename).__name__}"
        )


def _long_typename(obj):
    # objgraph's long name: type(obj).__module__ + '.' + type(obj).__name__.
    objtype = type(obj)
    module = getattr(objtype, "__module__", None)
    return f"{module}.{objtype.__name__}" if module else objtype.__name__


def _check_search(predicate, max_depth):
    if not callable(predicate):
        raise TypeError(f"predicate must be callable, not {type(predicate).__name__}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int):
        raise TypeError(f"max_depth must be an int, not {type(max_depth).__name__}")
    if max_depth < 0:
        raise ValueError(f"max_depth must not be negative, not {max_depth}")


def _ignored(extra_ignore):
    """The addresses a search must not go through: the ids in ``extra_ignore``, and the list
    itself (objgraph ignores both)."""
    ids = list(extra_ignore)
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(
                f"extra_ignore holds object ids (id(obj)), not {type(i).__name__} objects"
            )
    ids.append(id(extra_ignore))
    return [i for i in ids if i >= 0]


def count(typename, objects=None):
    """The number of objects the garbage collector tracks whose type is named ``typename``:
    ``type(obj).__name__`` (``'MyClass'``), or with a dot ``module.__name__``
    (``'mymodule.MyClass'``). Counts among ``objects`` instead when given.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class CountedThing:
        ...     pass
        >>> things = [CountedThing(), CountedThing()]
        >>> objgraph.count('CountedThing'), objgraph.count('heaplens.objgraph.CountedThing')
        (2, 2)
        >>> objgraph.count('CountedThing', [things[0], 42])
        1
    """
    _check_typename(typename, "count")
    return typestats(objects, shortnames="." not in typename).get(typename, 0)


def typestats(objects=None, shortnames=True, filter=None):
    """The number of tracked objects of each type, as ``{type name: count}``; names are
    ``__name__`` (types of one name in different modules add up), or ``module.__name__`` with
    ``shortnames=False``. Counts ``objects`` instead when given; with ``filter``, only the
    objects for which ``filter(obj)`` is true.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> objgraph.typestats()['function'] > 100
        True
        >>> objgraph.typestats([[], [], {}], shortnames=False)
        {'builtins.list': 2, 'builtins.dict': 1}
    """
    return heaplens.typestats(objects, shortnames, filter or None, gc_only=True)


def most_common_types(limit=10, objects=None, shortnames=True, filter=None):
    """The ``limit`` most common types (all of them when ``limit`` is None or 0), as a list of
    ``(type name, count)``, most frequent first; arguments as for :func:`typestats`.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> objgraph.most_common_types(limit=2, objects=[[], [], {}, 'x'])
        [('list', 2), ('dict', 1)]
    """
    rows = heaplens.most_common_types(None, objects, shortnames, filter or None, gc_only=True)
    return rows[:limit] if limit else rows


def show_most_common_types(limit=10, objects=None, shortnames=True, file=None, filter=None):
    """Prints :func:`most_common_types` as objgraph's table, to ``file`` (standard output by
    default).

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> objgraph.show_most_common_types(objects=[[], [], {}, {}, {}, (1, [])])
        dict  3
        list  2
        tuple 1
    """
    rows = most_common_types(limit, objects, shortnames, filter)
    if file is None:
        file = sys.stdout
    width = max((len(name) for name, _ in rows), default=0)
    for name, n in rows:
        file.write("%-*s %i\n" % (width, name, n))


def growth(limit=10, peak_stats=None, shortnames=True, filter=None):
    """The types whose count went past its peak since the last call, after a ``gc.collect()``:
    ``[(type name, count, increase), ...]``, largest increase first, at most ``limit`` of them
    (all when ``limit`` is None or 0). Peaks are kept by this module, or in ``peak_stats`` (a
    dict you own) when you pass one. The first call reports every type.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class LeakyGrowth:
        ...     pass
        >>> peaks = {}
        >>> _ = objgraph.growth(peak_stats=peaks)
        >>> leaked = [LeakyGrowth() for _ in range(5)]
        >>> [row for row in objgraph.growth(None, peaks) if row[0] == 'LeakyGrowth']
        [('LeakyGrowth', 5, 5)]
    """
    if peak_stats is None:
        rows = _peaks.growth(None, shortnames, filter or None)
    else:
        rows = heaplens.growth(
            None, peak_stats, shortnames, filter or None, gc_only=True, collect=True
        )
    # objgraph's order (heaplens.growth puts classes before builtins).
    rows.sort(key=lambda row: (-row[2], row[0]))
    return rows[:limit] if limit else rows


def show_growth(limit=10, peak_stats=None, shortnames=True, file=None, filter=None):
    """Prints :func:`growth` as objgraph's table (name, count, increase) to ``file`` (standard
    output by default); prints nothing when nothing grew.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class ShownGrowth:
        ...     pass
        >>> only_mine = lambda obj: type(obj) is ShownGrowth
        >>> peaks = {}
        >>> objgraph.show_growth(peak_stats=peaks, filter=only_mine)
        >>> kept = [ShownGrowth() for _ in range(3)]
        >>> objgraph.show_growth(peak_stats=peaks, filter=only_mine)
        ShownGrowth        3        +3
    """
    rows = growth(limit, peak_stats, shortnames, filter)
    if rows:
        (sys.stdout if file is None else file).write(_native.format_growth(rows))


def get_new_ids(
    skip_update=False, limit=10, sortby="deltas", shortnames=None, file=None, _state=None
):
    """The objects created since the last call, after a ``gc.collect()``: a dict (a
    ``defaultdict(set)``, the same one every call) mapping type names to the sets of ``id()``
    of their new objects; :func:`at_addrs` turns a set back into objects. Prints objgraph's
    table of old, current and new counts per type, ``limit`` rows (0 prints nothing, None
    everything) sorted by ``sortby``: ``'old'``, ``'current'``, ``'new'`` or ``'deltas'``.

    ``skip_update=True`` returns the previous result without looking at the heap.
    ``shortnames`` (``__name__`` or ``module.__name__``) is remembered from the previous call
    when None (True at first). State is kept by this module, or in ``_state`` (a dict you own).

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class Fresh:
        ...     pass
        >>> state = {}
        >>> _ = objgraph.get_new_ids(limit=0, _state=state)
        >>> fresh = [Fresh(), Fresh()]
        >>> new_ids = objgraph.get_new_ids(limit=0, _state=state)
        >>> new_ids['Fresh'] == {id(f) for f in fresh}
        True
        >>> objgraph.at_addrs(new_ids['Fresh']) in (fresh, fresh[::-1])
        True
        >>> objgraph.get_new_ids(skip_update=True, _state=state) is new_ids
        True
    """
    state = _new_ids_state if _state is None else _state
    if not state:
        state.update(ids=_native.NewIds(), new=collections.defaultdict(set), shortnames=True)
    new_ids = state["new"]
    if skip_update:
        return new_ids
    if sortby not in _SORT_COLUMNS:
        choices = ", ".join(map(repr, _SORT_COLUMNS))
        raise ValueError(f"sortby must be one of {choices}, not {sortby!r}")
    if shortnames is None:
        shortnames = state["shortnames"]
    else:
        state["shortnames"] = shortnames
    gc.collect()
    # Nothing of ours may be alive during the look but not after it: a new object could take
    # its address and not be seen as new.
    found = state["ids"].update(bool(shortnames))
    new_ids.clear()
    rows = []
    for name, old, current, ids in found:
        new_ids[name] = ids
        rows.append((name, old, current, len(ids), current - old))
    rows.sort(key=operator.itemgetter(_SORT_COLUMNS[sortby], 0), reverse=True)
    if limit is not None:
        rows = rows[:limit]
    if rows:
        width = max(len(row[0]) for row in rows)
        rule = "=" * (width + 13 * 4)
        print(rule, file=file)
        print(
            "%-*s%13s%13s%13s%13s"
            % (width, "Type", "Old_ids", "Current_ids", "New_ids", "Count_Deltas"),
            file=file,
        )
        print(rule, file=file)
        for row in rows:
            print("%-*s%13d%13d%+13d%+13d" % (width, *row), file=file)
        print(rule, file=file)
    return new_ids


def get_leaking_objects(objects=None):
    """The tracked objects no other tracked object refers to, after a ``gc.collect()``; or,
    given ``objects``, those of them no tracked object (other than ``objects`` itself) refers
    to. These are held from C code, by a running frame, or leaked by a reference-counting bug.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> cache = {'key': [1, 2]}
        >>> objgraph.get_leaking_objects([cache['key'], [3, 4]])
        [[3, 4]]
        >>> len(objgraph.get_leaking_objects()) > 0
        True
    """
    gc.collect()
    if objects is None:
        return _native.leaking_objects()
    candidates = list(objects)
    return _native.leaking_objects(candidates, [id(objects), id(candidates)])


def by_type(typename, objects=None):
    """The tracked objects whose type is named ``typename`` (as for :func:`count`), as a list;
    searches ``objects`` instead when given.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class Basket:
        ...     pass
        >>> basket = Basket()
        >>> objgraph.by_type('Basket') == [basket]
        True
        >>> objgraph.by_type('heaplens.objgraph.Basket') == [basket]
        True
    """
    _check_typename(typename, "by_type")
    if objects is None:
        # The walk finds every type this name could mean; the filter keeps objgraph's meaning.
        objects = _native.objects_of_type(typename, True)
    if "." in typename:
        return [o for o in objects if _long_typename(o) == typename]
    return [o for o in objects if type(o).__name__ == typename]


def at(addr):
    """The tracked object whose ``id()`` is ``addr``, or None: the reverse of ``id(obj)``.
    Objects the collector does not track (int, str) are not found, as in objgraph.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> obj = [1, 2]
        >>> objgraph.at(id(obj)) is obj
        True
        >>> objgraph.at(id(None)) is None
        True
    """
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(
            f"at() needs an address (an int such as id(obj)), not {type(addr).__name__}"
        )
    if addr < 0:
        return None
    return _native.objects_at([addr], gc_only=True).get(addr)


def at_addrs(address_set):
    """The tracked objects whose ``id()`` is in ``address_set`` (ints, such as a set from
    :func:`get_new_ids`), as a list in no particular order.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> a, b = [0], [1]
        >>> found = objgraph.at_addrs({id(a), id(b)})
        >>> len(found), any(x is a for x in found), any(x is b for x in found)
        (2, True, True)
    """
    return list(_native.objects_at(list(address_set), gc_only=True).values())


def find_ref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """A shortest chain of references from ``obj`` to an object for which ``predicate`` is
    true, as ``[obj, ..., match]``; ``[obj]`` when there is none within ``max_depth``
    references. The chain never goes through the objects whose ids are in ``extra_ignore``.

    Example:
        >>> import heaplens.objgraph as objgraph
        >>> class Unpicklable:
        ...     pass
        >>> my_object = dict(foo=dict(unrelated='things'),
        ...                  bar=[dict(nesting='fun'), dict(boobytrap=Unpicklable())])
        >>> chain = objgraph.find_ref_chain(my_object, lambda x: isinstance(x, Unpicklable))
        >>> [type(x).__name__ for x in chain]
        ['dict', 'list', 'dict', 'Unpicklable']
        >>> objgraph.find_ref_chain(my_object, lambda x: False, max_depth=2) == [my_object]
        True
    """
    _check_search(predicate, max_depth)
    chain = _native.ref_chain(obj, predicate, max_depth, _ignored(extra_ignore))
    return [obj] if chain is None else chain


def _only_live_objects_match(predicate):
    real = sys.modules.get("objgraph")
    return predicate is is_proper_module or (
        real is not None and predicate is getattr(real, "is_proper_module", None)
    )


def find_backref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """A shortest chain of references to ``obj`` from an object for which ``predicate`` is
    true, as ``[match, ..., obj]``; ``[obj]`` when there is none within ``max_depth``
    references. The chain never goes through the objects whose ids are in ``extra_ignore``.

    Example:
        >>> import heaplens, heaplens.objgraph as objgraph
        >>> class Canary:
        ...     pass
        >>> heaplens.CANARIES_FOR_DOCTEST = [Canary()]
        >>> chain = objgraph.find_backref_chain(objgraph.by_type('Canary')[0],
        ...                                     objgraph.is_proper_module)
        >>> chain[0] is heaplens, [type(x).__name__ for x in chain[1:]]
        (True, ['dict', 'list', 'Canary'])
        >>> del heaplens.CANARIES_FOR_DOCTEST
    """
    _check_search(predicate, max_depth)
    if not _only_live_objects_match(predicate):
        gc.collect()
    chain = _native.backref_chain(obj, predicate, max_depth, _ignored(extra_ignore))
    return [obj] if chain is None else chain


def show_backrefs(
    objs,
    max_depth=3,
    extra_ignore=(),
    filter=None,
    too_many=10,
    highlight=None,
    filename=None,
    extra_info=None,
    refcounts=False,
    shortnames=True,
    output=None,
    extra_node_attrs=None,
):
    """A picture of what refers to ``objs`` (an object or a list of them), directly and
    indirectly: see :func:`heaplens.show_backrefs`, which takes objgraph's arguments.

    Example:
        >>> import io, heaplens.objgraph as objgraph
        >>> x = []
        >>> y = [x, [x], dict(x=x)]
        >>> out = io.StringIO()
        >>> objgraph.show_backrefs([x], output=out)
        >>> out.getvalue().startswith('digraph')
        True
    """
    return _pictures._draw(
        objs, True, max_depth, extra_ignore, filter, too_many, highlight, filename,
        extra_info, refcounts, shortnames, output, extra_node_attrs, "heaplens",
        like_objgraph=True,
    )


def show_refs(
    objs,
    max_depth=3,
    extra_ignore=(),
    filter=None,
    too_many=10,
    highlight=None,
    filename=None,
    extra_info=None,
    refcounts=False,
    shortnames=True,
    output=None,
    extra_node_attrs=None,
):
    """A picture of what ``objs`` (an object or a list of them) refer to, directly and
    indirectly: see :func:`heaplens.show_refs`, which takes objgraph's arguments.

    Example:
        >>> import io, heaplens.objgraph as objgraph
        >>> x = []
        >>> y = [x, [x], dict(x=x)]
        >>> out = io.StringIO()
        >>> objgraph.show_refs([y], output=out)
        >>> out.getvalue().startswith('digraph')
        True
    """
    return _pictures._draw(
        objs, False, max_depth, extra_ignore, filter, too_many, highlight, filename,
        extra_info, refcounts, shortnames, output, extra_node_attrs, "heaplens",
        like_objgraph=True,
    )


def show_chain(*chains, **kw):
    """A picture of one or more chains from :func:`find_backref_chain` (or, with
    ``backrefs=False``, :func:`find_ref_chain`): see :func:`heaplens.show_chain`.

    Example:
        >>> import io, heaplens.objgraph as objgraph
        >>> my_object = dict(bar=[dict(boobytrap=object())])
        >>> chain = objgraph.find_ref_chain(my_object, lambda x: type(x) is object)
        >>> out = io.StringIO()
        >>> objgraph.show_chain(chain, backrefs=False, output=out)
        >>> out.getvalue().count(' -> ')
        3
    """
    return _pictures._chain(chains, like_objgraph=True, **kw)
