"""Log records queued as their fields: :func:`plain_log`, and :func:`sdk_records` for the way back.

otelkit's fast emit (:class:`otelkit._runtime.sdk_compat.FastEmit`) queues a plain record for its
own batch processor as its fields alone (:class:`~otelkit._runtime.otlp.encode.PlainLog`, made by
:func:`plain_log`): no SDK record, attributes object or lock is built for it, and the export thread
encodes it, redacted, with the rest of its batch (:func:`otelkit._runtime.otlp.encode.encode_logs`).
Encoding the batch there rather than each record on the thread that logs costs the request's
thread less (the encoder's code and caches stay out of its way: bench/README.md, 2026-12-04).
Should the exporter fall back to the SDK's encoder, :func:`sdk_records` builds the SDK's records
from those fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otelkit._runtime import sdk_compat
from otelkit._runtime.otlp.encode import PlainLog

__all__ = ["plain_log", "sdk_records"]


def plain_log(
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
) -> PlainLog:
    """A record as the fast emit queues it for otelkit's OTLP exporter: its :class:`PlainLog`.

    Called with the fields of the ``ReadableLogRecord`` the fast emit would otherwise build; the
    record's attributes must be a dict of its own that the SDK would keep as it is (no value
    cleaned, none dropped).
    """
    return PlainLog(
        resource,
        instrumentation_scope,
        (
            timestamp,
            observed,
            trace_id,
            span_id,
            trace_flags,
            severity_text,
            severity_number,
            body,
            attributes,
            event_name,
        ),
    )


def sdk_records(batch: Sequence[Any]) -> list[Any]:
    """``batch`` with each :class:`PlainLog` made the SDK's ``ReadableLogRecord`` (for the SDK's encoder).

    For the rare export that falls back to the SDK's encoder after records were queued as their
    fields (:meth:`otelkit._runtime.otlp.fast.FastOTLPLogExporter.export`); not yet redacted, as the
    SDK's records beside them are not.
    """
    if not any(type(item) is PlainLog for item in batch):
        return list(batch)
    from opentelemetry.context import Context

    api_record, readable = sdk_compat.logs_api().LogRecord, sdk_compat.logs_sdk().ReadableLogRecord
    out: list[Any] = []
    for item in batch:
        if type(item) is not PlainLog:
            out.append(item)
            continue
        timestamp, observed, trace_id, span_id, flags, severity_text, severity, body, attributes, event = item.fields
        record = api_record(
            timestamp=timestamp,
            observed_timestamp=observed,
            context=Context(),
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            severity_text=severity_text,
            severity_number=severity,
            body=body,
            attributes=attributes,
            event_name=event,
        )
        out.append(
            readable(log_record=record, resource=item.resource, instrumentation_scope=item.instrumentation_scope)
        )
    return out
