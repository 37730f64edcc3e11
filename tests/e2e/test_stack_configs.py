"""The docker-compose stack without Docker: every file it mounts, checked by its real tool.

There is no Docker engine on the machines these tests run on, so the compose file is checked against
the compose specification's JSON schema (``tests/data/compose-spec.json``), the Prometheus config and
alert rules by ``promtool``, and the dashboards by running each of their queries. The last test runs
the stack's metrics path for real — the example app and worker under the launcher, the collector with
``collector/otelcol.yaml``, Prometheus with ``stack/prometheus`` — and asserts that every dashboard
query and every alert rule finds the series otelkit emits.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from launch import BIN, REPO, app_env, start_app, wait_until
from stackrun import start_stack_collector, start_stack_prometheus

from otelkit.local import gobuild as _gobuild
from otelkit.local import procs as _procs
from otelkit.ops.collector import DEFAULT_VERSION

COMPOSE = REPO / "docker-compose.yaml"
STACK = REPO / "stack"
DASHBOARDS = sorted((STACK / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = STACK / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
PROMETHEUS_CONFIG = STACK / "prometheus" / "prometheus.yaml"
ALERTS = STACK / "prometheus" / "alerts.yaml"
ALERTS_TEST = REPO / "tests" / "data" / "alerts_test.yaml"
ALERTMANAGER_CONFIG = STACK / "alertmanager" / "alertmanager.yaml"
OBSERVABILITY = {"collector", "prometheus", "alertmanager", "loki", "jaeger", "grafana"}

# Grafana variables and what stands in for them when a query runs outside Grafana.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "5m", "$service": ".+", "$task": ".+"}
# Queries that may rightly find nothing on a healthy stack: (dashboard file, panel title, refId).
EMPTY_WHEN_HEALTHY = {
    ("http-red.json", "Firing alerts", "A"): "no alert fires on a healthy stack",
    ("system.json", "Collector: sent vs failed items/s by exporter", "B"): "no export has failed yet",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def promtool(prometheus_bin: Path) -> Path:
    # Debian installs promtool beside prometheus.
    found = prometheus_bin.parent / "promtool"
    if not found.exists():
        pytest.fail(f"promtool not found beside {prometheus_bin}; `apt-get install -y prometheus`", pytrace=False)
    return found


def run(*argv: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


# --- the compose file ----------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    doc = compose()
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == []
    # The schema is strict enough to catch a typo.
    doc["services"]["app"]["healthcheck"]["intervall"] = "5s"
    assert [e.message for e in validator.iter_errors(doc)] == ["'intervall' does not match any of the regexes: '^x-'"]


def test_compose_every_mounted_file_exists() -> None:
    mounted = []
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                mounted.append((name, source))
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
        if "build" in service:
            assert (REPO / service["build"] / "Dockerfile").is_file()
    assert sorted(mounted) == [
        ("alertmanager", "./stack/alertmanager"),
        ("collector", "./collector/otelcol.yaml"),
        ("grafana", "./stack/grafana/dashboards"),
        ("grafana", "./stack/grafana/provisioning"),
        ("jaeger", "./stack/jaeger/jaeger.yaml"),
        ("loki", "./stack/loki/loki.yaml"),
        ("prometheus", "./stack/prometheus"),
    ]


def test_compose_images_are_pinned_to_the_versions_the_tests_run() -> None:
    images = {name: s["image"] for name, s in compose()["services"].items()}
    assert images == {
        "app": "otelkit-example:dev",
        "worker": "otelkit-example:dev",
        "redis": "redis:7.4.7-alpine",
        "collector": f"otel/opentelemetry-collector-contrib:{DEFAULT_VERSION}",
        "prometheus": "prom/prometheus:v3.14.0",
        "alertmanager": "prom/alertmanager:v0.33.1",
        "loki": f"grafana/loki:{_gobuild.BACKENDS['loki'].version.removeprefix('v')}",
        # Jaeger's v1.x module tags carry the v2 binary: v1.76.0 is release 2.13.0.
        "jaeger": "jaegertracing/jaeger:2.13.0",
        "grafana": "grafana/grafana:13.2.3",
    }
    assert _gobuild.BACKENDS["jaeger"].version == "v1.76.0"


def test_compose_app_and_worker_never_wait_for_observability_services() -> None:
    services = compose()["services"]
    assert "depends_on" not in services["app"]
    assert set(services["worker"]["depends_on"]) == {"redis"}
    for name in ("app", "worker"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert "/health/live" in " ".join(services["app"]["healthcheck"]["test"])
    # Every service reports health except the collector, whose image has no shell or HTTP client.
    assert {name for name, s in services.items() if "healthcheck" not in s} == {"collector"}
    assert set(services) == {"app", "worker", "redis"} | OBSERVABILITY


def test_compose_collector_config_points_at_the_compose_services() -> None:
    config = yaml.safe_load((REPO / "collector" / "otelcol.yaml").read_text(encoding="utf-8"))
    exporters = config["exporters"]
    assert exporters["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert exporters["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    assert exporters["prometheus"]["endpoint"] == "0.0.0.0:8889"
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader["port"] == 8888
    targets = {
        c["job_name"]: c["static_configs"][0]["targets"]
        for c in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    assert targets["otel-collector-exporter"] == ["collector:8889"]
    assert targets["otel-collector"] == ["collector:8888"]


def test_compose_prometheus_sends_alerts_to_the_compose_alertmanager() -> None:
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    (alertmanagers,) = prometheus["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    scraped = {c["job_name"]: c["static_configs"][0]["targets"] for c in prometheus["scrape_configs"]}
    assert scraped["alertmanager"] == ["alertmanager:9093"]
    service = compose()["services"]["alertmanager"]
    assert service["ports"] == ["127.0.0.1:9093:9093"]
    assert "./stack/alertmanager:/etc/alertmanager:ro" in service["volumes"]
    # The mounted directory holds the rendered config; the cluster listener stays closed.
    assert "--config.file=/etc/alertmanager/alertmanager.yaml" in service["command"]
    assert "--cluster.listen-address=" in service["command"]
    assert (STACK / "alertmanager" / "alertmanager.yaml").is_file()
    # Notifications link back to Prometheus and Alertmanager at addresses people can open.
    assert "--web.external-url=http://localhost:9093" in service["command"]
    assert "--web.external-url=http://localhost:9090" in compose()["services"]["prometheus"]["command"]


def _with_defaults(path: Path) -> Any:
    """The config as compose runs it: every ``${VAR:-default}`` / ``${env:VAR:-default}`` at its default."""
    text = re.sub(r"\$\{(?:env:)?[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", path.read_text(encoding="utf-8"))
    assert "${" not in text, f"{path} has a variable without a default"
    return yaml.safe_load(text)


def test_compose_loki_and_jaeger_configs_accept_otlp() -> None:
    loki = _with_defaults(STACK / "loki" / "loki.yaml")
    assert loki["server"]["http_listen_port"] == 3100
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert [(c["store"], c["schema"]) for c in loki["schema_config"]["configs"]] == [("tsdb", "v13")]
    jaeger = _with_defaults(STACK / "jaeger" / "jaeger.yaml")
    protocols = jaeger["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")
    assert jaeger["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"


# --- Grafana -------------------------------------------------------------------------------------


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def prometheus_queries() -> Iterator[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, expr) of every Prometheus query, variables included."""
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for variable in dashboard["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"], re.S)
            assert match, f"{path.name}: variable {variable['name']} is not label_values(selector, label)"
            yield path.name, f"variable {variable['name']}", "var", match.group(1)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if (target.get("datasource") or panel["datasource"])["uid"] == "prometheus":
                    yield path.name, panel["title"], target["refId"], target["expr"]


