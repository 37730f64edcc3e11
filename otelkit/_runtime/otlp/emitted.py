"""Log records encoded when they are emitted: :class:`LogEncoder`, and :func:`decoded` for the way back.

otelkit's fast emit (:class:`otelkit._runtime.sdk_compat.FastEmit`) queues a plain record for its
own batch processor as its OTLP ``LogRecord`` bytes, encoded and redacted by the exporter's
:class:`LogEncoder` on the thread that logs: no SDK record is built for it, and the export thread
only groups the bytes (:func:`otelkit._runtime.otlp.encode.encode_logs`). Should the exporter fall
back to the SDK's encoder, :func:`decoded` reads such records back from their bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otelkit._runtime import sdk_compat
from otelkit._runtime.otlp.encode import EncodedLog, TextFilter, encode_log_record
from otelkit._runtime.otlp.protowire import AttributeFilter

__all__ = ["LogEncoder", "decoded"]


class LogEncoder:
    """Encodes a log record when it is emitted, with one exporter's filters: an :class:`EncodedLog`.

    Called by the fast emit (:class:`otelkit._runtime.sdk_compat.FastEmit`) with the fields of the
    ``ReadableLogRecord`` it would otherwise build; the record's attributes must be what the SDK
    would keep as they are (no value cleaned, none dropped).
    """

    __slots__ = ("attribute_filter", "text_filter")

    def __init__(self, attribute_filter: AttributeFilter | None, text_filter: TextFilter | None) -> None:
        self.attribute_filter = attribute_filter
        self.text_filter = text_filter

    def __call__(
        self,
        resource: Any,
        instrumentation_scope: Any,
        timestamp: int | None,
        observed: int | None,
        trace_id: int | None,
        span_id: int | None,
        trace_flags: Any,
        severity_text: str | None,
        severity_number: Any,
        body: Any,
        attributes: Mapping[str, Any],
        event_name: str | None,
    ) -> EncodedLog:
        data = encode_log_record(
            timestamp,
            observed,
            trace_id,
            span_id,
            trace_flags,
            severity_text,
            severity_number,
            body,
            attributes,
            0,
            event_name,
            self.attribute_filter,
            self.text_filter,
        )
        return EncodedLog(resource, instrumentation_scope, data)


def decoded(batch: Sequence[Any]) -> list[Any]:
    """``batch`` with each :class:`EncodedLog` made an SDK ``ReadableLogRecord`` again (for the SDK's encoder).

    For the rare export that falls back to the SDK's encoder after records were encoded when
    emitted (:meth:`otelkit._runtime.otlp.fast.FastOTLPLogExporter.export`): the fields are read
    back from the bytes, so they stay redacted.
    """
    if not any(type(item) is EncodedLog for item in batch):
        return list(batch)
    from opentelemetry.context import Context
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogRecordMessage
    from opentelemetry.trace import TraceFlags

    api_record, readable = sdk_compat.logs_api().LogRecord, sdk_compat.logs_sdk().ReadableLogRecord
    severities = sdk_compat.logs_api().SeverityNumber
    out: list[Any] = []
    for item in batch:
        if type(item) is not EncodedLog:
            out.append(item)
            continue
        data = item.data
        start = 1  # past the field tag (b"\x12"), then past the length
        while data[start] & 0x80:
            start += 1
        message = LogRecordMessage.FromString(data[start + 1 :])
        record = api_record(
            timestamp=message.time_unix_nano or None,
            observed_timestamp=message.observed_time_unix_nano,
            context=Context(),
            trace_id=int.from_bytes(message.trace_id, "big"),
            span_id=int.from_bytes(message.span_id, "big"),
            trace_flags=TraceFlags(message.flags & 0xFF),
            severity_text=message.severity_text or None,
            severity_number=severities(message.severity_number),
            body=_python_value(message.body) if message.HasField("body") else None,
            attributes={kv.key: _python_value(kv.value) for kv in message.attributes},
            event_name=getattr(message, "event_name", "") or None,
        )
        out.append(
            readable(log_record=record, resource=item.resource, instrumentation_scope=item.instrumentation_scope)
        )
    return out


def _python_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as the Python value the SDK's encoder turns into it again."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_python_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _python_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)
