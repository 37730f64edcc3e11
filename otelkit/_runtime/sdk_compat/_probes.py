"""What the probes run: a throw-away tracer provider, and finished spans and log records using what OTLP carries."""

from __future__ import annotations

from typing import Any

from otelkit._runtime.sdk_compat._api import logs_api, logs_sdk, logs_sdk_export

__all__ = ["probe_log_records", "probe_provider", "probe_spans", "remote_parent", "sampler_cases"]


def probe_provider(sampler: Any = None, **options: Any) -> tuple[Any, Any]:
    """A throw-away TracerProvider exporting to memory (no self-metrics, no exit hook).

    Its sampler is ``sampler`` or ALWAYS_ON, never the app's ``OTEL_TRACES_SAMPLER``: a probe needs
    recorded spans whatever share of them the app keeps. The app's span limits do apply (a short
    path must give what the SDK gives under them).
    """
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    options["sampler"] = ALWAYS_ON if sampler is None else sampler
    provider = TracerProvider(
        resource=Resource({"service.name": "otelkit-probe"}),
        shutdown_on_exit=False,
        meter_provider=NoOpMeterProvider(),
        **options,
    )
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def remote_parent(trace_id: int, sampled: bool) -> Any:
    """A context whose span is a remote parent with ``trace_id``, sampled or not, with a trace state."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(trace_id, 0x1F2E3D4C5B6A7988, True, flags, TraceState([("vendor", "v1")]))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def sampler_cases() -> list[tuple[Any, list[Any]]]:
    """``(sampler, parent contexts)`` the span-start probes try: no parent, sampled and unsampled
    remote parents, and trace ids at both ends of the ratio sampler's range."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    low, high = 0x0A0B0C0D0E0F10110000000000000001, 0x0A0B0C0D0E0F1011FFFFFFFFFFFFFFFF
    return [
        (ParentBased(ALWAYS_ON), [None, remote_parent(low, True), remote_parent(low, False)]),
        (TraceIdRatioBased(0.5), [remote_parent(low, True), remote_parent(high, True)]),
    ]


def probe_spans() -> list[Any]:
    """Finished SDK spans using what OTLP carries: attributes of each type, an event, a link, a status…"""
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    provider, exporter = probe_provider()
    tracer = provider.get_tracer("otelkit.probe", "1.0", schema_url="https://opentelemetry.io/schemas/1.26.0")
    link = Link(SpanContext(0x0102030405060708090A0B0C0D0E0F10, 0x1112131415161718, True, TraceFlags(1)), {"l": "v"})
    attributes = {"s": "str", "i": -7, "f": 1.5, "b": True, "ss": ("a", "b"), "is": (1, 2), "\u00f1": "\u00fc"}
    span = tracer.start_span(
        "GET /probe",
        context=remote_parent(0x0A0B0C0D0E0F10111213141516171819, True),
        kind=SpanKind.SERVER,
        attributes=attributes,
        links=[link],
        start_time=1_000,
    )
    span.add_event("event", {"e": 1}, timestamp=1_500)
    span.set_status(Status(StatusCode.ERROR, "boom"))
    span.end(end_time=2_000)
    internal = tracer.start_span("internal", start_time=3_000)
    internal.end(end_time=4_000)
    # What a processor may hand on that the API would not make: a None value (SDK 1.40-1.42 drop
    # the attribute, 1.43+ send an empty value).
    from opentelemetry.sdk.trace import ReadableSpan

    made = ReadableSpan(
        name="made", context=internal.get_span_context(), resource=internal.resource, attributes={"n": None}
    )
    return [*exporter.get_finished_spans(), made]


def probe_log_records() -> list[Any]:
    """Log records as a logger provider hands them to exporters: each field, a ``None`` body and value, a map."""
    import inspect

    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource

    sdk, export = logs_sdk(), logs_sdk_export()
    options: dict[str, Any] = {"resource": Resource({"service.name": "otelkit-probe"}), "shutdown_on_exit": False}
    if "meter_provider" in inspect.signature(sdk.LoggerProvider.__init__).parameters:
        options["meter_provider"] = NoOpMeterProvider()
    provider = sdk.LoggerProvider(**options)
    exporter = export.InMemoryLogRecordExporter()
    provider.add_log_record_processor(export.SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("otelkit.probe", "1.0")
    severity = logs_api().SeverityNumber
    context = remote_parent(0x0A0B0C0D0E0F10111213141516171819, True)
    logger.emit(
        timestamp=1_000,
        observed_timestamp=2_000,
        context=context,
        severity_number=severity.WARN,
        severity_text="WARN",
        body="hello",
        attributes={"s": "x", "i": 3, "f": 0.5, "b": False, "ss": ("a",), "map": {"k": "v"}, "none": None},
        event_name="probe.event",
    )
    logger.emit(timestamp=3_000, observed_timestamp=3_000, severity_number=severity.INFO, body=None)
    logger.emit(timestamp=4_000, observed_timestamp=4_000, body={"structured": [1, "two"]})
    return list(exporter.get_finished_logs())
