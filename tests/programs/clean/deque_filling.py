"""An audit trail kept in a deque(maxlen=5000), still filling: it grows by one event per
request, up to the bound it declares, and then drops the oldest."""

import collections
import itertools


class AuditEvent:
    def __init__(self, n):
        self.n = n
        self.fields = {"seq": n, "action": "login", "user": f"user{n % 97}"}


TRAIL = collections.deque(maxlen=5000)
seq = itertools.count()


def request():
    TRAIL.append(AuditEvent(next(seq)))
