"""FastOTLPSpanExporter / FastOTLPLogExporter against a real OTLP/HTTP receiver, and their wiring."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from otelkit import configurator
from otelkit._otlp import FastOTLPLogExporter, FastOTLPSpanExporter, encode_spans
from otelkit.errors import ConfigError
from otelkit.settings import Settings
from otelkit.testing import OTLPReceiver

_RESOURCE = Resource.create({"service.name": "checkout"})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(var)


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otelkit.asgi", "0.1.0")
    with tracer.start_as_current_span(
        "GET /items/{item_id}",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.route": "/items/{item_id}", "http.response.status_code": 500},
    ) as span:
        span.add_event("exception", {"exception.type": "ValueError"})
        span.set_status(Status(StatusCode.ERROR, "boom"))
        with tracer.start_as_current_span("SELECT items", kind=SpanKind.CLIENT, links=[Link(SpanContext(1, 2, False))]):
            pass
    spans = list(memory.get_finished_spans())
    assert len(spans) == 2
    return spans


def _logs() -> list[Any]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("app.items")
    logger.emit(
        LogRecord(
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body="item fetched",
            attributes={"item_id": 7, "password": "hunter2"},
        )
    )
    logger.emit(LogRecord(body={"event": "login", "ok": True}, event_name="auth.login"))
    records = list(memory.get_finished_logs())
    assert len(records) == 2
    return records


def _received_by(exporter: Any, items: list[Any], receiver: OTLPReceiver, signal: str) -> list[Any]:
    try:
        assert exporter.export(items).name == "SUCCESS"
    finally:
        exporter.shutdown()
    received = receiver.spans if signal == "traces" else receiver.logs
    headers = receiver.last_headers
    receiver.clear()
    return received, headers


def test_fast_span_exporter_delivers_what_the_sdk_exporter_delivers(receiver):
    spans = _spans()
    sdk, _ = _received_by(OTLPSpanExporter(endpoint=receiver.url("traces")), spans, receiver, "traces")
    fast, _ = _received_by(FastOTLPSpanExporter(endpoint=receiver.url("traces")), spans, receiver, "traces")
    assert fast == sdk
    assert [s.name for s in fast] == ["SELECT items", "GET /items/{item_id}"]


def test_fast_log_exporter_delivers_what_the_sdk_exporter_delivers(receiver):
    records = _logs()
    sdk, _ = _received_by(OTLPLogExporter(endpoint=receiver.url("logs")), records, receiver, "logs")
    fast, _ = _received_by(FastOTLPLogExporter(endpoint=receiver.url("logs")), records, receiver, "logs")
    assert fast == sdk
    assert [log.body for log in fast] == ["item fetched", {"event": "login", "ok": True}]


def test_fast_exporters_follow_the_standard_env_vars_with_gzip(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    for exporter, items, signal in (
        (FastOTLPSpanExporter(), _spans(), "traces"),
        (FastOTLPLogExporter(), _logs(), "logs"),
    ):
        received, headers = _received_by(exporter, items, receiver, signal)
        assert len(received) == 2
        assert headers["content-encoding"] == "gzip"
        assert headers["x-tenant"] == "acme"


def test_fast_exporters_pass_attributes_through_the_filter(receiver):
    def redact(attributes: Any) -> Any:
        return {k: "[REDACTED]" if k == "password" else v for k, v in attributes.items()}

    logs, _ = _received_by(
        FastOTLPLogExporter(endpoint=receiver.url("logs"), attribute_filter=redact), _logs(), receiver, "logs"
    )
    assert logs[0].attributes == {"item_id": 7, "password": "[REDACTED]"}
    spans, _ = _received_by(
        FastOTLPSpanExporter(endpoint=receiver.url("traces"), attribute_filter=lambda a: {**a, "extra": 1}),
        _spans(),
        receiver,
        "traces",
    )
    server = next(s for s in spans if s.kind == "SERVER")
    assert server.attributes["extra"] == 1
    assert server.events[0].attributes == {"exception.type": "ValueError", "extra": 1}


def test_fast_span_exporter_refused_batch_is_a_failure(receiver):
    receiver.fail_with = 400  # not retryable: one attempt
    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), timeout=5)
    try:
        assert exporter.export(_spans()) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert receiver.failed_requests == 1


def test_fast_span_exporter_too_large_batch_is_dropped_unsent(receiver, caplog):
    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), max_request_size=10)
    spans = _spans()
    size = len(encode_spans(spans))
    with caplog.at_level(logging.WARNING):
        try:
            assert exporter.export(spans) is SpanExportResult.FAILURE
        finally:
            exporter.shutdown()
    assert f"Dropping span batch: serialized size {size} bytes exceeds max_request_size 10 bytes." in caplog.text
    assert receiver.requests["traces"] == 0


def test_fast_log_exporter_encoding_error_fails_the_batch(receiver, caplog):
    from opentelemetry.context import Context
    from opentelemetry.sdk._logs import ReadableLogRecord

    bad = ReadableLogRecord(LogRecord(body=object(), context=Context()), resource=_RESOURCE)
    exporter = FastOTLPLogExporter(endpoint=receiver.url("logs"))
    with caplog.at_level(logging.ERROR):
        try:
            assert exporter.export([bad]) is LogRecordExportResult.FAILURE
        finally:
            exporter.shutdown()
    assert "Failed to encode logs batch: Invalid type <class 'object'>" in caplog.text
    assert receiver.requests["logs"] == 0


def test_fast_span_exporter_after_shutdown_refuses_batches(receiver, caplog):
    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"))
    exporter.shutdown()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(_spans()) is SpanExportResult.FAILURE
    assert "Exporter already shutdown, ignoring batch" in caplog.text
    assert receiver.requests["traces"] == 0


# --------------------------------------------------------------------------- wiring


def _created(signal: str) -> Any:
    exporter = configurator._otlp_exporter(signal)
    exporter.shutdown()
    return exporter


def test_otlp_exporter_is_fast_for_traces_and_logs_over_http():
    assert type(_created("traces")) is FastOTLPSpanExporter
    assert type(_created("logs")) is FastOTLPLogExporter
    assert type(_created("metrics")) is OTLPMetricExporter


@pytest.mark.parametrize("value", ["false", "0", "OFF"])
def test_otlp_exporter_fast_export_false_gives_the_sdk_exporters(monkeypatch, value):
    monkeypatch.setenv("OTELKIT_FAST_EXPORT", value)
    assert type(_created("traces")) is OTLPSpanExporter
    assert type(_created("logs")) is OTLPLogExporter


def test_otlp_exporter_bad_fast_export_value_keeps_the_default(monkeypatch):
    monkeypatch.setenv("OTELKIT_FAST_EXPORT", "maybe")
    assert type(_created("traces")) is FastOTLPSpanExporter


def test_otlp_exporter_grpc_is_untouched(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert type(_created("traces")).__module__ == "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def test_settings_fast_export_default_env_and_argument():
    assert Settings.from_env({}).fast_export is True
    assert Settings.from_env({"OTELKIT_FAST_EXPORT": "no"}).fast_export is False
    assert Settings.from_env({"OTELKIT_FAST_EXPORT": "no"}, fast_export=True).fast_export is True


def test_settings_fast_export_bad_value_is_one_clear_line():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"OTELKIT_FAST_EXPORT": "maybe"})
    assert str(info.value) == (
        "invalid OTELKIT_FAST_EXPORT='maybe'; expected true or false; fix or unset OTELKIT_FAST_EXPORT"
    )
    assert info.value.variable == "OTELKIT_FAST_EXPORT"
