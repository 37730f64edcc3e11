"""``otelkit.configure()`` and the shared setup path of the launcher and programmatic use."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from otelkit import _asgi, _logs
from otelkit._runtime import imports, shutdown
from otelkit.settings import Settings

__all__ = ["Telemetry", "configure"]

_log = logging.getLogger("otelkit")
_lock = threading.RLock()
_state: dict[str, Any] = {}


@dataclass(frozen=True)
class Telemetry:
    """What :func:`configure` set up: the three SDK providers and the resolved settings."""

    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    settings: Settings

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export everything buffered now; at most ``timeout`` seconds (default OTELKIT_SHUTDOWN_TIMEOUT)."""
        return shutdown.flush_all(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and shut down all three providers, bounded in time. Also runs at process exit."""
        return shutdown.shutdown_all(timeout)


def _lenient_settings() -> Settings:
    """Settings for code running on its own in the user's process: a bad value is logged, not raised."""
    from otelkit.errors import ConfigError

    env = dict(os.environ)
    while True:
        try:
            return Settings.from_env(env)
        except ConfigError as exc:
            _log.error("otelkit: %s; using its default", exc)
            bad = getattr(exc, "variable", None)
            if bad not in env:
                return Settings()
            env.pop(bad)


def _setup(settings: Settings) -> Telemetry:
    from otelkit import configurator

    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        from opentelemetry import _logs as otel_logs
        from opentelemetry import metrics, trace

        telemetry = Telemetry(
            trace.get_tracer_provider(), metrics.get_meter_provider(), otel_logs.get_logger_provider(), settings
        )
    else:
        tracer_provider, meter_provider, logger_provider = configurator.setup(settings)
        telemetry = Telemetry(tracer_provider, meter_provider, logger_provider, settings)
    _state["telemetry"] = telemetry
    return telemetry


def configure_from_launcher() -> None:
    """Called by the launcher's configurator, after the distro set the OTEL_* defaults."""
    with _lock:
        if "telemetry" in _state:
            return
        _state["launcher"] = True
        _setup(_lenient_settings())


def post_instrument() -> None:
    """The launcher's last step (entry point ``opentelemetry_post_instrument: otelkit``).

    The launcher runs every installed post-instrument hook whatever the distro, so this acts only
    when otelkit's configurator set the process up.
    """
    telemetry: Telemetry | None = _state.get("telemetry")
    if telemetry is None or not _state.get("launcher"):
        return
    try:
        if telemetry.settings.gc_freeze:
            tune_gc()
    except Exception as exc:
        _log.error("otelkit: post-instrumentation step failed: %s", exc)


# Objects the GC tracks per queued span (span, attributes, context, readable copy, …), measured on
# SDK 1.45; a log record holds fewer. Rounded up.
_TRACKED_PER_ITEM = 12


def tune_gc() -> None:
    """Keep otelkit's own footprint out of the app's garbage collections (``OTELKIT_GC_FREEZE``).

    ``gc.freeze()``: the imported libraries leave the collector's generations, so full collections
    under load scan only what the app allocates. And the generation-0 threshold is raised by what
    otelkit's batch queues hold between two exports (~12 tracked objects per span or log record,
    a batch of each): otherwise those objects alone would trigger a young collection every ~60
    requests (p99 latency). Never lowered.
    """
    import gc

    gc.freeze()
    batches = _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) + _env_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512)
    threshold0, *older = gc.get_threshold()
    wanted = 700 + _TRACKED_PER_ITEM * batches
    if threshold0 and threshold0 < wanted:  # 0: the app disabled automatic collection
        gc.set_threshold(wanted, *older)


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default  # the SDK reports the bad value itself
    return value if 0 < value <= 100_000 else default


