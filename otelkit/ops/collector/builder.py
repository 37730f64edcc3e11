"""ocb (OpenTelemetry Collector Builder) manifests with exactly the components otelkit renders.

``render_builder(spec)`` lists the modules of the one config ``spec`` renders; with
``all_components=True`` it lists the union over every backend, both profiles and every option,
which is the project's own test/stack collector (``collector/builder-manifest.yaml``). Modules
are listed in a fixed order, so the output is stable.

Only modules known to build at the pinned version on the project's machines are in the
catalogue. Load balancing, k8s_attributes and resource detection build at 0.161.0 only with the
``replaces:`` in :data:`_REPLACES` (each points a module at a version the Go module proxy serves, or,
for ``pkg/semconvtest``, at a stub that ``otelkit build-collector`` writes next to the build).

``dist.version`` names both versions (``0.161.0-otelkit0.1.0``): without it the binary rejects
``--version``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import otelkit
from otelkit.ops import templates
from otelkit.ops.collector.backends import BACKENDS
from otelkit.ops.collector.model import Kind
from otelkit.ops.collector.render import build_model
from otelkit.ops.collector.spec import Batching, CollectorSpec, Profile, Role
from otelkit.ops.collector.versions import version_info

__all__ = ["manifest", "render_builder"]

_CORE = "go.opentelemetry.io/collector"
_CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"

# (section, module key used by the model, Go module path), in manifest order.
_MODULES: tuple[tuple[Kind, str, str], ...] = (
    (Kind.RECEIVER, "otlpreceiver", f"{_CORE}/receiver/otlpreceiver"),
    (Kind.PROCESSOR, "batchprocessor", f"{_CORE}/processor/batchprocessor"),
    (Kind.PROCESSOR, "memorylimiterprocessor", f"{_CORE}/processor/memorylimiterprocessor"),
    (Kind.PROCESSOR, "attributesprocessor", f"{_CONTRIB}/processor/attributesprocessor"),
    (Kind.PROCESSOR, "filterprocessor", f"{_CONTRIB}/processor/filterprocessor"),
    (Kind.PROCESSOR, "transformprocessor", f"{_CONTRIB}/processor/transformprocessor"),
    (Kind.PROCESSOR, "tailsamplingprocessor", f"{_CONTRIB}/processor/tailsamplingprocessor"),
    (Kind.PROCESSOR, "k8sattributesprocessor", f"{_CONTRIB}/processor/k8sattributesprocessor"),
    (Kind.PROCESSOR, "resourcedetectionprocessor", f"{_CONTRIB}/processor/resourcedetectionprocessor"),
    (Kind.EXPORTER, "debugexporter", f"{_CORE}/exporter/debugexporter"),
    (Kind.EXPORTER, "otlpexporter", f"{_CORE}/exporter/otlpexporter"),
    (Kind.EXPORTER, "otlphttpexporter", f"{_CORE}/exporter/otlphttpexporter"),
    (Kind.EXPORTER, "loadbalancingexporter", f"{_CONTRIB}/exporter/loadbalancingexporter"),
    (Kind.EXPORTER, "prometheusexporter", f"{_CONTRIB}/exporter/prometheusexporter"),
    (Kind.EXPORTER, "prometheusremotewriteexporter", f"{_CONTRIB}/exporter/prometheusremotewriteexporter"),
    (Kind.EXPORTER, "zipkinexporter", f"{_CONTRIB}/exporter/zipkinexporter"),
    (Kind.CONNECTOR, "forwardconnector", f"{_CORE}/connector/forwardconnector"),
    (Kind.CONNECTOR, "spanmetricsconnector", f"{_CONTRIB}/connector/spanmetricsconnector"),
    (Kind.EXTENSION, "healthcheckextension", f"{_CONTRIB}/extension/healthcheckextension"),
    (Kind.EXTENSION, "filestorage", f"{_CONTRIB}/extension/storage/filestorage"),
    (Kind.EXTENSION, "zpagesextension", f"{_CORE}/extension/zpagesextension"),
)

# Modules that left the shared v0.x version: k8s_attributes is v1.x since contrib 0.161 (v1.0.0).
_OWN_VERSION: dict[str, dict[str, str]] = {"k8sattributesprocessor": {"0.161.0": "v1.0.0"}}

# module key -> (why, replaces) at 0.161.0, checked by building them (see the project notes). The
# semconvtest stub's path is relative to dist.output_path; `otelkit build-collector` writes it.
_REPLACES: dict[str, tuple[str, tuple[str, ...]]] = {
    "loadbalancingexporter": (
        "load_balancing: the servicediscovery version it requires is not served by the Go module proxy",
        (
            "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
            " => github.com/aws/aws-sdk-go-v2/service/servicediscovery v1.43.0",
        ),
    ),
    "k8sattributesprocessor": (
        "k8s_attributes: a test-only module no version of which is served; otelkit build-collector writes the stub",
        (f"{_CONTRIB}/pkg/semconvtest => ../stubs/semconvtest",),
    ),
    "resourcedetectionprocessor": (
        "resource_detection: detector modules at versions the Go module proxy serves",
        tuple(
            f"go.opentelemetry.io/contrib/detectors/{d} => go.opentelemetry.io/contrib/detectors/{d} v0.17.0"
            for d in (
                "aws/elasticbeanstalk",
                "azure/azureappservice",
                "azure/azurecontainerapps",
                "hetzner",
                "ibmcloud/vpc",
                "vultr",
            )
        ),
    ),
}

# The collector resolves ${env:VAR}, file and inline configs, and http(s) config URLs.
_PROVIDERS = ("envprovider", "fileprovider", "httpprovider", "httpsprovider", "yamlprovider")


def _modules_of(spec: CollectorSpec) -> set[str]:
    model, _ = build_model(spec)
    return {c.module for c in model.components()}


def _every_backend(signal: str) -> tuple[str, ...]:
    return tuple(name for name, backend in BACKENDS[signal].items() if backend.exporter is not None)


def _all_modules(spec: CollectorSpec) -> set[str]:
    """Union of the modules of every backend, both profiles and every option, for spec's version."""
    v = version_info(spec.collector_version)
    modules: set[str] = set()
    everything = dataclasses.replace(
        CollectorSpec(),
        collector_version=v.version,
        # Every backend of the table (all but "none"): a backend added there is built in too.
        traces=_every_backend("traces"),
        metrics=_every_backend("metrics"),
        logs=_every_backend("logs"),
        persistent_queue="/var/lib/otelcol/queue",
        span_metrics=True,
        tail_sampling=10,
        drop_route=("/health",),
        max_attribute_length=4096,
        redact=True,
    )
    batchings = [Batching.PROCESSOR, Batching.EXPORTER] if v.exporter_batching else [Batching.PROCESSOR]
    for profile in Profile:
        for batching in batchings:
            modules |= _modules_of(dataclasses.replace(everything, profile=profile, batching=batching))
            modules |= _modules_of(
                dataclasses.replace(everything, role=Role.GATEWAY, profile=profile, batching=batching)
            )
            if v.agent_components:
                agent = CollectorSpec(
                    role=Role.AGENT,
                    collector_version=v.version,
                    profile=profile,
                    batching=batching,
                    gateway=("gateway:4317",),
                    persistent_queue="/var/lib/otelcol/queue",
                    k8s_attributes=True,
                    resource_detection=("env", "system"),
                    drop_route=("/health",),
                    max_attribute_length=4096,
                    redact=True,
                )
                modules |= _modules_of(agent)
    return modules


