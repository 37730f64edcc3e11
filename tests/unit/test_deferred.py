"""otelkit._runtime.deferred: OTLP exporters built on their first export, with the SDK's metric preferences."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from otelkit._runtime import deferred as _deferred
from otelkit._runtime import providers
from otelkit.settings import Settings
from otelkit.testing import OTLPReceiver


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):

    for var in list(os.environ):
        if var.startswith(("OTEL_", "OTELKIT_")):
            monkeypatch.delenv(var)


@pytest.mark.parametrize("temporality", [None, "CUMULATIVE", "delta", " LOWMEMORY "])
@pytest.mark.parametrize("aggregation", [None, "explicit_bucket_histogram", "base2_exponential_bucket_histogram"])
def test_deferred_metric_preferences_equal_the_sdk_exporters(monkeypatch, temporality, aggregation):
    if temporality is not None:
        monkeypatch.setenv(_deferred.TEMPORALITY_VARIABLE, temporality)
    if aggregation is not None:
        monkeypatch.setenv(_deferred.AGGREGATION_VARIABLE, aggregation)
    sdk = OTLPMetricExporter()
    ours = _deferred.DeferredMetricExporter(lambda: None)
    assert ours._preferred_temporality == sdk._preferred_temporality
    assert {k: type(v) for k, v in ours._preferred_aggregation.items()} == {
        k: type(v) for k, v in sdk._preferred_aggregation.items()
    }


def test_deferred_metric_preferences_bad_value_is_one_line(monkeypatch, caplog):
    monkeypatch.setenv(_deferred.TEMPORALITY_VARIABLE, "sometimes")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        temporality, _ = _deferred.metric_preferences()
    (record,) = caplog.records
    assert record.getMessage() == (
        "otelkit: invalid OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE='SOMETIMES'; expected one of:"
        " CUMULATIVE, DELTA, LOWMEMORY; using CUMULATIVE — fix or unset"
        " OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
    )
    assert {t.name for t in temporality.values()} == {"CUMULATIVE"}


def test_deferred_exporter_builds_once_on_first_export():
    built: list[object] = []

    class Inner:
        def export(self, batch):
            return ("exported", tuple(batch))

        def shutdown(self):
            built.append("shutdown")

    def factory():
        built.append("built")
        return Inner()

    exporter = _deferred.DeferredExporter("traces", factory, SpanExportResult.FAILURE)
    assert exporter.force_flush(100) is True
    assert built == []
    assert exporter.export([1, 2]) == ("exported", (1, 2))
    assert exporter.export([3]) == ("exported", (3,))
    exporter.shutdown()
    assert built == ["built", "shutdown"]


def test_deferred_exporter_failure_is_logged_once_and_exports_fail(caplog):
    calls = []

    def factory():
        calls.append(1)
        raise ValueError("no such certificate file 'ca.pem'")

    exporter = _deferred.DeferredExporter("logs", factory, SpanExportResult.FAILURE)
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        assert exporter.export([1]) is SpanExportResult.FAILURE
        assert exporter.export([2]) is SpanExportResult.FAILURE
    assert calls == [1]
    (record,) = caplog.records
    assert record.getMessage() == (
        "otelkit: creating the OTLP exporter for logs failed; logs are not exported: no such certificate file 'ca.pem'"
    )
    exporter.shutdown()  # nothing built: nothing to shut down, no error


def test_deferred_providers_export_to_a_real_receiver(monkeypatch):
    with OTLPReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
        try:
            (processor,) = tracer_provider._active_span_processor._span_processors
            assert processor.span_exporter._lazy.built() is None  # nothing exported yet
            with tracer_provider.get_tracer("t").start_as_current_span("deferred-span"):
                pass
            meter_provider.get_meter("m").create_counter("deferred.count").add(3)
            assert tracer_provider.force_flush(10_000)
            assert meter_provider.force_flush(10_000)
            receiver.wait_for(lambda r: r.spans_named("deferred-span") and r.metric_points("deferred.count"))
        finally:
            tracer_provider.shutdown()
            meter_provider.shutdown()
            logger_provider.shutdown()
    # Cumulative: the flush and the shutdown each export the total.
    assert [p.value for p in receiver.metric_points("deferred.count")] == [3, 3]


def test_deferred_start_up_imports_no_exporter_module():
    code = textwrap.dedent(
        """
        import json, sys
        from otelkit._runtime import providers
        from otelkit.settings import Settings
        providers.build_providers(Settings())
        heavy = ("google.protobuf", "urllib3", "requests", "grpc", "opentelemetry.exporter.otlp.proto.http")
        print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []


def test_deferred_warm_later_builds_the_exporters_on_a_background_thread():
    built: list[str] = []

    def factory():
        import threading

        built.append(threading.current_thread().name)
        return object()

    exporters = [_deferred.DeferredExporter("traces", factory, SpanExportResult.FAILURE), object()]
    timer = _deferred.warm_later(exporters, delay=0.01)
    assert timer is not None
    timer.join(10)
    assert built == ["otelkit-exporters"]
    assert exporters[0]._lazy.built() is not None
    assert _deferred.warm_later([object()]) is None  # nothing deferred: no thread


def test_deferred_fork_waits_for_a_build_in_progress():
    """A child forked while the exporter is being built gets the built one, never a half-done build."""
    import threading

    release = threading.Event()
    building = threading.Event()

    def factory():
        building.set()
        release.wait(10)  # the build is "importing modules" until released
        return "real"

    exporter = _deferred.DeferredExporter("traces", factory, SpanExportResult.FAILURE)
    builder = threading.Thread(target=exporter.resolve)
    builder.start()
    assert building.wait(10)
    threading.Timer(0.2, release.set).start()  # without the fork hook, fork() would not wait for this
    with warnings.catch_warnings():  # 3.12+: fork() in a process with threads (the point of the test)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os._exit(0 if exporter._lazy.built() == "real" and exporter.resolve() == "real" else 1)
    builder.join(10)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child blocked on the exporter's lock")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0


def test_deferred_export_during_a_build_waits_for_it():
    """The warm-up thread building the exporter while a batch is exported: the batch is not dropped."""
    import threading

    release = threading.Event()
    building = threading.Event()

    class Inner:
        def export(self, batch):
            return ("exported", tuple(batch))

    def factory():
        building.set()
        release.wait(10)
        return Inner()

    exporter = _deferred.DeferredExporter("traces", factory, SpanExportResult.FAILURE)
    builder = threading.Thread(target=exporter.resolve)
    builder.start()
    assert building.wait(10)
    results = []
    exporting = threading.Thread(target=lambda: results.append(exporter.export([1])))
    exporting.start()
    time.sleep(0.05)  # let the export reach the exporter while it is still being built
    release.set()
    exporting.join(10)
    builder.join(10)
    assert results == [("exported", (1,))]
