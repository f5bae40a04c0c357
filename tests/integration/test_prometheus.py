"""heaplens as a fleet's leak detector, tested with a real Prometheus (Debian's ``prometheus``
package) on loopback: the shipped rules pass ``promtool``, fire on a steady leak and not on a
warm-up (``promtool test rules``), and, scraping a real gunicorn app with the middleware (two
workers, one leaking endpoint under a bounded load, through ``heaplens metrics FILE.db``) and two
batch jobs run by ``heaplens run`` (one through its history file and ``heaplens metrics``, the
leaking one scraped at its own ``--serve`` dashboard's ``/_heaplens/metrics``), name the leaking
types and instances first.

With CI=true a missing ``prometheus`` fails these tests rather than skipping them."""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux")

HEAPLENS = shutil.which("heaplens") or pytest.fail("the heaplens console script is not installed")
PATIENCE = 240  # seconds to wait for a condition: ends a hang, not a timing assertion
# The window the test's rules judge: seconds, where the shipped default is hours.
WINDOW = "40s"


def _missing(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the Prometheus tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def _tool(name):
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK)
                                  else None)
    if path is None:
        _missing(f"{name} is not installed (apt-get install prometheus)")
    return path


def heaplens(*args, **kwargs):
    return subprocess.run([HEAPLENS, *map(str, args)], capture_output=True, text=True,
                          timeout=120, **kwargs)


