"""Exporting: the OTLP exporters' encoding step and transport, metric exporters' preferences."""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType
from typing import Any

from otelkit._runtime.sdk_compat._probes import probe_log_records, probe_spans
from otelkit._runtime.sdk_compat._registry import FastPath, differs, quiet, register, short

# --- OTLP/HTTP transport ----------------------------------------------------------------------------


def _probe_lean_transport(fast: Callable[[], dict[str, Any]]) -> str | None:
    import inspect

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if "_transport" not in inspect.signature(OTLPSpanExporter.__init__).parameters:
        return "OTLPSpanExporter() takes no _transport"
    from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport

    if BaseHTTPTransport.__abstractmethods__ != {"request", "close", "is_connection_error"}:
        return f"BaseHTTPTransport asks for {sorted(BaseHTTPTransport.__abstractmethods__)}"
    if BaseHTTPResult.__abstractmethods__ != {"content", "headers"}:
        return f"BaseHTTPResult asks for {sorted(BaseHTTPResult.__abstractmethods__)}"
    exporter: Any = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", **fast())
    exporter.shutdown()
    return None


def _lean_transport() -> dict[str, Any]:
    from otelkit._runtime.sdk_compat._transport import lean_transport_class

    return {"_transport": lean_transport_class()()}


def _default_transport() -> dict[str, Any]:
    return {}


LEAN_TRANSPORT = register(
    "lean-transport", probe=_probe_lean_transport, fast=_lean_transport, fallback=_default_transport
)


def lean_transport() -> dict[str, Any]:
    """Keyword arguments giving an OTLP/HTTP exporter otelkit's transport (``{}``: the SDK's default).

    See :mod:`otelkit._runtime.sdk_compat._transport`; for plain-HTTP endpoints only.
    """
    return LEAN_TRANSPORT.get()()


# --- metric exporters' preferences ------------------------------------------------------------------


def _probe_exporter_preferences(fast: Callable[[Any], Any]) -> str | None:
    from opentelemetry.sdk.metrics import Histogram
    from opentelemetry.sdk.metrics.export import AggregationTemporality, ConsoleMetricExporter
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation

    aggregation = ExplicitBucketHistogramAggregation((1.0,))
    exporter = ConsoleMetricExporter(
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
        preferred_aggregation={Histogram: aggregation},
    )
    temporality, aggregations = fast(exporter)
    if temporality.get(Histogram) is not AggregationTemporality.DELTA or aggregations.get(Histogram) is not aggregation:
        return f"MetricExporter keeps its preferences elsewhere (read {temporality!r}, {aggregations!r})"
    return None


def _exporter_preferences_private(exporter: Any) -> tuple[dict[type, Any], dict[type, Any]]:
    return dict(exporter._preferred_temporality or {}), dict(exporter._preferred_aggregation or {})


EXPORTER_PREFERENCES: FastPath[Callable[[Any], tuple[dict[type, Any], dict[type, Any]]] | None] = register(
    "exporter-preferences", probe=_probe_exporter_preferences, fast=_exporter_preferences_private, fallback=None
)


def exporter_preferences(exporter: Any) -> tuple[dict[type, Any], dict[type, Any]] | None:
    """``(temporality, aggregation)`` per instrument class a metric exporter asked for; None if unknown.

    otelkit's own exporters state theirs (``preferences``); any other is read from the SDK's base class.
    """
    own = getattr(exporter, "preferences", None)
    if own is not None:
        return own  # type: ignore[no-any-return]
    read = EXPORTER_PREFERENCES.get()
    return None if read is None else read(exporter)


# --- OTLP/HTTP export with otelkit's encoder -----------------------------------------------------------
# Every supported release's OTLPSpanExporter.export()/OTLPLogExporter.export() encodes with the
# module-level encode_spans/encode_logs and serializes the message it returns; the rest of export()
# (retries, self-metrics, size limit, transport) changed in 1.42 and 1.45. otelkit runs the
# installed export() itself, with only that module-level name bound to its own encoder: the
# function's code and defaults, over a copy of its module's globals.


class UnexpectedUse(Exception):
    """The installed SDK's ``export()`` used the encoded request in a way otelkit's does not provide."""


