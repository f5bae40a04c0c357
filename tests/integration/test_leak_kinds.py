"""Each kind of leak developers meet, caught by comparing two snapshots: the top suspect names
the leaking type and the container that accumulates it, with its retaining path.

Every test runs a "request" a few hundred times between two snapshots; the request leaks one
object of a distinctive class (with some payload) through the mechanism under test.
"""

import asyncio
import functools
import gc
import logging
import re
import threading

import pytest

import heaplens

from conftest import gc_disabled

RUNS = 300


def leak_diff(request, runs=RUNS):
    """Warms `request` up, then compares snapshots around `runs` more calls."""
    for _ in range(3):
        request()
    # Cyclic garbage left by earlier tests (or by collecting test modules) would otherwise be
    # collected during the runs, and the new objects would reuse the freed addresses.
    gc.collect()
    before = heaplens.snapshot()
    for _ in range(runs):
        request()
    after = heaplens.snapshot()
    return after.diff(before)


def top_suspect(diff, entry_type):
    suspect = diff.suspects[0]
    assert suspect.entry_type.endswith(entry_type), str(diff)
    assert suspect.entries >= RUNS, str(diff)
    return suspect


# -- a module global -----------------------------------------------------------------------------


class CachedResult:
    def __init__(self, key):
        self.key = key
        self.rows = [key] * 3


RESULT_CACHE = {}


def test_a_module_global_cache():
    counter = iter(range(10**9))

    def request():
        key = f"query-{next(counter)}"
        RESULT_CACHE[key] = CachedResult(key)

    diff = leak_diff(request)
    s = top_suspect(diff, "CachedResult")
    assert str(s.holder_path) == f"module {__name__} -> .__dict__['RESULT_CACHE'] -> dict"
    assert s.sample_label.startswith("['query-")
    assert "CachedResult" in str(diff)


# -- a class attribute ---------------------------------------------------------------------------


class Handler:
    def __init__(self, n):
        self.n = n


class Registry:
    handlers = []


def test_a_class_attribute():
    def request():
        Registry.handlers.append(Handler(len(Registry.handlers)))

    s = top_suspect(leak_diff(request), "Handler")
    path = str(s.holder_path)
    assert "class " in path and "Registry" in path and "['handlers']" in path, path


# -- a function default argument -----------------------------------------------------------------


class Visit:
    pass


def remember(visit, seen=[]):  # noqa: B006 - the leak under test
    seen.append(visit)


def test_a_mutable_default_argument():
    s = top_suspect(leak_diff(lambda: remember(Visit())), "Visit")
    path = str(s.holder_path)
    assert f"function {__name__}.remember" in path and ".__defaults__" in path, path


# -- a closure stored in a library's registry (blinker signals) ----------------------------------


class Upload:
    def __init__(self):
        self.data = b"x" * 100


def test_a_closure_connected_to_a_signal():
    blinker = pytest.importorskip("blinker")
    uploaded = blinker.Signal("uploaded")

    def request():
        upload = Upload()

        def on_upload(sender):  # holds `upload` in its closure
            return upload.data

        uploaded.connect(on_upload, weak=False)

    diff = leak_diff(request)
    # The signal's receiver dict holds the closures; each closure holds its Upload, the type a
    # developer names, reached through the closure, shown by its name.
    s = top_suspect(diff, "Upload")
    assert any(name == "function" and n >= RUNS for name, n, _ in s.types), str(diff)
    assert re.search(
        r"function \S+\.on_upload\.__closure__ -> tuple\[0\] -> cell\.cell_contents -> \S+Upload$",
        s.sample_label,
    ), s.sample_label
    # 3.13+ keeps the attribute in the instance even once its __dict__ exists (the dict embeds
    # the inline values): the path then reads `Signal.receivers`.
    assert re.search(r"Signal(\.__dict__\['receivers'\]|\.receivers) -> dict", str(s.holder_path)), str(
        diff
    )


# -- functools.lru_cache on a method ---------------------------------------------------------------


class Report:
    def __init__(self, n):
        self.n = n

    @functools.lru_cache(maxsize=None)  # noqa: B019 - the leak under test
    def render(self):
        return f"report {self.n}"


def test_lru_cache_on_a_method_keeps_every_instance():
    counter = iter(range(10**9))
    diff = leak_diff(lambda: Report(next(counter)).render())
    # The cache dict holds the results directly, and the instances inside its keys: the
    # instances are what leaks.
    s = top_suspect(diff, "Report")
    path = str(s.holder_path)
    assert "Report" in path and "['render']" in path, path


