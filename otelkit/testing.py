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
how ``otelkit tail`` prints). All reads are thread-safe and return copies.

**InMemoryTelemetry** — SDK tracer, meter and logger providers with in-memory exporters, for unit
tests of code that takes providers explicitly. It never sets the global providers (they can be
set once per process); pass ``mem.tracer_provider`` & co. to the code under test, then read
``mem.spans()``, ``mem.metric_points()``, ``mem.logs()`` — the same record types the receiver
gives, because they go through the same OTLP encoding.

With pytest, the ``otlp_receiver`` and ``otel_memory`` fixtures come from
``otelkit.pytest_plugin`` (registered automatically when otelkit is installed).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

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

_logger = logging.getLogger(__name__)

Signal = Literal["traces", "metrics", "logs"]
"""The three OTLP signals, named as in their URL paths."""

_SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
_REQUEST_TYPES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_EMPTY_RESPONSES: dict[str, Any] = {
    "traces": ExportTraceServiceResponse(),
    "metrics": ExportMetricsServiceResponse(),
    "logs": ExportLogsServiceResponse(),
}
_SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_CODES = ("UNSET", "OK", "ERROR")
_TEMPORALITIES = ("UNSPECIFIED", "DELTA", "CUMULATIVE")
_METRIC_TYPES = {
    "sum": "sum",
    "gauge": "gauge",
    "histogram": "histogram",
    "exponential_histogram": "exp_histogram",
    "summary": "summary",
}
# OTLP/JSON writes these bytes fields as hex, protobuf's JSON mapping expects base64.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class ReceivedSpanEvent:
    """An event recorded on a span."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedLink:
    """A link from a span to another span context."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One span, flattened out of an ``ExportTraceServiceRequest``."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    """Lowercase hex; ``""`` for a root span."""
    kind: str
    """``"INTERNAL"``, ``"SERVER"``, ``"CLIENT"``, ``"PRODUCER"``, ``"CONSUMER"`` or ``"UNSPECIFIED"``."""
    start_time_ns: int
    end_time_ns: int
    attributes: dict[str, Any]
    status_code: str
    """``"UNSET"``, ``"OK"`` or ``"ERROR"``."""
    status_message: str
    events: tuple[ReceivedSpanEvent, ...]
    links: tuple[ReceivedLink, ...]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str

    @property
    def duration_ns(self) -> int:
        return self.end_time_ns - self.start_time_ns

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One log record, flattened out of an ``ExportLogsServiceRequest``."""

    time_ns: int
    """The record's timestamp; its observed timestamp when the record has none."""
    severity_text: str
    severity_number: int
    body: Any
    attributes: dict[str, Any]
    trace_id: str
    """Lowercase hex; ``""`` when the record was emitted outside a span."""
    span_id: str
    resource: dict[str, Any]
    scope_name: str
    event_name: str

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMetricPoint:
    """One data point of one metric, flattened out of an ``ExportMetricsServiceRequest``.

    ``value`` is set for ``sum`` and ``gauge`` points; ``count``/``sum`` for the histogram types
    and ``summary``; ``bucket_counts``/``explicit_bounds`` for ``histogram``; ``scale``,
    ``zero_count`` and the bucket counts of both ranges for ``exp_histogram``; ``quantiles`` as
    ``(quantile, value)`` pairs for ``summary``.
    """

    name: str
    type: str
    """``"sum"``, ``"gauge"``, ``"histogram"``, ``"exp_histogram"`` or ``"summary"``."""
    unit: str = ""
    description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    scale: int | None = None
    zero_count: int | None = None
    positive_bucket_counts: tuple[int, ...] = ()
    negative_bucket_counts: tuple[int, ...] = ()
    quantiles: tuple[tuple[float, float], ...] = ()
    exemplars: int = 0
    """How many exemplars the point carries."""
    is_monotonic: bool | None = None
    temporality: str = ""
    """``"CUMULATIVE"`` or ``"DELTA"`` for sums and histograms; ``""`` otherwise."""
    start_time_ns: int = 0
    time_ns: int = 0
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


ReceivedRecord = ReceivedSpan | ReceivedLog | ReceivedMetricPoint
"""Any of the three record types."""


