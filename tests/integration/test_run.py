"""``heaplens run``, as a user runs it: the console script in a subprocess, on real scripts."""

import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import heaplens

HEAPLENS = shutil.which("heaplens") or pytest.fail("the heaplens console script is not installed")

# Grows by 200 orders (each with a list of lines) every 20 ms, keeping them in a module-level
# dict, while a warm cache fills once and a scratch list comes and goes.
LEAKY = """
import sys, time

class Order:
    def __init__(self, n):
        self.n = n
        self.lines = [n, n + 1, n + 2]

ORDERS = {}
WARM = {}

def handle(n):
    ORDERS["order-%d" % n] = Order(n)
    scratch = [object() for _ in range(50)]
    if len(WARM) < 100:
        WARM[n] = n

for batch in range(80):
    for i in range(200):
        handle(batch * 1000 + i)
    time.sleep(0.02)
print("handled", len(ORDERS))
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def run(tmp_path, *args, timeout=300):
    return subprocess.run(
        [HEAPLENS, "run", *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture(scope="module")
def leaky_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    write(d / "leaky.py", LEAKY)
    result = run(d, "--period", "0.05", "--snapshot-at-exit", "end.hlsnap", "leaky.py", "7")
    return d, result


def test_the_report_names_the_leaking_type_and_its_container(leaky_run):
    _, result = leaky_run
    assert "handled 16000" in result.stdout
    report = result.stderr
    assert "Types that grew steadily:" in report, report
    rows = {line.split()[0]: line for line in report.splitlines() if line.startswith("  ")}
    assert "__main__.Order" in rows, report
    assert "16,000" in rows["__main__.Order"], report
    # The warm cache and the scratch lists are not leaks.
    assert "held by module __main__ -> .__dict__['ORDERS'] -> dict (16,000 of them" in report
    # The lines of each order are attributed to the orders, not to each order on its own.
    assert "(inside the 16,000 __main__.Order it holds" in report, report
    # The leaking type comes before what grows inside it.
    assert report.index("  __main__.Order ") < report.index("  list "), report


def test_the_exit_status_is_the_programs(leaky_run):
    _, result = leaky_run
    assert result.returncode == 7, result.stderr


def test_samples_are_written_to_a_history_file_named_after_the_program(leaky_run):
    d, result = leaky_run
    (history,) = d.glob("heaplens-leaky-*.db")
    assert str(history) in result.stderr
    assert f"heaplens history {history}" in result.stderr
    db = sqlite3.connect(history)
    try:
        samples = db.execute("SELECT count(*) FROM samples").fetchone()[0]
        (program,) = db.execute("SELECT program FROM processes").fetchone()
        # The last sample saw all 16,000 orders.
        counts = db.execute(
            "SELECT max(count) FROM changes WHERE name = '__main__.Order'"
        ).fetchone()[0]
    finally:
        db.close()
    assert samples >= 3
    assert program == "leaky.py"
    assert counts == 16000


def test_the_snapshot_at_exit_holds_the_leak(leaky_run):
    d, _ = leaky_run
    snap = heaplens.load(d / "end.hlsnap")
    assert len(snap.by_type("__main__.Order")) == 16000


def test_the_script_runs_as_python_runs_it(tmp_path):
    (tmp_path / "helper_module.py").write_text("VALUE = 'found next to the script'\n")
    write(
        tmp_path / "app.py",
        """
        import os, pickle, sys, threading, time
        import helper_module

        class Point:
            pass

        def late():
            time.sleep(0.2)
            print("late thread done", flush=True)

        print("argv", sys.argv)
        print("name", __name__, os.path.basename(__file__))
        print("path0", sys.path[0] == os.path.dirname(os.path.abspath(__file__)))
        print("module", helper_module.VALUE)
        # Classes of the script pickle as python's __main__ classes do.
        print("pickled", type(pickle.loads(pickle.dumps(Point()))).__name__)
        print("main is me", sys.modules["__main__"].Point is Point)
        threading.Thread(target=late).start()
        """,
    )
    result = run(tmp_path, "--no-history", "app.py", "--flag", "-x", "value")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "argv ['app.py', '--flag', '-x', 'value']" in out
    assert "name __main__ app.py" in out
    assert "path0 True" in out
    assert "module found next to the script" in out
    assert "pickled Point" in out
    assert "main is me True" in out
    # Like python, it waits for the program's threads before it exits.
    assert out.rstrip().endswith("late thread done")
    assert "No type grew steadily." in result.stderr or "Too few samples" in result.stderr
    assert not list(tmp_path.glob("*.db")), "--no-history writes no file"


def test_a_module_runs_as_python_dash_m_runs_it(tmp_path):
    pkg = tmp_path / "tool"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(
        pkg / "cli.py",
        """
        import sys
        print("name", __name__)
        print("argv", [a.rsplit("/", 2)[-2:] if a.endswith(".py") else a for a in sys.argv])
        """,
    )
    result = run(tmp_path, "--no-history", "-m", "tool.cli", "a", "--b")
    assert result.returncode == 0, result.stderr
    assert "name __main__" in result.stdout
    assert "argv [['tool', 'cli.py'], 'a', '--b']" in result.stdout
    assert "sampling -m tool.cli" in result.stderr or "sampling tool.cli" in result.stderr


def test_an_uncaught_exception_is_shown_and_the_report_still_printed(tmp_path):
    write(
        tmp_path / "crash.py",
        """
        def main():
            raise ValueError("boom in the program")
        main()
        """,
    )
    result = run(tmp_path, "--history", "h.db", "crash.py")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: boom in the program" in result.stderr
    assert "heaplens: crash.py ran for" in result.stderr
    assert (tmp_path / "h.db").exists()


def test_ctrl_c_stops_the_program_and_reports_what_was_sampled(tmp_path):
    write(tmp_path / "server.py", "raise KeyboardInterrupt\n")
    result = run(tmp_path, "--no-history", "server.py")
    assert result.returncode == 130
    assert "KeyboardInterrupt" in result.stderr
    assert "interrupted; reporting what was sampled" in result.stderr
    assert "heaplens: server.py ran for" in result.stderr


@pytest.mark.parametrize(
    "code, status, stderr",
    [("sys.exit()", 0, ""), ("sys.exit(3)", 3, ""), ("sys.exit('fatal: no config')", 1, "fatal: no config")],
)
def test_sys_exit_statuses_are_pythons(tmp_path, code, status, stderr):
    write(tmp_path / "quit.py", f"import sys\n{code}\n")
    result = run(tmp_path, "--no-history", "quit.py")
    assert result.returncode == status
    assert stderr in result.stderr


def test_mistakes_get_a_clear_error(tmp_path):
    missing = run(tmp_path, "no_such_script.py")
    assert missing.returncode == 2
    assert "can't open file 'no_such_script.py'" in missing.stderr
    nothing = run(tmp_path)
    assert nothing.returncode == 2
    assert "needs a script to run" in nothing.stderr
    bad_period = run(tmp_path, "--period", "0", "x.py")
    assert bad_period.returncode == 2
    assert "expected a positive number of seconds" in bad_period.stderr
    (tmp_path / "x.py").write_text("")
    unwritable = run(tmp_path, "--history", tmp_path / "no" / "such" / "dir" / "h.db", "x.py")
    assert unwritable.returncode == 2
    assert "h.db" in unwritable.stderr
    assert "Traceback" not in missing.stderr + nothing.stderr + unwritable.stderr


def test_a_killed_program_leaves_its_samples_in_the_history(tmp_path):
    # As an out-of-memory kill would: no exit handler, no report, but every sample taken so far
    # is in the file.
    write(
        tmp_path / "doomed.py",
        """
        import os, signal, time
        class Buffer:
            pass
        KEPT = []
        for i in range(30):
            KEPT.append(Buffer())
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    result = run(tmp_path, "--period", "0.05", "--history", "doomed.db", "doomed.py")
    assert result.returncode == -9
    assert "ran for" not in result.stderr
    db = sqlite3.connect(tmp_path / "doomed.db")
    try:
        samples = db.execute("SELECT count(*) FROM samples").fetchone()[0]
        kept = db.execute(
            "SELECT max(count) FROM changes WHERE name = '__main__.Buffer'"
        ).fetchone()[0]
    finally:
        db.close()
    assert samples >= 2
    assert kept >= 10


