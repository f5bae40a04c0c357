"""What the WSGI and ASGI middleware share: the mount point, the sampler's life, loopback.

The dashboard itself is ``_native.Dashboard`` (routes, API, page and security rules, in Rust);
the middleware only moves bytes between the server and it.
"""

import atexit
import ipaddress
import os
import sys
import threading
import urllib.parse
import weakref

from heaplens import _native

#: The largest request body the dashboard reads (its requests carry none worth more).
MAX_BODY = 1 << 20

#: The share of the time the middleware's sampler may spend counting (it stretches its period
#: to stay under it). Half of ``heaplens run``'s 1%: a web app's throughput should not move by
#: more than 1% with the dashboard mounted, and the middleware's own Python counts too.
SAMPLER_BUDGET = 0.005

#: Characters left as they are when a decoded path is percent-encoded again (RFC 3986 pchar).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

# Every mount alive, for the fork and exit hooks (weakly: a discarded middleware is not kept).
_mounts = weakref.WeakSet()


def is_loopback(host):
    """Whether ``host`` (a client address as the server gives it) is 127.0.0.0/8 or ::1.

    Anything that is not an IP address (a Unix socket path, a test client's name) is not.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("10.0.0.1")
        (True, True, False)
        >>> is_loopback("testclient"), is_loopback(None)
        (False, False)
    """
    if not isinstance(host, str):
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def quote_path(path):
    """A decoded path, percent-encoded again for the dashboard's router.

    Example:
        >>> quote_path("/api/types/app.<Order>")
        '/api/types/app.%3COrder%3E'
    """
    return urllib.parse.quote(path, safe=_PATH_SAFE)


#: Packages whose objects are not what a user calls their program: the frameworks and servers.
_FRAMEWORKS = {
    "a2wsgi", "django", "falcon", "fastapi", "flask", "gunicorn", "hypercorn", "litestar",
    "pyramid", "quart", "sanic", "starlette", "uvicorn", "waitress", "werkzeug",
}
#: The servers that are given the application as ``module:attribute`` on their command line.
_LAUNCHERS = {"gunicorn", "uvicorn", "hypercorn", "daphne", "granian", "waitress-serve"}


