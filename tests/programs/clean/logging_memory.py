"""A service that logs every request, with a handler that keeps the last 50 records."""

import collections
import logging


class RecentRecords(logging.Handler):
    def __init__(self, keep):
        super().__init__()
        self.records = collections.deque(maxlen=keep)

    def emit(self, record):
        self.records.append(record)


log = logging.getLogger("service")
log.setLevel(logging.INFO)
log.addHandler(RecentRecords(50))
log.propagate = False
WARMUP = 100


def request():
    log.info("handled request for %s", "user")
