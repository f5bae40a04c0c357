"""Runs one program of this directory as a long-running service would, for ``heaplens run``:

    heaplens run --period 0.05 run.py PROGRAM.py

``WARMUP`` requests, then ``RUNS`` more, paced so that the sampler sees the heap between them.
"""

import sys
import time

from drive import load


def main(path):
    program = load(path)
    warmup, runs = getattr(program, "WARMUP", 50), getattr(program, "RUNS", 300)
    for _ in range(warmup):
        program.request()
    for _ in range(runs):
        program.request()
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1])
