"""The one owner of the set-up's process-wide state; every other module reads and writes it through here.

What a process holds once otelkit set it up:

- the :class:`~otelkit._runtime.setup.Telemetry` that :func:`otelkit.configure` or the launcher
  created (at most one per process), and whether the launcher created it;
- the OTel log handler otelkit prepared (filtered, attached to non-propagating loggers), which
  the Celery hooks give their task fields to;
- the lean HTTP instrumentation of FastAPI and the ``FastAPI.__call__`` it replaced.

Code that runs on its own in the user's process reads the settings through :func:`settings`: the
set-up's, or — before any set-up — the environment's, leniently (a bad ``OTELKIT_*`` value is
logged and defaulted, never raised).

Caches and registries private to one module (the redactor, the exporters the fork hook resets,
import hooks, the OTEL_* values already reported) stay in that module.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from otelkit.errors import ConfigError
from otelkit.settings import Settings

if TYPE_CHECKING:
    from otelkit._runtime.http.asgi import HTTPInstrumentation
    from otelkit._runtime.setup import Telemetry

__all__ = [
    "clear_http_instrumentation",
    "from_launcher",
    "http_instrumentation",
    "lenient_settings",
    "mark_launcher",
    "otel_log_handler",
    "set_http_instrumentation",
    "set_otel_log_handler",
    "set_telemetry",
    "settings",
    "telemetry",
]

_log = logging.getLogger("otelkit")

_telemetry: Telemetry | None = None
_launcher = False
_otel_log_handler: logging.Handler | None = None
_http: HTTPInstrumentation | None = None
_http_original: Any = None


def telemetry() -> Telemetry | None:
    """What :func:`otelkit.configure` (or the launcher) set up in this process, or None."""
    return _telemetry


def set_telemetry(value: Telemetry) -> None:
    global _telemetry
    _telemetry = value


def mark_launcher() -> None:
    """Record that the launcher (not a call to :func:`otelkit.configure`) is setting this process up."""
    global _launcher
    _launcher = True


def from_launcher() -> bool:
    return _launcher


def lenient_settings() -> Settings:
    """Settings for code running on its own in the user's process: a bad value is logged, not raised."""
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


def settings() -> Settings:
    """The settings of the running set-up, else the environment's (:func:`lenient_settings`)."""
    current = _telemetry
    return current.settings if current is not None else lenient_settings()


def otel_log_handler() -> logging.Handler | None:
    """The OTel log handler otelkit prepared (:func:`otelkit._runtime.logs.handler.prepare_otel_handler`)."""
    return _otel_log_handler


def set_otel_log_handler(handler: logging.Handler) -> None:
    global _otel_log_handler
    _otel_log_handler = handler


def http_instrumentation() -> HTTPInstrumentation | None:
    """The lean FastAPI instrumentation installed in this process, or None."""
    return _http


def set_http_instrumentation(instrumentation: HTTPInstrumentation, original_call: Any) -> None:
    """Record the installed instrumentation and the ``FastAPI.__call__`` it wraps."""
    global _http, _http_original
    _http = instrumentation
    _http_original = original_call


def clear_http_instrumentation() -> Any:
    """Forget the instrumentation; returns the original ``FastAPI.__call__`` (None if none was installed)."""
    global _http, _http_original
    original, _http, _http_original = _http_original, None, None
    return original
