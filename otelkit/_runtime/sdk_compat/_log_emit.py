"""The OTel log handler's emit with the least work: the SDK's record built once and queued directly.

The SDK's path (opentelemetry-instrumentation-logging's ``LoggingHandler.emit``) translates each
stdlib record into an API ``LogRecord`` (reading the context again), looks its ``Logger`` up,
wraps the record in a ``ReadWriteLogRecord`` (cleaning every attribute into a
``BoundedAttributes``), and the batch processor then copies it (``copy.copy``) into the
``ReadableLogRecord`` it queues. :class:`FastEmit` builds that ``ReadableLogRecord`` once and
queues it: loggers cached by name, the attributes dict used as built when the SDK's cleaning
would keep it as is (otherwise the SDK's own ``BoundedAttributes`` cleans it), the message and
trace context taken from the record's facts, read once for all of otelkit's handlers (the caller
passes them in: :mod:`otelkit._runtime.logs.facts`).

Where the logger's one batch processor exports through otelkit's fast OTLP exporter (the caller's
``fields_for`` says so), a record whose attributes the SDK keeps as they are is queued as its
fields alone, a tuple (:data:`otelkit._runtime.otlp.encode.PlainLog`): no SDK objects are built
for it, and the export thread encodes and redacts it with its batch. Any other record, and every
record while the exporter is not built yet or after its encoder was switched off (:func:`replan`),
is queued as above.
A logger with no processor at all (``OTEL_LOGS_EXPORTER=none``) gets nothing built: the SDK would
build each record for no one and only count it (its ``otel.sdk.log.created`` self-metric), so it is counted.

It is used only where it gives what the SDK gives: the provider is the SDK's and its processors
are all ``BatchLogRecordProcessor`` (anything else — a simple processor, a custom one — takes the
SDK's path for that logger's records), and its probe passed (:func:`probe_log_emit`: the same
records through both paths on a throw-away provider, what reaches the queue compared field by
field). The internals it reads are listed in :data:`RELIES_ON`. The feature module registers it
(``log-record`` in :mod:`otelkit._runtime.logs.fastemit`).

Also here: :func:`drop_idle_record_factory`, which reads instrumentation-logging's class fields.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry.context import Context

from otelkit._runtime.sdk_compat._queue import queue_emit
from otelkit._runtime.sdk_compat._registry import missing

PlainLog = tuple[Any, ...]  # otelkit._runtime.otlp.encode.PlainLog (that module imports this one)

__all__ = [
    "RELIES_ON",
    "FactsView",
    "FastEmit",
    "drop_idle_record_factory",
    "probe_record_factory",
    "replan",
]


class FactsView(Protocol):
    """What :class:`FastEmit` reads from a record's shared facts."""

    message: str
    span_context: Any


FactsOf = Callable[[logging.LogRecord], FactsView]
FieldNames = Callable[..., tuple[str, ...]]

RELIES_ON = (
    "opentelemetry.instrumentation.logging.handler: LoggingHandler._is_emitting, _logger_provider, _get_attributes,"
    " _log_code_attributes, _RESERVED_ATTRS,"
    " std_to_otel",
    "opentelemetry.sdk._logs: Logger._multi_log_record_processor/_resource/_instrumentation_scope/"
    "_log_record_limits/_logger_metrics/_is_enabled(), SynchronousMultiLogRecordProcessor._log_record_processors,"
    " BatchLogRecordProcessor._batch_processor.emit, LogRecordLimits.max_log_record_attributes/"
    "max_log_record_attribute_length, ReadableLogRecord's fields, the API LogRecord's fields",
    "opentelemetry.attributes: BoundedAttributes' fields (_dict, maxlen, dropped, max_value_len, _lock, _immutable)",
)
"""What :class:`FastEmit` reads that the SDK does not promise to keep (checked by :func:`probe`)."""


_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}


NativePlain = Callable[..., "PlainLog | None"]
"""The C encoder's ``plain_log``: :meth:`FastEmit.plain`'s tuple for the common record, or None (plain decides)."""

FieldsFor = Callable[[Any], bool]
"""Whether a batch processor's records may be queued as their fields (a ``PlainLog`` tuple), or
must be queued as the SDK's records."""

_generation = [0]


def replan() -> None:
    """Make every fast emit look at its loggers' processors again (an exporter was built or changed)."""
    _generation[0] += 1


