"""``otelkit.testing.OTLPReceiver`` against malformed, hostile and careless clients, over real sockets.

Raw sockets send what no exporter would: lying ``Content-Length`` headers, gzip bombs, requests that
trickle in one byte at a time, clients that vanish before the reply. Each gets a status (400, 408,
413) or a closed connection, never a traceback, and no connection holds a thread for ever.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otelkit.testing import OTLPReceiver

PROTOBUF = "application/x-protobuf"


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver(max_body_bytes=4 << 20, request_timeout=1.0, idle_timeout=1.0) as r:
        yield r


def _spans(n: int = 1, name: str = "GET /items") -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(n):
        span = scope.spans.add()
        span.name = name
        span.trace_id = bytes(15) + bytes([1])
        span.span_id = struct.pack(">Q", i + 1)
    return request.SerializeToString()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def _post_raw(port: int, headers: str, body: bytes = b"") -> bytes:
    with _connect(port) as sock:
        sock.sendall(headers.encode("latin-1") + b"\r\n" + body)
        return _read_all(sock)


def _head(length: int, content_type: str = PROTOBUF) -> bytes:
    return (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def test_receiver_gzip_bomb_is_413_without_inflating_it(receiver: OTLPReceiver) -> None:
    bomb = gzip.compress(bytes(256 << 20), compresslevel=9)  # 256 MiB of zeros in ~250 KiB
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        response = _post_raw(
            receiver.port,
            f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(bomb)}\r\nConnection: close\r\n",
            bomb,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _status(response) == 413
    assert b"inflates to more than 4194304 bytes" in response
    assert peak < 24 << 20, f"peak {peak >> 20} MiB while refusing a 4 MiB-limited body"
    assert receiver.bad_requests == 1 and receiver.requests["traces"] == 0


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [
        ("-1", 400, b"bad Content-Length"),
        ("+5", 400, b"bad Content-Length"),
        ("1" + "0" * 12, 413, b"larger than the receiver's limit"),
        ("9" * 5000, 413, b"larger than the receiver's limit"),
    ],
)
def test_receiver_lying_content_length_gets_a_reply_and_no_traceback(
    receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str], length: str, status: int, reason: bytes
) -> None:
    started = time.monotonic()
    response = _post_raw(
        receiver.port,
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {length}\r\n",
    )
    assert _status(response) == status
    assert reason in response
    assert time.monotonic() - started < 1.0  # answered at once, not after waiting for a body
    assert capfd.readouterr().err == ""


def test_receiver_two_different_content_lengths_are_400(receiver: OTLPReceiver) -> None:
    body = _spans()
    response = _post_raw(
        receiver.port,
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Length: {len(body) + 5}\r\n",
        body,
    )
    assert _status(response) == 400
    assert receiver.spans == []


def test_receiver_body_shorter_than_its_length_is_not_accepted(
    receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str]
) -> None:
    body = _spans()
    with _connect(receiver.port) as sock:
        sock.sendall(_head(len(body) + 10) + body)
        sock.shutdown(socket.SHUT_WR)  # the client gives up mid-body
        response = _read_all(sock)
    assert response == b"" or _status(response) == 400
    assert receiver.spans == [] and receiver.requests["traces"] == 0
    assert capfd.readouterr().err == ""


def _trickle(sock: socket.socket, data: bytes, interval: float, stop: threading.Event) -> None:
    for byte in data:
        if stop.wait(interval):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


@pytest.mark.parametrize("where", ["headers", "body"])
def test_receiver_slowloris_is_cut_off(receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str], where: str) -> None:
    body = _spans()
    head = f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {len(body)}\r\n\r\n"
    stop = threading.Event()
    with _connect(receiver.port) as sock:
        if where == "body":
            sock.sendall(head.encode())
            slow = body
        else:
            slow = head.encode() + body
        feeder = threading.Thread(target=_trickle, args=(sock, slow, 0.2, stop), daemon=True)
        started = time.monotonic()
        feeder.start()
        response = _read_all(sock, timeout=10)
        elapsed = time.monotonic() - started
        stop.set()
        feeder.join()
    assert elapsed < 4.0, f"a 1 s request timeout held the connection {elapsed:.1f} s"
    assert response == b"" or _status(response) == 408
    assert receiver.spans == []
    assert capfd.readouterr().err == ""


def test_receiver_keeps_connections_alive_between_requests_and_closes_idle_ones(receiver: OTLPReceiver) -> None:
    body = _spans()
    with _connect(receiver.port) as sock:
        for _ in range(3):
            sock.sendall(_head(len(body)) + body)
            assert _status(sock.recv(65536)) == 200
            time.sleep(0.3)  # shorter than the idle timeout: the same connection goes on
        started = time.monotonic()
        assert _read_all(sock, timeout=10) == b""  # then idle: closed
        assert time.monotonic() - started < 4.0
    assert len(receiver.spans) == 3


def test_receiver_slow_clients_release_their_threads(receiver: OTLPReceiver) -> None:
    baseline = threading.active_count()
    socks = [_connect(receiver.port) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\n")  # and never the rest
        deadline = time.monotonic() + 2
        while threading.active_count() < baseline + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() >= baseline + 20
        deadline = time.monotonic() + 6
        while threading.active_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.1)
        assert threading.active_count() <= baseline
    finally:
        for sock in socks:
            sock.close()


def test_receiver_client_gone_before_reply_prints_nothing(
    receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver.delay = 0.3
    body = _spans()
    for _ in range(5):
        sock = _connect(receiver.port)
        sock.sendall(_head(len(body)) + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the reply hits a dead socket
    time.sleep(1.0)
    receiver.delay = 0
    request = urllib.request.Request(
        receiver.url("traces"), data=body, headers={"Content-Type": PROTOBUF}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200
    assert capfd.readouterr().err == ""


def test_receiver_unknown_temporality_does_not_break_later_reads(receiver: OTLPReceiver) -> None:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "odd"
    metric.sum.aggregation_temporality = 7  # proto3 enums are open: any number arrives
    metric.sum.data_points.add().as_int = 1
    for payload in (request.SerializeToString(),):
        http = urllib.request.Request(receiver.url("metrics"), data=payload, headers={"Content-Type": PROTOBUF})
        with urllib.request.urlopen(http, timeout=10) as reply:
            assert reply.status == 200
    (point,) = receiver.metrics
    assert (point.name, point.temporality, point.value) == ("odd", "7", 1)
    metric.name = "later"
    metric.sum.aggregation_temporality = 2
    http = urllib.request.Request(
        receiver.url("metrics"), data=request.SerializeToString(), headers={"Content-Type": PROTOBUF}
    )
    with urllib.request.urlopen(http, timeout=10):
        pass
    assert [(p.name, p.temporality) for p in receiver.metrics] == [("odd", "7"), ("later", "CUMULATIVE")]


def test_receiver_deeply_nested_json_is_400(receiver: OTLPReceiver, capfd: pytest.CaptureFixture[str]) -> None:
    body = ('{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    response = _post_raw(
        receiver.port,
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n",
        body,
    )
    assert _status(response) == 400
    assert capfd.readouterr().err == ""
    json.dumps(receiver.summary())  # still answers
