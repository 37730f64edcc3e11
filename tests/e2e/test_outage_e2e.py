"""Outage, nothing lost: a backend stops for 30 s while traffic continues, and every signal arrives.

One :class:`otelkit.local.stack.LocalStack` for the module: the collector on the production profile
(``sending_queue`` + ``retry_on_failure``) with ``persistent_queue`` under the stack's work dir, and
the example app under ``opentelemetry-instrument``. Each test stops one backend (Jaeger, then Loki)
with :meth:`~otelkit.local.stack.LocalStack.stop_backend`, sends one request every 0.75 s for 30 s — each
with its own ``traceparent``, so the test knows exactly which trace ids were sent during the outage —
waits until the collector's log shows that exporting to that backend failed and is being retried,
starts the backend again on the same ports and data, and then polls the backend's query API until
every trace id sent during the outage is found. The sets are compared, not sampled.

Jaeger keeps traces in memory, so after its restart it holds only what the collector delivered from
its queue. Loki keeps its data dir across the restart; the query window starts at the outage.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import wait_until

from otelkit.local.stack import LocalStack, StackPorts

pytestmark = pytest.mark.e2e

ROUTE = "/items/{item_id}"
FAST_EXPORT = {
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "200",
}
OUTAGE_REQUESTS = 40
PACING = 0.75  # seconds between requests: 40 of them keep the backend down for the spec's 30 s
# The retry backoff grows to 30 s, so the last retry of a batch may come up to 30 s after the restart.
DELIVERY_WAIT = 120.0
RETRY_FAILED = "Exporting failed. Will retry the request after interval."


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    otelcol_bin: Path,
    jaeger_bin: Path,
    loki_bin: Path,
    prometheus_bin: Path,
) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("outage-stack")
    binaries = {"collector": otelcol_bin, "jaeger": jaeger_bin, "loki": loki_bin, "prometheus": prometheus_bin}
    with LocalStack(
        workdir,
        ports=StackPorts.free(),
        app=True,
        worker=False,
        app_env=FAST_EXPORT,
        scrape_interval="1s",
        collector_options={"persistent_queue": str(workdir / "collector-queue")},
        binaries=binaries,
    ) as running:
        yield running


@contextlib.contextmanager
def _down(stack: LocalStack, backend: str) -> Iterator[None]:
    """``backend`` is stopped inside the block and running again (and ready) after it, even on failure."""
    stack.stop_backend(backend)
    try:
        yield
    finally:
        if backend not in stack.pids():
            stack.start_backend(backend)


def _retry_failures(stack: LocalStack, exporter: str) -> int:
    """How many times the collector logged a failed export of ``exporter`` that it will retry."""
    return sum(
        1
        for line in stack.process("collector").log_text().splitlines()
        if RETRY_FAILED in line and f'"otelcol.component.id": "{exporter}"' in line
    )


def _queue_size(stack: LocalStack, exporter: str) -> float:
    """``otelcol_exporter_queue_size`` of ``exporter`` from the collector's own /metrics."""
    response = httpx.get(f"http://127.0.0.1:{stack.ports.collector_telemetry}/metrics", trust_env=False, timeout=10)
    pattern = rf'^otelcol_exporter_queue_size\{{[^}}]*exporter="{re.escape(exporter)}"[^}}]*\}} (\S+)$'
    match = re.search(pattern, response.text, re.M)
    return float(match.group(1)) if match else 0.0


def _send_paced(stack: LocalStack) -> list[str]:
    """GET /items/2 ``OUTAGE_REQUESTS`` times, one every ``PACING`` s, each with a fresh trace id; the ids."""
    sent: list[str] = []
    start = time.monotonic()
    with httpx.Client(trust_env=False, timeout=10) as client:
        for i in range(OUTAGE_REQUESTS):
            # Load, not an assertion: the requests are spread so that the outage lasts 30 s.
            time.sleep(max(0.0, start + i * PACING - time.monotonic()))
            trace_id = secrets.token_hex(16)
            headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
            response = client.get(f"{stack.app_url}/items/2", headers=headers)
            assert response.status_code == 200, response.text
            sent.append(trace_id)
    return sent


def _outage(stack: LocalStack, backend: str, exporter: str) -> list[str]:
    """Stop ``backend``, send the paced requests, see the collector fail and queue, start it again."""
    failures_before = _retry_failures(stack, exporter)
    with _down(stack, backend):
        sent = _send_paced(stack)
        wait_until(
            lambda: _retry_failures(stack, exporter) > failures_before,
            timeout=60,
            what=f"the collector to log a failed, retried export to {backend} ({exporter})",
        )
        wait_until(
            lambda: _queue_size(stack, exporter) > 0,
            timeout=60,
            what=f"otelcol_exporter_queue_size of {exporter} > 0 while {backend} is down",
        )
    return sent


def _found_traces(stack: LocalStack, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def all_found() -> bool:
        for trace_id in trace_ids:
            if trace_id not in found and (trace := stack.jaeger_trace(trace_id)) is not None:
                found[trace_id] = trace
        return len(found) == len(trace_ids)

    with contextlib.suppress(AssertionError):
        wait_until(all_found, timeout=DELIVERY_WAIT, what="every trace sent during the outage in Jaeger")
    return found


def _logged_trace_ids(stack: LocalStack, start: float) -> list[str]:
    streams = stack.loki_query('{service_name="example-api"} |= "fetched item"', start=start)
    return sorted(s["stream"].get("trace_id", "") for s in streams for _ in s["values"])


def test_outage_jaeger_down_30s_loses_no_span(stack: LocalStack) -> None:
    sent = _outage(stack, "jaeger", "otlp_grpc/jaeger")

    found = _found_traces(stack, sent)
    missing = sorted(set(sent) - set(found))
    assert (len(found), missing) == (OUTAGE_REQUESTS, []), f"collector log: {stack.workdir / 'collector.log'}"
    for trace_id, trace in found.items():
        (span,) = [s for s in trace["spans"] if {"key": "span.kind", "type": "string", "value": "server"} in s["tags"]]
        tags = {t["key"]: t["value"] for t in span["tags"]}
        assert (span["traceID"], span["operationName"]) == (trace_id, f"GET {ROUTE}")
        assert (tags["http.route"], tags["url.path"]) == (ROUTE, "/items/2")


def test_outage_loki_down_30s_loses_no_log_record(stack: LocalStack) -> None:
    window_start = time.time() - 1
    sent = _outage(stack, "loki", "otlp_http/loki")

    seen: list[list[str]] = []
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: seen.append(_logged_trace_ids(stack, window_start)) or set(seen[-1]) >= set(sent),
            timeout=DELIVERY_WAIT,
            what="every 'fetched item' record sent during the outage in Loki",
        )
    missing = sorted(set(sent) - set(seen[-1]))
    # Exactly once each: nothing lost, nothing duplicated, nothing from outside the outage.
    assert (len(seen[-1]), missing, seen[-1]) == (OUTAGE_REQUESTS, [], sorted(sent)), (
        f"collector log: {stack.workdir / 'collector.log'}"
    )
