"""What ``otelkit render-k8s`` renders: :class:`K8sSpec`, its checks, and the two collector specs it implies."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from otelkit.errors import UsageError
from otelkit.ops.collector import CollectorSpec
from otelkit.ops.collector.spec import Role
from otelkit.ops.yamltext import shell_join

__all__ = [
    "CONFIG_DIR",
    "KUBERNETES_VERSIONS",
    "OTLP_GRPC",
    "QUEUE_DIR",
    "TLS_KEYS",
    "TLS_SECRET",
    "K8sSpec",
    "check_spec",
    "collector_specs",
]

#: Kubernetes versions whose API schemas the manifests are checked against (kubernetes-validate --strict).
KUBERNETES_VERSIONS: tuple[str, ...] = ("1.30.0", "1.37.0")

# Used with fullmatch: with match, "$" let a value end in a newline.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")

OTLP_GRPC = 4317
_MAX_REPLICAS = 1000
QUEUE_DIR = "/var/lib/otelcol/queue"
CONFIG_DIR = "/etc/otelkit"
TLS_SECRET = "otelkit-gateway-tls"
#: --ca-file/--cert-file/--key-file -> the key of the Secret TLS_SECRET mounted at that path (the keys of a
#: kubernetes.io/tls Secret, and of the Secrets cert-manager writes).
TLS_KEYS: tuple[tuple[str, str], ...] = (("ca_file", "ca.crt"), ("cert_file", "tls.crt"), ("key_file", "tls.key"))


def _default_gateway() -> CollectorSpec:
    return CollectorSpec(role=Role.GATEWAY, span_metrics=True, tail_sampling=10)


@dataclass(frozen=True)
class K8sSpec:
    """Everything that decides the rendered manifests; same spec, same bytes.

    ``gateway`` is the gateways' collector spec (backends, tail sampling…); the agents' spec is
    derived from it (:func:`collector_specs`).
    """

    namespace: str = "otelkit"
    cluster_domain: str = "cluster.local"
    collector_image: str = "otel/opentelemetry-collector-contrib:0.161.0"
    app_image: str = "otelkit-example:dev"
    gateway_replicas: int = 2
    gateway_max_replicas: int = 6
    gateway: CollectorSpec = field(default_factory=_default_gateway)

    def command_line(self, output: str) -> str:
        """The ``otelkit render-k8s`` command that renders this spec (only non-default options), quoted for a shell."""
        args = ["otelkit", "render-k8s", "-o", output]
        default = K8sSpec()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "gateway" and value != getattr(default, f.name):
                args += [f"--{f.name.replace('_', '-')}", str(value)]
        # The gateway's options, against render-k8s's defaults for it (span metrics and 10 % tail
        # sampling); those two turned off come last, in the order headers have always shown them.
        turned_off = ["--no-tail-sampling"] if self.gateway.tail_sampling is None else []
        for group in self.gateway.option_args(default.gateway):
            if group == ("--no-span-metrics",):
                turned_off.append(group[0])
            elif group[0] != "--role":
                args += group
        return shell_join(args + turned_off)


def check_spec(spec: K8sSpec) -> None:
    if not _DNS_LABEL.fullmatch(spec.namespace):
        raise UsageError(
            f"invalid --namespace {spec.namespace!r}; expected a DNS label: lower-case letters, digits and '-', "
            "at most 63 characters (e.g. observability)"
        )
    if not _DOMAIN.fullmatch(spec.cluster_domain):
        raise UsageError(
            f"invalid --cluster-domain {spec.cluster_domain!r}; expected a DNS domain such as cluster.local"
        )
    for flag, image in (("--collector-image", spec.collector_image), ("--app-image", spec.app_image)):
        if not _IMAGE.fullmatch(image):
            raise UsageError(
                f"invalid {flag} {image!r}; expected an image reference such as "
                "otel/opentelemetry-collector-contrib:0.161.0 (no spaces or quotes)"
            )
    # Replica counts are int32 in the API; far below that, 1000 gateways is already a different design.
    if not 2 <= spec.gateway_replicas <= _MAX_REPLICAS:
        raise UsageError(
            f"invalid --gateway-replicas {spec.gateway_replicas}; expected 2 or more: with one gateway every trace "
            f"is lost while it restarts, and its PodDisruptionBudget would block node drains; at most {_MAX_REPLICAS}"
        )
    if not spec.gateway_replicas <= spec.gateway_max_replicas <= _MAX_REPLICAS:
        raise UsageError(
            f"invalid --gateway-max-replicas {spec.gateway_max_replicas}; expected at least --gateway-replicas "
            f"({spec.gateway_replicas}) and at most {_MAX_REPLICAS}"
        )
    g = spec.gateway
    fixed = CollectorSpec()
    for name in ("bind", "otlp_grpc_port", "otlp_http_port", "telemetry_port", "health_port", "prometheus_endpoint"):
        if getattr(g, name) != getattr(fixed, name):
            raise UsageError(f"--{name.replace('_', '-')} is fixed in the Kubernetes manifests; drop it")
    if g.persistent_queue is not None:
        raise UsageError(
            "--persistent-queue is not offered for gateways in Kubernetes (their pods are replaceable); "
            "the agents keep a persistent queue"
        )
    _check_tls_paths(g)


def _check_tls_paths(g: CollectorSpec) -> None:
    # Each file is mounted on its own (subPath) at the path the config names: an absolute path that is
    # not inside the read-only config volume, one file per path.
    seen: dict[str, str] = {}
    for name, _ in TLS_KEYS:
        path = getattr(g, name)
        if path is None:
            continue
        flag = f"--{name.replace('_', '-')}"
        parts = path.split("/")
        inside = path.startswith(f"{CONFIG_DIR}/")
        if not path.startswith("/") or ".." in parts or path.endswith("/") or inside or not path.isprintable():
            raise UsageError(
                f"invalid {flag} {path!r} for Kubernetes; expected an absolute path outside {CONFIG_DIR}/, where the "
                f"pod mounts the file from the Secret {TLS_SECRET} (e.g. /etc/ssl/otelkit/ca.pem)"
            )
        if path in seen:
            raise UsageError(
                f"{flag} {path!r} is also {seen[path]}; the pod mounts each file from its own key of the Secret "
                f"{TLS_SECRET}, so give each its own path"
            )
        seen[path] = flag


def collector_specs(spec: K8sSpec) -> dict[str, CollectorSpec]:
    """The ``agent`` and ``gateway`` collector specs the ConfigMaps are rendered from."""
    gateway = dataclasses.replace(spec.gateway, role=Role.GATEWAY)
    headless = f"otelkit-gateway.{spec.namespace}.svc.{spec.cluster_domain}:{OTLP_GRPC}"
    # A signal the gateways do not take must not be sent to them (their receiver would refuse it forever).
    default = CollectorSpec()

    def same_signals(signal: str) -> tuple[str, ...]:
        return ("none",) if getattr(gateway, signal) == ("none",) else getattr(default, signal)

    agent = CollectorSpec(
        role=Role.AGENT,
        gateway_dns=headless,
        k8s_attributes=True,
        persistent_queue=QUEUE_DIR,
        collector_version=gateway.collector_version,
        profile=gateway.profile,
        traces=same_signals("traces"),
        metrics=same_signals("metrics"),
        logs=same_signals("logs"),
    )
    return {"agent": agent, "gateway": gateway}
