"""The server span's end with the least work: what ``Span.end`` does, its processors' part inlined.

``Span.end`` takes the span's lock, sets the end time, freezes the attributes, then asks every
span processor twice (``_on_ending``, then ``on_end`` with a ``ReadableSpan`` built through its
13-keyword constructor); a ``BatchSpanProcessor`` does nothing with the first and queues the
second when the span is sampled. :func:`end_span` does the same for an SDK span whose processors
are all ``BatchSpanProcessor``: the same checks under the same lock, the end-of-span metrics
callback, the ``ReadableSpan`` copied field by field from the span (a builder generated from the
fields the SDK's own copy has, :func:`otelkit._runtime.sdk_compat._layout.copier`) and queued on
each processor's batch. Any other span or processor, a span not started or already ended, takes
``Span.end`` itself.

What it relies on (checked by its probe, ``span-end``): ``Span.end`` referring to exactly the names
of the releases otelkit knows (1.40–1.41 do not freeze the attributes, 1.42+ do), the
``ReadableSpan`` the SDK hands ``on_end`` holding the span's own field values,
``SynchronousMultiSpanProcessor._span_processors`` and ``BatchSpanProcessor._batch_processor`` (its
queue, through :func:`~otelkit._runtime.sdk_compat._queue.queue_emit`); the probe ends spans both
ways and compares what reached the exporter, field by field.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import time_ns
from typing import Any

from otelkit._runtime.sdk_compat._layout import copier, state
from otelkit._runtime.sdk_compat._probes import probe_provider
from otelkit._runtime.sdk_compat._queue import queue_emit
from otelkit._runtime.sdk_compat._registry import differs, missing, quiet, register

__all__ = ["SPAN_END", "end_span"]

# The names Span.end's code refers to in the releases otelkit knows -> whether it freezes the attributes.
_END_NAMES: tuple[str, ...] = ("RuntimeError", "_end_time", "_lock", "_on_ending", "_readable_span")
_END_NAMES += ("_record_end_metrics", "_span_processor", "_start_time", "logger", "on_end", "time_ns", "warning")
_KNOWN_ENDS = {
    frozenset(_END_NAMES): False,  # 1.40, 1.41
    frozenset((*_END_NAMES, "_attributes", "_immutable")): True,  # 1.42+
}


class _Sdk:
    """What the fast end uses, set by the probe (which runs before any use)."""

    Span: Any = None
    Multi: Any = None
    Batch: Any = None
    freeze = False
    copy: Callable[[Any], Any] | None = None


class _Plan:
    """The batches a span processor's spans go to, or None: it has other processors (Span.end)."""

    __slots__ = ("emits", "multi", "processors")

    def __init__(self, multi: Any, processors: Any, emits: tuple[Callable[[Any], None], ...] | None) -> None:
        self.multi = multi
        self.processors = processors
        self.emits = emits


_last: list[_Plan | None] = [None]  # the plan of the last processor seen: one provider in practice
_lock = threading.Lock()


def _plan(multi: Any) -> _Plan:
    processors = getattr(multi, "_span_processors", None)
    emits = None
    if type(multi) is _Sdk.Multi and isinstance(processors, tuple) and all(type(p) is _Sdk.Batch for p in processors):
        emits = tuple(queue_emit(p._batch_processor) for p in processors)
    plan = _Plan(multi, processors, emits)
    with _lock:
        _last[0] = plan
    return plan


def _end_direct(span: Any, end_time: int | None) -> None:
    copy = _Sdk.copy
    if type(span) is not _Sdk.Span or copy is None:
        span.end(end_time)
        return
    multi = span._span_processor
    plan = _last[0]
    if plan is None or plan.multi is not multi or plan.processors is not multi._span_processors:
        plan = _plan(multi)
    emits = plan.emits
    if emits is None:
        span.end(end_time)
        return
    with span._lock:
        open_ = span._start_time is not None and span._end_time is None
        if open_:
            span._end_time = end_time if end_time is not None else time_ns()
            if _Sdk.freeze:
                span._attributes._immutable = True
    if not open_:
        span.end(end_time)  # not started, or ended: the SDK's error or warning
        return
    if span._record_end_metrics:
        span._record_end_metrics()
    readable = copy(span)
    context = readable._context
    if context and context.trace_flags.sampled:  # BatchSpanProcessor.on_end
        for emit in emits:
            emit(readable)


