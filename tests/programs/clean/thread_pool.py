"""Work handed to a ThreadPoolExecutor started lazily on the first request."""

import concurrent.futures

EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=4)


def work(n):
    return sum(range(n))


def request():
    futures = [EXECUTOR.submit(work, 100) for _ in range(4)]
    return [f.result() for f in futures]
