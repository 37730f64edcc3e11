from __future__ import annotations

import json
import logging

import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otelkit._runtime import exporters, providers, redact_exporters
from otelkit._runtime import redact as _redact
from otelkit._runtime.http import asgi as _asgi
from otelkit._runtime.logs import console as _logs
from otelkit._runtime.redact import REDACTED, Redactor
from otelkit.settings import Settings


@pytest.fixture(autouse=True)
def _default_redactor():
    _redact.configure(())
    yield
    _redact.configure(())


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "http.request.header.proxy-authorization",
        "cookie",
        "http.response.header.set-cookie",
        "api_key",
        "api-key",
        "apikey",
        "x-api-key",
        "apiKey",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "accessToken",
        "x-auth-token",
        "csrftoken",
        "password",
        "db.password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "aws_secret_access_key",
        "private_key",
        "privateKey",
        "session",
        "sessionid",
        "credentials",
        "X-Amz-Signature",
    ],
)
def test_redact_sensitive_keys(key):
    assert Redactor().is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "user",
        "order_id",
        "http.route",
        "gen_ai.usage.input_tokens",
        "gen_ai.request.max_tokens",
        "tokenizer",
        "url.path",
        "request.id",
        "user_agent.original",
    ],
)
def test_redact_ordinary_keys_are_kept(key):
    assert not Redactor().is_sensitive(key)


def test_redact_attributes_returns_the_same_object_when_nothing_matches():
    attributes = {"http.route": "/items/{id}", "url.query": "page=2", "n": 1}
    assert _redact.redact_attributes(attributes) is attributes
    assert _redact.redact_attributes(None) is None


def test_redact_attributes_replaces_values_and_keeps_shapes():
    attributes = {
        "password": "hunter2",
        "http.request.header.authorization": ("Bearer abc",),
        "user": "ana",
        "payload": {"api_key": "k", "nested": {"secret": "s", "ok": 1}},
    }
    redacted = _redact.redact_attributes(attributes)
    assert redacted == {
        "password": REDACTED,
        "http.request.header.authorization": (REDACTED,),
        "user": "ana",
        "payload": {"api_key": REDACTED, "nested": {"secret": REDACTED, "ok": 1}},
    }
    assert attributes["password"] == "hunter2"  # the input is not modified


def test_redact_url_query_and_urls():
    redactor = Redactor()
    assert redactor.redact_attributes({"url.query": "token=abc&page=2&Password=x&redirect=/a"}) == {
        "url.query": f"token={REDACTED}&page=2&Password={REDACTED}&redirect=/a"
    }
    assert redactor.redact_url("https://u:pw@api.test/v1?access_token=t#frag") == (
        f"https://{REDACTED}@api.test/v1?access_token={REDACTED}#frag"
    )
    assert redactor.redact_attributes({"http.target": "/cb?code=1&client_secret=s"}) == {
        "http.target": f"/cb?code=1&client_secret={REDACTED}"
    }
    assert redactor.redact_query("api%5Fkey=1") == f"api%5Fkey={REDACTED}"
    same = "https://api.test/v1?page=2"
    assert redactor.redact_url(same) is same


def test_redact_extra_keys_from_settings(monkeypatch):
    monkeypatch.setenv("OTELKIT_REDACT_KEYS", "ssn, iban")
    settings = Settings.from_env()
    redactor = _redact.configure(settings.redact_keys)
    assert redactor.redact_attributes({"user.ssn": "1", "IBAN": "DE00", "name": "x"}) == {
        "user.ssn": REDACTED,
        "IBAN": REDACTED,
        "name": "x",
    }
    assert redactor.is_sensitive("password")


def test_redact_text_removes_userinfo_and_secret_pairs():
    text = "connect failed: postgresql://app:hunter2@db:5432/x password=hunter2 token: 'abc def' host=db"
    assert _redact.redact_text(text) == (
        f"connect failed: postgresql://{REDACTED}@db:5432/x password={REDACTED} token: {REDACTED} host=db"
    )
    assert _redact.redact_text("x" * 1000, limit=10) == "x" * 9 + "…"


def test_redact_message_seen_again_gives_the_same_answer():
    # Short texts are remembered (console line, then export); a repeat must give the same text,
    # and an unchanged one must be the very object passed in (callers test identity).
    redactor = Redactor()
    secret = "login failed password=hunter2 for bob"
    plain = "read item"
    for _ in range(3):
        assert redactor.redact_message(secret) == f"login failed password={REDACTED} for bob"
        assert redactor.redact_message(plain) is plain
    twin = "".join(["read ", "item"])  # equal to plain, another object
    assert twin is not plain
    assert redactor.redact_message(twin) is twin
    long_secret = "x" * 600 + " token=abc"
    assert redactor.redact_message(long_secret) == "x" * 600 + f" token={REDACTED}"
    assert redactor.redact_message(long_secret) == "x" * 600 + f" token={REDACTED}"


