"""heaplens.memory(): process memory as the OS sees it."""

import json
import mmap
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import heaplens


def test_memory_reports_rss_and_peak_in_bytes():
    m = heaplens.memory()
    assert m.rss > 5 * 2**20
    assert m.peak_rss >= m.rss
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    expected_peak = ru * 1024 if sys.platform.startswith("linux") else ru
    assert abs(m.peak_rss - expected_peak) < 64 * 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="USS and PSS are Linux-only")
def test_uss_and_pss_are_reported_on_linux():
    m = heaplens.memory()
    assert 0 < m.uss <= m.rss
    assert 0 < m.pss <= m.rss
    assert set(m._asdict()) == {"rss", "peak_rss", "uss", "pss", "swap"}
    assert "MiB" in repr(m)


def test_rss_follows_a_large_allocation():
    # Pages of a fresh anonymous mapping, each written once: new resident memory whatever the
    # allocator holds (a bytearray may reuse heap pages an earlier test freed and left resident).
    size = 64 * 2**20
    before = heaplens.memory().rss
    with mmap.mmap(-1, size) as blob:
        for i in range(0, size, mmap.PAGESIZE):
            blob[i] = 1
        after = heaplens.memory().rss
    assert after - before > 48 * 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")
def test_memory_of_another_process():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline() == b"ready\n"
        m = heaplens.memory(pid=child.pid)
        assert m.rss > 2**20
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def test_a_dead_pid_is_a_process_lookup_error():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError, match=str(child.pid)):
        heaplens.memory(pid=child.pid)


def test_a_negative_pid_is_a_value_error():
    with pytest.raises(ValueError):
        heaplens.memory(pid=-5)


# A fresh interpreter, so that no earlier test's memory is counted. It prints how much the
# resident set grew with a snapshot and its analysis, and how much of that stayed once both
# were dropped.
DROPPED_SNAPSHOT = """
import gc, heaplens
class Order:
    pass
orders = [Order() for _ in range(500_000)]
for o in orders:
    o.lines = {"sku": 1}
gc.collect()
before = heaplens.memory().rss
snap = heaplens.snapshot()
snap.analyze()
taken = heaplens.memory().rss
del snap
gc.collect()
print(taken - before, heaplens.memory().rss - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heaps are Linux's")
def test_a_dropped_snapshot_gives_its_memory_back():
    # glibc keeps freed arrays under 32 MiB resident in its heaps: half of what this snapshot
    # and its analysis took stayed, shown by the program's RSS as growth that was no one's.
    out = subprocess.run(
        [sys.executable, "-c", DROPPED_SNAPSHOT], capture_output=True, text=True, check=True
    ).stdout
    grew, stayed = map(int, out.split())
    assert grew > 20 * 2**20
    assert stayed < 0.3 * grew, f"{stayed >> 20} of {grew >> 20} MiB stayed resident"



# The dashboard bench's child: a fresh interpreter whose mounted dashboard is driven as a user's
# page drives it (each round takes a snapshot, the earlier one becoming the previous one, let go
# once compared; then the overview, the report, the comparison, a type page), printing the RSS
# added after each round.
DASHBOARD_BENCH = Path(__file__).resolve().parents[2] / "bench" / "dashboard_memory_bench.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heaps are Linux's")
def test_the_dashboard_holds_one_snapshot_not_the_memory_of_the_ones_it_let_go():
    # The analyses' second thread used glibc's arena of that thread, whose freed top glibc
    # keeps: the dashboard of a 650k-object heap held 12 MB more after three snapshots than
    # after one (51 MB against 39), the memory of the snapshots it had let go.
    env = dict(os.environ, HEAPLENS_THREADS="2")
    out = subprocess.run(
        [sys.executable, str(DASHBOARD_BENCH), "--child", "650e3", "--snapshots", "3"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout
    rows = json.loads(out.strip().splitlines()[-1])["rows"]
    first, third = rows[0]["rss_added"], rows[-1]["rss_added"]
    assert first > 10 * 2**20
    assert third < 1.2 * first, f"{first >> 20} MiB after one snapshot, {third >> 20} after three"
