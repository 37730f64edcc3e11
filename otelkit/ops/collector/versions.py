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

confmap providers are versioned v1.x alongside core v0.x (core CHANGELOG headings ``v1.N/v0.M``,
N = M - 94 over the whole range).

Any version from the oldest to the newest entry renders, with the names and settings of the nearest
entry at or below it (0.135.0 renders like 0.130.0, its components at v0.135.0, its providers at
v1.41.0): a rename is only trusted from the version where it was checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otelkit.errors import UsageError

__all__ = ["DEFAULT_VERSION", "NEWEST_VERSION", "OLDEST_VERSION", "SUPPORTED_VERSIONS", "VersionInfo", "version_info"]

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

#: Versions whose names and settings were checked against their upstream sources (see module docstring).
#: Every version from the first to the last renders, with the rules of the nearest one at or below it.
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(_PROVIDERS)
OLDEST_VERSION, NEWEST_VERSION = SUPPORTED_VERSIONS[0], SUPPORTED_VERSIONS[-1]

# MAJOR.MINOR.PATCH as Go modules spell them (no leading zeros), an optional leading "v".
_SEMVER = re.compile(r"v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
# confmap providers v1.N are released with core v0.(N + 94) (see the table above).
_PROVIDERS_OFFSET = 94


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class VersionInfo:
    """Component type names and settings styles one collector version accepts.

    ``version`` is the requested version (normalized, no "v"); the names follow the nearest
    checked version at or below it."""

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
    """Return the naming table for ``version``: that of the nearest checked version at or below it.

    Raises:
        UsageError: ``version`` is not MAJOR.MINOR.PATCH, or lies outside
            :data:`OLDEST_VERSION`..:data:`NEWEST_VERSION`.
    """
    m = _SEMVER.fullmatch(version) if isinstance(version, str) else None
    if m is None:
        raise UsageError(
            f"malformed collector version {version!r}; expected MAJOR.MINOR.PATCH from {OLDEST_VERSION} to "
            f"{NEWEST_VERSION} (e.g. --collector-version {DEFAULT_VERSION})"
        )
    k = (int(m[1]), int(m[2]), int(m[3]))
    normalized = ".".join(map(str, k))
    if not _key(OLDEST_VERSION) <= k <= _key(NEWEST_VERSION):
        raise UsageError(
            f"unsupported collector version {version!r}; expected a version from {OLDEST_VERSION} to "
            f"{NEWEST_VERSION} (otelkit checks component names per version; use --collector-version "
            f"{DEFAULT_VERSION} or another version in that range)"
        )
    checked = max((v for v in SUPPORTED_VERSIONS if _key(v) <= k), key=_key)
    rules = _key(checked)
    providers = _PROVIDERS.get(normalized) or f"v1.{k[1] - _PROVIDERS_OFFSET}.0"
    return VersionInfo(
        version=normalized,
        providers_version=providers,
        otlp_grpc_exporter="otlp_grpc" if rules >= (0, 144) else "otlp",
        otlp_http_exporter="otlp_http" if rules >= (0, 144) else "otlphttp",
        prometheus_remote_write_exporter="prometheus_remote_write" if rules >= (0, 154) else "prometheusremotewrite",
        span_metrics_connector="span_metrics" if rules >= (0, 155) else "spanmetrics",
        exporter_batching=rules >= (0, 138),
        filter_trace_conditions=rules >= (0, 150),
        remote_write_http_block=rules >= (0, 158),
        resource_constant_labels=rules >= (0, 160),
        agent_components=rules >= (0, 161),
    )
