"""heaplens' pytest plugin, run as users run it: real pytest sessions through pytester."""

import importlib.util

import pytest

LEAKY_MODULE = """
import pytest

class Session:
    pass

SESSIONS = []

def login():
    SESSIONS.append(Session())
"""


@pytest.fixture
def project(pytester):
    pytester.makepyfile(app=LEAKY_MODULE)
    pytester.syspathinsert()
    return pytester


def test_a_marked_leaking_test_fails_with_the_type_and_path(project):
    project.makepyfile(
        test_login="""
        import pytest, app

        @pytest.mark.no_leaks
        def test_login():
            app.login()
        """
    )
    result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "LeakError: test_login() leaked on every one of 3 calls (after 1 warm-up call):" in out
    assert "app.Session  +1 per call" in out
    assert "module app -> .__dict__['SESSIONS'] -> list[" in out
    assert "_leaks.py" not in out, "heaplens' own frames are hidden from the report"


def test_a_marked_clean_test_passes(project):
    project.makepyfile(
        test_clean="""
        import pytest, app

        @pytest.mark.no_leaks(app.Session, runs=4)
        def test_clean():
            session = app.Session()
            assert session is not None
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_test_that_warms_a_cache_passes(project):
    project.makepyfile(
        test_cache="""
        import functools, pytest, app

        @functools.lru_cache(maxsize=None)
        def settings():
            return [app.Session() for _ in range(50)]

        @pytest.mark.no_leaks(warmup=1, runs=3)
        def test_uses_settings():
            assert len(settings()) == 50
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_the_marker_filters_by_type(project):
    project.makepyfile(
        test_types="""
        import pytest, app

        @pytest.mark.no_leaks("OtherType")
        def test_other_type_only():
            app.login()
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_heaplens_option_checks_every_test_and_enabled_false_opts_out(project):
    project.makepyfile(
        test_all="""
        import pytest, app

        def test_leaks_unmarked():
            app.login()

        def test_clean_unmarked():
            app.Session()

        @pytest.mark.no_leaks(enabled=False)
        def test_opted_out():
            app.login()
        """
    )
    result = project.runpytest_subprocess("--heaplens")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_all.py::test_leaks_unmarked*"])
    project.runpytest_subprocess().assert_outcomes(passed=3)


def test_ini_options_mirror_the_command_line(project):
    project.makeini(
        """
        [pytest]
        heaplens = true
        heaplens_runs = 2
        heaplens_warmup = 0
        """
    )
    project.makepyfile(
        test_ini="""
        import app

        def test_leaks():
            app.login()
        """
    )
    result = project.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*leaked on every one of 2 calls:*"])


def test_fixtures_run_once_and_the_body_is_repeated(project):
    project.makepyfile(
        test_fixtures="""
        import pytest

        SETUPS = []
        CALLS = []

        @pytest.fixture
        def resource():
            SETUPS.append(1)
            return object()

        @pytest.mark.no_leaks(warmup=2, runs=3)
        def test_body(resource):
            CALLS.append(resource)
            CALLS.pop()

        def test_counts():
            assert len(SETUPS) == 1
        """
    )
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_options_are_documented_in_one_group(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(
        [
            "heaplens: fail tests that leak objects:",
            "*--heaplens *check every test*",
            "*--heaplens-warmup=N*",
            "*--heaplens-runs=N*",
        ]
    )


def test_the_marker_is_registered_for_strict_markers(project):
    project.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.no_leaks
        def test_ok():
            pass
        """
    )
    project.runpytest_subprocess("--strict-markers").assert_outcomes(passed=1)


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_leaks_are_reported_from_xdist_workers(project):
    project.makepyfile(
        test_xdist="""
        import pytest, app

        @pytest.mark.no_leaks
        def test_leak():
            app.login()

        @pytest.mark.no_leaks
        def test_clean():
            app.Session()
        """
    )
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*app.Session  +1 per call*"])


CLEAN_TESTS = """
import functools, itertools, logging, urllib.parse

log = logging.getLogger("shop")
QUOTES = {f"SYM{i}": [0, 0.0, "0"] for i in range(20)}
ticks = itertools.count()

def test_logs_a_line():
    log.warning("order %s placed", 42)

def test_logs_and_reads_caplog(caplog):
    caplog.set_level(logging.INFO)
    log.info("payment accepted")
    assert "payment accepted" in caplog.text

def test_replaces_quotes_in_a_full_bounded_dict():
    n = next(ticks)
    QUOTES[f"SYM{n % 20}"] = [n, n * 1.5, str(n)]

def test_parses_a_url():
    assert urllib.parse.urlsplit("https://example.com/a?b=c").netloc == "example.com"
"""


def test_clean_tests_that_log_or_churn_pass_under_heaplens(pytester):
    pytester.makepyfile(test_clean=CLEAN_TESTS)
    result = pytester.runpytest_subprocess("--heaplens", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


FILLING_CACHES = """
import collections, functools, itertools
import pytest

class Quote:
    def __init__(self, n):
        self.n = n
        self.legs = [n, n + 1]

@functools.lru_cache(maxsize=1000)
def quote(n):
    return Quote(n)

RECENT = collections.deque(maxlen=1000)
PRICES = {}   # pruned by the code below at 500 entries: a bound heaplens cannot see
ticks = itertools.count()

def price(n):
    if len(PRICES) >= 500:
        PRICES.pop(next(iter(PRICES)))
    PRICES[n] = Quote(n)

def test_fills_an_lru_cache():
    quote(next(ticks))

def test_fills_a_ring_buffer():
    RECENT.append(Quote(next(ticks)))

def test_fills_a_cache_bounded_by_code():
    price(next(ticks))

@pytest.mark.no_leaks(ignore=["test_filling.PRICES"])
def test_fills_a_cache_declared_bounded():
    price(next(ticks))
"""


def test_caches_filling_up_to_their_bound_pass_and_others_can_be_declared(pytester):
    """A cache that declares its bound (lru_cache, deque) passes while it fills; one bounded by
    code heaplens cannot read fails until the test, or the suite, declares it."""
    pytester.makepyfile(test_filling=FILLING_CACHES)
    result = pytester.runpytest_subprocess("--heaplens", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fills_a_cache_bounded_by_code() leaked*",
            "*test_filling.Quote  +1 per call*",
            # (fnmatch reads [...] as a character class: ? stands for each bracket)
            "*module test_filling -> .__dict__?'PRICES'? -> dict*",
        ]
    )
    pytester.makeini("[pytest]\nheaplens_ignore =\n    test_filling.PRICES\n")
    pytester.runpytest_subprocess("--heaplens", "-p", "no:cacheprovider").assert_outcomes(passed=4)
    result = pytester.runpytest_subprocess(
        "--heaplens", "--heaplens-ignore", "test_filling.Quote", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
