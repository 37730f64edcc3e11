"""OTLP/HTTP span and log exporters whose encoding costs a few µs per item.

The SDK's OTLP exporters build a tree of protobuf message objects for every batch and then
serialize it: ~70 µs per server span on the export thread, which in a one-core app competes with
requests for the GIL. :class:`FastOTLPSpanExporter` and :class:`FastOTLPLogExporter` are the
SDK's ``OTLPSpanExporter``/``OTLPLogExporter`` (same environment variables, endpoint, headers,
timeout, compression, TLS, retries with backoff, shutdown, self-metrics) with one step replaced:
the request body is written straight to protobuf bytes by :func:`encode_spans`/:func:`encode_logs`.

The bytes decode to exactly the message the SDK encoder builds for the same input (the unit tests
prove it property by property): same grouping by resource then scope (first-seen order, the
resources' own equality), same span flags (has-is-remote, is-remote of the parent), same
omissions (a link's trace state is not sent; an attribute that cannot be encoded is logged and
left out; any other encoding error fails the batch). What is cheaper:

- a resource's and a scope's encoding is computed once and cached by object identity
  (:mod:`otelkit._runtime.otlp.groups`);
- attribute keys and short string values are cached as encoded bytes (:mod:`otelkit._runtime.otlp.protowire`);
- no intermediate message objects; each span is joined once, the request once more;
- where it was built (a C compiler at install), the common span and log record are written by a
  C encoder (:mod:`otelkit._runtime.otlp.native`), ~5-10× faster, to the same bytes; this module's
  Python encoder does every item the C one leaves to it, and all of them where it is not built.

``attribute_filter`` (e.g. :func:`otelkit._runtime.redact.redact_attributes`) is called with each
non-empty span, event, link and log record attribute mapping before encoding; ``text_filter``
(e.g. :func:`otelkit._runtime.redact.redact_body`) with each log record body and span status description.
Both must not mutate their argument and return it, or a new value. If one raises, the batch fails
rather than leave unfiltered. ``None`` costs nothing.

A log record bound for otelkit's exporter can also be queued as its fields alone
(:mod:`otelkit._runtime.otlp.emitted`): a :data:`PlainLog` tuple, which :func:`encode_logs` encodes.

``OTELKIT_FAST_EXPORT=false`` makes otelkit use the SDK's exporters instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE as _EMPTY_TRACE_STATE

from otelkit._runtime import sdk_compat
from otelkit._runtime.otlp import native
from otelkit._runtime.otlp.groups import Groups
from otelkit._runtime.otlp.protowire import (
    SMALL_VARINTS,
    AttributeFilter,
    encode_any_value,
    encode_attributes,
    field_bytes,
    varint,
)

__all__ = [
    "ENCODE_LOGS",
    "ENCODE_SPANS",
    "PAUSE_EVERY",
    "PlainLog",
    "TextFilter",
    "encode_log_record",
    "encode_logs",
    "encode_spans",
]

PAUSE_EVERY = 128
"""Items encoded between two pauses of a paced export (~0.6 ms of spans' CPU on a busy one-core app).

Measured on the default deployment (bench/README.md, 2026-12-02): 128 against 32 took ~4 µs less
export-thread CPU per request (36 against 40-42; fewer pauses, each costing a wake-up and cold
caches) for the same p99; the pauses bound how long the export holds the core, not the tail.
"""

TextFilter = Callable[[Any], Any]
"""Called with a log record body or a span status description; returns it unchanged or a new value."""

_pack_u64 = struct.Struct("<Q").pack
_pack_u32 = struct.Struct("<I").pack
_pack_times = struct.Struct("<BQBQ").pack  # Span.start_time_unix_nano (7) and end_time_unix_nano (8)

_KIND = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# SpanFlags: CONTEXT_HAS_IS_REMOTE (0x100), plus CONTEXT_IS_REMOTE (0x200) for a remote parent/link.
_SPAN_FLAGS = (b"\x85\x01" + _pack_u32(0x100), b"\x85\x01" + _pack_u32(0x300))
_LINK_FLAGS = (b"\x35" + _pack_u32(0x100), b"\x35" + _pack_u32(0x300))
# Enum members hash in Python (slow); they are singletons, so the hot lookups go by id().
_KIND_BY_ID = {id(kind): field for kind, field in _KIND.items()}
_STATUS_NO_MESSAGE = {
    id(StatusCode.UNSET): b"\x7a\x00",
    id(StatusCode.OK): b"\x7a\x02\x18\x01",
    id(StatusCode.ERROR): b"\x7a\x02\x18\x02",
}

_SEVERITY_BY_ID = {id(s): b"\x10" + varint(s.value) if s.value else b"" for s in sdk_compat.logs_api().SeverityNumber}

_CACHE_MAX = 256


def _length_prefixed(tag: bytes, parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    n = len(body)
    return tag + (SMALL_VARINTS[n] if n < 0x80 else varint(n)) + body


def _encode_span(
    fields: sdk_compat.SpanFields,
    attribute_filter: AttributeFilter | None,
    plain: Callable[[Any], Mapping[str, Any]],
    text_filter: TextFilter | None = None,
) -> bytes:
    context, parent, name, kind, start, end, attributes, dropped_attributes, events, dropped_events = fields[:10]
    links, dropped_links, status = fields[10:13]

    if context is None:  # never for a finished span; an exception fails the batch, as before
        raise ValueError(f"span {name!r} has no span context")
    parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    trace_state = context.trace_state
    if trace_state is not _EMPTY_TRACE_STATE and trace_state:
        parts.append(field_bytes(b"\x1a", ",".join([f"{k}={v}" for k, v in trace_state.items()]).encode("utf-8")))
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if name:
        parts.append(field_bytes(b"\x2a", name.encode("utf-8")))
    parts.append(_KIND_BY_ID.get(id(kind)) or _KIND[kind])
    if start and end:
        parts.append(_pack_times(0x39, start, 0x41, end))
    elif start:
        parts.append(b"\x39" + _pack_u64(start))
    elif end:
        parts.append(b"\x41" + _pack_u64(end))
    encode_attributes(parts, b"\x4a", attributes, attribute_filter)
    if dropped_attributes:
        parts.append(b"\x50" + varint(dropped_attributes))
    if events:
        for event in events:
            parts.append(_encode_event(event, attribute_filter, plain))
    if dropped_events:
        parts.append(b"\x60" + varint(dropped_events))
    if links:
        for link in links:
            parts.append(_encode_link(link, attribute_filter, plain))
    if dropped_links:
        parts.append(b"\x70" + varint(dropped_links))
    if status is not None:
        description = status.description
        if description and text_filter is not None:
            description = text_filter(description)
        fixed = None if description else _STATUS_NO_MESSAGE.get(id(status.status_code))
        if fixed is not None:
            parts.append(fixed)
        else:
            code = status.status_code.value
            body = field_bytes(b"\x12", description.encode("utf-8")) if description else b""
            if code:
                body += b"\x18" + varint(code)
            parts.append(field_bytes(b"\x7a", body))
    parts.append(_SPAN_FLAGS[bool(parent and parent.is_remote)])
    return _length_prefixed(b"\x12", parts)


def _encode_event(event: Any, attribute_filter: AttributeFilter | None, plain: Callable[[Any], Any]) -> bytes:
    parts: list[bytes] = []
    timestamp = event.timestamp
    if timestamp:
        parts.append(b"\x09" + _pack_u64(timestamp))
    if event.name:
        parts.append(field_bytes(b"\x12", event.name.encode("utf-8")))
    encode_attributes(parts, b"\x1a", plain(event.attributes), attribute_filter)
    dropped = event.dropped_attributes
    if dropped:
        parts.append(b"\x20" + varint(dropped))
    return _length_prefixed(b"\x5a", parts)


def _encode_link(link: Any, attribute_filter: AttributeFilter | None, plain: Callable[[Any], Any]) -> bytes:
    context = link.context
    # The SDK encoder leaves Link.trace_state (3) out; so does this one, to send the same message.
    parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    encode_attributes(parts, b"\x22", plain(link.attributes), attribute_filter)
    dropped = link.dropped_attributes
    if dropped:
        parts.append(b"\x28" + varint(dropped))
    parts.append(_LINK_FLAGS[bool(context.is_remote)])
    return _length_prefixed(b"\x6a", parts)


def encode_spans(
    spans: Sequence[ReadableSpan],
    attribute_filter: AttributeFilter | None = None,
    pause: Callable[[], object] | None = None,
    text_filter: TextFilter | None = None,
) -> bytes:
    """Serialize ``spans`` as an OTLP ``ExportTraceServiceRequest``.

    Args:
        spans: Finished SDK spans, as a span processor hands them to an exporter.
        attribute_filter: Applied to each span's, event's and link's attributes before encoding.
        pause: Called after every ``PAUSE_EVERY`` spans (see :class:`Pacer`).
        text_filter: Applied to each span's status description before encoding.

    Returns:
        The protobuf bytes; they decode to the message ``encode_spans`` of
        opentelemetry-exporter-otlp-proto-common builds.
    """
    read, plain = sdk_compat.span_reader(), sdk_compat.attribute_reader()
    in_c = _native_span
    groups = Groups()
    for i, span in enumerate(spans):
        if pause is not None and i and not i % PAUSE_EVERY:
            pause()
        fields = read(span)
        items = groups.items_for(fields[13], fields[14] or None)
        data = in_c(fields, attribute_filter) if in_c is not None else None
        items.append(data if data is not None else _encode_span(fields, attribute_filter, plain, text_filter))
    return groups.request()


def _encode_body(body: Any) -> bytes:
    if type(body) is str:
        encoded = body.encode("utf-8")
        n = len(encoded)
        if n < 126:
            return b"\x2a" + SMALL_VARINTS[n + 2] + b"\x0a" + SMALL_VARINTS[n] + encoded
        return field_bytes(b"\x2a", field_bytes(b"\x0a", encoded))
    return field_bytes(b"\x2a", encode_any_value(body))


def _encode_log(
    record: Any,
    attribute_filter: AttributeFilter | None,
    plain: Callable[[Any], Any],
    text_filter: TextFilter | None = None,
) -> bytes:
    log = record.log_record
    attributes = log.attributes
    return (_encode_log_fields if _native_log_record is not None else encode_log_record)(
        log.timestamp,
        log.observed_timestamp,
        log.trace_id,
        log.span_id,
        log.trace_flags,
        log.severity_text,
        log.severity_number,
        log.body,
        plain(attributes),
        log.event_name,
        attribute_filter,
        text_filter,
        getattr(attributes, "dropped", 0),
    )


_SEVERITY_TEXTS: dict[str, bytes] = {}  # severity text -> its LogRecord field: a handful of level names
# (span id, trace id, trace flags, their LogRecord fields) of the last record encoded; replaced whole.
_last_trace: list[tuple[Any, Any, Any, bytes]] = [(None, None, None, b"")]


def encode_log_record(
    timestamp: int | None,
    observed: int | None,
    trace_id: int | None,
    span_id: int | None,
    trace_flags: Any,
    severity_text: str | None,
    severity_number: Any,
    body: Any,
    attributes: Mapping[str, Any] | None,
    event_name: str | None,
    attribute_filter: AttributeFilter | None = None,
    text_filter: TextFilter | None = None,
    dropped: int = 0,
) -> bytes:
    """One ``LogRecord`` as the ``log_records`` field (2) of a ``ScopeLogs``: the fields of an SDK log record."""
    head = b"\x09" + _pack_u64(timestamp) if timestamp else b""
    if severity_number is not None:
        field = _SEVERITY_BY_ID.get(id(severity_number))
        if field is None:
            severity = getattr(severity_number, "value", None)
            field = b"\x10" + varint(severity) if severity else b""
        head += field
    if severity_text:
        text = _SEVERITY_TEXTS.get(severity_text)
        if text is None:
            text = field_bytes(b"\x1a", severity_text.encode("utf-8"))
            if len(_SEVERITY_TEXTS) < _CACHE_MAX:
                _SEVERITY_TEXTS[severity_text] = text
        head += text
    if text_filter is not None and body:
        body = text_filter(body)
    if type(body) is str and len(body) < 126:  # LogRecord.body has presence: sent even when None
        encoded = body.encode("utf-8")
        n = len(encoded)
        head += (
            (b"\x2a" + SMALL_VARINTS[n + 2] + b"\x0a" + SMALL_VARINTS[n] + encoded) if n < 126 else _encode_body(body)
        )
    else:
        head += _encode_body(body)
    parts = [head]
    encode_attributes(parts, b"\x32", attributes, attribute_filter)
    if dropped:
        parts.append(b"\x38" + varint(dropped))
    # A request's records share its trace context: its fields are kept for the next record.
    last = _last_trace[0]
    if last[0] == span_id and last[1] == trace_id and last[2] == trace_flags:
        parts.append(last[3])
    else:
        flags = int(trace_flags)
        tail = b"\x45" + _pack_u32(flags) if flags else b""
        if trace_id:
            tail += b"\x4a\x10" + trace_id.to_bytes(16, "big")
        if span_id:
            tail += b"\x52\x08" + span_id.to_bytes(8, "big")
        _last_trace[0] = (span_id, trace_id, trace_flags, tail)
        parts.append(tail)
    if observed:
        parts.append(b"\x59" + _pack_u64(observed))
    if event_name:
        parts.append(field_bytes(b"\x62", event_name.encode("utf-8")))
    return _length_prefixed(b"\x12", parts)


def _encode_log_fields(*fields: Any) -> bytes:
    """:func:`encode_log_record` of its thirteen arguments, by the C encoder where it takes the record."""
    in_c = _native_log_record
    data = in_c(*fields) if in_c is not None else None
    return data if data is not None else encode_log_record(*fields)


PlainLog = tuple[Any, ...]
"""A log record queued as its fields by the fast emit, for otelkit's OTLP exporter (:mod:`.emitted`).

The tuple ``(resource, instrumentation_scope, timestamp, observed, trace_id, span_id, trace_flags,
severity_text, severity_number, body, attributes, event_name)``, built in one step by
:meth:`otelkit._runtime.sdk_compat.FastEmit.plain`: the SDK logger's resource and scope, then
:func:`encode_log_record`'s first ten arguments (its dropped count is 0: the fast emit queues this
only for a record whose attributes the SDK keeps as they are, a dict of its own of immutable
values). Queued in place of the SDK's ``ReadableLogRecord`` (none is built for it; nothing else a
processor queues is a tuple) and encoded, with the exporter's filters, by :func:`encode_logs` on
the export thread.
"""


def encode_logs(
    records: Sequence[Any],
    attribute_filter: AttributeFilter | None = None,
    pause: Callable[[], object] | None = None,
    text_filter: TextFilter | None = None,
) -> bytes:
    """Serialize SDK ``ReadableLogRecord``s as an OTLP ``ExportLogsServiceRequest``.

    Args:
        records: What a log record processor hands to an exporter: the SDK's records, or
            :data:`PlainLog` tuples.
        attribute_filter: Applied to each record's attributes before encoding.
        pause: Called after every ``PAUSE_EVERY`` records (see :class:`Pacer`).
        text_filter: Applied to each record's body before encoding.

    Returns:
        The protobuf bytes; they decode to the message ``encode_logs`` of
        opentelemetry-exporter-otlp-proto-common builds.
    """
    plain = sdk_compat.attribute_reader()
    encode_one = _encode_log_fields if _native_log_record is not None else encode_log_record
    groups = Groups()
    for i, record in enumerate(records):
        if pause is not None and i and not i % PAUSE_EVERY:
            pause()
        if type(record) is tuple:  # a PlainLog: queued as its fields by the fast emit
            resource, scope, stamp, observed, trace_id, span_id, flags, level, severity, body, attrs, event = record
            items = groups.items_for(resource, scope or None)
            items.append(
                encode_one(
                    stamp,
                    observed,
                    trace_id,
                    span_id,
                    flags,
                    level,
                    severity,
                    body,
                    attrs,
                    event,
                    attribute_filter,
                    text_filter,
                    0,
                )
            )
        else:
            items = groups.items_for(record.resource, record.instrumentation_scope or None)
            items.append(_encode_log(record, attribute_filter, plain, text_filter))
    return groups.request()


def configure_native(module: Any) -> tuple[native.NativeSpan, native.NativeLogRecord]:
    """The C encoder ``module`` (``cencoder``) given this encoder's tables and fallbacks: its two encoders."""
    return native.configure(
        module,
        kinds=tuple(_KIND.items()),
        status_fields=tuple((code, _STATUS_NO_MESSAGE[id(code)]) for code in StatusCode),
        severities=tuple(
            (s, b"\x10" + varint(s.value) if s.value else b"") for s in sdk_compat.logs_api().SeverityNumber
        ),
        empty_trace_state=_EMPTY_TRACE_STATE,
        encode_attributes=encode_attributes,
        encode_body=_encode_body,
    )


_native_span: native.NativeSpan | None
_native_log_record: native.NativeLogRecord | None
_unused: tuple[native.NativeSpan | None, native.NativeLogRecord | None] = (None, None)
_native_span, _native_log_record = native.load(configure_native, _unused)


ENCODE_SPANS = sdk_compat.register("otlp-spans", probe=sdk_compat.probe_span_encoder, fast=encode_spans, fallback=None)
"""otelkit's span encoder, or None where the installed SDK's exporter cannot take it or encodes otherwise."""

ENCODE_LOGS = sdk_compat.register("otlp-logs", probe=sdk_compat.probe_log_encoder, fast=encode_logs, fallback=None)
"""otelkit's log record encoder, or None (see :data:`ENCODE_SPANS`)."""