def dist_version(collector_version: str) -> str:
    """``dist.version`` of otelkit's collector: the collector's version, then otelkit's."""
    return f"{collector_version}-otelkit{otelkit.__version__}"


def _parts(spec: CollectorSpec, all_components: bool) -> tuple[dict[str, Any], list[tuple[str, tuple[str, ...]]]]:
    """The manifest as data, and its ``replaces`` with the reason for each group."""
    v = version_info(spec.collector_version)
    modules = _all_modules(spec) if all_components else _modules_of(spec)
    description = (
        "otelkit collector (the components otelkit renders)"
        if all_components
        else "otelkit collector (the components of one rendered config)"
    )
    data: dict[str, Any] = {
        "dist": {
            "name": "otelcol-otelkit",
            "description": description,
            "version": dist_version(v.version),
            "output_path": "./build",
        }
    }
    replaces: list[tuple[str, tuple[str, ...]]] = []
    for kind, key, path in _MODULES:
        if key in modules:
            version = _OWN_VERSION.get(key, {}).get(v.version, v.gomod_version)
            data.setdefault(kind.value, []).append({"gomod": f"{path} {version}"})
            if key in _REPLACES:
                replaces.append(_REPLACES[key])
    data["providers"] = [{"gomod": f"{_CORE}/confmap/provider/{p} {v.providers_version}"} for p in _PROVIDERS]
    if replaces:
        data["replaces"] = [line for _, lines in replaces for line in lines]
    return data, replaces


def manifest(spec: CollectorSpec | None = None, *, all_components: bool = False) -> dict[str, Any]:
    """The ocb manifest :func:`render_builder` writes, as data.

    Raises:
        UsageError: ``spec`` is invalid (same errors as :func:`render_collector`).
        RenderError: ``spec``'s pipelines do not hold together.
    """
    return _parts(spec or CollectorSpec(), all_components)[0]


def render_builder(spec: CollectorSpec | None = None, *, all_components: bool = False) -> str:
    """Render the ocb manifest for ``spec`` (defaults when ``None``).

    Args:
        spec: the collector config whose components to build, and the target version.
        all_components: list every component any otelkit config can use at that version instead.

    Raises:
        UsageError: ``spec`` is invalid (same errors as :func:`render_collector`).
        RenderError: ``spec``'s pipelines do not hold together.
    """
    spec = spec or CollectorSpec()
    data, replaces = _parts(spec, all_components)
    if all_components:
        v = version_info(spec.collector_version)
        command = "otelkit render-builder --all" + (
            f" --collector-version {v.version}" if v.version != CollectorSpec().collector_version else ""
        )
        headline = "ocb (OpenTelemetry Collector Builder) manifest for the otelkit test/stack collector."
    else:
        command = spec.command_line("render-builder")
        headline = "ocb (OpenTelemetry Collector Builder) manifest with the components of one otelkit config."
    return templates.render(
        "collector/builder-manifest.yaml.j2",
        document=data,
        headline=headline,
        command=command,
        sections=[(kind.value, [e["gomod"] for e in data[kind.value]]) for kind in Kind if kind.value in data],
        providers=[e["gomod"] for e in data["providers"]],
        replaces=replaces,
        **data["dist"],
    )
