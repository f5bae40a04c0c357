"""heaplens' pytest plugin: fail tests that leave objects behind.

Registered through the ``pytest11`` entry point, so installing heaplens makes it available:

- ``@pytest.mark.no_leaks`` checks one test: its body runs ``warmup`` times, then ``runs``
  times more, and the test fails with :class:`heaplens.LeakError` (leaking types, count per
  call, retaining path) when some type grows on every one of those runs. Arguments are
  :func:`heaplens.no_leaks`'s: ``@pytest.mark.no_leaks(Session, warmup=2, runs=3)``.
  ``@pytest.mark.no_leaks(enabled=False)`` exempts a test from ``--heaplens``.
- ``pytest --heaplens`` checks every test (``heaplens = true`` in the ini file does the same);
  ``--heaplens-warmup`` and ``--heaplens-runs`` (ini ``heaplens_warmup``, ``heaplens_runs``)
  set the defaults.
- What is known not to leak (a cache bounded by code heaplens cannot see, a type expected to
  grow) is declared per test, ``@pytest.mark.no_leaks(ignore=["app.cache.CACHE"])``, or for the
  whole suite, ini ``heaplens_ignore`` (one pattern per line) or ``--heaplens-ignore PATTERN``;
  patterns are :func:`heaplens.no_leaks`'s ``ignore``.
- ``--heaplens-trace-alloc`` (or the marker's ``trace_alloc=True``) also says where the leaked
  objects were allocated.

The test body is called again with the same fixture values (fixtures run once), so tests that
cannot run twice should not be checked. Coroutine tests are left to their async plugin and not
checked. The marker is ``no_leaks``, distinct from pytest-memray's ``limit_leaks`` and
``limit_memory``.
"""

import inspect

import pytest


MARKER = "no_leaks"


def pytest_addoption(parser):
    group = parser.getgroup("heaplens", "heaplens: fail tests that leak objects")
    group.addoption(
        "--heaplens",
        action="store_true",
        default=None,
        help="check every test for leaked objects (run its body warmup + runs times)",
    )
    group.addoption(
        "--heaplens-warmup",
        type=int,
        default=None,
        metavar="N",
        help="calls before counting, that may fill caches legitimately (default 1)",
    )
    group.addoption(
        "--heaplens-runs",
        type=int,
        default=None,
        metavar="N",
        help="counted calls; a type leaks if it grows on every one (default 3)",
    )
    group.addoption(
        "--heaplens-trace-alloc",
        action="store_true",
        default=False,
        help="say where leaked objects were allocated (tracemalloc during a leaking test's runs)",
    )
    group.addoption(
        "--heaplens-ignore",
        action="append",
        default=[],
        metavar="PATTERN",
        help="not a leak: a type (app.models.Order) or place (app.cache.CACHE); repeatable",
    )
    parser.addini("heaplens", "check every test for leaked objects", type="bool", default=False)
    parser.addini(
        "heaplens_ignore",
        "not leaks: types (app.models.Order) or places (app.cache.CACHE), one per line",
        type="linelist",
        default=[],
    )
    parser.addini("heaplens_warmup", "calls before counting (default 1)", default="1")
    parser.addini("heaplens_runs", "counted calls (default 3)", default="3")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*types, warmup=1, runs=3, ignore=(), enabled=True): fail the test if it "
        "leaves objects (of the given types, or of any type) behind on every one of `runs` "
        "calls; `ignore` names types or places known not to leak",
    )


def _setting(config, option, ini, convert):
    value = config.getoption(option)
    if value is None:
        value = convert(config.getini(ini))
    return value


def _check_for(item):
    """The leak check that applies to `item`, or None."""
    config = item.config
    marker = item.get_closest_marker(MARKER)
    everywhere = _setting(config, "heaplens", "heaplens", bool)
    if marker is None and not everywhere:
        return None
    kwargs = dict(marker.kwargs) if marker is not None else {}
    if not kwargs.pop("enabled", True):
        return None
    kwargs.setdefault("warmup", _setting(config, "heaplens_warmup", "heaplens_warmup", int))
    kwargs.setdefault("runs", _setting(config, "heaplens_runs", "heaplens_runs", int))
    types = marker.args if marker is not None else ()
    # Imported here, not with the plugin: pytest loads the plugin in every run of an environment
    # where heaplens is installed, and on an interpreter heaplens cannot capture, importing it
    # fails with the reason; that must only stop the runs that ask for leak checks.
    from heaplens._leaks import LeakCheck, _patterns

    # The suite's declarations hold for every test, the test's own come on top.
    suite = tuple(config.getini("heaplens_ignore")) + tuple(config.getoption("heaplens_ignore"))
    kwargs["ignore"] = suite + _patterns(kwargs.get("ignore", ()))
    if config.getoption("heaplens_trace_alloc"):
        kwargs.setdefault("trace_alloc", True)
    return LeakCheck(*types, **kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    check = _check_for(pyfuncitem)
    function = pyfuncitem.obj
    if check is None or inspect.iscoroutinefunction(function):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    arguments = {name: pyfuncitem.funcargs[name] for name in names}
    check._before_each_call = _log_capture_reset(pyfuncitem)
    __tracebackhide__ = True
    check(function)(**arguments)
    return True


def _log_capture_reset(item):
    """Empties pytest's log capture (the report's and ``caplog``'s) before each run of a test.

    pytest gives each test phase fresh capture handlers; the re-runs of one call phase share
    them, so every record a test logs would pile up there and look like a leak of LogRecords.
    Each run starts as the test's one run would: with nothing captured yet."""
    plugin = item.config.pluginmanager.get_plugin("logging-plugin")
    handlers = [getattr(plugin, name, None) for name in ("caplog_handler", "report_handler")]
    handlers = [h for h in handlers if h is not None and hasattr(h, "reset")]

    try:  # where caplog.get_records("call") looks (private to pytest, hence the guard)
        from _pytest.logging import caplog_records_key

        records = item.stash.get(caplog_records_key, None)
    except ImportError:
        records = None

    def reset():
        for handler in handlers:
            handler.reset()
        if records is not None and handlers and "call" in records:
            records["call"] = plugin.caplog_handler.records

    return reset
