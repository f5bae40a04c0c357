"""Counting objects by type: ``census``, and objgraph's ``count``, ``typestats``,
``most_common_types``, ``show_most_common_types`` and ``by_type``.

Unlike objgraph, which sees only the objects the garbage collector tracks, these count every live
object by default (str, int, float, bytes and the dicts and tuples the collector untracks
included). Pass ``gc_only=True`` for objgraph's view, which is faster on very large heaps.
"""

import sys

from heaplens import _native

__all__ = [
    "by_type",
    "census",
    "count",
    "most_common_types",
    "show_most_common_types",
    "typestats",
]


def _check_gc_only(gc_only):
    if not isinstance(gc_only, bool):
        raise TypeError(f"gc_only must be True or False, not {type(gc_only).__name__}")


def _check_typename(typename, func):
    if isinstance(typename, type):
        module = typename.__module__
        qualname = typename.__qualname__
        return qualname if module == "builtins" else f"{module}.{qualname}"
    if not isinstance(typename, str):
        raise TypeError(
            f"{func}() needs a type name (str) or a type, not {type(typename).__name__}"
        )
    if not typename:
        raise ValueError(f"{func}() needs a non-empty type name")
    return typename


def census(gc_only=False, *, objects=None):
    """Counts and total shallow sizes of live objects, per type.

    Args:
        gc_only: count only the objects the garbage collector tracks (objgraph's view).
        objects: count these objects instead of walking the heap.

    Returns:
        A :class:`heaplens.Census`: index it by type name, iterate its rows, print it.

    Example:
        >>> import heaplens
        >>> c = heaplens.census()
        >>> c.count("dict") > 0 and c["dict"].size > 0
        True
    """
    _check_gc_only(gc_only)
    if objects is not None:
        return _native.census_of(list(objects))
    return _native.census(gc_only)


def _filtered_census(objects, filter, gc_only):
    if filter is not None and not callable(filter):
        raise TypeError(f"filter must be callable, not {type(filter).__name__}")
    if filter is None:
        return census(gc_only, objects=objects)
    if objects is None:
        objects = _native.all_objects(gc_only)
    return _native.census_of([o for o in objects if filter(o)])


def typestats(objects=None, shortnames=True, filter=None, *, gc_only=False):
    """The number of objects of each type, as a dict ``{type name: count}`` (objgraph's call).

    Args:
        objects: count these objects instead of walking the heap.
        shortnames: key by ``__name__`` (``"Order"``); with False, by ``module.__name__``
            (``"myapp.Order"``, ``"builtins.dict"``).
        filter: a function of one object; only objects for which it returns true are counted.
        gc_only: count only gc-tracked objects, as objgraph does.

    Example:
        >>> import heaplens
        >>> stats = heaplens.typestats()
        >>> stats["function"] > 0
        True
    """
    _check_gc_only(gc_only)
    result = {}
    for name, n, _ in _filtered_census(objects, filter, gc_only)._name_counts(bool(shortnames)):
        result[name] = result.get(name, 0) + n
    return result


def most_common_types(limit=10, objects=None, shortnames=True, filter=None, *, gc_only=False):
    """The most common types, as a list of ``(type name, count)`` pairs, largest first.

    ``limit=None`` returns every type.

    Example:
        >>> import heaplens
        >>> name, n = heaplens.most_common_types(limit=1)[0]
        >>> n > 1000
        True
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, not {limit!r}")
    stats = typestats(objects, shortnames=shortnames, filter=filter, gc_only=gc_only)
    rows = sorted(stats.items(), key=lambda kv: (-kv[1], kv[0]))
    return rows if limit is None else rows[:limit]


def show_most_common_types(
    limit=10, objects=None, shortnames=True, file=None, filter=None, *, gc_only=False
):
    """Prints the most common types as a table (objgraph's layout).

    Example:
        >>> import heaplens, io
        >>> out = io.StringIO()
        >>> heaplens.show_most_common_types(limit=3, file=out)
        >>> len(out.getvalue().splitlines())
        3
    """
    rows = most_common_types(limit, objects, shortnames=shortnames, filter=filter, gc_only=gc_only)
    if file is None:
        file = sys.stdout
    width = max((len(name) for name, _ in rows), default=0)
    for name, n in rows:
        file.write("%-*s %i\n" % (width, name, n))


def _raise_unknown(typename):
    known = _native.type_names()
    if typename in known:
        return
    import difflib

    close = difflib.get_close_matches(typename, sorted(known), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise _native.UnknownTypeError(f"no type named {typename!r} in this process{hint}")


def count(typename, objects=None, *, gc_only=False):
    """The number of live objects of a type.

    Args:
        typename: ``"dict"``, ``"Order"`` (every type with that ``__name__``),
            ``"myapp.Order"``, or the type itself.
        objects: count among these objects instead of the heap.
        gc_only: count only gc-tracked objects, as objgraph does.

    Raises:
        heaplens.UnknownTypeError: no type of that name exists in the process.

    Example:
        >>> import heaplens
        >>> class Point:
        ...     pass
        >>> points = [Point() for _ in range(3)]
        >>> heaplens.count("Point")
        3
    """
    name = _check_typename(typename, "count")
    _check_gc_only(gc_only)
    if objects is not None:
        return census(objects=objects).count(name)
    n = _native.census(gc_only).count(name)
    if n == 0:
        _raise_unknown(name)
    return n


def by_type(typename, objects=None, *, gc_only=False):
    """The live objects of a type, as a list (objgraph's call).

    Args:
        typename: ``"dict"``, ``"Order"``, ``"myapp.Order"``, or the type itself (then only
            instances of exactly that class are returned).
        objects: search among these objects instead of the heap.
        gc_only: search only gc-tracked objects, as objgraph does.

    Raises:
        heaplens.UnknownTypeError: no type of that name exists in the process.

    Example:
        >>> import heaplens
        >>> class Order:
        ...     pass
        >>> order = Order()
        >>> heaplens.by_type(Order) == [order]
        True
    """
    name = _check_typename(typename, "by_type")
    _check_gc_only(gc_only)
    if objects is not None:
        found = [o for o in objects if _native.type_matches(type(o), name)]
    else:
        found = _native.objects_of_type(name, gc_only)
        if not found:
            _raise_unknown(name)
    if isinstance(typename, type):
        found = [o for o in found if type(o) is typename]
    return found
