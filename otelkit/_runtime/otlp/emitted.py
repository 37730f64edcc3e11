"""Log records queued as their fields, and :func:`sdk_records` for the way back.

otelkit's fast emit (:class:`otelkit._runtime.sdk_compat.FastEmit`) queues a plain record for its
own batch processor as its fields alone, a tuple
(:data:`~otelkit._runtime.otlp.encode.PlainLog`): no SDK record, attributes object or lock is
built for it, and the export thread encodes it, redacted, with the rest of its batch
(:func:`otelkit._runtime.otlp.encode.encode_logs`). Encoding the batch there rather than each
record on the thread that logs costs the request's thread less (the encoder's code and caches stay
out of its way: bench/README.md, 2026-12-04). Should the exporter fall back to the SDK's encoder,
:func:`sdk_records` builds the SDK's records from those fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otelkit._runtime import sdk_compat

__all__ = ["sdk_records"]


def sdk_records(batch: Sequence[Any]) -> list[Any]:
    """``batch`` with each ``PlainLog`` tuple made the SDK's ``ReadableLogRecord`` (for the SDK's encoder).

    For the rare export that falls back to the SDK's encoder after records were queued as their
    fields (:meth:`otelkit._runtime.otlp.fast.FastOTLPLogExporter.export`); not yet redacted, as the
    SDK's records beside them are not.
    """
    if not any(type(item) is tuple for item in batch):
        return list(batch)
    from opentelemetry.context import Context

    api_record, readable = sdk_compat.logs_api().LogRecord, sdk_compat.logs_sdk().ReadableLogRecord
    out: list[Any] = []
    for item in batch:
        if type(item) is not tuple:
            out.append(item)
            continue
        resource, scope, stamp, observed, trace_id, span_id, flags, level, severity, body, attributes, event = item
        record = api_record(
            timestamp=stamp,
            observed_timestamp=observed,
            context=Context(),
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=flags,
            severity_text=level,
            severity_number=severity,
            body=body,
            attributes=attributes,
            event_name=event,
        )
        out.append(readable(log_record=record, resource=resource, instrumentation_scope=scope))
    return out