def load_instrumentor(name: str, kwargs: dict[str, Any]) -> bool:
    """Instrument ``name`` otelkit's way. Returns False when the launcher's default way is right."""
    telemetry: Telemetry | None = _state.get("telemetry")
    settings = telemetry.settings if telemetry else Settings()
    if name in ("fastapi", "starlette"):
        if settings.http_instrumentation == "otelkit":
            if name == "fastapi":
                _instrument_fastapi()
            return True  # contrib's FastAPI/Starlette instrumentors would record every request twice
        if name == "fastapi":
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor().instrument(**{"exclude_spans": ["send", "receive"], **kwargs})
            return True
        return False
    if name == "logging":
        _instrument_logging(kwargs)
        return True
    if name == "celery":
        import importlib.util

        if importlib.util.find_spec("celery") is None:
            raise ModuleNotFoundError("No module named 'celery'", name="celery")  # the launcher skips it
        # Instrumented the moment the app (or the celery command) imports Celery, not at start-up:
        # a web process that never enqueues a task does not pay ~0.2 s importing Celery.
        imports.when_imported("celery", lambda _module: _instrument_celery(kwargs))
        return True
    if name == "system_metrics":
        # Opt-in (OTELKIT_SYSTEM_METRICS), with otelkit's selection of metrics (otelkit.metrics.SYSTEM_METRICS).
        if settings.system_metrics:
            from otelkit.metrics import instrument_system_metrics

            instrument_system_metrics()
        return True
    return False


def _instrument_fastapi() -> None:
    _asgi.instrument_fastapi()


def _instrument_logging(kwargs: dict[str, Any]) -> None:
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    instrumentor = LoggingInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)
    handler = _logs.otel_handler()
    if handler is not None:
        _logs.prepare_otel_handler(handler)


def _instrument_celery(kwargs: dict[str, Any]) -> None:
    """Spans from contrib's CeleryInstrumentor, then otelkit's hooks (metrics, log context, flushes).

    Raises ImportError when Celery or the instrumentation is missing (the launcher skips it).
    """
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from otelkit import celery as otelkit_celery

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)
    otelkit_celery.install()


def _instrument_all(settings: Settings) -> None:
    """What the launcher's instrumentor loop does, for programmatic use."""
    import importlib.util

    if importlib.util.find_spec("fastapi") is not None:
        load_instrumentor("fastapi", {})
    _instrument_logging({})
    if importlib.util.find_spec("celery") is not None:
        imports.when_imported("celery", lambda _module: _instrument_celery({}))
    if settings.system_metrics:
        from otelkit.metrics import instrument_system_metrics

        instrument_system_metrics()


def configure(
    *,
    service_name: str | None = None,
    environment: str | None = None,
    log_level: str | None = None,
    log_console: str | None = None,
    http_instrumentation: str | None = None,
    shutdown_timeout: float | None = None,
    system_metrics: bool | None = None,
    instrument: bool = True,
) -> Telemetry:
    """Set up traces, metrics and logs over OTLP, as the launcher with otelkit as distro would.

    Call it once, early (before the app is created is best). Later calls return the first result
    unchanged, so it is safe under ``opentelemetry-instrument`` too. Arguments override the
    matching ``OTELKIT_*`` variables; everything else follows the standard ``OTEL_*`` variables.

    Args:
        service_name: ``service.name``; default ``OTEL_SERVICE_NAME`` or one derived from the command.
        environment: ``production`` (JSON console logs) or ``development`` (pretty console logs).
        log_level: root logger level (default INFO).
        log_console: ``auto``, ``json``, ``pretty`` or ``off``.
        http_instrumentation: ``otelkit`` (lean, default) or ``contrib``.
        shutdown_timeout: seconds flushing may take at exit.
        system_metrics: emit process/system metrics.
        instrument: also instrument FastAPI, logging and Celery (default True).

    Raises:
        ConfigError: an argument or ``OTELKIT_*`` variable is invalid.
    """
    from otelkit.distro import apply_env_defaults

    with _lock:
        existing: Telemetry | None = _state.get("telemetry")
        if existing is not None:
            return existing
        settings = Settings.from_env(
            environment=environment,
            log_level=log_level,
            log_console=log_console,
            http_instrumentation=http_instrumentation,
            shutdown_timeout=shutdown_timeout,
            system_metrics=system_metrics,
        )
        apply_env_defaults(service_name=service_name)
        telemetry = _setup(settings)
        if instrument:
            _instrument_all(settings)
        return telemetry
