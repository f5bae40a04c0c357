"""``heaplens attach PID``, run as a user runs it (the console script in a subprocess), against
real processes: a leaking WSGI app served by waitress, and the processes it must refuse, or give
up on, without harming them.

The tests that reach into a process need gdb and permission to trace a child process; they are
skipped, with the reason, where either is missing (CI installs gdb: see ``.ci/run``). A target of
Python 3.14 or newer is reached through ``sys.remote_exec``, older ones through gdb: the tests
that expect one way or the other say so. The tests that need another Python than the one running
them (a target of another version) find it on PATH, in pyenv, under /opt, or in
``HEAPLENS_TEST_PYTHONS`` (interpreters separated by ``os.pathsep``); they are skipped where it is
missing, and fail instead with CI=true, as the browser tests do.
"""

import functools
import glob
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import heaplens
from conftest import why_gdb_cannot_attach

HEAPLENS = shutil.which("heaplens") or pytest.fail("the heaplens console script is not installed")
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
LEAK_PATH = "module leaky_wsgi_app -> .__dict__['SESSIONS'] -> dict"
# The versions heaplens captures, as its refusals list them.
CAPTURED = "3.11, 3.12, 3.13, 3.14 and 3.15"
SUPPORTED_MINORS = (11, 12, 13, 14, 15)
# How attach reaches a process of the Python running these tests.
WAY = "sys.remote_exec" if sys.version_info >= (3, 14) else "gdb"
# A target's environment that makes attach use gdb whatever its version.
NO_REMOTE_DEBUG = dict(os.environ, PYTHON_DISABLE_REMOTE_DEBUG="1")


def reached(pid, way):
    return f"heaplens: reaching process {pid} through {way}"


@functools.cache
def find_python(minor):
    """An interpreter of Python 3.minor, as the path of its ``sys.executable``, or None."""
    version = f"3.{minor}"
    candidates = os.environ.get("HEAPLENS_TEST_PYTHONS", "").split(os.pathsep)
    candidates.append(shutil.which(f"python{version}"))
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"))
    candidates += sorted(glob.glob(f"/opt/*/bin/python{version}"))
    candidates += sorted(glob.glob(f"/opt/*/usr/bin/python{version}"))
    for exe in filter(None, candidates):
        # Wrappers (pyenv's shims) may name a Python they cannot run, and start it as a child:
        # ask the interpreter for its version and its own path.
        try:
            probe = subprocess.run(
                [exe, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2]); "
                 "print(sys.executable)"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:
            continue
        lines = probe.stdout.split("\n")
        if probe.returncode == 0 and lines[0] == version and lines[1]:
            return lines[1]
    return None


def need_python(minor):
    """``find_python(minor)``, or the test is skipped (fails, with CI=true)."""
    exe = find_python(minor)
    if exe is None:
        reason = (
            f"no Python 3.{minor} found (on PATH, in pyenv, under /opt, or in "
            "HEAPLENS_TEST_PYTHONS)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: the tests may not be skipped)", pytrace=False)
        pytest.skip(reason)
    return exe


def attach_directories(pid, root="/"):
    """The directories attach shares with process ``pid``, in its temporary directory (as seen
    from ``root``) and in this one's."""
    found = set()
    for tmp in {tempfile.gettempdir(), os.path.join(root, "tmp")}:
        found.update(glob.glob(os.path.join(tmp, f"heaplens-attach-{pid}-*")))
    return found


