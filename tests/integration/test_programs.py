"""Real programs, each run in its own interpreter through every flow that compares heaps
(``Snapshot.diff``, ``heaplens diff`` on the saved snapshots, ``no_leaks``): see
``tests/programs/drive.py``.

The clean programs do not leak, but churn: bounded caches evicting or replacing entries, a
full ``lru_cache``, an ``lru_cache`` and a ``deque`` filling up to the bound they declare, the standard library's own bounded caches, a ring buffer, logging into a
bounded handler, a connection pool, a thread pool, reference cycles the collector frees, a weak
registry, asyncio tasks that complete. Every flow must report nothing: a false alarm is a bug.
The leaking programs are their unbounded twins, and every flow must name the leaking type.
"""

import json
import pathlib
import subprocess
import sys

import pytest

PROGRAMS = pathlib.Path(__file__).parent.parent / "programs"
HEAPLENS = pathlib.Path(sys.executable).with_name("heaplens")


def drive(program, tmp_path):
    r = subprocess.run(
        [sys.executable, str(PROGRAMS / "drive.py"), str(program), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout.splitlines()[-1])
    cli = subprocess.run(
        [str(HEAPLENS), "diff", str(tmp_path / "before.hlsnap"), str(tmp_path / "after.hlsnap")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return found, cli


@pytest.mark.parametrize(
    "program", sorted((PROGRAMS / "clean").glob("*.py")), ids=lambda p: p.stem
)
def test_a_program_that_does_not_leak_gets_no_suspect_in_any_flow(program, tmp_path):
    found, cli = drive(program, tmp_path)
    assert found["diff"] == [], found["diff_text"]
    assert found["no_leaks"] == [], found["no_leaks"][0]
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "No leak suspects" in cli.stdout


@pytest.mark.parametrize(
    "program, leaking_type",
    [
        ("unbounded_order_book", "program.Order"),
        ("growing_ring", "program.Quote"),
        ("unbounded_lru_cache", "program.Rendered"),
    ],
)
def test_a_program_that_leaks_is_named_in_every_flow(program, leaking_type, tmp_path):
    found, cli = drive(PROGRAMS / "leaking" / f"{program}.py", tmp_path)
    assert found["diff"][0].startswith(f"{leaking_type} x300 held by module program"), found
    # The class comes first in no_leaks too, ahead of the str/dict/list payload that grows as
    # fast, and with the path that keeps it.
    message = found["no_leaks"][0]
    first = message.splitlines()[1].split()
    assert first[:2] == [leaking_type, "+1"], message
    assert "module program -> .__dict__[" in message.splitlines()[2], message
    assert cli.returncode == 1, cli.stderr
    assert f"1. {leaking_type} x300" in cli.stdout
    assert cli.stdout.split("Types that grew\n")[1].split()[0] == leaking_type, cli.stdout


def test_heaplens_diff_leaves_out_what_the_user_declares_no_leak(tmp_path):
    """`--ignore` names a place or a type known not to leak; the others are still reported."""
    drive(PROGRAMS / "leaking" / "unbounded_order_book.py", tmp_path)
    files = [str(tmp_path / "before.hlsnap"), str(tmp_path / "after.hlsnap")]

    def diff(*options):
        return subprocess.run(
            [str(HEAPLENS), "diff", *files, *options], capture_output=True, text=True, timeout=120
        )

    for pattern in ("program.ORDERS", "program.Ord*"):
        r = diff("--ignore", pattern)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "No leak suspects" in r.stdout and "1 suspect ignored, as asked" in r.stdout
    r = diff("--ignore", "program.ORDER", "--ignore", "other.*")
    assert r.returncode == 1 and "1. program.Order x300" in r.stdout, r.stdout
