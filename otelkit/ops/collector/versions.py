"""Which component names and settings each supported collector version accepts.

Every entry below was read in the upstream sources at that version (``metadata.yaml`` ``type:`` /
``deprecated_type:`` and the component's ``config.go``), through the Go module cache or the core
repository's tags:

============================  ==========  ==============================================================
change                         since       evidence
============================  ==========  ==============================================================
``otlp`` → ``otlp_grpc``,      0.144.0     core ``exporter/otlp*exporter/metadata.yaml``; old names are
``otlphttp`` → ``otlp_http``               aliases from 0.150.0 on (0.144 rejects ``otlp_grpc`` below)
``sending_queue::batch: {}``   0.138.0     core CHANGELOG v0.138.0 (#13766): an empty ``batch`` gives the
= batch processor defaults                 batch processor's defaults; before it, use the ``batch`` processor
filter ``trace_conditions``    0.150.0     contrib filterprocessor ``config.go``; ``traces.span`` deprecated
``prometheusremotewrite`` →    0.154.0     contrib ``metadata.yaml`` (0.150: old only; 0.154: renamed)
``prometheus_remote_write``
``spanmetrics`` →              0.155.0     contrib ``metadata.yaml`` (0.150: old; 0.155: renamed; 0.154 is
``span_metrics``                           not in the module proxy, so 0.154 is not offered)
remote write client under      0.158.0     contrib prometheusremotewriteexporter ``config.go``
``http:``                                  ("Deprecated [v0.158.0]")
``resource_constant_labels``   0.160.0     contrib prometheus(remotewrite)exporter ``config.go`` / feature
replaces                                   gate ``exporter.prometheus.DisableResourceToTelemetryConversion``
``resource_to_telemetry_…``                (from_version v0.160.0)
============================  ==========  ==============================================================

``health_check``, ``file_storage``, ``memory_limiter``, ``tail_sampling``, ``attributes``, ``filter``,
``transform``, ``zipkin``, ``debug``, ``prometheus``, ``zpages`` and the ``otlp`` receiver kept their
names over the whole range. The ``batch`` processor is still ``beta`` at 0.161.0; core 0.159.0 added
``queuebatch`` to replace it, and exporters batch themselves since 0.138.0, so otelkit does not use
it unless ``batching=processor`` (or the version predates exporter batching).

confmap providers are versioned v1.x alongside core v0.x (core CHANGELOG headings ``v1.N/v0.M``).
"""

from __future__ import annotations

from dataclasses import dataclass

from otelkit.errors import UsageError

__all__ = ["DEFAULT_VERSION", "SUPPORTED_VERSIONS", "VersionInfo", "version_info"]

#: The collector version the project pins, builds and tests with.
DEFAULT_VERSION = "0.161.0"

# version -> confmap provider module version (core CHANGELOG "## v1.N/v0.M").
_PROVIDERS = {
    "0.130.0": "v1.36.0",
    "0.138.0": "v1.44.0",
    "0.144.0": "v1.50.0",
    "0.150.0": "v1.56.0",
    "0.155.0": "v1.61.0",
    "0.160.0": "v1.66.0",
    "0.161.0": "v1.67.0",
}

#: Versions otelkit renders for: each one checked against its upstream sources (see module docstring).
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(_PROVIDERS)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class VersionInfo:
    """Component type names and settings styles one collector version accepts."""

    version: str
    providers_version: str
    otlp_grpc_exporter: str
    otlp_http_exporter: str
    prometheus_remote_write_exporter: str
    span_metrics_connector: str
    exporter_batching: bool
    filter_trace_conditions: bool
    remote_write_http_block: bool
    resource_constant_labels: bool
    agent_components: bool = False
    """load_balancing, k8s_attributes and resource_detection: checked (names, build) at 0.161.0 only."""

    @property
    def gomod_version(self) -> str:
        return f"v{self.version}"


def version_info(version: str) -> VersionInfo:
    """Return the naming table of ``version``.

    Raises:
        UsageError: ``version`` is not one of :data:`SUPPORTED_VERSIONS`.
    """
    normalized = version[1:] if version.startswith("v") else version
    if normalized not in _PROVIDERS:
        raise UsageError(
            f"unsupported collector version {version!r}; expected one of: {', '.join(SUPPORTED_VERSIONS)} "
            f"(otelkit checks component names per version; use --collector-version {DEFAULT_VERSION})"
        )
    k = _key(normalized)
    return VersionInfo(
        version=normalized,
        providers_version=_PROVIDERS[normalized],
        otlp_grpc_exporter="otlp_grpc" if k >= (0, 144) else "otlp",
        otlp_http_exporter="otlp_http" if k >= (0, 144) else "otlphttp",
        prometheus_remote_write_exporter="prometheus_remote_write" if k >= (0, 154) else "prometheusremotewrite",
        span_metrics_connector="span_metrics" if k >= (0, 155) else "spanmetrics",
        exporter_batching=k >= (0, 138),
        filter_trace_conditions=k >= (0, 150),
        remote_write_http_block=k >= (0, 158),
        resource_constant_labels=k >= (0, 160),
        agent_components=k >= (0, 161),
    )
