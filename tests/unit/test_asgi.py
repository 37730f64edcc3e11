from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otelkit._runtime.env import DEFAULT_EXCLUDED_URLS
from otelkit._runtime.http import asgi as _asgi


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list:
        data = self.reader.get_metrics_data()
        found = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/orders/{order_id}")
    async def order(order_id: int) -> dict:
        return {"id": order_id}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        if item_id == 0:
            raise HTTPException(404)
        return {"id": item_id}

    @app.get("/crash")
    async def crash() -> None:
        raise ValueError("kaput")

    @app.get("/health/live")
    async def live() -> dict:
        return {"ok": True}

    app.include_router(router)
    sub = FastAPI()

    @sub.get("/things/{name}")
    async def thing(name: str) -> dict:
        return {"name": name}

    app.mount("/sub", sub)
    return app


@pytest.fixture(params=[False])
def tel(request):
    t = Telemetry()
    inst = _asgi.HTTPInstrumentation(
        tracer_provider=t.tracer_provider,
        meter_provider=t.meter_provider,
        excluded_urls=DEFAULT_EXCLUDED_URLS,
        request_id_header="X-Request-ID",
        body_size_metrics=request.param,
    )
    _asgi.instrument_fastapi(inst)
    yield t
    _asgi.uninstrument_fastapi()


def test_asgi_one_server_span_per_request_with_route(tel):
    client = TestClient(_app())
    assert client.get("/items/7?x=1", headers={"user-agent": "pytest-agent"}).status_code == 200
    spans = tel.spans.get_finished_spans()
    assert len(spans) == 1
    span = spans[0]
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/items/7"
    assert span.attributes["url.query"] == "x=1"
    assert span.attributes["user_agent.original"] == "pytest-agent"
    assert "http.host" not in span.attributes


def test_asgi_duration_metric_has_route_and_no_raw_path(tel):
    client = TestClient(_app())
    for i in (1, 2, 3):
        client.get(f"/items/{i}")
    client.get("/no/such/path")
    points = tel.points("http.server.request.duration")
    by_route = {p.attributes.get("http.route"): p for p in points}
    assert by_route["/items/{item_id}"].count == 3
    unmatched = by_route[None]
    assert unmatched.count == 1
    assert unmatched.attributes["http.response.status_code"] == 404
    for p in points:
        assert set(p.attributes) <= {
            "http.request.method",
            "url.scheme",
            "network.protocol.version",
            "http.response.status_code",
            "http.route",
            "error.type",
        }


def test_asgi_router_prefix_and_mounted_app_routes(tel):
    client = TestClient(_app())
    client.get("/v1/orders/5")
    client.get("/sub/things/abc")
    names = sorted(s.name for s in tel.spans.get_finished_spans())
    assert names == ["GET /sub/things/{name}", "GET /v1/orders/{order_id}"]


def test_asgi_excluded_health_has_no_span_and_no_metric(tel):
    client = TestClient(_app())
    client.get("/health/live")
    assert tel.spans.get_finished_spans() == ()
    assert tel.points("http.server.request.duration") == []


def test_asgi_default_exclusion_is_only_the_health_endpoints(tel):
    app = _app()

    @app.get("/healthcare")
    async def healthcare() -> dict:
        return {}

    client = TestClient(app)
    for path in ("/health/live", "/health/live?verbose=1", "/healthcare", "/items/1"):
        client.get(path)
    assert sorted(s.name for s in tel.spans.get_finished_spans()) == ["GET /healthcare", "GET /items/{item_id}"]


def test_asgi_custom_exclusion_matches_anywhere_in_the_url():
    t = Telemetry()
    inst = _asgi.HTTPInstrumentation(
        tracer_provider=t.tracer_provider,
        meter_provider=t.meter_provider,
        excluded_urls=r"items/7,\?skip",
        request_id_header="X-Request-ID",
        body_size_metrics=False,
    )
    _asgi.instrument_fastapi(inst)
    try:
        client = TestClient(_app())
        for path in ("/items/7", "/items/8?skip=1", "/items/9"):
            client.get(path)
    finally:
        _asgi.uninstrument_fastapi()
    assert [s.attributes["url.path"] for s in t.spans.get_finished_spans()] == ["/items/9"]


def test_asgi_exception_marks_span_and_metric_as_error(tel):
    client = TestClient(_app(), raise_server_exceptions=False)
    assert client.get("/crash").status_code == 500
    (span,) = tel.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert span.attributes["http.response.status_code"] == 500
    (point,) = tel.points("http.server.request.duration")
    assert point.attributes["error.type"] == "ValueError"


def test_asgi_client_error_is_not_a_server_error(tel):
    client = TestClient(_app())
    client.get("/items/0")
    (span,) = tel.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes


