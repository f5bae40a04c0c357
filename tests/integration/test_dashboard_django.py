"""The dashboard as WSGI middleware around a real Django application that leaks per request."""

import gc
import importlib.util
import sys

import pytest

from heaplens.wsgi import HeapLens

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("django") is None or importlib.util.find_spec("werkzeug") is None,
    reason="Django (and werkzeug's test client) are not installed",
)

MOUNT = "/_heaplens"


class LeakyDjangoSession:
    """What the view leaks: one per request, kept in ``_SESSIONS``."""

    def __init__(self, n):
        self.n = n


_SESSIONS = []


def leak(request):
    from django.http import JsonResponse

    _SESSIONS.append(LeakyDjangoSession(len(_SESSIONS)))
    return JsonResponse({"sessions": len(_SESSIONS)})


def session(request, n):
    from django.http import HttpResponse

    _SESSIONS.append(LeakyDjangoSession(n))
    return HttpResponse("kept")


def _urlpatterns():
    from django.urls import path

    return [path("leak", leak), path("sessions/<int:n>", session)]


@pytest.fixture
def client():
    import django
    from django.conf import settings
    from werkzeug.test import Client

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="heaplens-tests",
            ALLOWED_HOSTS=["localhost"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=[],
            MIDDLEWARE=["heaplens.wsgi.DjangoRoutes"],
        )
        django.setup()
    module = sys.modules[__name__]
    module.urlpatterns = _urlpatterns()
    from django.core.wsgi import get_wsgi_application

    wrapped = HeapLens(get_wsgi_application(), period=60, trace_every=1)
    yield Client(wrapped), wrapped
    wrapped.close()
    _SESSIONS.clear()
    gc.collect()


def test_django_requests_pass_through_and_the_dashboard_finds_the_leak(client):
    client, wrapped = client
    # werkzeug's plain test client sends no REMOTE_ADDR: say the client is local.
    base = {"base_url": "http://localhost/", "environ_base": {"REMOTE_ADDR": "127.0.0.1"}}
    assert client.get("/leak", **base).json == {"sessions": 1}
    assert client.get(MOUNT, **base).status_code == 301
    assert client.get(MOUNT + "/", **base).status_code == 200
    csrf = {"X-HeapLens": "1"}
    assert client.post(MOUNT + "/api/snapshot", headers=csrf, **base).status_code == 200
    for _ in range(200):
        client.get("/leak", **base)
    assert client.post(MOUNT + "/api/snapshot", headers=csrf, **base).status_code == 200
    diff = client.get(MOUNT + "/api/diff", **base).json
    grew = {row["name"]: row["count_delta"] for row in diff["grew"]}
    leaked = next(n for n in grew if n.endswith("LeakyDjangoSession"))
    assert grew[leaked] >= 200
    suspect = next(s for s in diff["suspects"] if any(t["name"] == leaked for t in s["types"]))
    assert "_SESSIONS" in suspect["holder_path"]
    remote = client.get(
        MOUNT + "/api/info", base_url=base["base_url"], environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert remote.status_code == 403


def test_django_url_patterns_name_the_endpoints(client):
    client, wrapped = client
    base = {"base_url": "http://localhost/", "environ_base": {"REMOTE_ADDR": "127.0.0.1"}}
    for n in range(30):
        response = client.get(f"/sessions/{n}", **base)
        assert response.status_code == 200
        response.close()  # the trace of a WSGI request ends when its body is closed
    answer = client.get(MOUNT + "/api/endpoints", **base).json
    rows = {row["endpoint"]: row for row in answer["endpoints"]}
    assert set(rows) == {"GET /sessions/<int:n>"}, rows
    row = rows["GET /sessions/<int:n>"]
    assert (row["requests"], row["traced"]) == (30, 30)
    left = {t["name"]: t["per_request"] for t in row["types"]}
    assert left[f"{__name__}.LeakyDjangoSession"] == 1.0, left
