"""objgraph's ``find_backref_chain`` and ``is_proper_module``.

objgraph calls ``gc.get_referrers()`` once per object it visits, each call a walk of the whole
heap in Python; heaplens walks the collector's lists once per level of the search, in Rust.
"""

import sys
import types

from heaplens import _native

__all__ = ["find_backref_chain", "is_proper_module"]


def is_proper_module(obj):
    """Whether ``obj`` is a module that ``sys.modules`` knows under its name (objgraph's test,
    the usual ``predicate`` for :func:`find_backref_chain`).

    Example:
        >>> import heaplens, json
        >>> heaplens.is_proper_module(json), heaplens.is_proper_module({})
        (True, False)
    """
    return isinstance(obj, types.ModuleType) and sys.modules.get(
        getattr(obj, "__name__", None)
    ) is obj


def find_backref_chain(obj, predicate, max_depth=20, extra_ignore=()):
    """A shortest chain of references leading to ``obj`` from an object for which
    ``predicate`` returns true, as a list ``[start, ..., obj]`` (objgraph's call and result).
    Returns ``[obj]`` when no such object is within ``max_depth`` references. The chain never
    passes through the objects whose ids (``id(o)``) are in ``extra_ignore``.

    The search runs in Rust, one walk of the garbage collector's lists per level of depth;
    ``predicate`` is called on the candidates in breadth-first order, as objgraph calls it.
    Unlike objgraph, it does not run ``gc.collect()`` first.

    Example:
        >>> import heaplens
        >>> class Session:
        ...     pass
        >>> heaplens.SESSIONS_FOR_DOCTEST = [Session()]
        >>> chain = heaplens.find_backref_chain(heaplens.SESSIONS_FOR_DOCTEST[0],
        ...                                     heaplens.is_proper_module)
        >>> chain[0] is heaplens, type(chain[-1]).__name__
        (True, 'Session')
        >>> del heaplens.SESSIONS_FOR_DOCTEST
    """
    if not callable(predicate):
        raise TypeError(f"predicate must be callable, not {type(predicate).__name__}")
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0:
        raise ValueError(f"max_depth must be a non-negative int, not {max_depth!r}")
    ignore = list(extra_ignore)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in ignore):
        raise TypeError("extra_ignore holds object ids (id(obj))")
    ignore.append(id(extra_ignore))
    chain = _native.backref_chain(obj, predicate, max_depth, [i for i in ignore if i >= 0])
    return [obj] if chain is None else chain
