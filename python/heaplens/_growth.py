"""objgraph's ``growth`` and ``show_growth``: which types have more objects than ever before.

State lives in a :class:`Tracker`; the module-level functions use a default one per view (or, for
objgraph compatibility, the ``peak_stats`` dict you pass).

Like objgraph, growth counts the objects the garbage collector tracks by default: that is cheap
enough to call after every request of a big server. ``gc_only=False`` counts every object, which
also shows leaks of str, int, bytes and of the dicts and tuples the collector does not track.
"""

import gc
import sys

from heaplens import _native
from heaplens._census import _filtered_census

__all__ = ["Tracker", "growth", "show_growth"]


def _counts(shortnames, filter, gc_only, collect):
    """``[(name, count, generic), ...]``: typestats' counts, and whether each name is only of
    builtins (ranked after the classes, whatever their growth)."""
    if collect:
        gc.collect()
    counts, generic = {}, {}
    # heaplens' own objects (a snapshot, a tracker, a census the caller keeps) are not growth.
    census = _filtered_census(None, filter, gc_only)
    for name, n, g in census._name_counts(bool(shortnames), own=False):
        counts[name] = counts.get(name, 0) + n
        generic[name] = generic.get(name, True) and g
    return [(name, n, generic[name]) for name, n in counts.items()]


def _check_limit(limit):
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, not {limit!r}")


class Tracker:
    """Remembers the peak count of each type; each :meth:`growth` call reports the types that
    went past their peak since the previous call.

    Args:
        gc_only: count only gc-tracked objects (objgraph's view, the default); False counts
            every object (str, int and untracked dicts and tuples too) at several times the cost.
        collect: run a full ``gc.collect()`` before counting, as objgraph does. Off by default:
            on a large heap the collection costs more than the count, and garbage that comes and
            goes does not set new peaks anyway.

    Example:
        >>> import heaplens
        >>> class Leaky:
        ...     pass
        >>> tracker = heaplens.Tracker()
        >>> _ = tracker.growth()
        >>> leaked = [Leaky() for _ in range(10)]
        >>> ("Leaky", 10, 10) in tracker.growth(limit=None)
        True
        >>> [row for row in tracker.growth(limit=None) if row[0] == "Leaky"]
        []
    """

    def __init__(self, *, gc_only=True, collect=False):
        self.gc_only = bool(gc_only)
        self.collect = bool(collect)
        self._peaks = _native.PeakTracker()

    @property
    def peak_stats(self):
        """The peak count of every type seen so far, as a dict."""
        return self._peaks.peaks()

    def growth(self, limit=10, shortnames=True, filter=None):
        """The types whose count exceeds their peak: ``[(name, count, delta), ...]``, the
        classes first (the type a developer would name as the leak), then builtins, each largest
        growth first; ``limit=None`` returns them all."""
        _check_limit(limit)
        rows = self._peaks.update(_counts(shortnames, filter, self.gc_only, self.collect))
        return rows if limit is None else rows[:limit]

    def show_growth(self, limit=10, shortnames=True, file=None, filter=None):
        """Prints :meth:`growth` as objgraph's table."""
        rows = self.growth(limit, shortnames, filter)
        if rows:
            (file or sys.stdout).write(_native.format_growth(rows))

    def reset(self):
        """Forgets every peak."""
        self._peaks = _native.PeakTracker()


# One default tracker per view: peaks of gc-tracked counts and of full counts do not compare.
_default_trackers = {True: Tracker(gc_only=True), False: Tracker(gc_only=False)}


def growth(limit=10, peak_stats=None, shortnames=True, filter=None, *, gc_only=True, collect=False):
    """objgraph's ``growth()``: the types with more objects than at the previous call.

    Returns ``[(name, count, delta), ...]``: the classes first, then the builtin types (a leaking
    class comes before the ``dict`` and ``str`` that grow as fast inside it), each largest growth
    first. Peaks are kept by a default
    :class:`Tracker`, or in ``peak_stats`` (a dict you own) when you pass one. The first call
    reports every type. ``gc_only=False`` counts every object instead of the gc-tracked ones
    (see :class:`Tracker`).

    Example:
        >>> import heaplens
        >>> class CachedCart:
        ...     pass
        >>> peaks = {}
        >>> _ = heaplens.growth(peak_stats=peaks)
        >>> cache = [CachedCart() for _ in range(500)]
        >>> ("CachedCart", 500, 500) in heaplens.growth(limit=None, peak_stats=peaks)
        True
    """
    _check_limit(limit)
    if not isinstance(gc_only, bool):
        raise TypeError(f"gc_only must be True or False, not {type(gc_only).__name__}")
    if peak_stats is None:
        tracker = _default_trackers[gc_only]
        if collect:
            gc.collect()
        return tracker.growth(limit, shortnames, filter)
    if not isinstance(peak_stats, dict):
        raise TypeError(f"peak_stats must be a dict, not {type(peak_stats).__name__}")
    peaks = _native.PeakTracker(peak_stats)
    rows = peaks.update(_counts(shortnames, filter, gc_only, collect))
    peak_stats.update(peaks.peaks())
    return rows if limit is None else rows[:limit]


def show_growth(
    limit=10, peak_stats=None, shortnames=True, file=None, filter=None, *, gc_only=True, collect=False
):
    """Prints :func:`growth` as objgraph's table: name, count, increase.

    Example:
        >>> import heaplens, io
        >>> out = io.StringIO()
        >>> heaplens.show_growth(peak_stats={}, limit=2, file=out)
        >>> len(out.getvalue().splitlines())
        2
    """
    rows = growth(limit, peak_stats, shortnames, filter, gc_only=gc_only, collect=collect)
    if rows:
        (file or sys.stdout).write(_native.format_growth(rows))
