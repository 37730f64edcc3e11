"""Collector roles for scale-out: agents next to the apps, gateways behind them.

An **agent** receives OTLP from the apps on its node and sends everything on to the gateways with
the ``load_balancing`` exporter: spans and log records by trace id, so every span of a trace (and
its log records) reaches the same gateway, metric streams by stream id. A **gateway** is a
standalone collector that receives from agents: span metrics are computed there before tail
sampling, on whole traces.

Failover is the load balancer's job, not the sub-exporters': the per-gateway OTLP exporters have no
queue and no retry, so a failed export comes back to the ``load_balancing`` exporter's own queue,
whose retries go through the current ring — after the resolver dropped a dead gateway they land on
a live one. (With the sub-exporters' default in-memory queues a batch is "delivered" the moment the
dead gateway's queue takes it, and is lost when that exporter is shut down.) The top-level queue is
the one that can be persistent (``--persistent-queue``).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from otelkit.errors import UsageError
from otelkit.ops.collector.backends import valid_host
from otelkit.ops.collector.exporters import hostport
from otelkit.ops.collector.model import Component, Kind
from otelkit.ops.collector.spec import CollectorSpec, Role
from otelkit.ops.collector.versions import DEFAULT_VERSION, VersionInfo

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DETECTORS",
    "FORWARD_ID",
    "agent_exporters",
    "check_role",
    "k8s_attributes",
    "parse_hostport",
    "resource_detection",
    "sampling_forward",
]

#: The connector that hands every span from the ingress traces pipeline to the sampling one.
FORWARD_ID = "forward/sampling"

#: resource_detection detector names at 0.161.0 (contrib ``internal/*/…TypeStr``).
DETECTORS: tuple[str, ...] = (
    "env",
    "system",
    "docker",
    "k8s_api",
    "kubeadm",
    "openshift",
    "ec2",
    "ecs",
    "eks",
    "lambda",
    "elastic_beanstalk",
    "gcp",
    "azure",
    "aks",
    "azureappservice",
    "azurecontainerapps",
    "heroku",
    "consul",
    "alibaba_ecs",
    "digitalocean",
    "hetzner",
    "scaleway",
    "upcloud",
    "vultr",
)

_MAX_SLOW_MS = 86_400_000

_AGENT_BACKEND_OPTIONS = (
    ("traces_endpoint", "--traces-endpoint"),
    ("metrics_endpoint", "--metrics-endpoint"),
    ("logs_endpoint", "--logs-endpoint"),
    ("traces_auth_env", "--traces-auth-env"),
    ("metrics_auth_env", "--metrics-auth-env"),
    ("logs_auth_env", "--logs-auth-env"),
    ("header_env", "--header-env"),
    ("ca_file", "--ca-file"),
    ("cert_file", "--cert-file"),
    ("key_file", "--key-file"),
    ("prometheus_endpoint", "--prometheus-endpoint"),
)


def parse_hostport(value: str, flag: str, example: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6) for ``flag``.

    Raises:
        UsageError: not HOST:PORT with a valid host and a port in 1-65535.
    """
    host, sep, port = value.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    # ASCII digits, at most 5: int() also reads other scripts' digits, and refuses 4300+ digits with a ValueError.
    digits = port.isascii() and port.isdigit() and len(port) <= 5
    if not sep or not bare or not valid_host(bare) or not digits or not 0 < int(port) < 65536:
        raise UsageError(
            f"invalid {flag} {value!r}; expected HOST:PORT of a gateway's OTLP/gRPC receiver (e.g. {example})"
        )
    return bare, int(port)


