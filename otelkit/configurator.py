"""The launcher's configurator: SDK providers for the three signals, exporting over OTLP.

Under ``opentelemetry-instrument`` the launcher calls :class:`OtelkitConfigurator` once (the
distro makes sure it is the one chosen, even beside opentelemetry-distro). Programmatic users get
the same through :func:`otelkit.configure`.

Exporters follow the standard variables: ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (``otlp``,
``console``, ``none``, or any exporter entry point), ``OTEL_EXPORTER_OTLP[_{SIGNAL}]_PROTOCOL``
(``http/protobuf`` — otelkit's default — or ``grpc``), endpoints, headers, timeouts, and the
``OTEL_BSP_*``/``OTEL_BLRP_*``/``OTEL_METRIC_EXPORT_*`` batching variables. ``prometheus`` as a
metrics exporter is refused with one warning and replaced by OTLP: the app never opens a port of
its own; the collector's ``prometheus`` exporter is what Prometheus scrapes. (The providers are
built by :mod:`otelkit._runtime.providers`, the exporters chosen by :mod:`otelkit._runtime.exporters`.)
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["OtelkitConfigurator"]

_log = logging.getLogger("otelkit")


class OtelkitConfigurator:
    """The launcher's configurator (entry point ``opentelemetry_configurator: otelkit``)."""

    def configure(self, **kwargs: Any) -> None:
        from otelkit._runtime import setup

        try:
            setup.configure_from_launcher()
        except Exception as exc:  # never raise into the user's process
            _log.error("otelkit: configuration failed, telemetry is disabled: %s", exc)
