"""What ``heaplens attach PID`` runs inside the target process. heaplens never imports it.

The command line copies this file into a private directory with a ``request`` file, and makes
the target's main thread run it at its next bytecode boundary, with the GIL held (through
``sys.remote_exec`` or a pending call queued by gdb; see ``crates/cli/src/commands/attach``). It
runs in a fresh namespace, not in the target's ``__main__``, and:

1. checks the request is for this process and claims it by renaming ``request`` to ``claimed``
   (the command line cancels a request that timed out by deleting ``request``: whichever rename
   or delete comes first wins, so a late run after a timeout does nothing but clean up: after
   gdb, the command line has removed the whole directory, and the bootstrap that would run this
   file finds nothing; after ``sys.remote_exec``, whose bootstrap file the target reads when it
   runs it, the directory was left for this run, which removes it);
2. imports heaplens (the target's own, else from ``python_path``, which is put on ``sys.path``
   only for the import and taken off again);
3. takes a snapshot and saves it to ``snapshot`` (written aside, then renamed: the command line
   never sees half a file): from a thread of its own, so that the main thread goes back to the
   program at once, and in a forked child where the target's heaplens can (the target is held
   for the ``fork()`` only; see ``heaplens.snapshot``), else by the walk in the target;
4. writes ``result``: ``key: value`` lines (``status: ok`` or ``status: error`` with a
   ``kind``: ``request``, ``import``, ``snapshot`` or ``interrupted``), an empty line, then the
   error message. Every result names the target's Python (``python: 3.11.7``) and its
   ``sys.executable`` (``executable``), for the command line to say what to install.

The request is ``key: value`` lines too: ``pid``, ``action`` (``snapshot``, the only one) and
``python_path`` (may be empty).

It must never raise: an exception escaping a pending call would surface in the target as a
``SystemError`` in whatever code the main thread was running. So every error is caught and
reported in ``result``.
"""

import _thread

import os
import sys


def _read_fields(path):
    # The request is `key: value` lines written by the command line; no json, so that this
    # imports nothing the target may not have imported yet.
    fields = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            key, sep, value = line.rstrip("\n").partition(": ")
            if sep:
                fields[key] = value
    return fields


