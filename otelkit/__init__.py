"""otelkit: OpenTelemetry-native observability for FastAPI + Celery services.

Run an app under the launcher with otelkit as the distro::

    OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app

or call :func:`configure` once at start-up. All three signals leave the process over OTLP;
``otelkit render-collector`` writes the collector config that fans them out to Prometheus, Loki
and Jaeger (or any other backend).

Public API, all re-exported here:

- set-up: :func:`configure`, :class:`Telemetry`, :class:`Settings`, :func:`configure_structlog`;
- health endpoints: :class:`Health` (the default registry is ``otelkit.health.health``:
  ``app.include_router(health.router())``; ready-made checks in :mod:`otelkit.health`);
- business metrics: :func:`counter`, :func:`histogram`, :func:`up_down_counter`, :func:`gauge`;
- jobs and external calls: :func:`monitor` (decorator and context manager);
- request correlation: :func:`get_request_id`;
- errors: :class:`OtelkitError`, :class:`ConfigError`.

Testing helpers live in :mod:`otelkit.testing`; Celery worker hooks in :mod:`otelkit.celery`.
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:
    from otelkit._runtime.logs.structlog_bridge import configure_structlog
    from otelkit._runtime.monitor import monitor
    from otelkit._runtime.setup import Telemetry, configure
    from otelkit.context import get_request_id
    from otelkit.errors import ConfigError, OtelkitError
    from otelkit.health import Health
    from otelkit.metrics import counter, gauge, histogram, up_down_counter
    from otelkit.settings import Settings

# Everything is imported on first use: ``otelkit-instrument`` and the launcher import this package
# at every start-up, before the SDK is needed, and an app that never touches the health router or
# the metric helpers should not pay for them.
_LAZY = {
    "Telemetry": "otelkit._runtime.setup",
    "configure": "otelkit._runtime.setup",
    "configure_structlog": "otelkit._runtime.logs.structlog_bridge",
    "get_request_id": "otelkit.context",
    "ConfigError": "otelkit.errors",
    "OtelkitError": "otelkit.errors",
    "Settings": "otelkit.settings",
    "Health": "otelkit.health",
    "counter": "otelkit.metrics",
    "gauge": "otelkit.metrics",
    "histogram": "otelkit.metrics",
    "up_down_counter": "otelkit.metrics",
    "monitor": "otelkit._runtime.monitor",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otelkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ConfigError",
    "Health",
    "OtelkitError",
    "Settings",
    "Telemetry",
    "__version__",
    "configure",
    "configure_structlog",
    "counter",
    "gauge",
    "get_request_id",
    "histogram",
    "monitor",
    "up_down_counter",
]
__version__ = "0.1.0"


def _check_env() -> None:
    # Before the SDK is imported: some bad OTEL_* values make its modules raise at import time.
    import os

    if not any(name.startswith("OTEL_") for name in os.environ):
        return  # nothing to check: a plain import stays free of logging, re and the check itself
    try:
        from otelkit._runtime import envcheck

        envcheck.check()
    except Exception:  # code running on its own in the user's process never raises
        from otelkit._runtime import failures

        failures.report("checking the OTEL_* variables failed")


_check_env()