# --------------------------------------------------------------------------- flattening


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attributes(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _flatten_traces(request: Any) -> list[ReceivedSpan]:
    out: list[ReceivedSpan] = []
    append = out.append
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope_name, scope_version = ss.scope.name, ss.scope.version
            for s in ss.spans:
                append(
                    ReceivedSpan(
                        name=s.name,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(),
                        kind=_SPAN_KINDS[s.kind] if s.kind < len(_SPAN_KINDS) else str(s.kind),
                        start_time_ns=s.start_time_unix_nano,
                        end_time_ns=s.end_time_unix_nano,
                        attributes=_attributes(s.attributes),
                        status_code=_STATUS_CODES[s.status.code] if s.status.code < 3 else str(s.status.code),
                        status_message=s.status.message,
                        events=tuple(
                            ReceivedSpanEvent(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in s.events
                        ),
                        links=tuple(
                            ReceivedLink(lk.trace_id.hex(), lk.span_id.hex(), _attributes(lk.attributes))
                            for lk in s.links
                        ),
                        resource=resource,
                        scope_name=scope_name,
                        scope_version=scope_version,
                    )
                )
    return out


def _flatten_logs(request: Any) -> list[ReceivedLog]:
    out: list[ReceivedLog] = []
    append = out.append
    for rl in request.resource_logs:
        resource = _attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope_name = sl.scope.name
            for r in sl.log_records:
                append(
                    ReceivedLog(
                        time_ns=r.time_unix_nano or r.observed_time_unix_nano,
                        severity_text=r.severity_text,
                        severity_number=r.severity_number,
                        body=_any_value(r.body),
                        attributes=_attributes(r.attributes),
                        trace_id=r.trace_id.hex(),
                        span_id=r.span_id.hex(),
                        resource=resource,
                        scope_name=scope_name,
                        event_name=r.event_name,
                    )
                )
    return out


def _point_common(point: Any) -> dict[str, Any]:
    return {
        "attributes": _attributes(point.attributes),
        "exemplars": len(point.exemplars) if hasattr(point, "exemplars") else 0,
        "start_time_ns": point.start_time_unix_nano,
        "time_ns": point.time_unix_nano,
    }


def _flatten_metrics(request: Any) -> list[ReceivedMetricPoint]:
    out: list[ReceivedMetricPoint] = []
    append = out.append
    for rm in request.resource_metrics:
        resource = _attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            scope_name = sm.scope.name
            for m in sm.metrics:
                data_kind = m.WhichOneof("data")
                if data_kind is None:
                    continue
                data = getattr(m, data_kind)
                base = {
                    "name": m.name,
                    "type": _METRIC_TYPES[data_kind],
                    "unit": m.unit,
                    "description": m.description,
                    "resource": resource,
                    "scope_name": scope_name,
                }
                if data_kind in ("sum", "histogram", "exponential_histogram"):
                    base["temporality"] = _TEMPORALITIES[data.aggregation_temporality]
                if data_kind == "sum":
                    base["is_monotonic"] = data.is_monotonic
                for p in data.data_points:
                    extra: dict[str, Any]
                    if data_kind in ("sum", "gauge"):
                        which = p.WhichOneof("value")
                        extra = {"value": getattr(p, which) if which else None}
                    elif data_kind == "histogram":
                        extra = {
                            "count": p.count,
                            "sum": p.sum if p.HasField("sum") else None,
                            "min": p.min if p.HasField("min") else None,
                            "max": p.max if p.HasField("max") else None,
                            "bucket_counts": tuple(p.bucket_counts),
                            "explicit_bounds": tuple(p.explicit_bounds),
                        }
                    elif data_kind == "exponential_histogram":
                        extra = {
                            "count": p.count,
                            "sum": p.sum if p.HasField("sum") else None,
                            "min": p.min if p.HasField("min") else None,
                            "max": p.max if p.HasField("max") else None,
                            "scale": p.scale,
                            "zero_count": p.zero_count,
                            "positive_bucket_counts": tuple(p.positive.bucket_counts),
                            "negative_bucket_counts": tuple(p.negative.bucket_counts),
                        }
                    else:  # summary
                        extra = {
                            "count": p.count,
                            "sum": p.sum,
                            "quantiles": tuple((q.quantile, q.value) for q in p.quantile_values),
                        }
                    append(ReceivedMetricPoint(**base, **_point_common(p), **extra))
    return out


_FLATTEN: dict[str, Callable[[Any], list[Any]]] = {
    "traces": _flatten_traces,
    "metrics": _flatten_metrics,
    "logs": _flatten_logs,
}


def _count_items(signal: str, request: Any) -> int:
    if signal == "traces":
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    n = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is not None:
                    n += len(getattr(m, kind).data_points)
    return n


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_KEYS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    return node


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _decode(signal: str, body: bytes, content_type: str, content_encoding: str) -> tuple[Any, bool]:
    """Return (request message, is_json) or raise _BadRequest."""
    encoding = content_encoding.strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding not in ("", "identity"):
            raise _BadRequest(415, f"unsupported Content-Encoding {content_encoding!r}; expected gzip or deflate")
    except (OSError, EOFError, zlib.error) as exc:
        raise _BadRequest(400, f"cannot decompress body ({encoding}): {exc}") from exc
    mime = content_type.split(";", 1)[0].strip().lower()
    message = _REQUEST_TYPES[signal]()
    if mime in ("application/x-protobuf", "application/protobuf"):
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise _BadRequest(400, f"cannot decode protobuf body: {exc}") from exc
        return message, False
    if mime == "application/json":
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError(f"expected a JSON object, got {type(document).__name__}")
            json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError, binascii.Error) as exc:
            raise _BadRequest(400, f"cannot decode OTLP/JSON body: {exc}") from exc
        return message, True
    raise _BadRequest(
        415, f"unsupported Content-Type {content_type!r}; expected application/x-protobuf or application/json"
    )


# --------------------------------------------------------------------------- server


def _signal_of(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    for signal in _SIGNALS:
        if path.endswith("/v1/" + signal):
            return signal
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the stdlib logs every request to stderr

    def setup(self) -> None:
        super().setup()
        self.server.receiver._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.receiver._track(self.connection, add=False)

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            self._reply(411, b"Content-Length required\n")
            self.close_connection = True
            return None
        try:
            return self.rfile.read(int(length))
        except ValueError:
            self._reply(400, b"bad Content-Length\n")
            self.close_connection = True
            return None

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        self.server.receiver._handle(self, body)

    def do_GET(self) -> None:
        if _signal_of(self.path) is None:
            self._reply(404, b"not found; OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs\n")
        else:
            self._reply(405, b"use POST\n")

    do_PUT = do_DELETE = do_PATCH = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # never share a port with another listener: "in use" must fail
    receiver: OTLPReceiver


class OTLPReceiver:
    """An OTLP/HTTP receiver on a local port that decodes and stores what it gets.

    Args:
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one (read it back from ``port``/``endpoint``).
        on_batch: Called from a server thread with ``(signal, records)`` for every accepted
            request; exceptions it raises are logged and ignored.
        keep: Store the records (default). With ``False`` only the counters move.

    Attributes:
        fail_with: When set (e.g. 503), every POST is answered with this status and dropped.
        delay: Seconds to wait before answering each POST.
        requests: Accepted requests per signal, e.g. ``{"traces": 2, "metrics": 0, "logs": 1}``.
        items: Items per signal (spans, metric data points, log records), counted even with
            ``keep=False``.
        bytes_received: Raw body bytes of accepted requests, as sent (compressed or not).
        bad_requests: Requests answered 400/411/415.
        failed_requests: Requests answered with ``fail_with``.
        last_headers: The headers of the last accepted request (lower-case names).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_batch: Callable[[str, Sequence[ReceivedRecord]], object] | None = None,
        keep: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.on_batch = on_batch
        self.keep = keep
        self.fail_with: int | None = None
        self.delay: float = 0.0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._reset()

    def _reset(self) -> None:
        self._pending: dict[str, list[Any]] = {s: [] for s in _SIGNALS}
        self._records: dict[str, list[Any]] = {s: [] for s in _SIGNALS}
        self.requests: dict[str, int] = dict.fromkeys(_SIGNALS, 0)
        self.items: dict[str, int] = dict.fromkeys(_SIGNALS, 0)
        self.bytes_received = 0
        self.bad_requests = 0
        self.failed_requests = 0
        self.last_headers: dict[str, str] = {}

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> OTLPReceiver:
        """Bind and serve in a daemon thread. Raises ``OSError`` (``EADDRINUSE``) if the port is taken."""
        if self._server is not None:
            return self
        server_cls = _Server
        if ":" in self.host:
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        server = server_cls((self.host, self._requested_port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="otelkit-otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and any open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the one chosen for ``port=0``)."""
        if self._server is None:
            raise RuntimeError("OTLPReceiver is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://127.0.0.1:4318``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, signal: Signal) -> str:
        """Full signal URL, e.g. ``http://127.0.0.1:4318/v1/traces`` (what exporter constructors want)."""
        return f"{self.endpoint}/v1/{signal}"

    # ---------------------------------------------------------------- reading

    def _materialized(self, signal: str) -> list[Any]:
        with self._lock:
            pending, records = self._pending[signal], self._records[signal]
            if pending:
                flatten = _FLATTEN[signal]
                for entry in pending:
                    records.extend(entry if isinstance(entry, list) else flatten(entry))
                pending.clear()
            return list(records)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        return self._materialized("traces")

    @property
    def logs(self) -> list[ReceivedLog]:
        """Every log record received so far, in arrival order."""
        return self._materialized("logs")

    @property
    def metrics(self) -> list[ReceivedMetricPoint]:
        """Every metric data point received so far, in arrival order."""
        return self._materialized("metrics")

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        """Spans whose name is exactly ``name``."""
        return [s for s in self.spans if s.name == name]

    def metric_points(self, name: str | None = None) -> list[ReceivedMetricPoint]:
        """Data points of the metric ``name`` (all points when ``None``)."""
        points = self.metrics
        return points if name is None else [p for p in points if p.name == name]

    def logs_with(
        self,
        *,
        body_contains: str | None = None,
        severity_text: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[ReceivedLog]:
        """Log records whose body contains ``body_contains``, with that severity and these attributes."""
        out = []
        for log in self.logs:
            if body_contains is not None and body_contains not in str(log.body):
                continue
            if severity_text is not None and log.severity_text != severity_text:
                continue
            if attributes and any(log.attributes.get(k, _MISSING) != v for k, v in attributes.items()):
                continue
            out.append(log)
        return out

    def clear(self) -> None:
        """Forget everything received so far (records and counters)."""
        with self._lock:
            self._reset()

    def summary(self) -> str:
        """One line describing what arrived, for assertion messages."""
        spans, logs, points = self.spans, self.logs, self.metrics
        parts = [
            f"{len(spans)} spans" + _names(s.name for s in spans),
            f"{len(logs)} log records" + _names(str(r.body)[:40] for r in logs),
            f"{len(points)} metric points" + _names(p.name for p in points),
            "requests " + ", ".join(f"{s}={n}" for s, n in self.requests.items()),
            f"{self.bad_requests} bad requests",
        ]
        return "; ".join(parts)

    def wait_for(
        self, predicate: Callable[[OTLPReceiver], object], timeout: float = 10.0, interval: float = 0.05
    ) -> object:
        """Poll until ``predicate(self)`` is truthy and return its value.

        Raises:
            AssertionError: after ``timeout`` seconds, with a summary of what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {_describe(predicate)}; got {self.summary()}"
                )
            time.sleep(interval)

    # ---------------------------------------------------------------- server side

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler, body: bytes) -> None:
        signal = _signal_of(handler.path)
        if signal is None:
            handler._reply(404, b"not found; OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs\n")
            return
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            with self._lock:
                self.failed_requests += 1
            handler._reply(self.fail_with, b"refused by OTLPReceiver.fail_with\n")
            return
        try:
            message, is_json = _decode(
                signal,
                body,
                handler.headers.get("Content-Type", ""),
                handler.headers.get("Content-Encoding", ""),
            )
        except _BadRequest as exc:
            with self._lock:
                self.bad_requests += 1
            handler._reply(exc.status, f"{exc}\n".encode())
            return
        on_batch = self.on_batch
        records = _FLATTEN[signal](message) if on_batch is not None else None
        count = len(records) if records is not None else _count_items(signal, message)
        with self._lock:
            self.requests[signal] += 1
            self.items[signal] += count
            self.bytes_received += len(body)
            self.last_headers = {k.lower(): v for k, v in handler.headers.items()}
            if self.keep and count:
                self._pending[signal].append(records if records is not None else message)
        if on_batch is not None and records:
            try:
                on_batch(signal, records)
            except Exception:
                _logger.exception("OTLPReceiver on_batch callback failed")
        response = _EMPTY_RESPONSES[signal]
        if is_json:
            handler._reply(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            handler._reply(200, response.SerializeToString(), "application/x-protobuf")


_MISSING = object()


def _names(values: Iterable[str], limit: int = 8) -> str:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    if not seen:
        return ""
    more = f", … +{len(seen) - limit}" if len(seen) > limit else ""
    return " (" + ", ".join(repr(v) for v in seen[:limit]) + more + ")"


def _describe(predicate: Callable[..., object]) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    code = getattr(predicate, "__code__", None)
    if name.endswith("<lambda>") and code is not None:
        return f"lambda at {code.co_filename}:{code.co_firstlineno}"
    return name


# --------------------------------------------------------------------------- in-memory SDK


class InMemoryTelemetry:
    """SDK providers that keep spans, metrics and logs in memory, for unit tests.

    Nothing is installed globally: hand ``tracer_provider``, ``meter_provider`` and
    ``logger_provider`` (or ``tracer()``, ``meter()``, ``logger()``) to the code under test.

    Args:
        resource: A ``Resource`` or a mapping of resource attributes
            (default ``{"service.name": "test"}``).
    """

    def __init__(self, *, resource: Resource | Mapping[str, Any] | None = None) -> None:
        # Imported here so that `otelkit tail` and the receiver do not pay for the SDK.
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        if resource is None:
            resource = {"service.name": "test"}
        if not isinstance(resource, Resource):
            resource = Resource.create(dict(resource))
        self.resource = resource
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider: TracerProvider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider: MeterProvider = MeterProvider(
            resource=resource, metric_readers=[self.metric_reader], shutdown_on_exit=False
        )
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider: LoggerProvider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self._shut_down = False

    def tracer(self, name: str = "test") -> Any:
        """A tracer from ``tracer_provider``."""
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str = "test") -> Any:
        """A meter from ``meter_provider``."""
        return self.meter_provider.get_meter(name)

    def logger(self, name: str = "test") -> Any:
        """An OTel logger (not a ``logging.Logger``) from ``logger_provider``."""
        return self.logger_provider.get_logger(name)

    def spans(self) -> list[ReceivedSpan]:
        """Finished spans, flattened like :attr:`OTLPReceiver.spans`."""
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        finished = self.span_exporter.get_finished_spans()
        return _flatten_traces(encode_spans(finished)) if finished else []

    def logs(self) -> list[ReceivedLog]:
        """Emitted log records, flattened like :attr:`OTLPReceiver.logs`."""
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        finished = self.log_exporter.get_finished_logs()
        return _flatten_logs(encode_logs(finished)) if finished else []

    def metric_points(self, name: str | None = None) -> list[ReceivedMetricPoint]:
        """Collect now and return the data points (of metric ``name`` only, if given).

        The reader is cumulative: each call returns the totals since the start.
        """
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        data = self.metric_reader.get_metrics_data()
        points = _flatten_metrics(encode_metrics(data)) if data is not None else []
        return points if name is None else [p for p in points if p.name == name]

    def clear(self) -> None:
        """Forget finished spans and log records (metrics are cumulative and stay)."""
        self.span_exporter.clear()
        self.log_exporter.clear()

    def shutdown(self) -> None:
        """Shut the three providers down; safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()

    def __enter__(self) -> InMemoryTelemetry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
