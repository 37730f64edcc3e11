from __future__ import annotations

import logging

import pytest

from otelkit._runtime import exporters, providers


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for var in list(os.environ):
        if var.startswith("OTEL_"):
            monkeypatch.delenv(var)


def test_configurator_prometheus_metrics_exporter_refused_for_otlp(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    with caplog.at_level(logging.WARNING, logger="otelkit"):
        assert exporters.exporter_names("metrics") == ["otlp"]
    (record,) = caplog.records
    assert record.getMessage() == (
        "otelkit: OTEL_METRICS_EXPORTER=prometheus refused: the app does not serve /metrics; it exports OTLP and"
        " the collector's prometheus exporter serves Prometheus (see `otelkit render-collector`); exporting OTLP"
        " instead — set OTEL_METRICS_EXPORTER=otlp to silence this"
    )
    (exporter,) = exporters.exporters_for("metrics")
    assert type(exporter.resolve()).__module__.startswith("opentelemetry.exporter.otlp.proto.http")


def test_configurator_none_disables_a_signal(monkeypatch):
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    assert exporters.exporters_for("logs") == []


def test_configurator_default_is_otlp_over_http(monkeypatch):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    (exporter,) = exporters.exporters_for("traces")
    real = exporter.resolve()
    assert isinstance(getattr(real, "inner", real), OTLPSpanExporter)  # SDK < 1.43: behind the redacting wrapper


def test_configurator_grpc_protocol_per_signal(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    (exporter,) = exporters.exporters_for("traces")
    assert type(exporter.resolve().inner).__module__ == "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def test_configurator_malformed_endpoint_is_one_error_line_and_the_default(monkeypatch, caplog):
    import os

    from otelkit._runtime import envcheck as _envcheck

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    monkeypatch.setattr(_envcheck, "_reported", set())
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        (exporter,) = exporters.exporters_for("traces")
        _envcheck.check()
    (record,) = caplog.records
    assert record.getMessage() == (
        "otelkit: invalid OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318'; expected a URL such as"
        " http://127.0.0.1:4318 (scheme http or https and a host); using the default — fix or unset"
        " OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in os.environ
    real = exporter.resolve()
    assert getattr(real, "inner", real)._endpoint == "http://localhost:4318/v1/traces"  # SDK < 1.43: wrapped


def test_configurator_unknown_exporter_alone_falls_back_to_otlp(monkeypatch, caplog):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaegr")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        (exporter,) = exporters.exporters_for("traces")
    real = exporter.resolve()
    assert isinstance(getattr(real, "inner", real), OTLPSpanExporter)  # SDK < 1.43: behind the redacting wrapper
    assert caplog.messages == [
        "otelkit: unknown OTEL_TRACES_EXPORTER value 'jaegr'; expected otlp, console, none or an installed"
        " exporter; exporting traces with otlp instead — fix OTEL_TRACES_EXPORTER"
    ]


def test_configurator_bad_protocol_falls_back_to_http(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        (exporter,) = exporters.exporters_for("logs")
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    assert "invalid OTEL_EXPORTER_OTLP_PROTOCOL='http/json'; expected one of: http/protobuf, grpc" in caplog.text
    real = exporter.resolve()
    assert isinstance(getattr(real, "inner", real), OTLPLogExporter)


def test_configurator_unknown_exporter_is_reported(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,jaegr")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        created = exporters.exporters_for("traces")
    assert len(created) == 1
    assert "unknown OTEL_TRACES_EXPORTER value 'jaegr'" in caplog.text


def test_configurator_providers_carry_distro_resource(monkeypatch):
    from otelkit.settings import Settings

    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-a")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings(environment="development"))
    attrs = tracer_provider.resource.attributes
    assert attrs["service.name"] == "svc-a"
    assert attrs["telemetry.distro.name"] == "otelkit"
    assert attrs["deployment.environment.name"] == "development"
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()


def test_configurator_meter_provider_drops_flowers_duplicate_of_the_task_duration(monkeypatch):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otelkit._runtime import providers as configurator

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=configurator.default_views())
    meter = provider.get_meter("opentelemetry.instrumentation.celery")
    meter.create_histogram("flower.task.runtime.seconds").record(0.2)
    provider.get_meter("otelkit.celery").create_histogram("celery.task.duration").record(0.2)
    names = [m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["celery.task.duration"]


def test_configurator_build_providers_uses_the_default_views(monkeypatch):
    from otelkit._runtime import providers as configurator
    from otelkit.settings import Settings

    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    _, meter_provider, _ = configurator.build_providers(Settings())
    views = meter_provider._sdk_config.views
    assert [v._instrument_name for v in views] == ["flower.task.runtime.seconds"]
