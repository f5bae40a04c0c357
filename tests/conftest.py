"""Shared helpers for the heaplens tests."""

import contextlib
import gc
import threading
import time

import pytest

pytest_plugins = ["pytester"]


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
