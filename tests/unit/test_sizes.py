"""Shallow sizes equal sys.getsizeof() for the builtin types, computed without calling Python."""

import array
import asyncio
import collections
import sys
import types

import heaplens


class Plain:
    pass


class WithSlots:
    __slots__ = ("a", "b")


class MyList(list):
    pass


class MyDict(dict):
    pass


class MyInt(int):
    pass


class MyStr(str):
    pass


def sample_objects():
    plain = Plain()
    plain.x = 1
    with_dict = Plain()
    with_dict.y = 2
    _ = with_dict.__dict__
    growing = []
    for i in range(37):
        growing.append(i)
    big_dict = {str(i): i for i in range(100)}
    for i in range(50):
        del big_dict[str(i)]
    s = {1, 2, 3}
    big_set = set(range(1000))

    def gen():
        x = 1
        yield x

    async def coro():
        return 1

    async def agen():
        yield 1

    g = gen()
    next(g)
    c = coro()
    ag = agen()
    ba = bytearray(b"abc")
    ba.extend(b"x" * 100)
    sliced = bytearray(b"y" * 100)
    del sliced[:50]  # keeps its buffer, starts inside it
    cleared = bytearray(b"z" * 20)
    cleared.clear()
    dq = collections.deque(range(200))
    od = collections.OrderedDict((str(i), i) for i in range(20))
    dd = collections.defaultdict(list, {"a": [1]})
    arr = array.array("d", range(300))
    frame = sys._getframe()
    objects = [
        0, 1, -1, 2**30, 2**60, -(2**90), 10**100, True, 1.5, 1j,
        "", "a", "ascii text", "é", "latin-1 é text", "€uro", "𝄞 astral", "x" * 1000,
        b"", b"bytes", bytearray(), ba, sliced, cleared,
        (), (1,), (1, 2, 3), [], [1, 2], growing, list(range(1000)),
        {}, {"a": 1}, {1: 2, "b": 3}, big_dict, plain, with_dict, with_dict.__dict__,
        WithSlots(), s, frozenset(s), big_set, set(),
        MyList([1, 2]), MyDict(a=1), MyInt(5), MyStr("sub"),
        g, c, ag, frame, gen.__code__, sample_objects.__code__,
        dq, collections.deque(), od, collections.OrderedDict(), dd, arr, array.array("b"),
        Plain, WithSlots, int, dict, type, types.SimpleNamespace(a=1),
        range(10), slice(1, 2), None, Ellipsis, NotImplemented, print, len, str.join,
        memoryview(b"abc"), property(lambda self: 1), staticmethod(len), classmethod(len),
    ]
    return objects, (c, ag)


def test_sizes_match_sys_getsizeof():
    objects, to_close = sample_objects()
    snap = heaplens.snapshot()
    approximate = {r.name for r in snap.census() if r.approximate_size}
    mismatches = []
    for o in objects:
        node = snap[id(o)]
        if node.type in approximate:
            continue
        if node.size != sys.getsizeof(o):
            mismatches.append((type(o).__name__, repr(o)[:40], node.size, sys.getsizeof(o)))
    to_close[0].close()
    asyncio.run(to_close[1].aclose())
    assert mismatches == []


def test_strings_with_cached_utf8_are_sized_with_the_cache():
    s = "héllo wörld" * 3
    s.encode("utf-8")  # does not cache
    import ctypes

    ctypes.pythonapi.PyUnicode_AsUTF8.restype = ctypes.c_char_p
    ctypes.pythonapi.PyUnicode_AsUTF8(ctypes.py_object(s))  # caches the UTF-8 form
    snap = heaplens.snapshot()
    assert snap[id(s)].size == sys.getsizeof(s)


def test_types_with_unreplicated_sizeof_are_flagged_approximate():
    import decimal
    import io

    keep = [decimal.Decimal("1.5"), io.BytesIO(b"x" * 1000)]

    class CustomSize:
        def __sizeof__(self):
            return 12345

    keep.append(CustomSize())
    census = heaplens.census()
    assert census["decimal.Decimal"].approximate_size
    assert census["_io.BytesIO"].approximate_size
    assert census[f"{__name__}.test_types_with_unreplicated_sizeof_are_flagged_approximate.<locals>.CustomSize"].approximate_size
    assert not census["dict"].approximate_size
    del keep