def check_role(spec: CollectorSpec, v: VersionInfo) -> None:
    """Refuse option combinations that make no sense for ``spec.role``.

    Raises:
        UsageError: naming the option, the role, and what to do instead.
    """
    role = spec.role
    if (role is Role.AGENT or spec.k8s_attributes or spec.resource_detection) and not v.agent_components:
        what = "--role agent" if role is Role.AGENT else "--k8s-attributes/--resource-detection"
        raise UsageError(
            f"{what} needs collector {DEFAULT_VERSION} (load_balancing, k8s_attributes and resource_detection are "
            f"checked at that version only), got --collector-version {v.version}; use --collector-version "
            f"{DEFAULT_VERSION}"
        )
    for name in spec.resource_detection:
        if name not in DETECTORS:
            hint = difflib.get_close_matches(name, DETECTORS, n=1)
            tail = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise UsageError(
                f"unknown --resource-detection detector {name!r}; expected any of: {', '.join(DETECTORS)}{tail}"
            )
    if spec.decision_wait is not None and spec.tail_sampling is None:
        raise UsageError("--decision-wait needs --tail-sampling PERCENT; add it or drop --decision-wait")
    if spec.slow_threshold is not None and spec.tail_sampling is None:
        raise UsageError("--slow-threshold needs --tail-sampling PERCENT; add it or drop --slow-threshold")
    # decision_wait is rendered in whole milliseconds (0.1 ms would be "0ms"), the slow threshold in
    # nanoseconds in an OTTL condition: past int64, validate passes and the collector fails at start.
    if spec.decision_wait is not None and not 0.001 <= spec.decision_wait <= 3600:
        raise UsageError(
            f"invalid --decision-wait {spec.decision_wait:g}; expected seconds from 0.001 to 3600 to wait for a "
            "trace's late spans before deciding (e.g. 30)"
        )
    if spec.slow_threshold is not None and not 1 <= spec.slow_threshold <= _MAX_SLOW_MS:
        raise UsageError(
            f"invalid --slow-threshold {spec.slow_threshold}; expected milliseconds from 1 to {_MAX_SLOW_MS} (a day) "
            "(e.g. 1000)"
        )
    if role is not Role.AGENT:
        if spec.gateway or spec.gateway_dns is not None:
            flag = "--gateway" if spec.gateway else "--gateway-dns"
            raise UsageError(
                f"{flag} is for --role agent (the gateways an agent sends to); a {role.value} sends to backends"
            )
        if role is Role.GATEWAY and spec.k8s_attributes:
            raise UsageError(
                "--k8s-attributes on a gateway would see the agents' addresses, not the apps' pods; "
                "ask for it on the agents (--role agent --k8s-attributes)"
            )
        if role is Role.GATEWAY and spec.resource_detection:
            raise UsageError(
                "--resource-detection on a gateway would stamp the gateway's host on every app's telemetry; "
                "ask for it on the agents (--role agent --resource-detection env,system)"
            )
        return
    if spec.tail_sampling is not None:
        raise UsageError(
            "--tail-sampling on an agent: an agent sees only its own node's spans, not whole traces; "
            "sample on the gateways (--role gateway --tail-sampling PERCENT)"
        )
    if spec.span_metrics:
        raise UsageError(
            "--span-metrics on an agent would count spans twice once the gateways count them; "
            "derive span metrics on the gateways (--role gateway --span-metrics)"
        )
    if not spec.gateway and spec.gateway_dns is None:
        raise UsageError(
            "--role agent needs the gateways to send to: --gateway HOST:PORT (repeatable) or "
            "--gateway-dns NAME:PORT (a headless Service, e.g. otelkit-gateway.observability.svc:4317)"
        )
    if spec.gateway and spec.gateway_dns is not None:
        raise UsageError("--gateway and --gateway-dns are two resolvers; give one of them")
    default = CollectorSpec()
    for signal in ("traces", "metrics", "logs"):
        chosen = getattr(spec, signal)
        if chosen not in (getattr(default, signal), ("none",)):
            raise UsageError(
                f"--{signal} {','.join(chosen)!r} on an agent: agents send every signal to the gateways; choose "
                f"backends on the gateways (--role gateway --{signal} {','.join(chosen)}), or --{signal} none here"
            )
    for field, flag in _AGENT_BACKEND_OPTIONS:
        if getattr(spec, field):
            raise UsageError(
                f"{flag} on an agent: agents talk only to the gateways; give {flag} to the gateways (--role gateway)"
            )