def _write_result(directory, fields, message=""):
    fields["python"] = "%d.%d.%d" % sys.version_info[:3]
    # Line breaks would end the fields early: the command line reads none then.
    executable = sys.executable or ""
    fields["executable"] = "" if "\n" in executable else executable
    lines = [f"{key}: {value}" for key, value in fields.items()]
    part = os.path.join(directory, "result.part")
    with open(part, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n\n" + message)
    os.replace(part, os.path.join(directory, "result"))


def _import_heaplens(python_path):
    """Returns (the heaplens module, None), or (None, why it cannot be imported)."""
    # No exception class of its own: a class is a reference cycle, left in the target for its
    # garbage collector at every attach.
    module = sys.modules.get("heaplens")
    if module is not None:
        return module, None
    try:
        import heaplens

        return heaplens, None
    except ImportError as error:
        first_error = f"{error} (sys.path: {sys.path!r})"
    if not python_path:
        return None, first_error
    # Only for this import: the target's sys.path is left as it was. The package found keeps its
    # absolute __path__, so its submodules still import afterwards.
    sys.path.insert(0, python_path)
    try:
        import heaplens

        return heaplens, None
    except ImportError as error:
        return None, f"{error} (sys.path: {sys.path[1:]!r}, and --python-path {python_path!r})"
    finally:
        try:
            sys.path.remove(python_path)
        except ValueError:
            pass
        sys.path_importer_cache.pop(python_path, None)


def _take(heaplens, part):
    """Writes a snapshot to ``part``; returns the number of objects in it. In a forked child
    where this heaplens can (it says why not in its log), else by the walk in the target."""
    try:
        names = heaplens._snapshot._thread_names()
        return heaplens._native.snapshot(names, part, True)
    except (AttributeError, TypeError):
        pass  # an older heaplens, whose snapshot() takes no path
    snap = heaplens.snapshot()
    objects = len(snap)
    snap.save(part)
    # The snapshot holds no object of the target, but is big: free it before reporting.
    del snap
    return objects


def _snapshot(directory, python_path):
    import time

    try:
        heaplens, why = _import_heaplens(python_path)
    except Exception as error:  # a broken install: report it, never raise
        heaplens, why = None, f"{type(error).__name__}: {error}"
    if heaplens is None:
        return {"status": "error", "kind": "import"}, why
    try:
        started = time.perf_counter()
        part = os.path.join(directory, "snapshot.part")
        objects = _take(heaplens, part)
        os.replace(part, os.path.join(directory, "snapshot"))
        fields = {
            "status": "ok",
            "objects": objects,
            "seconds": f"{time.perf_counter() - started:.3f}",
            "heaplens": getattr(heaplens, "__version__", "?"),
        }
        return fields, ""
    except Exception as error:
        return {"status": "error", "kind": "snapshot"}, f"{type(error).__name__}: {error}"


def _remove_withdrawn(directory):
    """Removes the directory of a withdrawn request: the files the command line put there (the
    target read the bootstrap to get here), then the directory, if nothing else is in it."""
    if os.path.exists(os.path.join(directory, "claimed")):
        return  # claimed by an earlier run: the command line is reading its answer
    for name in ("attach.py", "bootstrap.py"):
        try:
            os.remove(os.path.join(directory, name))
        except OSError:
            pass
    try:
        os.rmdir(directory)
    except OSError:
        pass


def _main():
    """Answers the request; True when a thread of its own does (see ``_answer``)."""
    directory = os.path.dirname(os.path.abspath(__file__))
    request = os.path.join(directory, "request")
    claimed = os.path.join(directory, "claimed")
    try:
        fields = _read_fields(request)
    except OSError:
        # Cancelled: the command line gave up and withdrew the request.
        _remove_withdrawn(directory)
        return
    try:
        # A process forked after the pending call was queued inherits the queue: only the
        # process that was asked answers.
        if fields.get("pid") != str(os.getpid()):
            return
        os.rename(request, claimed)
    except OSError:
        # Cancelled meanwhile.
        _remove_withdrawn(directory)
        return
    if fields.get("action") == "snapshot":
        try:
            # The main thread goes back to the program: the thread takes the snapshot, writes
            # the result and clears this namespace.
            _thread.start_new_thread(_answer, (directory, fields))
            return True
        except BaseException:
            pass  # no thread to be had: answered here
    _answer(directory, fields, clear=False)
    return False


def _answer(directory, fields, clear=True):
    """Takes the snapshot (or refuses the request) and writes the result; never raises."""
    try:
        if fields.get("action") == "snapshot":
            result, message = _snapshot(directory, fields.get("python_path", ""))
        else:
            # A newer command line asking for something this script does not know.
            result = {"status": "error", "kind": "request"}
            message = f"unknown action {fields.get('action')!r}"
    except BaseException as interruption:
        # Only a signal handler can raise here (KeyboardInterrupt, SystemExit). Letting it out
        # would turn it into a SystemError in the target, so it is reported and dropped: a
        # signal handled in these few milliseconds is lost (press Ctrl-C again).
        result, message = {"status": "error", "kind": "interrupted"}, repr(interruption)
    try:
        _write_result(directory, result, message)
    except BaseException:
        pass
    if clear:
        # This namespace holds functions that refer back to it: clear it so it is freed now,
        # not by a later garbage collection in the target.
        globals().clear()


if __name__ == "__heaplens_attach__":
    handed_over = False
    try:
        handed_over = _main()
    except BaseException:
        pass
    finally:
        # This namespace holds functions that refer back to it: clear it so it is freed now,
        # not by a later garbage collection in the target (the answering thread does, when
        # there is one).
        if not handed_over:
            globals().clear()
