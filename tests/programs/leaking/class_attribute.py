"""An event dispatcher whose handlers are registered in a class-level list: each request
registers a handler for its own order and nothing ever unregisters it."""

import itertools


class Dispatcher:
    handlers = []

    @classmethod
    def register(cls, handler):
        cls.handlers.append(handler)

    @classmethod
    def dispatch(cls, event):
        return [h.handle(event) for h in cls.handlers[-1:]]


class OrderShippedHandler:
    def __init__(self, order_id):
        self.order_id = order_id
        self.recipients = [f"customer-{order_id}@example.com"]

    def handle(self, event):
        return event == self.order_id


numbers = itertools.count()


def request():
    order_id = next(numbers)
    Dispatcher.register(OrderShippedHandler(order_id))
    return Dispatcher.dispatch(order_id)
