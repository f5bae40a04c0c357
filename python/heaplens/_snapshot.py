"""``heaplens.snapshot()``: the whole object graph, for the analyses."""

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


def snapshot():
    """Takes a snapshot of the heap: every live object with its type, shallow size and flags,
    every reference between objects with a label (``.attr``, ``['key']``, ``[3]``,
    ``local 'x'``), and the roots (modules, thread stacks, objects held from outside the heap).

    Objects no root reaches (cyclic garbage, e.g. under ``gc.disable()``) are kept and flagged
    ``unreachable``. The snapshot holds no reference to the objects it describes.

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
    """
    return _native.snapshot(_thread_names())