class _Plan:
    """How records of one logger name reach the SDK: its Logger and its batch processors' queues."""

    __slots__ = ("as_fields", "emits", "generation", "logger", "multi", "processors")

    def __init__(
        self,
        logger: Any,
        multi: Any,
        processors: Any,
        emits: tuple[Callable[[Any], None], ...] | None,
        as_fields: bool,
    ):
        self.logger = logger
        self.multi = multi
        self.processors = processors
        self.emits = emits  # None: this logger's records take the SDK's path; (): no processor
        self.as_fields = as_fields  # its one processor's exporter takes records as their fields
        self.generation = _generation[0]


class FastEmit:
    """A drop-in ``emit`` for opentelemetry-instrumentation-logging's ``LoggingHandler``.

    Builds the ``ReadableLogRecord`` the SDK's batch processors queue, once, and queues it; takes
    the handler's own ``emit`` (``fallback``) for any logger whose processors are not all
    ``BatchLogRecordProcessor`` and whenever the handler is already emitting (its recursion guard
    then logs its warning, as it would).
    """

    def __init__(
        self,
        handler: logging.Handler,
        fallback: Callable[[logging.LogRecord], None],
        *,
        facts: FactsOf,
        field_names: FieldNames,
        fields_for: FieldsFor | None = None,
        native_plain: NativePlain | None = None,
    ) -> None:
        from opentelemetry._logs import LogRecord
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.instrumentation.logging import handler as handler_module
        from opentelemetry.sdk._logs import Logger, ReadableLogRecord
        from opentelemetry.sdk._logs._internal import SynchronousMultiLogRecordProcessor
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        self.handler = handler
        self.fallback = fallback
        self._facts = facts
        self._field_names = field_names
        self._fields_for = fields_for
        self._provider = handler._logger_provider  # type: ignore[attr-defined]
        self._is_emitting = type(handler)._is_emitting  # type: ignore[attr-defined]
        self._get_attributes = handler._get_attributes  # type: ignore[attr-defined]
        self._code_attributes = bool(handler._log_code_attributes)  # type: ignore[attr-defined]
        self._reserved: frozenset[str] = handler_module._RESERVED_ATTRS
        # The C encoder's plain_log (cencoder.c), given a frozenset of reserved names only.
        self._native_plain = native_plain if type(self._reserved) is frozenset else None
        self._std_to_otel = handler_module.std_to_otel  # type: ignore[attr-defined]
        self._severity: dict[int, Any] = {}
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()
        self._api_record = LogRecord
        self._readable = ReadableLogRecord
        self._bounded = BoundedAttributes
        self._sdk_logger = Logger
        self._sync_multi = SynchronousMultiLogRecordProcessor
        self._batch = BatchLogRecordProcessor
        self._empty_context = Context()

    def _plan(self, name: str) -> _Plan:
        from opentelemetry._logs import get_logger

        logger = get_logger(name, logger_provider=self._provider)
        multi = getattr(logger, "_multi_log_record_processor", None)
        processors = getattr(multi, "_log_record_processors", None)
        emits = None
        if (
            type(logger) is self._sdk_logger
            and type(multi) is self._sync_multi
            and isinstance(processors, tuple)
            and all(type(p) is self._batch for p in processors)
        ):
            emits = tuple(queue_emit(p._batch_processor) for p in processors)  # (): no processor, nothing queued
        as_fields = False
        if emits is not None and processors and len(processors) == 1 and self._fields_for is not None:
            as_fields = bool(self._fields_for(processors[0]))
        plan = _Plan(logger, multi, processors, emits, as_fields)
        with self._lock:
            self._plans[name] = plan
        return plan

    def __call__(self, record: logging.LogRecord) -> None:
        plan = self._plans.get(record.name)
        if (
            plan is None
            or plan.processors is not plan.multi._log_record_processors
            or plan.generation != _generation[0]
        ):
            plan = self._plan(record.name)
        emits = plan.emits
        if emits is not None and not emits:
            # No processor (OTEL_LOGS_EXPORTER=none): the SDK would build the record for no one
            # and only count it, so count it.
            logger = plan.logger
            if logger._is_enabled():
                logger._logger_metrics.emit_log()
            return
        # A record with an exception takes the handler's own path: otelkit's handler reads its
        # trace context from the request the exception escaped (logs/handler.py), and such records are rare.
        if emits is None or record.exc_info or self._is_emitting.get():
            self.fallback(record)
            return
        if plan.as_fields:
            item = self.plain(record, plan.logger)
            if item is not None:
                for emit in emits:
                    emit(item)
                return
        # The handler's recursion guard, for what may run code that logs (a formatter, a value's
        # __str__, a warning about dropped attributes): as the handler's own emit sets it.
        token = self._is_emitting.set(True)
        try:
            readable = self.build(record, plan.logger)
            if readable is not None:
                for emit in emits:
                    emit(readable)
        finally:
            self._is_emitting.reset(token)

    def plain(self, record: logging.LogRecord, logger: Any) -> PlainLog | None:
        """``record`` as its fields alone, for otelkit's OTLP exporter; None: it takes :meth:`build`.

        The ``PlainLog`` tuple ``(resource, instrumentation_scope, timestamp, observed, trace_id,
        span_id, trace_flags, severity_text, severity_number, body, attributes, event_name)``
        (:data:`otelkit._runtime.otlp.encode.PlainLog`), built in one step, nothing of the SDK's
        built for it: for a record whose attributes the SDK keeps as they are (no code attributes
        asked for, no event name, values of plain types within the limits), on a handler with no
        formatter, of an enabled logger. Runs no code but otelkit's and the interpreter's (no
        formatter, no value's ``__str__``, no warning; the message was read by the handler's filter,
        ``logs/handler.py``, and its facts are reused), so it needs no recursion guard.
        """
        if self.handler.formatter is not None or self._code_attributes or not logger._is_enabled():
            return None
        limits = logger._log_record_limits
        native = self._native_plain
        if native is not None:
            item = native(
                record,
                self._facts(record),
                self._reserved,
                limits.max_log_record_attributes,
                limits.max_log_record_attribute_length,
                self._severity,
                _SEVERITY_TEXT,
                logger._resource,
                logger._instrumentation_scope,
            )
            if item is not None:
                logger._logger_metrics.emit_log()
                return item
        attributes = self._own_fields(record)
        if attributes is None or not _kept(attributes, limits):
            return None
        severity = self._severity.get(record.levelno)
        if severity is None:
            severity = self._severity[record.levelno] = self._std_to_otel(record.levelno)
        f = self._facts(record)
        span_context = f.span_context
        logger._logger_metrics.emit_log()
        return (
            logger._resource,
            logger._instrumentation_scope,
            int(record.created * 1e9),
            time.time_ns(),
            span_context.trace_id,
            span_context.span_id,
            span_context.trace_flags,
            _SEVERITY_TEXT.get(record.levelname, record.levelname),
            severity,
            f.message,
            attributes,
            None,
        )

    def build(self, record: logging.LogRecord, logger: Any) -> Any:
        """The ``ReadableLogRecord`` the SDK's batch processor would queue for ``record``; None if disabled."""
        if not logger._is_enabled():
            return None
        handler = self.handler
        severity = self._severity.get(record.levelno)
        if severity is None:
            severity = self._severity[record.levelno] = self._std_to_otel(record.levelno)
        f = self._facts(record)
        body = handler.format(record) if handler.formatter else f.message
        limits = logger._log_record_limits
        attributes, event_name, kept = self._record_attributes(record, limits)
        span_context = f.span_context
        severity_text = _SEVERITY_TEXT.get(record.levelname, record.levelname)
        bounded = self._attributes(attributes, limits, kept)
        log = self._api_record.__new__(self._api_record)
        # The fields LogRecord.__init__ sets, in its order, as the batch processor's copy has them.
        log.__dict__ = {
            "timestamp": int(record.created * 1e9),
            "observed_timestamp": time.time_ns(),
            "context": self._empty_context,
            "trace_id": span_context.trace_id,
            "span_id": span_context.span_id,
            "trace_flags": span_context.trace_flags,
            "severity_text": severity_text,
            "severity_number": severity,
            "body": body,
            "attributes": bounded,
            "event_name": event_name,
            "exception": None,
        }
        if bounded.dropped:
            import warnings

            from opentelemetry.sdk._logs import LogRecordDroppedAttributesWarning

            warnings.warn(
                "Log record attributes were dropped due to limits", LogRecordDroppedAttributesWarning, stacklevel=2
            )
        readable = self._readable.__new__(self._readable)
        object.__setattr__(  # a frozen dataclass: its own __setattr__ refuses
            readable,
            "__dict__",
            {
                "log_record": log,
                "resource": logger._resource,
                "instrumentation_scope": logger._instrumentation_scope,
                "limits": limits,
            },
        )
        logger._logger_metrics.emit_log()
        return readable

    def _record_attributes(self, record: logging.LogRecord, limits: Any) -> tuple[dict[str, Any], Any, bool]:
        """What the handler's ``_get_attributes`` returns (the record's own fields, the event name),
        and whether the SDK keeps them as they are: every value of a type it takes as it is, none
        dropped or truncated by ``limits``.

        The common record (no code attributes asked for, no event name, plain values) is read here
        from the fields of its shape; any other goes through the handler's ``_get_attributes``,
        which otelkit's handler wraps to convert values the SDK would refuse (logs/handler.py).
        """
        if not self._code_attributes:
            attributes = self._own_fields(record)
            if attributes is not None:
                kept = _kept(attributes, limits)
                if kept is not None:
                    return attributes, None, kept
        attributes, event_name = self._get_attributes(record)
        return attributes, event_name, False

    def _own_fields(self, record: logging.LogRecord) -> dict[str, Any] | None:
        """The record's ``extra=`` fields (private ones too) in a dict of their own, as the handler's
        ``_get_attributes`` reads them; None if one names an event (that one sets the event name)."""
        fields = record.__dict__
        attributes = {}
        for name in self._field_names(fields, self._reserved, private=True):  # a loop: no iterator objects made
            attributes[name] = fields[name]
        # Neither key the handler takes a record's event name from (two lookups, no set made).
        if "event.name" in attributes or "otel.event.name" in attributes:
            return None
        return attributes

    def _attributes(self, attributes: dict[str, Any], limits: Any, kept: bool) -> Any:
        maxlen = limits.max_log_record_attributes
        max_value_len = limits.max_log_record_attribute_length
        if kept:
            # What BoundedAttributes(maxlen, attributes, immutable=False, max_value_len) holds when
            # cleaning changes nothing: the dict itself (built for this record alone), nothing dropped.
            bounded = self._bounded.__new__(self._bounded)
            bounded.__dict__ = {
                "_dict": attributes,
                "maxlen": maxlen,
                "dropped": 0,
                "max_value_len": max_value_len,
                "_lock": threading.Lock(),
                "_immutable": False,
            }
            return bounded
        return self._bounded(maxlen, attributes or None, immutable=False, max_value_len=max_value_len)


