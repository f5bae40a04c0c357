"""Each request builds a tree with parent links (reference cycles) and drops it: garbage the
collector frees in its own time."""


class Node:
    def __init__(self, parent):
        self.parent = parent
        self.children = []
        if parent is not None:
            parent.children.append(self)


def request():
    root = Node(None)
    for _ in range(5):
        Node(root)