class EncodedRequest:
    """What otelkit's encoder hands the SDK's ``export()``: the serialized request, as the message would give it."""

    __slots__ = ("data", "on_unexpected")

    def __init__(self, data: bytes, on_unexpected: Callable[[str], object] | None = None) -> None:
        self.data = data
        self.on_unexpected = on_unexpected

    def SerializeToString(self, **_: Any) -> bytes:
        return self.data

    def SerializePartialToString(self, **_: Any) -> bytes:
        return self.data

    def ByteSize(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str) -> Any:
        if self.on_unexpected is not None:
            self.on_unexpected(name)  # export() may catch what follows: tell the caller anyway
        raise UnexpectedUse(f"export() used the encoded request's {name!r}")


# The SDK encoder's logger (otelkit's encoder logs under the same name): a probe's inputs are made
# to be refused by some releases, which log it.
_protowire_logger = "opentelemetry.exporter.otlp.proto.common._internal"

_SERIALIZERS = frozenset(("SerializeToString", "SerializePartialToString"))


def _export_code_reason(sdk_class: Any, encoder_name: str) -> str | None:
    export = getattr(sdk_class, "export", None)
    code = getattr(export, "__code__", None)
    if code is None:
        return f"{sdk_class.__name__}.export is not a Python function"
    if encoder_name not in code.co_names or encoder_name not in export.__globals__:  # type: ignore[union-attr]
        return f"{sdk_class.__name__}.export() does not encode with the module-level {encoder_name}()"
    if not _SERIALIZERS & set(code.co_names):
        return f"{sdk_class.__name__}.export() does not serialize the encoded message"
    return None


def export_with_encoder(
    sdk_class: Any, encoder_name: str, encode: Callable[[Any], EncodedRequest]
) -> Callable[..., Any]:
    """``sdk_class.export`` with its module-level ``encoder_name`` bound to ``encode``; call as ``f(self, batch)``."""
    export: Any = sdk_class.export
    namespace = dict(export.__globals__)
    namespace[encoder_name] = encode
    bound = FunctionType(export.__code__, namespace, export.__name__, export.__defaults__, export.__closure__)
    bound.__kwdefaults__ = export.__kwdefaults__
    return bound


def _probe_encoder(kind: str, fast: Callable[..., bytes]) -> str | None:
    if kind == "spans":
        from opentelemetry.exporter.otlp.proto.http import trace_exporter as module

        sdk_class, encoder_name, batch = module.OTLPSpanExporter, "encode_spans", probe_spans()
    else:
        from otelkit._runtime.sdk_compat._api import otlp_log_exporter_module

        module = otlp_log_exporter_module()
        sdk_class, encoder_name, batch = module.OTLPLogExporter, "encode_logs", probe_log_records()  # type: ignore[attr-defined]
    reason = _export_code_reason(sdk_class, encoder_name)
    if reason is not None:
        return reason
    with quiet(_protowire_logger):
        expected = getattr(module, encoder_name)(batch)
        decoded = type(expected).FromString(fast(batch))
    if decoded != expected:
        return f"the encoded {kind} differ from the SDK's: {short(_first_difference(decoded, expected), 200)}"
    return None


def _first_difference(ours: Any, sdk: Any) -> str:
    ours_lines, sdk_lines = str(ours).splitlines(), str(sdk).splitlines()
    for i, (a, b) in enumerate(zip(ours_lines, sdk_lines, strict=False)):
        if a != b:
            return f"line {i + 1}: fast {a.strip()!r} vs SDK {b.strip()!r}"
    return f"fast {len(ours_lines)} lines vs SDK {len(sdk_lines)}"


def probe_span_encoder(fast: Callable[..., bytes]) -> str | None:
    """Probe for an OTLP span encoder ``fast(spans) -> bytes``: the SDK's exporter can use it, and it encodes alike."""
    return _probe_encoder("spans", fast)


def probe_log_encoder(fast: Callable[..., bytes]) -> str | None:
    """Probe for an OTLP log record encoder ``fast(records) -> bytes`` (see :func:`probe_span_encoder`)."""
    return _probe_encoder("logs", fast)


# --- otelkit's pre-aggregated histogram ------------------------------------------------------------------


