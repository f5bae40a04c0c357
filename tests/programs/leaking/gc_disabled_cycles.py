"""A latency-sensitive service that disables the garbage collector at import, and whose
requests build a parent/child pair that refer to each other: each pair becomes cyclic
garbage that nothing ever collects."""

import gc
import itertools

gc.disable()


class TreeNode:
    def __init__(self, name, parent=None):
        self.name = name
        self.parent = parent
        self.children = []
        if parent is not None:
            parent.children.append(self)


numbers = itertools.count()


def request():
    n = next(numbers)
    root = TreeNode(f"menu-{n}")
    TreeNode(f"item-{n}", root)
    return len(root.children)
