from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from opentelemetry import baggage
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.propagate import inject
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._runtime.http import asgi as _asgi
from otelkit._runtime.logs import console as _logs
from otelkit._runtime.logs import handler as _handler
from otelkit.context import get_request_id

GENERATED = re.compile(r"[0-9a-f]{32}")
log = logging.getLogger("test_request_id.app")


class Tel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def span(self):
        (span,) = self.spans.get_finished_spans()
        return span


def _instrument(tel: Tel, header: str | None = "X-Request-ID") -> None:
    _asgi.instrument_fastapi(
        _asgi.HTTPInstrumentation(
            tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider, request_id_header=header
        )
    )


@pytest.fixture
def tel():
    t = Tel()
    _instrument(t)
    yield t
    _asgi.uninstrument_fastapi()


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/echo")
    async def echo() -> dict:
        log.info("async handler")
        return {"request_id": get_request_id()}

    @app.get("/sync")
    def sync() -> dict:
        log.info("sync handler in the thread pool")
        return {"request_id": get_request_id()}

    return app


def test_request_id_incoming_is_kept_returned_and_on_span(tel):
    response = TestClient(_app()).get("/echo", headers={"X-Request-ID": "req-42.a:b_c"})
    assert response.headers["x-request-id"] == "req-42.a:b_c"
    assert response.json() == {"request_id": "req-42.a:b_c"}
    assert tel.span().attributes["request.id"] == "req-42.a:b_c"


def test_request_id_generated_when_absent_and_unique(tel):
    client = TestClient(_app())
    first = client.get("/echo").headers["x-request-id"]
    second = client.get("/sync").headers["x-request-id"]
    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second
    spans = tel.spans.get_finished_spans()
    assert [s.attributes["request.id"] for s in spans] == [first, second]


def test_request_id_header_name_is_configurable():
    tel = Tel()
    _instrument(tel, header="X-Correlation-ID")
    try:
        response = TestClient(_app()).get("/echo", headers={"X-Correlation-ID": "abc", "X-Request-ID": "other"})
    finally:
        _asgi.uninstrument_fastapi()
    assert response.headers["x-correlation-id"] == "abc"
    assert "x-request-id" not in response.headers
    assert response.json() == {"request_id": "abc"}


def test_request_id_header_name_defaults_from_settings(monkeypatch):
    monkeypatch.setenv("OTELKIT_REQUEST_ID_HEADER", "X-Trace-Ref")
    tel = Tel()
    _instrument(tel, header=None)
    try:
        response = TestClient(_app()).get("/echo", headers={"X-Trace-Ref": "ref-1"})
    finally:
        _asgi.uninstrument_fastapi()
    assert response.headers["x-trace-ref"] == "ref-1"


def test_request_id_from_upstream_baggage_is_kept(tel):
    response = TestClient(_app()).get("/echo", headers={"baggage": "request.id=up-7,other=x"})
    assert response.headers["x-request-id"] == "up-7"
    assert tel.span().attributes["request.id"] == "up-7"


def test_request_id_header_wins_over_baggage(tel):
    response = TestClient(_app()).get("/echo", headers={"baggage": "request.id=up-7", "x-request-id": "mine"})
    assert response.json() == {"request_id": "mine"}


async def _raw_request(
    app: FastAPI, headers: list[tuple[bytes, bytes]]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], start["headers"], body


@pytest.mark.parametrize(
    "bad",
    [
        b"a" * 10000,
        b"x" * 129,
        b"x\r\nSet-Cookie: a=b",
        "héllo-wörld".encode(),
        "请求".encode(),
        b"id with spaces",
        b"<script>alert(1)</script>",
        b"",
        b"id;drop=1",
    ],
)
def test_request_id_malicious_values_are_replaced_not_echoed(tel, bad):
    status, headers, body = asyncio.run(_raw_request(_app(), [(b"x-request-id", bad)]))
    assert status == 200
    values = [v for k, v in headers if k == b"x-request-id"]
    assert len(values) == 1
    assert GENERATED.fullmatch(values[0].decode())
    assert json.loads(body) == {"request_id": values[0].decode()}
    assert tel.span().attributes["request.id"] == values[0].decode()
    assert not any(b"set-cookie" in k for k, _ in headers)


def test_request_id_at_the_length_limit_is_kept(tel):
    rid = "x" * 128
    _, headers, _ = asyncio.run(_raw_request(_app(), [(b"x-request-id", rid.encode())]))
    assert (b"x-request-id", rid.encode()) in headers


def test_request_id_malformed_baggage_value_is_replaced(tel):
    headers = [(b"baggage", b"request.id=%0D%0ASet-Cookie%3A%20a")]
    _, response_headers, _ = asyncio.run(_raw_request(_app(), headers))
    value = dict(response_headers)[b"x-request-id"].decode()
    assert GENERATED.fullmatch(value)


@pytest.fixture
def otel_logs():
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    _handler.prepare_otel_handler(handler)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield exporter
    log.removeHandler(handler)


def test_request_id_on_every_log_record_of_the_request(tel, otel_logs):
    client = TestClient(_app())
    first = client.get("/echo", headers={"x-request-id": "r-1"})
    second = client.get("/sync")
    log.info("outside any request")
    records = [r.log_record for r in otel_logs.get_finished_logs()]
    assert [r.body for r in records] == ["async handler", "sync handler in the thread pool", "outside any request"]
    assert records[0].attributes["request.id"] == "r-1"
    assert records[1].attributes["request.id"] == second.headers["x-request-id"]
    assert "request.id" not in records[2].attributes
    assert first.status_code == 200


