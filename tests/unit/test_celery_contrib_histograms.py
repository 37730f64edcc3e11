"""contrib's per-task ``flower.task.runtime.seconds``: a no-op where otelkit's MeterProvider drops it anyway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.metrics import NoOpHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otelkit._runtime import instrument, providers
from otelkit._runtime.celery import hooks
from otelkit.settings import Settings

FLOWER = "flower.task.runtime.seconds"


@pytest.fixture
def contrib() -> Iterator[Any]:
    instrumentor = CeleryInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    yield instrumentor
    hooks.uninstall()
    instrumentor.uninstrument()


def _record_one(instrumentor: Any) -> None:
    instrumentor.task_id_to_start_time["t-1"] = 0.25
    instrumentor._record_histograms("t-1", {"task": "unit.ok", "worker": "w@host"})


def test_celery_contrib_histogram_is_a_no_op_under_otelkits_meter_provider(
    contrib: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    try:
        instrument._instrument_celery({"tracer_provider": tracer_provider, "meter_provider": meter_provider})
        assert isinstance(contrib.metrics[FLOWER], NoOpHistogram)
        _record_one(contrib)  # nothing to record, nothing raised
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
        logger_provider.shutdown()


def test_celery_contrib_histogram_still_records_into_a_provider_that_keeps_it(contrib: Any) -> None:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    instrument._instrument_celery({"tracer_provider": TracerProvider(), "meter_provider": meter_provider})
    assert not isinstance(contrib.metrics[FLOWER], NoOpHistogram)
    _record_one(contrib)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == FLOWER]
    assert [p.sum for p in metric.data.data_points] == [0.25]
    meter_provider.shutdown()
