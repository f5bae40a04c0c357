"""Quotes per symbol where a new symbol appears on every request: the dict is replaced in place
for known symbols, but keeps growing with new ones."""

import itertools


class Quote:
    def __init__(self, symbol):
        self.symbol = symbol
        self.history = [1.0, 2.0]


QUOTES = {}
ticks = itertools.count()


def request():
    n = next(ticks)
    QUOTES[f"SYM{n % 50}"] = Quote(f"SYM{n % 50}")  # churn
    QUOTES[f"NEW{n}"] = Quote(f"NEW{n}")  # growth
