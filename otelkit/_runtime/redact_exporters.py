"""Exporter wrappers that redact: the SDK's own span and log exporters send nothing :mod:`.redact` would remove.

otelkit's fast encoder redacts while it encodes; the SDK's exporters (``OTELKIT_FAST_EXPORT=false``,
gRPC, an exporter from an entry point) are wrapped by :class:`RedactingSpanExporter` and
:class:`RedactingLogRecordExporter`, which apply the same rules (:func:`otelkit._runtime.redact.redact_attributes`,
:func:`~otelkit._runtime.redact.redact_message`, :func:`~otelkit._runtime.redact.redact_body`) on the
export thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from otelkit._runtime import sdk_compat
from otelkit._runtime.redact import redact_attributes, redact_body, redact_message

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter
else:
    LogRecordExporter = sdk_compat.logs_sdk_export().LogRecordExporter

__all__ = ["RedactingLogRecordExporter", "RedactingSpanExporter", "redact_log_records", "redact_span"]


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself, or a copy with its attributes, event and link attributes and status description redacted."""
    attributes = span.attributes
    new_attributes = redact_attributes(attributes)
    events = span.events
    new_events = _redacted_items(events, lambda event, scrubbed: Event(event.name, scrubbed, event.timestamp))
    links = span.links
    new_links = _redacted_items(links, lambda link, scrubbed: Link(link.context, scrubbed))
    status = span.status
    description = status.description
    if description:
        scrubbed_description = redact_message(description)
        if scrubbed_description is not description:
            status = Status(status.status_code, scrubbed_description)
    if new_attributes is attributes and new_events is None and new_links is None and status is span.status:
        return span
    # The span's public fields copy its containers (no dropped counts): the counts are set again.
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_with_dropped(new_attributes, span.dropped_attributes),
        events=_with_dropped_items(events if new_events is None else new_events, span.dropped_events),
        links=_with_dropped_items(links if new_links is None else new_links, span.dropped_links),
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _redacted_items(items: Sequence[Any], remake: Callable[[Any, Any], Any]) -> list[Any] | None:
    # Events (links) with their attributes redacted, each remade by ``remake(item, attributes)``
    # with its dropped-attributes count; None when there was nothing to redact.
    new: list[Any] | None = None
    for i, item in enumerate(items):
        scrubbed = redact_attributes(item.attributes)
        if scrubbed is not item.attributes:
            if new is None:
                new = list(items)
            new[i] = remake(item, _with_dropped(scrubbed, item.dropped_attributes))
    return new


def _with_dropped(attributes: Any, dropped: int) -> Any:
    # Attributes with the dropped-attributes count the exporter reports.
    if not dropped:
        return attributes
    bounded = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
    bounded.dropped = dropped
    return bounded


def _with_dropped_items(items: Any, dropped: int) -> Any:
    # Events (links) with the dropped-events (-links) count the exporter reports.
    if not dropped:
        return items
    bounded: Any = BoundedList(None)
    bounded.extend(items)
    bounded.dropped = dropped
    return bounded


def _bounded_like(original: Any, new: Any) -> Any:
    # Keep the dropped-attributes count the exporter reports, and (SDK 1.40-1.44) the log
    # attributes' "extended" kind, without which maps and None values would be dropped.
    if new is original or not isinstance(original, BoundedAttributes):
        return new
    return sdk_compat.attributes_like(original, new)


class RedactingSpanExporter(SpanExporter):
    """Exports through ``inner`` what :func:`redact_span` makes of each span."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))

    def __repr__(self) -> str:
        return f"RedactingSpanExporter({self.inner!r})"


def redact_log_records(
    batch: Sequence[Any],
    attribute_filter: Callable[[Any], Any] | None = redact_attributes,
    text_filter: Callable[[Any], Any] | None = redact_body,
) -> Sequence[Any]:
    """``batch`` (SDK log records) with each record's attributes and body redacted in place by the filters."""
    for record in batch:
        inner = record.log_record
        attributes = inner.attributes
        if attribute_filter is not None and attributes:
            scrubbed = attribute_filter(attributes)
            if scrubbed is not attributes:
                # The record left the app when it was emitted: rewriting it now is safe.
                inner.attributes = _bounded_like(attributes, scrubbed)
        body = inner.body
        if text_filter is not None and body:
            scrubbed_body = text_filter(body)
            if scrubbed_body is not body:
                inner.body = scrubbed_body
    return batch


class RedactingLogRecordExporter(LogRecordExporter):
    """Exports through ``inner`` after redacting each record's body and attributes in place."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner

    def export(self, batch: Sequence[Any]) -> Any:
        return self.inner.export(redact_log_records(batch))

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]  # the SDK's LogRecordExporter.shutdown is unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flush = getattr(self.inner, "force_flush", None)
        return True if flush is None else bool(flush(timeout_millis))

    def __repr__(self) -> str:
        return f"RedactingLogRecordExporter({self.inner!r})"
