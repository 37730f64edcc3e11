"""otelkit.testing: the OTLP/HTTP receiver fed by the SDK's own exporters, and the in-memory providers."""

from __future__ import annotations

import errno
import gzip
import http.client
import json
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import otelkit.testing
from otelkit.testing import InMemoryTelemetry, OTLPReceiver, ReceivedLog, ReceivedMetricPoint, ReceivedSpan

_RESOURCE = Resource.create({"service.name": "checkout"})
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as r:
        yield r


def _tracer_provider(endpoint: str, **exporter_kwargs: object) -> TracerProvider:
    provider = TracerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, **exporter_kwargs)))
    return provider


def _logger_provider(endpoint: str) -> LoggerProvider:
    provider = LoggerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint)))
    return provider


def _meter_provider(endpoint: str) -> MeterProvider:
    # An interval that never fires: the test exports with shutdown(), exactly once.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint), export_interval_millis=3_600_000)
    return MeterProvider(resource=_RESOURCE, metric_readers=[reader], shutdown_on_exit=False)


def _post(
    url: str, body: bytes, content_type: str = "application/x-protobuf", **headers: str
) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type, **headers})
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def _otlp_json_span(trace_id: str, span_id: str) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                    "scopeSpans": [
                        {
                            "scope": {"name": "manual"},
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": span_id,
                                    "name": "from json",
                                    "kind": 3,
                                    "startTimeUnixNano": "1700000000000000000",
                                    "endTimeUnixNano": "1700000000002000000",
                                    "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                    "futureField": "ignored",
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()


def test_testing_all_is_exported() -> None:
    for name in otelkit.testing.__all__:
        assert hasattr(otelkit.testing, name), name


def test_receiver_decodes_spans_from_sdk_exporter(receiver: OTLPReceiver) -> None:
    provider = _tracer_provider(receiver.url("traces"))
    tracer = provider.get_tracer("shop.handlers")
    with tracer.start_as_current_span(
        "GET /items/{item_id}", kind=SpanKind.SERVER, attributes={"http.route": "/items/{item_id}", "tags": ["a", "b"]}
    ) as parent:
        parent.add_event("cache miss", {"key": "item:3"})
        with tracer.start_as_current_span("SELECT items") as child:
            child.set_status(Status(StatusCode.ERROR, "timeout"))
    provider.shutdown()

    receiver.wait_for(lambda r: len(r.spans) == 2)
    server = receiver.spans_named("GET /items/{item_id}")[0]
    db = receiver.spans_named("SELECT items")[0]
    assert server.kind == "SERVER"
    assert server.attributes == {"http.route": "/items/{item_id}", "tags": ("a", "b")}
    assert server.parent_span_id == ""
    assert len(server.trace_id) == 32 and server.trace_id == server.trace_id.lower()
    assert len(server.span_id) == 16
    assert server.events[0].name == "cache miss" and server.events[0].attributes == {"key": "item:3"}
    assert server.service_name == "checkout" and server.scope_name == "shop.handlers"
    assert server.duration_ns >= 0
    assert db.parent_span_id == server.span_id and db.trace_id == server.trace_id
    assert (db.kind, db.status_code, db.status_message) == ("INTERNAL", "ERROR", "timeout")
    assert receiver.requests["traces"] == 2 and receiver.items["traces"] == 2
    assert receiver.bytes_received > 0


def test_receiver_decodes_logs_from_sdk_exporter(receiver: OTLPReceiver) -> None:
    spans = _tracer_provider(receiver.url("traces"))
    logs = _logger_provider(receiver.url("logs"))
    logger = logs.get_logger("shop.logs")
    with spans.get_tracer("t").start_as_current_span("work") as span:
        logger.emit(
            body="fetched item",
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={"item_id": 3, "ratio": 0.5, "ok": True},
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    logger.emit(body={"structured": [1, 2]}, severity_number=SeverityNumber.WARN, event_name="shop.restock")
    logs.shutdown()
    spans.shutdown()

    receiver.wait_for(lambda r: len(r.logs) == 2)
    first, second = receiver.logs
    assert (first.body, first.severity_text, first.severity_number) == ("fetched item", "INFO", 9)
    assert first.attributes == {"item_id": 3, "ratio": 0.5, "ok": True}
    assert first.trace_id == trace_id and len(first.span_id) == 16
    assert first.service_name == "checkout" and first.scope_name == "shop.logs"
    assert first.time_ns > 0
    assert second.body == {"structured": (1, 2)}
    assert (second.trace_id, second.span_id, second.event_name) == ("", "", "shop.restock")
    assert receiver.logs_with(body_contains="fetched") == [first]
    assert receiver.logs_with(attributes={"item_id": 3}) == [first]
    assert receiver.logs_with(severity_text="ERROR") == []


def test_receiver_decodes_metrics_from_sdk_exporter(receiver: OTLPReceiver) -> None:
    provider = _meter_provider(receiver.url("metrics"))
    meter = provider.get_meter("shop.metrics")
    meter.create_counter("orders", unit="{order}").add(3, {"shop": "berlin"})
    meter.create_up_down_counter("queue.depth").add(-2)
    meter.create_gauge("temperature", unit="Cel").set(21.5)
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    for value in (0.01, 0.02, 0.004):
        duration.record(value, {"http.route": "/items/{item_id}"})
    provider.shutdown()

    receiver.wait_for(lambda r: len(r.metrics) == 4)
    orders = receiver.metric_points("orders")[0]
    assert (orders.type, orders.value, orders.unit) == ("sum", 3, "{order}")
    assert (orders.is_monotonic, orders.temporality) == (True, "CUMULATIVE")
    assert orders.attributes == {"shop": "berlin"} and orders.service_name == "checkout"
    assert orders.scope_name == "shop.metrics" and orders.time_ns >= orders.start_time_ns > 0
    depth = receiver.metric_points("queue.depth")[0]
    assert (depth.type, depth.value, depth.is_monotonic) == ("sum", -2, False)
    temperature = receiver.metric_points("temperature")[0]
    assert (temperature.type, temperature.value, temperature.temporality) == ("gauge", 21.5, "")
    histogram = receiver.metric_points("http.server.request.duration")[0]
    assert histogram.type == "histogram" and histogram.value is None
    assert histogram.count == 3 and histogram.sum == pytest.approx(0.034)
    assert (histogram.min, histogram.max) == (0.004, 0.02)
    assert sum(histogram.bucket_counts) == 3
    assert len(histogram.bucket_counts) == len(histogram.explicit_bounds) + 1
    assert histogram.attributes == {"http.route": "/items/{item_id}"}
    assert receiver.items["metrics"] == 4 and len(receiver.metric_points()) == 4


def test_receiver_accepts_gzip_protobuf(receiver: OTLPReceiver) -> None:
    provider = _tracer_provider(receiver.url("traces"), compression=Compression.Gzip)
    with provider.get_tracer("t").start_as_current_span("zipped"):
        pass
    provider.shutdown()

    receiver.wait_for(lambda r: r.spans_named("zipped"))
    assert receiver.last_headers["content-encoding"] == "gzip"


def test_receiver_accepts_otlp_json_with_hex_ids(receiver: OTLPReceiver) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

    status, body, content_type = _post(
        receiver.url("traces"), _otlp_json_span(trace_id, span_id), "application/json; charset=utf-8"
    )

    assert (status, content_type, json.loads(body)) == (200, "application/json", {})
    (span,) = receiver.spans
    assert (span.trace_id, span.span_id, span.name, span.kind) == (trace_id, span_id, "from json", "CLIENT")
    assert span.attributes == {"n": 7} and span.service_name == "json-svc"
    assert span.duration_ns == 2_000_000


def test_receiver_accepts_gzip_json(receiver: OTLPReceiver) -> None:
    payload = gzip.compress(_otlp_json_span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))

    status, _, _ = _post(receiver.url("traces"), payload, "application/json", **{"Content-Encoding": "gzip"})

    assert status == 200
    assert [s.name for s in receiver.spans] == ["from json"]


def test_receiver_answers_protobuf_with_empty_response(receiver: OTLPReceiver) -> None:
    status, body, content_type = _post(receiver.url("traces"), ExportTraceServiceRequest().SerializeToString())

    assert (status, body, content_type) == (200, b"", "application/x-protobuf")
    assert receiver.requests == {"traces": 1, "metrics": 0, "logs": 0}


def test_receiver_accepts_any_path_prefix_like_loki(receiver: OTLPReceiver) -> None:
    provider = _logger_provider(receiver.endpoint + "/otlp/v1/logs")
    provider.get_logger("loki").emit(body="to loki", severity_number=SeverityNumber.INFO)
    provider.shutdown()

    receiver.wait_for(lambda r: r.logs_with(body_contains="to loki"))
    assert receiver.requests["logs"] == 1


def test_receiver_answers_404_for_other_paths(receiver: OTLPReceiver) -> None:
    assert _post(receiver.endpoint + "/v1/profiles", b"")[0] == 404
    assert _post(receiver.endpoint + "/", b"")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        _NO_PROXY.open(receiver.endpoint + "/metrics", timeout=10)
    with info.value:
        assert info.value.code == 404
    assert receiver.requests == {"traces": 0, "metrics": 0, "logs": 0}


def test_receiver_answers_400_for_undecodable_bodies(receiver: OTLPReceiver) -> None:
    assert _post(receiver.url("traces"), b"not protobuf")[0] == 400
    assert _post(receiver.url("logs"), b"{not json", "application/json")[0] == 400
    assert (
        _post(
            receiver.url("traces"),
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
        )[0]
        == 400
    )
    assert _post(receiver.url("metrics"), b"plain", "application/x-protobuf", **{"Content-Encoding": "gzip"})[0] == 400

    assert receiver.bad_requests == 4
    assert receiver.requests == {"traces": 0, "metrics": 0, "logs": 0}


def test_receiver_connections_send_without_nagle_like_a_collector(receiver: OTLPReceiver) -> None:
    # A reply is two writes (headers, then body): with Nagle, a reply with a body (any refusal)
    # waited ~40 ms for the client's delayed ACK. Go's net/http, a real collector's, sets TCP_NODELAY.
    connection = http.client.HTTPConnection(receiver.host, receiver.port, timeout=10)
    try:
        connection.request(
            "POST", "/v1/traces", body=b"not protobuf", headers={"Content-Type": "application/x-protobuf"}
        )
        response = connection.getresponse()
        assert response.status == 400 and response.read()
        assert not response.will_close  # the connection stays open, on the receiver's side too
        with receiver._lock:
            sockets = list(receiver._connections)
        assert len(sockets) == 1
        assert sockets[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        connection.close()


def test_receiver_answers_415_for_unsupported_media(receiver: OTLPReceiver) -> None:
    assert _post(receiver.url("traces"), b"", "text/plain")[0] == 415
    assert _post(receiver.url("traces"), b"", "application/x-protobuf", **{"Content-Encoding": "br"})[0] == 415
    assert receiver.bad_requests == 2


def test_receiver_fail_with_refuses_exports(receiver: OTLPReceiver) -> None:
    receiver.fail_with = 503
    assert _post(receiver.url("traces"), ExportTraceServiceRequest().SerializeToString())[0] == 503
    assert receiver.failed_requests == 1 and receiver.requests["traces"] == 0

    receiver.fail_with = None
    assert _post(receiver.url("traces"), ExportTraceServiceRequest().SerializeToString())[0] == 200


def test_receiver_delay_still_answers(receiver: OTLPReceiver) -> None:
    receiver.delay = 0.01
    assert _post(receiver.url("traces"), b"")[0] == 200


def test_receiver_keep_false_only_counts() -> None:
    with OTLPReceiver(keep=False) as receiver:
        provider = _tracer_provider(receiver.url("traces"))
        for _ in range(3):
            with provider.get_tracer("t").start_as_current_span("counted"):
                pass
        provider.shutdown()

        receiver.wait_for(lambda r: r.items["traces"] == 3)
        assert receiver.spans == []
        assert receiver.requests["traces"] == 3


def test_receiver_on_batch_gets_flattened_records() -> None:
    batches: list[tuple[str, list[object]]] = []
    with OTLPReceiver(on_batch=lambda signal, records: batches.append((signal, list(records)))) as receiver:
        provider = _tracer_provider(receiver.url("traces"))
        with provider.get_tracer("t").start_as_current_span("seen"):
            pass
        provider.shutdown()

        receiver.wait_for(lambda r: r.spans)
        assert [(signal, [type(r) for r in records]) for signal, records in batches] == [("traces", [ReceivedSpan])]
        assert receiver.spans == batches[0][1]


def test_receiver_on_message_gets_the_decoded_request_and_flattens_nothing() -> None:
    messages: list[tuple[str, object]] = []
    with OTLPReceiver(keep=False, on_message=lambda signal, message: messages.append((signal, message))) as receiver:
        provider = _tracer_provider(receiver.url("traces"))
        tracer = provider.get_tracer("scope-a")
        with tracer.start_as_current_span("first"), tracer.start_as_current_span("second"):
            pass
        provider.shutdown()

        receiver.wait_for(lambda r: r.items["traces"] == 2)
        assert all(isinstance(message, ExportTraceServiceRequest) for _, message in messages)
        seen = [
            (signal, [(ss.scope.name, [s.name for s in ss.spans]) for rs in m.resource_spans for ss in rs.scope_spans])
            for signal, m in messages  # type: ignore[attr-defined]
        ]
        assert seen == [("traces", [("scope-a", ["second"])]), ("traces", [("scope-a", ["first"])])]
        assert receiver.spans == []  # keep=False: nothing stored, nothing flattened


def test_receiver_clear_forgets_everything(receiver: OTLPReceiver) -> None:
    _post(
        receiver.url("traces"),
        _otlp_json_span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        "application/json",
    )
    receiver.clear()
    assert receiver.spans == [] and receiver.requests["traces"] == 0 and receiver.bytes_received == 0


def test_receiver_wait_for_reports_what_arrived(receiver: OTLPReceiver) -> None:
    _post(
        receiver.url("traces"),
        _otlp_json_span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        "application/json",
    )

    with pytest.raises(AssertionError, match=r"got 1 spans \('from json'\); 0 log records; 0 metric points"):
        receiver.wait_for(lambda r: r.spans_named("never"), timeout=0.1, interval=0.02)


def test_receiver_port_in_use_raises_oserror(receiver: OTLPReceiver) -> None:
    with pytest.raises(OSError) as info:
        OTLPReceiver(port=receiver.port).start()
    assert info.value.errno == errno.EADDRINUSE


def test_receiver_endpoint_requires_start() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = OTLPReceiver().endpoint


def test_in_memory_telemetry_flattens_all_signals() -> None:
    with InMemoryTelemetry(resource={"service.name": "unit"}) as mem:
        with mem.tracer("code").start_as_current_span("op", attributes={"k": "v"}) as span:
            mem.logger("code").emit(body="inside", severity_number=SeverityNumber.ERROR, severity_text="ERROR")
            trace_id = format(span.get_span_context().trace_id, "032x")
        mem.meter("code").create_counter("calls").add(2, {"route": "/"})

        (op,) = mem.spans()
        (log,) = mem.logs()
        (calls,) = mem.metric_points("calls")
        assert isinstance(op, ReceivedSpan) and isinstance(log, ReceivedLog) and isinstance(calls, ReceivedMetricPoint)
        assert (op.name, op.attributes, op.service_name, op.scope_name) == ("op", {"k": "v"}, "unit", "code")
        assert (log.body, log.severity_text, log.trace_id) == ("inside", "ERROR", trace_id)
        assert (calls.type, calls.value, calls.attributes) == ("sum", 2, {"route": "/"})

        mem.clear()
        assert mem.spans() == [] and mem.logs() == []
    mem.shutdown()  # a second shutdown is harmless


def test_pytest_plugin_fixtures_work_in_a_user_suite(tmp_path: Path) -> None:
    # A user's suite: the plugin comes from the entry point once installed, from pytest_plugins before.
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            from importlib.metadata import entry_points

            if not any(ep.value == "otelkit.pytest_plugin" for ep in entry_points(group="pytest11")):
                pytest_plugins = ["otelkit.pytest_plugin"]
            """
        )
    )
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import urllib.request

            def test_receiver(otlp_receiver):
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                request = urllib.request.Request(
                    otlp_receiver.url("traces"), data=b"", headers={"Content-Type": "application/x-protobuf"}
                )
                with opener.open(request, timeout=10) as response:
                    assert response.status == 200
                assert otlp_receiver.requests["traces"] == 1

            def test_memory(otel_memory):
                with otel_memory.tracer().start_as_current_span("x"):
                    pass
                assert [s.name for s in otel_memory.spans()] == ["x"]
            """
        )
    )

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_receiver_keeps_the_connection_alive_across_requests_and_errors() -> None:
    # A collector speaks HTTP/1.1 keep-alive; a receiver that closed every connection would hide
    # every bug that needs a reused connection (a forked child writing on its parent's socket).
    import http.client

    body = ExportTraceServiceRequest().SerializeToString()
    with OTLPReceiver() as receiver:
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
        try:
            replies, sockets = [], set()
            for path in ("/v1/traces", "/nowhere", "/v1/traces"):
                conn.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
                response = conn.getresponse()
                response.read()
                replies.append((response.status, response.version, response.getheader("Content-Length") is not None))
                assert not response.will_close
                sockets.add(conn.sock.getsockname())
        finally:
            conn.close()
        assert replies == [(200, 11, True), (404, 11, True), (200, 11, True)]
        assert len(sockets) == 1  # one connection served all three
        assert receiver.requests["traces"] == 2
