"""FastOTLPSpanExporter / FastOTLPLogExporter against a real OTLP/HTTP receiver, and their wiring."""

from __future__ import annotations

import logging
import time
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

from otelkit._runtime import exporters, sdk_compat
from otelkit._runtime.otlp import encode
from otelkit._runtime.otlp.encode import encode_spans
from otelkit._runtime.otlp.fast import FastOTLPLogExporter, FastOTLPSpanExporter
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


def test_fast_span_exporter_too_large_batch_is_dropped_unsent_as_the_sdk_does(receiver, caplog):
    import inspect

    if "max_request_size" not in inspect.signature(OTLPSpanExporter.__init__).parameters:
        # SDK before 1.45 has no size limit: neither has otelkit's exporter, which is the SDK's.
        with pytest.raises(TypeError, match="max_request_size"):
            OTLPSpanExporter(endpoint=receiver.url("traces"), max_request_size=10)
        with pytest.raises(TypeError, match="max_request_size"):
            FastOTLPSpanExporter(endpoint=receiver.url("traces"), max_request_size=10)
        return
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
    """The exporter the deferred one builds, unwrapped from the SDK exporters' redacting wrapper."""
    exporter = exporters._otlp_exporter(signal).resolve()
    exporter.shutdown()
    return getattr(exporter, "inner", exporter)


def test_otlp_exporter_is_fast_for_traces_and_logs_over_http_where_the_sdk_allows_it():
    # Fast wherever the installed SDK's exporter takes otelkit's encoder and encodes alike (1.43+).
    assert type(_created("traces")) is (FastOTLPSpanExporter if encode.ENCODE_SPANS.on else OTLPSpanExporter)
    assert type(_created("logs")) is (FastOTLPLogExporter if encode.ENCODE_LOGS.on else OTLPLogExporter)
    assert type(_created("metrics")) is OTLPMetricExporter


@pytest.mark.parametrize("value", ["false", "0", "OFF"])
def test_otlp_exporter_fast_export_false_gives_the_sdk_exporters(monkeypatch, value):
    monkeypatch.setenv("OTELKIT_FAST_EXPORT", value)
    assert type(_created("traces")) is OTLPSpanExporter
    assert type(_created("logs")) is OTLPLogExporter


def test_otlp_exporter_bad_fast_export_value_keeps_the_default(monkeypatch):
    monkeypatch.setenv("OTELKIT_FAST_EXPORT", "maybe")
    assert type(_created("traces")) is (FastOTLPSpanExporter if encode.ENCODE_SPANS.on else OTLPSpanExporter)


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


# --- transport: urllib3 where requests adds nothing ------------------------------------------


def _transport_name(exporter: Any) -> str:
    client = getattr(exporter, "_client", None)
    if client is None:  # SDK before 1.45: requests, always
        return type(exporter._session).__name__
    return type(client._transport).__name__


# SDK 1.45+ exporters take a transport; before, they post with a requests Session.
_LEAN = "LeanHTTPTransport" if sdk_compat.LEAN_TRANSPORT.on else "Session"


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_otlp_exporter_posts_with_urllib3_over_plain_http(receiver, monkeypatch, signal):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    exporter = _created(signal)
    assert _transport_name(exporter) == _LEAN