# -- logging handlers added per request ------------------------------------------------------------


class RequestLogHandler(logging.Handler):
    def emit(self, record):
        pass


def test_logging_handlers_added_per_request():
    logger = logging.getLogger("heaplens.tests.per_request")
    try:
        diff = leak_diff(lambda: logger.addHandler(RequestLogHandler()))
        s = top_suspect(diff, "RequestLogHandler")
        path = str(s.holder_path)
        assert "logging.Logger" in path and ".handlers" in path, path
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)


# -- a set of asyncio tasks ----------------------------------------------------------------------


BACKGROUND_TASKS = set()


class Job:
    def __init__(self):
        self.payload = list(range(5))


async def run_job(job):
    return len(job.payload)


def test_a_set_of_finished_asyncio_tasks():
    async def serve(n):
        for _ in range(n):
            task = asyncio.get_running_loop().create_task(run_job(Job()))
            BACKGROUND_TASKS.add(task)  # never discarded
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(serve(3))
    before = heaplens.snapshot()
    asyncio.run(serve(RUNS))
    after = heaplens.snapshot()
    diff = after.diff(before)
    s = top_suspect(diff, "Task")
    assert str(s.holder_path) == f"module {__name__} -> .__dict__['BACKGROUND_TASKS'] -> set"


# -- an ORM session's identity map (SQLAlchemy) ----------------------------------------------------


def test_objects_pending_in_a_long_lived_orm_session():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class AuditEntry(Base):
        __tablename__ = "audit"
        id: Mapped[int] = mapped_column(primary_key=True)
        message: Mapped[str]

    engine = sqlalchemy.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    session = Session(engine)  # shared by every request and never committed or closed
    counter = iter(range(10**9))
    try:
        diff = leak_diff(lambda: session.add(AuditEntry(message=f"event {next(counter)}")))
        s = top_suspect(diff, "AuditEntry")
        path = str(s.holder_path)
        assert "local 'session'" in path, path
        assert re.search(r"Session(\.__dict__\['_new'\]|\._new) -> dict", path), path
    finally:
        session.close()
        engine.dispose()


# -- exceptions kept with their tracebacks -----------------------------------------------------------


class PaymentError(Exception):
    pass


FAILURES = []


def charge(amount):
    receipt = ["line item"] * 20  # a local the traceback's frame keeps alive
    raise PaymentError(f"declined {amount} ({len(receipt)} items)")


def test_exceptions_kept_with_their_tracebacks_hold_frames():
    def request():
        try:
            charge(10)
        except PaymentError as e:
            FAILURES.append(e)

    diff = leak_diff(request)
    s = top_suspect(diff, "PaymentError")
    assert str(s.holder_path) == f"module {__name__} -> .__dict__['FAILURES'] -> list"
    kinds = {name for name, _, _ in s.types}
    assert {"traceback", "frame"} <= kinds, kinds


# -- a local variable of a running frame in another thread ---------------------------------------------


class Message:
    pass


def test_a_local_of_a_running_frame_in_another_thread():
    received = threading.Event()
    go = threading.Event()
    stop = threading.Event()
    batches = []

    def consume():
        inbox = []  # grows for as long as the thread runs
        while not stop.is_set():
            if go.wait(0.01):
                go.clear()
                inbox.extend(Message() for _ in range(RUNS))
                batches.append(1)
                received.set()

    worker = threading.Thread(target=consume, name="consumer", daemon=True)
    worker.start()
    try:
        go.set()
        assert received.wait(10)
        received.clear()
        before = heaplens.snapshot()
        go.set()
        assert received.wait(10)
        after = heaplens.snapshot()
        diff = after.diff(before)
        s = top_suspect(diff, "Message")
        path = str(s.holder_path)
        assert path.startswith("thread 'consumer' -> frame ") and "local 'inbox'" in path, path
    finally:
        stop.set()
        worker.join(10)


# -- reference cycles left uncollected while gc is disabled ------------------------------------------


class Node:
    def __init__(self):
        self.peer = None


def test_cycles_left_uncollected_with_gc_disabled():
    def request():
        a, b = Node(), Node()
        a.peer, b.peer = b, a

    with gc_disabled():
        diff = leak_diff(request)
        s = diff.suspects[0]
        assert s.kind == "garbage", str(diff)
        assert s.entry_type.endswith("Node") and s.objects >= 2 * RUNS, str(diff)
        assert "uncollected cyclic garbage" in str(diff)
    gc.collect()
