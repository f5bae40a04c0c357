"""A price service with a hand-written LRU cache (an OrderedDict and the `maxsize` it is pruned
at, as in Jinja2's, SQLAlchemy's or cachetools' caches): it fills with distinct products up to
its size while the program runs, and stops there."""

import collections
import itertools

WARMUP = 10


class LRUCache:
    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.data = collections.OrderedDict()

    def get(self, key, compute):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        value = self.data[key] = compute(key)
        if len(self.data) > self.maxsize:
            self.data.popitem(last=False)
        return value


class Price:
    def __init__(self, sku):
        self.sku = sku
        self.amounts = [sku * 1.5, sku * 1.2]


PRICES = LRUCache(maxsize=1000)
skus = itertools.count()


def request():
    return PRICES.get(next(skus), Price).amounts[0]
