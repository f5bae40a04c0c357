"""The heaplens dashboard as WSGI middleware (Dozer's successor).

Wrap the application, and the dashboard answers at ``/_heaplens/`` while every other request
goes to the application untouched::

    from heaplens.wsgi import HeapLens
    app.wsgi_app = HeapLens(app.wsgi_app)            # Flask
    application = HeapLens(get_wsgi_application())   # Django, any WSGI app

A census of the heap is taken every ``period`` seconds by a background thread (stretched on big
heaps so that counting takes at most 0.5% of the time), started on the
first request (so each worker of a pre-fork server samples itself), keeping ``maxhistory``
samples (and appending them to the SQLite file ``history``, if given). Only clients on the
loopback interface are answered unless a ``token`` is set; snapshot downloads are off unless
``allow_downloads=True``. ``sampler=`` shows a sampler someone else runs (``heaplens run
--serve`` passes its own), ``program=`` names the program on the page (default: the app).

Per-endpoint growth: ``trace_every=N`` traces 1 request in N and the page ranks the endpoints
by the objects their requests leave behind. A traced request is measured by a young-generation
collection and a census of the gc-tracked objects made since a mark (placed 8 requests
earlier) when it starts and when the next request arrives: it costs what those requests made,
not the heap's size: about 0.2 ms a traced request on a million-object heap (it was about
100 ms when each census counted the whole heap), and about 4 us for each request that is not
traced (counting it for its endpoint). Older objects freed during a trace are not seen: a
request that swaps an entry of a bounded cache shows the entry it added. Endpoints are named by Flask's matched rule
(``GET /orders/<int:id>``), by Django's URL pattern with :class:`DjangoRoutes` in ``MIDDLEWARE``,
by ``environ["heaplens.route"]`` if the application sets it, else by the path with
identifier-looking segments replaced (``GET /orders/{id}``). No dependencies beyond
the standard library.

Where objects come from: ``trace_alloc=True`` starts :mod:`tracemalloc` (10 frames) when the
middleware is created, so each snapshot records where every object was allocated and the
comparison shows, beside each suspect's path, the line that allocated it and its callers. It
costs what tracemalloc costs (the program runs slower and uses more memory) and makes a
snapshot several times longer: for hunting a leak, not for every day.

Example:
    >>> from heaplens.wsgi import HeapLens
    >>> def app(environ, start_response):
    ...     start_response("200 OK", [("Content-Type", "text/plain")])
    ...     return [b"hello"]
    >>> wrapped = HeapLens(app, period=60)
    >>> seen = []
    >>> environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/_heaplens", "REMOTE_ADDR": "127.0.0.1"}
    >>> wrapped(environ, lambda status, headers: seen.append(status))
    [b'']
    >>> seen
    ['301 Moved Permanently']
    >>> wrapped.close()
"""

import http

from heaplens._middleware import MAX_BODY, Mounted, is_loopback, quote_path, route_of

__all__ = ["DjangoRoutes", "HeapLens"]


def _status_code(status):
    """The code of a WSGI status line (``"404 NOT FOUND"``), or None when it has none."""
    head = str(status).split(" ", 1)[0]
    return int(head) if head.isdigit() and len(head) == 3 else None


def _reason(status):
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _headers(environ):
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), value))
    return headers


def _route(environ):
    """The route the application matched, if it says: its own ``heaplens.route``, or Flask's."""
    route = environ.get("heaplens.route")
    if isinstance(route, str):
        return route
    request = environ.get("werkzeug.request")  # Flask's request, while its context is active
    if request is None:
        return None
    return route_of(getattr(request, "url_rule", None))



def _text(path_info):
    """A WSGI ``PATH_INFO`` as the text it stands for: PEP 3333 passes the decoded bytes as
    latin-1 text, so ``/café`` arrives as ``/cafÃ©``; back to the bytes, then read as UTF-8."""
    return path_info.encode("latin-1", "replace").decode("utf-8", "replace")

