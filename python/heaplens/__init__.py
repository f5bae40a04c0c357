"""heaplens: find memory leaks in Python programs: what is growing, and what keeps it alive.

The heap is walked by a Rust extension that runs no Python code while it walks, counts every
live object (not only the gc-tracked half that ``gc.get_objects()`` shows) and changes nothing
in the program it observes.

Example:
    >>> import heaplens
    >>> class Order:
    ...     pass
    >>> before = heaplens.census()
    >>> orders = [Order() for _ in range(1000)]
    >>> heaplens.census().count("Order") - before.count("Order")
    1000
"""

from heaplens import _native

# An interpreter the capture cannot read (another version, a debug or free-threaded build) is
# refused here, with the one sentence that says what is supported; pip refuses other versions
# before that (requires-python).
if _native.capture_support() is not None:
    raise ImportError(_native.capture_support(), name="heaplens")

from heaplens._native import (  # noqa: E402
    IMMORTAL_ROOT,
    CaptureError,
    Census,
    HeapLensError,
    LeakError,
    MemoryInfo,
    RetainingPath,
    Snapshot,
    SnapshotDiff,
    SnapshotFormatError,
    SnapshotObject,
    Suspect,
    TypeStat,
    UnknownTypeError,
    UnsupportedPythonError,
    __version__,
    load,
    memory,
)
from heaplens._census import (
    by_type,
    census,
    count,
    most_common_types,
    show_most_common_types,
    typestats,
)
from heaplens._growth import Tracker, growth, show_growth
from heaplens._leaks import Leak, LeakCheck, no_leaks
from heaplens._paths import find_backref_chain, is_proper_module
from heaplens._pictures import show_backrefs, show_chain, show_refs
from heaplens._snapshot import snapshot

__all__ = [
    "IMMORTAL_ROOT",
    "CaptureError",
    "Census",
    "RetainingPath",
    "HeapLensError",
    "Leak",
    "LeakCheck",
    "LeakError",
    "MemoryInfo",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotFormatError",
    "SnapshotObject",
    "Suspect",
    "Tracker",
    "TypeStat",
    "UnknownTypeError",
    "UnsupportedPythonError",
    "__version__",
    "by_type",
    "census",
    "count",
    "find_backref_chain",
    "growth",
    "is_proper_module",
    "load",
    "memory",
    "no_leaks",
    "most_common_types",
    "show_backrefs",
    "show_chain",
    "show_growth",
    "show_most_common_types",
    "show_refs",
    "snapshot",
    "typestats",
]
