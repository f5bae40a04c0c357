"""A checkout handler that connects a per-request closure to a blinker signal to send the
receipt once the order is placed, with weak=False (a weakly connected closure would vanish at
once), and never disconnects it: the signal keeps every closure and the checkout it captures."""

import itertools

import blinker

order_placed = blinker.signal("order-placed")


class Checkout:
    def __init__(self, number):
        self.number = number
        self.items = [("sku-%d" % number, 1, 19.99)]
        self.receipt = None


numbers = itertools.count()


def request():
    checkout = Checkout(next(numbers))

    def send_receipt(sender, **extra):
        if extra.get("number") == checkout.number:
            checkout.receipt = "receipt for order %d" % checkout.number

    order_placed.connect(send_receipt, weak=False)
    order_placed.send("shop", number=checkout.number)
    return checkout.receipt