def probe_fast_histogram(fast: Callable[..., Any]) -> str | None:
    """Probe for :class:`otelkit._fasthist.FastHistogram`: the points it exports are the SDK histogram's."""
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    if EXPORTER_PREFERENCES.get() is None:
        return "metric exporters' temporality cannot be read"
    bounds = (0.005, 0.1, 1.0)
    values = ((0.001, ("GET", 200)), (0.05, ("GET", 200)), (0.5, ("POST", None)), (2.0, ("GET", 200)))
    for temporality in (AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA):
        histogram = fast(
            "probe.duration",
            unit="s",
            description="probe",
            boundaries=bounds,
            attribute_names=("method", "status"),
            scope=InstrumentationScope("otelkit.probe"),
            exemplars="always_off",
        )
        reader = InMemoryMetricReader(preferred_temporality={Histogram: temporality})
        provider = MeterProvider(metric_readers=[reader], resource=Resource({}), shutdown_on_exit=False)
        sdk = provider.get_meter("otelkit.probe").create_histogram(
            "probe.duration", unit="s", description="probe", explicit_bucket_boundaries_advisory=bounds
        )
        for value, key in values:
            histogram.record(value, key, 0)
            sdk.record(value, {n: v for n, v in zip(("method", "status"), key, strict=True) if v is not None})
        ours = histogram.collect(temporality)
        data = reader.get_metrics_data()
        if data is None:
            return "the SDK histogram collected nothing"
        (theirs,) = data.resource_metrics[0].scope_metrics[0].metrics
        provider.shutdown()
        reason = differs("histogram", _histogram_shape(ours), _histogram_shape(theirs))
        if reason is not None:
            return reason
    return None


def probe_fast_sum(fast: Callable[..., Any]) -> str | None:
    """Probe for :class:`otelkit._runtime.fasthist.FastSum`: the points it exports are the SDK counters'.

    Two collections of a counter and an up-down counter in each temporality (a key idle in the
    second one), with exemplars from a sampled span (one sampled measurement per key and period,
    so the reservoir's choice is not random).
    """
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import Counter, MeterProvider, UpDownCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    if EXPORTER_PREFERENCES.get() is None:
        return "metric exporters' temporality cannot be read"
    span = trace.NonRecordingSpan(trace.SpanContext(0xA1, 0xB2, False, trace.TraceFlags(trace.TraceFlags.SAMPLED)))
    sampled = trace.set_span_in_context(span)
    periods = (
        ((1, ("a", None), False), (2, ("a", None), True), (5, ("b", "x"), True)),
        ((-1, ("a", None), True), (3, ("a", None), False)),
    )
    for temporality in (AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA):
        for monotonic, kind in ((True, Counter), (False, UpDownCounter)):
            ours_instrument = fast(
                "probe.sum",
                unit="1",
                description="probe",
                monotonic=monotonic,
                attribute_names=("k", "v"),
                scope=InstrumentationScope("otelkit.probe"),
                exemplars="trace_based",
            )
            reader = InMemoryMetricReader(preferred_temporality={kind: temporality})
            provider = MeterProvider(metric_readers=[reader], resource=Resource({}), shutdown_on_exit=False)
            meter = provider.get_meter("otelkit.probe")
            create = meter.create_counter if monotonic else meter.create_up_down_counter
            sdk = create("probe.sum", unit="1", description="probe")
            for period in periods:
                for amount, key, with_span in period:
                    if monotonic and amount < 0:
                        continue
                    attributes = {n: v for n, v in zip(("k", "v"), key, strict=True) if v is not None}
                    if with_span:
                        ours_instrument.add(amount, key, 0, 0xA1, 0xB2)
                        sdk.add(amount, attributes, context=sampled)
                    else:
                        ours_instrument.add(amount, key, 0)
                        sdk.add(amount, attributes)
                ours = ours_instrument.collect(temporality)
                data = reader.get_metrics_data()
                theirs = None if data is None else data.resource_metrics[0].scope_metrics[0].metrics[0]
                reason = differs("sum", _sum_shape(ours), _sum_shape(theirs))
                if reason is not None:
                    provider.shutdown()
                    return reason
            provider.shutdown()
    return None


def _sum_shape(metric: Any) -> tuple[Any, ...] | None:
    if metric is None:
        return None
    points = sorted(
        (
            sorted(p.attributes.items()),
            p.value,
            [(e.filtered_attributes or {}, e.value, e.trace_id, e.span_id) for e in p.exemplars],
        )
        for p in metric.data.data_points
    )
    data = metric.data
    return (metric.name, metric.unit, metric.description, data.aggregation_temporality, data.is_monotonic, points)


def _histogram_shape(metric: Any) -> tuple[Any, ...]:
    points = sorted(
        (
            sorted(p.attributes.items()),
            p.count,
            p.sum,
            tuple(p.bucket_counts),
            tuple(p.explicit_bounds),
            p.min,
            p.max,
        )
        for p in metric.data.data_points
    )
    return (metric.name, metric.unit, metric.description, metric.data.aggregation_temporality, points)
