"""``otelkit render-collector``: write a complete collector config for the chosen backends.

The option definitions here are shared with ``render-builder`` (same flags, same spec).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from otelkit.cli._output import emit, is_stdout
from otelkit.errors import UsageError
from otelkit.ops.collector import DEFAULT_VERSION, SUPPORTED_VERSIONS, CollectorSpec, Profile
from otelkit.ops.collector import graph as render_graph
from otelkit.ops.collector import render_collector as render_config
from otelkit.ops.collector.backends import backend_names

_B = "Backends"
_N = "Network"
_A = "Auth and TLS"
_X = "Extras"
_R = "Scale-out (agents and gateways)"


def _backends_help(signal: str, default: str) -> str:
    return (
        f"{signal.capitalize()} backend(s): {', '.join(backend_names(signal))}. "
        f"Repeat or comma-separate to fan out. [default: {default}]"
    )


Traces = Annotated[
    list[str] | None, typer.Option("--traces", metavar="B", help=_backends_help("traces", "jaeger"), rich_help_panel=_B)
]
Metrics = Annotated[
    list[str] | None,
    typer.Option("--metrics", metavar="B", help=_backends_help("metrics", "prometheus"), rich_help_panel=_B),
]
Logs = Annotated[
    list[str] | None, typer.Option("--logs", metavar="B", help=_backends_help("logs", "loki"), rich_help_panel=_B)
]
# Closed choices are plain str here and become Enums in CollectorSpec, whose error lists the
# choices and suggests the closest one.
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        metavar="P",
        help="dev | production. dev: debug exporter on every pipeline, zpages. "
        "production: memory_limiter, queues, retries, redaction, health_check.",
    ),
]
Version = Annotated[
    str,
    typer.Option(
        "--collector-version",
        metavar="V",
        help=f"Target collector version, from {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]} (names checked at "
        f"{', '.join(SUPPORTED_VERSIONS)}; others use the nearest one below).",
    ),
]
Output = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        metavar="FILE",
        help="Write here (atomically; through a symlink to its target) instead of stdout; - is stdout.",
    ),
]
Bind = Annotated[
    str,
    typer.Option(
        "--bind",
        metavar="HOST",
        help="Interface every listener binds: 0.0.0.0 inside containers (default), 127.0.0.1 for local runs.",
        rich_help_panel=_N,
    ),
]
_PORT = {"metavar": "PORT", "rich_help_panel": _N}
GrpcPort = Annotated[int, typer.Option("--otlp-grpc-port", help="OTLP/gRPC receiver port.", **_PORT)]
HttpPort = Annotated[int, typer.Option("--otlp-http-port", help="OTLP/HTTP receiver port.", **_PORT)]
PromEndpoint = Annotated[
    str | None,
    typer.Option(
        "--prometheus-endpoint",
        metavar="HOST:PORT",
        help="Where the prometheus exporter serves /metrics. [default: BIND:8889]",
        rich_help_panel=_N,
    ),
]
TelemetryPort = Annotated[int, typer.Option("--telemetry-port", help="The collector's own /metrics port.", **_PORT)]
HealthPort = Annotated[int, typer.Option("--health-port", help="health_check port (production).", **_PORT)]
ZpagesPort = Annotated[int, typer.Option("--zpages-port", help="zpages port (dev).", **_PORT)]


def _endpoint_opt(signal: str) -> Any:
    return typer.Option(
        f"--{signal}-endpoint",
        metavar="[BACKEND=]URL",
        help=f"Endpoint of the {signal} push backend; BACKEND=URL when there are several.",
        rich_help_panel=_N,
    )


def _auth_opt(signal: str) -> Any:
    return typer.Option(
        f"--{signal}-auth-env",
        metavar="[BACKEND=]VAR",
        help=f"Send 'Authorization: ${{env:VAR}}' to the {signal} backend(s); VAR holds e.g. 'Bearer …'.",
        rich_help_panel=_A,
    )


TracesEndpoint = Annotated[list[str] | None, _endpoint_opt("traces")]
MetricsEndpoint = Annotated[list[str] | None, _endpoint_opt("metrics")]
LogsEndpoint = Annotated[list[str] | None, _endpoint_opt("logs")]
TracesAuth = Annotated[list[str] | None, _auth_opt("traces")]
MetricsAuth = Annotated[list[str] | None, _auth_opt("metrics")]
LogsAuth = Annotated[list[str] | None, _auth_opt("logs")]
HeaderEnv = Annotated[
    list[str] | None,
    typer.Option(
        "--header-env",
        metavar="SIGNAL[.BACKEND]:NAME=VAR",
        help="Send header NAME: ${env:VAR}, e.g. logs:X-Scope-OrgID=LOKI_TENANT.",
        rich_help_panel=_A,
    ),
]
CaFile = Annotated[
    str | None, typer.Option("--ca-file", metavar="FILE", help="CA bundle for https:// exporters.", rich_help_panel=_A)
]
CertFile = Annotated[
    str | None,
    typer.Option("--cert-file", metavar="FILE", help="Client certificate for https:// exporters.", rich_help_panel=_A),
]
KeyFile = Annotated[
    str | None,
    typer.Option("--key-file", metavar="FILE", help="Client key for https:// exporters.", rich_help_panel=_A),
]
PersistentQueue = Annotated[
    str | None,
    typer.Option(
        "--persistent-queue",
        metavar="DIR",
        help="Keep sending queues on disk (file_storage, created if missing) so a restart loses nothing.",
        rich_help_panel=_X,
    ),
]
BatchingOpt = Annotated[
    str | None,
    typer.Option(
        "--batching",
        metavar="exporter|processor",
        help="Batch in exporters (sending_queue.batch, 0.138+) or in the batch processor. [default: exporter]",
        rich_help_panel=_X,
    ),
]
Redact = Annotated[
    bool | None,
    typer.Option(
        "--redact/--no-redact",
        help="Delete credential attributes from spans and logs. [default: on in production]",
        rich_help_panel=_X,
    ),
]
SpanMetrics = Annotated[
    bool, typer.Option("--span-metrics", help="Derive RED metrics from spans (span_metrics).", rich_help_panel=_X)
]
TailSampling = Annotated[
    float | None,
    typer.Option(
        "--tail-sampling",
        metavar="PERCENT",
        help="Keep error and slow (>1s) traces and PERCENT of the rest.",
        rich_help_panel=_X,
    ),
]
DropRoute = Annotated[
    list[str] | None,
    typer.Option("--drop-route", metavar="ROUTE", help="Drop spans of this http.route.", rich_help_panel=_X),
]
MaxAttr = Annotated[
    int | None,
    typer.Option(
        "--max-attribute-length", metavar="N", help="Truncate span/log attributes to N chars.", rich_help_panel=_X
    ),
]


RoleOpt = Annotated[
    str,
    typer.Option(
        "--role",
        metavar="R",
        help="standalone | agent | gateway. agent: next to the apps, sends everything to the gateways by trace id. "
        "gateway: behind the agents, tail-samples whole traces and exports to the backends. [default: standalone]",
        rich_help_panel=_R,
    ),
]
Gateway = Annotated[
    list[str] | None,
    typer.Option(
        "--gateway",
        metavar="HOST:PORT",
        help="A gateway's OTLP/gRPC receiver (agent; repeatable; a fixed list).",
        rich_help_panel=_R,
    ),
]
GatewayDns = Annotated[
    str | None,
    typer.Option(
        "--gateway-dns",
        metavar="NAME:PORT",
        help="A DNS name listing every gateway, re-resolved every 5s (agent; e.g. a headless Service).",
        rich_help_panel=_R,
    ),
]
K8sAttributes = Annotated[
    bool,
    typer.Option(
        "--k8s-attributes",
        help="Add the sending pod's namespace, name, deployment and node (k8s_attributes; not on gateways).",
        rich_help_panel=_R,
    ),
]
ResourceDetection = Annotated[
    list[str] | None,
    typer.Option(
        "--resource-detection",
        metavar="DETECTORS",
        help="Add host/cloud resource attributes, e.g. env,system (resource_detection; not on gateways).",
        rich_help_panel=_R,
    ),
]
DecisionWait = Annotated[
    float | None,
    typer.Option(
        "--decision-wait",
        metavar="SECONDS",
        help="Tail sampling decides this long after a trace's first span; later spans follow that decision. "
        "[default: 30]",
        rich_help_panel=_R,
    ),
]
SlowThreshold = Annotated[
    int | None,
    typer.Option(
        "--slow-threshold",
        metavar="MS",
        help="Tail sampling keeps traces with a span slower than this. [default: 1000]",
        rich_help_panel=_R,
    ),
]


def build_spec(**options: Any) -> CollectorSpec:
    """Turn parsed options into a :class:`CollectorSpec`; ``None`` means "the spec's default"."""
    return CollectorSpec(**{k: v for k, v in options.items() if v is not None and v != [] and v != ()})


EPILOG = """\
\b
Examples:
  otelkit render-collector -o collector/otelcol.yaml
  otelkit render-collector --profile dev --bind 127.0.0.1 --graph
  otelkit render-collector --traces jaeger,otlp --traces-endpoint otlp=https://api.vendor.example
  otelkit render-collector --traces tempo --logs otlp --logs-endpoint https://logs.example.com \\
      --logs-auth-env LOGS_TOKEN
  otelkit render-collector --metrics prometheusremotewrite --metrics-endpoint http://mimir:9009/api/v1/push \\
      --header-env metrics:X-Scope-OrgID=MIMIR_TENANT
  otelkit render-collector --metrics otlp --metrics-endpoint http://prometheus:9090/api/v1/otlp
  otelkit render-collector --persistent-queue /var/lib/otelcol/queue --span-metrics --tail-sampling 10
  otelkit render-collector --collector-version 0.130.0
  otelkit render-collector --role agent --gateway-dns otelkit-gateway.observability.svc:4317 --k8s-attributes
  otelkit render-collector --role gateway --span-metrics --tail-sampling 1 --decision-wait 30
"""


def render_collector(
    traces: Traces = None,
    metrics: Metrics = None,
    logs: Logs = None,
    profile: ProfileOpt = Profile.PRODUCTION.value,
    collector_version: Version = DEFAULT_VERSION,
    output: Output = None,
    graph: Annotated[
        bool, typer.Option("--graph", help="Print each pipeline as receivers → processors → exporters.")
    ] = False,
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
    """Write an OpenTelemetry Collector config: OTLP in; metrics to Prometheus, logs to Loki, traces to
    Jaeger by default; any backend swapped without touching the app. Secrets stay ${env:VAR} references."""
    options = dict(locals())
    output, graph = options.pop("output"), options.pop("graph")
    if graph and output is not None and is_stdout(output):
        raise UsageError("--graph and '-o -' both write to stdout; give -o a file or drop --graph")
    spec = build_spec(**options)
    text = render_config(spec)
    if output is not None:
        emit(output, text)
    if graph:
        sys.stdout.write(render_graph(spec))
    elif output is None:
        emit(None, text)


def register(app: typer.Typer) -> None:
    app.command("render-collector", epilog=EPILOG)(render_collector)
