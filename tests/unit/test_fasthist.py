from __future__ import annotations

import math
import random

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otelkit._runtime import fasthist as _fasthist

BOUNDS = (0.01, 0.1, 1.0)
NAMES = ("http.request.method", "http.route", "error.type")


class Capture(MetricExporter):
    def __init__(self, temporality=AggregationTemporality.CUMULATIVE):
        from opentelemetry.sdk.metrics import Histogram

        super().__init__(preferred_temporality={Histogram: temporality})
        self.batches = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis=10_000):
        return True

    def shutdown(self, timeout_millis=30_000, **kwargs):
        pass


def _metrics(batch):
    return {(sm.scope.name, m.name): m for rm in batch.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


@pytest.fixture
def hist():
    h = _fasthist.FastHistogram(
        "test.duration",
        unit="s",
        description="d",
        boundaries=BOUNDS,
        attribute_names=NAMES,
        scope=InstrumentationScope("otelkit.http", "0"),
        exemplars="trace_based",
    )
    _fasthist._registry.clear()
    _fasthist.register(h)
    yield h
    _fasthist._registry.clear()


def test_fasthist_buckets_are_upper_inclusive_like_otel(hist):
    for value in (0.005, 0.01, 0.02, 1.0, 5.0):
        hist.record(value, ("GET", "/a", None), now=1)
    (point,) = hist.collect(AggregationTemporality.CUMULATIVE).data.data_points
    assert point.bucket_counts == (2, 1, 1, 1)
    assert point.count == 5
    assert math.isclose(point.sum, 6.035)
    assert (point.min, point.max) == (0.005, 5.0)
    assert point.attributes == {"http.request.method": "GET", "http.route": "/a"}  # None = attribute absent


def test_fasthist_cumulative_keeps_and_delta_resets(hist):
    hist.record(0.5, ("GET", "/a", None), now=1)
    assert hist.collect(AggregationTemporality.CUMULATIVE).data.data_points[0].count == 1
    hist.record(0.5, ("GET", "/a", None), now=2)
    assert hist.collect(AggregationTemporality.CUMULATIVE).data.data_points[0].count == 2
    assert hist.collect(AggregationTemporality.DELTA).data.data_points[0].count == 2
    assert hist.collect(AggregationTemporality.DELTA) is None


def test_fasthist_exemplars_only_from_sampled_spans(hist):
    hist.record(0.05, ("GET", "/a", None), now=7, trace_id=0xABC, span_id=0xDEF)
    hist.record(0.5, ("GET", "/a", None), now=8)
    (point,) = hist.collect(AggregationTemporality.CUMULATIVE).data.data_points
    (exemplar,) = point.exemplars
    assert (exemplar.value, exemplar.time_unix_nano, exemplar.trace_id, exemplar.span_id) == (0.05, 7, 0xABC, 0xDEF)


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_fasthist_points_are_merged_into_sdk_exports_under_their_scope(hist, temporality):
    resource = Resource.create({"service.name": "svc"})
    capture = Capture(temporality)
    reader = PeriodicExportingMetricReader(_fasthist.wrap_exporter(capture, resource), export_interval_millis=math.inf)
    provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    counter = provider.get_meter("otelkit.http").create_counter("test.requests")
    counter.add(1)
    hist.record(0.05, ("GET", "/a", "ValueError"), now=1)
    provider.force_flush()
    metrics = _metrics(capture.batches[-1])
    assert set(metrics) == {("otelkit.http", "test.requests"), ("otelkit.http", "test.duration")}
    data = metrics[("otelkit.http", "test.duration")].data
    assert data.aggregation_temporality is temporality
    assert data.data_points[0].attributes["error.type"] == "ValueError"
    assert len(capture.batches[-1].resource_metrics) == 1
    provider.shutdown()


def test_fasthist_matches_the_sdk_histogram(hist):
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    sdk = provider.get_meter("m").create_histogram("h", explicit_bucket_boundaries_advisory=list(BOUNDS))
    values = [0.0, 0.01, 0.010001, 0.1, 0.99, 1.0, 1.5, 100.0]
    for v in values:
        sdk.record(v, {"http.route": "/a"})
        hist.record(v, (None, "/a", None), now=1)
    (sdk_point,) = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    (fast_point,) = hist.collect(AggregationTemporality.CUMULATIVE).data.data_points
    assert tuple(sdk_point.bucket_counts) == fast_point.bucket_counts
    assert (sdk_point.count, sdk_point.sum, sdk_point.min, sdk_point.max) == (
        fast_point.count,
        fast_point.sum,
        fast_point.min,
        fast_point.max,
    )
    provider.shutdown()


def test_fasthist_wraps_exporters_without_a_temporality_preference(hist):
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

    wrapped = _fasthist.wrap_exporter(ConsoleMetricExporter(), Resource.create({}))
    assert wrapped._temporality is AggregationTemporality.CUMULATIVE


def test_fasthist_points_join_the_sdk_resource_renewed_in_a_forked_child(hist):
    # SDK 1.4x gives a forked child its own service.instance.id: the provider's resource changes,
    # the exporter wrapped in the parent still holds the parent's. The points belong to the child.
    parent = Resource.create({"service.name": "svc", "service.instance.id": "parent"})
    child = Resource.create({"service.name": "svc", "service.instance.id": "child"})
    capture = Capture()
    reader = PeriodicExportingMetricReader(_fasthist.wrap_exporter(capture, parent), export_interval_millis=math.inf)
    provider = MeterProvider(resource=child, metric_readers=[reader], shutdown_on_exit=False)
    provider.get_meter("otelkit.http").create_counter("test.requests").add(1)
    hist.record(0.05, ("GET", "/a", None), now=1)
    provider.force_flush()
    (rm,) = capture.batches[-1].resource_metrics
    assert rm.resource.attributes["service.instance.id"] == "child"
    assert {m.name for sm in rm.scope_metrics for m in sm.metrics} == {"test.requests", "test.duration"}
    provider.shutdown()


def test_fasthist_cumulative_reports_each_exemplar_once_like_the_sdk(hist):
    hist.record(0.05, ("GET", "/a", None), now=1, trace_id=0xABC, span_id=0xDEF)
    (first,) = hist.collect(AggregationTemporality.CUMULATIVE).data.data_points
    (second,) = hist.collect(AggregationTemporality.CUMULATIVE).data.data_points
    assert [e.span_id for e in first.exemplars] == [0xDEF]
    assert (second.count, second.exemplars) == (1, [])  # the SDK's reservoirs are reset by each collection


def test_fastsum_keeps_each_sampled_measurement_of_a_period_with_equal_chance_like_the_sdk_reservoir():
    # The SDK's reservoir for sums keeps one of the n sampled measurements of a period, each with
    # probability 1/n; FastSum draws it with one random() instead of randrange (fasthist docstring).
    counter = _fasthist.FastSum(
        "test.count",
        unit="1",
        description="c",
        monotonic=True,
        attribute_names=("k",),
        scope=InstrumentationScope("otelkit.test", "0"),
        exemplars="trace_based",
    )
    random.seed(29)  # FastSum draws from the module-level generator, as the SDK's reservoir does
    kept = [0, 0, 0, 0]
    periods = 8000
    for _ in range(periods):
        for i in range(4):
            counter.add(1, ("a",), 1000 + i, trace_id=7, span_id=i + 1)
        metric = counter.collect(AggregationTemporality.DELTA)
        (point,) = metric.data.data_points
        (exemplar,) = point.exemplars
        kept[exemplar.span_id - 1] += 1
    assert sum(kept) == periods
    # each ~2000, with a standard deviation of ~39: ±200 is five of them
    assert all(1800 < k < 2200 for k in kept), kept
    counter.add(1, ("a",), 1, trace_id=0, span_id=0)  # not sampled: counted, never an exemplar
    (point,) = counter.collect(AggregationTemporality.DELTA).data.data_points
    assert (point.value, point.exemplars) == (1, [])
