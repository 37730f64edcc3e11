"""The launcher's distro: defaults for the standard ``OTEL_*`` variables and instrumentor kwargs.

Run an app as ``OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app``. Every
default below is set with ``os.environ.setdefault``: a value in the user's environment always wins.

===========================================  ===========================================================
``OTEL_TRACES_EXPORTER`` / ``METRICS`` / ``LOGS``  ``otlp`` for all three signals
``OTEL_EXPORTER_OTLP_PROTOCOL``               ``http/protobuf`` (fork-friendlier than grpc)
``OTEL_SEMCONV_STABILITY_OPT_IN``             ``http``: stable HTTP semconv (seconds, ``http.route``)
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``         the health endpoints, as anchored regexes
``OTEL_PYTHON_CONFIGURATOR``                  ``otelkit``: wins over opentelemetry-distro if installed
``OTEL_SERVICE_NAME``                         derived from the command (``uvicorn shop.main:app`` →
                                              ``shop``, ``celery -A shop worker`` → ``shop-worker``)
===========================================  ===========================================================

Instrumentors pass through :meth:`OtelkitDistro.load_instrumentor`, the only place the launcher
lets a distro choose their arguments: FastAPI gets otelkit's lean instrumentation (or the contrib
one without its send/receive spans), the logging handler gets otelkit's filters. Every other
instrumentation whose library is installed but not imported yet (httpx, redis, requests,
sqlalchemy…) is applied the moment the app first imports that library: start-up does not import
every library some instrumentation exists for. Failures are logged and never raised into the
user's process.
"""

from __future__ import annotations

import logging
from typing import Any

# The module opts out of type checking (a file-level "type: ignore"): mypy sees no BaseDistro in it.
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from otelkit._runtime.env import apply_env_defaults

__all__ = ["OtelkitDistro"]

_log = logging.getLogger("otelkit")


class OtelkitDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is Any to mypy (above)
    """The launcher's distro (entry point ``opentelemetry_distro: otelkit``)."""

    def _configure(self, **kwargs: Any) -> None:
        try:
            apply_env_defaults()
        except Exception as exc:
            _log.error("otelkit: setting OTEL_* defaults failed: %s", exc)

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        from otelkit._runtime.instrument import instrument_entry_point

        instrument_entry_point(entry_point, kwargs)
