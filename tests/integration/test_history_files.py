"""History files of killed programs: the ``.db`` alone, copied elsewhere, holds their samples.

SQLite in WAL mode keeps the newest transactions in ``app.db-wal`` until a checkpoint copies them
into ``app.db``; a program killed with SIGKILL never closes the file, so only checkpoints taken
while it sampled put its samples in the one file ``heaplens run`` names.
"""

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

HEAPLENS = shutil.which("heaplens") or pytest.fail("the heaplens console script is not installed")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

# Runs until killed, with a steady heap: each sample changes few rows, so SQLite's own
# checkpoint (every 1000 pages of WAL) does not come for a long time.
FOREVER = """
import time

while True:
    scratch = [object() for _ in range(100)]
    time.sleep(0.02)
"""

# A WSGI app with the dashboard middleware and a history file: it samples from its first
# request on, so killed before any request it has registered its process and taken no sample.
UNSAMPLED = """
import sys, time
from heaplens.wsgi import HeapLens

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

app = HeapLens(app, history=sys.argv[1], period=0.1)
print("ready", flush=True)
time.sleep(600)
"""

# Generous: the machine may be loaded.
PATIENCE = 120


def committed_samples(db, scratch, with_wal):
    """The times of the samples in a copy of ``db`` (and of its ``-wal`` when ``with_wal``):
    every committed sample, or those the file alone holds. None when nothing can be read."""
    copy = scratch / f"poll-{time.monotonic_ns()}.db"
    try:
        shutil.copyfile(db, copy)
        if with_wal and os.path.exists(f"{db}-wal"):
            shutil.copyfile(f"{db}-wal", f"{copy}-wal")
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            return [t for (t,) in conn.execute("SELECT taken_ms FROM samples ORDER BY id")]
    except (OSError, sqlite3.Error):
        return None
    finally:
        for leftover in (copy, f"{copy}-wal", f"{copy}-shm"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def history(path, *args):
    return subprocess.run(
        [HEAPLENS, "history", str(path), *args],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=PATIENCE)


def test_the_db_alone_of_a_run_killed_with_sigkill_holds_its_samples(tmp_path):
    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent(FOREVER))
    db = tmp_path / "app.db"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    process = subprocess.Popen(
        [HEAPLENS, "run", "--history", str(db), "--period", "0.1", str(script)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Until the run has committed samples over 3 s (in the file or in its -wal).
        deadline = time.monotonic() + PATIENCE
        while True:
            taken = committed_samples(db, scratch, with_wal=True)
            if taken and taken[-1] - taken[0] >= 3000:
                break
            assert process.poll() is None, "heaplens run stopped on its own"
            assert time.monotonic() < deadline, f"no samples over 3 s: {taken}"
            time.sleep(0.2)
    finally:
        kill(process)
    assert os.path.exists(f"{db}-wal"), "a killed writer leaves its -wal"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(db, elsewhere / "app.db")
    result = history(elsewhere / "app.db")
    assert result.returncode == 0, result.stderr
    match = re.search(r"forever\.py \(pid \d+, Python [\d.]+\): started .*; (\d+) samples over", result.stdout)
    assert match, result.stdout
    # The first sample is in the file at once, and a later one within a second of the next
    # checkpoint: samples over 3 s mean that at least two are in the file alone.
    assert int(match.group(1)) >= 2, result.stdout

    # Read in place, the file and its -wal together: every sample, and the -wal folded into
    # the file, so that the file alone now holds them all too.
    in_place = history(db)
    assert in_place.returncode == 0, in_place.stderr
    every = re.search(r"; (\d+) samples over", in_place.stdout)
    assert every and int(every.group(1)) >= int(match.group(1)), in_place.stdout
    folded = tmp_path / "folded"
    folded.mkdir()
    shutil.copyfile(db, folded / "app.db")
    again = history(folded / "app.db")
    assert again.returncode == 0, again.stderr
    assert f"; {every.group(1)} samples over" in again.stdout, again.stdout


def test_a_program_killed_before_its_first_sample_has_no_samples_yet(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(UNSAMPLED))
    db = tmp_path / "server.db"
    with subprocess.Popen(
        [sys.executable, str(script), str(db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout.readline() == "ready\n", process.stderr.read()
        finally:
            kill(process)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(db, elsewhere / "server.db")
    for path in (elsewhere / "server.db", db):
        result = history(path)
        assert result.returncode == 2, result.stdout
        assert "no samples in it yet (1 process registered)" in result.stderr, result.stderr
        assert "damaged" not in result.stderr, result.stderr
        assert "hint: the program stopped (or is still starting) before its first sample" in (
            result.stderr
        ), result.stderr
