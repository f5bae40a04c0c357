"""show_refs, show_backrefs and show_chain: objgraph's pictures, drawn in-process."""

import io
import os
import re
import shutil
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

import heaplens

SVG = "{http://www.w3.org/2000/svg}"


class Leak:
    pass


class Holder:
    pass


LEAKS = {}


def svg_picture(path):
    """The nodes of an SVG picture as (kind, [lines]) and its edge labels, parsed as XML."""
    root = ET.parse(path).getroot()
    nodes, labels = [], []
    for g in root.iter(f"{SVG}g"):
        classes = g.get("class", "").split()
        lines = [t.text or "" for t in g.findall(f"{SVG}text")]
        if classes[:1] == ["node"]:
            nodes.append((classes[1], lines))
        elif classes == ["label"]:
            labels.append(lines[0])
    return nodes, labels


def dot_picture(text):
    """The nodes of DOT text as {name: (kind, [lines])} and its edges as (from, to, label)."""
    nodes = {
        m.group(1): (m.group(3), m.group(2).split("\\n"))
        for m in re.finditer(r'^  (n\d+) \[label="((?:[^"\\]|\\.)*)".*class="(\w+)"', text, re.M)
    }
    edges = [
        (m.group(1), m.group(2), m.group(4) or "")
        for m in re.finditer(r'^  (n\d+) -> (n\d+)( \[label="((?:[^"\\]|\\.)*)")?', text, re.M)
    ]
    return nodes, edges


def draw_dot(function, *args, **kwargs):
    out = io.StringIO()
    assert function(*args, output=out, **kwargs) is None
    return dot_picture(out.getvalue())


def titles(nodes):
    return sorted(lines[0] for _, lines in nodes.values())