class DjangoRoutes:
    """Django middleware naming per-endpoint growth by Django's URL patterns.

    Django keeps the pattern a request matched on the request (``request.resolver_match``),
    where the WSGI or ASGI middleware cannot see it; this passes it on. Add
    ``"heaplens.wsgi.DjangoRoutes"`` to ``MIDDLEWARE`` (it works under ASGI too). Django is not
    imported.

    Example:
        >>> class Match:
        ...     route = "orders/<int:pk>"
        >>> class Request:
        ...     environ, resolver_match = {}, Match()
        >>> request = Request()
        >>> DjangoRoutes(lambda request: "response")(request)
        'response'
        >>> request.environ["heaplens.route"]
        '/orders/<int:pk>'
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        route = getattr(getattr(request, "resolver_match", None), "route", None)
        if isinstance(route, str) and route:
            route = "/" + route.lstrip("^/")
            scope = getattr(request, "scope", None)  # an ASGIRequest
            target = scope if isinstance(scope, dict) else getattr(request, "environ", None)
            if isinstance(target, dict):
                target["heaplens.route"] = route
        return response


class _TracedBody:
    """The body of a traced response: the trace ends when the server closes it (PEP 3333), so
    what the body's iteration allocates and frees counts too."""

    def __init__(self, body, finish):
        self._body = body
        self._finish = finish

    def __iter__(self):
        return iter(self._body)

    def close(self):
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            finish, self._finish = self._finish, None
            if finish is not None:
                finish()


class HeapLens(Mounted):
    """WSGI middleware serving the heaplens dashboard at ``path`` (see the module docs)."""

    def __call__(self, environ, start_response):
        self._mount.ensure_started()
        below = self._mount.below(environ.get("PATH_INFO", ""))
        if below is None:
            if self._mount.tracing:
                return self._traced(environ, start_response)
            return self.app(environ, start_response)
        query = environ.get("QUERY_STRING", "")
        if below == "":
            location = environ.get("SCRIPT_NAME", "") + self._mount.path + "/"
            if query:
                location += "?" + query
            start_response(_reason(301), [("Location", location), ("Content-Length", "0")])
            return [b""]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            start_response(_reason(413), [("Content-Length", "0")])
            return [b""]
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        if environ.get("wsgi.multiprocess"):
            # gunicorn's workers, say: the page says which worker answered (Dozer refused).
            self._mount.dashboard._set_multiprocess(True)
        if self._mount.tracing:
            self._mount.dashboard.trace_settle()  # the last traced request's second census
        path = quote_path(_text(below))
        status, headers, content = self._mount.dashboard.handle(
            environ.get("REQUEST_METHOD", "GET"),
            path,
            query,
            _headers(environ),
            is_loopback(environ.get("REMOTE_ADDR")),
            body,
        )
        headers.append(("Content-Length", str(len(content))))
        start_response(_reason(status), headers)
        return [content]

    def _traced(self, environ, start_response):
        dashboard = self._mount.dashboard
        ticket = dashboard.trace_start()
        if not ticket:
            return self._counted(dashboard, environ, start_response)
        route = None
        code = None

        def start(status, headers, exc_info=None):
            # Flask's request context (and so its matched rule) is still active here.
            nonlocal route, code
            route = _route(environ)
            code = _status_code(status)
            return start_response(status, headers, exc_info)

        def finish():
            dashboard.trace_finish(
                ticket,
                environ.get("REQUEST_METHOD", "GET"),
                _text(environ.get("PATH_INFO", "")),
                route or _route(environ),
                code,
            )

        try:
            body = self.app(environ, start)
        except BaseException:
            finish()
            raise
        return _TracedBody(body, finish)

    def _counted(self, dashboard, environ, start_response):
        """A request that is not traced: only counted for its endpoint, when the application
        returns (no need to wait for the body), with as little work as can be: the path and the
        status are read only when no route names the endpoint."""
        route = status = None

        def start(line, headers, exc_info=None):
            # Flask's request context (and so its matched rule) is still active here.
            nonlocal route, status
            route = _route(environ)
            status = line
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            route = route or _route(environ)
            if route:
                dashboard.trace_finish(0, environ.get("REQUEST_METHOD", "GET"), "", route)
            else:
                dashboard.trace_finish(
                    0,
                    environ.get("REQUEST_METHOD", "GET"),
                    _text(environ.get("PATH_INFO", "")),
                    None,
                    _status_code(status),
                )
