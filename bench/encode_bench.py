"""Micro-benchmark: OTLP encoding cost per span and per log record, SDK encoder vs otelkit's.

    python bench/encode_bench.py [--batch 512] [--repeat 7]

Spans are what otelkit's ASGI instrumentation records for ``GET /items/{item_id}`` (a server span
with 9 stable-semconv attributes); log records are an INFO line with trace context and 3 ``extra``
attributes. Both go through real SDK providers into an in-memory exporter first, so the objects
are exactly what a batch processor hands to an exporter. Prints the best of ``--repeat`` runs in
µs per item.
"""

from __future__ import annotations

import argparse
import logging
import time
import timeit
from typing import Any


def _spans(n: int) -> list[Any]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "bench", "telemetry.distro.name": "otelkit"}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otelkit.asgi", "0.1.0")
    for i in range(n):
        attributes = {
            "http.request.method": "GET",
            "url.scheme": "http",
            "url.path": f"/items/{i}",
            "http.route": "/items/{item_id}",
            "server.address": "127.0.0.1",
            "server.port": 8000,
            "network.protocol.version": "1.1",
            "user_agent.original": "wrk/4.2.0",
            "http.response.status_code": 200,
        }
        with tracer.start_as_current_span("GET /items/{item_id}", kind=SpanKind.SERVER, attributes=attributes):
            pass
    return list(memory.get_finished_spans())


def _logs(n: int) -> list[Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("app.items")
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("bench")
    from opentelemetry._logs import LogRecord, SeverityNumber

    with tracer.start_as_current_span("request"):
        for i in range(n):
            logger.emit(
                LogRecord(
                    severity_text="INFO",
                    severity_number=SeverityNumber.INFO,
                    body=f"item {i} fetched",
                    attributes={"item_id": i, "code.function.name": "get_item", "user.tier": "free"},
                )
            )
    return list(memory.get_finished_logs())


def _best(fn: Any, repeat: int, items: int) -> float:
    # CPU time of this thread: other processes on a busy machine do not count, what the encoder costs does.
    runs = timeit.repeat(fn, number=1, repeat=repeat, timer=time.thread_time)
    return min(runs) / items * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)

    from google.protobuf.internal import api_implementation
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as sdk_encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

    from otelkit._runtime.otlp.encode import encode_logs, encode_spans

    spans = _spans(args.batch)
    logs = _logs(args.batch)
    assert sdk_encode_spans(spans).SerializeToString() == encode_spans(spans)
    assert sdk_encode_logs(logs).SerializeToString() == encode_logs(logs)

    rows = [
        (
            "span",
            "SDK encode_spans().SerializeToString()",
            _best(lambda: sdk_encode_spans(spans).SerializeToString(), args.repeat, len(spans)),
        ),
        ("span", "otelkit _otlp.encode_spans()", _best(lambda: encode_spans(spans), args.repeat, len(spans))),
        (
            "log",
            "SDK encode_logs().SerializeToString()",
            _best(lambda: sdk_encode_logs(logs).SerializeToString(), args.repeat, len(logs)),
        ),
        ("log", "otelkit _otlp.encode_logs()", _best(lambda: encode_logs(logs), args.repeat, len(logs))),
    ]
    print(f"protobuf backend: {api_implementation.Type()}; batch {args.batch}; best of {args.repeat}")
    for item, name, micros in rows:
        print(f"{item:5} {name:42} {micros:7.2f} µs/{item}")


if __name__ == "__main__":
    main()
