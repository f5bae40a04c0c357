"""The order book of clean/bounded_dict_evicting.py without its eviction: it keeps every order."""

import itertools


class Order:
    def __init__(self, number):
        self.number = number
        self.lines = [("sku-%d" % number, 2, 9.5)]
        self.customer = {"id": number % 17, "name": "customer %d" % (number % 17)}


ORDERS = {}
numbers = itertools.count()


def request():
    n = next(numbers)
    ORDERS[f"order-{n}"] = Order(n)
