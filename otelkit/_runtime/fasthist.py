"""A pre-aggregating histogram for the request path, merged into the SDK's metric exports.

Why: ``Histogram.record`` of the SDK costs ~11 µs per call (a ``Measurement`` object, the context,
attribute hashing into a frozenset, view and storage look-ups, the exemplar reservoir), about a
tenth of a bare FastAPI request. :class:`FastHistogram` keeps explicit-bucket counts per
attribute tuple in plain lists — a bucket search, a dict look-up and a few additions under a lock, ~1 µs.

How its points reach the exporter: :func:`wrap_exporter` wraps each metric exporter of the
MeterProvider otelkit builds. On every export (periodic, flush, shutdown) the wrapper appends the
registered histograms, as SDK ``Metric`` objects in the exporter's preferred temporality
(cumulative by default; delta when ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks for
it), to the batch under the instrumentation scope given at registration. Exemplars follow
``OTEL_METRICS_EXEMPLAR_FILTER`` (``trace_based`` by default): the last sampled span of each
bucket. Providers passed explicitly by the app or tests keep using the SDK histogram.

Used only when :func:`usable` says so: the ``fast-histogram`` path of :mod:`otelkit._runtime.sdk_compat`
checked that the points equal the SDK histogram's for the same measurements (both temporalities),
and every exporter's preferred temporality can be known; otherwise the SDK histogram records.
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Sequence
from time import time_ns
from typing import Any

from opentelemetry.sdk.metrics import Counter as _CounterInstrument
from opentelemetry.sdk.metrics import Exemplar as _Exemplar
from opentelemetry.sdk.metrics import Histogram as _HistogramInstrument
from opentelemetry.sdk.metrics import UpDownCounter as _UpDownCounterInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._runtime import sdk_compat

_random = random.random

__all__ = ["FastHistogram", "FastSum", "cumulative_up_down", "get", "register", "usable", "wrap_exporter"]


def _exemplar_mode(exemplars: str | None) -> str:
    mode = (exemplars or os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "trace_based")).strip().lower()
    return mode if mode in ("trace_based", "always_on", "always_off") else "trace_based"


class _FastInstrument:
    """What both pre-aggregated instruments hold: their identity, exemplar mode, lock and period start."""

    def __init__(
        self,
        name: str,
        *,
        unit: str,
        description: str,
        attribute_names: Sequence[str],
        scope: InstrumentationScope,
        exemplars: str | None,
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.attribute_names = tuple(attribute_names)
        self.scope = scope
        self.exemplars = _exemplar_mode(exemplars)
        self._lock = threading.Lock()
        self._start = time_ns()
        self._last_collect = self._start


class FastHistogram(_FastInstrument):
    """Explicit-bucket histogram keyed by a tuple of attribute values (``None`` = attribute absent).

    Args:
        name, unit, description: as for ``Meter.create_histogram``.
        boundaries: explicit bucket boundaries (buckets are ``(b[i-1], b[i]]``, as in OTel).
        attribute_names: the attribute key of each position of the record key tuple.
        scope: the instrumentation scope the points are exported under.
    """

    def __init__(
        self,
        name: str,
        *,
        unit: str,
        description: str,
        boundaries: Sequence[float],
        attribute_names: Sequence[str],
        scope: InstrumentationScope,
        exemplars: str | None = None,
    ) -> None:
        super().__init__(
            name, unit=unit, description=description, attribute_names=attribute_names, scope=scope, exemplars=exemplars
        )
        self.bounds = tuple(float(b) for b in boundaries)
        # key -> [bucket_counts, sum, count, min, max, exemplars-by-bucket]
        self._points: dict[tuple[Any, ...], list[Any]] = {}

    def record(self, value: float, key: tuple[Any, ...], now: int, trace_id: int = 0, span_id: int = 0) -> None:
        """Add one measurement; ``trace_id``/``span_id`` of a sampled span make it an exemplar candidate."""
        # bisect_left(self.bounds, value), as the SDK's histogram: a loop, which ends at the first
        # bucket for most requests, and keeps a C function off each request's path (bench/README.md).
        index = 0
        for bound in self.bounds:
            if not value > bound:  # NaN stops at 0, as in bisect_left
                break
            index += 1
        with self._lock:
            point = self._points.get(key)
            if point is None:
                n = len(self.bounds) + 1
                point = self._points[key] = [[0] * n, 0.0, 0, math.inf, -math.inf, [None] * n]
            point[0][index] += 1
            point[1] += value
            point[2] += 1
            if value < point[3]:
                point[3] = value
            if value > point[4]:
                point[4] = value
            if (trace_id and self.exemplars != "always_off") or self.exemplars == "always_on":
                point[5][index] = (value, now, trace_id, span_id)

    def collect(self, temporality: AggregationTemporality) -> Metric | None:
        """The points as an SDK ``Metric`` (None when nothing was recorded)."""
        now = time_ns()
        with self._lock:
            if temporality is AggregationTemporality.DELTA:
                points, self._points = self._points, {}
                start, self._last_collect = self._last_collect, now
            else:
                points = {k: [list(p[0]), p[1], p[2], p[3], p[4], p[5]] for k, p in self._points.items()}
                # As the SDK's reservoirs: a collection reports the exemplars offered since the last one.
                for p in self._points.values():
                    p[5] = [None] * len(p[5])
                start = self._start
        if not points:
            return None
        data_points = []
        for key, (counts, total, count, low, high, samples) in points.items():
            attributes = {n: v for n, v in zip(self.attribute_names, key, strict=True) if v is not None}
            exemplars = [_Exemplar({}, s[0], s[1], s[3] or None, s[2] or None) for s in samples if s is not None]
            data_points.append(
                HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=count,
                    sum=total,
                    bucket_counts=tuple(counts),
                    explicit_bounds=self.bounds,
                    min=low,
                    max=high,
                    exemplars=exemplars,
                )
            )
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=Histogram(data_points=data_points, aggregation_temporality=temporality),
        )

    instrument: type = _HistogramInstrument
    """The SDK instrument class whose temporality preference applies."""


class FastSum(_FastInstrument):
    """A counter (``monotonic``) or up-down counter keyed by a tuple of attribute values, as :class:`FastHistogram`.

    What the SDK's sum aggregation exports for the same ``add`` calls: one point per key (every key
    seen, when cumulative; the keys added to since the last collection, when delta), and the
    SDK's default exemplar reservoir for sums: one exemplar per point and collection, drawn
    uniformly from the sampled measurements of that collection period (the same reservoir
    algorithm: the n-th sampled measurement of a period replaces the kept one with probability 1/n,
    drawn as ``random.random() * n < 1`` where the SDK calls ``random.randrange(0, n) == 0``: the
    same probability, one C call instead of three Python frames).
    """

    def __init__(
        self,
        name: str,
        *,
        unit: str,
        description: str,
        monotonic: bool,
        attribute_names: Sequence[str],
        scope: InstrumentationScope,
        exemplars: str | None = None,
    ) -> None:
        super().__init__(
            name, unit=unit, description=description, attribute_names=attribute_names, scope=scope, exemplars=exemplars
        )
        self.monotonic = monotonic
        self.instrument: type = _CounterInstrument if monotonic else _UpDownCounterInstrument
        # True: an SDK instrument of the same name and scope only keeps the reader exporting (it has a
        # point in every collection); the export carries this one's points in its place.
        self.replaces_sdk = False
        # key -> [value (None: nothing added since the last collection), cumulative total,
        #         sampled measurements seen, exemplar (value, time, trace_id, span_id) or None]
        self._points: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, amount: int | float, key: tuple[Any, ...], now: int, trace_id: int = 0, span_id: int = 0) -> None:
        """Add ``amount``; ``trace_id``/``span_id`` of a sampled span make it an exemplar candidate."""
        with self._lock:
            point = self._points.get(key)
            if point is None:
                point = self._points[key] = [None, 0, 0, None]
            point[0] = amount if point[0] is None else point[0] + amount
            if (trace_id and self.exemplars != "always_off") or self.exemplars == "always_on":
                seen = point[2] = point[2] + 1
                if seen == 1 or _random() * seen < 1.0:
                    point[3] = (amount, now, trace_id, span_id)

    def collect(self, temporality: AggregationTemporality) -> Metric | None:
        """The points as an SDK ``Metric`` (None when there is none)."""
        now = time_ns()
        data_points = []
        with self._lock:
            start, self._last_collect = (
                (self._last_collect if temporality is AggregationTemporality.DELTA else self._start),
                now,
            )
            for key, point in self._points.items():
                added, total, _, sample = point
                point[0], point[2], point[3] = None, 0, None
                total = point[1] = total + (added or 0)
                if temporality is AggregationTemporality.DELTA:
                    if added is None:
                        continue
                    value = added
                else:
                    value = total
                attributes = {n: v for n, v in zip(self.attribute_names, key, strict=True) if v is not None}
                exemplars = (
                    []
                    if sample is None
                    else [_Exemplar({}, sample[0], sample[1], sample[3] or None, sample[2] or None)]
                )
                data_points.append(
                    NumberDataPoint(
                        attributes=attributes,
                        start_time_unix_nano=start,
                        time_unix_nano=now,
                        value=value,
                        exemplars=exemplars,
                    )
                )
        if not data_points:
            return None
        return Metric(
            name=self.name,
            description=self.description,
            unit=self.unit,
            data=Sum(data_points=data_points, aggregation_temporality=temporality, is_monotonic=self.monotonic),
        )


_registry: dict[str, FastHistogram | FastSum] = {}


def register(instrument: FastHistogram | FastSum) -> Any:
    """Make ``instrument`` part of every export of exporters wrapped by :func:`wrap_exporter`."""
    return _registry.setdefault(instrument.name, instrument)


def get(name: str) -> Any:
    """The registered instrument ``name`` (a :class:`FastHistogram` or :class:`FastSum`), or None.

    Only set up when otelkit built the MeterProvider.
    """
    return _registry.get(name)


FAST_HISTOGRAM = sdk_compat.register(
    "fast-histogram", probe=sdk_compat.probe_fast_histogram, fast=FastHistogram, fallback=None
)
FAST_SUM = sdk_compat.register("fast-sum", probe=sdk_compat.probe_fast_sum, fast=FastSum, fallback=None)


def cumulative_up_down(exporters: Sequence[MetricExporter]) -> bool:
    """Whether every exporter takes up-down counters cumulative (an SDK point, once made, is in every export)."""
    for exporter in exporters:
        preferences = sdk_compat.exporter_preferences(exporter)
        if preferences is None:
            return False
        wanted = preferences[0].get(_UpDownCounterInstrument, AggregationTemporality.CUMULATIVE)
        if wanted != AggregationTemporality.CUMULATIVE:
            return False
    return True


def usable(exporters: Sequence[MetricExporter]) -> bool:
    """Whether fast histograms can be merged into what ``exporters`` export (see the module docstring)."""
    return FAST_HISTOGRAM.get() is not None and all(sdk_compat.exporter_preferences(e) is not None for e in exporters)


class _MergingExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, resource: Any) -> None:
        preferences = sdk_compat.exporter_preferences(inner)
        if preferences is None:
            raise ValueError(f"the preferred temporality of {inner!r} is unknown; check usable() first")
        temporality, aggregation = preferences
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self.preferences = preferences
        self._inner = inner
        self._resource = resource
        # Exporters without a preference (the console one) have none: cumulative, the SDK default.
        self._temporality = temporality.get(_HistogramInstrument, AggregationTemporality.CUMULATIVE)
        self._temporalities = temporality

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        extra = self._collect_fast()
        if extra:
            replaced = {h.name for h in _registry.values() if getattr(h, "replaces_sdk", False)}
            metrics_data = _merge(metrics_data, extra, self._resource, replaced)
        return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def _collect_fast(self) -> list[tuple[InstrumentationScope, Metric]]:
        cumulative = AggregationTemporality.CUMULATIVE
        collected = [
            (h, h.collect(self._temporalities.get(h.instrument, cumulative))) for h in list(_registry.values())
        ]
        return [(h.scope, m) for h, m in collected if m is not None]

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _merge(
    metrics_data: MetricsData,
    extra: list[tuple[InstrumentationScope, Metric]],
    resource: Any,
    replaced: set[str] | frozenset[str] = frozenset(),
) -> MetricsData:
    by_scope: dict[str, list[Metric]] = {}
    scopes: dict[str, InstrumentationScope] = {}
    for scope, metric in extra:
        by_scope.setdefault(scope.name, []).append(metric)
        scopes[scope.name] = scope
    resource_metrics = list(metrics_data.resource_metrics)
    target = next((i for i, rm in enumerate(resource_metrics) if rm.resource == resource), None)
    if target is None and len(resource_metrics) == 1:
        # The SDK's MeterProvider exports one resource: ours, but renewed in a forked child (SDK 1.4x
        # gives each process its own service.instance.id). Points under the parent's would collide.
        target = 0
    if target is None:
        resource_metrics.append(ResourceMetrics(resource=resource, scope_metrics=[], schema_url=""))
        target = len(resource_metrics) - 1
    rm = resource_metrics[target]
    scope_metrics = list(rm.scope_metrics)
    for name, metrics in by_scope.items():
        index = next((i for i, sm in enumerate(scope_metrics) if sm.scope.name == name), None)
        if index is None:
            scope_metrics.append(ScopeMetrics(scope=scopes[name], metrics=metrics, schema_url=""))
        else:
            sm = scope_metrics[index]
            kept = [m for m in sm.metrics if m.name not in replaced]  # an anchor's points: the fast ones instead
            scope_metrics[index] = ScopeMetrics(scope=sm.scope, metrics=[*kept, *metrics], schema_url=sm.schema_url)
    resource_metrics[target] = ResourceMetrics(
        resource=rm.resource, scope_metrics=scope_metrics, schema_url=rm.schema_url
    )
    return MetricsData(resource_metrics=resource_metrics)


def wrap_exporter(exporter: MetricExporter, resource: Any) -> MetricExporter:
    """``exporter``, also exporting the registered fast histograms."""
    return _MergingExporter(exporter, resource)