def test_redact_message_remembered_texts_follow_the_configured_keys():
    assert _redact.redact_message("lookup ssn=123") == "lookup ssn=123"
    _redact.configure(["ssn"])
    assert _redact.redact_message("lookup ssn=123") == f"lookup ssn={REDACTED}"
    _redact.configure(())
    assert _redact.redact_message("lookup ssn=123") == "lookup ssn=123"


def test_redact_message_remembers_a_bounded_number_of_texts():
    redactor = Redactor()
    for i in range(5000):
        assert redactor.redact_message(f"GET /items/{i} token={i}") == f"GET /items/{i} token={REDACTED}"
    assert len(redactor._messages) <= 4096


def _span_exporter_pipeline():
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(redact_exporters.RedactingSpanExporter(exported)))
    return provider, exported


def test_redact_spans_on_export():
    provider, exported = _span_exporter_pipeline()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("login") as span:
        span.set_attribute("user", "ana")
        span.set_attribute("password", "hunter2")
        span.add_event("retry", {"api_key": "k", "attempt": 2})
        span.set_status(StatusCode.ERROR)
    with tracer.start_as_current_span("clean") as clean:
        clean.set_attribute("user", "bob")
    login, other = exported.get_finished_spans()
    assert dict(login.attributes) == {"user": "ana", "password": REDACTED}
    assert dict(login.events[0].attributes) == {"api_key": REDACTED, "attempt": 2}
    assert login.name == "login"
    assert login.status.status_code is StatusCode.ERROR
    assert login.context == span.get_span_context()
    assert login.end_time == span.end_time
    assert span.attributes["password"] == "hunter2"  # the live span is untouched
    assert dict(other.attributes) == {"user": "bob"}
    assert redact_exporters.redact_span(other) is other  # nothing to redact: exported as is


