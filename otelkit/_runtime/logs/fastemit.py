"""The fast paths of the log record: the OTel handler's emit, and instrumentation-logging's idle record factory.

Both are SDK-compat fast paths (:mod:`otelkit._runtime.sdk_compat`), registered here with the
record facts otelkit's handlers share (:mod:`otelkit._runtime.logs.facts`):

- ``log-record``: :func:`speed_up` gives the instrumentation's ``LoggingHandler`` the fast emit
  (:class:`otelkit._runtime.sdk_compat.FastEmit`: the SDK's record built once and queued
  directly), when its probe passed; otherwise the handler keeps the SDK's own ``emit``.
- ``idle-record-factory``: :func:`drop_idle_record_factory` puts ``logging``'s record factory back
  when instrumentation-logging's wrapper around it adds nothing.
"""

from __future__ import annotations

import functools
import logging
import weakref
from typing import Any

from otelkit._runtime import sdk_compat
from otelkit._runtime.logs.facts import facts, field_names
from otelkit._runtime.otlp import native

__all__ = [
    "IDLE_RECORD_FACTORY",
    "LOG_RECORD",
    "drop_idle_record_factory",
    "fast_emit",
    "queue_as_fields",
    "speed_up",
]

_BUILT_WITH: dict[str, Any] = {
    "facts": facts,
    "field_names": field_names,
    # The C encoder's plain_log (cencoder.c): a record queued as its fields, built in one call.
    "native_plain": native.load(lambda module: module.plain_log, None),
}


def _keep_factory(kwargs: dict[str, Any]) -> bool:
    return False


LOG_RECORD: sdk_compat.FastPath[type[sdk_compat.FastEmit] | None] = sdk_compat.register(
    "log-record",
    probe=functools.partial(sdk_compat.probe_log_emit, **_BUILT_WITH),
    fast=sdk_compat.FastEmit,
    fallback=None,  # the handler's own emit
)

IDLE_RECORD_FACTORY = sdk_compat.register(
    "idle-record-factory",
    probe=sdk_compat.probe_record_factory,
    fast=sdk_compat.drop_idle_record_factory,
    fallback=_keep_factory,
)


# otelkit's batch log record processors -> their deferred OTLP exporters (see queue_as_fields)
_exporters: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def queue_as_fields(processor: Any, exporter: Any) -> None:
    """Let the fast emit queue the records for ``processor`` (a ``BatchLogRecordProcessor``) as their fields.

    ``exporter`` is the processor's :class:`otelkit._runtime.deferred.DeferredExporter`. Once it is
    built, and only if it is otelkit's fast OTLP exporter with its encoder on, a plain record is
    queued as its fields alone (:data:`otelkit._runtime.otlp.encode.PlainLog`: no SDK record
    built), which the export thread encodes and redacts; until then, and otherwise, records are
    queued as the SDK's ``ReadableLogRecord``.
    """
    _exporters[processor] = exporter
    exporter.when_built(sdk_compat.replan)


def _fields_for(processor: Any) -> bool:
    exporter = _exporters.get(processor)
    if exporter is None:
        return False
    takes_fields = getattr(exporter.built(), "takes_fields", None)  # only otelkit's FastOTLPLogExporter has it
    return bool(takes_fields()) if takes_fields is not None else False


def fast_emit(handler: logging.Handler) -> sdk_compat.FastEmit:
    """The fast emit for ``handler`` (falling back to its own ``emit``), whether or not the probe passed."""
    return sdk_compat.FastEmit(handler, handler.emit, fields_for=_fields_for, **_BUILT_WITH)


def speed_up(handler: logging.Handler) -> bool:
    """Give ``handler`` (the instrumentation's ``LoggingHandler``) the fast emit when its probe passed.

    Idempotent. Returns whether the fast emit is in use. Never raises.
    """
    if isinstance(handler.__dict__.get("emit"), sdk_compat.FastEmit):
        return True
    try:
        if LOG_RECORD.get() is None:
            return False
        handler.emit = fast_emit(handler)  # type: ignore[method-assign]
        return True
    except Exception as exc:
        LOG_RECORD.switch_off(f"{type(exc).__name__}: {exc}")
        return False


def drop_idle_record_factory(kwargs: dict[str, Any]) -> bool:
    """Put back the record factory instrumentation-logging wrapped when its wrapper adds nothing; never raises."""
    try:
        return IDLE_RECORD_FACTORY.get()(kwargs)
    except Exception as exc:
        IDLE_RECORD_FACTORY.switch_off(f"{type(exc).__name__}: {exc}")
        return False
