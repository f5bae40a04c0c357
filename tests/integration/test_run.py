"""``heaplens run``, as a user runs it: the console script in a subprocess, on real scripts."""

import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading

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


def test_serve_drops_a_client_that_stops_sending(tmp_path):
    """A client that sends half a request, or announces a body it never sends, is dropped
    (after 10 s): it does not keep a thread of the observed program waiting forever."""
    import socket
    import urllib.request

    write(
        tmp_path / "server.py",
        "import os, time\nwhile not os.path.exists('stop'):\n    time.sleep(0.05)\n",
    )
    process = subprocess.Popen(
        [HEAPLENS, "run", "--no-history", "--serve", "127.0.0.1:0", "server.py"],
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
        host, port = url.split("/")[2].rsplit(":", 1)
        stalled = []
        for head in (b"GET /_heaplens/api/in", b"POST /_heaplens/api/snapshot HTTP/1.1\r\n"
                     b"Host: x\r\nContent-Length: 100000\r\n\r\n"):
            client = socket.create_connection((host, int(port)), timeout=120)
            client.sendall(head)
            stalled.append(client)
        # Another client is answered meanwhile.
        with urllib.request.urlopen(url + "api/info", timeout=60) as answer:
            assert answer.status == 200
        for client in stalled:
            with client:
                # Closed by the server (an answer, or nothing), not left hanging: recv returns.
                while client.recv(65536):
                    pass
    finally:
        (tmp_path / "stop").write_text("")
        process.communicate(timeout=120)
    assert process.returncode == 0


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


# Issue 12, item 13: a run never ends in a traceback of heaplens' own, and what fails after the
# program ran costs neither its exit status nor the report.

MARKS_ITS_RUN = """
open("ran", "w").close()
"""


def one_error_with_a_hint(stderr):
    """The failure is said the way the command line says every failure: one `heaplens: error:`
    line, then a `hint:` line, and no traceback of heaplens' own."""
    lines = stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("heaplens: error: ")]
    assert len(errors) == 1, stderr
    assert lines[errors[0] + 1].startswith("hint: "), stderr
    assert "Traceback" not in stderr, stderr
    assert "heaplens/_run.py" not in stderr, stderr
    return lines[errors[0]]


@pytest.mark.parametrize(
    "option, path",
    [
        ("--snapshot-at-exit", "nodir/x.hlsnap"),
        ("--snapshot-at-exit", "adir"),
        ("--snapshot-at-exit", "afile/x.hlsnap"),
        ("--history", "nodir/h.db"),
        ("--history", "adir"),
    ],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_the_program_runs(
    tmp_path, option, path
):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    write(tmp_path / "app.py", MARKS_ITS_RUN)
    result = run(tmp_path, "--period", "0.05", option, path, "app.py")
    assert result.returncode == 2, result.stderr
    error = one_error_with_a_hint(result.stderr)
    # The path once, not the path and then the path again.
    assert error.count(path) == 1, error
    assert not (tmp_path / "ran").exists(), "the program must not run"


def test_a_snapshot_that_cannot_be_saved_at_exit_keeps_the_report_and_the_programs_status(
    tmp_path,
):
    # Its directory goes away while the program runs: only the save fails, after the report.
    (tmp_path / "out").mkdir()
    write(
        tmp_path / "app.py",
        """
        import os, sys
        os.rmdir("out")
        print("done")
        sys.exit(3)
        """,
    )
    result = run(tmp_path, "--no-history", "--snapshot-at-exit", "out/end.hlsnap", "app.py")
    assert result.returncode == 3, result.stderr
    assert "done" in result.stdout
    assert "heaplens: app.py ran for" in result.stderr
    error = one_error_with_a_hint(result.stderr)
    assert "cannot save the snapshot at exit" in error
    assert result.stderr.index("ran for") < result.stderr.index(error), "the report comes first"


def test_a_program_that_changes_directory_saves_its_snapshot_where_the_user_meant(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "app.py", "import os\nos.chdir('elsewhere')\n")
    result = run(tmp_path, "--no-history", "--snapshot-at-exit", "end.hlsnap", "app.py")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "end.hlsnap").is_file()
    assert not (tmp_path / "elsewhere" / "end.hlsnap").exists()


