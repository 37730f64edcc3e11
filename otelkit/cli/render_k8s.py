"""``otelkit render-k8s``: write the Kubernetes manifests of the agent/gateway layout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from otelkit.cli.render_collector import (
    CaFile,
    CertFile,
    DecisionWait,
    DropRoute,
    HeaderEnv,
    KeyFile,
    Logs,
    LogsAuth,
    LogsEndpoint,
    MaxAttr,
    Metrics,
    MetricsAuth,
    MetricsEndpoint,
    Redact,
    SlowThreshold,
    Traces,
    TracesAuth,
    TracesEndpoint,
    build_spec,
)
from otelkit.errors import UsageError
from otelkit.ops.collector.spec import Role
from otelkit.ops.files import check_target, make_directory, write_atomic
from otelkit.ops.kubernetes import K8sSpec, render_k8s
from otelkit.ops.yamltext import shell_quote

_K = "Kubernetes"
_G = "Gateways (the collector options of render-collector --role gateway)"

EPILOG = """\
\b
Examples:
  otelkit render-k8s -o deploy/kubernetes/
  otelkit render-k8s -o k8s/ --namespace observability --tail-sampling 1 --traces otlp \\
      --traces-endpoint https://otlp.vendor.example --traces-auth-env VENDOR_TOKEN
  kubectl apply -f deploy/kubernetes/
"""


def build_k8s_spec(
    *,
    namespace: str,
    cluster_domain: str,
    collector_image: str,
    app_image: str,
    gateway_replicas: int,
    gateway_max_replicas: int,
    tail_sampling: float | None,
    no_tail_sampling: bool,
    **gateway: Any,
) -> K8sSpec:
    """Turn parsed options into a :class:`K8sSpec`; the rest of the options make the gateways' collector spec."""
    if no_tail_sampling and tail_sampling is not None:
        raise UsageError("--tail-sampling and --no-tail-sampling contradict each other; give one")
    sampling = None if no_tail_sampling else (10.0 if tail_sampling is None else tail_sampling)
    return K8sSpec(
        namespace=namespace,
        cluster_domain=cluster_domain,
        collector_image=collector_image,
        app_image=app_image,
        gateway_replicas=gateway_replicas,
        gateway_max_replicas=gateway_max_replicas,
        gateway=build_spec(role=Role.GATEWAY, tail_sampling=sampling, **gateway),
    )


def render_k8s_command(
    output: Annotated[
        Path,
        typer.Option("-o", "--output", metavar="DIR", help="Directory to write the manifests to (created if missing)."),
    ],
    namespace: Annotated[
        str, typer.Option("--namespace", metavar="NS", help="Namespace of everything.", rich_help_panel=_K)
    ] = "otelkit",
    cluster_domain: Annotated[
        str,
        typer.Option("--cluster-domain", metavar="DOMAIN", help="The cluster's DNS domain.", rich_help_panel=_K),
    ] = "cluster.local",
    collector_image: Annotated[
        str,
        typer.Option(
            "--collector-image",
            metavar="IMAGE",
            help="Collector image with load_balancing, tail_sampling, k8s_attributes (contrib has them).",
            rich_help_panel=_K,
        ),
    ] = "otel/opentelemetry-collector-contrib:0.161.0",
    app_image: Annotated[
        str,
        typer.Option(
            "--app-image", metavar="IMAGE", help="The example app's image (docker build -t …).", rich_help_panel=_K
        ),
    ] = "otelkit-example:dev",
    gateway_replicas: Annotated[
        int,
        typer.Option("--gateway-replicas", metavar="N", help="Gateways at least (2 or more).", rich_help_panel=_K),
    ] = 2,
    gateway_max_replicas: Annotated[
        int,
        typer.Option("--gateway-max-replicas", metavar="N", help="Gateways at most (autoscaler).", rich_help_panel=_K),
    ] = 6,
    traces: Traces = None,
    metrics: Metrics = None,
    logs: Logs = None,
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
    tail_sampling: Annotated[
        float | None,
        typer.Option(
            "--tail-sampling",
            metavar="PERCENT",
            help="Keep error and slow traces and PERCENT of the rest. [default: 10]",
            rich_help_panel=_G,
        ),
    ] = None,
    no_tail_sampling: Annotated[
        bool, typer.Option("--no-tail-sampling", help="Keep every trace.", rich_help_panel=_G)
    ] = False,
    decision_wait: DecisionWait = None,
    slow_threshold: SlowThreshold = None,
    span_metrics: Annotated[
        bool,
        typer.Option(
            "--span-metrics/--no-span-metrics",
            help="RED metrics from every span, before sampling. [default: on]",
            rich_help_panel=_G,
        ),
    ] = True,
    drop_route: DropRoute = None,
    redact: Redact = None,
    max_attribute_length: MaxAttr = None,
) -> None:
    """Write Kubernetes manifests: an agent DaemonSet that load-balances by trace id onto a gateway
    Deployment (headless Service, autoscaler, disruption budget) that tail-samples and exports, and the
    example app and worker sending to the agent on their node."""
    options = dict(locals())
    del options["output"]
    spec = build_k8s_spec(**options)
    shown = str(output) if str(output).endswith("/") else f"{output}/"
    files = render_k8s(spec, output=shown)
    make_directory(output)
    # All of them or none: every target is checked before the first is written.
    for name in files:
        check_target(output / name)
    for name, text in files.items():
        write_atomic(output / name, text)
    print(f"wrote {len(files)} files to {shell_quote(str(output))}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("render-k8s", epilog=EPILOG)(render_k8s_command)
