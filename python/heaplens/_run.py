"""``heaplens run``: runs a program as ``python script.py`` (or ``python -m module``) would, with
a sampler counting its heap in the background, and reports what grew steadily when it ends.

The command line (Rust) parses the arguments and calls :func:`run` in this interpreter; this
module only does what needs the interpreter: setting up ``sys.argv``, ``sys.path`` and
``__main__`` the way ``python`` does, running the program, handling how it ends (return,
``sys.exit``, an exception, Ctrl-C, SIGTERM), the report on SIGUSR1, and which process reports
when the program forks. The sampling, the history file and the report are native
(``heaplens._native.Sampler``).

Whatever heaplens itself cannot do is said as the command line says its errors (``heaplens:
error:`` and a ``hint:`` line), before the program runs where it can be known then (the output
paths are checked by the command line); what fails after the program ran is said after the
report, and the exit status stays the program's.
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


def _emit(text):
    """Writes `text` on the program's stderr, in one write where it can (the reports of forked
    children that end together then do not mix their lines); when that fails (a signal's
    report that came in the middle of a write to it, a stderr the program closed), on file
    descriptor 2."""
    try:
        stream = sys.stderr
        stream.flush()
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(text)
            stream.flush()
        else:
            buffer.write(text.encode(stream.encoding or "utf-8", "backslashreplace"))
            buffer.flush()
        return
    except (AttributeError, LookupError, OSError, RuntimeError, ValueError):
        pass
    data = text.encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass


def _say(message):
    _emit(f"heaplens: {message}\n")


def _fail(message, hint):
    """Says why heaplens cannot run the program, as the command line says its errors (one line,
    then what to do); returns the exit status of a heaplens error."""
    _emit(f"heaplens: error: {message}\nhint: {hint}\n")
    return 2


def _program_name(module, argv):
    if module is not None:
        return module
    return os.path.basename(argv[0].rstrip("/" + os.sep)) or argv[0]


def _default_history(program):
    stem = program.rsplit(".", 1)[0] if program.endswith(".py") else program
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "program"
    return os.path.join(os.getcwd(), f"heaplens-{stem}-{os.getpid()}.db")


def _prepare_script(path):
    """What running `path` as ``python path`` does, up to the program's first line: returns a
    function that runs it, or the exit status after saying why it cannot run (as ``python``
    would, before a single sample: a syntax error, a directory without ``__main__.py``)."""
    if os.path.isdir(path) or not path.endswith(".py") and _is_zip(path):
        # Directories and zip files with a ``__main__.py`` go through runpy, as with python.
        import pkgutil

        importer = pkgutil.get_importer(path)
        if importer is None or importer.find_spec("__main__") is None:
            return _fail(
                f"can't find '__main__' module in {path!r}",
                "a directory or a zip file runs through the __main__.py in it: add one, or give "
                "the script to run",
            )

        def run_path():
            import runpy

            sys.path[0] = path
            runpy.run_path(path, run_name="__main__")

        return run_path
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError as error:
        return _fail(
            f"can't open file {path!r}: {error.strerror or error}",
            "check the file and its permissions",
        )
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as error:
        # As python says it: the error alone, no traceback (nothing ran), exit status 1.
        sys.excepthook(type(error), error.with_traceback(None), None)
        return 1

    def run_script():
        """Runs the script as ``python path`` does: in a fresh ``__main__`` module, with the
        script's directory first on ``sys.path``."""
        import types

        sys.path[0] = os.path.dirname(os.path.abspath(path))
        main = types.ModuleType("__main__")
        main.__file__ = path
        main.__builtins__ = __builtins__
        main.__loader__ = None
        main.__spec__ = None
        main.__cached__ = None
        sys.modules["__main__"] = main
        exec(code, main.__dict__)

    return run_script


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


def _find_module(name):
    """The spec of top-level module `name` as ``python -m`` would find it, or None."""
    import importlib.util

    saved = sys.path[0]
    sys.path[0] = os.getcwd()
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path[0] = saved


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