def test_serve_mistakes_are_said_in_one_line_before_the_program_runs(tmp_path):
    import socket

    write(tmp_path / "app.py", MARKS_ITS_RUN)
    too_big = run(tmp_path, "--no-history", "--serve", "70000", "app.py")
    assert too_big.returncode == 2
    assert "70000" in too_big.stderr and "65535" in too_big.stderr
    assert "Traceback" not in too_big.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = run(tmp_path, "--serve", f"127.0.0.1:{port}", "app.py")
    assert in_use.returncode == 2
    one_error_with_a_hint(in_use.stderr)
    assert "hint: another process listens there" in in_use.stderr
    assert not (tmp_path / "ran").exists(), "the program must not run"
    # Refused before anything was started: no sampling, no history file left behind.
    assert "sampling" not in in_use.stderr
    assert not list(tmp_path.glob("*.db"))


def test_what_python_refuses_to_run_is_said_as_python_says_it(tmp_path):
    (tmp_path / "adir").mkdir()
    no_main = run(tmp_path, "--no-history", "adir")
    assert no_main.returncode == 2
    assert "can't find '__main__' module in 'adir'" in one_error_with_a_hint(no_main.stderr)
    no_module = run(tmp_path, "--no-history", "-m", "no_such_module")
    assert no_module.returncode == 2
    assert "no module named 'no_such_module'" in one_error_with_a_hint(no_module.stderr)
    assert "sampling" not in no_module.stderr, "nothing ran"
    write(tmp_path / "broken.py", "def f(:\n    pass\n")
    broken = run(tmp_path, "--no-history", "broken.py")
    assert broken.returncode == 1
    assert "SyntaxError" in broken.stderr
    assert 'File "broken.py", line 1' in broken.stderr, broken.stderr
    assert "Traceback" not in broken.stderr and "_run.py" not in broken.stderr, broken.stderr


def test_a_programs_traceback_starts_at_the_program(tmp_path):
    write(tmp_path / "crash.py", "def main():\n    raise ValueError('boom')\nmain()\n")
    pkg = tmp_path / "tool"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("raise KeyError('boom')\n")
    for args in (["crash.py"], ["-m", "tool.cli"]):
        result = run(tmp_path, "--no-history", *args)
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "heaplens" not in result.stderr.split("Traceback", 1)[1].split("Error:", 1)[0], (
            result.stderr
        )
        assert "ran for" in result.stderr


# Issue 12, item 14: SIGTERM (docker stop, systemd) reports as Ctrl-C does; SIGUSR1 reports
# on demand; forked children report only when asked, each under its pid.

GROWS_UNTIL_STOPPED = """
import os, time

class Job:
    pass

KEPT = []
for _ in range(20):
    KEPT.append(Job())
open("ready", "w").close()
while not os.path.exists("stop"):
    KEPT.append(Job())
    time.sleep(0.005)
print("stopped by the file")
"""


