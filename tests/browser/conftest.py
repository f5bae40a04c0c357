"""Fixtures for driving the dashboard page in a real Chromium with Playwright.

Chromium is the system's (Debian's ``chromium`` package, or ``HEAPLENS_CHROMIUM``): Playwright's
own browser download needs the internet. Without Chromium or Playwright the browser tests are
skipped, except under ``CI=true``, where they fail: CI must never pass by skipping them.
"""

import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FinishedRequests, serving, why_gdb_cannot_attach

from . import leaky_shop

HERE = Path(__file__).resolve().parent
MOUNT = "/_heaplens"
# Playwright waits up to this long for what a test expects: a bound that ends a hang, not a
# measure of speed (nothing here asserts on timing).
PATIENCE_MS = 30_000
# Chromium as the tests run it: as root (hence no sandbox), without a GPU, and without the
# background connections (updates, sync, QUIC probes) that a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def _chromium():
    explicit = os.environ.get("HEAPLENS_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module. Not per session: while Playwright's sync API is open, its
    asyncio loop counts as running in this thread, and ``asyncio.run`` in the other modules'
    tests (in the same xdist worker) would fail."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install '.[test]')")
    expect.set_options(timeout=PATIENCE_MS)
    executable = _chromium()
    if executable is None:
        _missing("Chromium is not installed (apt-get install chromium, or set HEAPLENS_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Problems:
    """What the page reported that it should not have: console errors, uncaught exceptions."""

    def __init__(self, page):
        self.seen = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"uncaught: {error}"))

    def _console(self, message):
        # CSP violations are reported as console errors too ("Refused to ...").
        if message.type != "error":
            return
        # The browser asks the site for /favicon.ico on its own; the page does not have one.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        self.seen.append(f"console error: {message.text} ({message.location.get('url')})")


# Records every Content-Security-Policy violation in the page, whatever its source. Playwright
# injects this before the page's own script, outside the page's CSP.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture
def page(browser):
    """A fresh page (own context, so nothing is shared between tests) with ``page.problems``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PATIENCE_MS)
    page = context.new_page()
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.problems = Problems(page).seen
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """Where full-page screenshots go: ``HEAPLENS_SCREENSHOTS``, or a temporary directory."""
    chosen = os.environ.get("HEAPLENS_SCREENSHOTS")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


class Dashboard:
    """A running dashboard: the address of its page (``root``, ending in ``/``), a client for its
    API, and for a live one the app it is mounted in (``app``)."""

    def __init__(self, root, app=None, token=None, finished=None):
        self.root = root
        self.app = app
        self.token = token
        self.url = root + (f"?token={token}" if token else "")
        # The live shop's FinishedRequests, to send its requests one after another.
        self._finished = finished

    def api(self, path):
        request = urllib.request.Request(self.root + path)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def _shop(self, path):
        """One request to the shop, done with by the server before this returns (see
        FinishedRequests)."""
        headers = self._finished.sent() if self._finished else {}
        request = urllib.request.Request(self.app + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
        if self._finished:
            self._finished.wait()

    def order(self, n=1, items=1):
        """Makes ``n`` requests to the shop, each of which leaks ``items`` orders."""
        for _ in range(n):
            self._shop("/order" if items == 1 else f"/order?items={items}")

    def health(self, n=1):
        """Makes ``n`` requests to the shop that leave nothing behind."""
        for _ in range(n):
            self._shop("/health")

    def samples(self):
        memory = self.api("api/overview?limit=1")["memory"]
        return memory["samples"] if memory else 0

    def wait_for_samples(self, n, timeout=60.0):
        """Polls the API until the sampler has taken ``n`` more samples (the timeout only ends a
        hang)."""
        target = self.samples() + n
        deadline = time.monotonic() + timeout
        while self.samples() < target:
            assert time.monotonic() < deadline, "the dashboard's sampler took no samples"
            time.sleep(0.05)

    def leak_steadily(self, rounds=5, per_round=20):
        """Leaks orders between samples, so that the history shows steady growth."""
        for _ in range(rounds):
            self.order(per_round)
            self.wait_for_samples(1)

    @contextlib.contextmanager
    def still_leaking(self, per_round=20):
        """Goes on leaking between samples, from another thread, while the block runs: a leak
        that has stopped is not steady growth, and the sampler never stops sampling."""
        stop = threading.Event()

        def leak():
            while not stop.is_set():
                self.order(per_round)
                self.wait_for_samples(1)

        thread = threading.Thread(target=leak, name="still-leaking")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


@pytest.fixture
def serve_shop(monkeypatch):
    """Starts the leaky shop, wrapped in ``heaplens.wsgi.HeapLens(app, **options)``, on a real
    HTTP server (werkzeug's, threaded) on a free loopback port; returns a :class:`Dashboard`."""
    pytest.importorskip("flask")
    from werkzeug.serving import WSGIRequestHandler, make_server

    import heaplens._middleware
    from heaplens.wsgi import HeapLens

    # The middleware's sampler stretches its period to spend at most 0.5% of the time on
    # censuses: on a loaded machine, one sample in tens of seconds. The page tests wait for a
    # few samples; at 5% the sampler keeps close to the period they ask for.
    monkeypatch.setattr(heaplens._middleware, "SAMPLER_BUDGET", 0.05)

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass  # one line per request would bury a failure's report

    running = []

    def serve(**options):
        app = leaky_shop.make_app()
        app.wsgi_app = HeapLens(app.wsgi_app, **options)
        finished = FinishedRequests(app, thread_per_request=True)
        server = make_server("127.0.0.1", 0, finished, threaded=True, request_handler=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread, app))
        app_url = f"http://127.0.0.1:{server.server_port}"
        return Dashboard(
            app_url + MOUNT + "/", app=app_url, token=options.get("token"), finished=finished
        )

    yield serve
    for server, thread, app in running:
        server.shutdown()
        server.server_close()
        thread.join(10)
        app.wsgi_app.close()
    leaky_shop.ORDERS.clear()
    # Other tests in this worker compare snapshots: leave no cyclic garbage (Flask makes some)
    # for a collection in the middle of theirs.
    gc.collect()


