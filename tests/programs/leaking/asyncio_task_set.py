"""Fire-and-forget notifications run as asyncio tasks, kept in a module-level set so that they
are not collected mid-flight, but never discarded when done: the set keeps every finished task
and the receipt it returned."""

import asyncio
import itertools

BACKGROUND_TASKS = set()


class Receipt:
    def __init__(self, number):
        self.number = number
        self.recipients = ["ops@example.com"]


async def notify(number):
    await asyncio.sleep(0)
    return Receipt(number)


async def handle(number):
    task = asyncio.get_running_loop().create_task(notify(number))
    BACKGROUND_TASKS.add(task)  # never discarded
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return number


LOOP = asyncio.new_event_loop()
numbers = itertools.count()


def request():
    return LOOP.run_until_complete(handle(next(numbers)))
