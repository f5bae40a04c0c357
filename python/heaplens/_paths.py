"""objgraph's ``find_backref_chain`` and ``is_proper_module``, answered from one snapshot.

objgraph walks ``gc.get_referrers()`` object by object, which is slow on big heaps and misses
referrers the collector does not track; heaplens searches the snapshot's graph and resolves only
the candidates to live objects.
"""

import sys
import types

from heaplens import _native
from heaplens._snapshot import snapshot

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
    Returns ``[obj]`` when no such object is within ``max_depth`` references. Objects in
    ``extra_ignore`` are not followed.

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
    if not isinstance(max_depth, int) or max_depth < 0:
        raise ValueError(f"max_depth must be a non-negative int, not {max_depth!r}")
    snap = snapshot()
    candidates = snap._backref_search(obj, max_depth, [id(o) for o in extra_ignore])
    del snap
    live = _native.objects_at([address for address, _ in candidates])
    live[id(obj)] = obj
    for position, (address, _) in enumerate(candidates):
        found = live.get(address)
        if found is None or not predicate(found):
            continue
        chain = []
        while position != -1:
            link = live.get(candidates[position][0])
            if link is None:
                break
            chain.append(link)
            position = candidates[position][1]
        else:
            return chain
    return [obj]
