"""The Celery task histograms pre-aggregated (otelkit's MeterProvider) export what the SDK histograms export."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
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

HISTOGRAMS = (celery_hooks.DURATION_METRIC, celery_hooks.WAIT_METRIC)


class _Capture(MetricExporter):
    def __init__(self, temporality: AggregationTemporality) -> None:
        super().__init__(preferred_temporality={Histogram: temporality})
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
    """Three tasks (one with an ETA and the enqueue header, one failing, one unsampled); the exported histograms."""
    monkeypatch.setattr(celery_hooks, "time", _Clock())
    resource = Resource.create({"service.name": "svc"})
    capture = _Capture(temporality)
    reader = PeriodicExportingMetricReader(fasthist.wrap_exporter(capture, resource), export_interval_millis=math.inf)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    hooks = celery_hooks._Hooks(meter_provider)
    if fast:
        hooks.fast_duration = fasthist.get(celery_hooks.DURATION_METRIC)
        hooks.fast_wait = fasthist.get(celery_hooks.WAIT_METRIC)
        assert hooks.fast_duration is not None and hooks.fast_wait is not None
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

    spans = []
    for task_id, task, state, sampled in (
        ("t-1", Task(), "SUCCESS", True),
        ("t-2", Plain(), "FAILURE", True),
        ("t-3", Task(), "SUCCESS", False),
    ):
        span = tracer.start_span("run") if sampled else trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
        spans.append(span)
        with trace.use_span(span, end_on_exit=True):
            hooks.prerun(task_id=task_id, task=task)
        hooks.postrun(task_id=task_id, task=task, state=state)
    meter_provider.force_flush()
    meter_provider.shutdown()
    metrics = {
        (sm.scope.name, sm.scope.version, m.name): m
        for rm in capture.batches[-1].resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    ids = {s.get_span_context().span_id: i for i, s in enumerate(spans)}
    shapes = {}
    for key, metric in metrics.items():
        if key[2] not in HISTOGRAMS:
            continue
        points = sorted(
            (
                sorted(p.attributes.items()),
                p.count,
                p.sum,
                tuple(p.bucket_counts),
                tuple(p.explicit_bounds),
                p.min,
                p.max,
                # which task's span each exemplar points at (span ids differ between the runs)
                sorted(
                    (e.value, ids[e.span_id], e.trace_id == spans[ids[e.span_id]].get_span_context().trace_id)
                    for e in p.exemplars
                ),
            )
            for p in metric.data.data_points
        )
        shapes[key] = (metric.unit, metric.description, metric.data.aggregation_temporality, points)
    return shapes, sorted(k[2] for k in metrics)


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_celery_fast_histograms_export_what_the_sdk_histograms_export(
    registry: None, temporality: AggregationTemporality, monkeypatch: pytest.MonkeyPatch
) -> None:
    celery_hooks.register_fast_histograms()
    sdk, sdk_names = _run(False, temporality, monkeypatch)
    fast, fast_names = _run(True, temporality, monkeypatch)
    assert set(sdk) == {("otelkit.celery", "", name) for name in HISTOGRAMS}
    assert fast == sdk
    assert fast_names == sdk_names  # the counters are there too, once
    (duration,) = [m for k, m in fast.items() if k[2] == celery_hooks.DURATION_METRIC]
    exemplars = [e for point in duration[3] for e in point[7]]
    assert sorted(e[1] for e in exemplars) == [0, 1]  # the sampled runs; the unsampled one has none


def test_celery_hooks_record_into_the_histograms_otelkit_providers_register(registry: None) -> None:
    providers._register_fast_histograms()
    hooks = celery_hooks._Hooks()
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