def _program(app, argv=None, environ=None):
    """The name a user knows the program by: the Flask (or Quart) app's import name, the
    Django project, the ``module:app`` a server was started with, the script; the wrapped
    object's own name only when it is the user's (``flask.app.Flask.wsgi_app`` is no one's name
    for their shop).

    Example:
        >>> class Shop:
        ...     import_name = "shop"
        ...     def wsgi_app(self, environ, start_response): ...
        >>> _program(Shop().wsgi_app, argv=["python"])
        'shop'
        >>> _program(lambda e, s: None, argv=["/venv/bin/gunicorn", "-w", "2", "shop.wsgi:app"])
        'shop.wsgi:app'
        >>> _program(lambda e, s: None, argv=["/venv/.../gunicorn/__main__.py", "shop:app"])
        'shop:app'
        >>> _program(object(), argv=["/srv/shop/serve.py"], environ={})
        'serve.py'
        >>> _program(object(), argv=["/srv/shop/__main__.py"], environ={})
        'shop'
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    owner = getattr(app, "__self__", app)  # a bound method (Flask's wsgi_app): its object
    import_name = getattr(owner, "import_name", None)
    if isinstance(import_name, str) and import_name and import_name != "__main__":
        return import_name
    module = getattr(app, "__module__", None) or type(app).__module__ or ""
    if module.split(".")[0] == "django" and environ.get("DJANGO_SETTINGS_MODULE"):
        return environ["DJANGO_SETTINGS_MODULE"].rsplit(".", 1)[0]
    # What was run: a script, or, for `python -m name`, the package (its __main__.py's folder).
    ran = os.path.basename(argv[0]) if argv and argv[0] not in ("", "-c", "-m") else ""
    if ran == "__main__.py":
        ran = os.path.basename(os.path.dirname(argv[0])) or ran
    if ran in _LAUNCHERS:
        named = [a for a in argv[1:] if ":" in a and not a.startswith("-") and "/" not in a]
        if named:
            return named[-1]
    if module not in ("", "__main__", "builtins") and module.split(".")[0] not in _FRAMEWORKS:
        name = getattr(app, "__qualname__", None) or type(app).__qualname__
        return f"{module}.{name}"
    if ran:
        return ran
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{module}.{name}" if module else name


def _trace_every(value):
    if value is None or value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"trace_every must be a whole number >= 1 (1 in N requests is traced), not {value!r}"
        )
    return value


# The attribute that held the path template, by the type of the route object: asking a werkzeug
# rule for ``path`` first raised and caught an AttributeError on every request.
_ROUTE_ATTRIBUTE = {}


def route_of(request_route):
    """The path template of a framework's matched route object, or None.

    Starlette and FastAPI routes (``scope["route"]``) and werkzeug rules (Flask's
    ``request.url_rule``) both keep it in a string attribute: ``path`` or ``rule``.

    The attribute found for one route of a class is asked first for the next ones.

    Example:
        >>> class Rule:
        ...     def __init__(self, rule):
        ...         self.rule = rule
        >>> class Route:
        ...     def __init__(self, path):
        ...         self.path = path
        >>> route_of(Rule("/orders/<int:id>")), route_of(Route("/o/{id}"))
        ('/orders/<int:id>', '/o/{id}')
        >>> route_of(Rule("/users/<name>")), route_of(Route("/u/{name}"))
        ('/users/<name>', '/u/{name}')
        >>> route_of(Rule(None)) is None, route_of(None) is None
        (True, True)
    """
    if request_route is None:
        return None
    kind = type(request_route)
    known = _ROUTE_ATTRIBUTE.get(kind)
    if known is not None:
        value = getattr(request_route, known, None)
        if isinstance(value, str):
            return value
    for attribute in ("path", "rule"):
        value = getattr(request_route, attribute, None)
        if isinstance(value, str):
            if len(_ROUTE_ATTRIBUTE) < 64:  # a few route classes per application
                _ROUTE_ATTRIBUTE[kind] = attribute
            return value
    return None


class Mount:
    """A dashboard mounted at ``path``, with the sampler whose history it shows."""

    def __init__(
        self,
        app,
        path,
        period,
        maxhistory,
        history,
        token,
        allow_downloads,
        sampler=None,
        program=None,
        trace_every=None,
    ):
        path = "/" + path.strip("/")
        if path == "/":
            raise ValueError("the dashboard needs a path of its own, such as '/_heaplens'")
        self.path = path
        self._below = path + "/"
        program = program or _program(app)
        # A sampler given by its owner (heaplens run) is started, stopped and re-created after
        # a fork by that owner, not by the mount.
        self._owns_sampler = sampler is None
        self.sampler = sampler or _native.Sampler(
            period=period,
            maxhistory=maxhistory,
            history=history,
            program=program,
            max_overhead=SAMPLER_BUDGET,
        )
        self.dashboard = _native.Dashboard(
            self.sampler,
            token=token,
            allow_downloads=allow_downloads,
            program=program,
            trace_every=_trace_every(trace_every),
        )
        #: Whether requests are traced (1 in ``trace_every``), for the endpoints table.
        self.tracing = self.dashboard.tracing
        self._started = False
        self._lock = threading.Lock()
        _mounts.add(self)

    def ensure_started(self):
        """Starts sampling, on the first request (so a pre-fork server samples in each worker)."""
        if self._started or not self._owns_sampler:
            return
        with self._lock:
            if not self._started:
                # A first sample now, so the dashboard has something to show at once.
                try:
                    self.sampler.sample_now()
                except _native.CaptureError:
                    pass  # a collection was running; the thread samples soon
                self.sampler.start()
                self._started = True

    def below(self, path):
        """``path`` below the mount point (``""`` for the bare mount), or None outside it."""
        # Every request of the application asks: the common answer (outside) in two comparisons.
        if path.startswith(self._below):
            return path[len(self.path) :]
        return "" if path == self.path else None

    def close(self):
        """Stops the sampler (it is started again by the next request)."""
        with self._lock:
            if self._owns_sampler:
                self.sampler.stop()
            self._started = False

    def _after_fork_in_child(self):
        self._lock = threading.Lock()
        if self._owns_sampler:
            self.sampler._reinit_after_fork()
        self.dashboard._reinit_after_fork()


def _before_fork():
    # No sampler thread runs across a fork (see Sampler._before_fork).
    for mount in list(_mounts):
        if mount._owns_sampler:
            mount.sampler._before_fork()


def _after_fork_in_parent():
    for mount in list(_mounts):
        if mount._owns_sampler:
            mount.sampler._after_fork_in_parent()


def _after_fork_in_child():
    for mount in list(_mounts):
        mount._after_fork_in_child()


def _stop_all():
    # The sampler thread must not ask for the GIL while the interpreter finalizes.
    for mount in list(_mounts):
        if mount._owns_sampler:
            mount.sampler.stop()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
atexit.register(_stop_all)


#: Frames tracemalloc keeps per allocation when the middleware starts it: the allocating line
#: and enough of its callers to reach the view.
ALLOCATION_FRAMES = 10


def _start_tracing_allocations():
    """Starts tracemalloc (unless it traces already), so that snapshots record where every
    object was allocated and the comparison says where each suspect's objects come from."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        tracemalloc.start(ALLOCATION_FRAMES)


class Mounted:
    """What the WSGI and ASGI middleware share: the wrapped app, the mount and its sampler."""

    def __init__(
        self,
        app,
        path="/_heaplens",
        period=5.0,
        maxhistory=720,
        history=None,
        token=None,
        allow_downloads=False,
        sampler=None,
        program=None,
        trace_every=None,
        trace_alloc=False,
    ):
        self.app = app
        if trace_alloc:
            _start_tracing_allocations()
        self._mount = Mount(
            app,
            path,
            period,
            maxhistory,
            history,
            token,
            allow_downloads,
            sampler,
            program,
            trace_every,
        )

    @property
    def path(self):
        """The mount point, such as ``/_heaplens``."""
        return self._mount.path

    @property
    def sampler(self):
        """The :class:`heaplens._native.Sampler` whose history the dashboard shows."""
        return self._mount.sampler

    def close(self):
        """Stops the background sampler (the next request starts it again)."""
        self._mount.close()
