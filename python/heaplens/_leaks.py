"""Leak checks: ``heaplens.no_leaks`` runs code, compares the heap, and raises
:class:`heaplens.LeakError` naming what was left behind and the path that keeps it alive.

It is the origin article's ``memory_leak`` decorator done right: the code is called ``warmup``
times first (caches may fill legitimately), then ``runs`` more times with a census after each
call; a type leaks when its count grows on *every* call, so a one-off allocation (a lazily
built cache, an interned name) is not reported. Every object is counted, not only what the
garbage collector tracks, so leaked plain dicts and strings are caught too. The explanation
comes from two snapshots around the runs: for each leaking type, the retaining path of one of
its new objects, from a module global, a class attribute, a closure, or the frame of a running
thread. When the garbage collector is disabled, uncollected reference cycles are the leak and
are reported as such; when it is enabled, it is run before each count so that garbage waiting to
be collected is not mistaken for a leak.

The check keeps no reference to the code's objects: snapshots hold none, and the error carries
text and numbers only.
"""

import functools
import gc
import inspect
import tracemalloc
from typing import NamedTuple

from heaplens import _native
from heaplens._snapshot import snapshot

__all__ = ["Leak", "LeakCheck", "no_leaks"]

#: Frames tracemalloc keeps per allocation when a check starts it: enough for the line that
#: allocates and the calls that led there.
_TRACE_FRAMES = 10


class Leak(NamedTuple):
    """One leaking type, as :attr:`LeakError.leaks` lists it."""

    #: The type's name (``"dict"``, ``"myapp.Session"``).
    type: str
    #: How many more objects of the type each call left behind, on average.
    per_call: float
    #: How many in all, over the checked calls.
    total: int
    #: The retaining path of one of them (``module app -> .__dict__['CACHE'] -> ...``), or None
    #: when no new object of the type could be traced.
    path: str | None
    #: Where one of them was allocated, oldest call first (``"app/models.py:12: ..."``), with
    #: ``trace_alloc=True`` or while ``tracemalloc`` traces; empty otherwise.
    allocated_at: tuple = ()


def _collect(young=False):
    # With the collector off, uncollected cycles are the leak: leave them for the count.
    if gc.isenabled():
        # A young collection frees the cycles a call just made at a fraction of a full one's
        # cost; what it misses (cycles promoted during the call) can only make a type look
        # steady, and the full check that follows frees them.
        gc.collect(1) if young else gc.collect()


def _type_name(t):
    if isinstance(t, str):
        if not t:
            raise ValueError("no_leaks() needs non-empty type names")
        return t
    if isinstance(t, type):
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    raise TypeError(f"no_leaks() takes types or type names, not {type(t).__name__}")


def _matches(name, wanted):
    """Whether the census row `name` is the type `wanted` names (`Order` or `app.Order`)."""
    return name == wanted or name.rsplit(".", 1)[-1] == wanted


def _is_code(obj):
    return callable(obj) and not isinstance(obj, (type, str))


