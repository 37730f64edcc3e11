"""Finished spans and attribute mappings as the encoder reads them; the probes' throw-away provider and spans."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from otelkit._runtime.sdk_compat._probes import probe_log_records, probe_spans
from otelkit._runtime.sdk_compat._registry import differs, missing, register

__all__ = [
    "ATTRIBUTES_LIKE",
    "ATTRIBUTE_DICT",
    "SPAN_FIELDS",
    "SpanFields",
    "attribute_reader",
    "attributes_like",
    "span_reader",
]


SpanFields = tuple[Any, ...]
"""``(context, parent, name, kind, start, end, attributes, dropped attributes, events, dropped events,
links, dropped links, status, resource, scope)`` of a finished span; ``attributes`` a plain mapping."""


class _Sdk:
    """SDK classes the fast readers compare with, imported by :func:`_load` (each probe runs it first)."""

    ReadableSpan: Any = None
    BoundedAttributes: Any = None
    BoundedList: Any = None


def _load() -> None:
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util import BoundedList

    _Sdk.BoundedAttributes, _Sdk.BoundedList, _Sdk.ReadableSpan = BoundedAttributes, BoundedList, ReadableSpan


def _read_public(span: Any) -> SpanFields:
    return (
        span.get_span_context(),
        span.parent,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        span.attributes,
        span.dropped_attributes,
        span.events,
        span.dropped_events,
        span.links,
        span.dropped_links,
        span.status,
        span.resource,
        span.instrumentation_scope,
    )


def _read_private(span: Any) -> SpanFields:
    if type(span) is not _Sdk.ReadableSpan:  # what the SDK's processors pass; anything else: its properties
        return _read_public(span)
    # The properties copy, and BoundedList's Python-level __iter__ costs more than the rest of a span;
    # the span has ended, so its containers no longer change.
    attributes = span._attributes
    if type(attributes) is _Sdk.BoundedAttributes:
        dropped_attributes = attributes.dropped
        attributes = attributes._dict
    else:
        dropped_attributes = attributes.dropped if isinstance(attributes, _Sdk.BoundedAttributes) else 0
    events = span._events
    if type(events) is _Sdk.BoundedList:
        dropped_events = events.dropped
        events = events._dq
    else:
        dropped_events = events.dropped if isinstance(events, _Sdk.BoundedList) else 0
    links = span._links
    if type(links) is _Sdk.BoundedList:
        dropped_links = links.dropped
        links = links._dq
    else:
        dropped_links = links.dropped if isinstance(links, _Sdk.BoundedList) else 0
    return (
        span._context,
        span._parent,
        span._name,
        span._kind,
        span._start_time,
        span._end_time,
        attributes,
        dropped_attributes,
        events,
        dropped_events,
        links,
        dropped_links,
        span._status,
        span._resource,
        span._instrumentation_scope,
    )


def _comparable(fields: SpanFields) -> tuple[Any, ...]:
    def plain(items: Any) -> list[Any]:
        return [
            (getattr(x, "name", None), getattr(x, "timestamp", None), getattr(x, "context", None), dict(x.attributes))
            for x in items
        ]

    status = fields[12]
    return (
        *fields[:6],
        list(fields[6].items()),
        fields[7],
        plain(fields[8]),
        fields[9],
        plain(fields[10]),
        fields[11],
        (status.status_code, status.description),
        fields[13],
        fields[14],
    )


def _probe_span_fields(fast: Callable[[Any], SpanFields]) -> str | None:
    _load()
    for span in probe_spans():
        reason = missing(span, ("_context", "_parent", "_name", "_kind", "_attributes", "_events", "_links"))
        reason = reason or differs("span fields", _comparable(fast(span)), _comparable(_read_public(span)))
        if reason is not None:
            return reason
    return None


SPAN_FIELDS = register("span-fields", probe=_probe_span_fields, fast=_read_private, fallback=_read_public)


def span_reader() -> Callable[[Any], SpanFields]:
    """A function giving a finished span's :data:`SpanFields` (look it up once per batch, use it per span)."""
    return SPAN_FIELDS.get()


def _plain_public(attributes: Any) -> Mapping[str, Any]:
    return attributes  # type: ignore[no-any-return]


def _plain_private(attributes: Any) -> Mapping[str, Any]:
    # BoundedAttributes is a MutableMapping: its own dict iterates without a Python-level __getitem__ per key.
    return attributes._dict if type(attributes) is _Sdk.BoundedAttributes else attributes  # type: ignore[no-any-return]


def _probe_attribute_dict(fast: Callable[[Any], Mapping[str, Any]]) -> str | None:
    from opentelemetry.attributes import BoundedAttributes

    _load()
    bounded = BoundedAttributes(maxlen=3, attributes={"b": 1, "a": ("x",), "c": "s"}, immutable=True)
    return differs("attributes", list(fast(bounded).items()), list(bounded.items()))


ATTRIBUTE_DICT = register("attribute-dict", probe=_probe_attribute_dict, fast=_plain_private, fallback=_plain_public)


def attribute_reader() -> Callable[[Any], Mapping[str, Any]]:
    """A function giving an attribute mapping as a plain mapping (``BoundedAttributes``' own dict, not a copy)."""
    return ATTRIBUTE_DICT.get()


def _like_private(original: Any, new: Mapping[str, Any]) -> Any:
    options: dict[str, Any] = {}
    if hasattr(original, "_extended_attributes"):  # 1.40-1.44: log attributes are "extended" (any value)
        options["extended_attributes"] = original._extended_attributes
    bounded = _Sdk.BoundedAttributes(maxlen=None, attributes=new, immutable=True, **options)
    bounded.dropped = original.dropped
    return bounded


def _like_public(original: Any, new: Mapping[str, Any]) -> Any:
    return new  # every value kept; the dropped-attributes count is not


def _probe_attributes_like(fast: Callable[[Any, Mapping[str, Any]], Any]) -> str | None:
    _load()
    (record, *_) = probe_log_records()
    original = record.log_record.attributes
    original.dropped = 2
    new = {**original, "s": "scrubbed"}
    like = fast(original, new)
    return differs("attributes", (dict(like), like.dropped), (new, 2))


ATTRIBUTES_LIKE = register("attributes-like", probe=_probe_attributes_like, fast=_like_private, fallback=_like_public)


def attributes_like(original: Any, new: Mapping[str, Any]) -> Any:
    """``new`` as attributes of ``original``'s kind: ``BoundedAttributes``, its dropped count, its value rules."""
    return ATTRIBUTES_LIKE.get()(original, new)
