"""otelkit's log record path exports what the SDK's own path exports, for less work per record.

Both paths run through real SDK pipelines (``LoggerProvider`` → ``BatchLogRecordProcessor`` →
exporter); what the exporters get is encoded with otelkit's encoder (with the redaction filter
the OTLP exporter uses) and with the SDK's, decoded with opentelemetry-proto and compared field by
field, the observed timestamp aside (each path reads the clock itself).
"""

from __future__ import annotations

import collections
import copy
import datetime
import io
import json
import logging
import random
import sys
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator
from http import HTTPStatus
from importlib.metadata import version
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_build import build_cencoder
from opentelemetry import baggage, context, trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as sdk_encode_logs
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otelkit._runtime import redact as _redact
from otelkit._runtime import sdk_compat, state
from otelkit._runtime.logs import console, facts, fastemit, line
from otelkit._runtime.logs import handler as loghandler
from otelkit._runtime.otlp.emitted import sdk_records
from otelkit._runtime.otlp.encode import encode_logs
from otelkit._runtime.redact_exporters import redact_log_records
from otelkit._runtime.sdk_compat import _log_emit
from otelkit._runtime.sdk_compat import _log_probe as checks
from otelkit.context import EXCEPTION_CONTEXT_ATTRIBUTE, exception_context, request_context

RESOURCE = Resource.create({"service.name": "t"})


class _Keep(LogRecordExporter):
    """What a batch processor exports, kept (the in-memory exporter copies nothing either)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    def export(self, batch: Any) -> LogRecordExportResult:
        self.batches.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _release(distribution: str) -> tuple[int, int]:
    major, minor = version(distribution).split(".")[:2]
    return int(major), int(minor.split("b")[0])


# instrumentation-logging 0.61 has no LoggingHandler._is_emitting: the fast emit is off there.
FAST_EMIT_POSSIBLE = _release("opentelemetry-instrumentation-logging") >= (0, 62)


def _fields_for(processor: Any) -> bool:
    """otelkit's fast OTLP log exporter takes records as their fields."""
    return True


def _pipeline(
    *, fast: bool, limits: LogRecordLimits | None = None, at_emit: bool = False
) -> tuple[logging.Handler, _Keep, LoggerProvider]:
    """A real pipeline; ``fast``: with what otelkit gives the handler (the fast emit where the release allows it);
    ``at_emit``: the fast emit queueing records as their fields, as for otelkit's fast OTLP exporter."""
    options: dict[str, Any] = {} if limits is None else {"log_record_limits": limits}
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False, **options)
    kept = _Keep()
    provider.add_log_record_processor(BatchLogRecordProcessor(kept, schedule_delay_millis=60_000))
    handler = LoggingHandler(logger_provider=provider)
    # What otelkit's prepare_otel_handler does to it, without its global side effects: the request
    # id filter, values converted for the SDK, the late exception's request context.
    handler.addFilter(loghandler._DropOtelInternal())
    loghandler._convert_attribute_values(handler)
    if at_emit:
        assert FAST_EMIT_POSSIBLE
        handler.emit = sdk_compat.FastEmit(  # type: ignore[method-assign]
            handler, handler.emit, fields_for=_fields_for, **fastemit._BUILT_WITH
        )
    elif fast:
        assert fastemit.speed_up(handler) is FAST_EMIT_POSSIBLE, fastemit.LOG_RECORD.reason
    return handler, kept, provider


def _fast_emit_is_on() -> bool:
    """True where the installed release allows the fast emit; elsewhere, checks that the handler keeps the SDK's."""
    if FAST_EMIT_POSSIBLE:
        return True
    handler, _, _ = _pipeline(fast=True)
    assert "emit" not in handler.__dict__
    assert "has no attribute '_is_emitting'" in str(fastemit.LOG_RECORD.reason)
    return False


@pytest.fixture
def in_request() -> Iterator[Any]:
    span = TracerProvider(shutdown_on_exit=False).get_tracer("otelkit.asgi").start_span("GET /items/{item_id}")
    token = context.attach(request_context(span, "4bf92f3577b34da6"))
    yield span
    context.detach(token)


def _records() -> list[logging.LogRecord]:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()

    def make(name: str, level: int, msg: str, args: tuple[Any, ...] = (), exc: Any = None, **extra: Any) -> Any:
        record = logging.LogRecord(name, level, __file__, 10, msg, args, exc)
        record.__dict__.update(extra)
        return record

    return [
        make("bench.app", logging.INFO, "read item", item_id=7),
        make("uvicorn.access", logging.INFO, '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/i/1", "1.1", 200)),
        make("app", logging.INFO, "login", user="ana", password="hunter2", token="t0k3n"),
        make("app", logging.INFO, "calling %s with Authorization: Bearer abc.def.ghi", ("https://u:pw@api.example",)),
        make("app", logging.WARNING, "nested", user={"id": 1, "api_key": "k", "roles": ["a", "b"]}, tags=["x", 2]),
        make("app", logging.ERROR, "failed %s", ("job",), exc_info, ratio=0.5, ok=True, raw=b"\x00", nothing=None),
        make("app", logging.CRITICAL, "event", **{"otel.event.name": "app.started", "event.name": "old"}),
        make("app", 25, "custom level é ☃", long="x" * 300),
        make("app", 5, "below debug", obj=object()),
        make("uvicorn.error", logging.INFO, "Started", color_message="\x1b[32mStarted\x1b[0m"),
        make("app", logging.INFO, "own request id", **{"request.id": "mine"}),
        make("app", logging.INFO, "", _private="kept by the SDK", **{"": "empty key"}),
        make("celery.app.trace", logging.INFO, "Task %(name)s succeeded", ({"name": "t"},), eta=_WHEN, ref=_REF),
        make("uvicorn.error", logging.ERROR, "Exception in ASGI application", (), _late_exception()),
    ]


_WHEN = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


class _Target:
    pass


_KEEP = _Target()
_REF = weakref.proxy(_KEEP)


def _late_exception() -> Any:
    """exc_info of an exception that escaped a request after it ended: the request's context on it."""
    span = trace.NonRecordingSpan(
        trace.SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, trace.TraceFlags(1))
    )
    ctx = baggage.set_baggage("request.id", "late-request", trace.set_span_in_context(span))
    try:
        raise RuntimeError("escaped")
    except RuntimeError as error:
        setattr(error, EXCEPTION_CONTEXT_ATTRIBUTE, ctx)
        return sys.exc_info()


