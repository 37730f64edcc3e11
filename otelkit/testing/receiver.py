"""The OTLP/HTTP test receiver: a real endpoint on 127.0.0.1 that decodes and keeps what arrives.

See :mod:`otelkit.testing` for how to use it; requests are decoded by :mod:`otelkit.testing.decode`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format

from otelkit.testing.decode import EMPTY_RESPONSES, FLATTEN, SIGNALS, BadRequest, count_items, decode, signal_of
from otelkit.testing.limits import BodyError, DeadlineReader, Limits, content_length, is_disconnect, read_body
from otelkit.testing.records import ReceivedLog, ReceivedMetricPoint, ReceivedRecord, ReceivedSpan, Signal

__all__ = ["OTLPReceiver"]

_logger = logging.getLogger("otelkit.testing")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the stdlib logs every request to stderr

    def setup(self) -> None:
        super().setup()
        # As a real collector (Go's net/http): no Nagle. The reply's headers and body are two
        # writes; with Nagle a reply with a body waited ~40 ms for the client's delayed ACK.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.limits = self.server.receiver.limits
        # Reads go through a deadline (slow clients), not the plain socket file.
        self.rfile.close()
        self._reader = DeadlineReader(self.connection, self.limits)
        self.rfile = io.BufferedReader(self._reader, 65536)
        self.server.receiver._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.receiver._track(self.connection, add=False)

    def handle_one_request(self) -> None:
        self._reader.expect_request()
        super().handle_one_request()
        if self._reader.timed_out:
            self.close_connection = True
            if self._reader.in_request:
                with contextlib.suppress(OSError):
                    self._reply(408, b"request not received in time\n", close=True)

    def handle_expect_100(self) -> bool:
        # Refuse a body that will be refused anyway before the client sends it.
        try:
            content_length(self.headers, self.limits.max_body_bytes)
        except BodyError as exc:
            self._refuse(exc)
            return False
        return super().handle_expect_100()

    def _reply(
        self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8", *, close: bool = False
    ) -> None:
        self.connection.settimeout(self.limits.write_timeout)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, exc: BodyError) -> None:
        self.server.receiver._count_bad()
        # The body (if any) is not read: the connection cannot carry another request.
        self._reply(exc.status, f"{exc}\n".encode(), close=True)

    def do_POST(self) -> None:
        try:
            body = read_body(self.rfile, self.headers, self.limits.max_body_bytes)
        except BodyError as exc:
            self._refuse(exc)
            return
        self.server.receiver._handle(self, body)

    def do_GET(self) -> None:
        if signal_of(self.path) is None:
            self._reply(404, b"not found; OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs\n")
        else:
            self._reply(405, b"use POST\n")

    do_PUT = do_DELETE = do_PATCH = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # never share a port with another listener: "in use" must fail
    request_queue_size = 128  # the stdlib's 5 drops the SYNs of a burst of exporters
    receiver: OTLPReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The stdlib prints a traceback for every client that hangs up mid-reply; that is normal.
        exc = sys.exc_info()[1]
        if is_disconnect(exc):
            return
        _logger.error(
            "OTLPReceiver: unexpected error serving %s: %s: %s",
            client_address[0],
            type(exc).__name__,
            exc,
            exc_info=exc,
        )


class OTLPReceiver:
    """An OTLP/HTTP receiver on a local port that decodes and stores what it gets.

    Args:
        host: Interface to listen on.
        port: Port to listen on; 0 picks a free one (read it back from ``port``/``endpoint``).
        on_batch: Called from a server thread with ``(signal, records)`` for every accepted
            request; exceptions it raises are logged and ignored.
        on_message: Called from a server thread with ``(signal, request)`` for every accepted
            request, ``request`` the decoded ``Export*ServiceRequest`` protobuf message; nothing is
            flattened for it, so it is the cheap way to look at a benchmark's load. Exceptions it
            raises are logged and ignored.
        keep: Store the records (default). With ``False`` only the counters move.
        max_body_bytes: Largest body accepted, as sent and once inflated (413 past it).
        request_timeout: Seconds a request may take to arrive, from its first byte (slow clients
            are cut off).
        idle_timeout: Seconds a keep-alive connection may wait for its next request.

    Attributes:
        fail_with: When set (e.g. 503), every POST is answered with this status and dropped.
        delay: Seconds to wait before answering each POST.
        requests: Accepted requests per signal, e.g. ``{"traces": 2, "metrics": 0, "logs": 1}``.
        items: Items per signal (spans, metric data points, log records), counted even with
            ``keep=False``.
        bytes_received: Raw body bytes of accepted requests, as sent (compressed or not).
        bad_requests: Requests answered 400/411/413/415.
        limits: The :class:`~otelkit.testing.limits.Limits` above.
        failed_requests: Requests answered with ``fail_with``.
        last_headers: The headers of the last accepted request (lower-case names).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_batch: Callable[[str, Sequence[ReceivedRecord]], object] | None = None,
        on_message: Callable[[str, Any], object] | None = None,
        keep: bool = True,
        max_body_bytes: int = Limits.max_body_bytes,
        request_timeout: float = Limits.request_timeout,
        idle_timeout: float = Limits.idle_timeout,
    ) -> None:
        self.limits = Limits(
            max_body_bytes=max_body_bytes,
            request_timeout=request_timeout,
            idle_timeout=idle_timeout,
            write_timeout=max(request_timeout, 1.0),
        )
        self.host = host
        self._requested_port = port
        self.on_batch = on_batch
        self.on_message = on_message
        self.keep = keep
        self.fail_with: int | None = None
        self.delay: float = 0.0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._reset()

    def _reset(self) -> None:
        self._pending: dict[str, list[Any]] = {s: [] for s in SIGNALS}
        self._records: dict[str, list[Any]] = {s: [] for s in SIGNALS}
        self.requests: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        self.items: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        self.bytes_received = 0
        self.bad_requests = 0
        self.failed_requests = 0
        self.last_headers: dict[str, str] = {}

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> OTLPReceiver:
        """Bind and serve in a daemon thread. Raises ``OSError`` (``EADDRINUSE``) if the port is taken."""
        if self._server is not None:
            return self
        server_cls: type[_Server] = _Server
        if ":" in self.host:
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        server = server_cls((self.host, self._requested_port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="otelkit-otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and any open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the one chosen for ``port=0``)."""
        if self._server is None:
            raise RuntimeError("OTLPReceiver is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """Base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT``, e.g. ``http://127.0.0.1:4318``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, signal: Signal) -> str:
        """Full signal URL, e.g. ``http://127.0.0.1:4318/v1/traces`` (what exporter constructors want)."""
        return f"{self.endpoint}/v1/{signal}"

    # ---------------------------------------------------------------- reading

    def _materialized(self, signal: str) -> list[Any]:
        with self._lock:
            pending, records = self._pending[signal], self._records[signal]
            if pending:
                flatten = FLATTEN[signal]
                entries, self._pending[signal] = pending, []
                for entry in entries:
                    try:
                        records.extend(entry if isinstance(entry, list) else flatten(entry))
                    except Exception:  # one odd batch must not make every later read raise
                        _logger.exception("OTLPReceiver: cannot flatten a %s batch; it is dropped", signal)
            return list(records)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order."""
        return self._materialized("traces")

    @property
    def logs(self) -> list[ReceivedLog]:
        """Every log record received so far, in arrival order."""
        return self._materialized("logs")

    @property
    def metrics(self) -> list[ReceivedMetricPoint]:
        """Every metric data point received so far, in arrival order."""
        return self._materialized("metrics")

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        """Spans whose name is exactly ``name``."""
        return [s for s in self.spans if s.name == name]

    def metric_points(self, name: str | None = None) -> list[ReceivedMetricPoint]:
        """Data points of the metric ``name`` (all points when ``None``)."""
        points = self.metrics
        return points if name is None else [p for p in points if p.name == name]

    def logs_with(
        self,
        *,
        body_contains: str | None = None,
        severity_text: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> list[ReceivedLog]:
        """Log records whose body contains ``body_contains``, with that severity and these attributes."""
        out = []
        for log in self.logs:
            if body_contains is not None and body_contains not in str(log.body):
                continue
            if severity_text is not None and log.severity_text != severity_text:
                continue
            if attributes and any(log.attributes.get(k, _MISSING) != v for k, v in attributes.items()):
                continue
            out.append(log)
        return out

    def clear(self) -> None:
        """Forget everything received so far (records and counters)."""
        with self._lock:
            self._reset()

    def summary(self) -> str:
        """One line describing what arrived, for assertion messages."""
        spans, logs, points = self.spans, self.logs, self.metrics
        parts = [
            f"{len(spans)} spans" + _names(s.name for s in spans),
            f"{len(logs)} log records" + _names(str(r.body)[:40] for r in logs),
            f"{len(points)} metric points" + _names(p.name for p in points),
            "requests " + ", ".join(f"{s}={n}" for s, n in self.requests.items()),
            f"{self.bad_requests} bad requests",
        ]
        return "; ".join(parts)

    def wait_for(
        self, predicate: Callable[[OTLPReceiver], object], timeout: float = 10.0, interval: float = 0.05
    ) -> object:
        """Poll until ``predicate(self)`` is truthy and return its value.

        Raises:
            AssertionError: after ``timeout`` seconds, with a summary of what did arrive.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {_describe(predicate)}; got {self.summary()}"
                )
            time.sleep(interval)

    # ---------------------------------------------------------------- server side

    def _count_bad(self) -> None:
        with self._lock:
            self.bad_requests += 1

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler, body: bytes) -> None:
        signal = signal_of(handler.path)
        if signal is None:
            handler._reply(404, b"not found; OTLP/HTTP accepts POST /v1/traces, /v1/metrics, /v1/logs\n")
            return
        if self.delay:
            time.sleep(self.delay)
        if self.fail_with is not None:
            with self._lock:
                self.failed_requests += 1
            handler._reply(self.fail_with, b"refused by OTLPReceiver.fail_with\n")
            return
        try:
            message, is_json = decode(
                signal,
                body,
                handler.headers.get("Content-Type", ""),
                handler.headers.get("Content-Encoding", ""),
                self.limits.max_body_bytes,
            )
        except BadRequest as exc:
            with self._lock:
                self.bad_requests += 1
            handler._reply(exc.status, f"{exc}\n".encode(), close=exc.status == 413)
            return
        on_batch = self.on_batch
        records = FLATTEN[signal](message) if on_batch is not None else None
        count = len(records) if records is not None else count_items(signal, message)
        with self._lock:
            self.requests[signal] += 1
            self.items[signal] += count
            self.bytes_received += len(body)
            self.last_headers = {k.lower(): v for k, v in handler.headers.items()}
            if self.keep and count:
                self._pending[signal].append(records if records is not None else message)
        on_message = self.on_message
        if on_message is not None and count:
            try:
                on_message(signal, message)
            except Exception:
                _logger.exception("OTLPReceiver on_message callback failed")
        if on_batch is not None and records:
            try:
                on_batch(signal, records)
            except Exception:
                _logger.exception("OTLPReceiver on_batch callback failed")
        response = EMPTY_RESPONSES[signal]
        if is_json:
            handler._reply(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            handler._reply(200, response.SerializeToString(), "application/x-protobuf")


_MISSING = object()


def _names(values: Iterable[str], limit: int = 8) -> str:
    seen: list[str] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    if not seen:
        return ""
    more = f", … +{len(seen) - limit}" if len(seen) > limit else ""
    return " (" + ", ".join(repr(v) for v in seen[:limit]) + more + ")"


def _describe(predicate: Callable[..., object]) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    code = getattr(predicate, "__code__", None)
    if name.endswith("<lambda>") and code is not None:
        return f"lambda at {code.co_filename}:{code.co_firstlineno}"
    return name
