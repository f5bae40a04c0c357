"""Real programs, each run in its own interpreter through every flow that compares heaps
(``Snapshot.diff``, ``heaplens diff`` on the saved snapshots, ``no_leaks``, the dashboard's
Compare: see
``tests/programs/drive.py``), under ``heaplens run``, which samples the program as it runs and
reports the types that grew steadily (``tests/programs/run.py``), and as the test of a test suite
checked by ``pytest --heaplens``.

The clean programs do not leak, but churn: bounded caches evicting or replacing entries, a
full ``lru_cache``, an ``lru_cache`` and a ``deque`` filling up to the bound they declare, the
standard library's own bounded caches, a ring buffer, logging into a bounded handler, a connection pool, a thread pool, reference cycles the collector frees, a weak
registry, asyncio tasks that complete. Every flow must report nothing: a false alarm is a bug.
The leaking programs are their unbounded twins, and every flow must name the leaking type; they
also hold one program per kind of leak of ``test_leak_kinds.py`` (a module global, a class
attribute, a mutable default, a blinker signal's closures, ``lru_cache`` on a method, logging
handlers, an asyncio task set, a SQLAlchemy session, kept exceptions, a running thread's local,
cycles with the collector off, untracked dicts), which every flow must name first, with the path
that keeps it.
"""

import json
import pathlib
import re
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