def _resolver(spec: CollectorSpec) -> dict[str, Any]:
    if spec.gateway_dns is not None:
        host, port = parse_hostport(spec.gateway_dns, "--gateway-dns", "otelkit-gateway.observability.svc:4317")
        # Re-resolved every 5 s (the exporter's default); a headless Service lists only ready pods.
        return {"dns": {"hostname": host, "port": str(port)}}
    seen: dict[tuple[str, int], str] = {}
    hostnames: list[str] = []
    for entry in spec.gateway:
        host, port = parse_hostport(entry, "--gateway", "gateway-1:4317")
        if (host, port) in seen:
            raise UsageError(f"--gateway {entry!r} is given twice; list each gateway once")
        seen[(host, port)] = entry
        hostnames.append(hostport(host, port))
    return {"static": {"hostnames": hostnames}}


def agent_exporters(
    spec: CollectorSpec,
    active: list[str],
    *,
    queue: dict[str, Any],
    retry: dict[str, Any] | None,
    debug: Callable[[], Component] | None,
) -> dict[str, list[Component]]:
    """signal -> exporters of an agent: ``load_balancing`` (traces and logs by trace id) and
    ``load_balancing/metrics`` (by stream id), plus ``debug`` where given."""
    resolver = _resolver(spec)
    # The per-gateway exporters only try once: failures go back to the load balancer's queue and
    # retries, which re-route them through the current ring (see the module docstring).
    protocol = {
        "otlp": {
            "tls": {"insecure": True},
            "sending_queue": {"enabled": False},
            "retry_on_failure": {"enabled": False},
        }
    }
    uses = (queue["storage"],) if "storage" in queue else ()

    def balancer(cid: str, key: str, signals: frozenset[str], what: str) -> Component:
        config: dict[str, Any] = {"routing_key": key, "protocol": protocol, "resolver": resolver}
        if queue:
            config["sending_queue"] = queue
        if retry is not None:
            config["retry_on_failure"] = retry
        return Component(
            Kind.EXPORTER,
            cid,
            config,
            module="loadbalancingexporter",
            signals=signals,
            uses=uses,
            comment=what,
        )

    spans_logs = balancer(
        "load_balancing",
        "traceID",
        frozenset({"traces", "logs"}),
        "Every span of a trace, and its log records, to one gateway (consistent hash of the trace id).\n"
        "A failed export is retried through the current ring, so a dead gateway's share moves on.",
    )
    metrics = balancer(
        "load_balancing/metrics",
        "streamID",
        frozenset({"metrics"}),
        "Each metric stream to one gateway (hash of its resource, scope, name and attributes).",
    )
    out: dict[str, list[Component]] = {}
    for signal in active:
        comps = [metrics if signal == "metrics" else spans_logs]
        if debug is not None:
            comps.append(debug())
        out[signal] = comps
    return out


def k8s_attributes() -> Component:
    """Pod metadata for telemetry an agent receives from pods on its own node."""
    return Component(
        Kind.PROCESSOR,
        "k8s_attributes",
        {
            "auth_type": "serviceAccount",
            "passthrough": False,
            "filter": {"node_from_env_var": "K8S_NODE_NAME"},
            "extract": {
                "metadata": [
                    "k8s.namespace.name",
                    "k8s.pod.name",
                    "k8s.pod.uid",
                    "k8s.deployment.name",
                    "k8s.node.name",
                ]
            },
            "pod_association": [
                {"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
                {"sources": [{"from": "resource_attribute", "name": "k8s.pod.uid"}]},
                {"sources": [{"from": "connection"}]},
            ],
        },
        module="k8sattributesprocessor",
        comment="Adds the sending pod's namespace, name, uid, deployment and node (pods on this node only:\n"
        "K8S_NODE_NAME from the downward API). Needs get/list/watch on pods and namespaces.",
    )


def resource_detection(detectors: tuple[str, ...]) -> Component:
    """Host/cloud attributes of the machine the agent runs on; never overrides what the app set."""
    return Component(
        Kind.PROCESSOR,
        "resource_detection",
        {"detectors": list(detectors), "timeout": "2s", "override": False},
        module="resourcedetectionprocessor",
        comment=f"Adds {', '.join(detectors)} resource attributes the app did not set itself.",
    )


def sampling_forward() -> Component:
    """The connector between the ingress traces pipeline and the tail-sampling one."""
    return Component(
        Kind.CONNECTOR,
        FORWARD_ID,
        {},
        module="forwardconnector",
        signals=frozenset({"traces"}),
        outputs=frozenset({"traces"}),
        comment="Hands every span on to tail sampling; span metrics have counted it already.",
    )
