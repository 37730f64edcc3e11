"""The facts of one log record that otelkit's handlers share, and a record's own fields.

In the default deployment every request writes two log records and each goes to two handlers:
the OTel ``LoggingHandler`` and a console line. Both need the message, the active span's context
and the request id; :func:`facts` reads them once, for whichever handler sees the record first.
:func:`field_names` finds a record's ``extra=`` fields without testing each of its standard ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context

from otelkit._runtime import sdk_compat
from otelkit.context import REQUEST_ID_KEY, exception_context

__all__ = ["RecordFacts", "facts", "field_names"]


class RecordFacts:
    """What otelkit's handlers need from one record, computed once."""

    __slots__ = ("args", "context", "message", "msg", "record", "request_id", "span_context")

    def __init__(self, record: logging.LogRecord, context: Context) -> None:
        self.record = record
        self.context = context
        self.msg = record.msg
        self.args = record.args
        self.message = record.getMessage()
        # The record of an exception that escaped a request after it ended (uvicorn's "Exception in
        # ASGI application") carries the request's context on the exception: that one is read.
        read = (exception_context(record) if record.exc_info else None) or context
        self.span_context, self.request_id = sdk_compat.record_context(read, REQUEST_ID_KEY)


_last: list[RecordFacts | None] = [None]


def _first_current() -> Context:
    # The first record finds how the current context is read (the context variable's own get,
    # where sdk_compat's probe allows it), and every later one reads it that way.
    getter = sdk_compat.current_context_getter()
    _current[0] = getter
    return getter()  # type: ignore[no-any-return]


_current: list[Callable[[], Context]] = [_first_current]


def facts(record: logging.LogRecord) -> RecordFacts:
    """The facts of ``record``, computed by the first otelkit handler that asks, reused by the next.

    One slot, compared by identity: the record (the slot holds a reference, so its id cannot be
    reused while cached), its ``msg`` and ``args`` (a filter that rewrote the message makes them
    be read again) and the active context (a record handled again elsewhere, e.g. by a queue
    listener, is read in that context, as before). Two threads logging at once only recompute.
    """
    last = _last[0]
    context = _current[0]()
    if (
        last is not None
        and last.record is record
        and last.context is context
        and last.msg is record.msg
        and last.args is record.args
    ):
        return last
    new = RecordFacts(record, context)
    _last[0] = new
    return new


_shapes: dict[tuple[frozenset[str], bool, tuple[str, ...]], tuple[str, ...]] = {}


def field_names(fields: dict[str, Any], reserved: frozenset[str], *, private: bool = False) -> tuple[str, ...]:
    """The names in ``fields`` (a record's ``__dict__``) not in ``reserved``, in order; ``_private`` ones too if asked.

    Records of one call site have the same fields in the same order (LogRecord's own, then the
    ``extra=`` ones): the answer is kept per such shape, so a record costs one tuple of its
    names instead of a test of each of its ~20 standard fields. At most 1024 shapes are kept.
    """
    shape = tuple(fields)
    key = (reserved, private, shape)
    names = _shapes.get(key)
    if names is None:
        names = tuple(k for k in shape if k not in reserved and (private or not k.startswith("_")))
        if len(_shapes) >= 1024:
            _shapes.clear()
        _shapes[key] = names
    return names
