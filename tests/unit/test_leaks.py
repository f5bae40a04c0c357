"""heaplens.no_leaks: the origin article's leak decorator, done right."""

import gc
import queue
import sys
import threading

import pytest

import heaplens

from conftest import gc_disabled, refcount_at


class MyLeakyObject:
    pass


class Payload:
    def __init__(self):
        self.data = [1, 2, 3]


CACHE = []


def function_with_leak():
    CACHE.append(MyLeakyObject())


def function_without_leak():
    a = MyLeakyObject()
    return a


def test_a_leak_raises_with_the_type_its_count_per_call_and_its_path():
    with pytest.raises(heaplens.LeakError) as info:
        heaplens.no_leaks(function_with_leak)()
    leak = info.value.leaks[0]
    assert leak.type == f"{__name__}.MyLeakyObject"
    assert leak.per_call == 1 and leak.total == 3
    assert leak.path.startswith(f"module {__name__} -> .__dict__['CACHE'] -> list[")
    message = str(info.value)
    assert "function_with_leak() leaked on every one of 3 calls (after 1 warm-up call)" in message
    assert f"{__name__}.MyLeakyObject  +1 per call" in message
    assert leak.path in message


def test_trace_alloc_says_where_the_leaked_objects_were_allocated():
    import tracemalloc

    with pytest.raises(heaplens.LeakError) as info:
        heaplens.no_leaks(function_with_leak, trace_alloc=True)()
    leak = info.value.leaks[0]
    line = function_with_leak.__code__.co_firstlineno + 1
    assert leak.allocated_at[-1] == f"{__file__}:{line}: CACHE.append(MyLeakyObject())"
    assert f"      allocated at {__file__}:{line}: CACHE.append(MyLeakyObject())" in str(info.value)
    # The check traced only while it ran.
    assert not tracemalloc.is_tracing()
    with pytest.raises(heaplens.LeakError) as info:
        heaplens.no_leaks(function_with_leak)()
    assert info.value.leaks[0].allocated_at == () and "allocated at" not in str(info.value)


def test_a_leak_can_be_drawn(tmp_path):
    target = tmp_path / "leak.svg"
    with pytest.raises(heaplens.LeakError) as info:
        heaplens.no_leaks(function_with_leak, runs=2, picture=str(target))()
    assert info.value.leaks[0].total == 2  # the options apply to a function passed directly
    assert f"The retaining path of a {__name__}.MyLeakyObject is drawn in {target}" in str(
        info.value
    )
    svg = target.read_text()
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    # The picture runs from the module through the list to the leaked object.
    for text in (__name__, "CACHE", "list", "MyLeakyObject"):
        assert text in svg, text


def test_clean_code_passes_and_returns_its_result():
    calls = []

    @heaplens.no_leaks(warmup=2, runs=4)
    def handler(x):
        calls.append(None)
        return MyLeakyObject() if x else None

    assert isinstance(handler(True), MyLeakyObject)
    assert len(calls) == 6
    assert handler.__name__ == "handler"


def test_caches_filled_once_are_not_leaks():
    cache = {}

    @heaplens.no_leaks(warmup=0, runs=3)
    def lazily_cached():
        if "config" not in cache:
            cache["config"] = [MyLeakyObject() for _ in range(10)]  # first call only
        return cache["config"]

    lazily_cached()


def test_a_one_off_allocation_on_a_later_call_is_not_a_leak():
    calls = []

    @heaplens.no_leaks(warmup=1, runs=3)
    def sometimes():
        calls.append(1)
        if len(calls) == 3:
            CACHE.append(MyLeakyObject())

    sometimes()


def test_growing_plain_dicts_are_caught_with_their_container():
    records = []

    @heaplens.no_leaks
    def remember():
        records.append({"id": len(records)})  # untracked dicts: objgraph cannot see them

    with pytest.raises(heaplens.LeakError) as info:
        remember()
    leak = next(l for l in info.value.leaks if l.type == "dict")
    assert leak.per_call == 1
    assert "local 'records'" in leak.path or "cell_contents" in leak.path


def test_uncollected_cycles_are_the_leak_when_gc_is_disabled():
    def make_cycle():
        a, b = Payload(), Payload()
        a.peer, b.peer = b, a

    with gc_disabled():
        with pytest.raises(heaplens.LeakError) as info:
            heaplens.no_leaks(make_cycle)()
        leak = next(l for l in info.value.leaks if l.type.endswith("Payload"))
        assert leak.per_call == 2
        assert "unreachable" in leak.path or "uncollected" in leak.path
    gc.collect()


def test_objects_held_by_another_thread_name_the_thread():
    jobs = queue.Queue()
    done = queue.Queue()

    def worker():
        kept = []
        while True:
            job = jobs.get()
            if job is None:
                return
            kept.append(Payload())
            done.put(1)

    t = threading.Thread(target=worker, name="collector", daemon=True)
    t.start()

    @heaplens.no_leaks(Payload)
    def submit():
        jobs.put(1)
        done.get(timeout=10)

    try:
        with pytest.raises(heaplens.LeakError) as info:
            submit()
        (leak,) = info.value.leaks
        assert leak.path.startswith("thread 'collector' -> frame ")
        assert "local 'kept'" in leak.path
    finally:
        jobs.put(None)
        t.join(10)


def test_only_the_named_types_are_checked():
    leak_other = heaplens.no_leaks("SomethingElse")(function_with_leak)
    leak_other()
    with pytest.raises(heaplens.LeakError):
        heaplens.no_leaks("MyLeakyObject")(function_with_leak)()
    with pytest.raises(heaplens.LeakError):
        heaplens.no_leaks(MyLeakyObject)(function_with_leak)()


def test_the_context_manager_checks_its_block():
    check = heaplens.no_leaks(MyLeakyObject)
    with check:
        function_without_leak()
    assert check.leaks == []
    with pytest.raises(heaplens.LeakError) as info:
        with heaplens.no_leaks(MyLeakyObject):
            for _ in range(5):
                function_with_leak()
    assert info.value.leaks[0].total == 5
    assert str(info.value).startswith("the block left objects behind:")


def test_an_exception_in_the_block_wins_over_a_leak():
    with pytest.raises(KeyError):
        with heaplens.no_leaks(MyLeakyObject):
            function_with_leak()
            raise KeyError("boom")


def test_the_check_keeps_nothing_alive_and_makes_no_cycles():
    class Big:
        pass

    def run():
        try:
            heaplens.no_leaks(function_with_leak)()
        except heaplens.LeakError:
            pass
        heaplens.no_leaks(function_without_leak)()

    run()
    argument = Big()
    refcount = refcount_at(id(argument))
    with gc_disabled():
        heaplens.no_leaks(lambda x: x)(argument)
        run()
        assert gc.collect() == 0
    assert refcount_at(id(argument)) == refcount


def test_bad_arguments():
    with pytest.raises(ValueError):
        heaplens.no_leaks(runs=0)
    with pytest.raises(ValueError):
        heaplens.no_leaks(warmup=-1)
    with pytest.raises(TypeError):
        heaplens.no_leaks(42)
    with pytest.raises(TypeError):
        heaplens.no_leaks()(42)
