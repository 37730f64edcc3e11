"""SDK providers for the three signals, set as the globals, with console logging and bounded exit hooks.

:func:`setup` is the one set-up path of the launcher's configurator and :func:`otelkit.configure`:
console logging first (errors while building exporters must be visible), then the tracer, meter
and logger providers with the exporters :mod:`otelkit._runtime.exporters` chose, batched
(``OTEL_BSP_*``/``OTEL_BLRP_*``/``OTEL_METRIC_EXPORT_*``), then the exit and signal hooks that
flush them in bounded time (:mod:`otelkit._runtime.shutdown`).
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Any

from otelkit._runtime import sdk_compat, shutdown
from otelkit._runtime.exporters import exporters_for
from otelkit._runtime.logs import console
from otelkit._runtime.logs.structlog_bridge import configure_structlog
from otelkit.settings import Settings

__all__ = ["build_providers", "setup"]

_log = logging.getLogger("otelkit")


def _resource(settings: Settings, service_name: str | None = None) -> Any:
    from opentelemetry.sdk.resources import Resource

    from otelkit import __version__

    attributes: dict[str, Any] = {
        "telemetry.distro.name": "otelkit",
        "telemetry.distro.version": __version__,
    }
    if "deployment.environment" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip():
        attributes["deployment.environment.name"] = settings.environment
    if service_name:  # an explicit name beats OTEL_SERVICE_NAME: Resource.create lets attributes win
        attributes["service.name"] = service_name
    return Resource.create(attributes)


def build_providers(
    settings: Settings, *, warm_after: float | None = None, service_name: str | None = None
) -> tuple[Any, Any, Any]:
    """Create tracer, meter and logger providers exporting as the environment says.

    Args:
        settings: otelkit's settings.
        warm_after: build the deferred OTLP exporters this many seconds from now, on a background
            thread (:func:`otelkit._runtime.deferred.warm_later`); None: at their first export.
        service_name: ``service.name`` given to :func:`otelkit.configure`; None: from the environment.

    Returns:
        ``(tracer_provider, meter_provider, logger_provider)``; not yet set as globals.
    """
    from otelkit._runtime import deferred, envcheck, fasthist, redact, redact_exporters
    from otelkit._runtime.logs import fastemit

    # Bad OTEL_* values fall back to their defaults before the SDK reads them (some at import time).
    envcheck.check()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = _resource(settings, service_name)
    # Secrets are scrubbed from span and log attributes on the export thread, off the request path.
    redact.configure(settings.redact_keys)
    # shutdown_on_exit=False: otelkit's own exit hook shuts them down bounded in time (shutdown).
    tracer_provider = TracerProvider(
        resource=resource, sampler=_installed_sampler(), id_generator=_installed_id_generator(), shutdown_on_exit=False
    )
    span_exporters = exporters_for("traces", settings)
    metric_exporters = exporters_for("metrics", settings)
    log_exporters = exporters_for("logs", settings)
    for exporter in span_exporters:
        if not _redacts(exporter):
            exporter = redact_exporters.RedactingSpanExporter(exporter)
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))

    # The HTTP duration histogram is pre-aggregated on the request path and merged into exports,
    # where the installed SDK allows it (fasthist.usable).
    fast_histograms = fasthist.usable(metric_exporters)
    if fast_histograms:
        _register_fast_histograms(anchored=fasthist.cumulative_up_down(metric_exporters))
    readers = [
        PeriodicExportingMetricReader(fasthist.wrap_exporter(exporter, resource) if fast_histograms else exporter)
        for exporter in metric_exporters
    ]
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, views=default_views(), shutdown_on_exit=False
    )
    _dropping.add(meter_provider)

    logger_provider = sdk_compat.logs_sdk().LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in log_exporters:
        if not _redacts(exporter):
            exporter = redact_exporters.RedactingLogRecordExporter(exporter)
        processor = sdk_compat.logs_sdk_export().BatchLogRecordProcessor(exporter)
        if isinstance(exporter, deferred.DeferredExporter):
            fastemit.queue_as_fields(processor, exporter)
        logger_provider.add_log_record_processor(processor)
    if warm_after is not None:
        deferred.warm_later([*span_exporters, *metric_exporters, *log_exporters], warm_after)
    return tracer_provider, meter_provider, logger_provider


def _installed_sampler() -> Any | None:
    """The installed sampler ``OTEL_TRACES_SAMPLER`` names; None for a built-in one (the SDK reads those).

    ``TracerProvider`` alone knows only the built-in samplers: the SDK's configurator, which otelkit's
    replaces, loads the others from the ``opentelemetry_traces_sampler`` entry points and calls them
    with ``OTEL_TRACES_SAMPLER_ARG``. So does otelkit; one that fails gives the default, with one line.
    """
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip()
    from otelkit._runtime.envcheck import BUILTIN_SAMPLERS

    if not name or name.lower() in BUILTIN_SAMPLERS:
        return None

    from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Sampler

    loaded = _load_plugin(
        "opentelemetry_traces_sampler",
        name,
        Sampler,
        "OTEL_TRACES_SAMPLER",
        "the sampler",
        "parentbased_always_on",
        os.environ.get("OTEL_TRACES_SAMPLER_ARG"),
    )
    return DEFAULT_ON if loaded is None else loaded


def _installed_id_generator() -> Any | None:
    """The id generator ``OTEL_PYTHON_ID_GENERATOR`` names; None for ``random`` (the SDK's default).

    ``TracerProvider`` alone always uses ``RandomIdGenerator``: the SDK's configurator, which otelkit's
    replaces, loads the ``opentelemetry_id_generator`` entry point of that name (``xray`` from
    opentelemetry-sdk-extension-aws, say) and calls it without arguments. So does otelkit; one that
    fails gives the default, with one line. With any generator but the SDK's random one, server spans
    go through ``Tracer.start_span`` (:mod:`otelkit._runtime.http.serverspan`), so they get its ids.
    """
    name = os.environ.get("OTEL_PYTHON_ID_GENERATOR", "").strip()
    from otelkit._runtime.envcheck import DEFAULT_ID_GENERATOR

    if not name or name == DEFAULT_ID_GENERATOR:
        return None

    from opentelemetry.sdk.trace.id_generator import IdGenerator

    return _load_plugin(
        "opentelemetry_id_generator", name, IdGenerator, "OTEL_PYTHON_ID_GENERATOR", "the id generator", "random"
    )


def _load_plugin(group: str, name: str, kind: type, variable: str, what: str, fallback: str, *args: Any) -> Any | None:
    """The object the entry point ``name`` of ``group`` makes (called with ``args``), if it is a ``kind``.

    None when it is not installed (envcheck has said so and removed it, unless it came later), or,
    with one error line naming ``fallback``, when it fails or makes something else.
    """
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=group, name=name):
        try:
            made = entry_point.load()(*args)
        except Exception as exc:
            _log.error("otelkit: %s %r could not be created (%s); using %s", what, name, exc, fallback)
            return None
        if isinstance(made, kind):
            return made
        _log.error(
            "otelkit: %s=%s gave %r, not a%s %s; using %s",
            variable,
            name,
            made,
            "n" if kind.__name__[0] in "AEIOU" else "",
            kind.__name__,
            fallback,
        )
        return None
    return None


DROPPED_INSTRUMENTS = ("flower.task.runtime.seconds",)
"""Instruments otelkit's meter provider drops: opentelemetry-instrumentation-celery records
``flower.task.runtime.seconds`` for every task, the same durations as otelkit's
``celery.task.duration`` (which also has the queue, the final state and exemplars)."""


_dropping: weakref.WeakSet[Any] = weakref.WeakSet()


def drops_instruments(meter_provider: Any) -> bool:
    """Whether ``meter_provider`` is one otelkit built: its views drop :data:`DROPPED_INSTRUMENTS`."""
    try:
        return meter_provider in _dropping
    except TypeError:  # not weak-referenceable: not ours
        return False


def default_views() -> list[Any]:
    """The views of otelkit's meter provider: :data:`DROPPED_INSTRUMENTS` aggregated by nothing."""
    from opentelemetry.sdk.metrics.view import DropAggregation, View

    return [View(instrument_name=name, aggregation=DropAggregation()) for name in DROPPED_INSTRUMENTS]


def _redacts(exporter: Any) -> bool:
    return getattr(exporter, "redacts", False) or getattr(exporter, "_attribute_filter", None) is not None


def _register_fast_histograms(anchored: bool = False) -> None:
    from otelkit._runtime.celery import instruments
    from otelkit._runtime.http import asgi

    asgi.register_fast_duration()
    instruments.register_fast_instruments(anchored=anchored)


def _set_globals(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> tuple[Any, Any, Any]:
    chosen = []
    for signal, provider, kind in (
        ("traces", tracer_provider, "tracer"),
        ("metrics", meter_provider, "meter"),
        ("logs", logger_provider, "logger"),
    ):
        current = sdk_compat.install_global_provider(signal, provider)
        if current is not provider:
            _log.warning("otelkit: a %s provider was already set by the app; otelkit uses it as is", kind)
        chosen.append(current)
    return chosen[0], chosen[1], chosen[2]


def setup(settings: Settings, *, service_name: str | None = None) -> tuple[Any, Any, Any]:
    """Providers as globals, console logging, root level and the bounded exit hooks."""
    # Console first: errors while building exporters must be visible.
    console.set_root_level(settings.log_level)
    console.install_console(settings.console_format, settings.export_error_interval)
    console.install_sdk_gate(settings.export_error_interval)
    console.throttle_sdk_queue_warnings(settings.export_error_interval)
    console.redact_access_logs()
    from otelkit._runtime import deferred

    providers = _set_globals(*build_providers(settings, warm_after=deferred.WARM_AFTER, service_name=service_name))
    shutdown.register(list(providers), settings.shutdown_timeout)
    shutdown.install_signal_handlers()
    # structlog (when the app uses it) is bridged to stdlib as soon as the app imports it.
    from otelkit._runtime import imports

    imports.when_imported("structlog", lambda _module: configure_structlog())
    return providers
