"""A payment worker that keeps every failure, with its traceback, in an error log for a status
page: each traceback holds the frames of the failed call and their locals."""

import itertools


class PaymentDeclined(Exception):
    pass


ERROR_LOG = []
attempts = itertools.count()


def charge(card, amount):
    basket = [("item", amount)] * 10  # a local the traceback's frame keeps alive
    raise PaymentDeclined(f"card {card} declined for {amount} ({len(basket)} items)")


def request():
    n = next(attempts)
    try:
        charge(f"4111-{n:04d}", 10 + n % 7)
    except PaymentDeclined as e:
        ERROR_LOG.append(e)
