"""Writes captured-X.Y.hlsnap: a small snapshot taken by the running interpreter, for the test
that every version of heaplens opens snapshots taken on every other version.

    python tests/data/make_captured.py        # with heaplens installed for that Python

The snapshot is the neighbourhood of a module-level cache of `Order` objects (instances with
inline attributes, a `__slots__` class, str, int and list payloads): small enough to keep in git,
made by the same capture as a whole-heap snapshot.
"""

import os
import sys

import heaplens._native as native


class Order:
    def __init__(self, number):
        self.number = number
        self.items = [f"item-{number}", number * 1000]


class Line:
    __slots__ = ("sku", "qty")

    def __init__(self, sku, qty):
        self.sku = sku
        self.qty = qty


CACHE = {f"order-{i}": Order(i) for i in range(20)}
CACHE["line"] = Line("sku-1", 3)


def main():
    snap, _ = native.snapshot_around([CACHE], 3, 100_000)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "captured-%d.%d.hlsnap" % sys.version_info[:2])
    snap.save(path)
    print(f"{path}: {len(snap)} objects, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
