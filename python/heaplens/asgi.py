"""The heaplens dashboard as ASGI 3 middleware (Starlette, FastAPI, Django's ASGI handler).

::

    from heaplens.asgi import HeapLens
    app = HeapLens(app)

The same dashboard, options and rules as :mod:`heaplens.wsgi`, ``trace_every=N`` included: a
traced request ends when the application returns, and its endpoint is named by the route
Starlette or FastAPI matched (``scope["route"]``), by ``scope["heaplens.route"]``, else by its
path (the censuses of a traced request run on the event loop; they count the objects made
since a mark placed 8 requests earlier, not the heap: about 0.2 ms a trace on a million-object
heap). Only ``http`` requests under the
mount point are answered; everything else (other paths, ``lifespan``, ``websocket``) goes to the
application untouched. The dashboard's work (a snapshot and its analysis) runs in a worker
thread, so the event loop goes on serving meanwhile. Loopback is judged from
``scope["client"]``; a client that is not an IP address (a test client) is not loopback.

Example:
    >>> import asyncio
    >>> from heaplens.asgi import HeapLens
    >>> async def app(scope, receive, send):
    ...     await send({"type": "http.response.start", "status": 204, "headers": []})
    ...     await send({"type": "http.response.body", "body": b""})
    >>> wrapped = HeapLens(app, period=60)
    >>> sent = []
    >>> async def send(message):
    ...     sent.append(message)
    >>> async def receive():
    ...     return {"type": "http.request", "body": b"", "more_body": False}
    >>> scope = {"type": "http", "method": "GET", "path": "/_heaplens/api/info",
    ...          "query_string": b"", "headers": [], "client": ("127.0.0.1", 5000)}
    >>> asyncio.run(wrapped(scope, receive, send))
    >>> sent[0]["status"]
    200
    >>> wrapped.close()
"""

import asyncio
import functools

from heaplens._middleware import MAX_BODY, Mounted, is_loopback, quote_path, route_of

__all__ = ["HeapLens"]


async def _respond(send, status, headers, body=b""):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive):
    """The request body, or None when it is larger than MAX_BODY."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class HeapLens(Mounted):
    """ASGI 3 middleware serving the heaplens dashboard at ``path`` (see the module docs)."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self._mount.ensure_started()
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        below = self._mount.below(path)
        if below is None:
            if self._mount.tracing:
                return await self._traced(scope, receive, send)
            return await self.app(scope, receive, send)
        query = scope.get("query_string", b"").decode("latin-1")
        if below == "":
            location = root + self._mount.path + "/" + ("?" + query if query else "")
            return await _respond(send, 301, [("Location", location), ("Content-Length", "0")])
        body = await _read_body(receive)
        if body is None:
            return await _respond(send, 413, [("Content-Length", "0")])
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())
        ]
        client = scope.get("client")
        if self._mount.tracing:
            self._mount.dashboard.trace_settle()  # the last traced request's second census
        call = functools.partial(
            self._mount.dashboard.handle,
            scope.get("method", "GET"),
            quote_path(below),
            query,
            headers,
            is_loopback(client[0] if client else None),
            body,
        )
        status, out_headers, content = await asyncio.get_running_loop().run_in_executor(
            None, call
        )
        out_headers.append(("Content-Length", str(len(content))))
        await _respond(send, status, out_headers, content)

    async def _traced(self, scope, receive, send):
        dashboard = self._mount.dashboard
        ticket = dashboard.trace_start()
        code = None

        async def sending(message):
            nonlocal code
            if message.get("type") == "http.response.start":
                status = message.get("status")
                code = status if isinstance(status, int) and 100 <= status <= 999 else None
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("heaplens.route")
            if not isinstance(route, str):
                route = route_of(scope.get("route"))
            dashboard.trace_finish(
                ticket, scope.get("method", "GET"), scope.get("path", ""), route, code
            )