def run_under_heaplens(program, *options):
    """`heaplens run` of the program, sampled every 0.05 s: its report."""
    r = subprocess.run(
        [str(HEAPLENS), "run", "--period", "0.05", "--no-history", *options,
         str(PROGRAMS / "run.py"), str(program)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROGRAMS,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


TEST_OF_A_PROGRAM = """
import sys
sys.path.insert(0, {programs!r})
from drive import load

program = load({path!r})

def test_a_request():
    program.request()
"""


def pytest_heaplens(program, tmp_path):
    """`pytest --heaplens` on a test that makes one request of the program, warmed up as the
    program says (`--heaplens-warmup`: its caches fill during the warm-up runs)."""
    (tmp_path / "test_program.py").write_text(
        TEST_OF_A_PROGRAM.format(programs=str(PROGRAMS), path=str(program))
    )
    source = program.read_text()
    warmup = re.search(r"^WARMUP = (\d+)", source, re.M)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--heaplens", "-p", "no:cacheprovider", "-q",
         "--heaplens-warmup", warmup.group(1) if warmup else "50", "test_program.py"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    return r


@pytest.mark.parametrize(
    "program", sorted((PROGRAMS / "clean").glob("*.py")), ids=lambda p: p.stem
)
def test_a_program_that_does_not_leak_gets_no_suspect_in_any_flow(program, tmp_path):
    report = run_under_heaplens(program)
    assert "Types that grew steadily" not in report, report
    checked = pytest_heaplens(program, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found, cli = drive(program, tmp_path)
    assert found["diff"] == [], found["diff_text"]
    assert found["dashboard"] == [], found["dashboard"]
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
    assert re.match(rf"{entries_of(leaking_type, 300)} held by module program", found["diff"][0]), found
    # The class comes first in no_leaks too, ahead of the str/dict/list payload that grows as
    # fast, and with the path that keeps it.
    message = found["no_leaks"][0]
    first = message.splitlines()[1].split()
    assert first[:2] == [leaking_type, "+1"], message
    assert "module program -> .__dict__[" in message.splitlines()[2], message
    assert cli.returncode == 1, cli.stderr
    assert re.search(rf"1\. {entries_of(leaking_type, 300)} ", cli.stdout), cli.stdout
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


def attr(name):
    """An instance attribute in a path: `.__dict__['name']` once the instance's dict exists,
    `.name` while 3.13+ keeps the attribute in the instance's inline values."""
    return rf"(\.__dict__\['{name}'\]|\.{name})"


MODULE = re.escape("module program -> .__dict__")

# One program per kind of leak of tests/integration/test_leak_kinds.py, each leaking one object
# of a distinctive type per request: (program, the leaking type, how many of it a request
# leaks, the holder the suspect names: a regular expression, which no_leaks' first path must
# also start with).
KINDS = [
    ("module_global", "program.QueryResult", 1, rf"{MODULE}\['RESULTS'\] -> dict$"),
    (
        "class_attribute",
        "program.OrderShippedHandler",
        1,
        rf"{MODULE}\['Dispatcher'\] -> class program\.Dispatcher\.__dict__\['handlers'\] -> list$",
    ),
    (
        "mutable_default",
        "program.PageVisit",
        1,
        rf"{MODULE}\['track'\] -> function program\.track\.__defaults__ -> tuple\[0\] -> dict$",
    ),
    # The signal keeps the closures, each closure its request's Checkout: the Checkout is what a
    # developer names, and the closure is shown by its name on the way to it (checked below).
    (
        "signal_closure",
        "program.Checkout",
        1,
        rf"{MODULE}\['order_placed'\] -> blinker\.base\.NamedSignal{attr('receivers')} -> dict$",
    ),
    (
        "lru_cache_method",
        "program.Invoice",
        1,
        rf"{MODULE}\['Invoice'\] -> class program\.Invoice\.__dict__\['total'\] -> "
        r"functools\._lru_cache_wrapper.* -> dict$",
    ),
    (
        "logging_handlers",
        "program.JobContextHandler",
        1,
        rf"{MODULE}\['log'\] -> logging\.Logger{attr('handlers')} -> list$",
    ),
    ("asyncio_task_set", "_asyncio.Task", 1, rf"{MODULE}\['BACKGROUND_TASKS'\] -> set$"),
    (
        "orm_session",
        "program.AuditEntry",
        1,
        rf"{MODULE}\['session'\] -> sqlalchemy\.orm\.session\.Session{attr('_new')} -> dict$",
    ),
    ("exceptions_kept", "program.PaymentDeclined", 1, rf"{MODULE}\['ERROR_LOG'\] -> list$"),
    (
        "thread_local_frame",
        "program.AuditEvent",
        1,
        r"thread 'auditor' -> frame audit \(.*thread_local_frame\.py:\d+\) -> local 'seen' -> list$",
    ),
    # Garbage has no holder: the suspect says what it is instead.
    ("gc_disabled_cycles", "program.TreeNode", 2, None),
    # Dicts of atomic values are not tracked by the collector; every object is counted anyway.
    ("untracked_dicts", "dict", 1, rf"{MODULE}\['SAMPLES'\] -> list$"),
]

# What a suspect whose entries carry the leaking type must name on the way to it: the closure,
# by its qualified name (heaplens diff's suspect, no_leaks' message).
CAPTURED = {"signal_closure": "function program.request.<locals>.send_receipt.__closure__"}

# How many entries the suspect names where it is not one per request: the auditor thread's
# frame still holds the last event in its local `event` while it waits for the next, and that
# local is the event's shortest path, so the list is blamed for the 299 others.
ENTRIES = {"thread_local_frame": 299}

# The libraries a program leaks through.
NEEDS = {"signal_closure": "blinker", "orm_session": "sqlalchemy"}


def suspect_block(text, number):
    """The lines of suspect `number` in a diff's text."""
    section = text.split("Leak suspects\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.strip().startswith(f"{number}. "))
    block = [section[start]]
    for line in section[start + 1 :]:
        if not line.startswith("     "):
            break
        block.append(line)
    return block


def entries_of(leaking_type, entries):
    """A suspect's `TYPE xN` as a pattern. A new object that CPython put at the address of a
    freed one of its type looks old to a comparison (objects are matched by address), so a
    suspect may count one entry fewer than the requests that leaked."""
    return rf"{re.escape(leaking_type)} x({entries}|{entries - 1})"


def check_diff(found, leaking_type, holder, entries):
    """Snapshot.diff: the leaking type is the first suspect, with the container that keeps it."""
    assert found["diff"], found["diff_text"]
    entry, _, held_by = found["diff"][0].partition(" held by ")
    assert re.fullmatch(entries_of(leaking_type, entries), entry), found["diff_text"]
    if holder is None:
        first = suspect_block(found["diff_text"], 1)[0].strip()
        assert re.match(
            rf"1\. uncollected cyclic garbage: {entries_of(leaking_type, entries)} ", first
        ), found["diff_text"]
    else:
        assert re.match(holder, held_by), found["diff_text"]


def check_cli(cli, leaking_type, holder, captured, entries):
    """heaplens diff on the saved snapshots: the same suspect first, the type first among the
    types that grew, and a failing exit status."""
    out = cli.stdout
    assert cli.returncode == 1, out + cli.stderr
    assert out.split("Types that grew\n")[1].split()[0] == leaking_type, out
    first = suspect_block(out, 1)
    prefix = "uncollected cyclic garbage: " if holder is None else ""
    assert re.match(
        rf"1\. {re.escape(prefix)}{entries_of(leaking_type, entries)} ", first[0].strip()
    ), out
    if holder is not None:
        held = [line.strip() for line in first if line.strip().startswith("held by: ")]
        assert held and re.match(holder, held[0][len("held by: ") :]), out
    if captured:
        assert captured in "\n".join(first), out


def check_dashboard(found, leaking_type, holder, entries):
    """The dashboard's Compare: the same first suspect as Snapshot.diff."""
    assert found["dashboard"], "the dashboard's comparison found nothing"
    entry, _, held_by = found["dashboard"][0].partition(" held by ")
    assert re.fullmatch(entries_of(leaking_type, entries), entry), found["dashboard"]
    if holder is not None:
        assert re.match(holder, held_by), found["dashboard"]


def check_run(report, leaking_type, holder):
    """heaplens run: the type first among the types that grew steadily, held where the suspect
    says."""
    assert "Types that grew steadily:\n" in report, report
    rows = report.split("Types that grew steadily:\n")[1].splitlines()
    assert rows[1].split()[0] == leaking_type, report
    held = rows[2].strip()
    if holder is None:
        assert held.startswith("held by uncollected cyclic garbage"), report
    else:
        assert held.startswith("held by ") and re.match(holder.rstrip("$"), held[8:]), report


def check_pytest(checked, leaking_type, per_call):
    """pytest --heaplens: the test fails, with the type first in the LeakError."""
    out = checked.stdout
    assert checked.returncode == 1, out + checked.stderr
    lines = out.split("LeakError: test_a_request() leaked on every one of 3 calls", 1)[1]
    first = lines.splitlines()[1].split()
    assert first[:3] == [leaking_type, f"+{per_call}", "per"], out


def check_no_leaks(found, leaking_type, per_call, holder, captured):
    """no_leaks: the type is the first line, and every type comes with the path that keeps one
    of its new objects, ending at an object of that type."""
    assert found["no_leaks"], "no_leaks found nothing"
    message = found["no_leaks"][0]
    lines = message.splitlines()[1:]
    assert lines[0].split()[:3] == [leaking_type, f"+{per_call}", "per"], message
    assert len(lines) % 2 == 0, message
    for type_line, path_line in zip(lines[0::2], lines[1::2]):
        assert type_line.startswith("  ") and not type_line.startswith("   "), message
        assert path_line.startswith("      ") and path_line.strip(), message
        name, path = type_line.split()[0], path_line.strip()
        if holder is None:
            assert path.startswith(f"{name} "), message
        else:
            assert path.rsplit(" -> ", 1)[-1].split()[0] == name, message
    path = lines[1].strip()
    if holder is None:
        assert path == (
            f"{leaking_type} in uncollected reference cycles (the garbage collector is off)"
        ), message
    else:
        # The path runs through the container the suspect names, down to the leaked object.
        assert re.match(holder.rstrip("$"), path), message
    if captured:
        assert captured in message, message


@pytest.mark.parametrize(
    "program, leaking_type, per_call, holder", KINDS, ids=[k[0] for k in KINDS]
)
def test_each_kind_of_leak_is_named_first_in_every_flow(
    program, leaking_type, per_call, holder, tmp_path
):
    if program in NEEDS:
        pytest.importorskip(NEEDS[program])
    found, cli = drive(PROGRAMS / "leaking" / f"{program}.py", tmp_path)
    # A gc-only census (run's default) cannot see dicts the collector does not track.
    options = ["--all-objects"] if program == "untracked_dicts" else []
    report = run_under_heaplens(PROGRAMS / "leaking" / f"{program}.py", *options)
    checked = pytest_heaplens(PROGRAMS / "leaking" / f"{program}.py", tmp_path)
    captured = CAPTURED.get(program)
    entries = ENTRIES.get(program, 300)
    # Every flow is checked, and every flow that fails is reported.
    failures = []
    for flow, check in [
        ("Snapshot.diff", lambda: check_diff(found, leaking_type, holder, entries)),
        ("heaplens diff", lambda: check_cli(cli, leaking_type, holder, captured, entries)),
        ("no_leaks", lambda: check_no_leaks(found, leaking_type, per_call, holder, captured)),
        ("dashboard Compare", lambda: check_dashboard(found, leaking_type, holder, entries)),
        ("heaplens run", lambda: check_run(report, leaking_type, holder)),
        ("pytest --heaplens", lambda: check_pytest(checked, leaking_type, per_call)),
    ]:
        try:
            check()
        except AssertionError as e:
            failures.append(f"--- {flow} ---\n{e}")
    assert not failures, "\n".join(failures)
