"""objgraph's ``show_refs``, ``show_backrefs`` and ``show_chain``, drawn without Graphviz.

The walk that picks what a picture shows runs in Rust on a snapshot (breadth first, with
objgraph's ``max_depth``, ``too_many``, ``filter`` and ``extra_ignore``): for a picture of what
objects refer to, a small snapshot of the objects within ``max_depth`` of them; for one of what
refers to them, the whole heap. The drawing is Rust too: a layered layout with every reference
labelled, written as DOT, SVG or PNG with a bundled font.
This module only asks the live objects what the snapshot cannot know (their repr, and the
caller's predicates), resolving them by address once per level of the walk.

Graphviz's ``dot`` is used only when asked for (``engine="graphviz"``), for its layouts or its
other output formats.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import types

from heaplens import _native, _snapshot
from heaplens._native import HeapLensError

__all__ = ["show_backrefs", "show_chain", "show_refs"]

_FORMATS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}
_REPR_LIMIT = 40
# A forward picture walks only the objects near its starts, up to this many; past it (a start
# that reaches much of the heap within max_depth) a whole snapshot is cheaper than the lookups.
_MAX_OBJECTS_AROUND = 100_000

# Our own frames hold the objects being drawn; they are left out of every picture.
_OWN_FILES = [__file__, _snapshot.__file__]
_MISSING = object()


def _text(value):
    """``value`` as text that crosses into Rust: lone surrogates become escapes."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _cut(text, limit=_REPR_LIMIT):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_repr(obj):
    """objgraph's short repr: a name for modules, classes and functions, a count for
    containers, the start of other reprs. Never raises; runs the object's ``__repr__`` only
    when nothing shorter says what it is."""
    try:
        kind = type(obj)
        if issubclass(kind, str):
            return _cut(repr(obj[: _REPR_LIMIT + 1]))
        if issubclass(kind, (bytes, bytearray)):
            return _cut(repr(bytes(obj[: _REPR_LIMIT + 1])))
        if issubclass(kind, (type, types.ModuleType, types.BuiltinFunctionType)):
            return _cut(str(obj.__name__))
        if issubclass(kind, types.FunctionType):
            return _cut(str(obj.__qualname__))
        if issubclass(kind, types.MethodType):
            return _cut(str(obj.__func__.__qualname__) + " (bound)")
        if issubclass(kind, types.FrameType):
            code = obj.f_code
            return _cut(f"{os.path.basename(code.co_filename)}:{obj.f_lineno}")
        if issubclass(kind, (tuple, list, dict, set, frozenset)):
            n = len(obj)
            return f"{n} item" if n == 1 else f"{n} items"
        if kind is types.CellType:
            try:
                return f"holds a {type(obj.cell_contents).__name__}"
            except ValueError:
                return "empty"
        if kind.__repr__ is object.__repr__:
            # `<app.Order object at 0x7f…>` says nothing the title does not, but its address.
            return f"at {id(obj):#x}"
        return _cut(repr(obj))
    except Exception:
        return "(unrepresentable)"


def _type_name(obj, shortnames):
    kind = type(obj)
    if shortnames:
        return kind.__name__
    module = getattr(kind, "__module__", None)
    return f"{module}.{kind.__qualname__}" if module else kind.__qualname__


def _size_text(size):
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _format(filename, engine):
    """The native format to draw for ``filename``, or, with Graphviz, the ``-T`` format."""
    extension = os.path.splitext(filename)[1].lower()
    if engine == "graphviz":
        if not extension[1:].isalnum():
            raise ValueError(f"cannot tell the output format from {filename!r}: add an extension")
        return extension[1:]
    if extension not in _FORMATS:
        raise ValueError(
            f"cannot draw {filename!r}: heaplens writes .dot (or .gv), .svg and .png files; "
            "pass engine='graphviz' for Graphviz's other formats"
        )
    return _FORMATS[extension]


