"""What a Prometheus scrape of ``heaplens metrics FILE.db --port`` costs on a long history.

Builds a history file as a day of gunicorn workers leaves it (by default 2 workers sampled every
2 s for 24 h, 20 types changing a sample), starts the exporter on it, and times:

- a full read: ``heaplens metrics FILE.db`` (prints once; what every scrape cost before the
  exporter read only what was appended);
- the exporter's first scrape (it read the whole file once, as it started), then scrapes after
  each worker appended one more sample (the steady state: one scrape per interval).

    python bench/metrics_bench.py [--workers 2] [--hours 24] [--period 2] [--types 20]

The file is made by ``heaplens run --history`` (so its schema and format are heaplens' own)
and then filled with rows through SQLite, as the writers would append them.
"""

import argparse
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def heaplens():
    found = Path(sys.executable).parent / "heaplens"
    return str(found) if found.exists() else "heaplens"


def make_history(path, workers, samples, types):
    script = path.with_suffix(".py")
    script.write_text("pass\n")
    subprocess.run([heaplens(), "-q", "run", "--history", str(path), str(script)], check=True,
                   stdout=subprocess.DEVNULL)
    db = sqlite3.connect(path)
    now = int(time.time() * 1000)
    start = now - samples * 2000
    names = [f"app.Type{i}" for i in range(200)]
    db.executemany("INSERT OR IGNORE INTO types(name) VALUES (?)", [(n,) for n in names])
    type_ids = [r[0] for r in db.execute("SELECT id FROM types WHERE name LIKE 'app.Type%'")]
    rng = random.Random(1)
    processes = []
    for w in range(workers):
        cur = db.execute(
            "INSERT INTO processes(pid, started_ms, program, python) VALUES (?, ?, ?, ?)",
            (100000 + w, start, "app:app", "3.12"))
        processes.append(cur.lastrowid)
    counts = {}
    for i in range(samples):
        for p in processes:
            cur = db.execute(
                "INSERT INTO samples(process, taken_ms, rss, objects, bytes, gc_only, census_us) "
                "VALUES (?, ?, ?, ?, ?, 1, 900)",
                (p, start + i * 2000, 200 << 20, 500_000 + i, 40 << 20))
            sample = cur.lastrowid
            rows = []
            for t in rng.sample(type_ids, types):
                counts[(p, t)] = max(0, counts.get((p, t), 1000) + rng.randint(-5, 6))
                rows.append((sample, t, counts[(p, t)], counts[(p, t)] * 64))
            db.executemany("INSERT INTO counts(sample, type, count, bytes) VALUES (?, ?, ?, ?)",
                           rows)
    db.commit()
    return db, processes, type_ids, rng


def scrape(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        body = answer.read()
    return time.perf_counter() - t, body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--period", type=float, default=2, help="seconds between samples")
    parser.add_argument("--types", type=int, default=20, help="types changing in a sample")
    parser.add_argument("--scrapes", type=int, default=10)
    args = parser.parse_args()
    samples = int(args.hours * 3600 / args.period)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        t = time.perf_counter()
        db, processes, type_ids, rng = make_history(path, args.workers, samples, args.types)
        print(f"history: {args.workers} workers x {samples:,} samples, {args.types} types "
              f"changing a sample: {os.path.getsize(path) / 1e6:.1f} MB "
              f"(made in {time.perf_counter() - t:.0f} s)")

        t = time.perf_counter()
        subprocess.run([heaplens(), "-q", "metrics", str(path)], check=True,
                       stdout=subprocess.DEVNULL)
        full = time.perf_counter() - t
        print(f"full read (heaplens metrics FILE.db, process start included): {full:.3f} s")

        exporter = subprocess.Popen([heaplens(), "metrics", str(path), "--port", "0"],
                                    stdout=subprocess.PIPE, text=True)
        try:
            line = exporter.stdout.readline()
            url = re.search(r"http://\S+/metrics", line).group(0)
            first, _ = scrape(url)
            print(f"exporter, first scrape (it read the whole file as it started): {first:.3f} s")
            times = []
            now = int(time.time() * 1000)
            for i in range(args.scrapes):
                for p in processes:
                    cur = db.execute(
                        "INSERT INTO samples(process, taken_ms, rss, objects, bytes, gc_only, "
                        "census_us) VALUES (?, ?, ?, ?, ?, 1, 900)",
                        (p, now + i * 2000, 200 << 20, 600_000 + i, 40 << 20))
                    db.executemany(
                        "INSERT INTO counts(sample, type, count, bytes) VALUES (?, ?, ?, ?)",
                        [(cur.lastrowid, t, 2000 + i, 64) for t in
                         rng.sample(type_ids, args.types)])
                db.commit()
                times.append(scrape(url)[0])
            times.sort()
            median = times[len(times) // 2]
            print(f"exporter, scrape after one more sample per worker: median {median:.4f} s "
                  f"(max {times[-1]:.4f} s) over {args.scrapes} scrapes")
            print(f"full read / steady scrape: {full / median:.0f}x")
        finally:
            exporter.terminate()
            exporter.wait(30)


if __name__ == "__main__":
    main()
