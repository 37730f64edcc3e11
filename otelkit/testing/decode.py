"""OTLP export requests in, records out: decompression, protobuf or OTLP/JSON decoding, flattening.

Flattened records are the dataclasses of :mod:`otelkit.testing.records`: ids as lowercase hex,
enums as names, attribute values as Python values.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Any

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

from otelkit.testing.limits import BodyError, Limits, inflate
from otelkit.testing.records import (
    ReceivedLink,
    ReceivedLog,
    ReceivedMetricPoint,
    ReceivedSpan,
    ReceivedSpanEvent,
    Signal,
)

__all__ = [
    "EMPTY_RESPONSES",
    "FLATTEN",
    "SIGNALS",
    "BadRequest",
    "count_items",
    "decode",
    "flatten_logs",
    "flatten_metrics",
    "flatten_traces",
    "signal_of",
]

SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
_REQUEST_TYPES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
EMPTY_RESPONSES: dict[str, Any] = {
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


def _enum_name(names: tuple[str, ...], number: int) -> str:
    # proto3 enums are open: a sender may put any number there; show it rather than fail.
    return names[number] if 0 <= number < len(names) else str(number)


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


def flatten_traces(request: Any) -> list[ReceivedSpan]:
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
                        kind=_enum_name(_SPAN_KINDS, s.kind),
                        start_time_ns=s.start_time_unix_nano,
                        end_time_ns=s.end_time_unix_nano,
                        attributes=_attributes(s.attributes),
                        status_code=_enum_name(_STATUS_CODES, s.status.code),
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


def flatten_logs(request: Any) -> list[ReceivedLog]:
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


def flatten_metrics(request: Any) -> list[ReceivedMetricPoint]:
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
                    base["temporality"] = _enum_name(_TEMPORALITIES, data.aggregation_temporality)
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


FLATTEN: dict[str, Callable[[Any], list[Any]]] = {
    "traces": flatten_traces,
    "metrics": flatten_metrics,
    "logs": flatten_logs,
}


def count_items(signal: str, request: Any) -> int:
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


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode(
    signal: str, body: bytes, content_type: str, content_encoding: str, max_bytes: int = Limits.max_body_bytes
) -> tuple[Any, bool]:
    """Return (request message, is_json) or raise BadRequest; a compressed body inflates to at most ``max_bytes``."""
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            body = inflate(body, encoding, max_bytes)
        except BodyError as exc:
            raise BadRequest(exc.status, str(exc)) from None
    elif encoding not in ("", "identity"):
        raise BadRequest(415, f"unsupported Content-Encoding {content_encoding[:40]!r}; expected gzip or deflate")
    mime = content_type.split(";", 1)[0].strip().lower()
    message = _REQUEST_TYPES[signal]()
    if mime in ("application/x-protobuf", "application/protobuf"):
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(400, f"cannot decode protobuf body: {exc}") from exc
        return message, False
    if mime == "application/json":
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError(f"expected a JSON object, got {type(document).__name__}")
            json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError, binascii.Error) as exc:
            raise BadRequest(400, f"cannot decode OTLP/JSON body: {exc}") from exc
        except RecursionError:
            raise BadRequest(400, "cannot decode OTLP/JSON body: nested too deeply") from None
        return message, True
    raise BadRequest(
        415, f"unsupported Content-Type {content_type[:60]!r}; expected application/x-protobuf or application/json"
    )


def signal_of(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    for signal in SIGNALS:
        if path.endswith("/v1/" + signal):
            return signal
    return None
