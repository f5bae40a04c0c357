"""Snapshots taken in a forked child (``heaplens.snapshot(path)``, ``fork=True``, the
dashboard's button): the same snapshot as the walk in the program, while the program's threads
go on."""

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest

import heaplens

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the child in /proc (Linux)"
)

# One heap, snapshots of it taken in a forked child and in the program (today's walk), written
# to a file by the snapshot itself and read back into the program (as the dashboard does). The
# two ways are switched outside the Python heap (HEAPLENS_NO_FORK set with libc's setenv), so
# that each snapshot is taken by the same Python code with the same objects; each kind is taken
# once first to warm up (a first snapshot imports and caches what later ones reuse).
SAME_HEAP = textwrap.dedent(
    """
    import ctypes, gc, os, sys, threading
    import heaplens

    gc.disable()
    libc = ctypes.CDLL(None)

    class Order:
        pass

    class Shop:
        __slots__ = ("name", "orders")

    SHOP = Shop()
    SHOP.name = "corner"
    SHOP.orders = {}
    for i in range(3000):
        order = Order()
        order.id = i
        order.lines = [str(i) * 3, (i, float(i)), b"x" * (i % 7)]
        SHOP.orders[f"k{i}"] = order
    garbage = []
    garbage.append(garbage)          # cyclic garbage the collector (off) has not freed
    del garbage, order, i
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="waiter")
    worker.start()                   # a second thread's stack

    def forked():
        libc.unsetenv(b"HEAPLENS_NO_FORK")

    def walked():
        libc.setenv(b"HEAPLENS_NO_FORK", b"1", 1)

    D = sys.argv[1]
    P = D + "/snap.hlsnap"
    for warm_up in range(2):
        walked(); heaplens.snapshot(P); os.replace(P, D + "/warm.hlsnap")
        forked(); heaplens.snapshot(P); os.replace(P, D + "/warm.hlsnap")
        walked(); heaplens.snapshot(fork=True).save(D + "/warm.hlsnap")
        forked(); heaplens.snapshot(fork=True).save(D + "/warm.hlsnap")
    del warm_up
    walked(); heaplens.snapshot(P); os.replace(P, D + "/walked.hlsnap")
    forked(); heaplens.snapshot(P); os.replace(P, D + "/forked.hlsnap")
    walked(); heaplens.snapshot(fork=True).save(D + "/read-walked.hlsnap")
    forked(); heaplens.snapshot(fork=True).save(D + "/read-forked.hlsnap")
    stop.set()
    worker.join()
    """
)


def describe(snap):
    """Everything a snapshot says, in a form two snapshots can be compared by."""
    nodes = {}
    for name in {row.name for row in snap.census()}:
        for node in snap.by_type(name):
            nodes[node.address] = (
                node.type,
                node.size,
                sorted(node.flags),
                node.name,
                [(label, target.address) for label, target in node.referents],
            )
    return {
        "counts": (snap.node_count, snap.edge_count, len(snap)),
        "pid": snap.pid,
        "python": snap.python_version,
        "census": sorted((r.name, r.count, r.size) for r in snap.census()),
        "roots": [(label, node.address) for label, node in snap.roots()],
        "threads": [(t.name, [label for label, _ in t.referents]) for t in snap.threads()],
        "unreachable": sorted(n.address for n in snap.unreachable()),
        "nodes": nodes,
        "report": snap.report(),
    }


