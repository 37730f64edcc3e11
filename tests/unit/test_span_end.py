"""otelkit's end of the server span exports what ``Span.end`` exports, and takes ``Span.end`` when it must."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode

from otelkit._runtime import sdk_compat
from otelkit._runtime.http.serverspan import end_span


def _batched(*exporters: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "t"}), shutdown_on_exit=False)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    return provider


def _exported(span: ReadableSpan) -> dict[str, Any]:
    return {
        "type": type(span),
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent,
        "attributes": dict(span.attributes),
        "immutable": span._attributes._immutable,  # type: ignore[attr-defined]
        "events": [(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events],
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "times": (span.start_time, span.end_time),
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
        "dropped": (span.dropped_attributes, span.dropped_events, span.dropped_links),
    }


def _three_spans(provider: TracerProvider, end: Any) -> list[dict[str, Any]]:
    tracer = provider.get_tracer("otelkit.http", "1")
    spans = [tracer.start_span(f"GET /{i}", kind=trace.SpanKind.SERVER, start_time=1_000) for i in range(3)]
    spans[0].set_attributes({"http.request.method": "GET", "n": 1})
    spans[0].add_event("e", {"k": "v"}, timestamp=1_500)
    spans[1].add_link(SpanContext(7, 8, True), {"l": 1})
    spans[1].set_status(Status(StatusCode.ERROR, "boom"))
    for span in spans:
        end(span, 2_000)
    provider.force_flush()
    return [span.get_span_context().span_id for span in spans]  # type: ignore[misc]


def test_end_span_exports_what_span_end_exports() -> None:
    assert sdk_compat.SPAN_END.on, sdk_compat.SPAN_END.reason
    results = []
    for end in (lambda span, t: span.end(t), end_span):
        exporter = InMemorySpanExporter()
        provider = _batched(exporter)
        ids = _three_spans(provider, end)
        finished = {s.context.span_id: s for s in exporter.get_finished_spans()}  # type: ignore[union-attr]
        results.append([_exported(finished[i]) for i in ids])
    assert results[0] == results[1]
    assert results[1][0]["type"] is ReadableSpan and results[1][1]["status"] == (StatusCode.ERROR, "boom")


def test_end_span_reaches_every_batch_processor_added_later() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    provider = _batched(first)
    tracer = provider.get_tracer("t")
    end_span(tracer.start_span("one"), None)
    provider.add_span_processor(BatchSpanProcessor(second, schedule_delay_millis=60_000))
    end_span(tracer.start_span("two"), None)
    provider.force_flush()
    assert [s.name for s in first.get_finished_spans()] == ["one", "two"]
    assert [s.name for s in second.get_finished_spans()] == ["two"]
    assert all(s.end_time for s in first.get_finished_spans())


class _Seen(SpanProcessor):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def _on_ending(self, span: Any) -> None:
        self.calls.append(f"ending {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(f"end {span.name}")


def test_end_span_with_another_processor_takes_span_end() -> None:
    exporter, seen = InMemorySpanExporter(), _Seen()
    provider = _batched(exporter)
    provider.add_span_processor(seen)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    end_span(provider.get_tracer("t").start_span("s"), 2_000)
    provider.force_flush()
    assert seen.calls == ["ending s", "end s"]
    assert [s.end_time for s in exporter.get_finished_spans()] == [2_000]


def test_end_span_twice_warns_as_the_sdk_does_and_exports_once(caplog: pytest.LogCaptureFixture) -> None:
    exporter = InMemorySpanExporter()
    provider = _batched(exporter)
    span = provider.get_tracer("t").start_span("s")
    end_span(span, 2_000)
    with caplog.at_level(logging.WARNING):
        end_span(span, 3_000)
    provider.force_flush()
    assert "Calling end() on an ended span." in caplog.text
    assert [s.end_time for s in exporter.get_finished_spans()] == [2_000]


def test_end_span_calls_the_end_of_span_callback_once() -> None:
    provider = _batched(InMemorySpanExporter())
    span: Any = provider.get_tracer("t").start_span("s")
    calls: list[int] = []
    span._record_end_metrics = lambda: calls.append(1)
    end_span(span, None)
    assert calls == [1] and span.end_time


def test_end_span_of_a_non_recording_span_does_nothing() -> None:
    span = NonRecordingSpan(SpanContext(1, 2, False))
    end_span(span, 5)
    assert not span.is_recording()


def test_end_span_unsampled_span_is_not_queued() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    exporter = InMemorySpanExporter()
    provider = _batched(exporter)
    provider.sampler = ParentBased(ALWAYS_OFF)
    span = provider.get_tracer("t").start_span("s", links=[Link(SpanContext(1, 2, False))])
    end_span(span, 2_000)
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
