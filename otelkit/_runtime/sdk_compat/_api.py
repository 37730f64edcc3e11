"""SDK and API internals outside the hot paths: the logs modules, entry points, global providers, handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from otelkit._runtime.sdk_compat._registry import differs, missing, register

# --- the logs signal's modules --------------------------------------------------------------------
# The logs API and SDK still live under underscore names (opentelemetry._logs, opentelemetry.sdk._logs)
# in 1.40–1.45; the public names are tried first, for the release that makes them stable.


_found: dict[tuple[str, ...], ModuleType] = {}


def _first_module(*names: str) -> ModuleType:
    """The first of ``names`` that imports, remembered.

    A name that does not exist is searched for on disk again at every import attempt, and the log
    exporter asks for the export module on every export: uncached, ~40 µs of directory checks a
    batch (found by py-spy on the export thread).
    """
    found = _found.get(names)
    if found is not None:
        return found
    import importlib

    error: Exception | None = None
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            error = error or exc
        else:
            _found[names] = module
            return module
    raise ImportError(f"none of {', '.join(names)} can be imported: {error}")


def logs_api() -> ModuleType:
    """The logs API module (``get_logger_provider``, ``SeverityNumber``, ``LogRecord``…)."""
    return _first_module("opentelemetry.logs", "opentelemetry._logs")


def logs_sdk() -> ModuleType:
    """The logs SDK module (``LoggerProvider``, ``LoggingHandler``…)."""
    return _first_module("opentelemetry.sdk.logs", "opentelemetry.sdk._logs")


def logs_sdk_export() -> ModuleType:
    """The logs SDK's export module (``BatchLogRecordProcessor``, ``LogRecordExporter``, ``LogRecordExportResult``…)."""
    return _first_module("opentelemetry.sdk.logs.export", "opentelemetry.sdk._logs.export")


def otlp_log_exporter_module(protocol: str = "http") -> ModuleType:
    """The module of the SDK's OTLP log exporter for ``protocol`` (``http`` or ``grpc``)."""
    base = f"opentelemetry.exporter.otlp.proto.{protocol}"
    return _first_module(f"{base}.log_exporter", f"{base}._log_exporter")


def otlp_log_encoder() -> Any:
    """The OTLP exporters' ``encode_logs(records) -> ExportLogsServiceRequest``."""
    return _first_module(
        "opentelemetry.exporter.otlp.proto.common.log_encoder", "opentelemetry.exporter.otlp.proto.common._log_encoder"
    ).encode_logs


SDK_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"
"""The logger of the SDK's batch span/log processors ("Queue full, dropping …"), 1.40–1.45.2."""


def is_otel_logging_handler(handler: logging.Handler) -> bool:
    """Whether ``handler`` is an OTel logs handler (contrib's or the SDK's deprecated ``LoggingHandler``).

    By name, so checking never imports either module; ``tests`` hold it true for both classes.
    """
    kind = type(handler)
    return kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry")


# --- entry points ---------------------------------------------------------------------------------


def _probe_entry_points(fast: Callable[..., Any]) -> str | None:
    fast(group="opentelemetry_otelkit_probe")
    return None


def _otel_entry_points(**params: Any) -> Any:
    # The API's cached copy: the API itself has already read every entry point (context,
    # propagators), so otelkit's look-ups cost nothing more.
    from opentelemetry.util._importlib_metadata import entry_points

    return entry_points(**params)


_all_entry_points: list[Any] = []


def _stdlib_entry_points(**params: Any) -> Any:
    import importlib.metadata

    if not _all_entry_points:
        found: Any = importlib.metadata.entry_points()
        if isinstance(found, dict):  # Python 3.10/3.11: a dict of groups
            found = importlib.metadata.EntryPoints(ep for group in found.values() for ep in group)
        _all_entry_points.append(found)
    return _all_entry_points[0].select(**params)


ENTRY_POINTS = register(
    "entry-points", probe=_probe_entry_points, fast=_otel_entry_points, fallback=_stdlib_entry_points
)


def entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points(**params)``, read once per process."""
    return ENTRY_POINTS.get()(**params)


# --- the global providers -------------------------------------------------------------------------


def _proxy_classes() -> tuple[type, type, type]:
    from opentelemetry import trace
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    logs_internal = _first_module("opentelemetry._logs._internal")
    return trace.ProxyTracerProvider, _ProxyMeterProvider, logs_internal.ProxyLoggerProvider


def _probe_proxy_providers(fast: Callable[[str, Any, Any], bool]) -> str | None:
    from opentelemetry import metrics, trace

    apis = (trace.TracerProvider, metrics.MeterProvider, logs_api().LoggerProvider)
    for cls, api in zip(_proxy_classes(), apis, strict=True):
        if not issubclass(cls, api):
            return f"{cls.__name__} is not a {api.__name__}"
    return None


def _provider_unset_by_class(signal: str, current: Any, new: Any) -> bool:
    tracer, meter, logger = _proxy_classes()
    proxy = {"traces": tracer, "metrics": meter, "logs": logger}[signal]
    if not isinstance(current, proxy):
        return False
    _set_provider(signal, new)
    return True


def _provider_unset_by_setting(signal: str, current: Any, new: Any) -> bool:
    # The API refuses a second provider (with a warning) and keeps the first: set and look.
    _set_provider(signal, new)
    return _get_provider(signal) is new


def _set_provider(signal: str, provider: Any) -> None:
    from opentelemetry import metrics, trace

    if signal == "traces":
        trace.set_tracer_provider(provider)
    elif signal == "metrics":
        metrics.set_meter_provider(provider)
    else:
        logs_api().set_logger_provider(provider)


def _get_provider(signal: str) -> Any:
    from opentelemetry import metrics, trace

    if signal == "traces":
        return trace.get_tracer_provider()
    if signal == "metrics":
        return metrics.get_meter_provider()
    return logs_api().get_logger_provider()


PROXY_PROVIDERS = register(
    "proxy-providers",
    probe=_probe_proxy_providers,
    fast=_provider_unset_by_class,
    fallback=_provider_unset_by_setting,
)


def install_global_provider(signal: str, provider: Any) -> Any:
    """Make ``provider`` the global one for ``signal`` unless the app set one; returns the global one."""
    current = _get_provider(signal)
    if PROXY_PROVIDERS.get()(signal, current, provider):
        return provider
    return _get_provider(signal)


# --- instrumentation dependency conflicts ---------------------------------------------------------


def _probe_dependency_conflict(fast: Callable[..., None]) -> str | None:
    from opentelemetry.instrumentation.dependencies import DependencyConflict

    return missing(DependencyConflict, ("_log",))


def _log_conflict_as_contrib(exc: Any, logger: logging.Logger, name: str) -> None:
    # contrib 0.66: an error for a version conflict, debug when the library is not installed.
    exc.conflict._log(logger, name)


def _log_conflict_public(exc: Any, logger: logging.Logger, name: str) -> None:
    logger.debug("otelkit: skipping instrumentation %s: %s", name, exc)


DEPENDENCY_CONFLICT = register(
    "dependency-conflict",
    probe=_probe_dependency_conflict,
    fast=_log_conflict_as_contrib,
    fallback=_log_conflict_public,
)


def report_dependency_conflict(exc: BaseException, logger: logging.Logger, name: str) -> bool:
    """Log ``exc`` as the stock launcher does if it is a ``DependencyConflictError``; returns whether it was one."""
    try:
        from opentelemetry.instrumentation.dependencies import DependencyConflictError
    except ImportError:
        return False
    if not isinstance(exc, DependencyConflictError):
        return False
    DEPENDENCY_CONFLICT.get()(exc, logger, name)
    return True


# --- contrib Celery's histogram otelkit's MeterProvider drops ------------------------------------------


def _probe_skip_celery_histograms(fast: Callable[..., None]) -> str | None:
    from types import SimpleNamespace

    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.metrics import NoOpMeter

    contrib: Any = CeleryInstrumentor  # unannotated in contrib; called unbound on a stand-in
    reason = missing(contrib, ("create_celery_metrics", "_record_histograms"))
    if reason is not None:
        return reason
    recorded: list[tuple[Any, Any]] = []

    class _Histogram:
        def record(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
            recorded.append((amount, attributes))

    instrumentor: Any = SimpleNamespace(metrics=None, task_id_to_start_time={"t": 0.5})
    contrib.create_celery_metrics(instrumentor, NoOpMeter("otelkit.probe"))
    reason = differs("histograms", sorted(instrumentor.metrics or ()), ["flower.task.runtime.seconds"])
    if reason is not None:
        return reason
    instrumentor.metrics["flower.task.runtime.seconds"] = _Histogram()
    contrib._record_histograms(instrumentor, "t", {"task": "x"})
    fast(instrumentor, ("flower.task.runtime.seconds",))
    contrib._record_histograms(instrumentor, "t", {"task": "x"})
    return differs("records", recorded, [(0.5, {"task": "x"})])


def _skip_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    from opentelemetry.metrics import NoOpHistogram

    for name in names:
        if name in instrumentor.metrics:
            instrumentor.metrics[name] = NoOpHistogram(name)


def _keep_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    pass  # the SDK drops the records (the provider's views)


SKIP_CELERY_HISTOGRAMS = register(
    "celery-histograms",
    probe=_probe_skip_celery_histograms,
    fast=_skip_celery_histograms,
    fallback=_keep_celery_histograms,
)


def skip_dropped_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    """Give contrib's CeleryInstrumentor no-op histograms for ``names``, which its meter provider drops anyway.

    Each ``record()`` on a histogram a view drops still costs the SDK ~68,000 instructions (a
    Measurement, attribute cleaning, the view look-up); contrib records one per task.
    """
    SKIP_CELERY_HISTOGRAMS.get()(instrumentor, names)