def wait_for(condition, process, what, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {timeout} s: {process.communicate()}")
        time.sleep(0.05)


def start(tmp_path, *args):
    return subprocess.Popen(
        [HEAPLENS, "run", *map(str, args)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_reports_what_was_sampled_and_ends_as_sigterm_would(tmp_path):
    import signal

    write(tmp_path / "server.py", GROWS_UNTIL_STOPPED)
    process = start(tmp_path, "--period", "0.05", "--history", "h.db", "server.py")
    try:
        wait_for((tmp_path / "ready").exists, process, "the program's start")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    # As the signal would have ended the program: the parent sees it killed by SIGTERM.
    assert process.returncode == -signal.SIGTERM, err
    assert "stopped by the file" not in out
    assert "heaplens: terminated (SIGTERM); reporting what was sampled" in err, err
    assert "heaplens: server.py ran for" in err, err
    assert "Traceback" not in err, err
    assert "heaplens history" in err


def test_a_program_that_handles_sigterm_itself_keeps_its_handler(tmp_path):
    import signal

    write(
        tmp_path / "server.py",
        """
        import signal, sys, time
        def graceful(signum, frame):
            print("graceful shutdown", flush=True)
            sys.exit(5)
        signal.signal(signal.SIGTERM, graceful)
        open("ready", "w").close()
        while True:
            time.sleep(0.01)
        """,
    )
    process = start(tmp_path, "--no-history", "server.py")
    try:
        wait_for((tmp_path / "ready").exists, process, "the program's start")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 5, err
    assert "graceful shutdown" in out
    assert "terminated (SIGTERM)" not in err
    assert "heaplens: server.py ran for" in err, err


def test_sigusr1_reports_the_run_so_far_and_the_program_goes_on(tmp_path):
    import signal

    write(tmp_path / "server.py", GROWS_UNTIL_STOPPED)
    lines = []
    with start(tmp_path, "--period", "0.05", "--no-history", "server.py") as process:
        reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
        reader.start()
        try:
            wait_for((tmp_path / "ready").exists, process, "the program's start")
            process.send_signal(signal.SIGUSR1)
            wait_for(
                lambda: any("report so far (SIGUSR1)" in line for line in lines)
                and any(" ran for " in line for line in lines),
                process,
                "report on SIGUSR1",
            )
            (tmp_path / "stop").write_text("")
            out = process.stdout.read()
            process.wait(timeout=300)
            reader.join(timeout=300)
        finally:
            process.kill()
    err = "".join(lines)
    assert process.returncode == 0, err
    # The program went on after the report, and reported again at its end.
    assert "stopped by the file" in out
    assert err.count("heaplens: server.py ran for") == 2, err
    assert err.index("report so far") < err.rindex("ran for")


FORKS_WORKERS = """
import os, sys, time
children = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        # A gunicorn worker ends with sys.exit, through the frames of whoever forked it.
        os.write(1, b"worker %d\\n" % os.getpid())  # one write: the workers' lines stay whole
        sys.exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
os.write(1, b"parent %d\\n" % os.getpid())
"""


def test_forked_children_report_only_when_asked_each_under_its_pid(tmp_path):
    write(tmp_path / "workers.py", FORKS_WORKERS)
    quiet = run(tmp_path, "--period", "0.05", "--no-history", "workers.py")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.count("worker ") == 2
    assert quiet.stderr.count(" ran for ") == 1, quiet.stderr
    assert "2 forked child processes did not report (--report-children" in quiet.stderr

    loud = run(
        tmp_path, "--period", "0.05", "--no-history", "--report-children",
        "--snapshot-at-exit", "end.hlsnap", "workers.py",
    )
    assert loud.returncode == 0, loud.stderr
    parent = int(re.search(r"parent (\d+)", loud.stdout).group(1))
    # The snapshot at exit is the parent's: the children that report do not write over it.
    assert heaplens.load(tmp_path / "end.hlsnap").pid == parent
    assert loud.stderr.count("snapshot at exit saved") == 1, loud.stderr
    workers = [int(pid) for pid in re.findall(r"worker (\d+)", loud.stdout)]
    assert len(workers) == 2
    for worker in workers:
        header = f"heaplens: workers.py (pid {worker}, forked from {parent}) ran for "
        assert loud.stderr.count(header) == 1, loud.stderr
    assert loud.stderr.count(f"heaplens: workers.py (pid {parent}) ran for ") == 1, loud.stderr
    assert loud.stderr.count(" ran for ") == 3, loud.stderr


def test_forked_children_of_a_run_serving_the_dashboard_end(tmp_path):
    # The thread serving the dashboard is the parent's: a child that waited for it to stop
    # waited forever.
    write(tmp_path / "workers.py", FORKS_WORKERS)
    result = run(tmp_path, "--no-history", "--serve", "127.0.0.1:0", "workers.py", timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("worker ") == 2
    assert result.stderr.count(" ran for ") == 1, result.stderr


def test_snapshots_the_program_took_and_dropped_are_not_native_growth(tmp_path):
    # A program that checks itself: three snapshots, analysed and dropped, on a flat heap of a
    # million objects. glibc kept what they freed resident (65 MiB here), which the report
    # called memory outside Python objects.
    write(
        tmp_path / "checks.py",
        """
        import gc, time
        import heaplens

        class Order:
            def __init__(self, n):
                self.n = n
                self.lines = {"sku": n}

        ORDERS = [Order(n) for n in range(500_000)]
        time.sleep(2)
        for _ in range(3):
            snap = heaplens.snapshot()
            snap.analyze()
            del snap
            gc.collect()
            time.sleep(0.3)
        time.sleep(1)
        print("checked")
        """,
    )
    result = run(tmp_path, "--period", "0.05", "checks.py")
    assert result.returncode == 0, result.stderr
    assert "checked" in result.stdout
    assert re.search(r"rss .* -> .*; Python objects", result.stderr), result.stderr
    assert "outside Python objects" not in result.stderr, result.stderr
