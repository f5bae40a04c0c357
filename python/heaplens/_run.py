"""``heaplens run``: runs a program as ``python script.py`` (or ``python -m module``) would, with
a sampler counting its heap in the background, and reports what grew steadily when it ends.

The command line (Rust) parses the arguments and calls :func:`run` in this interpreter; this
module only does what needs the interpreter: setting up ``sys.argv``, ``sys.path`` and
``__main__`` the way ``python`` does, running the program, and handling how it ends (return,
``sys.exit``, an exception, Ctrl-C). The sampling, the history file and the report are native
(``heaplens._native.Sampler``).
"""

import os
import sys
import threading

from heaplens import _native

# Samples kept in memory for the end-of-run trends (the history file keeps every sample). Only
# changed counts are stored, so this is a few MiB even for a run of hours.
_MAX_HISTORY = 20_000

# Exit status for a program stopped with Ctrl-C (128 + SIGINT, what a shell reports).
_INTERRUPTED = 130


def _say(message):
    print(f"heaplens: {message}", file=sys.stderr, flush=True)


def _program_name(module, argv):
    if module is not None:
        return module
    return os.path.basename(argv[0].rstrip("/" + os.sep)) or argv[0]


def _default_history(program):
    stem = program.rsplit(".", 1)[0] if program.endswith(".py") else program
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "program"
    return os.path.join(os.getcwd(), f"heaplens-{stem}-{os.getpid()}.db")


def _run_script(path):
    """Runs `path` as ``python path`` does: in a fresh ``__main__`` module, with the script's
    directory first on ``sys.path``. Directories and zip files with a ``__main__.py`` go
    through runpy, as with ``python``."""
    import runpy
    import types

    if os.path.isdir(path) or not path.endswith(".py") and _is_zip(path):
        sys.path[0] = path
        runpy.run_path(path, run_name="__main__")
        return
    with open(path, "rb") as file:
        source = file.read()
    sys.path[0] = os.path.dirname(os.path.abspath(path))
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    main.__loader__ = None
    main.__spec__ = None
    main.__cached__ = None
    sys.modules["__main__"] = main
    code = compile(source, path, "exec", dont_inherit=True)
    exec(code, main.__dict__)


def _is_zip(path):
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _run_module(name):
    """Runs module `name` as ``python -m name`` does (the current directory first on
    ``sys.path``)."""
    import runpy

    sys.path[0] = os.getcwd()
    # What `python -m` itself calls: the module runs as the real __main__, with sys.argv[0]
    # set to its file.
    runpy._run_module_as_main(name, alter_argv=True)