def _without_our_frames(error):
    """`error` with the frames of this module taken off the front of its traceback, so that it
    reads as ``python`` would show it: from the program's first frame."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_globals is globals():
        tb = tb.tb_next
    return error.with_traceback(tb)


def _run_program(module, script):
    """Runs the program (`script`: what :func:`_prepare_script` returned, for a script);
    returns its exit status and whether it was interrupted."""
    try:
        try:
            if module is not None:
                _run_module(module)
            else:
                script()
            _wait_for_threads()
        except SystemExit as exit_:
            return _exit_status(exit_.code), False
    except KeyboardInterrupt as error:
        import traceback

        traceback.print_exception(_without_our_frames(error))
        return _INTERRUPTED, True
    except BaseException as error:
        # As the interpreter reports an uncaught exception (the program's sys.excepthook).
        error = _without_our_frames(error)
        sys.excepthook(type(error), error, error.__traceback__)
        return 1, False
    return 0, False


def _listen(address, token):
    """Listens at `address` for the dashboard (stdlib wsgiref, one thread per request), before
    anything else is done, so that a refusal leaves no history file behind; returns the server
    (see :func:`_serve`), or None after saying why it cannot."""
    import ipaddress
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port)
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        if not 0 <= port <= 65535:
            raise ValueError(port)
    except ValueError:
        _fail(
            f"--serve expects [HOST:]PORT with a port from 0 to 65535 and an IP address, "
            f"not {address!r}",
            "for example --serve 8000, or --serve 127.0.0.1:0 for a free port",
        )
        return None
    if not loopback and not token:
        _fail(
            f"refusing to serve the dashboard on {host} without a token: anyone who can reach "
            "it would see the program's private data",
            "add --token TOKEN, or serve on 127.0.0.1 and reach it through an SSH tunnel",
        )
        return None

    def not_found(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"heaplens: the dashboard is at /_heaplens/\n"]

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        # A client that stops sending (half a request, a body announced and not sent, an idle
        # connection) is dropped after this many seconds, rather than keeping a thread of the
        # observed program waiting forever.
        timeout = 10

        def log_message(self, *args):
            pass  # the program's stderr is its own

    try:
        # Nothing is served before _serve gives it the dashboard: only the listening socket.
        server = make_server(host, port, not_found, server_class=Server, handler_class=QuietHandler)
    except (OSError, OverflowError) as error:
        import errno

        code = getattr(error, "errno", None)
        if code == errno.EADDRINUSE:
            hint = "another process listens there: pick another port, or 0 for a free one"
        elif code == errno.EACCES:
            hint = "ports below 1024 need privileges: pick a port above 1023"
        else:
            hint = "give an address of this machine, and a port from 0 to 65535"
        reason = getattr(error, "strerror", None) or error
        _fail(f"cannot serve the dashboard on {address}: {reason}", hint)
        return None
    shown = f"[{host}]" if ":" in host else host
    server.heaplens_url = f"http://{shown}:{server.server_port}/_heaplens/"
    server.heaplens_not_found = not_found
    return server


def _serve(server, sampler, program, token):
    """Serves the dashboard over `sampler` at ``http://address/_heaplens/`` from a daemon
    thread, on the server :func:`_listen` made."""
    from heaplens.wsgi import HeapLens

    app = HeapLens(server.heaplens_not_found, token=token, sampler=sampler, program=program)
    server.set_app(app)
    url = server.heaplens_url
    _say(f"dashboard of {program} at {url}" + (f"?token={token}" if token else ""))
    threading.Thread(target=server.serve_forever, name="heaplens-dashboard", daemon=True).start()


class _Run:
    """One ``heaplens run``: what a report needs, whenever it is asked for (when the program
    ends, on SIGTERM, on SIGUSR1), and which process reports.

    Signals are handled the way Python handles them, in the main thread between two bytecodes:
    the program is paused while its report is written. SIGTERM (``docker stop``, systemd)
    reports what was sampled, then ends the process as the signal would have, so the parent sees
    the program killed by SIGTERM; SIGUSR1 reports the run so far and the program goes on. A
    program that installs its own handler for either keeps it. Forked children (gunicorn or
    multiprocessing workers) inherit the handlers; they report (at exit or on SIGTERM) only
    with ``--report-children``, and their reports name their pid. SIGUSR1 sent to one is a
    request: it reports.
    """

    def __init__(self, sampler, program, snapshot_at_exit, history_path, report_children):
        self.sampler = sampler
        # How the sampler names the program at the head of its report.
        self.program = program
        self.snapshot_at_exit = snapshot_at_exit
        self.history_path = history_path
        self.report_children = report_children
        self.pid = self.current = os.getpid()
        self.forked_from = None
        self.forks = 0
        # A report is under way (a signal's, or the last one): another one waits or is dropped.
        self.busy = False
        self.terminate_after = False
        self.handlers = {}

    # -- forks --------------------------------------------------------------------------------

    def after_fork_in_parent(self):
        self.forks += 1

    def after_fork_in_child(self):
        self.forked_from, self.current = self.current, os.getpid()
        self.forks = 0

    @property
    def is_child(self):
        return os.getpid() != self.pid

    @property
    def reports(self):
        return not self.is_child or self.report_children

    def say(self, message):
        if self.is_child:
            _emit(f"heaplens (pid {os.getpid()}): {message}\n")
        else:
            _say(message)

    def label(self):
        if self.is_child:
            return f" (pid {os.getpid()}, forked from {self.forked_from or self.pid})"
        if self.report_children:
            return f" (pid {self.pid})"
        return ""

    # -- signals ------------------------------------------------------------------------------

    def install_handlers(self):
        import signal

        wanted = {"SIGTERM": self.on_sigterm, "SIGUSR1": self.on_sigusr1}
        for name, handler in wanted.items():
            number = getattr(signal, name, None)
            # An inherited SIG_IGN (nohup) or a handler of the embedding program stays.
            if number is None or signal.getsignal(number) != signal.SIG_DFL:
                continue
            try:
                signal.signal(number, handler)
            except ValueError:  # not the main thread (run() called from elsewhere)
                return
            self.handlers[number] = handler

    def restore_handlers(self):
        import signal

        for number, handler in self.handlers.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, signal.SIG_DFL)
        self.handlers.clear()

    def on_sigterm(self, signum, frame):
        if self.busy:
            # A report is under way: the last one ends the process itself; a SIGUSR1 one is
            # finished first.
            self.terminate_after = True
            return
        self.terminate()

    def terminate(self):
        import signal

        self.busy = True
        try:
            if self.reports:
                self.say("terminated (SIGTERM); reporting what was sampled")
                self.stop_sampling()
                self.report(final=True)
            else:
                self.stop_sampling()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
        finally:
            # As the signal would have ended it: the parent (docker, systemd, a shell) sees a
            # process killed by SIGTERM.
            self.restore_handlers()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if hasattr(signal, "pthread_sigmask"):
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
            signal.raise_signal(signal.SIGTERM)
            os._exit(128 + signal.SIGTERM)

    def on_sigusr1(self, signum, frame):
        if self.busy:
            return
        self.busy = True
        try:
            self.say("report so far (SIGUSR1); the program goes on")
            try:
                self.sampler.sample_now()
            except Exception:
                pass
            self.report(final=False)
        finally:
            self.busy = False
        if self.terminate_after:
            self.terminate()

    # -- the report ---------------------------------------------------------------------------

    def stop_sampling(self):
        try:
            self.sampler.sample_now()
        finally:
            self.sampler.stop()

    def report(self, final):
        """Prints the report; at the end of the run (`final`), saves the snapshot at exit too.
        Whatever fails here is said after the report, which is printed whatever happens."""
        import heaplens

        sampler = self.sampler
        # The snapshot at exit is the process heaplens started: a forked child that reports
        # does not write over it.
        save = self.snapshot_at_exit if final and not self.is_child else None
        failures = []
        steady = [trend[0] for trend in sampler.trends() if trend[6]]
        snap = None
        if steady or save:
            # Only the retaining paths of the steady growers need a snapshot.
            if steady:
                names = ", ".join(steady[:3]) + (", ..." if len(steady) > 3 else "")
                self.say(f"finding what holds {names} (one snapshot of the heap)")
            else:
                self.say("taking the snapshot at exit")
            try:
                # In a forked child where it can be: the program's other threads (a SIGUSR1
                # report while it runs) are held for the fork only.
                snap = heaplens.snapshot(fork=True)
            except Exception as error:
                failures.append(
                    (
                        f"cannot take a snapshot of the heap: {error}",
                        "the report has no retaining paths; heaplens.snapshot() in the program "
                        "says more",
                    )
                )
        saved = False
        if snap is not None and save:
            try:
                snap.save(save)
                saved = True
            except Exception as error:
                failures.append((f"cannot save the snapshot at exit: {error}", _save_hint(error)))
        error = sampler.error
        if error:
            self.say(f"sampling stopped early: {error}")
        text = sampler.report(snap)
        head = f"heaplens: {self.program}"
        label = self.label()
        if label and text.startswith(head):
            text = head + label + text[len(head) :]
        _emit(text)
        for message, hint in failures:
            _fail(message, hint)
        if saved:
            self.say(f"snapshot at exit saved to {save} (heaplens report {save})")
        if final and self.forks and not self.report_children:
            where = "; their samples are in the history file" if self.history_path else ""
            self.say(
                f"{self.forks} forked child process{'es' if self.forks > 1 else ''} did not "
                f"report (--report-children: each reports when it ends){where}"
            )
        if self.history_path:
            path = self.history_path
            self.say(f"every sample is in {path}: heaplens history {path}")


def _save_hint(error):
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return (
            "its directory went away during the run; the report above is complete: give "
            "--snapshot-at-exit a path in an existing directory next time"
        )
    if isinstance(error, PermissionError):
        return "the report above is complete: save it next time where you may write"
    if isinstance(error, OSError) and error.errno == 28:  # ENOSPC
        return "the disk is full; the report above is complete: free some space, or save elsewhere"
    return "the report above is complete: give --snapshot-at-exit the path of a regular file"


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
    report_children=False,
):
    """``heaplens run``: returns the exit status (the program's own)."""
    if module is None and not argv:
        return _fail(
            "run needs a script to run, or -m MODULE",
            "heaplens run [OPTIONS] SCRIPT [ARGS], or heaplens run [OPTIONS] -m MODULE [ARGS]",
        )
    if module is None and not os.path.exists(argv[0]):
        return _fail(
            f"can't open file {argv[0]!r}: no such file or directory",
            "check the path (relative to the current directory)",
        )
    support = _native.capture_support()
    if support is not None:
        return _fail(
            f"cannot sample this interpreter: {support}",
            "run the program with a CPython heaplens supports (3.11 to 3.15)",
        )
    script = None
    if module is None:
        script = _prepare_script(argv[0])
        if isinstance(script, int):
            return script
    elif "." not in module and _find_module(module) is None:
        # Only a top-level name is looked up ahead: finding a submodule would import its
        # parent packages, and with them code of the program's, before the program starts.
        return _fail(
            f"no module named {module!r}",
            "check the name (python -m takes the same), and that the current directory or "
            "sys.path holds it",
        )

    server = None
    if serve is not None:
        server = _listen(serve, token)
        if server is None:
            return 2

    program = _program_name(module, argv)
    history_path = None if no_history else os.path.abspath(history or _default_history(program))
    # The program may change directory: the snapshot goes where the user meant.
    if snapshot_at_exit is not None:
        snapshot_at_exit = os.path.abspath(snapshot_at_exit)
    sampled_as = program if module is None else f"-m {module}"
    try:
        sampler = _native.Sampler(
            period=period,
            maxhistory=_MAX_HISTORY,
            history=history_path,
            gc_only=not all_objects,
            program=sampled_as,
            max_overhead=max_overhead,
        )
    except Exception as error:  # the history file cannot be written: say so before running
        if server is not None:
            server.server_close()
        return _fail(
            str(error),
            "give --history a file in a directory you may write to (an existing file must be a "
            "heaplens history), or --no-history",
        )
    if history_path:
        _say(f"sampling {program} every {period:g} s into {history_path}")
    else:
        _say(f"sampling {program} every {period:g} s (no history file)")

    state = _Run(sampler, sampled_as, snapshot_at_exit, history_path, report_children)
    # As python sets it: for -m, runpy replaces the "-m" with the module's file.
    sys.argv = ["-m", *argv] if module is not None else list(argv)
    os.register_at_fork(
        before=sampler._before_fork,
        after_in_parent=sampler._after_fork_in_parent,
        after_in_child=sampler._reinit_after_fork,
    )
    os.register_at_fork(
        after_in_parent=state.after_fork_in_parent, after_in_child=state.after_fork_in_child
    )
    sampler.sample_now()
    sampler.start()
    if server is not None:
        _serve(server, sampler, program, token)
    if trace_alloc:
        # Before the program's first line, so that every object it makes has its traceback;
        # left on through the report, which asks where the growing objects come from.
        import tracemalloc

        tracemalloc.start(10)
    state.install_handlers()
    try:
        status, interrupted = _run_program(module, script)
    finally:
        # From here on a signal does not start a report (SIGTERM waits for this one).
        state.busy = True
        if server is not None:
            if not state.is_child:
                server.shutdown()  # in a forked child, the thread serving it does not exist
            server.server_close()
        # The program may also end in a KeyboardInterrupt raised inside the handlers above:
        # the sampler thread is stopped whatever happens.
        state.stop_sampling()
    try:
        if state.reports:
            if interrupted:
                state.say("interrupted; reporting what was sampled")
            state.report(final=True)
    except KeyboardInterrupt:  # Ctrl-C again while the report was being made: it is skipped
        _say("report interrupted")
    except Exception as error:  # the report is heaplens' own: the program's status stays
        _fail(f"the report failed: {error}", "the samples are in the history file, if any")
    finally:
        state.restore_handlers()
    return status
