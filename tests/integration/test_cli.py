"""The ``heaplens`` command line, run as a user runs it: a console script in a subprocess."""

import json
import shutil
import subprocess
import sys

import pytest

import heaplens
from conftest import serving

HEAPLENS = shutil.which("heaplens") or pytest.fail("the heaplens console script is not installed")

LEAKY_SCRIPT = """
import sys, heaplens

class Session:
    def __init__(self, n):
        self.n = n
        self.token = "tok-%d" % n

SESSIONS = {}

def request(n):
    SESSIONS["s%d" % n] = Session(n)

for n in range(10):
    request(n)
heaplens.snapshot().save(sys.argv[1])
for n in range(10, 510):
    request(n)
heaplens.snapshot().save(sys.argv[2])
"""


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    script = d / "leaky.py"
    script.write_text(LEAKY_SCRIPT)
    before, after = d / "before.hlsnap", d / "after.hlsnap"
    subprocess.run([sys.executable, str(script), str(before), str(after)], check=True, timeout=120)
    return before, after


def heaplens_cli(*args):
    return subprocess.run([HEAPLENS, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_diff_finds_the_leak_and_exits_1(snapshots):
    before, after = snapshots
    r = heaplens_cli("diff", before, after)
    assert r.returncode == 1, r.stderr
    assert "1. __main__.Session x500" in r.stdout
    assert "held by: module __main__ -> .__dict__['SESSIONS'] -> dict" in r.stdout


TRACED_SCRIPT = """
import sys, tracemalloc, heaplens
tracemalloc.start(5)

class Session:
    def __init__(self, n):
        self.n = n

class Store:
    def __init__(self):
        self.sessions = {}

STORE = Store()

def request(n):
    STORE.sessions[n] = Session(n)  # the leak

heaplens.snapshot().save(sys.argv[1])
for n in range(300):
    request(n)
heaplens.snapshot().save(sys.argv[2])
"""


def test_snapshot_files_say_where_objects_were_allocated_when_tracemalloc_traced(tmp_path):
    """Read later, by the command line, snapshots taken while tracemalloc traced still say
    which line allocated the leaked objects (diff) and the biggest retainers (report)."""
    script = tmp_path / "traced.py"
    script.write_text(TRACED_SCRIPT)
    before, after = tmp_path / "before.hlsnap", tmp_path / "after.hlsnap"
    subprocess.run([sys.executable, str(script), str(before), str(after)], check=True, timeout=120)
    r = heaplens_cli("diff", before, after)
    assert r.returncode == 1, r.stderr
    assert "1. __main__.Session x300" in r.stdout
    site = f"{script}:16: STORE.sessions[n] = Session(n)  # the leak"
    assert "     allocated at (most recent call last):\n" in r.stdout
    assert f"       {script}:20: request(n)\n       {site}\n" in r.stdout, r.stdout
    report = heaplens_cli("report", after)
    assert report.returncode == 0, report.stderr
    assert f"allocated at {script}:13: STORE = Store()" in report.stdout, report.stdout


def test_diff_refuses_snapshots_in_the_wrong_order_with_status_2(snapshots):
    before, after = snapshots
    r = heaplens_cli("diff", after, before)
    assert r.returncode == 2, r.stdout
    assert "wrong order" in r.stderr, r.stderr
    assert "Leak suspects" not in r.stdout


def test_snapshot_diff_refuses_the_wrong_order_and_another_process(snapshots):
    before, after = (heaplens.load(p) for p in snapshots)
    with pytest.raises(ValueError, match="wrong order"):
        before.diff(after)
    with pytest.raises(ValueError, match="different processes"):
        heaplens.snapshot().diff(before)


def test_diff_of_a_snapshot_with_itself_exits_0(snapshots):
    _, after = snapshots
    r = heaplens_cli("diff", after, after)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No leak suspects" in r.stdout


def test_report_names_the_biggest_retainer(snapshots):
    _, after = snapshots
    r = heaplens_cli("report", after)
    assert r.returncode == 0, r.stderr
    assert "module __main__ -> .__dict__['SESSIONS'] -> dict" in r.stdout


def test_export_for_chrome(snapshots, tmp_path):
    _, after = snapshots
    out = tmp_path / "after.heapsnapshot"
    r = heaplens_cli("export", after, "--format", "chrome", "-o", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert "__main__.Session" in data["strings"]


def test_python_m_heaplens_is_the_same_command(snapshots):
    _, after = snapshots
    r = subprocess.run(
        [sys.executable, "-m", "heaplens", "report", str(after), "--limit", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("heaplens report: ")


def test_errors_exit_2_with_a_hint(tmp_path):
    r = heaplens_cli("report", tmp_path / "nope.hlsnap")
    assert r.returncode == 2
    assert "nope.hlsnap" in r.stderr and "hint:" in r.stderr
    r = heaplens_cli("diff")
    assert r.returncode == 2 and "Usage" in r.stderr
    r = heaplens_cli("--version")
    assert r.returncode == 0 and heaplens.__version__ in r.stdout


# Issue 12, item 13: every failure is one line, names its path once, and ends with a hint; an
# output path that cannot be written fails before the long work.


def one_error_with_a_hint(r):
    lines = r.stderr.splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith("heaplens: error: "), r.stderr
    assert lines[1].startswith("hint: "), r.stderr
    return lines[0], lines[1]


@pytest.fixture
def history_file(tmp_path):
    script = tmp_path / "short.py"
    script.write_text("import time\nfor _ in range(5):\n    time.sleep(0.05)\n")
    db = tmp_path / "short.db"
    r = subprocess.run(
        [HEAPLENS, "run", "--period", "0.05", "--history", str(db), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return db


@pytest.mark.parametrize("where", ["nodir/out", "adir", "afile/out"])
def test_output_paths_that_cannot_be_written_fail_at_once_with_a_hint(
    snapshots, history_file, tmp_path, where
):
    _, after = snapshots
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    target = tmp_path / where
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        for args in (
            ["export", after, "-o", f"{target}.heapsnapshot" if where != "adir" else target],
            ["history", history_file, "-o", f"{target}.svg" if where != "adir" else target],
            ["attach", sleeper.pid, "--snapshot", target],
        ):
            if where == "adir" and args[0] == "history":
                (tmp_path / "adir.svg").mkdir(exist_ok=True)
                args[-1] = tmp_path / "adir.svg"
            r = heaplens_cli(*args)
            error, hint = one_error_with_a_hint(r)
            assert error.count(str(args[-1])) == 1, error
            assert "snapshot.save" not in hint, hint
            assert r.stdout == "", r.stdout
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_standard_output_is_said_so_with_a_hint(snapshots, history_file):
    before, after = snapshots
    for args in (
        ["report", after],
        ["diff", before, after],
        ["export", after, "-o", "-"],
        ["history", history_file],
    ):
        with open("/dev/full", "w") as full:
            r = subprocess.run(
                [HEAPLENS, *map(str, args)],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        error, hint = one_error_with_a_hint(r)
        assert error == (
            "heaplens: error: cannot write to standard output: "
            "No space left on device (os error 28)"
        ), error
        assert "<stream>" not in r.stderr


def test_a_file_that_cannot_be_read_is_named_once_with_a_hint(snapshots, tmp_path):
    _, after = snapshots
    (tmp_path / "adir").mkdir()
    missing = tmp_path / "nope.hlsnap"
    error, hint = one_error_with_a_hint(heaplens_cli("report", missing))
    no_such_file = "No such file or directory (os error 2)"
    assert error == f"heaplens: error: cannot read the snapshot {missing}: {no_such_file}"
    error, hint = one_error_with_a_hint(heaplens_cli("report", tmp_path / "adir"))
    assert "directory" in error and "directory" in hint
    error, hint = one_error_with_a_hint(heaplens_cli("history", tmp_path / "adir"))
    assert "disk I/O error" not in error and "a directory" in error, error
    assert "heaplens run" in hint
    missing_db = tmp_path / "nope.db"
    error, hint = one_error_with_a_hint(
        heaplens_cli("serve", after, "--port", "0", "--history", missing_db)
    )
    assert error == f"heaplens: error: cannot read the history {missing_db}: {no_such_file}"
    assert "heaplens run" in hint and "snapshot.save" not in hint, hint


def test_serve_of_two_snapshots_compares_them_on_the_page(snapshots):
    """``heaplens serve BEFORE AFTER``: the page of the later snapshot offers Compare, which
    says what ``heaplens diff`` says; two snapshots in the wrong order are refused at once."""
    import urllib.request

    before, after = snapshots
    with serving("serve", before, after, "--port", "0") as url:
        assert url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(url + "api/info", timeout=60) as answer:
            info = json.load(answer)
        assert info["has_previous"] is True and info["program"] == "after.hlsnap"
        with urllib.request.urlopen(url + "api/diff", timeout=120) as answer:
            diff = json.load(answer)
        assert diff["suspects"][0]["entry_type"] == "__main__.Session"
        assert diff["suspects"][0]["entries"] == 500

    wrong = heaplens_cli("serve", after, before, "--port", "0")
    assert wrong.returncode == 2
    assert "wrong order" in wrong.stderr and "hint:" in wrong.stderr
    assert heaplens_cli("serve", before, after, before).returncode == 2, "three files"


def test_diff_of_snapshots_in_the_wrong_order_ends_with_a_hint(snapshots):
    before, after = snapshots
    r = heaplens_cli("diff", after, before)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and "wrong order" in lines[0], r.stderr
    assert lines[1] == "hint: give two snapshots of one process, the earlier one first"