def test_a_forked_snapshot_is_the_walk_in_the_program(tmp_path):
    program = tmp_path / "same_heap.py"
    program.write_text(SAME_HEAP)
    done = subprocess.run(
        [sys.executable, str(program), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for kind in ("", "read-"):
        walked = describe(heaplens.load(tmp_path / f"{kind}walked.hlsnap"))
        assert len(walked["nodes"]) > 3000 * 6
        assert any(name.endswith("Order") and n == 3000 for name, n, _ in walked["census"])
        assert walked["unreachable"]
        assert len(walked["threads"]) == 2
        forked = describe(heaplens.load(tmp_path / f"{kind}forked.hlsnap"))
        for key in walked:
            assert forked[key] == walked[key], (kind, key)


def _children():
    """Pids of this process' children, from /proc."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _stat(int(entry))[1:2] == [str(me)]:
            found.append(int(entry))
    return found


def _stat(pid):
    """The fields of /proc/PID/stat after the command: [state, ppid, ...]; [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return []
    # The command may hold spaces and parentheses: the fields start after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def _catch_the_walking_child(tmp_path, look, again=lambda last: False):
    """Takes snapshots (up to 20) until the child that walks the heap is caught: stopped (so it
    cannot end), it is given to ``look(pid, returned)``, which says whether the snapshot call had
    returned. Caught again while ``again(what look returned)`` says so and the call has not
    returned. Returns what ``look`` returned last (None when no child was caught) and the last
    snapshot's path."""
    others = set(_children())  # processes other tests of this worker may have started
    seen = []
    returned = threading.Event()
    taking = threading.Event()

    def catch(pid):
        os.kill(pid, signal.SIGSTOP)
        try:
            while (state := _stat(pid)[:1]) not in (["T"], ["Z"], []):
                pass
            if state == ["T"]:  # else it ended before the signal: not caught alive
                seen.append(look(pid, returned.is_set()))
        finally:
            os.kill(pid, signal.SIGCONT)

    def watch():
        taking.wait()
        while not returned.is_set() and (not seen or again(seen[-1])):
            for pid in set(_children()) - others:
                catch(pid)
                break

    for attempt in range(20):
        taking.clear()
        returned.clear()
        watcher = threading.Thread(target=watch)
        watcher.start()
        path = tmp_path / f"{attempt}.hlsnap"
        taking.set()
        heaplens.snapshot(path)
        returned.set()
        watcher.join()
        if seen:
            break
    return (seen[-1] if seen else None), path


def test_the_programs_threads_go_on_while_the_child_walks(tmp_path):
    """While the child that takes the snapshot lives (stopped here, so it cannot end), a thread
    of the program runs Python code and the snapshot call has not returned (it returns only once
    the child has ended): the program is not stopped for the walk. A walk in the program holds
    the GIL throughout and makes no child, so this thread would find none."""
    heap = [{"n": i, "s": str(i)} for i in range(100_000)]
    others = set(_children())

    def look(pid, returned):
        ticks = 0
        for _ in range(100):  # Python code, run while the child is stopped
            ticks += 1
        return {"ticks": ticks, "returned": returned}

    seen, path = _catch_the_walking_child(tmp_path, look)
    assert seen, "no child process was seen while the snapshot was taken"
    assert seen["ticks"] == 100 and not seen["returned"]
    assert heaplens.load(path).get(id(heap)) is not None
    assert set(_children()) <= others


def test_the_child_holds_none_of_the_programs_files(tmp_path):
    """A forked child starts with a copy of every descriptor of the program: had it kept them, a
    connection the program closed while the child walked would have stayed open until the child
    was done (its client waiting for the end of the response), a pipe's reader would not have
    seen its end, a locked file would have stayed locked. Caught stopped while it walks, the
    child holds its two pipes to the program and nothing else: not the pipe this test opened,
    nor pytest's files."""
    heap = [{"n": i, "s": str(i)} for i in range(100_000)]
    read_end, write_end = os.pipe()
    programs_pipe = f"pipe:[{os.fstat(write_end).st_ino}]"

    def look(pid, returned):
        held = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                held.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
        return held

    try:
        # Caught again until it holds at most its pipes: the first catch may come in the few
        # instructions between the fork and the closing.
        held, _ = _catch_the_walking_child(tmp_path, look, again=lambda held: len(held) > 2)
        assert held is not None, "no child process was seen while the snapshot was taken"
        assert programs_pipe not in held, held
        assert len(held) == 2 and all(h.startswith("pipe:") for h in held), held
    finally:
        os.close(read_end)
        os.close(write_end)
    assert heap


def test_a_snapshot_is_taken_in_the_program_where_forks_are_off(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HEAPLENS_NO_FORK", "1")
    keep = [object() for _ in range(10)]
    with caplog.at_level(logging.INFO, logger="heaplens.capture"):
        heaplens.snapshot(tmp_path / "walked.hlsnap")
    said = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
    assert any("not in a forked child: HEAPLENS_NO_FORK is set" in m for m in said), said
    assert heaplens.load(tmp_path / "walked.hlsnap").get(id(keep[0])) is not None


def test_a_forked_snapshot_says_so_at_debug_level(tmp_path, caplog):
    others = set(_children())
    with caplog.at_level(logging.DEBUG, logger="heaplens.capture"):
        snap = heaplens.snapshot(fork=True)
    said = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
    assert any("snapshot in forked child" in m for m in said), said
    assert snap.pid == os.getpid()
    assert set(_children()) <= others


def test_a_path_that_cannot_be_written_fails_and_leaves_no_child(tmp_path):
    others = set(_children())
    with pytest.raises(FileNotFoundError):
        heaplens.snapshot(tmp_path / "missing" / "x.hlsnap")
    with pytest.raises(OSError, match="a directory, not a regular file"):
        heaplens.snapshot(tmp_path)
    assert set(_children()) <= others
    assert os.listdir(tmp_path) == []


class Kept:
    """What the dashboard's test keeps alive."""


def test_the_dashboard_takes_its_snapshot_in_a_child(caplog):
    """The dashboard's button: the snapshot it keeps answers as the walk in the program does."""
    from heaplens.wsgi import HeapLens

    kept = [Kept() for _ in range(500)]

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    wrapped = HeapLens(app, period=60)
    try:

        def call(method, path):
            environ = {
                "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
                "REMOTE_ADDR": "127.0.0.1", "HTTP_X_HEAPLENS": "1", "SERVER_NAME": "localhost",
                "SERVER_PORT": "80", "HTTP_HOST": "localhost", "wsgi.url_scheme": "http",
                "wsgi.input": __import__("io").BytesIO(b""), "CONTENT_LENGTH": "0",
            }
            answer = {}
            body = b"".join(wrapped(environ, lambda s, h, e=None: answer.update(status=s)))
            return answer["status"], body

        with caplog.at_level(logging.DEBUG, logger="heaplens.capture"):
            status, body = call("POST", "/_heaplens/api/snapshot")
        assert status.startswith("200"), body
        said = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
        assert any("snapshot in forked child" in m for m in said), said
        name = f"{Kept.__module__}.{Kept.__qualname__}"
        status, body = call("GET", "/_heaplens/api/types/" + name)
        assert status.startswith("200"), body
        shown = json.loads(body)
        walked = heaplens.snapshot(fork=False)
        assert len(walked.by_type(name)) == 500
        assert shown["count"] == 500
    finally:
        wrapped.close()
        del kept
