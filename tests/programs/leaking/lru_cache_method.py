"""Invoice rendering memoised with functools.lru_cache on a method: the cache is the class's,
its keys hold `self`, and with maxsize=None every invoice ever rendered stays alive."""

import functools
import itertools


class Invoice:
    def __init__(self, number):
        self.number = number
        self.lines = [("widget", 3, 2.5), ("gadget", 1, 10.0)]

    @functools.lru_cache(maxsize=None)  # noqa: B019 - the leak under test
    def total(self):
        return sum(qty * price for _, qty, price in self.lines)


numbers = itertools.count()


def request():
    return Invoice(next(numbers)).total()
