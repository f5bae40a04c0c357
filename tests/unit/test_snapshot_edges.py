"""Every reference in a snapshot carries a label saying how it refers."""

import collections
import functools
import gc
import sys
import weakref

import pytest

import heaplens


class Holder:
    pass


class Slotted:
    __slots__ = ("first", "second", "__weakref__")


def labels(snap, src, dst):
    return snap[id(src)].labels_to(dst)


def test_inline_instance_attributes_are_labelled_by_name_without_creating_a_dict():
    h = Holder()
    h.payload = ["p"]
    h.count = 10**20
    snap = heaplens.snapshot()
    assert labels(snap, h, h.payload) == [".payload"]
    assert labels(snap, h, h.count) == [".count"]
    assert labels(snap, h, Holder) == [".__class__"]
    # Reading them created no __dict__ (the interpreter would report it to the collector).
    assert not any(type(r) is dict for r in gc.get_referents(h))
    assert ".__dict__" not in {label for label, _ in heaplens.snapshot()[id(h)].referents}


def test_a_static_types_dict_is_followed():
    # From 3.12 a builtin type keeps its dict in the interpreter state, not in the type.
    (d,) = gc.get_referents(int.__dict__)  # the dict behind the mapping proxy
    snap = heaplens.snapshot()
    assert labels(snap, int, d) == [".__dict__"]
    assert "['bit_length']" in {label for label, _ in snap[id(d)].referents}


def test_a_materialised_instance_dict_is_followed_by_key():
    h = Holder()
    h.payload = ["p"]
    d = h.__dict__  # materialises the dict
    snap = heaplens.snapshot()
    assert labels(snap, h, d) == [".__dict__"]
    if any(r is h.payload for r in gc.get_referents(h)):
        # 3.13.0: the dict embeds the instance's inline values instead of copying them, and the
        # instance reports them (its tp_traverse says so); the dict reports nothing twice.
        assert labels(snap, h, h.payload) == [".payload"]
        assert labels(snap, d, h.payload) == []
    else:
        assert labels(snap, d, h.payload) == ["['payload']"]
        assert labels(snap, h, h.payload) == []


def test_a_dict_that_outgrew_the_inline_values_holds_them_by_key():
    # A class of its own: outgrowing the shared keys changes how the class stores later
    # instances' attributes.
    class Grower:
        pass

    h = Grower()
    h.payload = ["p"]
    d = h.__dict__
    for i in range(40):  # more attributes than the shared keys hold: the dict takes them over
        d[f"extra{i}"] = i
    snap = heaplens.snapshot()
    assert labels(snap, h, d) == [".__dict__"]
    assert labels(snap, d, h.payload) == ["['payload']"]
    assert labels(snap, h, h.payload) == []


def test_slots_are_labelled_by_slot_name():
    s = Slotted()
    s.first = ["one"]
    s.second = ["two"]
    snap = heaplens.snapshot()
    assert labels(snap, s, s.first) == [".first"]
    assert labels(snap, s, s.second) == [".second"]


def test_dict_values_are_labelled_by_key_and_keys_are_objects():
    key = "".join(["only", "here"])
    number_key_value = ["n"]
    tuple_key_value = ["t"]
    d = {key: ["v"], 42: number_key_value, (1, "a"): tuple_key_value, None: [0]}
    snap = heaplens.snapshot()
    assert labels(snap, d, d[key]) == ["['onlyhere']"]
    assert labels(snap, d, number_key_value) == ["[42]"]
    assert labels(snap, d, tuple_key_value) == ["[(1, 'a')]"]
    assert labels(snap, d, d[None]) == ["[None]"]
    assert labels(snap, d, key) == ["<key 'onlyhere'>"]
    key_node = snap[id(key)]
    assert key_node.type == "str" and key_node.size == sys.getsizeof(key)


def test_keys_their_dict_alone_holds_are_labelled_alike_and_kept_by_a_file(tmp_path):
    # Keys made at run time that only the dict refers to have their text stored once each,
    # without a lookup (a dict of millions of such keys is the commonest leak); a key shared
    # with another dict, an interned one and a big int go through the string table. Every one
    # reads the same either way, in the snapshot and in its file.
    ints = ["1000000003", "-1000000003", str(2**60 - 1), str(-(2**59)), str(2**70)]
    strs = ["".join(["only", "here"]), "".join(["sha", "red"]), "é\u202e'\\\n" + "x" * 3]
    d = {int(text): [text] for text in ints}
    d.update({text: [text] for text in strs})
    d[sys.intern("".join(["inter", "ned"]))] = ["interned"]
    other = {k: None for k in d if k == "shared"}
    del strs, ints
    snap = heaplens.snapshot()
    path = tmp_path / "keys.hlsnap"
    snap.save(path)
    again = heaplens.load(path)
    expected = {
        "[1000000003]": "1000000003",
        "[-1000000003]": "-1000000003",
        f"[{2**60 - 1}]": str(2**60 - 1),
        f"[{-(2**59)}]": str(-(2**59)),
        "[<int>]": str(2**70),
        "['onlyhere']": "onlyhere",
        "['shared']": "shared",
        "['é\u202e\\'\\\\\\nxxx']": "é\u202e'\\\nxxx",
        "['interned']": "interned",
    }
    for s in (snap, again):
        found = {labels(s, d, v)[0]: v[0] for v in d.values()}
        assert found == expected
        keys = {labels(s, d, k)[0] for k in d}
        assert "<key 1000000003>" in keys and "<key 'onlyhere'>" in keys
        assert "<key 'é\u202e\\'\\\\\\nxxx'>" in keys and "<key 'shared'>" in keys
    assert other


