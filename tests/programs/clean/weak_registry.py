"""Live sessions registered in a WeakValueDictionary: each goes away with its request."""

import itertools
import weakref


class Session:
    def __init__(self, n):
        self.n = n
        self.data = {"user": n}


REGISTRY = weakref.WeakValueDictionary()
ids = itertools.count()


def request():
    session = Session(next(ids))
    REGISTRY[session.n] = session
    return len(REGISTRY)
