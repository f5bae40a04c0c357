"""A small web-service-like program with a memory leak, and heaplens finding it.

Run it with ``python examples/leaky_service.py``. It serves batches of fake requests; one handler
caches every session it sees in a module-level dict and never evicts anything. heaplens shows:

1. process memory growing (``heaplens.memory()``);
2. which types grow after every batch (``heaplens.show_growth()``, objgraph's call);
3. what grew between two snapshots and what holds it: the leak suspects
   (``after.diff(before)``);
4. why one leaked object is alive: its retaining path from the roots (``paths_to``), and the
   same as a picture (``show_chain``), written to the temporary directory.
"""

import os
import random
import tempfile

import heaplens


class Request:
    def __init__(self, path, user_id):
        self.path = path
        self.user_id = user_id
        self.headers = {"user-agent": "bench/1.0", "x-request-id": f"req-{random.random():.12f}"}


class Session:
    def __init__(self, user_id):
        self.user_id = user_id
        self.cart = [f"item-{i}" for i in range(3)]
        self.token = f"tok-{user_id}-{random.getrandbits(64):x}"


# The leak: a cache with no eviction, keyed by something unique per request.
_SESSIONS = {}


def handle_profile(request):
    return {"user": request.user_id, "path": request.path}


def handle_checkout(request):
    session = Session(request.user_id)
    _SESSIONS[request.headers["x-request-id"]] = session
    return {"items": len(session.cart)}


def serve(batch_size):
    for i in range(batch_size):
        request = Request(random.choice(["/profile", "/checkout"]), user_id=i % 50)
        handler = handle_checkout if request.path == "/checkout" else handle_profile
        handler(request)


def mib(n):
    return f"{n / 2**20:.1f} MiB"


def main():
    random.seed(7)
    heaplens.growth()  # the first call records peaks; later calls show what grew past them
    start_rss = heaplens.memory().rss
    serve(500)
    before = heaplens.snapshot()
    for batch in range(1, 4):
        serve(2000)
        print(f"after batch {batch}: rss {mib(heaplens.memory().rss)}; types that grew:")
        heaplens.show_growth(limit=4)
        print()
    print(f"rss grew by {mib(heaplens.memory().rss - start_rss)} over the run.\n")

    after = heaplens.snapshot()
    print(after.diff(before, limit=3))

    leaked = next(iter(_SESSIONS.values()))
    (path,) = after.paths_to(leaked)
    print("why one leaked Session is alive:")
    print(f"  {path}")
    print(f"it keeps {after.retained_size(leaked)} bytes alive; the cache keeps "
          f"{mib(after.retained_size(_SESSIONS))}.")

    chain = heaplens.find_backref_chain(leaked, heaplens.is_proper_module)
    picture = heaplens.show_chain(
        chain, filename=os.path.join(tempfile.gettempdir(), "heaplens-leak.png")
    )
    print(f"the same path, drawn: {picture}")


if __name__ == "__main__":
    main()
