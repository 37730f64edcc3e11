"""otelkit's lean HTTP instrumentation of FastAPI.

One SDK server span and the stable-semconv HTTP metrics per request, from a pure-ASGI wrapper of
``FastAPI.__call__``: no ASGI send/receive spans, no per-request middleware objects, attributes
built once. This is the default (``OTELKIT_HTTP_INSTRUMENTATION=otelkit``); it replaces the
contrib FastAPI/Starlette instrumentors, which cost ~4× more per request.

Per request:

- span ``"{method} {http.route}"`` (kind SERVER) with ``http.request.method``, ``url.scheme``,
  ``url.path``, ``url.query``, ``http.route``, ``http.response.status_code``,
  ``network.protocol.version``, ``client.address``, ``user_agent.original``, ``error.type``;
  W3C trace context and baggage are extracted from the request headers;
- ``http.server.request.duration`` (histogram, seconds) with method, scheme, protocol version,
  status code, ``http.route`` (only for matched routes: unmatched paths all share one series and
  no raw path or Host header is ever a metric attribute) and ``error.type``;
- ``http.server.active_requests`` (up-down counter) with method and scheme;
- ``http.server.request.body.size`` (from the request's ``Content-Length``, when it has one) and
  ``http.server.response.body.size`` (bytes of body actually sent), histograms in bytes with the
  attributes of the duration.

Request correlation: the ``X-Request-ID`` header (``OTELKIT_REQUEST_ID_HEADER``) is kept when it is
at most 128 characters of ``A-Z a-z 0-9 . _ : -``; otherwise the ``request.id`` baggage entry of an
upstream otelkit service is kept; otherwise (or when either is malformed) a new 32-hex-digit id is
made. Junk is replaced, never echoed. The id is returned in the same response header (unless the
app sets that header itself: then the app's value is the only one sent), set as the
span attribute ``request.id``, and put in the request's OTel baggage (:mod:`otelkit.context`),
from where log records, Celery tasks and instrumented HTTP clients pick it up.

Headers named in ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` /
``..._SERVER_RESPONSE`` (comma-separated names or regexes, case-insensitive) become span
attributes ``http.request.header.<name>`` / ``http.response.header.<name>`` (string arrays);
sensitive ones (:mod:`otelkit._runtime.redact`) are captured as ``["[REDACTED]"]``. ``url.query`` is
recorded as received; the exporters redact sensitive parameters in it.

Requests served by otelkit's health router, wherever mounted, or whose full URL matches
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` (regexes, searched in ``scheme://host/path?query``) get
neither span nor metrics; mounts and plain routes are named too (:mod:`.routes`). A request's
context stops claiming it when it ends (:func:`otelkit.context.end_request_context`). FastAPI's
built-in telemetry (``fastapi.telemetry``) is told to stand aside for every request otelkit
instruments, so nothing is recorded twice.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, MutableMapping
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import Observation
from opentelemetry.propagate import extract, get_global_textmap
from opentelemetry.trace import Status, StatusCode

from otelkit._runtime import failures, fasthist, sdk_compat, state
from otelkit._runtime.env import DEFAULT_EXCLUDED_URLS
from otelkit._runtime.http import routes
from otelkit._runtime.http.headers import (
    CAPTURE_REQUEST_HEADERS_ENV,
    CAPTURE_RESPONSE_HEADERS_ENV,
    EXCLUDED_URLS_ENV,
    GETTER,
    captured,
    compile_capture,
    compile_excluded,
)
from otelkit._runtime.http.serverspan import ServerSpans, end_span, set_known_attributes
from otelkit.context import REQUEST_ID_KEY, end_request_context, get_request_id, request_context

__all__ = ["instrument_fastapi", "uninstrument_fastapi"]

_log = logging.getLogger("otelkit")

Scope = MutableMapping[str, Any]
ASGICall = Callable[[Any, Scope, Any, Any], Awaitable[None]]


DURATION_METRIC = "http.server.request.duration"
_DURATION_DESCRIPTION = "Duration of HTTP server requests."
_DURATION_ATTRIBUTES = (
    "http.request.method",
    "url.scheme",
    "network.protocol.version",
    "http.response.status_code",
    "http.route",
    "error.type",
)
# Stable semconv bucket boundaries for http.server.request.duration (seconds).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_KNOWN_METHODS = frozenset(("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"))
# The headers W3C trace context and baggage read: with only those propagators installed (the
# default), a request without traceparent or baggage is not worth an extract().
_W3C_FIELDS = frozenset(("traceparent", "tracestate", "baggage"))
_SIZE_BUCKETS = (0, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
# A request id worth keeping: short, and safe in a header, a log line and baggage.
_valid_request_id = re.compile(r"[A-Za-z0-9._:\-]{1,128}").fullmatch
_SCOPE_MARK = "otelkit.request"
# The random module's generator, not a Random() of our own: CPython reseeds it in forked children,
# so pre-forked workers (gunicorn --preload, Celery prefork) never repeat each other's ids.
_random_bits = random.getrandbits
# Typed Any: a propagator of the user's may return None instead of a Context, which compiled code
# would refuse (TypeError) where the source carries on (no parent).
_extract: Any = extract


class HTTPInstrumentation:
    """Holds the tracer, instruments and settings; ``handle`` wraps one ASGI http call."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        excluded_urls: str | None = None,
        request_id_header: str | None = None,
        body_size_metrics: bool | None = None,
    ) -> None:
        from otelkit import __version__

        self.tracer = trace.get_tracer("otelkit.http", __version__, tracer_provider=tracer_provider)
        self.spans = ServerSpans(self.tracer)
        meter = metrics.get_meter("otelkit.http", __version__, meter_provider=meter_provider)
        # otelkit's own providers pre-aggregate the duration (~1 µs instead of the SDK's ~11 µs);
        # providers passed in explicitly get the SDK histogram.
        self.fast_duration = fasthist.get(DURATION_METRIC) if meter_provider is None else None
        self.duration = meter.create_histogram(
            DURATION_METRIC,
            unit="s",
            description=_DURATION_DESCRIPTION,
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        # In-flight requests are counted in a plain dict and observed at collection time: two SDK
        # add() calls per request cost ~30 µs, this costs two dict updates.
        self.in_flight: dict[tuple[str, str], int] = {}
        meter.create_observable_up_down_counter(
            "http.server.active_requests",
            callbacks=[self._observe_in_flight],
            unit="{request}",
            description="Number of active HTTP server requests.",
        )
        if request_id_header and body_size_metrics is not None:
            header, self.body_size_metrics = request_id_header, body_size_metrics
        else:
            settings = state.settings()
            header = request_id_header or settings.request_id_header
            self.body_size_metrics = settings.http_body_size_metrics if body_size_metrics is None else body_size_metrics
        self.request_size = meter.create_histogram(
            "http.server.request.body.size",
            unit="By",
            description="Size of HTTP server request bodies.",
            explicit_bucket_boundaries_advisory=list(_SIZE_BUCKETS),
        )
        self.response_size = meter.create_histogram(
            "http.server.response.body.size",
            unit="By",
            description="Size of HTTP server response bodies.",
            explicit_bucket_boundaries_advisory=list(_SIZE_BUCKETS),
        )
        self.request_id_key = header.lower()
        self.request_id_header = header.lower().encode("latin-1")
        self.capture_request = compile_capture(CAPTURE_REQUEST_HEADERS_ENV)
        self.capture_response = compile_capture(CAPTURE_RESPONSE_HEADERS_ENV)
        raw_excluded = excluded_urls if excluded_urls is not None else os.environ.get(EXCLUDED_URLS_ENV)
        self.excluded = compile_excluded(raw_excluded)
        # otelkit's default only matches paths under /health: other requests skip building the URL.
        self.excluded_prefix = "/health" if raw_excluded == DEFAULT_EXCLUDED_URLS else ""
        self.unrouted = routes.Unrouted()
        self.health = routes.HealthPaths()
        # The API's context variable, set and reset directly (attach/detach are two calls more each).
        self.context_var = sdk_compat.context_var()
        # (the global propagator last seen, whether it reads W3C headers only): see _extracts.
        self.propagation: tuple[Any, bool] = (None, False)

    def _observe_in_flight(self, options: Any) -> Any:
        for (method, scheme), count in list(self.in_flight.items()):
            yield Observation(count, {"http.request.method": method, "url.scheme": scheme})

    def _is_excluded(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.excluded is not None
        if not (scope.get("root_path", "") + scope["path"]).startswith(self.excluded_prefix):
            return False
        host = headers.get("host", "")
        url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
        query = scope.get("query_string")
        if query:
            url += "?" + query.decode("latin-1")
        return self.excluded.search(url) is not None

    def _extracts(self, headers: dict[str, str]) -> bool:
        """Whether the request may carry a trace context or baggage for the installed propagators.

        The default ones (W3C trace context and baggage) read only ``traceparent``, ``tracestate``
        and ``baggage``; any other (``OTEL_PROPAGATORS`` naming b3, jaeger, xray…, or one set with
        ``set_global_textmap``) reads headers of its own, so every request is extracted.
        """
        textmap = get_global_textmap()
        seen, w3c_only = self.propagation
        if textmap is not seen:
            try:
                w3c_only = frozenset(textmap.fields) <= _W3C_FIELDS
            except Exception:  # a propagator whose fields fail: extract every request
                w3c_only = False
            self.propagation = (textmap, w3c_only)
        return not w3c_only or "traceparent" in headers or "baggage" in headers

    async def handle(self, call: ASGICall, app: Any, scope: Scope, receive: Any, send: Any) -> None:
        if _SCOPE_MARK in scope:  # a mounted FastAPI app inside an instrumented one
            await call(app, scope, receive, send)
            return
        scope[_SCOPE_MARK] = True
        base_root, base_path = scope.get("root_path", ""), scope["path"]  # mounts may rewrite both
        # Decode headers once: propagation, user agent, exclusion and hooks all read this dict.
        headers: dict[str, str] = {}
        for key, value in scope.get("headers") or ():
            headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        if (self.excluded is not None and self._is_excluded(scope, headers)) or scope["path"] in self.health.paths:
            await call(app, scope, receive, send)
            return

        method = scope.get("method", "GET")
        if method not in _KNOWN_METHODS:
            method = "_OTHER"
        scheme = scope.get("scheme", "http")
        parent = _extract(headers, getter=GETTER) if self._extracts(headers) else None
        request_id = headers.get(self.request_id_key)
        if request_id is None or _valid_request_id(request_id) is None:
            request_id = get_request_id(parent) if parent is not None else None
            if request_id is None or _valid_request_id(request_id) is None:
                # random, not os.urandom: a getrandom() syscall per request costs ~35 µs on some VMs,
                # and a correlation id needs uniqueness, not secrecy (the SDK's span ids do the same).
                request_id = _random_bits(128).to_bytes(16, "big").hex()
        start = time_ns()
        span = self.spans.start(method, parent, start)
        recording = span.is_recording()
        if recording:
            attrs: dict[str, Any] = {
                "http.request.method": method,
                "url.scheme": scheme,
                "url.path": scope.get("root_path", "") + scope["path"],
                "network.protocol.version": scope.get("http_version", "1.1"),
                REQUEST_ID_KEY: request_id,
            }
            query = scope.get("query_string")
            if query:
                attrs["url.query"] = query.decode("latin-1")
            client = scope.get("client")
            if client:
                attrs["client.address"] = client[0]
            agent = headers.get("user-agent")
            if agent:
                attrs["user_agent.original"] = agent
            if method == "_OTHER":
                attrs["http.request.method_original"] = scope.get("method", "")
            if self.capture_request is not None:
                attrs.update(captured(self.capture_request, "http.request.header.", headers.items()))
            set_known_attributes(span, attrs)
        request_ctx = request_context(span, request_id, parent)
        context_var = self.context_var
        token = otel_context.attach(request_ctx) if context_var is None else context_var.set(request_ctx)

        extra_headers: list[tuple[bytes, bytes]] = [(self.request_id_header, request_id.encode("latin-1"))]

        status = 0
        sent = 0
        capture_response = self.capture_response if recording else None
        request_id_header = self.request_id_header

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
                if capture_response is not None:
                    pairs = ((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in message.get("headers", ()))
                    span.set_attributes(captured(capture_response, "http.response.header.", pairs))
                sent_headers = message.get("headers", ())
                if _has_header(sent_headers, request_id_header):
                    # The app set the header itself (its own request-id middleware): its value stays
                    # the only one; otelkit's id is still on the span and the log records.
                    message["headers"] = [*sent_headers, *extra_headers[1:]]
                else:
                    message["headers"] = [*sent_headers, *extra_headers]
            await send(message)

        in_flight = self.in_flight
        key = (method, scheme)
        in_flight[key] = in_flight.get(key, 0) + 1
        error: BaseException | None = None
        try:
            await call(app, scope, receive, send_wrapper)
        except BaseException as exc:
            error = exc
            raise
        finally:
            end = time_ns()
            in_flight[key] -= 1
            route = _route_template(scope, base_root)
            health = routes.is_otelkit_health(scope.get("route"))  # dropped unended, no metric
            if route is None and status and status != 404:
                route = self.unrouted.template(app, scope, base_path, base_root)
            version = scope.get("http_version", "1.1")
            error_type = None
            if error is not None:
                error_type = type(error).__qualname__
            elif status >= 500:
                error_type = str(status)
            fast = self.fast_duration
            metric_attrs: dict[str, Any] | None = None
            if fast is None or self.body_size_metrics:
                metric_attrs = {
                    "http.request.method": method,
                    "url.scheme": scheme,
                    "network.protocol.version": version,
                }
                if status:
                    metric_attrs["http.response.status_code"] = status
                if route:
                    metric_attrs["http.route"] = route
                if error_type:
                    metric_attrs["error.type"] = error_type
            received = None
            if metric_attrs is not None and self.body_size_metrics and not health:  # opt-in, as in semconv
                length = headers.get("content-length")
                received = int(length) if length and length.isdigit() and len(length) < 19 else None
                if status:
                    self.response_size.record(sent, metric_attrs)
                if received is not None:
                    self.request_size.record(received, metric_attrs)
            if recording and not health:
                final: dict[str, Any] = {}
                if status:
                    final["http.response.status_code"] = status
                    if self.body_size_metrics:
                        final["http.response.body.size"] = sent
                if received is not None:
                    final["http.request.body.size"] = received
                if route:
                    final["http.route"] = route
                if error_type:
                    final["error.type"] = error_type
                    span.set_status(Status(StatusCode.ERROR, None if error is None else str(error)[:256]))
                    if error is not None:
                        span.record_exception(error)
                set_known_attributes(span, final, f"{method} {route}" if route else None)
            if not health:
                end_span(span, end)
            if context_var is None:
                otel_context.detach(token)
            else:
                try:
                    context_var.reset(token)
                except Exception:  # another context: detach logs it, as it always did
                    otel_context.detach(token)
            end_request_context(request_ctx, error)
            if health:
                self.health.learn(scope["path"])
            elif fast is None:
                self.duration.record((end - start) / 1e9, metric_attrs)
            else:
                ctx = span.get_span_context()
                sampled = ctx.trace_flags.sampled
                fast.record(
                    (end - start) / 1e9,
                    (method, scheme, version, status or None, route, error_type),
                    end,
                    ctx.trace_id if sampled else 0,
                    ctx.span_id if sampled else 0,
                )


def _has_header(headers: Any, name: bytes) -> bool:
    """Whether the ASGI ``headers`` list has ``name`` (lower-case bytes), in any case."""
    size = len(name)
    for key, _ in headers:  # noqa: SIM110 - once per response: a loop costs 0.25 µs, any(generator) 0.67 µs
        if len(key) == size and key.lower() == name:
            return True
    return False


def _route_template(scope: Scope, base_root: str) -> str | None:
    route = scope.get("route")
    if route is None:
        return None
    template: str | None = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return None
    # A route inside a mounted app is relative to the mount: prefix what the mounts added to root_path.
    root: str = scope.get("root_path", "")
    if len(root) > len(base_root) and root.startswith(base_root):
        return root[len(base_root) :] + template
    return template


def register_fast_duration() -> None:
    """Register the pre-aggregated duration histogram (called when otelkit builds the MeterProvider)."""
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from otelkit import __version__

    fasthist.register(
        fasthist.FastHistogram(
            DURATION_METRIC,
            unit="s",
            description=_DURATION_DESCRIPTION,
            boundaries=_DURATION_BUCKETS,
            attribute_names=_DURATION_ATTRIBUTES,
            scope=InstrumentationScope("otelkit.http", __version__),
        )
    )


def instrument_fastapi(instrumentation: HTTPInstrumentation | None = None) -> HTTPInstrumentation:
    """Instrument every FastAPI app (existing and future) in this process. Idempotent."""
    import fastapi

    installed = state.http_instrumentation()
    if installed is not None:
        return installed
    inst = instrumentation or HTTPInstrumentation()
    original = fastapi.FastAPI.__call__

    async def __call__(self: Any, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            # The documented "skip" value of FastAPI's built-in telemetry: otelkit records this request.
            scope["fastapi.telemetry"] = None
            await inst.handle(original, self, scope, receive, send)
            return
        if kind == "websocket":
            scope["fastapi.telemetry"] = None
        elif kind == "lifespan":
            await original(self, scope, receive, _flush_on_shutdown(send))
            return
        await original(self, scope, receive, send)

    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    fastapi.FastAPI.__call__ = __call__  # type: ignore[method-assign]
    state.set_http_instrumentation(inst, original)
    return inst


def uninstrument_fastapi() -> None:
    """Undo :func:`instrument_fastapi` (tests)."""
    import fastapi

    original = state.clear_http_instrumentation()
    if original is not None:
        fastapi.FastAPI.__call__ = original  # type: ignore[method-assign]


def _flush_on_shutdown(send: Any) -> Any:
    """Flush all signals when the ASGI server reports lifespan shutdown complete.

    uvicorn re-raises SIGTERM after its graceful shutdown, so atexit hooks may never run; the
    lifespan shutdown message is the last moment the app is sure to have.
    """

    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            import anyio.to_thread

            from otelkit._runtime import shutdown

            try:
                await anyio.to_thread.run_sync(shutdown.finish)
            except Exception:
                failures.report("flushing telemetry at lifespan shutdown failed")
        await send(message)

    return wrapped
