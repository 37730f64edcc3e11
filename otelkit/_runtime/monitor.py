"""``monitor``: a span and a duration histogram around a job or an external call, in one line.

For the work that is yours rather than a framework's — a batch job, a model generation, a call to
a third-party API — wrap it once and get a span, a count, a duration and errors::

    from otelkit import monitor

    @monitor("generate_model")                          # a job: span kind INTERNAL
    def generate_model(image_id: str) -> Model: ...

    @monitor("fal.submit", kind="external_call", attributes={"peer.service": "fal.ai"})
    async def submit(payload: dict) -> str: ...       # an external call: span kind CLIENT

    with monitor("fal.poll", kind="external_call") as span:
        span.set_attribute("fal.request_id", request_id)  # per-call detail goes on the span
        result = client.poll(request_id)

Recorded per call, through the OpenTelemetry API only (the global providers, looked up at call
time, so monitoring works before :func:`otelkit.configure` runs and follows it once it has):

- a span named ``name``, carrying ``attributes``; on an exception the exception is recorded,
  the status set to ERROR and ``error.type`` set to the exception's class name, then it is raised;
- ``app.operation.duration`` (histogram, ``s``, buckets 5 ms … 10 min) with ``operation.name``,
  ``operation.kind`` (``job`` or ``external_call``), ``error.type`` (failed calls only) and
  ``attributes``. Its ``_count`` is the number of calls, its ``_count`` with an ``error_type``
  the errors — no separate counters;
- ``app.operation.active`` (up-down counter, ``{operation}``) with ``operation.name`` and
  ``operation.kind``: calls in progress.

In Prometheus (through the collector): ``app_operation_duration_seconds_bucket``/``_count``/``_sum``
and ``app_operation_active``. ``attributes`` become metric labels: keep them to a few values each
(a service name, a model), never ids — put those on the span.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["DURATION_BUCKETS", "Kind", "monitor"]

Kind = Literal["job", "external_call"]
"""What is monitored: ``job`` (span kind INTERNAL) or ``external_call`` (span kind CLIENT)."""

_KINDS: dict[str, SpanKind] = {"job": SpanKind.INTERNAL, "external_call": SpanKind.CLIENT}

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Bucket boundaries (seconds) advised for ``app.operation.duration`` and for the Celery task
histograms (:mod:`otelkit.celery`): 5 ms to 10 min, with 60 s and 300 s as exact boundaries for
queue-wait and processing SLOs."""

_SCOPE = "otelkit.monitor"

F = TypeVar("F", bound=Callable[..., Any])


class _Instruments:
    def __init__(self, meter_provider: Any) -> None:
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "app.operation.duration",
            unit="s",
            description="Duration of monitored jobs and external calls.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.active = meter.create_up_down_counter(
            "app.operation.active", unit="{operation}", description="Monitored jobs and external calls in progress."
        )


# Keyed by the explicit meter provider (None: the global one, whose proxy instruments follow
# set_meter_provider). Instruments are created once, not per call.
_instruments: dict[int, tuple[Any, _Instruments]] = {}


def _instruments_for(meter_provider: Any) -> _Instruments:
    key = id(meter_provider)
    entry = _instruments.get(key)
    if entry is None or entry[0] is not meter_provider:
        entry = (meter_provider, _Instruments(meter_provider))
        _instruments[key] = entry
    return entry[1]


