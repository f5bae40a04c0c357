"""An order book that keeps the 200 most recent orders: each new order evicts the oldest."""

import itertools


class Order:
    def __init__(self, number):
        self.number = number
        self.lines = [("sku-%d" % number, 2, 9.5)]
        self.customer = {"id": number % 17, "name": "customer %d" % (number % 17)}


ORDERS = {}
LIMIT = 200
numbers = itertools.count()
WARMUP = 250


def request():
    n = next(numbers)
    ORDERS[f"order-{n}"] = Order(n)
    if len(ORDERS) > LIMIT:
        del ORDERS[next(iter(ORDERS))]