def substitute(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    unknown = re.findall(r"\$\{?\w+", expr)
    assert not unknown, f"unknown Grafana variable(s) {unknown} in {expr!r}"
    return expr


def test_dashboards_use_only_provisioned_datasources() -> None:
    provisioned = {d["uid"]: d["type"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert provisioned == {"prometheus": "prometheus", "loki": "loki", "jaeger": "jaeger"}
    uids = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        uids.append(dashboard["uid"])
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            ds = panel["datasource"]
            assert provisioned.get(ds["uid"]) == ds["type"], f"{path.name}: {panel['title']}: {ds}"
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
    assert sorted(uids) == ["otelkit-celery", "otelkit-http", "otelkit-system"]
    assert [p.name for p in DASHBOARDS] == ["celery.json", "http-red.json", "system.json"]


def test_grafana_datasources_link_metrics_logs_and_traces() -> None:
    sources = {d["uid"]: d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": "jaeger", "urlDisplayLabel": "Trace in Jaeger"}
    ]
    (derived,) = sources["loki"]["jsonData"]["derivedFields"]
    assert (derived["matcherType"], derived["matcherRegex"], derived["datasourceUid"]) == (
        "label",
        "trace_id",
        "jaeger",
    )
    to_logs = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki"
    assert to_logs["query"] == '{$${__tags}} | trace_id="$${__span.traceId}"'
    # Compose mounts the provider's path.
    provider = yaml.safe_load((STACK / "grafana/provisioning/dashboards/dashboards.yaml").read_text())["providers"][0]
    assert (
        "./stack/grafana/dashboards:" + provider["options"]["path"] + ":ro"
        in compose()["services"]["grafana"]["volumes"]
    )


@pytest.mark.e2e
def test_dashboard_queries_parse_with_promtool(prometheus_bin: Path, tmp_path: Path) -> None:
    rules = []
    for file, title, ref, expr in prometheus_queries():
        record = re.sub(r"\W", "_", f"dashboard_{file}_{title}_{ref}").lower()
        rules.append({"record": record, "expr": substitute(expr)})
    assert len(rules) > 25
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    result = run(promtool(prometheus_bin), "check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    # A typo in a query fails the check.
    rules[0]["expr"] = "sum by (le (rate(x[5m]))"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    assert run(promtool(prometheus_bin), "check", "rules", path).returncode != 0


# --- Prometheus ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_prometheus_config_passes_promtool_check_config(prometheus_bin: Path) -> None:
    result = run(promtool(prometheus_bin), "check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


@pytest.mark.e2e
def test_alert_rules_pass_promtool_check_rules(prometheus_bin: Path) -> None:
    result = run(promtool(prometheus_bin), "check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 25 rules found" in result.stdout


@pytest.mark.e2e
def test_alertmanager_config_passes_amtool_check_config(amtool_bin: Path) -> None:
    result = run(amtool_bin, "check-config", ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 2 inhibit rules\n - 3 receivers\n" in result.stdout
    # Routing by severity, as amtool walks the tree: critical pages, the rest opens a ticket.
    for labels, receiver in [
        (["severity=critical", "alertname=HTTPErrorRateHigh"], "pager"),
        (["severity=warning", "alertname=HTTPLatencyHigh"], "tickets"),
        (["severity=info", "alertname=ProcessMemoryHigh"], "tickets"),
        (["alertname=MyOwnAlert"], "unrouted"),
    ]:
        routed = run(amtool_bin, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
        assert (routed.returncode, routed.stdout.strip()) == (0, receiver), routed.stderr


@pytest.mark.e2e
def test_alert_rules_pass_their_promtool_unit_tests(prometheus_bin: Path) -> None:
    result = run(promtool(prometheus_bin), "test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the metrics path, for real ------------------------------------------------------------------


def _get(url: str, **params: str) -> Any:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.get(url, params=params).json()


def _traffic(base: str) -> None:
    """One found item, one 404, one 500, one 401, one order handed to the worker, one idempotency conflict."""
    # uvicorn closes the connection after an unhandled exception: no keep-alive.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base, trust_env=False, timeout=10, limits=limits) as client:
        statuses = [
            client.get("/items/1").status_code,
            client.get("/items/42").status_code,
            client.get("/boom").status_code,
            client.get("/account").status_code,
            client.post("/orders/1", headers={"Idempotency-Key": "order-1"}).status_code,
            client.post("/orders/2", headers={"Idempotency-Key": "order-1"}).status_code,
        ]
    assert statuses == [200, 404, 500, 401, 202, 409]


@pytest.mark.e2e
def test_stack_without_docker_feeds_every_dashboard_query_and_alert_rule(
    otelcol_bin: Path, prometheus_bin: Path, alertmanager_bin: Path, redis_server: str, procs: _procs.ProcessGroup
) -> None:
    collector = start_stack_collector(procs, otelcol_bin)
    alertmanager_port = _procs.free_port()
    alertmanager = f"http://127.0.0.1:{alertmanager_port}"
    procs.start(
        "alertmanager",
        [
            str(alertmanager_bin),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={procs.path('alertmanager-data')}",
            f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            "--cluster.listen-address=",
        ],
    ).wait_http_ready(f"{alertmanager}/-/ready", timeout=60)
    prom = start_stack_prometheus(procs, prometheus_bin, collector, rules=ALERTS, alertmanager=alertmanager)

    env = {
        "OTELKIT_SYSTEM_METRICS": "true",
        "OTELKIT_EXAMPLE_BROKER": redis_server,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTELKIT_CELERY_PING_INTERVAL": "1",
    }
    endpoint = collector.otlp_http
    worker_env = app_env(endpoint, OTEL_SERVICE_NAME="example-worker", **env)
    worker_argv = [str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", "example.tasks", "worker"]
    procs.start("worker", [*worker_argv, "--pool", "solo", "-l", "INFO"], env=worker_env, cwd=REPO)
    _, base = start_app(procs, app_env(endpoint, OTEL_SERVICE_NAME="example-api", **env))

    # Counters must exist before they grow for rate() to see the growth: traffic, wait, more traffic.
    _traffic(base)
    wait_until(
        lambda: (
            _procs.prometheus_query(prom, 'celery_task_completed_total{service_name="example-worker"}')
            and _procs.prometheus_query(prom, 'http_server_request_duration_seconds_count{service_name="example-api"}')
        ),
        timeout=90,
        what="the first task and requests in Prometheus",
    )
    for _ in range(3):
        _traffic(base)
    time.sleep(4)  # a metric export (1 s), a scrape (1 s), a rule evaluation (1 s)

    empty = []
    for file, title, ref, expr in prometheus_queries():
        if (file, title, ref) in EMPTY_WHEN_HEALTHY:
            continue
        if not _procs.prometheus_query(prom, substitute(expr)):
            empty.append(f"{file}: {title} [{ref}]: {expr}")
    assert empty == [], "dashboard queries that found no data:\n" + "\n".join(empty)

    # Every rule evaluated without error; the 5xx share of /boom (1 in 4 requests) is caught.
    groups = _get(f"{prom}/api/v1/rules")["data"]["groups"]
    health = {rule["name"]: (rule["health"], rule.get("lastError", "")) for g in groups for rule in g["rules"]}
    assert len(health) == 25
    assert {name: h for name, h in health.items() if h != ("ok", "")} == {}
    # Prometheus sends its alerts to the stack's Alertmanager and scrapes it.
    active = _get(f"{prom}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"{alertmanager}/api/v2/alerts"]
    assert [r["value"][1] for r in _procs.prometheus_query(prom, 'up{job="alertmanager"}')] == ["1"]
    pending = _procs.prometheus_query(prom, 'ALERTS{alertname="HTTPErrorRateHigh"}')
    assert [(a["metric"]["service_name"], a["metric"]["alertstate"]) for a in pending] == [("example-api", "pending")]
    recorded = _procs.prometheus_query(prom, "service_name:http_server_request_errors:ratio_rate5m")
    assert {r["metric"]["service_name"] for r in recorded} == {"example-api"}
    # Alert expressions over series the example does emit find data, below their thresholds.
    for expr in [
        "histogram_quantile(0.95, sum by (service_name, http_route, le) "
        "(rate(http_server_request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.95, sum by (service_name, messaging_destination_name, le) "
        "(rate(celery_task_wait_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.95, sum by (service_name, celery_task_name, le) "
        "(rate(celery_task_duration_seconds_bucket[5m])))",
        "max by (job, instance, exporter) (otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)",
        "process_memory_usage_bytes",
        # The example's own counter, and the broker's view of the Celery queue and workers.
        'example_idempotency_conflicts_total{service_name="example-api", http_route="/orders/{order_id}"}',
        'celery_queue_length{service_name="example-api", messaging_destination_name="celery"}',
        'celery_workers_online{service_name="example-api"} == 1',
    ]:
        assert _procs.prometheus_query(prom, expr), expr
