"""Bad arguments get a clear Python exception."""

import pytest

import heaplens


def test_an_unknown_type_name_is_an_error_with_a_suggestion():
    class Order:
        pass

    keep = Order()
    with pytest.raises(heaplens.UnknownTypeError, match="did you mean 'Order'"):
        heaplens.by_type("Ordr")
    with pytest.raises(heaplens.UnknownTypeError):
        heaplens.count("NoSuchTypeAnywhere")
    assert isinstance(heaplens.UnknownTypeError("x"), heaplens.HeapLensError)
    del keep


def test_a_type_that_exists_without_instances_counts_zero():
    class NeverInstantiated:
        pass

    assert heaplens.by_type("NeverInstantiated") == []
    assert heaplens.count(NeverInstantiated) == 0


def test_wrong_argument_types_are_type_errors():
    with pytest.raises(TypeError, match="type name"):
        heaplens.by_type(42)
    with pytest.raises(TypeError, match="type name"):
        heaplens.count(None)
    with pytest.raises(TypeError, match="gc_only"):
        heaplens.census(gc_only="yes")
    with pytest.raises(TypeError, match="filter"):
        heaplens.typestats(filter=3)
    with pytest.raises(ValueError):
        heaplens.by_type("")
    with pytest.raises(ValueError, match="limit"):
        heaplens.most_common_types(limit="ten")


def test_census_and_snapshot_lookups_fail_clearly():
    c = heaplens.census()
    with pytest.raises(KeyError):
        c["NoSuchType"]
    with pytest.raises(ValueError):
        c.top(by="weight")
    snap = heaplens.snapshot()
    with pytest.raises(KeyError, match="no object at"):
        snap[1]
    with pytest.raises(TypeError):
        snap[-1]
    assert snap.get(1) is None


def test_capture_support_is_reported():
    assert heaplens._native.capture_support() is None
