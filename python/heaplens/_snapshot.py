"""``heaplens.snapshot()``: the whole object graph, for the analyses."""

import os
import sys

from heaplens import _native

__all__ = ["snapshot"]


def _thread_names():
    # Only read threading's table if the program uses threading; importing it here would change
    # the program (it registers the main thread).
    threading = sys.modules.get("threading")
    if threading is None:
        return {}
    return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}


def snapshot(path=None, *, fork=None):
    """Takes a snapshot of the heap: every live object with its type, shallow size and flags,
    every reference between objects with a label (``.attr``, ``['key']``, ``[3]``,
    ``local 'x'``), and the roots (modules, thread stacks, objects held from outside the heap).

    Objects no root reaches (cyclic garbage, e.g. under ``gc.disable()``) are kept and flagged
    ``unreachable``. The snapshot holds no reference to the objects it describes.

    With ``path``, the snapshot is written to that file (as :meth:`Snapshot.save` writes it:
    atomically) and None is returned. It is then taken in a forked child: the program stops for
    the ``fork()`` only (milliseconds, whatever the size of its heap), and the child walks the
    copy-on-write image of the heap and streams the file back while the program's threads go on.
    The snapshot is the one a walk in the program would have taken at that instant. ``fork=True``
    takes a returned snapshot that way too (read back without the GIL: the call takes longer,
    the program's other threads are stopped for the fork only); ``fork=False`` walks the heap in
    the program. Where a fork cannot be used (not Linux or macOS, ``HEAPLENS_NO_FORK=1`` in the
    environment, ``tracemalloc`` tracing, or the fork fails) the walk runs in the program and
    the ``heaplens.capture`` logger says why.

    Example:
        >>> import heaplens
        >>> class Node:
        ...     pass
        >>> node = Node()
        >>> node.payload = ["x"]
        >>> snap = heaplens.snapshot()
        >>> snap[id(node)].type.endswith(".Node")
        True
        >>> snap[id(node)].labels_to(node.payload)
        ['.payload']
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "now.hlsnap")
        >>> heaplens.snapshot(path)                 # forked: the program goes on meanwhile
        >>> heaplens.load(path)[id(node)].type.endswith(".Node")
        True
    """
    if fork is None:
        fork = path is not None
    if path is not None:
        path = os.fspath(path)
    taken = _native.snapshot(_thread_names(), path, bool(fork))
    return None if path is not None else taken