def _emit_all(handler: logging.Handler, provider: LoggerProvider, records: list[logging.LogRecord]) -> None:
    for record in records:
        handler.handle(copy.copy(record))
    provider.force_flush()


def _decoded(data: bytes) -> ExportLogsServiceRequest:
    message = ExportLogsServiceRequest()
    message.ParseFromString(data)
    for rl in message.resource_logs:
        for sl in rl.scope_logs:
            for record in sl.log_records:
                assert record.observed_time_unix_nano > 0
                record.observed_time_unix_nano = 0
    return message


def _both(records: list[logging.LogRecord], at_emit: bool = False, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    """What each path exports for ``records``; both must warn alike (the SDK warns of dropped attributes)."""
    out, warned = [], []
    for fast in (False, True):
        handler, kept, provider = _pipeline(fast=fast, at_emit=at_emit and fast, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _emit_all(handler, provider, records)
        out.append(kept.batches)
        warned.append([(w.category, str(w.message)) for w in caught])
    assert warned[1] == warned[0]
    return out[0], out[1]


@pytest.mark.parametrize("encoder", ["otelkit", "sdk"])
@pytest.mark.parametrize("with_span", [True, False], ids=["in_request", "no_span"])
def test_fast_emit_exports_what_the_sdk_exports(encoder: str, with_span: bool, request: Any) -> None:
    if with_span:
        request.getfixturevalue("in_request")
    records = _records()
    sdk, fast = _both(records)
    assert len(sdk) == len(fast) == len(records)
    if encoder == "otelkit":  # the OTLP exporter's encoder, redacting as it does
        sdk_msg = _decoded(encode_logs(sdk, _redact.redact_attributes, text_filter=_redact.redact_body))
        fast_msg = _decoded(encode_logs(fast, _redact.redact_attributes, text_filter=_redact.redact_body))
    else:
        sdk_msg = _decoded(sdk_encode_logs(sdk).SerializeToString())
        fast_msg = _decoded(sdk_encode_logs(fast).SerializeToString())
    sdk_logs = [r for rl in sdk_msg.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    fast_logs = [r for rl in fast_msg.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert len(fast_logs) == len(records)
    for sdk_record, fast_record in zip(sdk_logs, fast_logs, strict=True):
        assert fast_record == sdk_record
    assert fast_msg == sdk_msg
    first = {a.key: a.value for a in fast_logs[0].attributes}
    assert first["item_id"].int_value == 7
    if with_span:
        assert first["request.id"].string_value == "4bf92f3577b34da6"
        assert fast_logs[0].trace_id != b"\0" * 16
    if encoder == "otelkit":
        login = {a.key: a.value.string_value for a in fast_logs[2].attributes}
        assert login["password"] == login["token"] == _redact.REDACTED
        assert login["user"] == "ana"
        (body,) = [r.body.string_value for r in fast_logs if "Authorization" in r.body.string_value]
        assert "abc.def.ghi" not in body and "pw@" not in body and _redact.REDACTED in body
    (late,) = [r for r in fast_logs if r.body.string_value == "Exception in ASGI application"]
    assert late.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"  # the request the exception escaped
    assert {a.key: a.value.string_value for a in late.attributes}["request.id"] == "late-request"


def _log_records(message: ExportLogsServiceRequest) -> list[Any]:
    return [r for rl in message.resource_logs for sl in rl.scope_logs for r in sl.log_records]


@pytest.mark.parametrize("encoder", ["otelkit", "sdk"])
@pytest.mark.parametrize("with_span", [True, False], ids=["in_request", "no_span"])
def test_records_queued_as_fields_export_what_the_sdk_exports(encoder: str, with_span: bool, request: Any) -> None:
    """The fast emit for otelkit's exporter queues plain records as their fields, SDK records for the rest: what is
    exported is what the SDK's path exports, redacted as otelkit's exporter redacts it."""
    if not _fast_emit_is_on():
        return
    if with_span:
        request.getfixturevalue("in_request")
    records = _records()
    sdk, fast = _both(records, at_emit=True)
    encoded = [item for item in fast if type(item) is tuple]  # PlainLog
    # Plain records (str/int/float/bool/bytes/None values and keys, no exception or event name: 7 of 14) are
    # queued as their fields; the others as the SDK's records. Both are encoded on the export thread.
    assert len(encoded) == 7 and len(fast) == len(records)
    expected = _decoded(encode_logs(sdk, _redact.redact_attributes, text_filter=_redact.redact_body))
    if encoder == "otelkit":
        got = _decoded(encode_logs(fast, _redact.redact_attributes, text_filter=_redact.redact_body))
    else:  # the SDK's encoder after an exporter switched it back on: SDK records made of the fields, redacted
        batch = redact_log_records(sdk_records(fast), _redact.redact_attributes, _redact.redact_body)
        got = _decoded(sdk_encode_logs(batch).SerializeToString())
    for expected_record, got_record in zip(_log_records(expected), _log_records(got), strict=True):
        assert got_record == expected_record
    assert got == expected
    login = {a.key: a.value.string_value for a in _log_records(got)[2].attributes}
    assert login["password"] == login["token"] == _redact.REDACTED and login["user"] == "ana"
    (body,) = [r.body.string_value for r in _log_records(got) if "Authorization" in r.body.string_value]
    assert "abc.def.ghi" not in body and "pw@" not in body


def test_records_are_queued_as_their_fields_once_otelkits_exporter_is_built(
    in_request: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """otelkit's pipeline as the configurator builds it: a batch processor over the deferred OTLP exporter."""
    if not _fast_emit_is_on():
        return
    from otelkit._runtime import exporters
    from otelkit._runtime.otlp import encode
    from otelkit.testing import OTLPReceiver

    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.url("logs"))
        exporter = exporters._otlp_exporter("logs")
        provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
        processor = BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000)
        fastemit.queue_as_fields(processor, exporter)
        provider.add_log_record_processor(processor)
        queued: list[str] = []

        class Recording(collections.deque):  # type: ignore[type-arg]
            def appendleft(self, item: Any) -> None:
                queued.append(type(item).__name__)
                super().appendleft(item)

        queue = processor._batch_processor
        monkeypatch.setattr(queue, "_queue", Recording([], queue._max_queue_size))
        handler, _, _ = _pipeline(fast=False)
        handler._logger_provider = provider  # type: ignore[attr-defined]
        assert fastemit.speed_up(handler)

        def log(message: str) -> None:
            handler.handle(logging.LogRecord("app", logging.INFO, __file__, 1, message, (), None, None))
            record = logging.LogRecord("app", logging.INFO, __file__, 1, "login token=%s", ("s3cr3t",), None)
            record.password = "hunter2"
            handler.handle(record)

        log("before the exporter is built")
        exporter.resolve()  # what happens 1 s after start-up, or at the first export
        log("after")
        provider.force_flush()
        provider.shutdown()
    # Records emitted while the exporter is not built are the SDK's.
    after = "tuple" if encode.ENCODE_LOGS.on else "ReadableLogRecord"  # a PlainLog, or the SDK's
    assert queued == ["ReadableLogRecord"] * 2 + [after] * 2
    assert [r.body for r in receiver.logs] == [
        "before the exporter is built",
        f"login token={_redact.REDACTED}",
        "after",
        f"login token={_redact.REDACTED}",
    ]
    assert [r.attributes.get("password") for r in receiver.logs] == [None, _redact.REDACTED, None, _redact.REDACTED]
    assert {r.trace_id for r in receiver.logs} == {format(in_request.get_span_context().trace_id, "032x")}


@pytest.mark.parametrize(
    "limits",
    [LogRecordLimits(max_attributes=1), LogRecordLimits(max_attribute_length=4), LogRecordLimits(max_attributes=0)],
    ids=["one_attribute", "four_characters", "none"],
)
@pytest.mark.parametrize("at_emit", [False, True], ids=["queued", "as_fields"])
def test_fast_emit_applies_the_sdks_attribute_limits(limits: LogRecordLimits, at_emit: bool, in_request: Any) -> None:
    if not _fast_emit_is_on():  # (and SDK 1.40's LoggerProvider takes no limits)
        return
    sdk, fast = _both(_records(), limits=limits, at_emit=at_emit)
    if not at_emit:
        for sdk_item, fast_item in zip(sdk, fast, strict=True):
            assert checks.differences(sdk_item, fast_item) is None
        assert encode_logs(sdk) != b"" and _decoded(encode_logs(fast)) == _decoded(encode_logs(sdk))
        return
    # A record the limits change (an attribute dropped or cut) is never queued as its fields.
    for sdk_item, fast_item in zip(sdk, fast, strict=True):
        if type(fast_item) is tuple:  # PlainLog
            assert sdk_item.log_record.attributes.dropped == 0
            assert all(len(v) <= 4 for v in sdk_item.log_record.attributes.values() if type(v) is str) or (
                limits.max_attribute_length is None
            )
    redacting = {"attribute_filter": _redact.redact_attributes, "text_filter": _redact.redact_body}
    assert _decoded(encode_logs(fast, **redacting)) == _decoded(encode_logs(sdk, **redacting))


def test_fast_emit_builds_the_record_once_with_no_per_record_lookup(
    in_request: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _fast_emit_is_on():
        return
    from opentelemetry.sdk._logs._internal import export as sdk_export

    handler, kept, provider = _pipeline(fast=True)
    lookups: list[str] = []
    real_get_logger = provider.get_logger
    monkeypatch.setattr(
        provider, "get_logger", lambda name, *a, **k: lookups.append(name) or real_get_logger(name, *a, **k)
    )
    copies: list[Any] = []
    real_copy = sdk_export.copy.copy
    monkeypatch.setattr(sdk_export.copy, "copy", lambda obj: copies.append(obj) or real_copy(obj))
    for i in range(50):
        handler.handle(logging.LogRecord("bench.app", logging.INFO, __file__, 1, "read %d", (i,), None))
    provider.force_flush()
    assert len(kept.batches) == 50
    assert lookups == ["bench.app"]  # one Logger per name, not one lookup per record
    assert copies == []  # the batch processor's copy of each record is not made: it is built once


def test_fast_emit_takes_the_sdk_path_when_a_processor_is_not_a_batch_processor(in_request: Any) -> None:
    if not _fast_emit_is_on():
        return
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = LoggingHandler(logger_provider=provider)
    fast = fastemit.fast_emit(handler)
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", (), None)
    fast(record)
    (exported,) = memory.get_finished_logs()
    assert exported.log_record.body == "hello"
    assert fast._plans["app"].emits is None
    # A processor added later re-plans the logger's records: now mixed, still the SDK's path.
    kept = _Keep()
    provider.add_log_record_processor(BatchLogRecordProcessor(kept, schedule_delay_millis=60_000))
    fast(copy.copy(record))
    provider.force_flush()
    assert len(memory.get_finished_logs()) == 2 and len(kept.batches) == 1
    assert fast._plans["app"].emits is None


def test_fast_emit_builds_nothing_for_a_logger_with_no_processor(in_request: Any) -> None:
    """``OTEL_LOGS_EXPORTER=none``: no processor, so no record is built, only counted as the SDK counts it."""
    if not _fast_emit_is_on():
        return

    class Count:
        created = 0

        def emit_log(self) -> None:
            self.created += 1

    def run(fast: bool) -> tuple[int, int]:
        provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
        metrics = provider._logger_metrics = Count()  # type: ignore[assignment]
        handler = LoggingHandler(logger_provider=provider)
        taken = []
        sdk_emit = handler.emit
        if fast:
            handler.emit = sdk_compat.FastEmit(  # type: ignore[method-assign]
                handler, lambda r: taken.append(r) or sdk_emit(r), **fastemit._BUILT_WITH
            )
        handler.handle(logging.LogRecord("app", logging.INFO, __file__, 1, "plain", (), None))
        try:
            raise ValueError("boom")
        except ValueError:
            failed = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
        handler.handle(failed)
        return metrics.created, len(taken)

    assert run(fast=False)[0] == 2  # the SDK's own path counts both records, and sends them nowhere
    assert run(fast=True) == (2, 0)  # the same count; nothing built, not even the exception's record

    # A processor added later is seen: the next record is queued.
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    handler = LoggingHandler(logger_provider=provider)
    fast = sdk_compat.FastEmit(handler, handler.emit, **fastemit._BUILT_WITH)
    fast(logging.LogRecord("app", logging.INFO, __file__, 1, "before", (), None))
    assert fast._plans["app"].emits == ()
    kept = _Keep()
    provider.add_log_record_processor(BatchLogRecordProcessor(kept, schedule_delay_millis=60_000))
    fast(logging.LogRecord("app", logging.INFO, __file__, 1, "after", (), None))
    provider.force_flush()
    assert [r.log_record.body for r in kept.batches] == ["after"]


def test_fast_emit_respects_a_disabled_logger_and_the_recursion_guard(in_request: Any) -> None:
    if not _fast_emit_is_on():
        return
    from opentelemetry.sdk._logs._internal import _LoggerConfig

    handler, kept, provider = _pipeline(fast=True)
    handler.handle(logging.LogRecord("quiet", logging.INFO, __file__, 1, "one", (), None))
    plan = handler.emit._plans["quiet"]  # type: ignore[attr-defined]
    plan.logger._set_logger_config(_LoggerConfig(is_enabled=False))
    handler.handle(logging.LogRecord("quiet", logging.INFO, __file__, 1, "two", (), None))
    token = LoggingHandler._is_emitting.set(True)  # a record logged while the handler emits
    try:
        handler.handle(logging.LogRecord("app", logging.INFO, __file__, 1, "three", (), None))
    finally:
        LoggingHandler._is_emitting.reset(token)
    provider.force_flush()
    assert [r.log_record.body for r in kept.batches] == ["one"]


def test_probe_passes_on_this_sdk_and_turns_the_fast_path_off_on_a_difference(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if not _fast_emit_is_on():
        return
    probe = fastemit.LOG_RECORD.probe
    assert probe(sdk_compat.FastEmit) is None

    def wrong(handler: logging.Handler, emit: Any, **options: Any) -> Any:
        """The fast emit, given a record whose level name differs from the one the SDK got.

        A wrapper, not a patched method: in the compiled build the fast emit's own calls do not
        go through the class's attributes.
        """
        fast = sdk_compat.FastEmit(handler, emit, **options)

        def emit_wrong(record: logging.LogRecord) -> None:
            record.levelname += "?"
            fast(record)

        return emit_wrong

    monkeypatch.setattr(fastemit.LOG_RECORD, "fast", wrong)
    assert probe(wrong) == "severity_text differs: SDK 'INFO', fast 'INFO?'"
    fastemit.LOG_RECORD.reset()
    try:
        handler, _, _ = _pipeline(fast=False)
        with caplog.at_level(logging.INFO, logger="otelkit"):
            assert fastemit.speed_up(handler) is False
    finally:
        fastemit.LOG_RECORD.reset()
    assert "emit" not in handler.__dict__
    assert "fast path 'log-record' off (severity_text differs: SDK 'INFO', fast 'INFO?')" in caplog.text


def test_prepare_otel_handler_gives_the_handler_the_fast_emit() -> None:
    if not _fast_emit_is_on():
        return
    handler, _, _ = _pipeline(fast=False)
    loghandler.prepare_otel_handler(handler)
    try:
        assert isinstance(handler.__dict__["emit"], sdk_compat.FastEmit)
        loghandler.prepare_otel_handler(handler)  # idempotent
        assert handler.emit.fallback.__self__ is handler  # type: ignore[attr-defined]
    finally:
        state.set_otel_log_handler(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the console line


def _reference_json(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """ConsoleFormatter's JSON line as it was written before the fast path (the specification)."""
    message = _redact.redact_message(record.getMessage())
    suppressed = getattr(record, "otelkit_suppressed", 0)
    if suppressed:
        message = f"{message} ({suppressed} similar messages suppressed)"
    ctx = exception_context(record)
    span_context = trace.get_current_span(ctx).get_span_context()
    value = baggage.get_baggage("request.id", ctx)
    request_id = value if isinstance(value, str) else None
    extras = {k: v for k, v in record.__dict__.items() if k not in console._RESERVED and not k.startswith("_")}
    extras = _redact.redact_attributes(extras)  # type: ignore[assignment]
    doc: dict[str, Any] = {
        "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
            timespec="milliseconds"
        ),
        "level": record.levelname,
        "logger": record.name,
        "message": message,
    }
    if span_context.is_valid:
        doc["trace_id"] = format(span_context.trace_id, "032x")
        doc["span_id"] = format(span_context.span_id, "016x")
    if request_id:
        doc["request_id"] = request_id
    for key, val in extras.items():
        doc.setdefault(key, val)
    if record.exc_info:
        doc["exception"] = _redact.redact_message(formatter.formatException(record.exc_info))
    return json.dumps(doc, default=str, ensure_ascii=False)


class _IntLike(int):
    def __repr__(self) -> str:
        return "IntLike"


class _StrLike(str):
    pass


def _console_records() -> list[logging.LogRecord]:
    records = _records()
    extra = [
        ("app", logging.INFO, "collides", {"message": "extra", "level": 1, "trace_id": "x", "exception": "e"}),
        ("app", logging.INFO, 'quote " and \\ and \n newline', {"path": "/a\tb", "n": float("nan")}),
        ('we"ird', logging.INFO, "suppressed", {"otelkit_suppressed": 3}),
        # Extras of each kind the line writes itself (str, int, bool, None) and of those it leaves to json.
        ("app", logging.INFO, "plain", {"s": 'q"\\é\x01', "i": -(10**20), "t": True, "f": False, "z": None}),
        ("app", logging.INFO, "kinds", {"n": 3, "fl": 1.5, "big": 1e16, "inf": float("inf")}),
        ("app", logging.INFO, "nested", {"d": {"a": [1, "x", None]}, "u": uuid.UUID(int=7)}),
        ("app", logging.INFO, "subclasses", {"e": HTTPStatus.OK, "b": _IntLike(5), "w": _StrLike("w\n")}),
    ]
    for name, level, msg, fields in extra:
        record = logging.LogRecord(name, level, __file__, 1, msg, (), None)
        record.__dict__.update(fields)
        records.append(record)
    records[0].levelname = 'LEV"EL'
    return records


@pytest.fixture(scope="module")
def native_line(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The C console line (cencoder.c's ``json_line``): the build's own, or built here from its source."""
    if console._native_line is not None:
        return console._native_line
    return console._configure_native_line(build_cencoder(tmp_path_factory.mktemp("native")))


@pytest.fixture(params=["python", "native"])
def console_line(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The console's JSON line written by line.py alone, or by the C function first."""
    native = request.getfixturevalue("native_line") if request.param == "native" else None
    monkeypatch.setattr(console, "_native_line", native)
    return str(request.param)


@pytest.mark.parametrize("with_span", [True, False], ids=["in_request", "no_span"])
def test_console_json_line_is_byte_for_byte_the_reference(with_span: bool, request: Any, console_line: str) -> None:
    if with_span:
        request.getfixturevalue("in_request")
    formatter = console.ConsoleFormatter("json")
    for record in _console_records():
        assert formatter.format(record) == _reference_json(formatter, record)


def test_native_line_writes_the_records_of_a_request(in_request: Any, native_line: Any) -> None:
    """The two records a request writes (the app's with ``extra=``, uvicorn's access record) are the C function's."""
    app = logging.LogRecord("bench.app", logging.INFO, __file__, 1, "read item", (), None)
    app.__dict__.update({"item_id": 1, "color_message": "x", "_private": 2})
    args = ("1.2.3.4:5", "GET", "/é", "1.1", 200)
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)
    formatter = console.ConsoleFormatter("json")
    for record in (app, access):
        written = native_line(record, facts.facts(record))
        assert written is not None
        assert written == line.format_json(formatter, record, console._extras, _redact.redact_message)
        assert written == _reference_json(formatter, record)
    assert json.loads(native_line(app, facts.facts(app)))["item_id"] == 1


class _Ids:
    """A span context as the console line reads it: ``is_valid``, ``trace_id``, ``span_id``, whatever they hold."""

    def __init__(self, valid: Any, trace_id: Any, span_id: Any) -> None:
        self.is_valid, self.trace_id, self.span_id = valid, trace_id, span_id


class _Facts:
    def __init__(self, message: Any, span_context: Any, request_id: Any) -> None:
        self.message, self.span_context, self.request_id = message, span_context, request_id


class _RecordSubclass(logging.LogRecord):
    pass


_HOSTILE_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\ud800", "é", "日本", '"\\\n\x01\x1f\x7f', "\t\r\b\f", "password=hunter2", "a" * 300]),
)
_VALUES = st.one_of(
    _HOSTILE_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(),
    st.sampled_from([HTTPStatus.OK, _IntLike(5), _StrLike("w"), [1, "x"], {"a": 1}, uuid.UUID(int=7)]),
)
_PLAIN_VALUES = st.one_of(_HOSTILE_TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(), st.none())
_KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["msg", "_private", "message", "trace_id", "level", "exception", "password", "color_message"]),
)
_IDS = st.one_of(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.sampled_from([-1, 2**64, 2**128, True, 1.0, "x", None]),
)


@st.composite
def _line_cases(draw: Any) -> tuple[logging.LogRecord, _Ids, Any]:
    """A record, its span context and request id: well-formed but for hostile text and values, or all hostile."""
    wild = draw(st.booleans())

    def pick(usual: Any, hostile: Any) -> Any:
        return draw(st.one_of(usual, hostile) if wild else usual)

    kind = _RecordSubclass if wild and draw(st.integers(0, 9)) == 0 else logging.LogRecord
    record = kind(draw(_HOSTILE_TEXT), logging.INFO, __file__, 1, "m", (), None)
    record.created = pick(
        st.one_of(
            st.floats(min_value=0, max_value=4e9),
            st.sampled_from([1764590400.9999995, 1764590400.0000005, 1764590400.0015, 253402300799.9, 0.0]),
        ),
        st.one_of(st.floats(), st.integers(min_value=-5, max_value=2**40), st.sampled_from([253402300800.0, -0.5])),
    )
    record.levelname = pick(_HOSTILE_TEXT, st.sampled_from([None, 20]))
    if wild and draw(st.booleans()):
        record.exc_info = draw(st.sampled_from([None, (), (RuntimeError, RuntimeError("x"), None)]))
    if wild and draw(st.booleans()):
        record.otelkit_suppressed = draw(st.sampled_from([0, 3, None]))
    record.__dict__.update(draw(st.dictionaries(_KEYS, _VALUES if wild else _PLAIN_VALUES, max_size=4)))
    if wild and draw(st.integers(0, 9)) == 0:
        record.__dict__[7] = "a key that is not a str"
    ids = _Ids(
        pick(st.booleans(), st.sampled_from([1, 0, None])),
        pick(st.integers(min_value=0, max_value=2**128 - 1), _IDS),
        pick(st.integers(min_value=0, max_value=2**64 - 1), _IDS),
    )
    record.msg = pick(_HOSTILE_TEXT, st.sampled_from([5, None]))
    request_id = pick(st.one_of(st.none(), _HOSTILE_TEXT), st.just(5))
    return record, ids, request_id


def _line_outcome(write: Any) -> tuple[str, Any]:
    try:
        return "returned", write()
    except Exception as error:
        return "raised", type(error)


@given(case=_line_cases())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_line_is_format_jsons_or_leaves_it_to_it(case: tuple[logging.LogRecord, _Ids, Any]) -> None:
    """On hostile records the C line returns exactly line.py's text, raises as it does, or returns None.

    Both read the record's facts as the console does, in a context holding the span context and the
    request id (not a patched ``facts``: the compiled build's line.py calls its own).
    """
    record, ids, request_id = case
    native = console._native_line or _NATIVE_LINE_BUILT[0]
    formatter = console.ConsoleFormatter("json")
    span = trace.set_span_in_context(trace.NonRecordingSpan(ids))  # type: ignore[arg-type]
    token = context.attach(baggage.set_baggage("request.id", request_id, span))
    try:
        python = _line_outcome(lambda: line.format_json(formatter, record, console._extras, _redact.redact_message))
        ours = _line_outcome(lambda: native(record, facts.facts(record)))
    finally:
        context.detach(token)
    if ours == ("returned", None):
        return
    assert ours == python


def test_console_reads_the_message_again_when_a_filter_rewrote_it(in_request: Any) -> None:
    formatter = console.ConsoleFormatter("json")
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "secret %s", ("x",), None)
    assert json.loads(formatter.format(record))["message"] == "secret x"
    record.args = ("[REDACTED]",)
    assert json.loads(formatter.format(record))["message"] == "secret [REDACTED]"


# --------------------------------------------------------------------------- a record as its fields, in C


@pytest.fixture(scope="module")
def native_plain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The C ``plain_log`` (cencoder.c): the build's own, or built here from its source."""
    built = fastemit._BUILT_WITH["native_plain"]
    return built if built is not None else build_cencoder(tmp_path_factory.mktemp("native_plain")).plain_log


class _Metrics:
    def __init__(self) -> None:
        self.emitted = 0

    def emit_log(self) -> None:
        self.emitted += 1


class _Logger:
    """What FastEmit.plain reads of the SDK's Logger."""

    def __init__(self, limits: LogRecordLimits) -> None:
        self._log_record_limits = limits
        self._resource = RESOURCE
        self._instrumentation_scope = "scope"
        self._logger_metrics = _Metrics()

    def _is_enabled(self) -> bool:
        return True


_PLAIN_HANDLER: list[Any] = []
_PLAIN_LEVELS = (10, 20, 30, 40, 50, 25, 5)


def _plain_emits(native: Any) -> tuple[Any, Any]:
    """Two fast emits on one real handler: FastEmit.plain's Python code alone, and with the C function first.

    Made once: the levels' severities the first records look up stay known to both (as in a process).
    """
    if not _PLAIN_HANDLER:
        handler, _, _ = _pipeline(fast=False)
        options = {"facts": facts.facts, "field_names": facts.field_names}
        python = sdk_compat.FastEmit(handler, handler.emit, native_plain=None, **options)
        ours = sdk_compat.FastEmit(handler, handler.emit, native_plain=native, **options)
        for emit in (python, ours):  # the severities of the levels the cases use, as after a first record of each
            emit._severity.update({level: emit._std_to_otel(level) for level in _PLAIN_LEVELS})
        _PLAIN_HANDLER.extend((python, ours))
    return _PLAIN_HANDLER[0], _PLAIN_HANDLER[1]


def _without_observed(outcome: tuple[str, Any]) -> tuple[str, Any]:
    kind, value = outcome
    if kind == "returned" and type(value) is tuple:
        assert type(value[3]) is int and abs(value[3] - time.time_ns()) < 60 * 10**9
        return kind, (*value[:3], *value[4:])
    return outcome


_LIMITS = st.sampled_from(
    [
        LogRecordLimits(),
        LogRecordLimits(max_attributes=0),
        LogRecordLimits(max_attributes=2),
        LogRecordLimits(max_attribute_length=3),
        LogRecordLimits(max_attributes=128, max_attribute_length=100),
    ]
)
_PLAIN_KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", "msg", "_private", "event.name", "otel.event.name", "item_id", "request.id", "levelno"]),
)
_ANY_VALUES = st.one_of(_VALUES, st.binary(max_size=4), st.sampled_from([b"", 2.5, "x" * 200]))


@st.composite
def _plain_cases(draw: Any) -> tuple[logging.LogRecord, _Facts, LogRecordLimits]:
    """A record, its facts and limits: a common one with hostile values, or (a third) hostile in every field."""
    wild = draw(st.integers(0, 2)) == 0

    def pick(usual: Any, hostile: Any) -> Any:
        return draw(st.one_of(usual, hostile) if wild else usual)

    kind = _RecordSubclass if wild and draw(st.integers(0, 9)) == 0 else logging.LogRecord
    level = pick(st.sampled_from(_PLAIN_LEVELS), st.sampled_from([20.0, "20", None, True, 35]))
    record = kind("app", 20, __file__, 1, "m", (), None)
    record.levelno = level
    record.levelname = pick(
        st.sampled_from(["INFO", "WARNING", "CRITICAL", "Level 25", ""]), st.sampled_from([_StrLike("WARNING"), 20])
    )
    record.created = pick(
        st.floats(min_value=0, max_value=4e9),
        st.one_of(st.floats(), st.integers(min_value=0, max_value=2**40), st.just(1e300)),
    )
    record.__dict__.update(draw(st.dictionaries(_PLAIN_KEYS, _ANY_VALUES if wild else _PLAIN_VALUES, max_size=4)))
    if wild and draw(st.integers(0, 9)) == 0:
        record.__dict__[7] = "a key that is not a str"
    context = trace.SpanContext(draw(st.integers(0, 2**128 - 1)), draw(st.integers(0, 2**64 - 1)), False)
    return record, _Facts(draw(_HOSTILE_TEXT), context, None), pick(st.just(LogRecordLimits()), _LIMITS)


@given(case=_plain_cases())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_plain_is_plains_or_leaves_it_to_it(case: tuple[logging.LogRecord, _Facts, LogRecordLimits]) -> None:
    """On hostile records FastEmit.plain queues the same fields with the C function first as without it."""
    if not FAST_EMIT_POSSIBLE:
        return
    record, record_facts, limits = case
    python_emit, native_emit = _plain_emits(_NATIVE_PLAIN_BUILT[0])
    python_emit._facts = native_emit._facts = lambda _record: record_facts  # type: ignore[method-assign]
    python_logger, native_logger = _Logger(limits), _Logger(limits)
    python = _without_observed(_line_outcome(lambda: python_emit.plain(record, python_logger)))
    ours = _without_observed(_line_outcome(lambda: native_emit.plain(record, native_logger)))
    assert ours == python
    assert native_logger._logger_metrics.emitted == python_logger._logger_metrics.emitted


def test_native_plain_takes_the_records_of_a_request(native_plain: Any) -> None:
    """The app's record with ``extra=`` and uvicorn's access record: built by the C function, as plain builds them."""
    if not FAST_EMIT_POSSIBLE:
        return
    python_emit, _ = _plain_emits(native_plain)
    app = logging.LogRecord("bench.app", logging.INFO, __file__, 1, "read item", (), None)
    app.__dict__.update({"item_id": 1, "request.id": "4bf92f3577b34da6"})
    access = logging.LogRecord("uvicorn.access", logging.WARNING, __file__, 1, "%s", ("GET /",), None)
    for record in (app, access):
        record_facts = _Facts(record.getMessage(), trace.SpanContext(7, 9, False, trace.TraceFlags(1)), None)
        logger = _Logger(LogRecordLimits())
        python_emit._facts = lambda _record, f=record_facts: f  # type: ignore[method-assign]
        expected = python_emit.plain(record, logger)  # its level's severity is known from here on
        texts = _log_emit._SEVERITY_TEXT
        item = native_plain(
            record, record_facts, python_emit._reserved, None, None, python_emit._severity, texts, RESOURCE, "scope"
        )
        assert item is not None
        assert _without_observed(("returned", item)) == _without_observed(("returned", expected))
    assert item[7] == "WARN" and item[10] == {}


_NATIVE_LINE_BUILT: list[Any] = [None]
_NATIVE_PLAIN_BUILT: list[Any] = [None]


@pytest.fixture(autouse=True, scope="module")
def _native_plain_for_hypothesis(native_plain: Any) -> None:
    _NATIVE_PLAIN_BUILT[0] = native_plain


@pytest.fixture(autouse=True, scope="module")
def _native_line_for_hypothesis(native_line: Any) -> None:
    _NATIVE_LINE_BUILT[0] = native_line


def _stamps() -> list[float]:
    rng = random.Random(20)
    stamps = [rng.uniform(0, 4e9) for _ in range(20000)]
    stamps += [1764590400.0 + k / 1e6 + d for k in range(2000) for d in (0.0, 4.9e-7, 5e-7, 5.1e-7)]
    # A fraction whose microseconds come out at exactly n + 0.5 (n odd, ending in 999): half to even rounds it up.
    stamps += [(n + 0.5) / 1e6 for n in range(999, 1_000_000, 1000)]
    return [*stamps, 1764590400.9999995, 1764590400.9999994, 0.0, 1.5, 59.9995, 253402300799.9995]


def test_iso_millis_matches_datetime_for_any_timestamp() -> None:
    for stamp in _stamps():
        expected = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).isoformat(timespec="milliseconds")
        assert line.iso_millis(stamp) == expected, stamp


def test_native_line_writes_the_timestamp_as_iso_millis(native_line: Any) -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "m", (), None)
    record_facts = _Facts("m", _Ids(False, 0, 0), None)
    for stamp in _stamps():
        record.created = stamp
        assert json.loads(native_line(record, record_facts))["timestamp"] == line.iso_millis(stamp), stamp