def test_serve_shows_the_live_dashboard_while_the_program_runs(tmp_path):
    import json
    import urllib.request

    write(
        tmp_path / "server.py",
        """
        import os, time
        class Order:
            pass
        ORDERS = []
        while not os.path.exists("stop"):
            ORDERS.append(Order())
            time.sleep(0.01)
        """,
    )
    process = subprocess.Popen(
        [HEAPLENS, "run", "--no-history", "--period", "0.05", "--serve", "127.0.0.1:0", "server.py"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:
            if "dashboard of server.py at " in line:
                url = line.split(" at ", 1)[1].strip()
                break
        else:
            pytest.fail("no dashboard URL was printed")
        with urllib.request.urlopen(url + "api/info", timeout=60) as answer:
            info = json.load(answer)
        assert info["live"] is True
        assert info["program"] == "server.py"
        with urllib.request.urlopen(url.replace("/_heaplens/", "/other"), timeout=60) as answer:
            pytest.fail("only the dashboard is served")
    except urllib.error.HTTPError as error:
        error.close()  # 3.14 warns about an HTTPError whose response is left open
        assert error.code == 404
    finally:
        (tmp_path / "stop").write_text("")
        rest = process.communicate(timeout=120)[1]
    assert process.returncode == 0
    assert "heaplens: server.py ran for" in rest


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    (tmp_path / "x.py").write_text("")
    result = run(tmp_path, "--serve", "0.0.0.0:0", "x.py")
    assert result.returncode == 2
    assert "without a token" in result.stderr
    assert "--token" in result.stderr


def test_trace_alloc_says_where_the_growing_objects_were_allocated(tmp_path):
    write(
        tmp_path / "worker.py",
        """
        import time

        class Job:
            def __init__(self, n):
                self.n = n

        DONE = []

        def finish(n):
            DONE.append(Job(n))  # the leak

        for batch in range(40):
            for i in range(100):
                finish(batch * 100 + i)
            time.sleep(0.02)
        """,
    )
    report = run(tmp_path, "--period", "0.05", "--trace-alloc", "worker.py").stderr
    lines = report.splitlines()
    held = next(i for i, line in enumerate(lines) if "held by module __main__ -> .__dict__['DONE']" in line)
    assert re.fullmatch(
        r"allocated at (.*/)?worker\.py:11: DONE\.append\(Job\(n\)\)  # the leak",
        lines[held + 1].strip(),
    ), report
    # Without the option, nothing is traced.
    assert "allocated at" not in run(tmp_path, "--period", "0.05", "worker.py").stderr
