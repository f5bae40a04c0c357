"""Latest quote per symbol: 100 symbols, each request replaces one symbol's quote."""

import itertools
import random

SYMBOLS = [f"SYM{i}" for i in range(100)]


class Quote:
    def __init__(self, symbol, price):
        self.symbol = symbol
        self.price = price
        self.history = [price * 0.99, price, price * 1.01]


QUOTES = {}
ticks = itertools.count()
WARMUP = 300


def request():
    symbol = SYMBOLS[next(ticks) % len(SYMBOLS)]
    QUOTES[symbol] = Quote(symbol, random.random() * 100)
