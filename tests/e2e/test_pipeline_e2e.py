"""One request's trace id through the whole pipeline, and the same app on a swapped backend.

Real processes only: the example app under ``opentelemetry-instrument`` (otelkit distro) → the
collector built from the repo's manifest on the default rendered config (loopback, test ports) →
Prometheus (scraping the collector's exporter), Loki (OTLP at ``/otlp``) and Jaeger v2 (OTLP), all
started by :class:`otelkit.local.stack.LocalStack` and shared by this module's tests. Each test asserts
on what a backend's own query API returns. The last test renders a second config (every signal to
an OTLP backend) and runs the same app, unchanged, against it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import app_env, start_app, start_otlp_collector, wait_until

from otelkit.local import procs as _procs
from otelkit.local.stack import LocalStack, StackPorts
from otelkit.testing import OTLPReceiver

pytestmark = pytest.mark.e2e

ROUTE = "/items/{item_id}"
FAST_EXPORT = {
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
}
WAIT = 90.0


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    otelcol_bin: Path,
    jaeger_bin: Path,
    loki_bin: Path,
    prometheus_bin: Path,
) -> Iterator[LocalStack]:
    binaries = {"collector": otelcol_bin, "jaeger": jaeger_bin, "loki": loki_bin, "prometheus": prometheus_bin}
    with LocalStack(
        tmp_path_factory.mktemp("stack"),
        ports=StackPorts.free(),
        app=True,
        worker=False,
        app_env=FAST_EXPORT,
        scrape_interval="1s",
        binaries=binaries,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def trace_id(stack: LocalStack) -> str:
    """The trace id of one GET /items/2, sent with a W3C traceparent the test chose."""
    tid = secrets.token_hex(16)
    headers = {"traceparent": f"00-{tid}-{secrets.token_hex(8)}-01"}
    with httpx.Client(trust_env=False, timeout=10) as client:
        response = client.get(f"{stack.app_url}/items/2", headers=headers)
    assert response.status_code == 200
    return tid


def _poll(fetch: Any, what: str) -> Any:
    found: list[Any] = []
    wait_until(lambda: found.append(fetch()) or found[-1], timeout=WAIT, what=what)
    return found[-1]


def test_pipeline_server_span_reaches_jaeger_with_its_route(stack: LocalStack, trace_id: str) -> None:
    trace = _poll(lambda: stack.jaeger_trace(trace_id), f"trace {trace_id} in Jaeger")
    (span,) = [s for s in trace["spans"] if {"key": "span.kind", "type": "string", "value": "server"} in s["tags"]]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert span["traceID"] == trace_id
    assert span["operationName"] == f"GET {ROUTE}"
    assert (tags["http.route"], tags["http.response.status_code"], tags["url.path"]) == (ROUTE, 200, "/items/2")
    assert trace["processes"][span["processID"]]["serviceName"] == "example-api"


def test_pipeline_log_record_reaches_loki_with_trace_id_and_extra_fields(stack: LocalStack, trace_id: str) -> None:
    logql = f'{{service_name="example-api"}} | trace_id="{trace_id}" | scope_name="example.items"'
    streams = _poll(lambda: stack.loki_query(logql), f"the 'fetched item' record of {trace_id} in Loki")
    ((labels, values),) = [(s["stream"], s["values"]) for s in streams]
    assert [line for _, line in values] == ["fetched item"]
    # extra= fields and the trace context arrive as structured metadata.
    assert (labels["item_id"], labels["item_name"]) == ("2", "mouse")
    assert (labels["trace_id"], labels["severity_text"]) == (trace_id, "INFO")


def test_pipeline_request_duration_reaches_prometheus_with_its_route(stack: LocalStack, trace_id: str) -> None:
    query = f'http_server_request_duration_seconds_count{{service_name="example-api", http_route="{ROUTE}"}}'
    (series,) = _poll(lambda: stack.promql(query), f"{query} in Prometheus")
    labels = series["metric"]
    assert (labels["http_route"], labels["http_request_method"], labels["http_response_status_code"]) == (
        ROUTE,
        "GET",
        "200",
    )
    assert labels["job"] == "example-api"  # honor_labels keeps the job derived from service.name
    assert float(series["value"][1]) >= 1
    # The raw path never becomes a label.
    assert stack.promql('http_server_request_duration_seconds_count{url_path!=""}') == []


def test_pipeline_backend_swap_delivers_every_signal_to_the_new_backend(
    otelcol_bin: Path, procs: _procs.ProcessGroup
) -> None:
    with OTLPReceiver() as rx:
        endpoint = start_otlp_collector(procs, otelcol_bin, rx.endpoint)

        # The same app and environment as against the default stack; only the endpoint differs.
        _, base = start_app(procs, app_env(endpoint, OTEL_SERVICE_NAME="example-api", **FAST_EXPORT))
        with httpx.Client(trust_env=False, timeout=10) as client:
            assert client.get(f"{base}/items/3").status_code == 200

        rx.wait_for(
            lambda r: (
                r.spans_named(f"GET {ROUTE}")
                and r.logs_with(body_contains="fetched item")
                and [p for p in r.metric_points("http.server.request.duration") if p.attributes.get("http.route")]
            ),
            timeout=WAIT,
        )
        (span,) = rx.spans_named(f"GET {ROUTE}")
        assert span.attributes["http.route"] == ROUTE
        assert span.resource["service.name"] == "example-api"
        (log,) = rx.logs_with(body_contains="fetched item")
        assert (log.trace_id, log.attributes["item_id"], log.attributes["item_name"]) == (span.trace_id, 3, "monitor")
        points = [
            p for p in rx.metric_points("http.server.request.duration") if p.attributes.get("http.route") == ROUTE
        ]
        assert points and points[-1].count == 1
