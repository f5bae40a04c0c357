"""A router that checks each request's path against a pattern built for its tenant: `re` keeps
the compiled patterns in a cache it prunes at 512 (and the most recent 256 apart, from 3.12),
so the cache fills while new tenants arrive, and stops."""

import itertools
import re

tenants = itertools.count()
WARMUP = 10


def request():
    tenant = next(tenants)
    path = f"/t{tenant}/orders/{tenant * 7}"
    match = re.match(rf"/t{tenant}/orders/(\d+)$", path)
    return int(match.group(1))
