"""render_collector / render_builder through the Python API: versions, profiles, secrets, determinism."""

from __future__ import annotations

import types
from typing import Any

import pytest
import yaml

import otelkit.ops.collector as collector
from otelkit.errors import UsageError
from otelkit.ops.collector import (
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    CollectorSpec,
    graph,
    render_builder,
    render_collector,
    version_info,
)


def load(spec: CollectorSpec) -> dict[str, Any]:
    return yaml.safe_load(render_collector(spec))


def test_collector_all_matches_public_names() -> None:
    assert sorted(collector.__all__) == sorted(
        # isidentifier: pytest's assertion rewriting may leave "@py_builtins" in the namespace.
        # Submodules (model, render, …) are attributes of the package once imported, not its API.
        n
        for n in dir(collector)
        if not n.startswith("_")
        and n != "annotations"
        and n.isidentifier()
        and not isinstance(getattr(collector, n), types.ModuleType)
    )


def test_render_collector_default_fans_out_to_prometheus_loki_jaeger() -> None:
    config = load(CollectorSpec())
    assert config["receivers"]["otlp"]["protocols"] == {
        "grpc": {"endpoint": "0.0.0.0:4317"},
        "http": {"endpoint": "0.0.0.0:4318"},
    }
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]
    assert config["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert config["exporters"]["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    prom = config["exporters"]["prometheus"]
    assert prom["endpoint"] == "0.0.0.0:8889"
    assert prom["enable_open_metrics"] is True
    assert "service.name" in prom["resource_constant_labels"]["included"]
    assert "namespace" not in prom


def test_render_collector_is_deterministic() -> None:
    spec = CollectorSpec(traces=("jaeger", "otlp"), traces_endpoint=("otlp=https://x.example",), span_metrics=True)
    assert render_collector(spec) == render_collector(CollectorSpec(**vars(spec)))


@pytest.mark.parametrize(
    ("version", "grpc", "http", "prw", "spanmetrics"),
    [
        ("0.130.0", "otlp", "otlphttp", "prometheusremotewrite", "spanmetrics"),
        ("0.138.0", "otlp", "otlphttp", "prometheusremotewrite", "spanmetrics"),
        ("0.144.0", "otlp_grpc", "otlp_http", "prometheusremotewrite", "spanmetrics"),
        ("0.150.0", "otlp_grpc", "otlp_http", "prometheusremotewrite", "spanmetrics"),
        ("0.155.0", "otlp_grpc", "otlp_http", "prometheus_remote_write", "span_metrics"),
        ("0.160.0", "otlp_grpc", "otlp_http", "prometheus_remote_write", "span_metrics"),
        ("0.161.0", "otlp_grpc", "otlp_http", "prometheus_remote_write", "span_metrics"),
    ],
)
def test_render_collector_names_follow_version(version: str, grpc: str, http: str, prw: str, spanmetrics: str) -> None:
    config = load(
        CollectorSpec(collector_version=version, metrics=("prometheus", "prometheusremotewrite"), span_metrics=True)
    )
    assert f"{grpc}/jaeger" in config["exporters"]
    assert f"{http}/loki" in config["exporters"]
    assert prw in config["exporters"]
    assert spanmetrics in config["connectors"]


def test_render_collector_old_version_batches_in_processor() -> None:
    config = load(CollectorSpec(collector_version="0.130.0"))
    assert config["service"]["pipelines"]["traces"]["processors"][-1] == "batch"
    assert "batch" not in config["exporters"]["otlp/jaeger"]["sending_queue"]
    assert config["exporters"]["prometheus"]["resource_to_telemetry_conversion"] == {"enabled": True}


def test_render_collector_new_version_batches_in_exporters() -> None:
    config = load(CollectorSpec())
    assert "batch" not in config["processors"]
    assert config["exporters"]["otlp_grpc/jaeger"]["sending_queue"]["batch"] == {}


def test_render_collector_remote_write_client_moves_under_http_at_0_158() -> None:
    old = load(CollectorSpec(collector_version="0.155.0", metrics=("prometheusremotewrite",)))
    new = load(CollectorSpec(collector_version="0.160.0", metrics=("prometheusremotewrite",)))
    assert old["exporters"]["prometheus_remote_write"]["endpoint"] == "http://prometheus:9090/api/v1/write"
    assert new["exporters"]["prometheus_remote_write"]["http"]["endpoint"] == "http://prometheus:9090/api/v1/write"


def test_render_collector_filter_syntax_follows_version() -> None:
    old = load(CollectorSpec(collector_version="0.144.0", drop_route=("/health",)))
    new = load(CollectorSpec(drop_route=("/health",)))
    assert old["processors"]["filter/routes"]["traces"]["span"] == ['attributes["http.route"] == "/health"']
    assert new["processors"]["filter/routes"]["trace_conditions"] == ['span.attributes["http.route"] == "/health"']


def test_render_collector_production_profile() -> None:
    config = load(CollectorSpec(persistent_queue="/var/lib/otelcol/queue"))
    for pipeline in config["service"]["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"
    exporter = config["exporters"]["otlp_grpc/jaeger"]
    assert exporter["sending_queue"]["storage"] == "file_storage/queue"
    assert exporter["retry_on_failure"]["enabled"] is True
    assert config["extensions"]["file_storage/queue"] == {
        "directory": "/var/lib/otelcol/queue",
        "create_directory": True,
    }
    assert config["extensions"]["health_check"] == {"endpoint": "0.0.0.0:13133"}
    assert config["service"]["extensions"] == ["health_check", "file_storage/queue"]
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]
    assert reader == {"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 8888}}}}


def test_render_collector_dev_profile() -> None:
    config = load(CollectorSpec(profile="dev"))
    assert config["exporters"]["debug"] == {"verbosity": "detailed"}
    for pipeline in config["service"]["pipelines"].values():
        assert "debug" in pipeline["exporters"]
        assert "processors" not in pipeline
    assert config["service"]["extensions"] == ["zpages"]


def test_render_collector_secrets_are_env_references() -> None:
    text = render_collector(
        CollectorSpec(
            traces=("otlp",),
            traces_endpoint=("https://api.vendor.example",),
            traces_auth_env=("VENDOR_TOKEN",),
            header_env=("traces:X-Api-Key=VENDOR_KEY",),
        )
    )
    headers = yaml.safe_load(text)["exporters"]["otlp_http/traces"]["headers"]
    assert headers == {"Authorization": "${env:VENDOR_TOKEN}", "X-Api-Key": "${env:VENDOR_KEY}"}


def test_render_collector_never_reads_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENDOR_TOKEN", "Bearer s3cr3t-value")
    text = render_collector(
        CollectorSpec(traces=("otlp",), traces_endpoint=("https://x.example",), traces_auth_env=("VENDOR_TOKEN",))
    )
    assert "s3cr3t" not in text


def test_render_collector_bind_and_ports_are_configurable() -> None:
    spec = CollectorSpec(
        bind="127.0.0.1",
        otlp_grpc_port=1,
        otlp_http_port=2,
        prometheus_endpoint="127.0.0.1:3",
        telemetry_port=4,
        health_port=5,
        traces_endpoint=("127.0.0.1:6",),
        logs_endpoint=("http://127.0.0.1:7/otlp",),
    )
    text = render_collector(spec)
    assert "0.0.0.0" not in text
    config = yaml.safe_load(text)
    assert config["extensions"]["health_check"]["endpoint"] == "127.0.0.1:5"
    assert config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] == 4


def test_render_collector_ipv6_bind_is_bracketed() -> None:
    config = load(CollectorSpec(bind="::1"))
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "[::1]:4317"


def test_render_collector_https_grpc_uses_tls_files() -> None:
    config = load(CollectorSpec(traces_endpoint=("https://jaeger.example:4317",), ca_file="/ca.pem"))
    assert config["exporters"]["otlp_grpc/jaeger"]["tls"] == {"ca_file": "/ca.pem"}


def test_render_collector_span_metrics_branch_before_tail_sampling() -> None:
    # One ingress pipeline feeds span_metrics and, through the forward connector, tail sampling:
    # RED metrics count every span, and memory_limiter/redaction run once per span.
    pipelines = load(CollectorSpec(span_metrics=True, tail_sampling=10))["service"]["pipelines"]
    assert pipelines["traces"] == {
        "receivers": ["otlp"],
        "processors": ["memory_limiter", "attributes/redact"],
        "exporters": ["span_metrics", "forward/sampling"],
    }
    assert pipelines["traces/sampling"] == {
        "receivers": ["forward/sampling"],
        "processors": ["tail_sampling"],
        "exporters": ["otlp_grpc/jaeger"],
    }
    assert pipelines["metrics"]["receivers"] == ["otlp", "span_metrics"]


def test_graph_prints_each_pipeline() -> None:
    assert graph(CollectorSpec()) == (
        "traces:  otlp → memory_limiter → attributes/redact → otlp_grpc/jaeger\n"
        "metrics: otlp → memory_limiter → prometheus\n"
        "logs:    otlp → memory_limiter → attributes/redact → otlp_http/loki\n"
    )


def test_version_info_rejects_unknown_version() -> None:
    with pytest.raises(UsageError) as info:
        version_info("0.100.0")
    assert str(info.value) == (
        f"unsupported collector version '0.100.0'; expected a version from {SUPPORTED_VERSIONS[0]} to "
        f"{SUPPORTED_VERSIONS[-1]} (otelkit checks component names per version; use --collector-version "
        f"{DEFAULT_VERSION} or another version in that range)"
    )


def test_version_info_accepts_leading_v() -> None:
    assert version_info("v0.144.0").otlp_grpc_exporter == "otlp_grpc"


def test_render_builder_lists_only_used_components() -> None:
    manifest = yaml.safe_load(render_builder(CollectorSpec(profile="dev", metrics=("none",), logs=("none",))))
    assert manifest["dist"]["output_path"] == "./build"
    assert set(manifest) == {"dist", "receivers", "exporters", "extensions", "providers"}
    assert [m["gomod"].split("/")[-1] for m in manifest["exporters"]] == [
        "debugexporter v0.161.0",
        "otlpexporter v0.161.0",
    ]
    assert [m["gomod"].split("/")[-1] for m in manifest["extensions"]] == ["zpagesextension v0.161.0"]
    assert all(m["gomod"].endswith(" v1.67.0") for m in manifest["providers"])


def test_render_builder_all_is_the_project_component_set() -> None:
    manifest = yaml.safe_load(render_builder(all_components=True))
    modules = {
        m["gomod"].split("/")[-1].split()[0]
        for kind in manifest
        if kind not in ("dist", "replaces")
        for m in manifest[kind]
    }
    assert modules == {
        "otlpreceiver",
        "batchprocessor",
        "memorylimiterprocessor",
        "attributesprocessor",
        "filterprocessor",
        "transformprocessor",
        "tailsamplingprocessor",
        "k8sattributesprocessor",
        "resourcedetectionprocessor",
        "debugexporter",
        "otlpexporter",
        "otlphttpexporter",
        "loadbalancingexporter",
        "prometheusexporter",
        "prometheusremotewriteexporter",
        "zipkinexporter",
        "forwardconnector",
        "spanmetricsconnector",
        "healthcheckextension",
        "filestorage",
        "zpagesextension",
        "envprovider",
        "fileprovider",
        "httpprovider",
        "httpsprovider",
        "yamlprovider",
    }


def test_render_builder_older_version_pins_matching_providers() -> None:
    text = render_builder(CollectorSpec(collector_version="0.144.0"))
    assert "otlpreceiver v0.144.0" in text
    assert "envprovider v1.50.0" in text


def test_render_builder_all_covers_every_backend_of_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # A backend added to the table is part of the --all manifest without a second list to update.
    from otelkit.ops.collector import backends, builder

    extra = backends.Backend("newtraces", "traces", "otlp_http", "http://new:4318", "a new backend")
    monkeypatch.setitem(backends.BACKENDS, "traces", {**backends.BACKENDS["traces"], "newtraces": extra})
    seen: set[tuple[str, str]] = set()
    real = builder._modules_of

    def spy(spec: CollectorSpec) -> set[str]:
        seen.update((signal, name) for signal in ("traces", "metrics", "logs") for name in getattr(spec, signal))
        return real(spec)

    monkeypatch.setattr(builder, "_modules_of", spy)
    render_builder(all_components=True)
    expected = {(s, n) for s, table in backends.BACKENDS.items() for n, b in table.items() if b.exporter is not None}
    assert ("traces", "newtraces") in expected
    assert seen == expected


def test_render_collector_prometheus_label_block_is_shared_by_both_prometheus_exporters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otelkit.ops.collector import exporters

    monkeypatch.setattr(exporters.ExporterParts, "_resource_labels", lambda self: {"marker": {"from": "one place"}})
    config = load(CollectorSpec(metrics=("prometheus", "prometheusremotewrite")))
    prometheus = config["exporters"]["prometheus"]
    (remote_write,) = (c for name, c in config["exporters"].items() if name.startswith("prometheus_remote"))
    assert prometheus["marker"] == remote_write["marker"] == {"from": "one place"}