def test_asgi_traceparent_continues_the_callers_trace(tel):
    client = TestClient(_app())
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client.get("/items/1", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    (span,) = tel.spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_asgi_unknown_method_is_other(tel):
    client = TestClient(_app())
    client.request("FOO", "/items/1")
    (span,) = tel.spans.get_finished_spans()
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "FOO"


def test_asgi_active_requests_back_to_zero(tel):
    client = TestClient(_app())
    client.get("/items/1")
    (point,) = tel.points("http.server.active_requests")
    assert point.value == 0


def test_asgi_instrument_is_idempotent(tel):
    import fastapi

    wrapped = fastapi.FastAPI.__call__
    _asgi.instrument_fastapi()
    assert fastapi.FastAPI.__call__ is wrapped


@pytest.mark.parametrize("tel", [True], indirect=True)
def test_asgi_body_sizes_are_recorded_in_bytes(tel):
    app = FastAPI()

    @app.post("/echo/{name}")
    async def echo(name: str, payload: dict) -> dict:
        return {"name": name, "payload": payload}

    client = TestClient(app)
    response = client.post("/echo/x", json={"k": "v" * 100})
    client.get("/echo/x")  # 405: no request body, a response body
    (request_point,) = tel.points("http.server.request.body.size")
    assert request_point.count == 1
    assert request_point.sum == len(response.request.content) >= 108  # httpx < 0.28 adds spaces
    assert request_point.attributes["http.route"] == "/echo/{name}"
    response_points = tel.points("http.server.response.body.size")
    by_status = {p.attributes["http.response.status_code"]: p for p in response_points}
    assert by_status[200].sum == len(response.content)
    assert by_status[405].count == 1
    posted = next(s for s in tel.spans.get_finished_spans() if s.attributes["http.request.method"] == "POST")
    assert posted.attributes["http.response.body.size"] == len(response.content)
    assert posted.attributes["http.request.body.size"] == request_point.sum


def test_asgi_body_sizes_are_opt_in(tel):
    client = TestClient(_app())
    client.get("/items/3")
    assert tel.points("http.server.response.body.size") == []
    (span,) = tel.spans.get_finished_spans()
    assert "http.response.body.size" not in span.attributes


@pytest.mark.parametrize("tel", [True], indirect=True)
def test_asgi_metrics_never_carry_host_or_raw_path(tel):
    client = TestClient(_app())
    for i in range(5):
        client.get(f"/items/{i + 1}", headers={"host": f"tenant{i}.example.com"})
        client.get(f"/random/{i}/path?q={i}", headers={"host": f"evil{i}.example.com"})
    for name in ("http.server.request.duration", "http.server.response.body.size", "http.server.active_requests"):
        points = tel.points(name)
        assert points
        for p in points:
            values = " ".join(str(v) for v in p.attributes.values())
            assert "example.com" not in values
            assert "/random/" not in values and "/items/1" not in values
            assert not {"http.host", "server.address", "url.path", "url.full", "http.target"} & set(p.attributes)
    by_route = {p.attributes.get("http.route") for p in tel.points("http.server.request.duration")}
    assert by_route == {"/items/{item_id}", None}


@pytest.fixture
def tel_no_url_exclusion():
    t = Telemetry()
    inst = _asgi.HTTPInstrumentation(
        tracer_provider=t.tracer_provider,
        meter_provider=t.meter_provider,
        excluded_urls="",
        request_id_header="X-Request-ID",
        body_size_metrics=False,
    )
    _asgi.instrument_fastapi(inst)
    yield t
    _asgi.uninstrument_fastapi()


def test_asgi_only_otelkits_health_router_is_untraced_wherever_it_is_mounted(tel_no_url_exclusion):
    from otelkit.health import Health

    tel = tel_no_url_exclusion
    app = FastAPI()
    app.include_router(Health().router(), prefix="/ops")

    @app.get("/status/health")
    async def own() -> dict:
        return {}

    client = TestClient(app)
    for path in ("/ops/health", "/ops/health/live", "/ops/health/ready?verbose=1", "/ops/health/live"):
        assert client.get(path).status_code == 200
    assert "x-request-id" not in client.get("/ops/health/live").headers  # left out up front once known
    client.get("/status/health")
    client.get("/health/live")  # this app has no such route: a 404 like any other
    assert sorted(s.name for s in tel.spans.get_finished_spans()) == ["GET", "GET /status/health"]
    statuses = sorted(p.attributes["http.response.status_code"] for p in tel.points("http.server.request.duration"))
    assert statuses == [200, 404]


def test_asgi_an_apps_own_health_route_is_traced(tel_no_url_exclusion):
    client = TestClient(_app())  # its /health/live is the app's, not otelkit's router
    client.get("/health/live")
    assert [s.name for s in tel_no_url_exclusion.spans.get_finished_spans()] == ["GET /health/live"]


def _mounted_asgi_app() -> FastAPI:
    """An app with what real apps mount: a plain ASGI sub-app (socket.io's shape) and the docs."""
    app = FastAPI()

    async def sio(scope, receive, send) -> None:  # a raw ASGI app such as socketio.ASGIApp
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    app.mount("/ws", sio)
    outer = FastAPI()
    outer.mount("/api", app)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    return outer


def test_asgi_mounts_docs_and_openapi_are_named_by_their_route(tel):
    client = TestClient(_mounted_asgi_app())
    for path in ("/api/ws/socket.io/?EIO=4&transport=polling", "/docs", "/openapi.json", "/api/docs", "/api/items/3"):
        assert client.get(path).status_code == 200, path
    client.get("/nowhere")
    names = [s.name for s in tel.spans.get_finished_spans()]
    expected = ["GET /api/ws", "GET /docs", "GET /openapi.json", "GET /api/docs", "GET /api/items/{item_id}", "GET"]
    assert names == expected
    routes = sorted(str(p.attributes.get("http.route")) for p in tel.points("http.server.request.duration"))
    assert routes == ["/api/docs", "/api/items/{item_id}", "/api/ws", "/docs", "/openapi.json", "None"]


@pytest.fixture
def otel_records():
    """An OTel log handler as otelkit prepares it, on a test logger; yields (logger, exporter)."""
    import logging

    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from otelkit._runtime.logs import handler as _logs

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=provider)
    _logs.prepare_otel_handler(handler)
    logger = logging.getLogger("test_asgi.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, exporter
    logger.removeHandler(handler)


async def _serve(app, path: str, headers=()) -> BaseException | None:
    """One request straight through the ASGI interface, as uvicorn runs it."""
    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": list(headers), "scheme": "http", "http_version": "1.1",
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    try:
        await app(scope, receive, send)
    except BaseException as exc:
        return exc
    return None


def test_asgi_exception_record_written_after_the_request_carries_its_ids(tel, otel_records):
    import asyncio

    logger, exporter = otel_records
    app = _app()
    error = asyncio.run(_serve(app, "/crash", [(b"x-request-id", b"req-crash-1")]))
    assert isinstance(error, ValueError)
    # uvicorn: logged once the request's span has ended and its context is gone.
    logger.error("Exception in ASGI application\n", exc_info=(type(error), error, error.__traceback__))
    (span,) = tel.spans.get_finished_spans()
    (data,) = exporter.get_finished_logs()
    assert data.log_record.trace_id == span.context.trace_id
    assert data.log_record.span_id == span.context.span_id
    assert data.log_record.attributes["request.id"] == "req-crash-1"


def test_asgi_task_started_in_a_request_stops_claiming_it_when_the_request_ends(tel, otel_records):
    import asyncio

    logger, exporter = otel_records
    app = FastAPI()
    release = asyncio.Event

    async def main() -> None:
        go = release()
        done = release()

        async def listener() -> None:
            logger.info("listener started")
            await go.wait()
            logger.info("listener after the request")
            done.set()

        @app.get("/listen")
        async def listen() -> dict:
            app.state.task = asyncio.create_task(listener())
            await asyncio.sleep(0)
            return {}

        assert await _serve(app, "/listen", [(b"x-request-id", b"req-listen-1")]) is None
        go.set()
        await done.wait()

    asyncio.run(main())
    (span,) = tel.spans.get_finished_spans()
    during, after = (d.log_record for d in exporter.get_finished_logs())
    assert (during.trace_id, during.attributes["request.id"]) == (span.context.trace_id, "req-listen-1")
    assert after.trace_id in (0, None)
    assert "request.id" not in after.attributes


class _HeaderPropagator:
    """A user's own propagator: the trace context in one header of its own (as B3, Jaeger or X-Ray do)."""

    fields = frozenset({"x-test-trace"})

    def extract(self, carrier, context=None, getter=None):
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

        values = (getter.get(carrier, "x-test-trace") if getter else None) or []
        if not values:
            return context
        trace_id, span_id = values[0].split(":")
        parent = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
        return set_span_in_context(NonRecordingSpan(parent), context)

    def inject(self, carrier, context=None, setter=None):
        return None


@pytest.mark.parametrize("with_w3c", [False, True], ids=["own-only", "own-and-w3c"])
def test_asgi_continues_the_trace_an_installed_propagator_reads(tel, with_w3c):
    """Not only W3C headers carry a trace: with OTEL_PROPAGATORS naming b3, jaeger, xray, … (or
    set_global_textmap), a request with only that propagator's header continues the caller's trace."""
    from opentelemetry import propagate
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    own = _HeaderPropagator()
    chosen = [TraceContextTextMapPropagator(), W3CBaggagePropagator(), own] if with_w3c else [own]
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator(chosen))
    try:
        client = TestClient(_app())
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        client.get("/items/1", headers={"x-test-trace": f"{trace_id}:00f067aa0ba902b7"})
        client.get("/items/2")
    finally:
        propagate.set_global_textmap(before)
    continued, fresh = tel.spans.get_finished_spans()
    assert format(continued.context.trace_id, "032x") == trace_id
    assert format(continued.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert fresh.parent is None and format(fresh.context.trace_id, "032x") != trace_id