@pytest.fixture(scope="module")
def leaky_snapshot(tmp_path_factory):
    """A snapshot file of a separate process in which the shop leaked 2,000 orders (the module
    imported under the same name as here, so that its types have the same names)."""
    path = tmp_path_factory.mktemp("offline") / "leaky.hlsnap"
    package = leaky_shop.__package__
    code = f"import sys; from {package} import leaky_shop; leaky_shop.save_snapshot(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        check=True,
        timeout=300,
    )
    return path


@pytest.fixture(scope="module")
def leaky_pair(tmp_path_factory):
    """Two snapshot files of one process: after 100 leaked orders, and after 1,000 more."""
    folder = tmp_path_factory.mktemp("offline-pair")
    before, after = folder / "before.hlsnap", folder / "after.hlsnap"
    package = leaky_shop.__package__
    code = (
        f"import sys; from {package} import leaky_shop; "
        "leaky_shop.save_snapshot(sys.argv[1], orders=100); "
        "leaky_shop.save_snapshot(sys.argv[2], orders=1000)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(before), str(after)],
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        check=True,
        timeout=300,
    )
    return before, after


@pytest.fixture
def viewers():
    """Starts ``heaplens ARGS...`` commands that serve a dashboard, returns a :class:`Dashboard`
    at the address each prints; stops them with Ctrl-C afterwards."""
    with contextlib.ExitStack() as running:

        def start(*args):
            return Dashboard(running.enter_context(serving(*args)))

        yield start


@pytest.fixture
def serve_file(viewers):
    """Starts ``heaplens serve FILE --port 0`` (the console script) and returns a
    :class:`Dashboard` at the address it prints; stops it with Ctrl-C afterwards."""

    def serve(path, *options):
        return viewers("serve", "--port", "0", *options, path)

    return serve


def _attach_can_reach_a_child():
    """Whether ``heaplens attach`` can reach a child of this process: through
    ``sys.remote_exec`` (3.14+), or through gdb where ptrace is allowed."""
    if sys.version_info >= (3, 14):
        return
    reason = why_gdb_cannot_attach()
    if reason and reason.startswith("gdb is not installed"):
        _missing(reason)
    elif reason:
        pytest.skip(reason)


@pytest.fixture
def leaky_server():
    """The leaky WSGI app of ``tests/scripts`` under waitress, in a process of its own:
    ``(process, base URL)``; killed afterwards."""
    pytest.importorskip("waitress")
    _attach_can_reach_a_child()
    script = HERE.parent / "scripts" / "leaky_wsgi_app.py"
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        port = int(process.stdout.readline())
        yield process, f"http://127.0.0.1:{port}/"
    finally:
        process.kill()
        process.communicate(timeout=30)