class LeakCheck:
    """A configured leak check: a decorator (``@check``) and a context manager
    (``with check:``). Made by :func:`no_leaks`."""

    def __init__(self, *types, warmup=1, runs=3, picture=None, ignore=(), trace_alloc=False):
        self.types = tuple(_type_name(t) for t in types)
        self.ignore = _patterns(ignore)
        self.trace_alloc = bool(trace_alloc)
        if not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be a non-negative int, not {warmup!r}")
        if not isinstance(runs, int) or runs < 1:
            raise ValueError(f"runs must be a positive int, not {runs!r}")
        self.warmup = warmup
        self.runs = runs
        self.picture = picture
        #: The leaks found by the last check (empty when it passed).
        self.leaks = []
        self._before = None
        #: Called before each call of a decorated function: the pytest plugin gives each re-run
        #: of a test what pytest gives a test (empty log capture), as its one run would have.
        self._before_each_call = None

    # -- the decorator ---------------------------------------------------------------------------

    def __call__(self, func):
        if not _is_code(func):
            raise TypeError(f"no_leaks() decorates functions, not {type(func).__name__}")
        if inspect.iscoroutinefunction(func):
            raise TypeError("no_leaks() checks plain functions; wrap a coroutine in asyncio.run")

        @functools.wraps(func)
        def checked(*args, **kwargs):
            __tracebackhide__ = True  # pytest: the failure is the leak, not these frames
            result = None
            prepare = self._before_each_call or (lambda: None)
            for _ in range(self.warmup):
                prepare()
                result = func(*args, **kwargs)

            def call():
                nonlocal result
                prepare()
                result = func(*args, **kwargs)

            self._check(call, self.runs, self._describe(func))
            return result

        return checked

    # -- the context manager ---------------------------------------------------------------------

    def __enter__(self):
        _collect()
        first = snapshot()
        self._before = (first, _native.SteadyGrowth(_native.census(False)))
        return self

    def __exit__(self, exc_type, exc, tb):
        __tracebackhide__ = True
        (first, growth), self._before = self._before, None
        if exc_type is not None:
            return False  # the block failed: its exception matters more than a leak
        _collect()
        growth.record(_native.census(False))
        self._report(first, growth.steady(), 1, "the block")
        return False

    # -- the check -------------------------------------------------------------------------------

    def _describe(self, func):
        name = getattr(func, "__qualname__", None) or repr(func)
        return f"{name}()"

    def _check(self, call, runs, what):
        __tracebackhide__ = True
        # First with cheap counts: most code does not leak, and a check of clean code should
        # cost little. Only when something may have leaked are the calls made again, counted
        # in full after each, between two snapshots, to find what holds the growth.
        if not self._may_leak(call, runs):
            self.leaks = []
            return
        # Where the leaked objects come from: tracemalloc records the calls that allocate them
        # (started here for the counted calls when asked, and stopped once reported).
        tracing = self.trace_alloc and not tracemalloc.is_tracing()
        if tracing:
            tracemalloc.start(_TRACE_FRAMES)
        try:
            _collect()
            first = snapshot()
            self._report(first, self._steady(call, runs), runs, what)
        finally:
            if tracing:
                tracemalloc.stop()

    def _may_leak(self, call, runs):
        """Whether `runs` calls may have leaked: a gc-tracked type grew on every one (counted
        after each, a walk of the collector's lists only), or some type grew by at least one
        object per call in all (counted in full before and after)."""
        _collect()
        whole = _native.census(False)
        tracked = _native.SteadyGrowth(_native.census(True))
        for _ in range(runs):
            call()
            _collect(young=True)
            tracked.record(_native.census(True))
        _collect()
        grown = [
            (name, delta)
            for name, _, delta, _ in _native.census(False).diff(whole)
            if delta >= runs
        ]
        return bool(self._wanted(tracked.steady()) or self._wanted(grown))

    def _steady(self, call, runs):
        """The types that grew on every one of `runs` calls, with their growth."""
        # Between censuses the check holds two native objects and no per-type Python object,
        # so its own bookkeeping never shows up in the counts it compares. The baseline is a
        # census like the later ones, not a snapshot's: a snapshot also sees its own call's
        # temporaries on the stack (3.14+ shows a running frame's value stack).
        _collect()
        growth = _native.SteadyGrowth(_native.census(False))
        for _ in range(runs):
            call()
            _collect()
            growth.record(_native.census(False))
        return growth.steady()

    def _wanted(self, steady):
        """The steady types this check looks at: the ones it was given, or all."""
        return {
            name: total
            for name, total in steady
            if not self.types or any(_matches(name, t) for t in self.types)
        }

    def _report(self, first, steady, runs, what):
        __tracebackhide__ = True
        wanted = self._wanted(steady)
        del steady
        if not wanted:
            self.leaks = []
            return
        last = snapshot()
        diff = last.diff(first, min_objects=1, min_size=0, limit=1000, ignore=self.ignore)
        del first
        # A type that grew on every call leaks only where the comparison finds its growth held,
        # at least half of it (churn in a container that did not grow, a cache filling up to its
        # bound, heaplens' own objects and types, and what the collector will free are not; a
        # new object at the address of a freed one of its type looks old to the comparison, so
        # not all of it); its ranking puts the type a developer would name first.
        held = _held_types(diff)
        ranked = [
            name
            for name, *_ in diff.types
            if name in wanted and held.get(name, 0) * 2 >= max(wanted[name], 1)
        ]
        self.leaks = [
            Leak(n, wanted[n] / runs, wanted[n], _path_of(last, diff, n), _allocated_at(diff, n))
            for n in ranked
        ]
        if not self.leaks:
            del diff, last
            return
        picture_note = ""
        if self.picture is not None:
            picture_note = _draw(last, diff, self.leaks[0].type, self.picture)
        del diff, last
        raise _error(self.leaks, what, runs, self.warmup, picture_note)