def test_request_id_in_console_output():
    formatter_json = _logs.ConsoleFormatter("json")
    formatter_pretty = _logs.ConsoleFormatter("pretty")
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", (), None)
    from opentelemetry import context as otel_context

    from otelkit.context import with_request_id

    token = otel_context.attach(with_request_id("r-9"))
    try:
        doc = json.loads(formatter_json.format(record))
        line = formatter_pretty.format(record)
    finally:
        otel_context.detach(token)
    assert doc["request_id"] == "r-9"
    assert "request.id" not in doc
    assert line.endswith("request_id=r-9")
    assert "request_id" not in json.loads(formatter_json.format(record))


def test_request_id_propagates_to_outgoing_httpx_calls_and_task_headers(tel):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    seen: list[httpx.Request] = []
    outgoing = httpx.Client(transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204)))
    HTTPXClientInstrumentor.instrument_client(outgoing, tracer_provider=tel.tracer_provider)
    app = FastAPI()
    carriers: list[dict] = []

    @app.get("/call")
    def call() -> dict:
        outgoing.get("http://downstream.test/x")
        carrier: dict[str, str] = {}
        inject(carrier)  # what the Celery instrumentation does when publishing a task
        carriers.append(carrier)
        return {}

    try:
        TestClient(app).get("/call", headers={"x-request-id": "prop-1"})
    finally:
        HTTPXClientInstrumentor.uninstrument_client(outgoing)
        outgoing.close()
    (request,) = seen
    assert "request.id=prop-1" in request.headers["baggage"]
    assert "traceparent" in request.headers
    assert "request.id=prop-1" in carriers[0]["baggage"]
    assert baggage.get_baggage("request.id") is None


_CELERY_SCRIPT = """
import os
from celery import Celery
from celery.contrib.testing.worker import start_worker
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from otelkit.context import get_request_id, with_request_id

app = Celery("rid", broker="memory://", backend="cache+memory://")
app.conf.broker_transport_options = {"polling_interval": 0.01}
seen = []

@app.task
def remember():
    seen.append(get_request_id())

CeleryInstrumentor().instrument(tracer_provider=TracerProvider())
worker = start_worker(app, perform_ping_check=False, pool="solo")
worker.__enter__()
token = otel_context.attach(with_request_id("rid-celery"))
result = remember.delay()
otel_context.detach(token)
result.get(timeout=30, interval=0.01)
print("seen", seen, flush=True)
os._exit(0)  # the embedded worker's graceful stop takes seconds; nothing else to clean up
"""


def test_request_id_reaches_a_celery_task_through_baggage(tmp_path):
    # A subprocess: an embedded Celery worker reconfigures the root logger and the default app.
    script = tmp_path / "celery_rid.py"
    script.write_text(_CELERY_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "seen ['rid-celery']" in result.stdout


@pytest.mark.parametrize("with_baggage", [False, True])
@pytest.mark.parametrize("explicit", [False, True])
def test_request_context_is_what_the_api_builds(with_baggage: bool, explicit: bool) -> None:
    from opentelemetry import baggage, trace
    from opentelemetry import context as otel_context

    from otelkit.context import request_context, with_request_id

    base = otel_context.set_value("other", 1, baggage.set_baggage("tenant", "t1") if with_baggage else None)
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    token = None if explicit else otel_context.attach(base)
    try:
        ctx = base if explicit else None
        built = request_context(span, "r-1", ctx)
        expected = trace.set_span_in_context(span, with_request_id("r-1", ctx))
    finally:
        if token is not None:
            otel_context.detach(token)
    assert built == expected
    assert baggage.get_all(built) == ({"tenant": "t1", "request.id": "r-1"} if with_baggage else {"request.id": "r-1"})
    assert trace.get_current_span(built) is span


def test_request_ids_differ_between_forked_workers() -> None:
    # Pre-forked workers (gunicorn --preload, Celery prefork) share the parent's memory: the id
    # generator must be one CPython reseeds in every child.
    import os
    import warnings

    ids = []
    for _ in range(2):
        read, write = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
            pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.write(write, _asgi._random_bits(128).to_bytes(16, "big"))
            os._exit(0)
        os.close(write)
        ids.append(os.read(read, 16))
        os.close(read)
        os.waitpid(pid, 0)
    assert ids[0] != ids[1]


def test_request_id_header_set_by_the_app_is_sent_once(tel):
    """An app with its own request-id middleware (or route) keeps its value, and the header appears once."""
    app = _app()

    @app.get("/own")
    async def own(response: Response) -> dict:
        response.headers["X-Request-ID"] = "app-chosen-1"
        return {}

    class RawHeaderMiddleware:  # sends the name in its own case, as raw ASGI apps may
        def __init__(self, inner) -> None:
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:
            async def send_with_header(message) -> None:
                if message["type"] == "http.response.start" and scope["path"] == "/echo":
                    message["headers"] = [*message.get("headers", []), (b"X-Request-ID", b"app-chosen-2")]
                await send(message)

            await self.inner(scope, receive, send_with_header)

    app.add_middleware(RawHeaderMiddleware)
    client = TestClient(app)
    own_response = client.get("/own", headers={"X-Request-ID": "incoming-1"})
    assert own_response.headers.get_list("x-request-id") == ["app-chosen-1"]
    raw_response = client.get("/echo")
    assert raw_response.headers.get_list("x-request-id") == ["app-chosen-2"]
    plain = client.get("/sync", headers={"X-Request-ID": "incoming-3"})
    assert plain.headers.get_list("x-request-id") == ["incoming-3"]
