from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otelkit import metrics as okm


def _metrics(reader: InMemoryMetricReader) -> dict[str, tuple]:
    data = reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found[metric.name] = (sm.scope.name, metric)
    return found


@pytest.fixture
def reader_provider():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield reader, provider
    provider.shutdown()


def test_metrics_helpers_counter_and_histogram_from_the_seeds(reader_provider):
    reader, provider = reader_provider
    models_generated = okm.counter(
        "models.generated", unit="{model}", description="3D models generated", meter_provider=provider
    )
    api_calls = okm.counter("external_api.calls", unit="{call}", meter_provider=provider)
    api_duration = okm.histogram("external_api.duration", unit="s", buckets=[0.5, 1, 5, 30], meter_provider=provider)
    models_generated.add(1, {"status": "success"})
    models_generated.add(2, {"status": "success"})
    api_calls.add(attributes={"api": "fal", "status": "ok"})
    api_duration.record(1.7, {"api": "fal", "operation": "generate"})

    found = _metrics(reader)
    scope, counter = found["models.generated"]
    assert scope == __name__
    assert counter.unit == "{model}"
    assert counter.description == "3D models generated"
    (point,) = counter.data.data_points
    assert (point.value, dict(point.attributes)) == (3, {"status": "success"})
    assert found["external_api.calls"][1].data.data_points[0].value == 1
    (hist,) = found["external_api.duration"][1].data.data_points
    assert list(hist.explicit_bounds) == [0.5, 1, 5, 30]
    assert hist.bucket_counts[2] == 1
    assert found["external_api.duration"][1].unit == "s"


def test_metrics_helpers_up_down_counter_and_gauge(reader_provider):
    reader, provider = reader_provider
    active_jobs = okm.up_down_counter("jobs.active", unit="{job}", meter_provider=provider)
    queue_limit = okm.gauge("queue.limit", meter_provider=provider)
    active_jobs.add(3)
    active_jobs.add(-1)
    queue_limit.set(50, {"queue": "default"})
    found = _metrics(reader)
    assert found["jobs.active"][1].data.data_points[0].value == 2
    assert found["queue.limit"][1].data.data_points[0].value == 50


def test_metrics_helpers_bind_on_first_use_to_the_global_provider(reader_provider, monkeypatch):
    reader, provider = reader_provider
    declared = okm.counter("orders.placed")  # as at import time, before any provider exists
    assert _metrics(reader) == {}
    monkeypatch.setattr(metrics_internal, "get_meter_provider", lambda: provider)
    declared.add(1)
    assert _metrics(reader)["orders.placed"][1].data.data_points[0].value == 1
    assert repr(declared) == "Counter('orders.placed', unit='')"


def test_metrics_helpers_reject_bad_declarations():
    with pytest.raises(ValueError) as exc:
        okm.counter("1models")
    assert str(exc.value) == (
        "invalid metric name '1models': expected a letter followed by at most 254 letters, digits, '_', '.',"
        " '-' or '/', such as 'models.generated'"
    )
    with pytest.raises(ValueError) as exc:
        okm.histogram("x.duration", unit="µs")
    assert str(exc.value) == (
        "invalid unit 'µs' for metric 'x.duration': expected at most 63 ASCII characters, a UCUM unit such as"
        " 's', 'By' or '{model}'"
    )
    with pytest.raises(ValueError) as exc:
        okm.histogram("x.duration", unit="s", buckets=[1, 1, 2])
    assert str(exc.value) == (
        "invalid buckets [1, 1, 2] for histogram 'x.duration': expected strictly increasing numbers,"
        " such as [0.1, 0.5, 1, 5, 10]"
    )
    for bad in ([], ["a"], [1, float("inf")]):
        with pytest.raises(ValueError):
            okm.histogram("x.duration", buckets=bad)


# --- system metrics --------------------------------------------------------------------------


def _uninstrument_system_metrics() -> None:
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    instance = getattr(SystemMetricsInstrumentor, "_instance", None)
    if instance is not None and instance.is_instrumented_by_opentelemetry:
        instance.uninstrument()


def test_system_metrics_in_memory_reader_shows_process_metrics(reader_provider, monkeypatch):
    monkeypatch.delenv("OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS", raising=False)
    reader, provider = reader_provider
    try:
        assert okm.instrument_system_metrics(meter_provider=provider)
        assert okm.instrument_system_metrics(meter_provider=provider)  # idempotent
        names = set(_metrics(reader))
    finally:
        _uninstrument_system_metrics()
    expected = {
        "process.cpu.time",
        "process.cpu.utilization",
        "process.memory.usage",
        "process.thread.count",
        "cpython.gc.collections",
        "system.cpu.utilization",
        "system.memory.usage",
    }
    assert expected <= names
    assert not any(n.startswith(("process.runtime.", "system.network.")) for n in names)


def test_system_metrics_excluded_metrics_variable_is_honoured(reader_provider, monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS", "system.*,cpython.*")
    reader, provider = reader_provider
    try:
        okm.instrument_system_metrics(meter_provider=provider)
        names = set(_metrics(reader))
    finally:
        _uninstrument_system_metrics()
    assert "process.memory.usage" in names
    assert not any(n.startswith(("system.", "cpython.")) for n in names)


def _metric_names_printed(code: list[str], env_extra: dict[str, str], tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        {
            "OTEL_METRICS_EXPORTER": "console",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTELKIT_LOG_CONSOLE": "off",
            **env_extra,
        }
    )
    result = subprocess.run(code, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("switch", ["true", "false"])
def test_system_metrics_switch_under_the_launcher(switch, tmp_path):
    launcher = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    out = _metric_names_printed(
        [launcher, sys.executable, "-c", "print('app ran')"],
        {"OTEL_PYTHON_DISTRO": "otelkit", "OTELKIT_SYSTEM_METRICS": switch},
        tmp_path,
    )
    assert "app ran" in out
    assert ('"name": "process.cpu.time"' in out) is (switch == "true")
    assert '"name": "process.runtime.cpython.memory"' not in out


def test_system_metrics_with_configure(tmp_path):
    code = "import otelkit; otelkit.configure(system_metrics=True, instrument=True); print('app ran')"
    out = _metric_names_printed([sys.executable, "-c", code], {}, tmp_path)
    assert '"name": "process.memory.usage"' in out
    assert '"name": "cpython.gc.collections"' in out


def test_system_metrics_follow_the_process_after_fork(reader_provider):
    _, provider = reader_provider
    try:
        okm.instrument_system_metrics(meter_provider=provider)
        (instrumentor,) = okm._forked
        instrumentor._proc = None  # as if it still pointed at the parent
        okm._follow_fork()  # what os.register_at_fork runs in the child
        assert instrumentor._proc.pid == os.getpid()
    finally:
        _uninstrument_system_metrics()
