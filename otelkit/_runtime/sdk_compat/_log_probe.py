"""The probe of the fast log emit: the same records through the SDK's path and the fast one, compared.

:func:`probe_log_emit` builds a throw-away ``LoggerProvider`` whose one batch processor never starts a
thread (its queue is replaced by a list that keeps what it is given), emits a set of records —
plain ``extra=`` fields, nested ones, an exception, an event name, ``%``-arguments, odd levels,
inside and outside a span with a request id — once through the instrumentation handler's own
``emit`` and once through the fast emit (:class:`otelkit._runtime.sdk_compat._log_emit.FastEmit`), and
compares what reached the queue field by field (:func:`differences`). The tests use it too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["differences", "probe_log_emit", "probe_records", "queue_of"]


class _Queue:
    """Stands in for a batch processor's ``BatchProcessor``: keeps what ``emit`` is given."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def emit(self, item: Any) -> None:
        self.items.append(item)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        return True

    def shutdown(self, timeout_millis: int = 30000) -> None:
        pass


def queue_of(provider: Any) -> _Queue:
    """Add a ``BatchLogRecordProcessor`` to ``provider`` whose queue is a :class:`_Queue` (no thread)."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    processor = BatchLogRecordProcessor.__new__(BatchLogRecordProcessor)
    queue = _Queue()
    processor._batch_processor = queue  # type: ignore[assignment]
    provider.add_log_record_processor(processor)
    return queue


def _attributes_view(attributes: Any) -> Any:
    from opentelemetry.attributes import BoundedAttributes

    if type(attributes) is not BoundedAttributes:
        return (type(attributes).__name__, attributes)
    return (
        "BoundedAttributes",
        sorted(vars(attributes)),
        list(attributes._dict.items()),
        attributes.dropped,
        attributes.maxlen,
        attributes.max_value_len,
        attributes._immutable,
    )


def differences(sdk: Any, fast: Any) -> str | None:
    """None when ``fast`` is what the SDK queued (``sdk``), field by field; else the first difference.

    ``observed_timestamp`` is the clock when each was built: compared for presence only.
    """
    if type(sdk) is not type(fast):
        return f"queued types differ: SDK {type(sdk).__name__}, fast {type(fast).__name__}"
    for name in ("resource", "instrumentation_scope", "limits"):
        if getattr(sdk, name) != getattr(fast, name):
            return f"{name} differs: SDK {getattr(sdk, name)!r}, fast {getattr(fast, name)!r}"
    a, b = sdk.log_record, fast.log_record
    if type(a) is not type(b):
        return f"log record types differ: SDK {type(a).__name__}, fast {type(b).__name__}"
    if list(vars(a)) != list(vars(b)):
        return f"log record fields differ: SDK {list(vars(a))}, fast {list(vars(b))}"
    for name, value in vars(a).items():
        other = vars(b)[name]
        if name == "observed_timestamp":
            if not (isinstance(value, int) and isinstance(other, int) and value and other):
                return f"observed_timestamp: SDK {value!r}, fast {other!r}"
        elif name == "attributes":
            if _attributes_view(value) != _attributes_view(other):
                return f"attributes differ: SDK {_attributes_view(value)!r}, fast {_attributes_view(other)!r}"
        elif name == "context":
            if dict(value) != dict(other) or type(value) is not type(other):
                return f"context differs: SDK {value!r}, fast {other!r}"
        elif value != other or type(value) is not type(other):
            return f"{name} differs: SDK {value!r}, fast {other!r}"
    return None


_ACCESS_ARGS = ("127.0.0.1:5", "GET", "/x?a=1", "1.1", 200)
_SCALARS = {"ratio": 0.5, "ok": True, "raw": b"\x00", "none": None}


def probe_records() -> list[tuple[logging.LogRecord, bool]]:
    """``(record, in a span)`` pairs covering what the fast path handles and what it hands to the SDK."""
    try:
        raise ValueError("probe failure")
    except ValueError:
        exc_info = sys.exc_info()
    made: list[tuple[str, int, str, tuple[Any, ...], Any, dict[str, Any] | None, bool]] = [
        ("bench.app", logging.INFO, "read item", (), None, {"item_id": 7, "request.id": "4bf92f3577b34da6"}, True),
        (
            "uvicorn.access",
            logging.INFO,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5", "GET", "/x?a=1", "1.1", 200),
            None,
            None,
            True,
        ),
        ("app", logging.WARNING, "nested", (), None, {"user": {"id": 1, "roles": ["a", "b"]}, "tags": ["x", 2]}, True),
        (
            "app",
            logging.ERROR,
            "failed %s",
            ("x",),
            exc_info,
            {"ratio": 0.5, "ok": True, "raw": b"\x00", "none": None},
            True,
        ),
        ("app", logging.CRITICAL, "event", (), None, {"otel.event.name": "app.started", "event.name": "old"}, False),
        ("app", 25, "custom level é ☃", (), None, {"long": "x" * 300}, False),
        ("app", 5, "below debug", (), None, {"obj": object()}, False),
    ]
    out = []
    for name, level, msg, args, exc, extra, in_span in made:
        record = logging.LogRecord(name, level, __file__, 1, msg, args, exc)
        if extra:
            record.__dict__.update(extra)
        out.append((record, in_span))
    return out


@contextmanager
def _in_span(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    from opentelemetry import baggage, context, trace

    span = trace.NonRecordingSpan(
        trace.SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False, trace.TraceFlags(1))
    )
    token = context.attach(baggage.set_baggage("request.id", "4bf92f3577b34da6", trace.set_span_in_context(span)))
    try:
        yield
    finally:
        context.detach(token)


def probe_log_emit(fast_emit: Callable[..., Any], **options: Any) -> str | None:
    """None when ``fast_emit`` (``FastEmit``) queues what the SDK queues for every probe record; else why not.

    An SDK-compat probe: called with the fast implementation; ``options`` are the keywords it is
    built with (the record facts and field names of :mod:`otelkit._runtime.logs.facts`).
    """
    import copy
    import warnings

    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource({"service.name": "otelkit-probe"}), shutdown_on_exit=False)
    queue = queue_of(provider)
    sdk_handler = LoggingHandler(logger_provider=provider)
    fast_handler = LoggingHandler(logger_provider=provider)
    fast = fast_emit(fast_handler, fast_handler.emit, **options)
    sdk_items, fast_items = [], []
    quiet = logging.getLogger("opentelemetry.attributes")
    was = quiet.disabled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns about the odd values on purpose here
        quiet.disabled = True
        try:
            for record, in_span in probe_records():
                with _in_span(in_span):
                    sdk_handler.emit(copy.copy(record))
                    sdk_items.extend(queue.items)
                    queue.items.clear()
                    fast(copy.copy(record))
                    fast_items.extend(queue.items)
                    queue.items.clear()
        finally:
            quiet.disabled = was
    sdk_queue, fast_queue = sdk_items, fast_items
    if len(sdk_queue) != len(fast_queue):
        return f"queued {len(fast_queue)} records where the SDK queued {len(sdk_queue)}"
    for sdk_item, fast_item in zip(sdk_queue, fast_queue, strict=True):
        reason = differences(sdk_item, fast_item)
        if reason is not None:
            return reason
    return None