def test_extra_fields_are_the_records_own_fields_in_order() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "m", (), None)
    assert console._extras(record) == {}
    record.__dict__.update({"b": 1, "_hidden": 2, "a": 3, "request.id": "r", "password": "p"})
    assert list(console._extras(record).items()) == [("b", 1), ("a", 3), ("password", _redact.REDACTED)]


# --------------------------------------------------------------------------- the record factory

_FACTORY_SCRIPT = """
import json, logging, sys
from otelkit._runtime import instrument
stdlib = logging.getLogRecordFactory()
instrument.instrument_by_name("logging", json.loads(sys.argv[1]))
record = logging.getLogger("app").makeRecord("app", logging.INFO, "f", 1, "m", (), None)
fields = sorted(k for k in vars(record) if k.startswith("otel"))
print(json.dumps({"stdlib": logging.getLogRecordFactory() is stdlib, "otel_fields": fields}))
"""


@pytest.mark.parametrize(
    ("kwargs", "env", "stdlib", "fields"),
    [
        ({}, {}, True, []),
        (
            {},
            {"OTEL_PYTHON_LOG_CORRELATION": "true"},
            False,
            ["otelServiceName", "otelSpanID", "otelTraceID", "otelTraceSampled"],
        ),
        (
            {"inject_trace_context": True},  # instrumentation-logging 0.64+; before, it adds nothing
            {},
            False,
            ["otelServiceName", "otelSpanID", "otelTraceID", "otelTraceSampled"]
            if _release("opentelemetry-instrumentation-logging") >= (0, 64)
            else [],
        ),
    ],
    ids=["default", "correlation_env", "inject_trace_context"],
)
def test_idle_record_factory_wrapper_is_dropped_and_a_working_one_kept(
    kwargs: dict[str, Any], env: dict[str, str], stdlib: bool, fields: list[str]
) -> None:
    import os
    import subprocess

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    out = subprocess.run(
        [sys.executable, "-c", _FACTORY_SCRIPT, json.dumps(kwargs)],
        env={**clean, "OTEL_SDK_DISABLED": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == {"stdlib": stdlib, "otel_fields": fields}


@pytest.mark.parametrize("kind", ["buffered", "line_buffered", "unbuffered"])
def test_console_handler_writes_every_line_through_to_the_file(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    if kind == "unbuffered":  # what stderr is: a text layer writing through to the raw file
        stream = io.TextIOWrapper(_RawBytes(raw), write_through=True)
    else:
        stream = io.TextIOWrapper(io.BufferedWriter(_RawBytes(raw)), line_buffering=kind == "line_buffered")
    monkeypatch.setattr(sys, "stderr", stream)
    handler = console._ConsoleHandler()
    handler.setFormatter(console.ConsoleFormatter("json"))
    for i in range(3):
        handler.handle(logging.LogRecord("app", logging.INFO, __file__, 1, "line %d", (i,), None))
        assert raw.getvalue().count(b"\n") == i + 1  # on the file already, not in a buffer
    assert [json.loads(line)["message"] for line in raw.getvalue().decode().splitlines()] == [
        "line 0",
        "line 1",
        "line 2",
    ]


class _RawBytes(io.RawIOBase):
    def __init__(self, sink: io.BytesIO) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self.sink.write(bytes(data))
