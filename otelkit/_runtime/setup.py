"""``otelkit.configure()`` and the shared setup path of the launcher and programmatic use."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from otelkit._runtime import shutdown, state
from otelkit.settings import Settings

__all__ = ["Telemetry", "configure", "configure_from_launcher", "post_instrument"]

_log = logging.getLogger("otelkit")
_lock = threading.RLock()


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


def _setup(settings: Settings, service_name: str | None = None) -> Telemetry:
    from otelkit._runtime import providers

    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        from opentelemetry import _logs as otel_logs
        from opentelemetry import metrics, trace

        telemetry = Telemetry(
            trace.get_tracer_provider(), metrics.get_meter_provider(), otel_logs.get_logger_provider(), settings
        )
    else:
        tracer_provider, meter_provider, logger_provider = providers.setup(settings, service_name=service_name)
        telemetry = Telemetry(tracer_provider, meter_provider, logger_provider, settings)
    state.set_telemetry(telemetry)
    return telemetry


def configure_from_launcher() -> None:
    """Called by the launcher's configurator, after the distro set the OTEL_* defaults."""
    with _lock:
        if state.telemetry() is not None:
            return
        state.mark_launcher()
        _setup(state.lenient_settings())


def post_instrument() -> None:
    """The launcher's last step (entry point ``opentelemetry_post_instrument: otelkit``).

    The launcher runs every installed post-instrument hook whatever the distro, so this acts only
    when otelkit's configurator set the process up.
    """
    telemetry = state.telemetry()
    if telemetry is None or not state.from_launcher():
        return
    try:
        if telemetry.settings.gc_freeze:
            from otelkit._runtime.gctune import tune_gc

            tune_gc()
    except Exception as exc:
        _log.error("otelkit: post-instrumentation step failed: %s", exc)


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
        service_name: ``service.name`` of this process (it beats ``OTEL_SERVICE_NAME`` and is not
            written into the environment, so child processes do not inherit it); default
            ``OTEL_SERVICE_NAME``, else a name derived from the command line.
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
    from otelkit._runtime.env import apply_env_defaults

    with _lock:
        existing = state.telemetry()
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
        apply_env_defaults(derive_service_name=not service_name)
        telemetry = _setup(settings, service_name)
        if instrument:
            from otelkit._runtime.instrument import instrument_all

            instrument_all(settings)
        return telemetry
