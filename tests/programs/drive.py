"""Runs one program of this directory the way a developer hunting a leak would, through every
flow that compares heaps, and prints what each flow found as JSON:

    python drive.py PROGRAM.py OUT_DIR

A program is a module with a ``request()`` function (one unit of the program's work) and
optionally ``WARMUP`` (calls before the first snapshot; default 50) and ``RUNS`` (calls between
the snapshots; default 300). The two snapshots are saved to OUT_DIR for ``heaplens diff``.
"""

import gc
import importlib.util
import json
import sys

import heaplens


def load(path):
    spec = importlib.util.spec_from_file_location("program", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["program"] = module
    spec.loader.exec_module(module)
    return module


def main(path, out):
    program = load(path)
    warmup, runs = getattr(program, "WARMUP", 50), getattr(program, "RUNS", 300)
    for _ in range(warmup):
        program.request()
    if gc.isenabled():
        gc.collect()
    before = heaplens.snapshot()
    for _ in range(runs):
        program.request()
    after = heaplens.snapshot()
    before.save(f"{out}/before.hlsnap")
    after.save(f"{out}/after.hlsnap")
    diff = after.diff(before)
    found = {
        "diff": [f"{s.entry_type} x{s.entries} held by {s.holder_path}" for s in diff.suspects],
        "diff_text": str(diff),
    }
    del before, after, diff
    try:
        heaplens.no_leaks(warmup=1, runs=3)(program.request)()
        found["no_leaks"] = []
    except heaplens.LeakError as e:
        found["no_leaks"] = [str(e)]
    print(json.dumps(found))


if __name__ == "__main__":
    main(*sys.argv[1:])