def read(path, mode="r"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        return f.read()


def png_size(path):
    head = read(path, "rb")[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    """PATH without Graphviz's dot: the pictures must not need it."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert shutil.which("dot") is None


@pytest.fixture
def leak():
    """A leak held by a module-level cache, a class attribute and a closure."""
    obj = Leak()
    LEAKS["k42"] = obj
    Holder.current = obj

    def handler():
        return obj

    Holder.handler = handler
    yield obj
    del LEAKS["k42"], Holder.current, Holder.handler


@pytest.mark.parametrize("extension", [".dot", ".gv", ".svg", ".png", ".SVG"])
def test_the_extension_decides_the_format(tmp_path, no_graphviz, leak, extension):
    path = str(tmp_path / f"picture{extension}")
    assert heaplens.show_backrefs(leak, filename=path) == path
    data = read(path, "rb")
    if extension in (".dot", ".gv"):
        assert data.startswith(b"digraph heaplens {")
    elif extension.lower() == ".svg":
        nodes, labels = svg_picture(path)
        assert ("target", ["Leak", f"at {id(leak):#x}", f"{sys.getsizeof(leak)} B"]) in nodes
        assert "['k42']" in labels
    else:
        width, height = png_size(path)
        assert 100 < width < 10_000 and 50 < height < 10_000


def test_an_unknown_extension_is_a_clear_error(tmp_path, leak):
    with pytest.raises(ValueError, match=r"\.dot \(or \.gv\), \.svg and \.png"):
        heaplens.show_refs(leak, filename=str(tmp_path / "picture.pdf"))
    with pytest.raises(ValueError, match="both output and filename"):
        heaplens.show_refs(leak, filename=str(tmp_path / "p.svg"), output=io.StringIO())
    with pytest.raises(ValueError, match="max_depth"):
        heaplens.show_refs(leak, max_depth=-1, output=io.StringIO())
    with pytest.raises(TypeError, match="filter must be callable"):
        heaplens.show_refs(leak, filter=3, output=io.StringIO())
    with pytest.raises(TypeError, match="id"):
        heaplens.show_refs(leak, extra_ignore=[leak], output=io.StringIO())
    with pytest.raises(ValueError, match="engine"):
        heaplens.show_refs(leak, engine="neato", output=io.StringIO())
    assert not list(tmp_path.iterdir()), "nothing is written when the arguments are wrong"


def test_without_a_filename_a_png_goes_to_a_temporary_file(capsys, no_graphviz, leak):
    path = heaplens.show_refs(leak)
    try:
        assert os.path.basename(path).startswith("heaplens-") and path.endswith(".png")
        assert png_size(path)[0] > 0
        assert f"Graph written to {path} (" in capsys.readouterr().out
    finally:
        os.remove(path)


def test_the_picture_of_a_small_structure_has_its_nodes_and_labels():
    order = {"id": 42, "items": ["book", "pen"]}
    nodes, edges = draw_dot(heaplens.show_refs, order, max_depth=2)
    by_name = {lines[0] + " " + lines[1]: name for name, (_, lines) in nodes.items()}
    assert nodes[by_name["dict 2 items"]][0] == "target"
    assert (by_name["dict 2 items"], by_name["list 2 items"], "['items']") in edges
    assert (by_name["dict 2 items"], by_name["int 42"], "['id']") in edges
    assert (by_name["list 2 items"], by_name["str 'book'"], "[0]") in edges
    assert (by_name["list 2 items"], by_name["str 'pen'"], "[1]") in edges
    # The dict's size is shown, as sys.getsizeof reports it.
    assert nodes[by_name["dict 2 items"]][1][2] == f"{sys.getsizeof(order)} B"


def test_backrefs_reach_the_cache_the_class_and_the_closure_and_mark_the_roots(leak):
    nodes, edges = draw_dot(heaplens.show_backrefs, leak, max_depth=4)
    labels = {label for _, _, label in edges}
    assert "['k42']" in labels  # the module-level cache
    assert "['current']" in labels  # the class attribute, in the class's dict
    assert "via its .cell_contents" in labels  # the closure
    assert "['LEAKS']" in labels
    kinds = {" ".join(lines[:2]): kind for kind, lines in nodes.values()}
    assert kinds[f"module {__name__}"] == "root"
    assert kinds[f"Leak at {id(leak):#x}"] == "target"
    # heaplens' own frames and bookkeeping are not part of the story.
    frames = [lines[1] for _, lines in nodes.values() if lines[0] == "frame"]
    assert not [f for f in frames if " (_pictures.py:" in f or " (_snapshot.py:" in f]


def test_a_local_of_another_thread_is_drawn_with_its_frame_and_thread(thread_holding):
    with thread_holding(Leak, "worker-7") as t:
        obj = next(o for o in heaplens.by_type("Leak") if id(o) == t.held_id)
        nodes, edges = draw_dot(heaplens.show_backrefs, [obj], max_depth=3)
        del obj
    drawn = list(nodes.values())
    assert ("root", ["thread", "'worker-7'"]) in drawn
    frames = [lines[1] for kind, lines in drawn if kind == "root" and lines[0] == "frame"]
    assert any(f.startswith("ThreadHolding._run (conftest.py:") for f in frames), frames
    assert "local 'held'" in {label for _, _, label in edges}


def test_forward_pictures_walk_only_near_objects_and_draw_what_a_snapshot_draws(monkeypatch):
    import json

    from heaplens import _pictures

    order = {"id": 7, "items": ["book", ("pen", 2.5)], "codec": json, "handlers": [Leak()]}
    near = draw_dot(heaplens.show_refs, order, max_depth=3, too_many=50)
    # Past the size limit of the local walk, the picture comes from a whole snapshot.
    monkeypatch.setattr(_pictures, "_MAX_OBJECTS_AROUND", 0)
    whole = draw_dot(heaplens.show_refs, order, max_depth=3, too_many=50)
    assert near == whole
    nodes, _ = near
    kinds = {" ".join(lines[:2]): kind for kind, lines in nodes.values()}
    # A module in sys.modules is a root in either picture.
    assert kinds["module json"] == "root"
    assert "Leak" in titles(nodes)


def test_max_depth_counts_references_from_the_objects_drawn():
    deep = [[[[["bottom"]]]]]
    nodes, _ = draw_dot(heaplens.show_refs, deep, max_depth=2)
    assert titles(nodes) == ["list", "list", "list"]
    nodes, _ = draw_dot(heaplens.show_refs, deep, max_depth=0)
    assert titles(nodes) == ["list"]


def test_too_many_shows_that_many_references_and_counts_the_rest():
    many = [Leak() for _ in range(20)]
    # A list passed as `objs` is the list of objects to draw, as in objgraph.
    nodes, _ = draw_dot(heaplens.show_refs, many, max_depth=1, too_many=5)
    assert [kind for kind, _ in nodes.values()].count("target") == 20
    nodes, _ = draw_dot(heaplens.show_refs, [many], max_depth=1, too_many=5)
    assert titles(nodes) == ["15 more references"] + ["Leak"] * 5 + ["list"]
    assert [kind for kind, _ in nodes.values()].count("elided") == 1


def test_the_filter_leaves_objects_out_before_too_many_counts():
    mixed = [Leak(), "a", Leak(), "b", Leak(), "c"]
    nodes, _ = draw_dot(
        heaplens.show_refs, [mixed], max_depth=1, too_many=2,
        filter=lambda o: not isinstance(o, str),
    )
    assert titles(nodes) == ["1 more reference", "Leak", "Leak", "list"]


def test_extra_ignore_takes_ids_and_leaves_those_objects_out(leak):
    def ids(**kwargs):
        nodes, _ = draw_dot(heaplens.show_backrefs, leak, max_depth=1,
                            extra_info=lambda o: f"id={id(o)}", **kwargs)
        return {lines[-1].rsplit("id=", 1)[-1] for _, lines in nodes.values()}

    assert str(id(LEAKS)) in ids()
    assert str(id(LEAKS)) not in ids(extra_ignore=[id(LEAKS)])


def test_highlight_marks_objects_and_extra_info_refcounts_and_long_names_add_text():
    payload = ["x"]
    holder = {"payload": payload}
    nodes, _ = draw_dot(
        heaplens.show_refs, holder, max_depth=1, highlight=lambda o: isinstance(o, list),
        extra_info=lambda o: f"len={len(o)}", refcounts=True, shortnames=False,
        extra_node_attrs=lambda o: {"URL": f"obj/{id(o)}"},
    )
    kinds = {lines[0].split(" [")[0]: (kind, lines) for kind, lines in nodes.values()}
    assert kinds["builtins.list"][0] == "highlighted"
    assert kinds["builtins.dict"][0] == "target"
    assert kinds["builtins.list"][1][2].endswith("· len=1")
    # One reference from `holder`, one from the local `payload`.
    assert kinds["builtins.list"][1][0] == "builtins.list [2]"
    out = io.StringIO()
    heaplens.show_refs(holder, max_depth=1, output=out,
                       extra_node_attrs=lambda o: {"URL": f"obj/{id(o)}"})
    assert f'"URL"="obj/{id(payload)}"' in out.getvalue()


def test_show_chain_draws_the_chain_and_nothing_else(tmp_path, leak):
    chain = heaplens.find_backref_chain(leak, heaplens.is_proper_module)
    assert len(chain) >= 3
    nodes, edges = draw_dot(heaplens.show_chain, chain)
    assert len(nodes) == len(chain)
    assert [n for n in nodes.values() if n[0] == "target"] == [
        ("target", ["Leak", f"at {id(leak):#x}", f"{sys.getsizeof(leak)} B"])
    ]
    assert "['k42']" in {label for _, _, label in edges}
    path = heaplens.show_chain(chain, backrefs=False, filename=str(tmp_path / "chain.svg"))
    assert len(svg_picture(path)[0]) == len(chain)
    with pytest.raises(ValueError, match="non-empty chain"):
        heaplens.show_chain([], output=io.StringIO())


class Hostile:
    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "]]><!-- \x00\x01\x07\x1b[31m \t\n\r",
    "x" * 10_000,
    "lone \ud800 surrogate \udfff",
    "bidi \u202e reversed \ufffe\uffff",
    "\\N \\G \\L",
]


@pytest.mark.parametrize("extension", [".svg", ".dot", ".png"])
def test_hostile_reprs_and_keys_produce_valid_files(tmp_path, extension):
    objs = [Hostile(text) for text in HOSTILE]
    holder = {text: obj for text, obj in zip(HOSTILE, objs)}
    holder["long"] = "y" * 10_000
    path = str(tmp_path / f"hostile{extension}")
    heaplens.show_refs(holder, max_depth=1, filename=path, too_many=20)
    heaplens.show_backrefs(objs, max_depth=1, filename=str(tmp_path / f"back{extension}"))
    if extension == ".svg":
        for p in (path, str(tmp_path / "back.svg")):
            nodes, labels = svg_picture(p)
            texts = [t for _, lines in nodes for t in lines] + labels
            assert all(len(t) <= 60 for t in texts), "long text is cut"
            assert any("<script>" in t for t in texts), "markup is shown as text"
            raw = read(p)
            assert "<script" not in raw and "<img" not in raw
    elif extension == ".dot":
        text = read(path)
        assert text.startswith("digraph heaplens {\n") and text.endswith("}\n")
        assert "\x00" not in text and "\x1b" not in text
        statements = text.splitlines()[1:-1]
        assert all(line.endswith(";") for line in statements), "no text breaks a statement"
        assert all(
            line.replace("\\\\", "").replace('\\"', "").count('"') % 2 == 0 for line in statements
        )
    else:
        assert png_size(path)[0] > 0


def test_graphviz_is_used_only_when_asked_for(tmp_path, no_graphviz, leak):
    heaplens.show_refs(leak, filename=str(tmp_path / "in-process.png"))
    with pytest.raises(heaplens.HeapLensError, match="needs Graphviz's dot"):
        heaplens.show_refs(leak, filename=str(tmp_path / "p.pdf"), engine="graphviz")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_draws_its_formats_when_asked(tmp_path, leak):
    path = heaplens.show_refs(leak, filename=str(tmp_path / "p.pdf"), engine="graphviz")
    assert read(path, "rb")[:4] == b"%PDF"


def test_a_deep_backrefs_picture_draws_every_node_and_label(tmp_path, leak):
    path = heaplens.show_backrefs(leak, max_depth=6, filename=str(tmp_path / "big.svg"))
    nodes, labels = svg_picture(path)
    assert len(nodes) >= 15 and len(labels) >= 15