def test_otlp_exporter_with_urllib3_delivers(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    exporter = exporters._otlp_exporter("traces").resolve()
    assert _transport_name(getattr(exporter, "inner", exporter)) == _LEAN
    received, headers = _received_by(exporter, _spans(), receiver, "traces")
    assert [s.name for s in received] == ["SELECT items", "GET /items/{item_id}"]
    assert headers["content-type"] == "application/x-protobuf"


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example.com/v1/traces"},
        {"HTTPS_PROXY": "http://proxy.internal:3128"},
        {"http_proxy": "http://proxy.internal:3128"},
        {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER": "vendor"},
    ],
)
def test_otlp_exporter_keeps_requests_for_tls_proxies_and_credential_providers(monkeypatch, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exporters._lean_transport("traces") == {}


# --- pacing ---------------------------------------------------------------------------------


class _FakeClock:
    """Stands in for the ``time`` module in otelkit._runtime.otlp.fast: CPU time moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.cpu = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def thread_time(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_sleeps_four_times_the_cpu_of_a_chunk_within_half_the_idle_time(monkeypatch):
    from otelkit._runtime.otlp import fast as _otlp

    clock = _FakeClock()
    monkeypatch.setattr(_otlp, "time", clock)
    pacer = _otlp.Pacer(share=0.2, max_sleep=0.2)
    clock.now += 0.3  # idle for 0.3 s since the pacer was made: at most 0.15 s of sleeping
    pause = pacer.begin()
    assert pause is not None
    clock.cpu += 0.001
    pause()
    assert clock.sleeps == [pytest.approx(0.004)]  # (1 - 0.2) / 0.2 × 1 ms
    for _ in range(100):
        clock.cpu += 0.001
        pause()
    assert sum(clock.sleeps) == pytest.approx(0.15)
    pacer.end()
    # Back to back with the previous export: no idle time, no sleeping.
    pause = pacer.begin()
    clock.cpu += 0.001
    pause()
    assert sum(clock.sleeps) == pytest.approx(0.15)


def test_pacer_pauses_only_once_a_slice_of_cpu_was_used(monkeypatch):
    from otelkit._runtime.otlp import fast as _otlp

    clock = _FakeClock()
    monkeypatch.setattr(_otlp, "time", clock)
    pacer = _otlp.Pacer(share=0.5, max_sleep=0.2, min_slice=0.001)
    clock.now += 1.0
    pause = pacer.begin()
    assert pause is not None
    for _ in range(3):  # 0.3 ms, 0.6 ms, 0.9 ms since the export began: no pause yet
        clock.cpu += 0.0003
        pause()
    assert clock.sleeps == []
    clock.cpu += 0.0003  # 1.2 ms: one pause, as long as the whole slice took (a share of 0.5)
    pause()
    assert clock.sleeps == [pytest.approx(0.0012)]
    clock.cpu += 0.0003  # a new slice starts after the pause
    pause()
    assert clock.sleeps == [pytest.approx(0.0012)]


def test_pacer_is_off_while_otelkit_flushes(monkeypatch):
    from otelkit._runtime.otlp import fast as _otlp

    pacer = _otlp.Pacer()
    with _otlp.unpaced():
        assert pacer.begin() is None
    assert pacer.begin() is not None


def test_paced_encoding_pauses_every_pause_every_items_and_encodes_the_same():
    from otelkit._runtime.otlp.encode import PAUSE_EVERY

    spans = _spans() * PAUSE_EVERY  # 2 × PAUSE_EVERY spans + 1: a pause after each full chunk
    spans.append(spans[0])
    calls: list[int] = []
    assert encode_spans(spans, None, lambda: calls.append(1)) == encode_spans(spans)
    assert len(calls) == 2


def test_paced_exporter_delivers_everything(receiver):
    spans = _spans() * 100
    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), paced=True)
    received, _ = _received_by(exporter, spans, receiver, "traces")
    assert len(received) == 200


def test_paced_export_frees_its_batch_in_paced_slices(receiver):
    """Freeing a batch at once stalled the requests in flight: a paced export lets go of it in slices."""
    from otelkit._runtime.otlp import fast as _otlp

    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), paced=True)
    batch = _spans() * 150  # 300 spans: paused while encoding, then freed 128 + 128 + 44
    pauses: list[tuple[int, int]] = []  # (spans received so far, spans still in the batch) at each pause
    begin = exporter._pacer.begin
    exporter._pacer.begin = lambda: begin() and (lambda: pauses.append((len(receiver.spans), len(batch))))
    assert exporter.export(batch) is SpanExportResult.SUCCESS
    assert batch == []
    assert 300 // _otlp.PAUSE_EVERY == 2
    # Encoding (2 pauses), before the post, after it, then between the slices freed: the post is a
    # slice of its own, never one with the last chunk encoded or the first chunk freed.
    assert pauses == [(0, 300), (0, 300), (0, 300), (300, 300), (300, 172), (300, 44)]
    assert len(receiver.spans) == 300
    with _otlp.unpaced():  # a flush: no pacing, nothing freed early
        kept = _spans() * 150
        assert exporter.export(kept) is SpanExportResult.SUCCESS
    assert len(kept) == 300
    as_tuple = tuple(_spans())
    assert exporter.export(as_tuple) is SpanExportResult.SUCCESS  # not a list: left alone
    exporter.shutdown()
    assert len(receiver.spans) == 602


# --- otelkit's transport (sdk_compat/_transport.py) ------------------------------------------


def _lean() -> bool:
    """Whether this SDK takes otelkit's transport; before 1.45 (no ``_transport`` keyword) the SDK's own is used."""
    if sdk_compat.LEAN_TRANSPORT.on:
        return True
    assert sdk_compat.lean_transport() == {}
    return False


def test_lean_transport_paces_the_body_and_keeps_one_connection(receiver):
    """The post is paced like the encoding: a pause after every CHUNK bytes sent; every post on one connection."""
    if not _lean():
        return
    from otelkit._runtime.otlp import encode
    from otelkit._runtime.sdk_compat._transport import CHUNK

    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), paced=True, **sdk_compat.lean_transport())
    batch = _spans() * 150
    body = len(encode.encode_spans(batch))
    chunks = -(-body // CHUNK)
    assert chunks >= 2  # the case under test: a body of more than one chunk
    pauses: list[tuple[int, int]] = []
    begin = exporter._pacer.begin
    exporter._pacer.begin = lambda: begin() and (lambda: pauses.append((len(receiver.spans), len(batch))))
    assert exporter.export(batch) is SpanExportResult.SUCCESS
    # Encoding (2), before the post (1), between the body's chunks (chunks - 1), after the post, freeing (2).
    assert pauses == [(0, 300)] * (3 + chunks - 1) + [(300, 300), (300, 172), (300, 44)]
    assert exporter._paced_transport.pause is None  # set for the export only
    for _ in range(3):
        assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    assert len(receiver.spans) == 306 and receiver.requests["traces"] == 4
    assert len(receiver._connections) == 1  # kept alive, as a collector keeps it
    exporter.shutdown()


def test_lean_transport_connects_anew_when_the_receiver_dropped_the_idle_connection():
    """A kept-alive connection the receiver closed meanwhile costs one immediate retry (the SDK's), no batch."""
    if not _lean():
        return
    with OTLPReceiver(idle_timeout=0.2) as receiver:
        exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), paced=True, **sdk_compat.lean_transport())
        assert exporter.export(_spans()) is SpanExportResult.SUCCESS
        deadline = time.monotonic() + 5
        while receiver._connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not receiver._connections  # the receiver closed it
        assert exporter.export(_spans()) is SpanExportResult.SUCCESS
        assert len(receiver.spans) == 4
        exporter.shutdown()