def test_redacted_span_keeps_dropped_counts_and_redacts_links_as_the_fast_encoder_does():
    """The SDK exporters' path (gRPC, OTELKIT_FAST_EXPORT=false) sends what otelkit's encoder sends:
    link attributes redacted too, and the dropped attribute/event/link counts of the span kept."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.trace import Link, SpanContext, Status

    from otelkit._runtime.otlp.encode import encode_spans

    exported = InMemorySpanExporter()
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=1, max_event_attributes=1)
    provider = TracerProvider(span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("t")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True)
    with tracer.start_as_current_span("login", links=[Link(remote, {"password": "pw", "n": 1})]) as span:
        span.set_attributes({"user": "ana", "n": 1, "password": "hunter2"})
        span.add_event("retry", {"attempt": 2, "api_key": "k"})
        span.add_event("again", {"k": 1, "token": "t"})
        span.add_link(SpanContext(0xABC, 0x123, is_remote=False), {"token": "t"})
        span.set_status(Status(StatusCode.ERROR, "failed: Authorization: Bearer abc.def.ghi"))
    with tracer.start_as_current_span("only-links", links=[Link(remote, {"secret": "s"})]):
        pass
    spans = exported.get_finished_spans()
    ours = ExportTraceServiceRequest.FromString(
        encode_spans(spans, _redact.redact_attributes, text_filter=_redact.redact_body)
    )
    redacted = [redact_exporters.redact_span(s) for s in spans]
    assert sdk_encode_spans(redacted) == ours
    login, only_links = redacted
    assert (login.dropped_attributes, login.dropped_events, login.dropped_links) == (1, 1, 1)
    assert dict(login.attributes) == {"n": 1, "password": REDACTED}
    assert login.events[0].dropped_attributes == 1 and dict(login.events[0].attributes) == {"token": REDACTED}
    assert dict(login.links[0].attributes) == {"token": REDACTED}  # the link added last
    assert "abc.def.ghi" not in login.status.description
    assert dict(only_links.links[0].attributes) == {"secret": REDACTED}


def test_redact_server_span_url_query_and_captured_headers(monkeypatch):
    monkeypatch.setenv(_asgi.CAPTURE_REQUEST_HEADERS_ENV, "authorization, x-api-key, user-agent, x-custom-.*")
    monkeypatch.setenv(_asgi.CAPTURE_RESPONSE_HEADERS_ENV, "set-cookie,content-type")
    provider, exported = _span_exporter_pipeline()
    inst = _asgi.HTTPInstrumentation(
        tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()])
    )
    _asgi.instrument_fastapi(inst)
    try:
        app = FastAPI()

        @app.get("/items/{item_id}")
        async def item(item_id: int, response: Response) -> dict:
            response.set_cookie("session", "s3cret")
            return {"id": item_id}

        TestClient(app).get(
            "/items/1?token=abc&page=2",
            headers={
                "Authorization": "Bearer abc",
                "X-API-Key": "k",
                "User-Agent": "pytest",
                "X-Custom-Tenant": "t1",
                "X-Other": "not captured",
            },
        )
    finally:
        _asgi.uninstrument_fastapi()
    (span,) = exported.get_finished_spans()
    attributes = dict(span.attributes)
    assert attributes["url.query"] == f"token={REDACTED}&page=2"
    assert attributes["http.request.header.authorization"] == (REDACTED,)
    assert attributes["http.request.header.x-api-key"] == (REDACTED,)
    assert attributes["http.request.header.user-agent"] == ("pytest",)
    assert attributes["http.request.header.x-custom-tenant"] == ("t1",)
    assert "http.request.header.x-other" not in attributes
    assert attributes["http.response.header.set-cookie"] == (REDACTED,)
    assert attributes["http.response.header.content-type"] == ("application/json",)
    assert "s3cret" not in json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()})


def test_redact_log_attributes_on_export_and_console():
    exported = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(redact_exporters.RedactingLogRecordExporter(exported)))
    handler = LoggingHandler(logger_provider=provider)
    logger = logging.getLogger("test_redact.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("login", extra={"user": "ana", "password": "hunter2", "auth": {"access_token": "t"}})
    finally:
        logger.removeHandler(handler)
    (record,) = exported.get_finished_logs()
    attributes = dict(record.log_record.attributes)
    assert attributes["user"] == "ana"
    assert attributes["password"] == REDACTED
    assert attributes["auth"] == {"access_token": REDACTED}

    console = logging.LogRecord("app", logging.INFO, __file__, 1, "login", (), None)
    console.__dict__.update(user="ana", password="hunter2")
    doc = json.loads(_logs.ConsoleFormatter("json").format(console))
    assert (doc["user"], doc["password"]) == ("ana", REDACTED)
    assert "hunter2" not in _logs.ConsoleFormatter("pretty").format(console)


def test_redact_build_providers_wraps_exporters(monkeypatch):
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    monkeypatch.setattr(
        providers, "exporters_for", lambda signal, settings=None: {"traces": [spans], "logs": [logs]}.get(signal, [])
    )
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings(redact_keys=("ssn",)))
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            span.set_attributes({"user.ssn": "123", "url.query": "password=x", "ok": 1})
        from opentelemetry._logs import LogRecord

        logger_provider.get_logger("l").emit(LogRecord(body="b", attributes={"client_secret": "c", "ok": 1}))
        tracer_provider.force_flush()
        logger_provider.force_flush()
        (exported_span,) = spans.get_finished_spans()
        assert dict(exported_span.attributes) == {"user.ssn": REDACTED, "url.query": f"password={REDACTED}", "ok": 1}
        (exported_log,) = logs.get_finished_logs()
        assert dict(exported_log.log_record.attributes) == {"client_secret": REDACTED, "ok": 1}
    finally:
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()


def test_redact_fast_exporters_redact_while_encoding(monkeypatch):
    for var in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTELKIT_FAST_EXPORT", "OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER"):
        monkeypatch.delenv(var, raising=False)
    from otelkit._runtime.otlp import encode
    from otelkit._runtime.redact import redact_attributes

    span_exporter = exporters.exporters_for("traces", Settings())[0].resolve()
    log_exporter = exporters.exporters_for("logs", Settings())[0].resolve()
    try:
        # otelkit's encoders where the installed SDK allows them (1.43+), else the redacting wrappers.
        for exporter, path, wrapper in (
            (span_exporter, encode.ENCODE_SPANS, redact_exporters.RedactingSpanExporter),
            (log_exporter, encode.ENCODE_LOGS, redact_exporters.RedactingLogRecordExporter),
        ):
            if path.on:
                assert exporter._attribute_filter is redact_attributes
            else:
                assert type(exporter) is wrapper
    finally:
        span_exporter.shutdown()
        log_exporter.shutdown()