def _allocated_at(diff, name):
    """Where a new object of type `name` was allocated: the traceback of the sample of the first
    suspect whose entries are of that type (a suspect's sample is one of its entries)."""
    for s in diff.suspects:
        if s.entry_type == name and s.allocated_at:
            return tuple(s.allocated_at)
    return ()


def _patterns(ignore):
    """`ignore` as a tuple of patterns: one pattern, or an iterable of them; a class stands for
    its qualified name."""
    if isinstance(ignore, (str, type)):
        ignore = (ignore,)
    try:
        items = tuple(ignore)
    except TypeError:
        raise TypeError(
            f"ignore takes type or place names (or classes), not {type(ignore).__name__}"
        ) from None
    patterns = []
    for item in items:
        if isinstance(item, type):
            patterns.append(_type_name(item))
        elif isinstance(item, str):
            patterns.append(item)
        else:
            raise TypeError(
                f"ignore takes type or place names (or classes), not {type(item).__name__}"
            )
    return tuple(patterns)


def _held_types(diff):
    """How many new objects of each type the comparison's suspects hold. Objects held only
    from outside the heap are left out: during a check those are the arguments of calls in
    progress (the test runner's own), not what the code under test keeps."""
    held = {}
    for s in diff.suspects:
        if s.kind == "roots":
            continue
        for name, count, _ in s.types:
            held[name] = held.get(name, 0) + count
    return held


def _path_of(snap, diff, name):
    """The retaining path of one new object of type `name`, from the suspect that holds the most
    of them: its sample entry when it collects the type, else the path of its container."""
    holding = [
        (count, -i, s)
        for i, s in enumerate(diff.suspects)
        for t, count, _ in s.types
        if t == name
    ]
    if not holding:
        return None
    s = max(holding, key=lambda h: h[:2])[2]
    if s.kind == "garbage":
        return f"{name} in uncollected reference cycles (the garbage collector is off)"
    if s.entry_type == name:
        path = snap.path_to(s.sample)
        if path is not None:
            return str(path)
    if s.holder_path is not None:
        return f"{s.holder_path} -> ... -> {name}"
    return None


def _draw(snap, diff, name, filename):
    """Draws the retaining path of the first leaking type; returns a note for the message."""
    suspects = [s for s in diff.suspects if s.entry_type == name]
    if not suspects:
        return ""
    from heaplens import _pictures

    path = snap.path_to(suspects[0].sample)
    if path is None:
        return ""
    # The path names objects by address; the picture asks the live ones for their reprs. Thread
    # and frame steps (address 0) are not objects and are left out.
    addresses = [o.address for o in path.objects if o.address]
    del path
    live = _native.objects_at(addresses)
    chain = [live[a] for a in addresses if a in live]
    del live
    if not chain:
        return ""
    written = _pictures.show_chain(chain, filename=filename)
    return f"\nThe retaining path of a {name} is drawn in {written}."