def test_lean_transport_reports_errors_as_results():
    """No exception leaves request(): a refused connection and a receiver that never answers are results."""
    if not _lean():
        return
    import socket

    transport = sdk_compat.lean_transport()["_transport"]
    refused = transport.request("POST", "http://127.0.0.1:9/v1/traces", data=b"x", timeout=1)
    assert refused.status_code is None and transport.is_connection_error(refused.error)
    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        hung = transport.request("POST", f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces", timeout=0.3)
        assert transport.is_connection_error(hung.error) and time.monotonic() - started < 2
    bad = transport.request("POST", "https://127.0.0.1:9/v1/traces", data=b"x", timeout=1)
    assert isinstance(bad.error, ValueError) and not transport.is_connection_error(bad.error)
    transport.close()


def test_lean_transport_result_headers_are_case_insensitive(receiver):
    """The SDK reads ``retry-after`` in lower case; the result's headers answer in any case."""
    if not _lean():
        return
    transport = sdk_compat.lean_transport()["_transport"]
    result = transport.request(
        "POST", receiver.url("traces"), headers={"Content-Type": "application/x-protobuf"}, data=b"", timeout=5
    )
    assert result.status_code == 200 and result.error is None
    headers = result.headers()
    assert headers.get("content-type") == headers["Content-Type"] == "application/x-protobuf"
    assert "CONTENT-TYPE" in headers and result.content() == b""
    transport.close()


def test_failed_export_collects_the_garbage_it_leaves(monkeypatch):
    """A POST to a closed port leaves the body in a traceback cycle; the exporter collects it."""
    import gc

    from otelkit._runtime.otlp import fast as _otlp

    collections: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            collections.append(1)

    monkeypatch.setattr(_otlp, "_last_collect", [0.0])
    exporter = FastOTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=1)
    gc.callbacks.append(count)
    try:
        assert exporter.export(_spans()) is SpanExportResult.FAILURE
        assert collections  # a full collection ran for the failed batch
        first = _otlp._last_collect[0]
        assert first > 0
        assert exporter.export(_spans()) is SpanExportResult.FAILURE
        assert _otlp._last_collect[0] == first  # rate-limited: not again within a few seconds
    finally:
        gc.callbacks.remove(count)
        exporter.shutdown()


