"""``otelkit tail`` as a real process against hostile telemetry and a reader that stops reading.

Control characters in names, keys, bodies and metric names are printed escaped (a newline never
forges a line, ESC never reaches the terminal); when stdout is not read, the backlog is bounded and
the items dropped are counted in the final line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_CLI = [sys.executable, "-c", "from otelkit.cli import main; main()", "tail", "--port", "0"]
HOSTILE = "a\x1b]0;pwned\x07\x1b[2J\r\nLOG    12:00:00.000  bank  INFO  forged\x9b31m\u2028z"
# Nothing that moves the cursor, changes colours or ends a line may reach the terminal.
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


@contextmanager
def _tail(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc = subprocess.Popen(
        [*_CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.stderr is not None
    try:
        banner = proc.stderr.readline().decode()
        match = re.search(r"listening for OTLP/HTTP on (http://127\.0\.0\.1:\d+) ", banner)
        assert match is not None, banner
        yield proc, match.group(1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _post(endpoint: str, signal_: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{endpoint}/v1/{signal_}", data=body, headers={"Content-Type": "application/x-protobuf"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return int(reply.status)


def _hostile_batches() -> dict[str, bytes]:
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "svc" + HOSTILE
    span = rs.scope_spans.add().spans.add()
    span.name = HOSTILE
    span.trace_id, span.span_id = bytes(range(16)), bytes(range(8))
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    span.attributes.add(key="k" + HOSTILE).value.string_value = HOSTILE
    logs = ExportLogsServiceRequest()
    record = logs.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = HOSTILE
    record.severity_text = "\x1b[31mERROR"
    record.attributes.add(key=HOSTILE).value.int_value = 1
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "m" + HOSTILE
    point = metric.gauge.data_points.add()
    point.as_int = 3
    point.attributes.add(key=HOSTILE).value.string_value = "v"
    return {
        "traces": traces.SerializeToString(),
        "logs": logs.SerializeToString(),
        "metrics": metrics.SerializeToString(),
    }


@pytest.mark.parametrize("mode", ["text", "json"])
def test_tail_prints_control_characters_escaped(mode: str) -> None:
    args = ["--max-items", "3", "--exit-after", "60"] + (["--json"] if mode == "json" else [])
    with _tail(*args) as (proc, endpoint):
        for signal_, body in _hostile_batches().items():
            assert _post(endpoint, signal_, body) == 200
        out, err = proc.communicate(timeout=60)
    text = out.decode("utf-8")
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert len(lines) == 3, lines  # one line per item: no forged LOG line
    for line in lines:
        assert not RAW_CONTROLS.search(line), repr(line)
    if mode == "text":
        assert [line.split()[0] for line in lines] == ["SPAN", "LOG", "METRIC"]
        assert "a\\x1b]0;pwned\\x07\\x1b[2J\\r\\nLOG" in lines[0]
        assert "\\u2028z" in text
    assert proc.returncode == 0, err


def test_tail_backlog_is_bounded_when_stdout_is_not_read() -> None:
    batch = ExportTraceServiceRequest()
    spans = batch.resource_spans.add().scope_spans.add()
    for i in range(1000):
        span = spans.spans.add()
        span.name = f"span-{i}-" + "x" * 200
        span.trace_id, span.span_id = bytes(range(16)), i.to_bytes(8, "big")
    body = batch.SerializeToString()
    with _tail("--exit-after", "120") as (proc, endpoint):
        started = time.monotonic()
        for _ in range(60):  # 60,000 spans, ~14 MB of lines, nobody reading them
            assert _post(endpoint, "traces", body) == 200
        assert time.monotonic() - started < 60  # exporters were never blocked by the stuck terminal
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as fh:
            rss_kib = int(re.search(r"VmRSS:\s+(\d+)", fh.read()).group(1))  # type: ignore[union-attr]
        proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None and proc.stderr is not None
        stdout = proc.stdout
        drained = threading.Thread(target=stdout.read, daemon=True)  # let its last writes through
        drained.start()
        err = proc.stderr.read()
        proc.wait(timeout=60)
        drained.join(timeout=60)
    summary = err.decode().strip().splitlines()[-1]
    match = re.fullmatch(
        r"otelkit tail: printed (\d+) items?; received (\d+) spans?, 0 log records, 0 metric points; "
        r"dropped (\d+) items? \(stdout was not read fast enough\)",
        summary,
    )
    assert match is not None, summary
    printed, received, dropped = map(int, match.groups())
    assert received == 60_000
    assert dropped > 0 and printed + dropped <= received
    assert rss_kib < 200_000, f"tail held {rss_kib} KiB while its stdout was not read"


def test_tail_survives_malformed_requests_without_a_traceback() -> None:
    import gzip
    import socket
    import struct

    def raw(port: int, data: bytes, *, reset: bool = False) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(data)
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return b""
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    bomb = gzip.compress(bytes(128 << 20), compresslevel=9)
    head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    with _tail("--exit-after", "60") as (proc, endpoint):
        port = int(endpoint.rsplit(":", 1)[1])
        assert raw(port, f"{head}Content-Length: -1\r\n\r\n".encode()).startswith(b"HTTP/1.1 400 ")
        assert raw(port, f"{head}Content-Length: {10**12}\r\n\r\n".encode()).startswith(b"HTTP/1.1 413 ")
        reply = raw(port, f"{head}Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n".encode() + bomb)
        assert reply.startswith(b"HTTP/1.1 413 ")
        body = _hostile_batches()["traces"]
        raw(port, f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body, reset=True)
        assert _post(endpoint, "traces", body) == 200
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.decode().startswith("SPAN ")
    assert "Traceback" not in err.decode(), err.decode()