def _exit_status(code):
    """The status ``python`` exits with for ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code % 256
    print(code, file=sys.stderr)
    return 1


def _wait_for_threads():
    """Waits for the program's non-daemon threads, as the interpreter does before it exits:
    first the callbacks the standard library registered for that moment
    (``threading._register_atexit``: a ``ThreadPoolExecutor`` tells its idle workers to stop
    there; joined without it, they would wait for work forever), then the joins."""
    callbacks = getattr(threading, "_threading_atexits", None)
    if callbacks:
        pending = list(reversed(callbacks))
        callbacks.clear()  # the interpreter's own shutdown must not run them twice
        for call in pending:
            call()
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon and thread.is_alive():
            thread.join()


def _run_program(module, argv):
    """Runs the program; returns its exit status and whether it was interrupted."""
    try:
        try:
            if module is not None:
                _run_module(module)
            else:
                _run_script(argv[0])
            _wait_for_threads()
        except SystemExit as exit_:
            return _exit_status(exit_.code), False
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        return _INTERRUPTED, True
    except BaseException:
        # As the interpreter reports an uncaught exception (the program's sys.excepthook).
        sys.excepthook(*sys.exc_info())
        return 1, False
    return 0, False


def _serve(sampler, program, address, token):
    """Serves the dashboard over `sampler` at ``http://address/_heaplens/`` from a daemon
    thread (stdlib wsgiref, one thread per request); returns the server, or None after saying
    why it cannot."""
    import ipaddress
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from heaplens.wsgi import HeapLens

    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        _say(f"--serve expects [HOST:]PORT with a numeric port and an IP address, not {address!r}")
        return None
    if not loopback and not token:
        _say(
            f"refusing to serve the dashboard on {host} without a token: anyone who can reach "
            "it would see the program's private data; add --token TOKEN"
        )
        return None

    def not_found(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"heaplens: the dashboard is at /_heaplens/\n"]

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass  # the program's stderr is its own

    app = HeapLens(not_found, token=token, sampler=sampler, program=program)
    try:
        server = make_server(host, port, app, server_class=Server, handler_class=QuietHandler)
    except OSError as error:
        _say(f"cannot serve the dashboard on {address}: {error}")
        return None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/_heaplens/"
    _say(f"dashboard of {program} at {url}" + (f"?token={token}" if token else ""))
    threading.Thread(target=server.serve_forever, name="heaplens-dashboard", daemon=True).start()
    return server


def run(
    period,
    history,
    no_history,
    snapshot_at_exit,
    all_objects,
    module,
    argv,
    serve=None,
    token=None,
    max_overhead=0.01,
    trace_alloc=False,
):
    """``heaplens run``: returns the exit status (the program's own)."""
    if module is None and not argv:
        _say("run needs a script to run (heaplens run [OPTIONS] SCRIPT [ARGS]) or -m MODULE")
        return 2
    if module is None and not os.path.exists(argv[0]):
        _say(f"can't open file {argv[0]!r}: no such file or directory")
        return 2
    support = _native.capture_support()
    if support is not None:
        _say(f"cannot sample this interpreter: {support}")
        return 2

    program = _program_name(module, argv)
    history_path = None if no_history else os.path.abspath(history or _default_history(program))
    try:
        sampler = _native.Sampler(
            period=period,
            maxhistory=_MAX_HISTORY,
            history=history_path,
            gc_only=not all_objects,
            program=program if module is None else f"-m {module}",
            max_overhead=max_overhead,
        )
    except Exception as error:  # the history file cannot be written: say so before running
        _say(str(error))
        return 2
    if history_path:
        _say(f"sampling {program} every {period:g} s into {history_path}")
    else:
        _say(f"sampling {program} every {period:g} s (no history file)")

    # As python sets it: for -m, runpy replaces the "-m" with the module's file.
    sys.argv = ["-m", *argv] if module is not None else list(argv)
    os.register_at_fork(
        before=sampler._before_fork,
        after_in_parent=sampler._after_fork_in_parent,
        after_in_child=sampler._reinit_after_fork,
    )
    sampler.sample_now()
    sampler.start()
    server = None
    if serve is not None:
        server = _serve(sampler, program, serve, token)
        if server is None:
            sampler.stop()
            return 2
    if trace_alloc:
        # Before the program's first line, so that every object it makes has its traceback;
        # left on through the report, which asks where the growing objects come from.
        import tracemalloc

        tracemalloc.start(10)
    try:
        status, interrupted = _run_program(module, argv)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        # The program may also end in a KeyboardInterrupt raised inside the handlers above:
        # the sampler thread is stopped whatever happens.
        try:
            sampler.sample_now()
        finally:
            sampler.stop()
    if interrupted:
        _say("interrupted; reporting what was sampled")
    _report(sampler, snapshot_at_exit, history_path)
    return status


def _report(sampler, snapshot_at_exit, history_path):
    import heaplens

    steady = [trend[0] for trend in sampler.trends() if trend[6]]
    snap = None
    if steady or snapshot_at_exit:
        # Only the retaining paths of the steady growers need a snapshot.
        if steady:
            names = ", ".join(steady[:3]) + (", ..." if len(steady) > 3 else "")
            _say(f"finding what holds {names} (one snapshot of the heap)")
        else:
            _say("taking the snapshot at exit")
        snap = heaplens.snapshot()
        if snapshot_at_exit:
            snap.save(snapshot_at_exit)
    error = sampler.error
    if error:
        _say(f"sampling stopped early: {error}")
    print(sampler.report(snap), file=sys.stderr, end="", flush=True)
    if snapshot_at_exit:
        _say(f"snapshot at exit saved to {snapshot_at_exit} (heaplens report {snapshot_at_exit})")
    if history_path:
        _say(f"every sample is in {history_path}: heaplens history {history_path}")
