"""A Flask shop that leaks, and whose heap holds names written to attack the page that shows them.

Every request to ``/order`` appends a ``LeakyOrder`` to the module global ``ORDERS`` for ever.
Each order holds an instance of two classes whose names are markup (type names are shown on the
dashboard), and the shared dict ``STASH``, whose keys are markup, a 100,000-character string,
bytes that are not UTF-8, a str with a lone surrogate and control characters (dict keys are shown
as the labels of references). If the page ever put one of these into the DOM as HTML, the script
would set ``window.__pwned``.

``save_snapshot(PATH)``, run in a process of its own, saves a snapshot of a process in that state
for the offline viewer (``heaplens serve``).
"""

SCRIPT = "<script>window.__pwned=1</script>"
ATTRIBUTE = '"><img src=x onerror="window.__pwned=1">'
CONTROLS = "\x00\x1b[31mred\u202eevil\x07"
LONG = "L" * 100_000


class ScriptNamed:
    """A class named with a script element; its instances carry an attribute named with markup."""

    def __init__(self):
        setattr(self, ATTRIBUTE, CONTROLS)


ScriptNamed.__name__ = ScriptNamed.__qualname__ = SCRIPT


class AttributeNamed:
    """A class whose name breaks out of an HTML attribute, with a lone surrogate and controls."""


AttributeNamed.__name__ = ATTRIBUTE
# A type's __name__ must encode to UTF-8 without NULs; its __qualname__ may hold anything.
AttributeNamed.__qualname__ = "\udcff" + ATTRIBUTE + CONTROLS

STASH = {
    LONG: "a key of 100,000 characters",
    b"\xff\xfe" + SCRIPT.encode() + b"\x80": "bytes that are not UTF-8",
    "\udcff" + SCRIPT: "a lone surrogate",
    CONTROLS: "control characters",
    ATTRIBUTE: "an attribute breaker",
    "long value": "V" * 100_000,
}


class LeakyOrder:
    """What the shop leaks: one per request, kept in ``ORDERS``."""

    def __init__(self, n):
        self.n = n
        self.gift = ScriptNamed()
        self.card = AttributeNamed()
        self.stash = STASH


ORDERS = []


def make_app():
    """The Flask app (Flask is imported here, so that importing this module stays cheap)."""
    import flask

    app = flask.Flask("leaky_shop")

    @app.route("/order")
    def order():
        # ?items=N leaks N orders in one request (at most 100).
        items = min(max(flask.request.args.get("items", 1, type=int), 1), 100)
        for _ in range(items):
            ORDERS.append(LeakyOrder(len(ORDERS)))
        return {"orders": len(ORDERS)}

    @app.route("/health")
    def health():
        return "ok"  # leaves nothing behind

    return app


def save_snapshot(path, orders=2000):
    """Leaks ``orders`` orders, then saves a snapshot of this process to ``path``."""
    import heaplens

    for _ in range(orders):
        ORDERS.append(LeakyOrder(len(ORDERS)))
    heaplens.snapshot().save(path)
