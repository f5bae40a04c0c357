"""A WSGI app that leaks: every request stores a ``Session`` in the module-level ``SESSIONS``
dict and never removes it. ``heaplens attach`` is tested against it under waitress.

Run as a script, it serves itself with waitress on a free port of 127.0.0.1 and prints the
port on its first line of output.
"""

import itertools

SESSIONS = {}
_ids = itertools.count()


class Session:
    def __init__(self, number, path):
        self.number = number
        self.path = path
        self.payload = "x" * 200


def app(environ, start_response):
    number = next(_ids)
    SESSIONS[f"session-{number}"] = Session(number, environ.get("PATH_INFO", "/"))
    body = f"hello {number}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def serve():
    import waitress

    # Imported, not run as __main__, so that the leaking type is leaky_wsgi_app.Session.
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


if __name__ == "__main__":
    import leaky_wsgi_app

    leaky_wsgi_app.serve()
