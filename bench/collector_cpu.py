"""CPU a collector spends per span, by role: how many spans/s one gateway (or agent) core handles.

The machine may be shared, so wall-clock throughput says little. This measures CPU time instead:
the collector's ``utime + stime`` from ``/proc/<pid>/stat`` before and after a fixed number of
spans, divided by the spans. A small load generator (this process) posts OTLP/HTTP protobuf
batches shaped like the example app's traffic — a request trace of one server span, or an order
trace of a server span, a publish span and a task span from two services — each with its own trace
id, in several threads.

Layouts, every collector rendered by otelkit on loopback ports:

- ``gateway``: ``--role gateway --span-metrics --tail-sampling 10`` (traces to the ``debug``
  exporter at basic verbosity, span metrics to the Prometheus exporter). The load goes straight to
  it: this is the gateway's own cost.
- ``agent``: ``--role agent`` with two gateways behind it (``--traces debug`` there); the load goes to
  the agent; the agent's CPU is reported (and each gateway's).

Run from the repository root after ``otelkit build-collector``::

    python -m bench.collector_cpu --spans 300000

It prints µs of CPU per span and the spans/s that makes per core.
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otelkit.local import gobuild as _gobuild
from otelkit.local import procs as _procs
from otelkit.ops.collector import CollectorSpec, render_collector
from otelkit.ops.collector.spec import Role

_TICKS = os.sysconf("SC_CLK_TCK")


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource(service: str) -> Resource:
    return Resource(
        attributes=[
            _kv("service.name", service),
            _kv("service.instance.id", secrets.token_hex(8)),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.language", "python"),
            _kv("telemetry.sdk.version", "1.45.2"),
            _kv("deployment.environment.name", "bench"),
        ]
    )


def _span(name: str, kind: int, trace_id: bytes, parent: bytes, start: int, ms: int, attrs: list[KeyValue]) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=secrets.token_bytes(8),
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + ms * 1_000_000,
        attributes=attrs,
        status=Status(code=0),
    )


def _http_attrs(route: str, method: str, status: int) -> list[KeyValue]:
    return [
        _kv("http.request.method", method),
        _kv("http.route", route),
        _kv("url.path", route.replace("{item_id}", "1").replace("{order_id}", "2")),
        _kv("url.scheme", "http"),
        _kv("http.response.status_code", status),
        _kv("network.protocol.version", "1.1"),
        _kv("server.address", "api.example"),
        _kv("client.address", "10.0.0.7"),
        _kv("user_agent.original", "bench/1.0"),
    ]


def batch(traces: int) -> bytes:
    """One export request: ``traces`` traces, one in four an order (3 spans over 2 services)."""
    api, worker = ResourceSpans(resource=_resource("example")), ResourceSpans(resource=_resource("example-worker"))
    api_scope, worker_scope = ScopeSpans(), ScopeSpans()
    now = time.time_ns()
    for i in range(traces):
        trace_id = secrets.token_bytes(16)
        if i % 4:
            api_scope.spans.append(
                _span("GET /items/{item_id}", 2, trace_id, b"", now, 3, _http_attrs("/items/{item_id}", "GET", 200))
            )
            continue
        server = _span(
            "POST /orders/{order_id}", 2, trace_id, b"", now, 5, _http_attrs("/orders/{order_id}", "POST", 202)
        )
        msg = [_kv("messaging.system", "celery"), _kv("celery.task.name", "example.tasks.process_order")]
        publish = _span("apply_async/example.tasks.process_order", 4, trace_id, server.span_id, now, 2, msg)
        run = _span("run/example.tasks.process_order", 5, trace_id, publish.span_id, now + 50_000_000, 52, msg)
        api_scope.spans.extend([server, publish])
        worker_scope.spans.append(run)
    api.scope_spans.append(api_scope)
    worker.scope_spans.append(worker_scope)
    return ExportTraceServiceRequest(resource_spans=[api, worker]).SerializeToString()


def spans_in(traces: int) -> int:
    orders = (traces + 3) // 4
    return orders * 3 + (traces - orders)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _post(port: int, bodies: Iterator[bytes], lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        with lock:
            body = next(bodies, None)
        if body is None:
            break
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"collector answered {resp.status}")
    conn.close()


def load(port: int, total_spans: int, traces_per_batch: int, threads: int) -> int:
    per_batch = spans_in(traces_per_batch)
    n = max(1, total_spans // per_batch)
    bodies = iter([batch(traces_per_batch) for _ in range(n)])
    lock = threading.Lock()
    workers = [threading.Thread(target=_post, args=(port, bodies, lock)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return n * per_batch


def _ports() -> dict[str, int]:
    return {k: _procs.free_port() for k in ("grpc", "http", "telemetry", "health", "prometheus")}


def _spec(role: Role, p: dict[str, int], **options: object) -> CollectorSpec:
    return CollectorSpec(
        role=role,
        bind="127.0.0.1",
        otlp_grpc_port=p["grpc"],
        otlp_http_port=p["http"],
        telemetry_port=p["telemetry"],
        health_port=p["health"],
        prometheus_endpoint=None if role is Role.AGENT else f"127.0.0.1:{p['prometheus']}",
        **options,  # type: ignore[arg-type]
    )


def _start(group: _procs.ProcessGroup, otelcol: Path, name: str, spec: CollectorSpec) -> _procs.ManagedProcess:
    config = group.path(f"{name}.yaml")
    config.write_text(render_collector(spec))
    proc = group.start(name, [otelcol, "--config", config])
    proc.wait_http_ready(f"http://127.0.0.1:{spec.health_port}/", timeout=60)
    return proc


def _settle(procs: list[_procs.ManagedProcess], quiet: float = 1.0) -> None:
    """Wait until the collectors stop burning CPU (queues drained, decisions made)."""
    while True:
        before = [cpu_seconds(p.pid) for p in procs]
        time.sleep(quiet)
        if all(cpu_seconds(p.pid) - b < 0.02 * quiet for p, b in zip(procs, before, strict=True)):
            return


def measure(layout: str, otelcol: Path, total: int, traces_per_batch: int, threads: int) -> None:
    gateway_options = {"traces": ("debug",), "logs": ("none",), "span_metrics": True, "tail_sampling": 10.0}
    gateway_options["decision_wait"] = 2.0
    with _procs.ProcessGroup() as group:
        gateways: list[_procs.ManagedProcess] = []
        if layout == "gateway":
            gw = _ports()
            gateways.append(_start(group, otelcol, "gateway", _spec(Role.GATEWAY, gw, **gateway_options)))
            target, measured = gw["http"], gateways[0]
        else:
            hosts = []
            for i in range(2):
                gw = _ports()
                gateways.append(_start(group, otelcol, f"gateway{i}", _spec(Role.GATEWAY, gw, **gateway_options)))
                hosts.append(f"127.0.0.1:{gw['grpc']}")
            ag = _ports()
            agent = _spec(Role.AGENT, ag, gateway=tuple(hosts), metrics=("none",), logs=("none",))
            measured = _start(group, otelcol, "agent", agent)
            target = ag["http"]
        everyone = [measured, *([] if layout == "gateway" else gateways)]
        load(target, 20_000, traces_per_batch, threads)  # warm-up: connections, caches, Go heap
        time.sleep(3)
        _settle(everyone)
        before = {p.name: cpu_seconds(p.pid) for p in everyone}
        started = time.monotonic()
        sent = load(target, total, traces_per_batch, threads)
        _settle(everyone)
        wall = time.monotonic() - started
        for p in everyone:
            used = cpu_seconds(p.pid) - before[p.name]
            us = used / sent * 1e6
            print(
                f"{layout:8} {p.name:9} spans={sent:>8} cpu={used:6.2f}s  {us:5.2f} µs/span  "
                f"≈ {1e6 / us:>9,.0f} spans/s per core  (wall {wall:.1f}s, includes settling)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=300_000)
    parser.add_argument("--traces-per-batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layout", choices=["gateway", "agent", "both"], default="both")
    args = parser.parse_args()
    otelcol = _gobuild.ensure_collector()
    for layout in ("gateway", "agent") if args.layout == "both" else (args.layout,):
        measure(layout, otelcol, args.spans, args.traces_per_batch, args.threads)


if __name__ == "__main__":
    main()
