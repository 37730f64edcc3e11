"""The Celery task metrics pre-aggregated (otelkit's MeterProvider) export what the SDK instruments export."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otelkit._runtime import fasthist, providers
from otelkit._runtime.celery import hooks as celery_hooks
from otelkit._runtime.celery import instruments

COMMON_OK = {"celery.task.name": "unit.ok", "messaging.system": "celery", "messaging.destination.name": "default"}
HISTOGRAMS = (celery_hooks.DURATION_METRIC, celery_hooks.WAIT_METRIC)
SUMS = (celery_hooks.STARTED_METRIC, celery_hooks.COMPLETED_METRIC, celery_hooks.ACTIVE_METRIC)


class _Capture(MetricExporter):
    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={Histogram: temporality, Counter: temporality})
        self.batches: list[Any] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class _Clock:
    """Stands in for the ``time`` module in the hooks: both runs see the same durations."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        self.now += 0.3
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0

    def time_ns(self) -> int:
        return time.time_ns()


@pytest.fixture
def registry() -> Iterator[None]:
    saved = dict(fasthist._registry)
    fasthist._registry.clear()
    yield
    fasthist._registry.clear()
    fasthist._registry.update(saved)


def _run(fast: bool, temporality: AggregationTemporality, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """Tasks (with an ETA and the enqueue header, failing, unsampled, revoked); what two exports carry."""
    monkeypatch.setattr(celery_hooks, "time", _Clock())
    random.seed(20)  # the span ids and the counters' exemplar reservoirs draw the same numbers in both runs
    resource = Resource.create({"service.name": "svc"})
    capture = _Capture(temporality)
    reader = PeriodicExportingMetricReader(fasthist.wrap_exporter(capture, resource), export_interval_millis=math.inf)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    hooks = celery_hooks._Hooks(meter_provider)
    if fast:
        hooks.fast_duration = fasthist.get(celery_hooks.DURATION_METRIC)
        hooks.fast_wait = fasthist.get(celery_hooks.WAIT_METRIC)
        hooks.fast_started = fasthist.get(celery_hooks.STARTED_METRIC)
        hooks.fast_completed = fasthist.get(celery_hooks.COMPLETED_METRIC)
        hooks.fast_active = fasthist.get(celery_hooks.ACTIVE_METRIC)
        fast_ones = (hooks.fast_duration, hooks.fast_wait, hooks.fast_started, hooks.fast_completed, hooks.fast_active)
        assert None not in fast_ones
    tracer = TracerProvider().get_tracer("unit")

    class Request:
        delivery_info: ClassVar[dict[str, str]] = {"routing_key": "default"}
        eta = "2023-11-14T22:13:18+00:00"
        otelkit_enqueued_at = 1_699_999_000.0

    class Task:
        name = "unit.ok"
        request = Request()

    class Plain:
        name = "unit.plain"
        request = type("Request", (), {"delivery_info": None, "otelkit_enqueued_at": 1_699_999_999.5})()

    spans: list[Any] = []
    shapes: list[dict[tuple[Any, ...], Any]] = []
    names: list[list[str]] = []
    runs = (
        (("t-1", Task(), "SUCCESS", True), ("t-2", Plain(), "FAILURE", True), ("t-3", Task(), "SUCCESS", False)),
        (("t-4", Task(), "SUCCESS", True), ("t-5", Task(), "RETRY", True), ("t-6", Task(), "SUCCESS", True)),
    )
    for export, run in enumerate(runs):
        for task_id, task, state, sampled in run:
            span = tracer.start_span("run") if sampled else trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
            spans.append(span)
            with trace.use_span(span, end_on_exit=True):
                hooks.prerun(task_id=task_id, task=task)
            hooks.postrun(task_id=task_id, task=task, state=state)
        if export == 1:
            with trace.use_span(spans[0]):
                hooks.revoked(sender=Task(), request=Task.request)
        meter_provider.force_flush()
        shape, exported = _shapes(capture.batches[-1], spans)
        shapes.append(shape)
        names.append(exported)
    meter_provider.shutdown()
    return shapes, names


def _shapes(batch: Any, spans: list[Any]) -> tuple[dict[tuple[Any, ...], Any], list[str]]:
    """Each metric of ``batch`` without timestamps; exemplars as (value, which span, same trace id)."""
    metrics = {
        (sm.scope.name, sm.scope.version, m.name): m
        for rm in batch.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    ids = {s.get_span_context().span_id: i for i, s in enumerate(spans)}

    def exemplars(point: Any, which: bool = True) -> list[Any]:
        return sorted(
            (
                e.filtered_attributes,
                e.value,
                ids[e.span_id] if which else "a sampled run",
                e.trace_id == spans[ids[e.span_id]].get_span_context().trace_id,
            )
            for e in point.exemplars
        )

    shapes: dict[tuple[Any, ...], Any] = {}
    for key, metric in metrics.items():
        data = metric.data
        if key[2] in HISTOGRAMS:
            points = sorted(
                (
                    sorted(p.attributes.items()),
                    p.count,
                    p.sum,
                    tuple(p.bucket_counts),
                    tuple(p.explicit_bounds),
                    p.min,
                    p.max,
                    exemplars(p),
                )
                for p in data.data_points
            )
        elif key[2] in SUMS:
            # Which run a counter's exemplar is drawn from is random (the SDK's reservoir, on the same
            # random.randrange; SDK 1.40 draws once more per period, so the seed cannot pin it there).
            points = sorted((sorted(p.attributes.items()), p.value, exemplars(p, False)) for p in data.data_points)
            points.append(data.is_monotonic)
        else:
            continue
        shapes[key] = (metric.unit, metric.description, data.aggregation_temporality, points)
    exported = [m.name for rm in batch.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    return shapes, sorted(exported)  # a metric twice (the SDK's and the fast one) shows here


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_celery_fast_instruments_export_what_the_sdk_instruments_export(
    registry: None, temporality: AggregationTemporality, monkeypatch: pytest.MonkeyPatch
) -> None:
    instruments.register_fast_instruments(anchored=True)
    sdk, sdk_names = _run(False, temporality, monkeypatch)
    fast, fast_names = _run(True, temporality, monkeypatch)
    # celery.task.active: the SDK instrument got one add(0) per attribute set; the points are the fast one's
    assert len(fasthist.get(celery_hooks.ACTIVE_METRIC)._points) == 2
    assert set(sdk[0]) == {("otelkit.celery", "", name) for name in (*HISTOGRAMS, *SUMS)}
    assert fast == sdk
    assert fast_names == sdk_names  # each metric once: nothing recorded into the SDK instruments too
    duration = fast[0][("otelkit.celery", "", celery_hooks.DURATION_METRIC)]
    assert sorted(e[2] for point in duration[3] for e in point[7]) == [0, 1]  # sampled runs only
    completed = fast[1][("otelkit.celery", "", celery_hooks.COMPLETED_METRIC)]
    assert [p[:2] for p in completed[3][:-1] if ("celery.task.state", "revoked") in p[0]] == [
        ([*sorted({**COMMON_OK, "celery.task.state": "revoked"}.items())], 1)
    ]


def test_celery_hooks_record_into_the_instruments_otelkit_providers_register(registry: None) -> None:
    providers._register_fast_histograms()
    hooks = celery_hooks._Hooks()
    assert hooks.fast_started is fasthist.get(celery_hooks.STARTED_METRIC) is not None
    assert hooks.fast_completed is fasthist.get(celery_hooks.COMPLETED_METRIC) is not None
    assert fasthist.get(celery_hooks.ACTIVE_METRIC) is None  # not anchored: an SDK instrument
    assert hooks.fast_started.monotonic and hooks.fast_completed.monotonic
    assert hooks.fast_duration is fasthist.get(celery_hooks.DURATION_METRIC) is not None
    assert hooks.fast_wait is fasthist.get(celery_hooks.WAIT_METRIC) is not None
    assert hooks.fast_duration.attribute_names == (
        "celery.task.name",
        "messaging.system",
        "messaging.destination.name",
        "celery.task.state",
    )
    assert hooks.fast_duration.scope.name == "otelkit.celery"
    assert hooks.fast_duration.bounds == celery_hooks.DURATION_BUCKETS
    # A provider passed in explicitly records into the SDK histograms, as before.
    assert celery_hooks._Hooks(MeterProvider(shutdown_on_exit=False)).fast_duration is None


def test_celery_active_is_pre_aggregated_only_where_every_exporter_takes_up_down_counters_cumulative(
    registry: None,
) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import UpDownCounter

    delta = OTLPMetricExporter(
        endpoint="http://127.0.0.1:9/v1/metrics",
        preferred_temporality={UpDownCounter: AggregationTemporality.DELTA},
    )
    default = OTLPMetricExporter(endpoint="http://127.0.0.1:9/v1/metrics")
    assert fasthist.cumulative_up_down([default])
    assert not fasthist.cumulative_up_down([default, delta])
    providers._register_fast_histograms(anchored=True)
    active = celery_hooks._Hooks().fast_active
    assert active is fasthist.get(celery_hooks.ACTIVE_METRIC) is not None
    assert not active.monotonic and active.replaces_sdk
    assert active.attribute_names == ("celery.task.name", "messaging.system", "messaging.destination.name")