def _per_call(total, runs):
    """`+3 per call`, or `+28 over 3 calls` where the calls did not leave the same number."""
    if total % runs == 0:
        return f"+{total // runs} per call"
    return f"+{total} over {runs} calls"


def _error(leaks, what, runs, warmup, note):
    calls = f"{runs} call{'s' if runs != 1 else ''}"
    if what == "the block":
        head = "the block left objects behind:"
    else:
        warm = f" (after {warmup} warm-up call{'s' if warmup != 1 else ''})" if warmup else ""
        head = f"{what} leaked on every one of {calls}{warm}:"
    width = max(len(leak.type) for leak in leaks)
    lines = [head]
    for leak in leaks:
        per_call = f"+{leak.total}" if what == "the block" else _per_call(leak.total, runs)
        lines.append(f"  {leak.type:<{width}}  {per_call}")
        if leak.path:
            lines.append(f"      {leak.path}")
        if leak.allocated_at:
            # The innermost call is where; the one before says who asked.
            lines.append(f"      allocated at {leak.allocated_at[-1]}")
            for frame in reversed(leak.allocated_at[-3:-1]):
                lines.append(f"        called from {frame}")
    error = _native.LeakError("\n".join(lines) + note)
    error.leaks = leaks
    return error


def no_leaks(*types, warmup=1, runs=3, picture=None, ignore=(), trace_alloc=False):
    """Checks that code leaves no objects behind; raises :class:`heaplens.LeakError` if it does.

    As a decorator, each call of the decorated function runs it ``warmup`` times, then ``runs``
    times more with a count of every object after each; types that grow on every one of those
    calls leak. As a context manager, the block runs once and every type that grew is reported
    (warm caches up before the block). With ``types`` (classes or names), only those are
    checked. ``picture="leak.svg"`` (or ``.png``, ``.dot``) draws the retaining path of the first
    leaking type.

    ``ignore`` declares what is no leak (a cache you know is bounded, a type you expect to grow),
    as :meth:`Snapshot.diff` takes it: type names or classes (``"app.models.Order"``), places
    (``"app.cache.CACHE"``, a module global; ``"app.Registry.handlers"``, a class attribute;
    ``"app.Service.cache"``, an instance attribute), ``*`` matching any run of characters.
    Bounded caches that say so (``lru_cache(maxsize=N)``, ``deque(maxlen=N)``) need no
    declaration.

    ``trace_alloc=True`` also says where each leaking type's objects were allocated (the line
    and its callers), by tracing allocations with :mod:`tracemalloc` during the counted calls
    of a leaking function; while ``tracemalloc`` already traces, that is said anyway.

    The message lists each leaking type with its count per call and the retaining path of one
    of its objects; ``error.leaks`` holds the same as :class:`Leak` tuples.

    Example:
        >>> import heaplens
        >>> class Session:
        ...     pass
        >>> sessions = []
        >>> @heaplens.no_leaks(runs=3)
        ... def login():
        ...     sessions.append(Session())
        >>> try:
        ...     login()
        ... except heaplens.LeakError as e:
        ...     print(e.leaks[0].type.rsplit(".", 1)[-1], e.leaks[0].per_call)
        Session 1.0
        >>> with heaplens.no_leaks(Session):
        ...     len([Session() for _ in range(3)])  # temporaries: freed, not a leak
        3
    """
    if len(types) == 1 and _is_code(types[0]):
        # `no_leaks(func, runs=5)`: the function is checked with the options given.
        options = dict(warmup=warmup, runs=runs, picture=picture, ignore=ignore)
        return LeakCheck(trace_alloc=trace_alloc, **options)(types[0])
    return LeakCheck(
        *types, warmup=warmup, runs=runs, picture=picture, ignore=ignore, trace_alloc=trace_alloc
    )