def test_list_and_tuple_items_are_labelled_by_index():
    a, b = ["a"], ["b"]
    lst = [a, b]
    tup = (b, a)
    snap = heaplens.snapshot()
    assert labels(snap, lst, b) == ["[1]"]
    assert labels(snap, tup, b) == ["[0]"]


def test_function_defaults_globals_closure_and_cells():
    default = ["default"]

    def make():
        captured = ["captured"]

        def inner(x=default):
            return captured

        return inner, captured

    inner, captured = make()
    snap = heaplens.snapshot()
    assert labels(snap, inner, inner.__defaults__) == [".__defaults__"]
    assert labels(snap, inner.__defaults__, default) == ["[0]"]
    assert labels(snap, inner, inner.__globals__) == [".__globals__"]
    assert labels(snap, inner, inner.__closure__) == [".__closure__"]
    cell = inner.__closure__[0]
    assert labels(snap, cell, captured) == [".cell_contents"]
    assert labels(snap, inner, inner.__code__) == [".__code__"]


def test_class_dict_and_mro():
    snap = heaplens.snapshot()
    assert labels(snap, Holder, Holder.__mro__) == [".__mro__"]
    node = snap[id(Holder)]
    assert any(label == ".__dict__" for label, _ in node.referents)
    assert "type" in node.flags


def test_bound_method_self_and_func():
    h = Holder()
    h.run = None

    class WithMethod:
        def go(self):
            pass

    obj = WithMethod()
    bound = obj.go
    snap = heaplens.snapshot()
    assert labels(snap, bound, obj) == [".__self__"]
    assert labels(snap, bound, WithMethod.__dict__["go"]) == [".__func__"]


def test_weak_references_are_marked_weak():
    target = Holder()
    ref = weakref.ref(target)
    snap = heaplens.snapshot()
    assert labels(snap, ref, target) == ["<weakref>"]


def test_generator_locals_are_labelled_by_name():
    def gen():
        local_list = ["in generator"]
        yield local_list

    g = gen()
    first = next(g)
    snap = heaplens.snapshot()
    assert labels(snap, g, first) == ["local 'local_list'"]


def test_frame_object_locals_are_labelled_by_name():
    def capture_frame():
        in_frame = ["in frame"]
        return sys._getframe(), in_frame

    frame, value = capture_frame()
    snap = heaplens.snapshot()
    node = snap[id(frame)]
    assert "frame" in node.flags
    assert labels(snap, frame, value) == ["local 'in_frame'"]


def test_exception_traceback_holds_frames():
    try:
        raise ValueError("boom")
    except ValueError as e:
        exc = e
    snap = heaplens.snapshot()
    assert labels(snap, exc, exc.__traceback__) == [".__traceback__"]
    assert labels(snap, exc.__traceback__, exc.__traceback__.tb_frame) == [".tb_frame"]
    assert labels(snap, exc, exc.args) == [".args"]


def test_defaultdict_and_ordereddict_entries_are_labelled():
    dd = collections.defaultdict(list)
    dd["k"].append(1)
    od = collections.OrderedDict(first=["1st"])
    snap = heaplens.snapshot()
    assert labels(snap, dd, dd["k"]) == ["['k']"]
    assert labels(snap, dd, list) == [".default_factory"]
    assert labels(snap, od, od["first"]) == ["['first']"]


def test_unknown_types_are_traversed_and_labelled_by_members():
    p = functools.partial(print, ["arg"], sep=",")
    snap = heaplens.snapshot()
    assert labels(snap, p, print) == [".func"]
    assert labels(snap, p, p.args) == [".args"]


class Queue(collections.deque):
    pass


def test_deque_items_are_labelled_by_index_across_blocks():
    """A deque keeps its items in blocks of 64; its index counts from the left end, after
    items were popped there and in a subclass with attributes of its own."""
    dq = collections.deque([[i] for i in range(150)])
    dq.popleft()
    sub = Queue([["first"], ["second"]])
    sub.extra = ["attribute"]
    bounded = collections.deque(([i] for i in range(100)), maxlen=10)
    snap = heaplens.snapshot()
    assert labels(snap, dq, dq[0]) == ["[0]"]
    assert labels(snap, dq, dq[70]) == ["[70]"]
    assert labels(snap, dq, dq[-1]) == ["[148]"]
    assert labels(snap, sub, sub[1]) == ["[1]"]
    assert labels(snap, bounded, bounded[9]) == ["[9]"]


def test_referrers_are_the_reverse_of_referents():
    h = Holder()
    h.child = Holder()
    snap = heaplens.snapshot()
    back = snap[id(h.child)].referrers
    assert [(label, node.address) for label, node in back] == [(".child", id(h))]


def test_slots_stored_after_the_items_of_a_tuple_subclass_are_labelled():
    try:

        class Tagged(tuple):
            __slots__ = ("tag",)

    except TypeError:
        pytest.skip("__slots__ on a tuple subclass need CPython 3.15")
    t = Tagged((["a"], ["b"], ["c"]))
    t.tag = ["tag"]
    snap = heaplens.snapshot()
    assert labels(snap, t, t.tag) == [".tag"]
    assert labels(snap, t, t[2]) == ["[2]"]