def rules(*args):
    r = heaplens("prometheus-rules", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("args", [[], ["--window", WINDOW, "--min-objects", "10"]],
                         ids=["shipped", "test-window"])
def test_promtool_accepts_the_rules(tmp_path, args):
    promtool = _tool("promtool")
    path = tmp_path / "heaplens.rules.yml"
    path.write_text(rules(*args))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout + r.stderr


UNIT_TESTS = textwrap.dedent(
    """
    rule_files: [heaplens.rules.yml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          # Ten objects a minute for six hours: a leak.
          - series: 'heaplens_type_objects{instance="a:1",job="web",pid="11",type="app.Leak"}'
            values: '0+10x360'
          # Fills to 3,000 in the first 30 minutes, then stays (a cache warming up).
          - series: 'heaplens_type_objects{instance="a:1",job="web",pid="11",type="app.Cache"}'
            values: '0+100x30 3000x330'
          # Goes up and down with the work in flight.
          - series: 'heaplens_type_objects{instance="a:1",job="web",pid="11",type="dict"}'
            values: '5000 9000 5000 9000 5000 9000 5000 9000 5000 9000 5000 9000 5000+0x348'
          # 64 MiB in the first hour, then flat; another process grows 100 MiB an hour.
          - series: 'heaplens_rss_bytes{instance="a:1",job="web",pid="11"}'
            values: '0+1118481x60 67108864x300'
          - series: 'heaplens_rss_bytes{instance="b:1",job="web",pid="12"}'
            values: '0+1747626x360'
        alert_rule_test:
          - eval_time: 2h
            alertname: HeapLensTypeGrowing
            exp_alerts: []
        promql_expr_test:
          - expr: ALERTS{alertstate="firing"}
            eval_time: 5h
            exp_samples:
              - labels: 'ALERTS{alertname="HeapLensTypeGrowing",alertstate="firing",instance="a:1",job="web",pid="11",severity="warning",type="app.Leak"}'
                value: 1
              - labels: 'ALERTS{alertname="HeapLensMemoryGrowing",alertstate="firing",instance="b:1",job="web",pid="12",severity="warning"}'
                value: 1
    """
)


def test_the_rules_fire_on_a_steady_leak_and_not_on_a_warm_up(tmp_path):
    """``promtool test rules`` over six hours of made-up series, with the shipped rules (2 h)."""
    promtool = _tool("promtool")
    (tmp_path / "heaplens.rules.yml").write_text(rules())
    (tmp_path / "tests.yml").write_text(UNIT_TESTS)
    r = subprocess.run([promtool, "test", "rules", "tests.yml"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


APP = textwrap.dedent(
    """
    import os

    from heaplens.wsgi import HeapLens

    KEPT = []

    class FleetLeak:
        __slots__ = ()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/leak":
            KEPT.append(FleetLeak())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    app = HeapLens(app, period=0.2, history=os.environ["FLEET_HISTORY"])
    """
)

# A batch job that does not leak: the same work again and again, until told to stop.
BATCH = textwrap.dedent(
    """
    import os, sys, time

    stop = sys.argv[1]
    while not os.path.exists(stop):
        rows = [{"n": i, "s": str(i)} for i in range(2000)]
        del rows
        time.sleep(0.05)
    """
)

# A worker that is no web server, and leaks: five objects kept per round.
LEAKY_BATCH = textwrap.dedent(
    """
    import os, sys, time

    class BatchLeak:
        __slots__ = ()

    KEPT = []
    stop = sys.argv[1]
    while not os.path.exists(stop):
        KEPT.extend(BatchLeak() for _ in range(5))
        time.sleep(0.05)
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, log=lambda: ""):
    """Polls ``check`` until it returns something true, and returns it."""
    deadline = time.monotonic() + PATIENCE
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}\n{log()}"
        time.sleep(0.5)


class Processes:
    """Child processes, each ended (process group and all) at the end of the test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.children = []

    def start(self, name, args, **kwargs):
        log = self.tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kwargs)
        self.children.append((name, child, log))
        return child, log

    def logs(self):
        return "\n".join(f"--- {name}\n{log.read_text(errors='replace')[-4000:]}"
                         for name, _, log in self.children)

    def close(self):
        for _, child, _ in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for _, child, _ in reversed(self.children):
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(30)


def exporter(processes, name, history):
    """``heaplens metrics HISTORY --port 0``: its address, once it listens."""
    child, log = processes.start(name, [HEAPLENS, "metrics", str(history), "--port", "0"])
    found = wait_for(f"{name} to listen",
                     lambda: re.search(rb"http://(127\.0\.0\.1:\d+)/metrics", log.read_bytes())
                     or child.poll() is not None, processes.logs)
    assert child.poll() is None, processes.logs()
    return found.group(1).decode()


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=30) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status
    except OSError:
        return None


@pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None, reason="needs gunicorn")
def test_prometheus_names_the_leaking_types_and_instances_of_a_fleet(tmp_path):
    prometheus = _tool("prometheus")
    processes = Processes(tmp_path)
    stop = threading.Event()
    try:
        # The web app: two gunicorn workers, each writing its samples to one history file.
        (tmp_path / "fleet_app.py").write_text(APP)
        env = dict(os.environ, FLEET_HISTORY=str(tmp_path / "web.db"),
                   PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        gunicorn, log = processes.start("gunicorn", [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0",
            "--timeout", "600", "fleet_app:app"], env=env, cwd=tmp_path)
        web_port = int(wait_for("gunicorn to listen", lambda: re.search(
            rb"Listening at: http://127\.0\.0\.1:(\d+)", log.read_bytes()), processes.logs
        ).group(1))
        wait_for("gunicorn to answer", lambda: get(f"http://127.0.0.1:{web_port}/") == 200,
                 processes.logs)

        # The load: bounded (at most 20 requests a second, 20,000 in all), on a connection each,
        # so that both workers get some; it lasts until the test ends, however slow the machine.
        def load():
            for i in range(20000):
                if stop.wait(0.05):
                    return
                get(f"http://127.0.0.1:{web_port}/" + ("leak" if i % 2 else ""))
        loader = threading.Thread(target=load, daemon=True)
        loader.start()

        # Two workers that are no web servers, run by heaplens run: a batch job that does not
        # leak, seen through its history file and `heaplens metrics`, and one that does, scraped
        # directly at its own dashboard's /_heaplens/metrics (`heaplens run --serve`).
        for name, script in (("batch", BATCH), ("leaky", LEAKY_BATCH)):
            (tmp_path / f"{name}.py").write_text(script)
        processes.start("batch", [HEAPLENS, "run", "--period", "0.2", "--history",
                                  str(tmp_path / "batch.db"), str(tmp_path / "batch.py"),
                                  str(tmp_path / "stop")], cwd=tmp_path)
        leaky_job, leaky_log = processes.start("leaky", [
            HEAPLENS, "run", "--period", "0.2", "--serve", "127.0.0.1:0",
            str(tmp_path / "leaky.py"), str(tmp_path / "stop")], cwd=tmp_path)
        for db in ("web.db", "batch.db"):
            wait_for(f"{db}", lambda db=db: (tmp_path / db).exists(), processes.logs)
        web = exporter(processes, "web-exporter", tmp_path / "web.db")
        batch = exporter(processes, "batch-exporter", tmp_path / "batch.db")
        leaky = wait_for("the leaky job's dashboard", lambda: re.search(
            rb"http://(127\.0\.0\.1:\d+)/_heaplens/", leaky_log.read_bytes())
            or leaky_job.poll() is not None, processes.logs)
        assert leaky_job.poll() is None, processes.logs()
        leaky = leaky.group(1).decode()

        (tmp_path / "heaplens.rules.yml").write_text(rules("--window", WINDOW,
                                                           "--min-objects", "10"))
        (tmp_path / "prometheus.yml").write_text(textwrap.dedent(f"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: [heaplens.rules.yml]
            scrape_configs:
              - job_name: web
                static_configs: [{{targets: ["{web}"]}}]
              - job_name: batch
                static_configs: [{{targets: ["{batch}"]}}]
              - job_name: leaky
                metrics_path: /_heaplens/metrics
                static_configs: [{{targets: ["{leaky}"]}}]
            """))
        # Prometheus cannot say which port it got for 0: a free one is picked, and picked again
        # should another test take it first.
        for attempt in range(3):
            port = free_port()
            server, _ = processes.start(f"prometheus-{attempt}", [
                prometheus, "--config.file", str(tmp_path / "prometheus.yml"),
                "--storage.tsdb.path", str(tmp_path / f"tsdb-{attempt}"),
                "--web.listen-address", f"127.0.0.1:{port}"], cwd=tmp_path)
            wait_for("Prometheus to answer or end", lambda: server.poll() is not None
                     or get(f"http://127.0.0.1:{port}/-/ready") == 200, processes.logs)
            if server.poll() is None:
                break
        assert server.poll() is None, processes.logs()

        # Both workers are scraped through the one exporter, each with its pid.
        def web_pids():
            return {r["metric"]["pid"] for r in query(port, 'heaplens_rss_bytes{job="web"}')}

        wait_for("both workers' series", lambda: len(web_pids()) >= 2, processes.logs)
        assert str(gunicorn.pid) not in web_pids()

        leak, batch_leak = "fleet_app.FleetLeak", "__main__.BatchLeak"
        firing = 'ALERTS{alertname="HeapLensTypeGrowing",alertstate="firing"}'

        def state():
            """What Prometheus sees, for a failure's message."""
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets",
                                        timeout=30) as answer:
                targets = [(t["labels"]["job"], t["health"], t["lastError"])
                           for t in json.load(answer)["data"]["activeTargets"]]
            alerts = [r["metric"] for r in query(port, "ALERTS")]
            growth = query(port, f"topk(5, heaplens:type_objects:deriv{WINDOW})")
            return f"targets {targets}\nalerts {alerts}\ngrowth {growth}\n{processes.logs()}"

        alerts = wait_for("the leak alerts", lambda: [
            r["metric"] for r in query(port, firing)
        ] if {r["metric"]["type"] for r in query(port, firing)} >= {leak, batch_leak}
            else None, state)
        assert {a["instance"] for a in alerts if a["type"] == leak} == {web}, alerts
        assert {a["pid"] for a in alerts if a["type"] == leak} <= web_pids(), alerts
        assert {a["instance"] for a in alerts if a["type"] == batch_leak} == {leaky}, alerts
        # Each leaking instance's fastest growing type is its leak.
        top = query(port, f"topk by (instance) (1, heaplens:type_objects:deriv{WINDOW})")
        top = {t["metric"]["instance"]: t["metric"]["type"] for t in top}
        assert (top[web], top[leaky]) == (leak, batch_leak), top
        # Nothing of the batch job that does not leak fires.
        assert not query(port, 'ALERTS{job="batch",alertstate="firing"}')
        assert query(port, 'heaplens_python_objects{job="batch"}'), "the batch job is scraped"
        steady = query(port, f'heaplens_type_steady_growth{{job="web",type="{leak}"}}')
        assert "1" in {s["value"][1] for s in steady}, steady
        # Every query of the Grafana dashboard runs, and its growing types table starts, for
        # each leaking instance, with its leak.
        for panel in grafana_dashboard()["panels"]:
            expr = panel["targets"][0]["expr"]
            for name, value in (("$job", ".*"), ("$instance", ".*"), ("$window", WINDOW)):
                expr = expr.replace(name, value)
            result = query(port, expr)
            assert result, (panel["title"], expr)
            if panel["title"].startswith("Growing types"):
                for instance, expected in ((web, leak), (leaky, batch_leak)):
                    rows = [r for r in result if r["metric"]["instance"] == instance]
                    first = max(rows, key=lambda r: float(r["value"][1]))["metric"]
                    assert first["type"] == expected, rows
    finally:
        stop.set()
        (tmp_path / "stop").write_text("")
        processes.close()


def grafana_dashboard():
    r = heaplens("grafana-dashboard")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# Grafana's dashboard schema as its documentation gives it (docs/sources/developers/kinds/core/
# dashboard/schema-reference.md, "Dashboard kind"): per object, the properties it requires and
# the type of each property the heaplens dashboard uses. A property the schema does not know is
# refused too, so a misspelt one ("gridpos") fails here rather than being dropped by Grafana.
STRING, INT, BOOL, OBJECT, ANY = str, int, bool, dict, object
SCHEMA = {
    "Dashboard": ({"schemaVersion"}, {
        "schemaVersion": INT, "uid": STRING, "title": STRING, "description": STRING,
        "tags": [STRING], "version": INT, "editable": BOOL, "graphTooltip": INT,
        "timezone": STRING, "refresh": STRING, "time": "Time", "links": ["DashboardLink"],
        "annotations": "AnnotationContainer", "templating": "Templating", "panels": ["Panel"],
        "id": INT, "fiscalYearStartMonth": INT, "liveNow": BOOL, "weekStart": STRING,
        "timepicker": OBJECT, "gnetId": STRING, "revision": INT,
    }),
    "Time": ({"from", "to"}, {"from": STRING, "to": STRING}),
    "DashboardLink": (
        {"title", "type", "icon", "tooltip", "tags", "asDropdown", "targetBlank",
         "includeVars", "keepTime"},
        {"title": STRING, "type": STRING, "icon": STRING, "tooltip": STRING, "tags": [STRING],
         "asDropdown": BOOL, "targetBlank": BOOL, "includeVars": BOOL, "keepTime": BOOL,
         "url": STRING}),
    "AnnotationContainer": (set(), {"list": ["AnnotationQuery"]}),
    # The query's own fields (expr, titleFormat, textFormat) belong to its data source.
    "AnnotationQuery": ({"datasource", "enable", "iconColor", "name"}, {
        "datasource": "DataSourceRef", "enable": BOOL, "iconColor": STRING, "name": STRING,
        "builtIn": INT, "hide": BOOL, "type": STRING, "expr": STRING, "titleFormat": STRING,
        "textFormat": STRING}),
    "DataSourceRef": (set(), {"type": STRING, "uid": STRING}),
    "Templating": (set(), {"list": ["VariableModel"]}),
    "VariableModel": ({"type", "name"}, {
        "type": STRING, "name": STRING, "label": STRING, "hide": INT, "skipUrlSync": BOOL,
        "description": STRING, "query": ANY, "datasource": "DataSourceRef", "current": OBJECT,
        "multi": BOOL, "options": [OBJECT], "refresh": INT, "sort": INT, "includeAll": BOOL,
        "allValue": STRING, "regex": STRING, "definition": STRING}),
    "Panel": ({"type"}, {
        "type": STRING, "id": INT, "title": STRING, "description": STRING,
        "datasource": "DataSourceRef", "gridPos": "GridPos", "targets": ["Target"],
        "fieldConfig": "FieldConfigSource", "options": OBJECT, "transparent": BOOL,
        "pluginVersion": STRING, "links": [OBJECT], "repeat": STRING, "interval": STRING,
        "maxDataPoints": INT, "transformations": [OBJECT]}),
    "GridPos": ({"h", "w", "x", "y"}, {"h": INT, "w": INT, "x": INT, "y": INT, "static": BOOL}),
    # A target is its data source's query; refId is the one field every query has.
    "Target": ({"refId"}, {"refId": STRING, "datasource": "DataSourceRef", "hide": BOOL,
                           "expr": STRING, "legendFormat": STRING, "range": BOOL,
                           "instant": BOOL, "format": STRING, "interval": STRING}),
    "FieldConfigSource": ({"defaults", "overrides"}, {"defaults": "FieldConfig",
                                                      "overrides": [OBJECT]}),
    "FieldConfig": (set(), {
        "unit": STRING, "links": ["DataLink"], "decimals": INT, "min": INT, "max": INT,
        "displayName": STRING, "description": STRING, "color": OBJECT, "custom": OBJECT,
        "mappings": [OBJECT], "thresholds": OBJECT, "noValue": STRING}),
    "DataLink": ({"title", "url"}, {"title": STRING, "url": STRING, "targetBlank": BOOL}),
}
ENUMS = {
    ("Dashboard", "graphTooltip"): {0, 1, 2},
    ("DashboardLink", "type"): {"link", "dashboards"},
    ("VariableModel", "type"): {"query", "adhoc", "groupby", "constant", "datasource",
                                "interval", "textbox", "custom", "system", "snapshot"},
    ("VariableModel", "hide"): {0, 1, 2},
    ("VariableModel", "refresh"): {0, 1, 2},
}


def schema_errors(value, kind, where="dashboard"):
    if isinstance(kind, list):
        if not isinstance(value, list):
            return [f"{where}: not an array"]
        return [e for i, v in enumerate(value) for e in schema_errors(v, kind[0], f"{where}[{i}]")]
    if isinstance(kind, type):
        ok = kind is object or (isinstance(value, kind)
                                and not (kind is int and isinstance(value, bool)))
        return [] if ok else [f"{where}: {value!r} is not {kind.__name__}"]
    required, properties = SCHEMA[kind]
    if not isinstance(value, dict):
        return [f"{where}: not an object ({kind})"]
    errors = [f"{where}: {kind} requires {name}" for name in sorted(required - set(value))]
    for name, v in value.items():
        if name not in properties:
            errors.append(f"{where}: {kind} has no property {name}")
            continue
        errors += schema_errors(v, properties[name], f"{where}.{name}")
        allowed = ENUMS.get((kind, name))
        if allowed is not None and v not in allowed:
            errors.append(f"{where}.{name}: {v!r} is not one of {sorted(allowed, key=str)}")
    return errors


def test_the_grafana_dashboard_follows_grafanas_schema():
    dashboard = grafana_dashboard()
    assert schema_errors(dashboard, "Dashboard") == []
    assert 0 <= dashboard["schemaVersion"] < 2**16
    assert 8 <= len(dashboard["uid"]) <= 40
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["type"] in ("stat", "timeseries", "table"), panel["type"]
    # The fleet's memory, the growing types by instance, links to each instance's page.
    titles = " / ".join(p["title"] for p in dashboard["panels"])
    assert "RSS by process" in titles and "Growing types, by instance" in titles, titles
    links = [link["url"] for p in dashboard["panels"]
             for link in p["fieldConfig"]["defaults"].get("links", [])]
    assert "http://${__field.labels.instance}${path}/" in links
    assert any(url.endswith("/#/type/${__data.fields.type:percentencode}") for url in links)
    # The checker refuses what the schema refuses.
    assert schema_errors({"panels": [{"gridpos": {}}]}, "Dashboard") == [
        "dashboard: Dashboard requires schemaVersion",
        "dashboard.panels[0]: Panel requires type",
        "dashboard.panels[0]: Panel has no property gridpos",
    ]