_PLAIN_TYPES = frozenset((str, int, float, bool, bytes, type(None)))


def _kept(attributes: dict[str, Any], limits: Any) -> bool | None:
    """Whether the SDK keeps ``attributes`` as they are under ``limits`` (none dropped, no string
    truncated); None when a key or value is one its cleaning would change or refuse (not plain).

    One pass over the values: twice a request, a loop (no generator to resume).
    """
    plain = _PLAIN_TYPES
    max_value_len = limits.max_log_record_attribute_length
    short = True
    for key, value in attributes.items():
        kind = type(value)
        if kind not in plain or key == "":
            return None
        if kind is str and max_value_len is not None and len(value) > max_value_len:
            short = False
    maxlen = limits.max_log_record_attributes
    return short and (maxlen is None or len(attributes) <= maxlen)


def drop_idle_record_factory(kwargs: dict[str, Any]) -> bool:
    """Put the record factory back that instrumentation-logging wrapped, when its wrapper does nothing.

    ``LoggingInstrumentor`` wraps ``logging``'s record factory to add trace fields to each record
    when ``OTEL_PYTHON_LOG_CORRELATION``/``set_logging_format``/``inject_trace_context`` or a
    ``log_hook`` asks for it, and otherwise only calls the factory it wrapped: one more Python call
    for every record. Its options are read once, at ``instrument()``; with none of them set the
    wrapper is dropped (uninstrumenting restores the same factory). Checked, not assumed: a record
    from the wrapper must have exactly the fields of one from the wrapped factory.
    """
    import os

    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    correlation = os.environ.get("OTEL_PYTHON_LOG_CORRELATION", "false").lower() == "true"
    if kwargs.get("set_logging_format", correlation) or kwargs.get("inject_trace_context", False):
        return False
    if callable(getattr(LoggingInstrumentor, "_log_hook", None)):
        return False
    wrapped = getattr(LoggingInstrumentor, "_old_factory", None)
    current = logging.getLogRecordFactory()
    if wrapped is None or current is wrapped:
        return False
    if getattr(current, "__qualname__", "") != "LoggingInstrumentor._instrument.<locals>.record_factory":
        return False  # someone else's factory came after it: leave the chain alone
    probe_args = ("otelkit.probe", logging.INFO, __file__, 1, "probe", (), None)
    if list(vars(current(*probe_args))) != list(vars(wrapped(*probe_args))):
        return False
    logging.setLogRecordFactory(wrapped)
    return True


def probe_record_factory(fast: Any) -> str | None:
    """The probe of :func:`drop_idle_record_factory`: the class fields it reads are there."""
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    return missing(LoggingInstrumentor, ("_old_factory", "_log_hook"))
