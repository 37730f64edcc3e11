"""otelkit: OpenTelemetry-native observability for FastAPI + Celery services.

Run an app under the launcher with otelkit as the distro::

    OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app

or call :func:`configure` once at start-up. All three signals leave the process over OTLP;
``otelkit render-collector`` writes the collector config that fans them out to Prometheus, Loki
and Jaeger (or any other backend).
"""

from __future__ import annotations

from otelkit._api import Telemetry, configure
from otelkit._logs import configure_structlog
from otelkit.errors import ConfigError, OtelkitError
from otelkit.settings import Settings

__all__ = [
    "ConfigError",
    "OtelkitError",
    "Settings",
    "Telemetry",
    "__version__",
    "configure",
    "configure_structlog",
]
__version__ = "0.1.0"
