"""Shared helpers for the heaplens tests."""

import contextlib
import ctypes
import gc
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def refcount_at(address):
    """The reference count of the object at ``address`` (pass ``id(obj)``), read from its
    header. ``sys.getrefcount(obj)`` counts the caller's own stack reference, and since 3.14 the
    compiler decides per call site whether there is one (it borrows where it can prove the
    local alive), so two calls of it around the code under test can differ by one for nothing.
    The low 32 bits are the count on every supported version (3.14 keeps flags above them)."""
    return ctypes.c_uint32.from_address(address).value


@contextlib.contextmanager
def gc_disabled():
    """Runs the block with automatic garbage collection off, restoring it afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def wait_for_samples(sampler, n, timeout=30.0):
    """Polls until the sampler holds ``n`` more samples than now (the timeout only ends a hang)."""
    target = len(sampler) + n
    deadline = time.monotonic() + timeout
    while len(sampler) < target:
        assert time.monotonic() < deadline, "the sampler took no samples"
        time.sleep(0.01)


class ThreadHolding:
    """A thread whose running frame holds ``make()``'s result in a local called ``held`` until
    the thread is released. The object is reachable from nothing else."""

    def __init__(self, make, name):
        self._started = threading.Event()
        self._release = threading.Event()
        self.held_id = None
        self.thread = threading.Thread(target=self._run, args=(make,), name=name, daemon=True)

    def _run(self, make):
        held = make()
        self.held_id = id(held)
        self._started.set()
        self._release.wait()

    def __enter__(self):
        self.thread.start()
        assert self._started.wait(10), "the holding thread did not start"
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.thread.join(10)


@pytest.fixture
def thread_holding():
    return ThreadHolding


class FinishedRequests:
    """A WSGI app around another that counts the requests the server has finished with: closed
    their response (PEP 3333), which is when heaplens' middleware ends a request. A client that
    sends requests one after another calls :meth:`wait` after each so that the server is done
    with one before the next arrives, as on a quiet server: on a loaded machine a server thread
    may close a response after its client has read it and sent the next request, and
    per-endpoint traces then count the two requests as overlapped (their figures are kept
    apart), so a test of those figures would depend on the load."""

    def __init__(self, app, thread_per_request=False):
        self.app = app
        # A server that starts a thread per request (werkzeug's threaded one) still runs that
        # thread, holding the request's objects, after the response is closed: wait for it too.
        self._thread_per_request = thread_per_request
        self._threads = []
        self._finished = 0
        self._sent = 0
        self._changed = threading.Condition()

    #: The request header that marks the requests to count (others, such as requests that a
    #: test makes overlap on purpose, are not waited for).
    HEADER = "X-Test-Wait"

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        if "HTTP_X_TEST_WAIT" not in environ:
            return body
        return _ClosedTogether(body, self._finish)

    def _finish(self):
        with self._changed:
            self._finished += 1
            if self._thread_per_request:
                self._threads.append(threading.current_thread())
            self._changed.notify_all()

    def sent(self):
        """Notes one more request sent with :attr:`HEADER`; returns the headers to send."""
        self._sent += 1
        return {self.HEADER: "1"}

    def wait(self, timeout=60.0):
        """Waits until the server has finished every request sent so far (the timeout only
        ends a hang)."""
        with self._changed:
            assert self._changed.wait_for(lambda: self._finished >= self._sent, timeout), (
                f"the server finished {self._finished} of {self._sent} requests"
            )
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"the server's {thread.name} did not end"


class _ClosedTogether:
    def __init__(self, body, done):
        self._body = body
        self._done = done

    def __iter__(self):
        return iter(self._body)

    def close(self):
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


class ReverseProxy:
    """A reverse proxy on 127.0.0.1 in front of ``upstream`` (``host:port``), configured as
    production proxies are (nginx's ``proxy_pass`` with ``proxy_set_header X-Forwarded-For
    $proxy_add_x_forwarded_for``): it connects to the app from loopback, sends the upstream's
    address as ``Host``, and says who the client was in ``X-Forwarded-For`` (or in the header
    named by ``header``). Use as a context manager; :attr:`url` is its address."""

    def __init__(self, upstream, header="X-Forwarded-For"):
        import http.client
        import http.server

        forwarded_header = header

        class Forward(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = upstream
                headers[forwarded_header] = (
                    f"for={self.client_address[0]}"
                    if forwarded_header == "Forwarded"
                    else self.client_address[0]
                )
                connection = http.client.HTTPConnection(upstream, timeout=60)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    content = answer.read()
                    self.send_response(answer.status)
                    for name, value in answer.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(content)
                finally:
                    connection.close()

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def http_get(url, method="GET", headers=None):
    """``(status, JSON body or text)`` of one request with urllib, whatever the status."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
        error.close()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def heaplens_script():
    """The ``heaplens`` console script of the Python running the tests."""
    found = shutil.which("heaplens", path=str(Path(sys.executable).parent)) or shutil.which(
        "heaplens"
    )
    assert found, "the heaplens console script is not installed"
    return found


@contextlib.contextmanager
def serving(*args, patience=60):
    """``heaplens ARGS...`` serving HTTP (``serve``, ``attach --serve``, ``metrics --port``):
    yields the address it prints (``http://HOST:PORT/...``), on the first line or after the one
    that says what was captured; then stops it with Ctrl-C, which must end it with status 0."""
    with subprocess.Popen(
        [heaplens_script(), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            lines = []
            for _ in range(3):
                lines.append(process.stdout.readline())
                found = re.search(r"http://\S+", lines[-1])
                if found or not lines[-1]:
                    break
            if not found:
                process.kill()
                pytest.fail(f"heaplens {args[0]} did not start: {lines!r} "
                            f"{process.stderr.read()!r}")
            yield found.group(0)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                _, err = process.communicate(timeout=patience)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                pytest.fail(f"heaplens {args[0]} did not stop on Ctrl-C")
        assert process.returncode == 0, err


def why_gdb_cannot_attach():
    """Why gdb cannot attach to a child of this process, as ``heaplens attach`` would (no gdb,
    or ptrace not allowed), or None when it can."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "gdb is not installed (apt-get install gdb; CI installs it)"
    child = subprocess.Popen(["sleep", "60"])
    try:
        r = subprocess.run(
            [gdb, "-nx", "-batch", "-p", str(child.pid)], capture_output=True, text=True, timeout=60
        )
    finally:
        child.kill()
        child.wait()
    if "Operation not permitted" in r.stdout + r.stderr:
        return "ptrace is not allowed here (kernel.yama.ptrace_scope, or no CAP_SYS_PTRACE)"
    return None