def attach(*args, cwd=None, env=None):
    return subprocess.run(
        [HEAPLENS, "attach", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def ptrace():
    """Skips unless gdb can attach to a child of this process, as heaplens attach will."""
    reason = why_gdb_cannot_attach()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def spawn():
    """Starts processes that are killed when the test ends, whatever happens."""
    started = []

    def start(args, **kwargs):
        proc = subprocess.Popen(args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def read_line(proc, timeout=60):
    """The next line of ``proc``'s standard output, failing rather than hanging."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"process {proc.pid} printed nothing in {timeout} s"
    return proc.stdout.readline()


def start_python(spawn, source, *flags, env=None, python=sys.executable):
    """A Python process running ``source``, which prints ``ready`` once it is set up."""
    proc = spawn(
        [python, *flags, "-c", source],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert read_line(proc).strip() == "ready"
    return proc


@pytest.fixture
def leaky_server(spawn):
    """The leaky app under waitress: (process, base URL)."""
    proc = spawn(
        [sys.executable, str(SCRIPTS / "leaky_wsgi_app.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = int(read_line(proc))
    return proc, f"http://127.0.0.1:{port}/"


def get(url, path="session"):
    with urllib.request.urlopen(url + path, timeout=30) as response:
        assert response.status == 200
        return response.read()


def test_attach_reports_the_leak_in_a_waitress_app_which_keeps_serving(
    ptrace, leaky_server, tmp_path
):
    server, url = leaky_server
    for _ in range(500):
        get(url)
    snapshot = tmp_path / "app.hlsnap"
    r = attach(server.pid, "--report", "--snapshot", snapshot, "--limit", "40")
    assert r.returncode == 0, r.stderr
    assert reached(server.pid, WAY) in r.stderr
    assert f"snapshot of process {server.pid} (python)" in r.stdout
    assert f"saved to {snapshot}" in r.stdout
    # The report names the leaking type and the container that holds the leak.
    assert "leaky_wsgi_app.Session" in r.stdout, r.stdout
    assert LEAK_PATH in r.stdout, r.stdout
    snap = heaplens.load(snapshot)
    assert snap.pid == server.pid
    assert snap.census().count("leaky_wsgi_app.Session") >= 500
    # The server goes on answering, and no error reached its log.
    assert get(url).startswith(b"hello ")
    assert server.poll() is None
    server.kill()
    assert "Traceback" not in server.communicate(timeout=30)[1]


@pytest.mark.skipif(
    sys.version_info < (3, 14),
    reason="sys.remote_exec reaches targets of Python 3.14 and newer: runs when the tests do",
)
def test_a_314_target_is_reached_through_remote_exec_without_gdb(leaky_server, tmp_path):
    server, url = leaky_server
    for _ in range(300):
        get(url)
    # No gdb on PATH: sys.remote_exec needs none.
    env = dict(os.environ, PATH=str(tmp_path / "no-gdb-here"))
    r = attach(
        server.pid, "--report", "--snapshot", tmp_path / "app.hlsnap", "--limit", "40", env=env
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == reached(server.pid, "sys.remote_exec") + "\n", r.stderr
    assert "leaky_wsgi_app.Session" in r.stdout, r.stdout
    assert LEAK_PATH in r.stdout, r.stdout
    assert heaplens.load(tmp_path / "app.hlsnap").census().count("leaky_wsgi_app.Session") >= 300
    assert attach_directories(server.pid) == set()
    # No page mapped by gdb: its maps hold nothing of heaplens' but the extension it imported.
    with open(f"/proc/{server.pid}/maps") as f:
        assert "heaplens-attach" not in f.read()
    assert get(url).startswith(b"hello ")
    server.kill()
    assert "Traceback" not in server.communicate(timeout=30)[1]


@pytest.mark.parametrize("how", ["PYTHON_DISABLE_REMOTE_DEBUG=1", "-X disable-remote-debug"])
def test_remote_debugging_disabled_falls_back_to_gdb_and_says_so(ptrace, spawn, tmp_path, how):
    env = dict(os.environ)
    if sys.version_info >= (3, 14):
        python, flags = sys.executable, []
    else:
        # A 3.14+ target without heaplens (no site-packages, no current directory on its path;
        # not -I, which would ignore PYTHON_DISABLE_REMOTE_DEBUG): reached through gdb, it answers
        # that it has none.
        python, flags = (find_python(14) or need_python(15)), ["-S", "-P"]
        env.pop("PYTHONPATH", None)
    if how.startswith("-X"):
        flags += how.split()
    else:
        env["PYTHON_DISABLE_REMOTE_DEBUG"] = "1"
    target = start_python(spawn, IDLE, *flags, env=env, python=python)
    r = attach(target.pid, "--snapshot", tmp_path / "s.hlsnap")
    assert reached(target.pid, "sys.remote_exec") in r.stderr
    assert (
        f"heaplens: sys.remote_exec cannot reach process {target.pid}: remote debugging is "
        "disabled in it (PYTHON_DISABLE_REMOTE_DEBUG in its environment, -X "
        "disable-remote-debug, or a Python built without it)" in r.stderr
    ), r.stderr
    assert "; trying gdb\n" + reached(target.pid, "gdb") + "\n" in r.stderr
    if python == sys.executable:
        assert r.returncode == 0, r.stderr
        assert heaplens.load(tmp_path / "s.hlsnap").pid == target.pid
    else:
        assert r.returncode == 2
        assert "so it cannot be lent to it" in r.stderr, r.stderr
    assert finish(target)["path_kept"] is True
    assert attach_directories(target.pid) == set()


def test_a_target_in_another_mount_namespace_is_reached_through_its_own_tmp(ptrace, spawn):
    """A container's view: the target has its own /tmp (a tmpfs in a mount namespace of its own),
    which heaplens reaches under /proc/PID/root."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare, to give the target a mount namespace of its own")
    command = (
        'mount -t tmpfs heaplens-test /tmp && exec "$0" -c "$1"'
    )
    target = spawn(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", command, sys.executable,
         IDLE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = read_line(target)
    if line.strip() != "ready":
        target.kill()
        pytest.skip(f"cannot mount a /tmp of the target's own here: {target.communicate()[1]}")
    root = f"/proc/{target.pid}/root"
    assert os.readlink(f"/proc/{target.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    snapshot = Path(tempfile.mkdtemp()) / "c.hlsnap"
    try:
        r = attach(target.pid, "--snapshot", snapshot)
        assert r.returncode == 0, r.stderr
        assert reached(target.pid, WAY) in r.stderr
        assert heaplens.load(snapshot).pid == target.pid
    finally:
        shutil.rmtree(snapshot.parent)
    assert attach_directories(target.pid, root) == set()
    assert finish(target) == {"path_kept": True, "heaplens": True}


def test_attach_serve_shows_the_snapshot_in_the_dashboard_until_ctrl_c(
    ptrace, leaky_server, spawn, tmp_path
):
    server, url = leaky_server
    for _ in range(50):
        get(url)
    viewer = spawn(
        [HEAPLENS, "attach", str(server.pid), "--snapshot", tmp_path / "s.hlsnap", "--serve", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # The second line may already sit in the first readline's buffer: read it without select.
    lines = [read_line(viewer), viewer.stdout.readline()]
    assert f"snapshot of process {server.pid} (python)" in lines[0], lines
    dashboard = lines[1].split(": ", 1)[1].strip()
    assert dashboard.startswith("http://127.0.0.1:"), lines
    with urllib.request.urlopen(dashboard + "api/info", timeout=30) as response:
        info = json.loads(response.read())
    assert info["pid"] == server.pid
    assert info["live"] is False
    viewer.send_signal(signal.SIGINT)
    viewer.communicate(timeout=60)
    assert viewer.returncode == 0
    assert get(url).startswith(b"hello ")


def test_attach_diff_names_what_grew_while_it_watched(ptrace, leaky_server, tmp_path):
    server, url = leaky_server
    get(url)
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            get(url)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        r = attach(server.pid, "--diff", "2", cwd=tmp_path)
    finally:
        stop.set()
        thread.join(60)
    assert r.returncode == 1, r.stdout + r.stderr
    saved = sorted(tmp_path.glob(f"heaplens-{server.pid}-*.hlsnap"))
    assert len(saved) == 2, saved
    suspects = r.stdout.split("Leak suspects", 1)[1]
    assert "1. leaky_wsgi_app.Session x" in suspects, r.stdout
    assert f"held by: {LEAK_PATH}" in suspects
    # attach's own script, on the main thread's stack at each snapshot, is not a suspect.
    assert "heaplens-attach-" not in suspects
    assert get(url).startswith(b"hello ")


def children_of(pid):
    """Pids of the children of process ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and process_state(int(entry))[1:2] == [str(pid)]:
            found.append(int(entry))
    return found


def process_state(pid):
    """The fields of /proc/PID/stat after the command: [state, ppid, ...]; [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def test_the_target_goes_on_while_a_forked_child_takes_its_snapshot(ptrace, spawn, tmp_path):
    """The target is held for a fork only: while the child that walks its heap lives (stopped
    here, so it cannot end), the target's main thread runs Python code (its tick count grows).
    A walk in the target makes no child, so none would be found."""
    ticks = tmp_path / "ticks"
    source = (
        "import os, time\n"
        "heap = [{'n': i, 's': str(i)} for i in range(200_000)]\n"
        f"fd = os.open({str(ticks)!r}, os.O_RDWR | os.O_CREAT)\n"
        "print('ready', flush=True)\n"
        "n = 0\n"
        "while True:\n"
        "    n += 1\n"
        "    os.pwrite(fd, b'%20d' % n, 0)\n"
        "    time.sleep(0.001)\n"
    )
    target = start_python(spawn, source)

    def read_ticks():
        return int(ticks.read_bytes() or b"0")

    seen = None
    for attempt in range(5):
        snapshot = tmp_path / f"{attempt}.hlsnap"
        attaching = spawn(
            [HEAPLENS, "attach", str(target.pid), "--snapshot", str(snapshot)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        while attaching.poll() is None and seen is None:
            for child in children_of(target.pid):
                os.kill(child, signal.SIGSTOP)
                try:
                    while (state := process_state(child)[:1]) not in (["T"], ["Z"], []):
                        pass
                    if state != ["T"]:
                        continue  # ended before the signal: not caught alive
                    before = read_ticks()
                    deadline = time.monotonic() + 120
                    while read_ticks() < before + 10 and time.monotonic() < deadline:
                        time.sleep(0.01)
                    seen = (before, read_ticks(), attaching.poll())
                finally:
                    os.kill(child, signal.SIGCONT)
                break
        out, err = attaching.communicate(timeout=300)
        assert attaching.returncode == 0, err
        if seen is not None:
            break
    assert seen is not None, "no child of the target was seen while attach took its snapshot"
    before, after, attach_ended = seen
    assert after >= before + 10, "the target's main thread did not run while the child lived"
    assert attach_ended is None  # the snapshot was not done before the child ended
    assert heaplens.load(snapshot).pid == target.pid


def test_a_pid_with_no_process_is_an_error():
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read())  # PIDs are below pid_max
    r = attach(pid)
    assert r.returncode == 2
    assert f"heaplens: error: no process {pid}" in r.stderr
    assert "hint: check the PID" in r.stderr


def test_a_zombie_is_an_exited_process(spawn):
    zombie = spawn(["true"])
    for _ in range(600):
        with open(f"/proc/{zombie.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    r = attach(zombie.pid)
    assert r.returncode == 2
    assert f"process {zombie.pid} has exited" in r.stderr


def test_a_program_that_is_not_python_is_refused(spawn):
    sleeper = spawn(["sleep", "60"])
    r = attach(sleeper.pid)
    assert r.returncode == 2
    assert f"process {sleeper.pid} (sleep) is not a Python process" in r.stderr
    assert "hint:" in r.stderr
    assert sleeper.poll() is None


def test_an_unsupported_python_is_refused_with_the_versions_captured(spawn, tmp_path):
    python = find_python(10)
    if python is None:
        # What heaplens reads is the program's name: a copy of sleep called python3.10 has it.
        python = str(tmp_path / "python3.10")
        shutil.copy(shutil.which("sleep"), python)
        command = [python, "60"]
    else:
        command = [python, "-c", "import time; time.sleep(60)"]
    target = spawn(command)
    time.sleep(0.5)  # until the program has replaced the fork's copy of this one
    r = attach(target.pid)
    assert r.returncode == 2
    assert (
        f"heaplens: error: process {target.pid} runs Python 3.10; heaplens captures CPython "
        f"{CAPTURED}\n" in r.stderr
    ), r.stderr
    assert "hint: heaplens cannot read the heap of an older Python" in r.stderr
    # Refused before anything touched it.
    assert "reaching process" not in r.stderr
    assert target.poll() is None


@pytest.mark.parametrize("minor", [m for m in SUPPORTED_MINORS if m != sys.version_info[1]])
def test_another_version_without_heaplens_is_told_what_to_install(ptrace, spawn, minor):
    python = need_python(minor)
    # -I -S: no site-packages, so no heaplens of its own, whatever is installed for it.
    target = start_python(spawn, IDLE, "-I", "-S", python=python)
    r = attach(target.pid)
    assert r.returncode == 2, r.stdout + r.stderr
    # It was reached (its own interpreter answered that it has no heaplens), the way its version
    # allows.
    assert reached(target.pid, "sys.remote_exec" if minor >= 14 else "gdb") in r.stderr
    ours = "%d.%d" % sys.version_info[:2]
    assert f"heaplens: error: process {target.pid} runs Python 3.{minor}." in r.stderr, r.stderr
    assert (
        f" without heaplens, and the heaplens running this command is for Python {ours}, so it "
        "cannot be lent to it\n" in r.stderr
    ), r.stderr
    hint = r.stderr.split("hint:", 1)[1]
    assert f"`{python} -m pip install heaplens`" in hint, hint
    assert f"--python-path DIR, a directory holding heaplens built for Python 3.{minor}" in hint
    assert finish(target) == {"path_kept": True, "heaplens": False}


def test_missing_gdb_is_explained(spawn):
    # Remote debugging disabled: gdb is needed on every version.
    target = start_python(
        spawn, "import time\nprint('ready', flush=True)\ntime.sleep(60)", env=NO_REMOTE_DEBUG
    )
    env = dict(os.environ, PATH=str(Path(sys.executable).parent / "no-such-dir"))
    r = attach(target.pid, env=env)
    assert r.returncode == 2
    if sys.version_info >= (3, 14):
        assert (
            f"sys.remote_exec cannot reach process {target.pid} (remote debugging is disabled in "
            "it" in r.stderr
        ), r.stderr
        assert "and gdb, the other way in, is not installed" in r.stderr
    else:
        assert "gdb is not installed" in r.stderr
    assert "hint: install gdb (apt-get install gdb" in r.stderr
    assert target.poll() is None


# Reports, after a line on stdin, whether the process ran attach's script (an audit hook sees
# the script opened), whether anything was added to its globals, and whether heaplens was
# imported; until then its main thread is blocked in a read, in C, running no Python code.
BLOCKED = """
import json, sys, time
opened = []
def hook(event, args):
    if event == "open" and "heaplens-attach-" in str(args[0]):
        opened.append(str(args[0]))
sys.addaudithook(hook)
names = set(globals()) | {"names"}
print("ready", flush=True)
sys.stdin.readline()
for _ in range(100000):  # bytecode: the main thread's next safe point is here
    pass
time.sleep(0.2)
added = sorted(set(globals()) - names - {"_"})
print(json.dumps({"opened": opened, "added": added, "heaplens": "heaplens" in sys.modules}))
"""


@pytest.mark.parametrize(
    "env", [None, NO_REMOTE_DEBUG], ids=["default-way", "gdb"]
)
def test_a_main_thread_blocked_in_c_times_out_and_the_late_call_is_harmless(ptrace, spawn, env):
    if env is NO_REMOTE_DEBUG and WAY == "gdb":
        pytest.skip("gdb is the default way before Python 3.14")
    target = start_python(spawn, BLOCKED, env=env)
    r = attach(target.pid, "--timeout", "3")
    assert r.returncode == 2, r.stdout + r.stderr
    assert reached(target.pid, "gdb" if env else WAY) in r.stderr
    assert f"process {target.pid} did not reach a safe point within 3 s" in r.stderr
    assert "has not run Python code" in r.stderr
    assert "Nothing was changed" in r.stderr
    assert "hint: try again while the process is busy" in r.stderr
    assert target.poll() is None
    # Woken up, the target runs the queued call, which finds its request withdrawn and does
    # nothing: no error, no new name, no heaplens. (Through sys.remote_exec, the target reads the
    # bootstrap from the directory, which stays until then; the script then removes it.)
    out, err = target.communicate("go\n", timeout=60)
    assert target.returncode == 0, err
    assert err == ""
    report = json.loads(out)
    assert any(path.endswith("/attach.py") for path in report["opened"]), report
    assert len({os.path.dirname(path) for path in report["opened"]}) == 1, report
    assert report["added"] == []
    assert report["heaplens"] is False
    assert attach_directories(target.pid) == set()


def test_ctrl_c_while_waiting_withdraws_the_request(ptrace, spawn):
    target = start_python(spawn, BLOCKED)
    heaplens_process = spawn(
        [HEAPLENS, "attach", str(target.pid), "--timeout", "120"],
        stderr=subprocess.PIPE,
        text=True,
        # As a terminal's Ctrl-C finds it, even if this test runs where SIGINT is ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Until the request is queued: the directory appears before gdb runs, and gdb is quick.
    time.sleep(3)
    heaplens_process.send_signal(signal.SIGINT)
    err = heaplens_process.communicate(timeout=60)[1]
    assert heaplens_process.returncode == 2
    assert f"interrupted; the request to process {target.pid} was withdrawn" in err
    out, err = target.communicate("go\n", timeout=60)
    assert target.returncode == 0, err
    assert err == ""
    assert json.loads(out)["heaplens"] is False
    assert attach_directories(target.pid) == set()


# A Python process whose main thread runs Python code often, until a file appears (its first
# argument), or a line on stdin when it has none; then it prints whether its sys.path is as it
# was and whether heaplens was imported.
IDLE = """
import json, os, select, sys, time
flag = sys.argv[1] if len(sys.argv) > 1 else None
path = list(sys.path)
print("ready", flush=True)
while not (os.path.exists(flag) if flag else select.select([sys.stdin], [], [], 0)[0]):
    time.sleep(0.05)
print(json.dumps({"path_kept": sys.path == path, "heaplens": "heaplens" in sys.modules}))
"""


def finish(target, flag=None):
    """Ends an IDLE target (by its flag file, or a line on its stdin) and returns its report."""
    if flag is None:
        out, err = target.communicate("done\n", timeout=60)
    else:
        flag.touch()
        out, err = target.communicate(timeout=60)
    assert target.returncode == 0, err
    assert err == ""
    return json.loads(out)


@pytest.fixture
def start_idle(spawn, tmp_path):
    def start(*flags, env=None):
        flag = tmp_path / "done"
        proc = spawn(
            [sys.executable, *flags, "-c", IDLE, str(flag)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert read_line(proc).strip() == "ready"
        return proc, flag

    return start


def test_heaplens_not_importable_is_explained(ptrace, start_idle, tmp_path):
    target, flag = start_idle("-I", "-S")
    r = attach(target.pid, "--python-path", tmp_path / "empty")
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"heaplens is not importable in process {target.pid}" in r.stderr
    assert "No module named 'heaplens'" in r.stderr
    assert "--python-path" in r.stderr.split("hint:", 1)[1]
    assert finish(target, flag) == {"path_kept": True, "heaplens": False}


def test_a_target_without_heaplens_is_lent_the_running_one(ptrace, start_idle, tmp_path):
    target, flag = start_idle("-I", "-S")
    snapshot = tmp_path / "idle.hlsnap"
    r = attach(target.pid, "--snapshot", snapshot)
    assert r.returncode == 0, r.stderr
    assert heaplens.load(snapshot).pid == target.pid
    # heaplens stays imported, but the target's sys.path is as it was.
    assert finish(target, flag) == {"path_kept": True, "heaplens": True}


def fake_gdb(directory, script):
    """A directory to put first on PATH, holding a `gdb` that runs ``script`` (sh)."""
    directory.mkdir()
    gdb = directory / "gdb"
    gdb.write_text("#!/bin/sh\n" + script)
    gdb.chmod(0o755)
    return dict(os.environ, PATH=f"{directory}{os.pathsep}{os.environ['PATH']}")


def test_gdbs_refusal_to_trace_is_explained(start_idle, tmp_path):
    # The kernel's refusal as gdb reports it (this machine may well allow tracing).
    env = fake_gdb(
        tmp_path / "bin",
        'echo "Attaching to process $4"\necho "ptrace: Operation not permitted."\nexit 1\n',
    )
    target, flag = start_idle(env=NO_REMOTE_DEBUG)
    r = attach(target.pid, env=env)
    assert r.returncode == 2
    assert reached(target.pid, "gdb") in r.stderr
    assert f"no permission to trace process {target.pid}" in r.stderr
    hint = r.stderr.split("hint:", 1)[1]
    assert "sudo" in hint and "--cap-add=SYS_PTRACE" in hint and "ptrace_scope" in hint
    assert finish(target, flag) == {"path_kept": True, "heaplens": False}


def test_a_gdb_that_hangs_is_stopped_and_the_target_left_running(start_idle, tmp_path):
    env = fake_gdb(tmp_path / "bin", "exec sleep 600\n")
    target, flag = start_idle(env=NO_REMOTE_DEBUG)
    r = attach(target.pid, "--timeout", "1", env=env)
    assert r.returncode == 2
    assert f"gdb did not finish attaching to process {target.pid}" in r.stderr
    assert "the process was left running" in r.stderr
    # The watchdog's signal (SIGURG, ignored by default) did the target no harm.
    assert finish(target, flag) == {"path_kept": True, "heaplens": False}


def test_attaching_again_and_again_leaves_nothing_behind(ptrace, start_idle, tmp_path):
    target, flag = start_idle()
    # The first attach imports heaplens in the target; later ones must add nothing at all.
    for name in ("first", "second", "third"):
        r = attach(target.pid, "--snapshot", tmp_path / f"{name}.hlsnap")
        assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [HEAPLENS, "diff", tmp_path / "second.hlsnap", tmp_path / "third.hlsnap"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No type grew." in r.stdout, r.stdout
    assert finish(target, flag) == {"path_kept": True, "heaplens": True}
    assert attach_directories(target.pid) == set()


def test_another_users_process_is_refused_with_the_remedy(spawn):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv, to run heaplens as another user")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*as_nobody, HEAPLENS, "--version"], capture_output=True).returncode != 0:
        pytest.skip("the user nobody cannot run this heaplens")
    target = start_python(spawn, "import time\nprint('ready', flush=True)\ntime.sleep(60)")
    r = subprocess.run(
        [*as_nobody, HEAPLENS, "attach", str(target.pid)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert r.returncode == 2
    assert f"no permission to trace process {target.pid}: it runs as uid 0" in r.stderr
    assert "hint: run heaplens as the user the process runs as, or with sudo" in r.stderr
    assert target.poll() is None


def test_a_snapshot_that_could_not_be_saved_is_refused_before_the_process_is_reached(spawn):
    """Issue 12, item 13: without --snapshot, the snapshot goes to the current directory; one
    the user may not write to is said at once, and the process is never paused for a snapshot
    that would be lost."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv, to run heaplens as another user")
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as scope:
            if int(scope.read()) != 0:
                pytest.skip("Yama keeps a user from tracing a process it did not start")
    except FileNotFoundError:
        pass
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*as_nobody, HEAPLENS, "--version"], capture_output=True).returncode != 0:
        pytest.skip("the user nobody cannot run this heaplens")
    # The user's own process, which it may trace, run from a directory it may not write to.
    sleeps = "import time\nprint('ready', flush=True)\ntime.sleep(60)"
    target = spawn(
        [*as_nobody, sys.executable, "-c", sleeps],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    assert read_line(target).strip() == "ready"
    r = subprocess.run(
        [*as_nobody, HEAPLENS, "attach", str(target.pid)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert re.fullmatch(
        rf"heaplens: error: cannot write heaplens-{target.pid}-\d{{8}}T\d{{6}}Z\.hlsnap: "
        r"Permission denied \(os error 13\)",
        lines[0],
    ), r.stderr
    assert lines[1].startswith("hint: write to a directory you may create files in"), r.stderr
    assert "reaching process" not in r.stderr
    assert target.poll() is None
    assert attach_directories(target.pid) == set()
