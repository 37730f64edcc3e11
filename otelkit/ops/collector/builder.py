"""ocb (OpenTelemetry Collector Builder) manifests with exactly the components otelkit renders.

``render_builder(spec)`` lists the modules of the one config ``spec`` renders; with
``all_components=True`` it lists the union over every backend, both profiles and every option,
which is the project's own test/stack collector (``collector/builder-manifest.yaml``). Modules
are listed in a fixed order, so the output is stable.

Only modules known to build at the pinned version on the project's machines are in the
catalogue (resourcedetection and loadbalancing do not: their transitive modules are missing from
the Go module proxy there).
"""

from __future__ import annotations

import dataclasses

from otelkit.ops import templates
from otelkit.ops.collector.model import Kind
from otelkit.ops.collector.render import build_model
from otelkit.ops.collector.spec import Batching, CollectorSpec, Profile
from otelkit.ops.collector.versions import version_info

__all__ = ["render_builder"]

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
    (Kind.EXPORTER, "debugexporter", f"{_CORE}/exporter/debugexporter"),
    (Kind.EXPORTER, "otlpexporter", f"{_CORE}/exporter/otlpexporter"),
    (Kind.EXPORTER, "otlphttpexporter", f"{_CORE}/exporter/otlphttpexporter"),
    (Kind.EXPORTER, "prometheusexporter", f"{_CONTRIB}/exporter/prometheusexporter"),
    (Kind.EXPORTER, "prometheusremotewriteexporter", f"{_CONTRIB}/exporter/prometheusremotewriteexporter"),
    (Kind.EXPORTER, "zipkinexporter", f"{_CONTRIB}/exporter/zipkinexporter"),
    (Kind.CONNECTOR, "spanmetricsconnector", f"{_CONTRIB}/connector/spanmetricsconnector"),
    (Kind.EXTENSION, "healthcheckextension", f"{_CONTRIB}/extension/healthcheckextension"),
    (Kind.EXTENSION, "filestorage", f"{_CONTRIB}/extension/storage/filestorage"),
    (Kind.EXTENSION, "zpagesextension", f"{_CORE}/extension/zpagesextension"),
)

# The collector resolves ${env:VAR}, file and inline configs, and http(s) config URLs.
_PROVIDERS = ("envprovider", "fileprovider", "httpprovider", "httpsprovider", "yamlprovider")


def _modules_of(spec: CollectorSpec) -> set[str]:
    model, _ = build_model(spec)
    return {c.module for c in model.components()}


def _all_modules(spec: CollectorSpec) -> set[str]:
    """Union of the modules of every backend, both profiles and every option, for spec's version."""
    v = version_info(spec.collector_version)
    modules: set[str] = set()
    everything = dataclasses.replace(
        CollectorSpec(),
        collector_version=v.version,
        traces=("jaeger", "tempo", "zipkin", "otlp", "debug"),
        metrics=("prometheus", "prometheusremotewrite", "otlp", "debug"),
        logs=("loki", "otlp", "debug"),
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
    return modules


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
    v = version_info(spec.collector_version)
    modules = _all_modules(spec) if all_components else _modules_of(spec)
    sections: dict[str, list[str]] = {}
    for kind, key, path in _MODULES:
        if key in modules:
            sections.setdefault(kind.value, []).append(f"{path} {v.gomod_version}")
    if all_components:
        command = "otelkit render-builder --all" + (
            f" --collector-version {v.version}" if v.version != CollectorSpec().collector_version else ""
        )
        headline = "ocb (OpenTelemetry Collector Builder) manifest for the otelkit test/stack collector."
        description = "otelkit collector (the components otelkit renders)"
    else:
        command = spec.command_line("render-builder")
        headline = "ocb (OpenTelemetry Collector Builder) manifest with the components of one otelkit config."
        description = "otelkit collector (the components of one rendered config)"
    return templates.render(
        "collector/builder-manifest.yaml.j2",
        headline=headline,
        command=command,
        name="otelcol-otelkit",
        description=description,
        output_path="./build",
        sections=[(kind.value, sections[kind.value]) for kind in Kind if kind.value in sections],
        providers=[f"{_CORE}/confmap/provider/{p} {v.providers_version}" for p in _PROVIDERS],
    )
