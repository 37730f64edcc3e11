"""``otelkit render-builder``: write the ocb manifest for a rendered config, or for all of them."""

from __future__ import annotations

from typing import Annotated

import typer

from otelkit.cli._output import emit
from otelkit.cli.render_collector import (
    BatchingOpt,
    Bind,
    CaFile,
    CertFile,
    DecisionWait,
    DropRoute,
    Gateway,
    GatewayDns,
    GrpcPort,
    HeaderEnv,
    HealthPort,
    HttpPort,
    K8sAttributes,
    KeyFile,
    Logs,
    LogsAuth,
    LogsEndpoint,
    MaxAttr,
    Metrics,
    MetricsAuth,
    MetricsEndpoint,
    Output,
    PersistentQueue,
    ProfileOpt,
    PromEndpoint,
    Redact,
    ResourceDetection,
    RoleOpt,
    SlowThreshold,
    SpanMetrics,
    TailSampling,
    TelemetryPort,
    Traces,
    TracesAuth,
    TracesEndpoint,
    Version,
    ZpagesPort,
    build_spec,
)
from otelkit.ops.collector import DEFAULT_VERSION, Profile
from otelkit.ops.collector import render_builder as render_manifest

EPILOG = """\
\b
Examples:
  otelkit render-builder --all -o collector/builder-manifest.yaml
  otelkit render-builder --traces tempo --metrics otlp -o manifest.yaml
  otelkit render-builder --profile dev --collector-version 0.144.0
  builder --config manifest.yaml   # then build it with ocb (or: otelkit build-collector --manifest manifest.yaml)
"""


def render_builder(
    all_components: Annotated[
        bool,
        typer.Option(
            "--all", help="Every component any otelkit config uses (the project's collector), not just this one."
        ),
    ] = False,
    traces: Traces = None,
    metrics: Metrics = None,
    logs: Logs = None,
    profile: ProfileOpt = Profile.PRODUCTION.value,
    collector_version: Version = DEFAULT_VERSION,
    output: Output = None,
    bind: Bind = "0.0.0.0",
    otlp_grpc_port: GrpcPort = 4317,
    otlp_http_port: HttpPort = 4318,
    prometheus_endpoint: PromEndpoint = None,
    telemetry_port: TelemetryPort = 8888,
    health_port: HealthPort = 13133,
    zpages_port: ZpagesPort = 55679,
    traces_endpoint: TracesEndpoint = None,
    metrics_endpoint: MetricsEndpoint = None,
    logs_endpoint: LogsEndpoint = None,
    traces_auth_env: TracesAuth = None,
    metrics_auth_env: MetricsAuth = None,
    logs_auth_env: LogsAuth = None,
    header_env: HeaderEnv = None,
    ca_file: CaFile = None,
    cert_file: CertFile = None,
    key_file: KeyFile = None,
    persistent_queue: PersistentQueue = None,
    batching: BatchingOpt = None,
    redact: Redact = None,
    span_metrics: SpanMetrics = False,
    tail_sampling: TailSampling = None,
    drop_route: DropRoute = None,
    max_attribute_length: MaxAttr = None,
    role: RoleOpt = "standalone",
    gateway: Gateway = None,
    gateway_dns: GatewayDns = None,
    k8s_attributes: K8sAttributes = False,
    resource_detection: ResourceDetection = None,
    decision_wait: DecisionWait = None,
    slow_threshold: SlowThreshold = None,
) -> None:
    """Write an ocb (OpenTelemetry Collector Builder) manifest with exactly the components the config
    render-collector would write with the same flags uses (or, with --all, every one otelkit can use)."""
    options = dict(locals())
    all_components, output = options.pop("all_components"), options.pop("output")
    text = render_manifest(build_spec(**options), all_components=all_components)
    emit(output, text)


def register(app: typer.Typer) -> None:
    app.command("render-builder", epilog=EPILOG)(render_builder)
