"""An event loop running tasks that complete, the task set kept tidy with a done callback."""

import asyncio

TASKS = set()


async def handle(n):
    await asyncio.sleep(0)
    return n * 2


async def serve():
    for n in range(5):
        task = asyncio.ensure_future(handle(n))
        TASKS.add(task)
        task.add_done_callback(TASKS.discard)
    while TASKS:
        await asyncio.sleep(0)


LOOP = asyncio.new_event_loop()


def request():
    LOOP.run_until_complete(serve())