def _queued_as_fields(exporter: FastOTLPLogExporter, record: Any) -> Any:
    """``record`` as the fast emit queues it for ``exporter``: its fields (redacted when exported)."""
    log = record.log_record
    assert exporter.takes_fields()
    return (  # a PlainLog, as FastEmit.build makes it
        record.resource,
        record.instrumentation_scope,
        log.timestamp,
        log.observed_timestamp,
        log.trace_id,
        log.span_id,
        log.trace_flags,
        log.severity_text,
        log.severity_number,
        log.body,
        dict(log.attributes),
        log.event_name,
    )


class _SwitchedOffMidExport:
    """An exporter's encoder path whose SDK uses the encoded request in a way otelkit's does not provide."""

    def __init__(self, exporter: Any) -> None:
        self.exporter, self.real, self.on, self.reasons = exporter, exporter._path, True, []

    def fast(self, *args: Any) -> bytes:
        data = self.real.fast(*args)
        self.exporter._unexpected = "ByteSize"
        return data

    def switch_off(self, reason: str) -> None:
        self.reasons.append(reason)
        self.on = False


def test_fast_log_exporter_switched_off_mid_export_sends_the_batch_redacted_through_the_sdks_encoder(receiver):
    from otelkit._runtime import redact

    filters = {"attribute_filter": redact.redact_attributes, "text_filter": redact.redact_body}
    records = _logs()
    expected, _ = _received_by(FastOTLPLogExporter(endpoint=receiver.url("logs"), **filters), records, receiver, "logs")
    assert expected[0].attributes == {"item_id": 7, "password": redact.REDACTED}

    exporter = FastOTLPLogExporter(endpoint=receiver.url("logs"), **filters)
    exporter._path = _SwitchedOffMidExport(exporter)
    # The record with the password queued as its fields, the other as the SDK's: both unredacted until exported.
    batch = [_queued_as_fields(exporter, records[0]), records[1]]
    received, _ = _received_by(exporter, batch, receiver, "logs")
    assert exporter._path.reasons == ["OTLPLogExporter.export() used the encoded request's 'ByteSize'"]
    assert not exporter.takes_fields()  # records are queued as the SDK's from now on
    assert received[-2:] == expected  # what the SDK's encoder sent: the same records, still redacted


def test_fast_span_exporter_switched_off_mid_export_sends_the_batch_redacted(receiver):
    from otelkit._runtime import redact

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("app").start_as_current_span("login", attributes={"user": "ana", "password": "hunter2"}):
        pass
    spans = [*_spans(), *memory.get_finished_spans()]
    filters = {"attribute_filter": redact.redact_attributes, "text_filter": redact.redact_body}
    expected, _ = _received_by(
        FastOTLPSpanExporter(endpoint=receiver.url("traces"), **filters), spans, receiver, "traces"
    )
    assert expected[-1].attributes == {"user": "ana", "password": redact.REDACTED}
    exporter = FastOTLPSpanExporter(endpoint=receiver.url("traces"), **filters)
    exporter._path = _SwitchedOffMidExport(exporter)
    received, _ = _received_by(exporter, spans, receiver, "traces")
    assert exporter._path.reasons == ["OTLPSpanExporter.export() used the encoded request's 'ByteSize'"]
    assert received[-3:] == expected
