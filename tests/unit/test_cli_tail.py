"""``otelkit tail`` as a real process, fed by the SDK's OTLP/HTTP exporters on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from cli_runner import run_cli
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

_CLI = [sys.executable, "-c", "from otelkit.cli import main; main()", "tail"]
_RESOURCE = Resource.create({"service.name": "checkout"})
# --exit-after bounds every run, so a test that goes wrong fails instead of hanging.
_BOUND = ["--exit-after", "120"]


@dataclass
class _Tail:
    proc: subprocess.Popen[str]
    endpoint: str
    stderr_lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for exit; return (code, stdout lines, stderr)."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        code = self.proc.wait()
        if self.reader is not None:
            self.reader.join()
        return code, out.splitlines(), "".join(self.stderr_lines)


@contextmanager
def _tail(*args: str) -> Iterator[_Tail]:
    proc = subprocess.Popen(
        [*_CLI, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env={**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.stderr is not None
    try:
        banner = proc.stderr.readline()
        match = re.search(r"listening for OTLP/HTTP on (http://127\.0\.0\.1:\d+) ", banner)
        if match is None:
            proc.kill()
            pytest.fail(f"no banner from otelkit tail: {banner + proc.stderr.read()}")
        tail = _Tail(proc, match.group(1), [banner])
        stderr = proc.stderr
        tail.reader = threading.Thread(target=lambda: tail.stderr_lines.extend(stderr), daemon=True)
        tail.reader.start()
        yield tail
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _send_request_log_and_metric(endpoint: str) -> str:
    """What one FastAPI request produces: a server span, a log inside it, a duration point. Returns the trace id."""
    traces = TracerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    traces.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
    logs = LoggerProvider(resource=_RESOURCE, shutdown_on_exit=False)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=endpoint + "/v1/logs")))
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint + "/v1/metrics"), export_interval_millis=3_600_000
    )
    metrics = MeterProvider(resource=_RESOURCE, metric_readers=[reader], shutdown_on_exit=False)

    attributes = {"http.route": "/items/{item_id}", "http.response.status_code": 200}
    with traces.get_tracer("t").start_as_current_span(
        "GET /items/{item_id}", kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        logs.get_logger("l").emit(
            body="fetched item", severity_number=SeverityNumber.INFO, severity_text="INFO", attributes={"item_id": 3}
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    histogram = metrics.get_meter("m").create_histogram("http.server.request.duration", unit="s")
    histogram.record(0.034, {"http.route": "/items/{item_id}", "http.request.method": "GET"})
    logs.shutdown()
    traces.shutdown()
    metrics.shutdown()
    return trace_id


def _post_json_spans(endpoint: str, *names: str) -> None:
    spans = [
        {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": f"{i + 1:016x}", "name": name, "kind": 2}
        for i, name in enumerate(names)
    ]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    request = urllib.request.Request(endpoint + "/v1/traces", data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        assert response.status == 200


def test_cli_tail_prints_span_log_and_metric_lines() -> None:
    with _tail("--max-items", "3", *_BOUND) as tail:
        trace_id = _send_request_log_and_metric(tail.endpoint)
        code, lines, stderr = tail.finish()

    short = re.escape(trace_id[:6] + "…")
    assert code == 0, stderr
    assert len(lines) == 3, lines
    # The log is exported as it is emitted, inside the span; the span when it ends; the metric last.
    assert re.fullmatch(
        rf"LOG    \d\d:\d\d:\d\d\.\d{{3}}  checkout  INFO  fetched item  trace={short}  item_id=3", lines[0]
    )
    assert re.fullmatch(
        rf"SPAN   \d\d:\d\d:\d\d\.\d{{3}}  checkout  GET /items/\{{item_id\}}  SERVER  \S+  trace={short}  "
        r"http\.route=/items/\{item_id\} http\.response\.status_code=200",
        lines[1],
    )
    assert re.fullmatch(
        r"METRIC \d\d:\d\d:\d\d  checkout  http\.server\.request\.duration histogram count=1 sum=0\.034 "
        r"\{http\.route=/items/\{item_id\}, http\.request\.method=GET\}",
        lines[2],
    )
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={tail.endpoint} OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in stderr
    assert stderr.endswith("otelkit tail: printed 3 items; received 1 span, 1 log record, 1 metric point\n")


def test_cli_tail_json_and_signal_filter() -> None:
    with _tail("--json", "--signals", "logs", "--max-items", "1", *_BOUND) as tail:
        _post_json_spans(tail.endpoint, "filtered out")
        logs = LoggerProvider(resource=_RESOURCE, shutdown_on_exit=False)
        logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=tail.endpoint + "/v1/logs")))
        logs.get_logger("l").emit(body="fetched item", severity_text="INFO", attributes={"item_id": 3})
        logs.shutdown()
        code, lines, stderr = tail.finish()

    assert code == 0, stderr
    (line,) = lines
    record = json.loads(line)
    assert (record["signal"], record["body"], record["severity_text"], record["trace_id"]) == (
        "log",
        "fetched item",
        "INFO",
        "",
    )
    assert record["attributes"] == {"item_id": 3}
    assert record["resource"]["service.name"] == "checkout"
    assert stderr.endswith("otelkit tail: printed 1 item; received 1 span, 1 log record, 0 metric points\n")


def test_cli_tail_once_prints_the_first_request() -> None:
    with _tail("--once", *_BOUND) as tail:
        _post_json_spans(tail.endpoint, "first", "second")
        code, lines, stderr = tail.finish()

    assert code == 0, stderr
    assert [line.split("  ")[3] for line in lines] == ["first", "second"]


def test_cli_tail_exit_after_without_data() -> None:
    with _tail("--exit-after", "0") as tail:
        code, lines, stderr = tail.finish()

    assert (code, lines) == (0, [])
    assert stderr.endswith("otelkit tail: printed 0 items; received 0 spans, 0 log records, 0 metric points\n")


def test_cli_tail_ctrl_c_exits_cleanly() -> None:
    with _tail(*_BOUND) as tail:
        tail.proc.send_signal(signal.SIGINT)
        code, lines, stderr = tail.finish()

    assert (code, lines) == (0, [])
    assert "Traceback" not in stderr
    assert stderr.endswith("otelkit tail: printed 0 items; received 0 spans, 0 log records, 0 metric points\n")


def test_cli_tail_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = subprocess.run(
            [*_CLI, "--port", str(port), "--exit-after", "0"], capture_output=True, text=True, timeout=120
        )

    assert result.returncode == 2
    assert result.stderr == (
        f"error: port {port} on 127.0.0.1 is already in use; stop the other process or pass --port\n"
    )
    assert result.stdout == ""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, "tail", *argv)


def test_cli_tail_unknown_signal_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--signals", "traces,metrix") == (
        2,
        "",
        "error: unknown signal 'metrix' in --signals; expected a comma-separated list of: traces, metrics, logs "
        "(did you mean 'metrics'?)\n",
    )


def test_cli_tail_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "Examples:\n    otelkit tail\n" in out
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf" in out
