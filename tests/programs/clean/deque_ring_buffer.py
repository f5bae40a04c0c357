"""Recent events kept in a deque(maxlen=100): a full ring buffer."""

import collections
import itertools


class Event:
    def __init__(self, n):
        self.n = n
        self.payload = {"seq": n, "kind": "tick"}


RECENT = collections.deque(maxlen=100)
seq = itertools.count()
WARMUP = 150


def request():
    RECENT.append(Event(next(seq)))
