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
    assert request_point.sum == len(b'{"k":"' + b"v" * 100 + b'"}')
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