def _check(max_depth, too_many, predicates, engine, filename, output):
    for name, value in (("max_depth", max_depth), ("too_many", too_many)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    for name, value in predicates.items():
        if value is not None and not callable(value):
            raise TypeError(f"{name} must be callable, not {type(value).__name__}")
    if engine not in ("heaplens", "graphviz"):
        raise ValueError(f"engine must be 'heaplens' or 'graphviz', not {engine!r}")
    if filename is not None and output is not None:
        raise ValueError("Cannot specify both output and filename.")


def _run_graphviz(dot_text, filename, graphviz_format):
    dot = shutil.which("dot")
    if dot is None:
        raise HeapLensError(
            "engine='graphviz' needs Graphviz's dot on PATH; leave engine at its default to "
            "draw in-process"
        )
    done = subprocess.run(
        [dot, f"-T{graphviz_format}", "-o", filename],
        input=dot_text,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise HeapLensError(
            f"dot failed (exit status {done.returncode}): "
            f"{done.stderr.decode('utf-8', 'replace').strip()}"
        )


def _draw(objs, backwards, max_depth, extra_ignore, filter, too_many, highlight, filename,
          extra_info, refcounts, shortnames, output, extra_node_attrs, engine, only=None,
          like_objgraph=False):
    predicates = {"filter": filter, "highlight": highlight, "extra_info": extra_info,
                  "extra_node_attrs": extra_node_attrs}
    _check(max_depth, too_many, predicates, engine, filename, output)
    if like_objgraph or output is not None:
        graphviz_format, native_format = None, "dot"
    else:
        graphviz_format = _format(filename or "x.png", engine)
        native_format = "dot" if engine == "graphviz" else graphviz_format
    extra_ignore = list(extra_ignore)
    if not all(isinstance(i, int) for i in extra_ignore):
        raise TypeError("extra_ignore takes id() values, as in objgraph: extra_ignore=[id(obj)]")
    if not isinstance(objs, (list, tuple)):
        objs = [objs]
    targets = {id(o) for o in objs}
    live = {id(o): o for o in objs}
    # The list of objects and the lookup table refer to the objects drawn: not part of the story.
    ignore = [*extra_ignore, id(objs), id(live)]

    def resolve(addresses):
        # Finding objects by address walks the heap: only for those not already at hand.
        missing = [a for a in addresses if a and a not in live]
        if missing:
            live.update(_native.objects_at(missing))

    def keep(addresses):
        resolve(addresses)
        return [a in live and bool(filter(live[a])) for a in addresses]

    snap = None
    if not backwards:
        # What objects refer to needs only the objects near them, not a walk of the whole heap.
        around = _native.snapshot_around(list(objs), max_depth, _MAX_OBJECTS_AROUND)
        if around is not None:
            snap, near = around
            live.update(near)
            del around, near
    if snap is None:
        snap = _snapshot.snapshot()
    try:
        nodes, edges, elided = snap._neighbourhood(
            [id(o) for o in objs], backwards, max_depth, too_many, ignore,
            keep if filter is not None else None, only, _OWN_FILES,
        )
    finally:
        del snap
    resolve([n[0] for n in nodes])
    # Objects the snapshot did not see (an object only C code refers to) are drawn alone.
    drawn = {n[0] for n in nodes}
    for o in objs:
        if id(o) not in drawn:
            drawn.add(id(o))
            nodes.append((id(o), "", "", sys.getsizeof(o, 0), False, 0))
    counts = _native.reference_counts(live) if refcounts else {}
    picture_nodes = []
    for address, title, text, size, is_root, depth in nodes:
        obj = live.get(address, _MISSING) if address else _MISSING
        kind = "target" if address in targets else "root" if is_root else "normal"
        note = _size_text(size) if address else ""
        attrs = []
        if obj is not _MISSING:
            title = _type_name(obj, shortnames)
            text = _short_repr(obj)
            if refcounts:
                count = counts.get(address)
                title += " [immortal]" if count is None else f" [{count}]"
            if extra_info is not None:
                note = f"{note} · {extra_info(obj)}"
            if extra_node_attrs is not None:
                attrs = [(_text(k), _text(v)) for k, v in extra_node_attrs(obj).items()]
            if highlight is not None and kind != "target" and highlight(obj):
                kind = "highlighted"
        level = -depth if backwards else depth
        picture_nodes.append((_text(title), _text(text), _text(note), kind, level, attrs))
        del obj
    picture_edges = [(a, b, _text(label), False) for a, b, label in edges]
    for index, count in elided:
        what = "referrer" if backwards else "reference"
        more = f"{count} more {what}{'' if count == 1 else 's'}"
        level = picture_nodes[index][4] + (-1 if backwards else 1)
        picture_nodes.append((more, "", "", "elided", level, []))
        pair = (len(picture_nodes) - 1, index) if backwards else (index, len(picture_nodes) - 1)
        picture_edges.append((*pair, "", True))
    live.clear()
    if like_objgraph and output is None:
        return _present_like_objgraph(picture_nodes, picture_edges, filename)
    data = _native.render_picture(picture_nodes, picture_edges, native_format)
    if output is not None:
        output.write(data.decode("utf-8"))
        return None
    announce = filename is None
    if announce:
        fd, filename = tempfile.mkstemp(prefix="heaplens-", suffix=".png")
        os.close(fd)
    if engine == "graphviz" and graphviz_format not in ("dot", "gv"):
        _run_graphviz(data, filename, graphviz_format)
    else:
        with open(filename, "wb") as f:
            f.write(data)
    if announce:
        print(f"Graph written to {filename} ({len(picture_nodes)} nodes)")
    return filename


def _present_like_objgraph(nodes, edges, filename):
    """What objgraph's ``show_*`` do with a picture, and print, for ``heaplens.objgraph``: a
    ``.dot`` file is written where asked; otherwise the DOT goes to a temporary
    ``objgraph-*.dot`` and the picture is drawn to ``filename`` (by heaplens for .png and .svg,
    by Graphviz's ``dot`` for its other formats), or, with no file name, shown in ``xdot`` when
    it is installed, else drawn to a PNG beside the DOT file. Returns None, as objgraph does."""
    dot = _native.render_picture(nodes, edges, "dot")
    if filename is not None and filename.endswith(".dot"):
        with open(filename, "wb") as f:
            f.write(dot)
        print(f"Graph written to {filename} ({len(nodes)} nodes)")
        return None
    fd, dot_filename = tempfile.mkstemp(prefix="objgraph-", suffix=".dot")
    with os.fdopen(fd, "wb") as f:
        f.write(dot)
    print(f"Graph written to {dot_filename} ({len(nodes)} nodes)")
    if filename is None and shutil.which("xdot"):
        print("Spawning graph viewer (xdot)")
        subprocess.Popen(["xdot", dot_filename], close_fds=True)
        return None
    if filename is None:
        print("Graph viewer (xdot) not found, generating a png instead")
        filename = dot_filename[:-4] + ".png"
    extension = os.path.splitext(filename)[1].lower()
    if extension in _FORMATS:
        with open(filename, "wb") as f:
            f.write(_native.render_picture(nodes, edges, _FORMATS[extension]))
    elif shutil.which("dot"):
        command = ["dot", "-T" + extension[1:], "-o" + filename, dot_filename]
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(f'dot failed (exit code {done.returncode}) while executing "{" ".join(command)}"')
            return None
    else:
        print("Image renderer (dot) not found, not doing anything else")
        return None
    print(f"Image generated as {filename}")
    return None


def show_refs(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None,
              filename=None, extra_info=None, refcounts=False, shortnames=True, output=None,
              extra_node_attrs=None, engine="heaplens"):
    """Draws what ``objs`` (an object, or a list or tuple of objects) refer to, directly and
    through up to ``max_depth`` references: objgraph's ``show_refs``, with its arguments, drawn
    in-process with no Graphviz needed.

    The file's extension decides the format: ``.dot`` or ``.gv`` (Graphviz's text), ``.svg``,
    ``.png``. With ``filename=None`` a PNG is written to a temporary file whose name is
    printed; with ``output`` (a text file object) DOT text is written to it instead. Returns the
    name of the file written, or None for ``output``.

    Each node shows the object's type, a short repr and its size; each arrow says how it refers
    (``via its 'cache' key``, ``via its .items attribute``, ``[3]``). The objects asked about are
    marked red, roots (modules in ``sys.modules``, thread stacks) green, highlighted objects blue.

    ``too_many`` limits the references shown per object (the rest are counted in one box);
    ``filter(obj)`` returning false leaves an object out; ``extra_ignore`` is a list of ``id()``
    values to leave out; ``highlight(obj)`` marks objects; ``extra_info(obj)`` adds a line of
    text; ``refcounts`` adds each reference count to the type; ``shortnames=False`` shows
    qualified type names; ``extra_node_attrs(obj)`` returns Graphviz node attributes, written to
    DOT output only. ``engine="graphviz"`` runs Graphviz's ``dot`` to draw the file instead
    (any format ``dot -T`` knows). References are followed through a snapshot of the heap, so
    objects the garbage collector does not track (str, int) are shown too; weak references are
    not followed.

    Example:
        >>> import heaplens, pathlib, tempfile
        >>> order = {"id": 42, "items": ["book", "pen"]}
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = heaplens.show_refs(order, filename=str(folder / "order.svg"))
        >>> svg = pathlib.Path(path).read_text()
        >>> "[&apos;items&apos;]" in svg, svg.count('class="node target"')
        (True, 1)
    """
    return _draw(objs, False, max_depth, extra_ignore, filter, too_many, highlight, filename,
                 extra_info, refcounts, shortnames, output, extra_node_attrs, engine)


def show_backrefs(objs, max_depth=3, extra_ignore=(), filter=None, too_many=10, highlight=None,
                  filename=None, extra_info=None, refcounts=False, shortnames=True, output=None,
                  extra_node_attrs=None, engine="heaplens"):
    """Draws what refers to ``objs``, directly and through up to ``max_depth`` references: why
    they are alive. objgraph's ``show_backrefs``, with its arguments (see :func:`show_refs`),
    drawn in-process with no Graphviz needed.

    The walk stops at modules in ``sys.modules`` and reaches thread stacks: an object held by a
    local variable shows the frame (``run (app.py:12)``) and its thread as the roots they are.
    Weak references are not followed: they keep nothing alive. Where ``too_many`` cuts, the
    referrer on the object's shortest retaining path and the roots are kept first (objgraph
    keeps whichever ``gc.get_referrers`` lists first).

    Example:
        >>> import heaplens, pathlib, tempfile
        >>> class Session:
        ...     pass
        >>> heaplens.SESSIONS_FOR_DOCTEST = {"s1": Session()}
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = heaplens.show_backrefs(heaplens.SESSIONS_FOR_DOCTEST["s1"],
        ...                               filename=str(folder / "why.dot"))
        >>> dot = pathlib.Path(path).read_text()
        >>> "['SESSIONS_FOR_DOCTEST']" in dot, "['s1']" in dot
        (True, True)
        >>> del heaplens.SESSIONS_FOR_DOCTEST
    """
    return _draw(objs, True, max_depth, extra_ignore, filter, too_many, highlight, filename,
                 extra_info, refcounts, shortnames, output, extra_node_attrs, engine)


def show_chain(*chains, backrefs=True, highlight=None, filename=None, extra_info=None,
               refcounts=False, shortnames=True, output=None, extra_node_attrs=None,
               engine="heaplens"):
    """Draws one or more chains of references, such as :func:`heaplens.find_backref_chain`
    returns: objgraph's ``show_chain``, with its arguments (see :func:`show_refs`). Only the
    objects of the chains are drawn, with every reference between them.

    Example:
        >>> import heaplens, pathlib, tempfile
        >>> class Job:
        ...     pass
        >>> heaplens.JOBS_FOR_DOCTEST = [Job()]
        >>> chain = heaplens.find_backref_chain(heaplens.JOBS_FOR_DOCTEST[0],
        ...                                     heaplens.is_proper_module)
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> path = heaplens.show_chain(chain, filename=str(folder / "chain.png"))
        >>> pathlib.Path(path).read_bytes()[:4] == b"\\x89PNG"
        True
        >>> del heaplens.JOBS_FOR_DOCTEST, chain
    """
    return _chain(chains, backrefs, highlight, filename, extra_info, refcounts, shortnames,
                  output, extra_node_attrs, engine)


def _chain(chains, backrefs=True, highlight=None, filename=None, extra_info=None,
           refcounts=False, shortnames=True, output=None, extra_node_attrs=None,
           engine="heaplens", like_objgraph=False):
    chains = [chain for chain in chains if chain]
    if not chains:
        raise ValueError("show_chain needs at least one non-empty chain")
    only = [id(o) for chain in chains for o in chain]
    max_depth = max(len(chain) for chain in chains) - 1
    ends = [chain[-1] if backrefs else chain[0] for chain in chains]
    return _draw(ends, backrefs, max_depth, (), None, sys.maxsize, highlight, filename,
                 extra_info, refcounts, shortnames, output, extra_node_attrs, engine, only=only,
                 like_objgraph=like_objgraph)
