"""Shared helpers for the heaplens tests."""

import contextlib
import ctypes
import gc
import threading
import time

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