class _Call:
    """One monitored call: the span, the start time and the attributes."""

    __slots__ = ("_activation", "_attrs", "_instruments", "_start", "span")

    def __init__(self, owner: monitor) -> None:
        tracer = trace.get_tracer(_SCOPE, tracer_provider=owner.tracer_provider)
        self.span = tracer.start_span(owner.name, kind=_KINDS[owner.kind], attributes=owner.attributes)
        self._activation = trace.use_span(self.span, end_on_exit=False, record_exception=False)
        self._activation.__enter__()
        self._instruments = _instruments_for(owner.meter_provider)
        self._attrs = owner.metric_attributes
        self._instruments.active.add(1, owner.active_attributes)
        self._start = time.perf_counter()

    def finish(self, owner: monitor, exc: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._start
        attrs = self._attrs
        try:
            if exc is not None:
                error_type = type(exc).__qualname__
                attrs = {**attrs, "error.type": error_type}
                self.span.set_attribute("error.type", error_type)
                self.span.record_exception(exc)
                self.span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))
            self._instruments.duration.record(elapsed, attrs)
            self._instruments.active.add(-1, owner.active_attributes)
        finally:
            self._activation.__exit__(None, None, None)
            self.span.end()


# The calls open in this context (asyncio task or thread), innermost last, with their monitor:
# per-call state, so one monitor instance can be entered by concurrent tasks and threads.
_open_calls: contextvars.ContextVar[tuple[tuple[monitor, _Call], ...]] = contextvars.ContextVar(
    "otelkit_monitor_calls", default=()
)


class monitor:  # lower case: used like a function, @monitor(...) and with monitor(...)
    """Monitor a job or an external call: a span, ``app.operation.duration`` and ``app.operation.active``.

    Use it as a decorator (sync or ``async def`` functions) or as a context manager (``with`` or
    ``async with``) that yields the span. Every call is monitored on its own, also concurrently:
    one instance may be shared by asyncio tasks and threads (each keeps its own open calls).

    Args:
        name: operation name: the span name and the ``operation.name`` attribute. Keep it a
            constant such as ``"fal.submit"`` — never an id or a URL with ids in it.
        kind: ``"job"`` (default; span kind INTERNAL) or ``"external_call"`` (span kind CLIENT).
        attributes: added to the span and, as labels, to the duration histogram; few values each.
        tracer_provider: use this provider instead of the global one (tests).
        meter_provider: use this provider instead of the global one (tests).

    Raises:
        ValueError: ``name`` is empty or ``kind`` is not one of the two kinds.
        TypeError: used to decorate a generator function (monitor with ``with`` inside it).
    """

    def __init__(
        self,
        name: str,
        *,
        kind: Kind = "job",
        attributes: Mapping[str, Any] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"monitor name must be a non-empty string, got {name!r}")
        if kind not in _KINDS:
            raise ValueError(f"unknown monitor kind {kind!r}; expected one of: {', '.join(_KINDS)}")
        self.name = name
        self.kind = kind
        self.attributes = dict(attributes or {})
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.active_attributes = {"operation.name": name, "operation.kind": kind}
        self.metric_attributes = {**self.attributes, **self.active_attributes}

    # -- context manager

    def __enter__(self) -> trace.Span:
        call = _Call(self)
        _open_calls.set((*_open_calls.get(), (self, call)))
        return call.span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # This task's (or thread's) innermost open call of this instance: another task or thread
        # using the same instance has its own list, so overlapping calls never swap.
        calls = _open_calls.get()
        for i in range(len(calls) - 1, -1, -1):
            if calls[i][0] is self:
                _open_calls.set(calls[:i] + calls[i + 1 :])
                calls[i][1].finish(self, exc)
                return
        raise RuntimeError(f"{self!r} exited without a matching enter in this task or thread")

    async def __aenter__(self) -> trace.Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator

    def __call__(self, func: F) -> F:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"monitor({self.name!r}) cannot decorate the generator function {func.__qualname__}: it would"
                " measure only the creation of the generator; use `with monitor(...)` inside it instead"
            )
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                call = _Call(self)
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    call.finish(self, exc)
                    raise
                call.finish(self, None)
                return result

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            call = _Call(self)
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                call.finish(self, exc)
                raise
            call.finish(self, None)
            return result

        return cast(F, run)

    def __repr__(self) -> str:
        return f"monitor({self.name!r}, kind={self.kind!r})"
