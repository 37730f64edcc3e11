"""Test what your instrumentation really sends: an OTLP/HTTP receiver and in-memory providers.

Two tools, for two kinds of test:

**OTLPReceiver** — a real OTLP/HTTP endpoint on 127.0.0.1 (stdlib ``http.server`` in a daemon
thread). Point an exporter, an app in a subprocess or a collector at ``receiver.endpoint`` and
assert on the decoded records::

    from otelkit.testing import OTLPReceiver

    with OTLPReceiver() as receiver:  # port=0: a free port is chosen
        run_app(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                     "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
        receiver.wait_for(lambda r: r.spans_named("GET /items/{item_id}"))
        assert receiver.metric_points("http.server.request.duration")

It accepts ``POST …/v1/traces``, ``…/v1/metrics`` and ``…/v1/logs`` under any prefix (Loki's
``/otlp/v1/logs`` too), as ``application/x-protobuf`` or OTLP/JSON (``application/json``, hex
trace and span ids), optionally gzip- or deflate-compressed, and answers 200 with an empty
``Export*ServiceResponse`` in the request's content type. Other paths get 404, undecodable bodies
400 (counted in ``bad_requests``), unsupported content types or encodings 415. Set
``receiver.fail_with = 503`` to make it refuse every export (retry tests; counted in
``failed_requests``) and ``receiver.delay = 0.5`` to slow every answer down.

What arrived is flattened into plain frozen dataclasses — :class:`ReceivedSpan`,
:class:`ReceivedLog` and one :class:`ReceivedMetricPoint` per data point — with ids as lowercase
hex strings, enums as names (``"SERVER"``, ``"ERROR"``) and attribute values as Python values
(arrays become tuples, key-value lists dicts, like the SDK's own attributes). Protobuf bodies are
decoded when they arrive but flattened only when you read ``spans``/``logs``/``metrics``, so the
receiver can sink a benchmark; ``keep=False`` stores nothing and only counts. ``on_batch`` is
called from the server thread with ``(signal, records)`` for every accepted request (this is
how ``otelkit tail`` prints); ``on_message`` with ``(signal, request)``, the decoded protobuf
``Export*ServiceRequest`` as it came, flattened for no one (how ``bench/`` counts). All reads
are thread-safe and return copies.

**InMemoryTelemetry** — SDK tracer, meter and logger providers with in-memory exporters, for unit
tests of code that takes providers explicitly. It never sets the global providers (they can be
set once per process); pass ``mem.tracer_provider`` & co. to the code under test, then read
``mem.spans()``, ``mem.metric_points()``, ``mem.logs()`` — the same record types the receiver
gives, because they go through the same OTLP encoding.

With pytest, the ``otlp_receiver`` and ``otel_memory`` fixtures come from
``otelkit.pytest_plugin`` (registered automatically when otelkit is installed).
"""

from __future__ import annotations

from otelkit.testing.memory import InMemoryTelemetry
from otelkit.testing.receiver import OTLPReceiver
from otelkit.testing.records import (
    ReceivedLink,
    ReceivedLog,
    ReceivedMetricPoint,
    ReceivedRecord,
    ReceivedSpan,
    ReceivedSpanEvent,
    Signal,
)

__all__ = [
    "InMemoryTelemetry",
    "OTLPReceiver",
    "ReceivedLink",
    "ReceivedLog",
    "ReceivedMetricPoint",
    "ReceivedRecord",
    "ReceivedSpan",
    "ReceivedSpanEvent",
    "Signal",
]