def _end_public(span: Any, end_time: int | None) -> None:
    span.end(end_time)


class _Capture:
    """A span processor keeping the ``ReadableSpan`` the SDK hands ``on_end`` (the probe's)."""

    def __init__(self) -> None:
        self.ended: list[Any] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        self.ended.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _probe_span_end(fast: Callable[[Any, int | None], None]) -> str | None:
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, _Span
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    freeze = _KNOWN_ENDS.get(frozenset(_Span.end.__code__.co_names))
    if freeze is None:
        return "Span.end does what no release otelkit knows does"
    # The ReadableSpan the SDK hands on_end: which fields it has, each the span's own.
    provider, _ = probe_provider()
    capture = _Capture()
    provider.add_span_processor(capture)
    span = provider.get_tracer("otelkit.probe").start_span("probe", attributes={"a": 1})
    span.end(2_000)
    (readable,) = capture.ended
    fields = vars(readable)
    mine = vars(span)
    if not all(name in mine and mine[name] is value for name, value in fields.items()):
        return "the ReadableSpan on_end gets is not the span's own fields"
    copy = copier(type(readable), tuple(fields))
    if copy is None:
        return "the ReadableSpan's fields cannot be copied"
    batch: Any = BatchSpanProcessor(InMemorySpanExporter())
    reason = missing(batch, ("_batch_processor",))
    batch.shutdown()  # its worker thread would otherwise wait in every process for good
    if reason is not None:
        return reason
    _Sdk.Span, _Sdk.Multi, _Sdk.Batch, _Sdk.freeze = _Span, SynchronousMultiSpanProcessor, BatchSpanProcessor, freeze
    _Sdk.copy = copy
    # Spans ended both ways through one batch processor: what reaches its exporter, field by field.
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    provider = TracerProvider(  # recorded spans whatever the app samples (as probe_provider)
        sampler=ALWAYS_ON,
        resource=Resource({"service.name": "otelkit-probe"}),
        shutdown_on_exit=False,
        meter_provider=NoOpMeterProvider(),
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    tracer = provider.get_tracer("otelkit.probe")
    ids: dict[str, list[int]] = {"sdk": [], "fast": []}
    with quiet("opentelemetry.sdk.trace"):  # the second end of a span: the SDK's warning, both ways
        for way, end in (("sdk", _end_public), ("fast", fast)):
            spans = [tracer.start_span("probe", start_time=1_000) for _ in "ab"]
            spans[0].set_attributes({"a": 1, "b": "x"})
            spans[0].set_status(Status(StatusCode.ERROR, "bad"))
            spans[0].add_event("e", {"k": 1}, timestamp=1_500)
            for span in spans:
                end(span, 2_000)
            end(spans[1], 3_000)  # ended already: nothing changed, nothing queued
            ids[way] = [span.get_span_context().span_id for span in spans]
    provider.force_flush()
    done = {span.context.span_id: span for span in exporter.get_finished_spans()}
    provider.shutdown()
    exported = {way: [_ended(done[i]) if i in done else None for i in span_ids] for way, span_ids in ids.items()}
    return differs("ended span", exported["fast"], exported["sdk"])


def _ended(span: Any) -> tuple[Any, ...]:
    events = [(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events]
    return type(span).__name__, state(span, ("_context", "_events")), events, span.dropped_events


SPAN_END = register("span-end", probe=_probe_span_end, fast=_end_direct, fallback=_end_public)


def end_span(span: Any, end_time: int | None = None) -> None:
    """``span.end(end_time)``; for an SDK span whose processors are all batches, without the generic steps."""
    SPAN_END.get()(span, end_time)
