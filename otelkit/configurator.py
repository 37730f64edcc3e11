"""SDK providers for the three signals, exporting over OTLP, and the launcher's configurator.

Under ``opentelemetry-instrument`` the launcher calls :class:`OtelkitConfigurator` once (the
distro makes sure it is the one chosen, even beside opentelemetry-distro). Programmatic users get
the same through :func:`otelkit.configure`.

Exporters follow the standard variables: ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (``otlp``,
``console``, ``none``, or any exporter entry point), ``OTEL_EXPORTER_OTLP[_{SIGNAL}]_PROTOCOL``
(``http/protobuf`` — otelkit's default — or ``grpc``), endpoints, headers, timeouts, and the
``OTEL_BSP_*``/``OTEL_BLRP_*``/``OTEL_METRIC_EXPORT_*`` batching variables. ``prometheus`` as a
metrics exporter is refused with one warning and replaced by OTLP: the app never opens a port of
its own; the collector's ``prometheus`` exporter is what Prometheus scrapes.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from otelkit import _logs
from otelkit._runtime import shutdown
from otelkit.errors import ConfigError
from otelkit.settings import OTELKIT_FAST_EXPORT, Settings

__all__ = ["OtelkitConfigurator", "build_providers"]

_log = logging.getLogger("otelkit")

_SIGNALS = ("traces", "metrics", "logs")
_PROTOCOLS = ("http/protobuf", "grpc")


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _protocol(signal: str) -> str:
    var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
    raw = _env(var) or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
    if not _env(var):
        var = "OTEL_EXPORTER_OTLP_PROTOCOL"
    if not raw:
        return "http/protobuf"
    if raw in _PROTOCOLS:
        return raw
    _log.error(
        "otelkit: invalid %s=%r; expected one of: %s; using http/protobuf — fix or unset %s",
        var,
        raw,
        ", ".join(_PROTOCOLS),
        var,
    )
    return "http/protobuf"


def _endpoint_ok(signal: str) -> bool:
    for var in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        raw = _env(var)
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            _log.error(
                "otelkit: invalid %s=%r; expected a URL such as http://127.0.0.1:4318 (scheme http or https"
                " and a host); %s are not exported until it is fixed",
                var,
                raw,
                signal,
            )
            return False
        try:
            _ = parts.port
        except ValueError:
            _log.error(
                "otelkit: invalid %s=%r; the port is not a number from 1 to 65535; %s are not exported until"
                " it is fixed",
                var,
                raw,
                signal,
            )
            return False
        return True
    return True


def exporter_names(signal: str) -> list[str]:
    """The exporters selected for ``signal`` by ``OTEL_{SIGNAL}_EXPORTER`` (default ``otlp``)."""
    var = f"OTEL_{signal.upper()}_EXPORTER"
    raw = _env(var) or "otlp"
    names: list[str] = []
    for name in (n.strip().lower() for n in raw.split(",")):
        if not name:
            continue
        if name == "none":
            return []
        if signal == "metrics" and name == "prometheus":
            _log.warning(
                "otelkit: %s=prometheus refused: the app does not serve /metrics; it exports OTLP and the"
                " collector's prometheus exporter serves Prometheus (see `otelkit render-collector`);"
                " exporting OTLP instead — set %s=otlp to silence this",
                var,
                var,
            )
            name = "otlp"
        if name not in names:
            names.append(name)
    return names


def _otlp_exporter(signal: str, settings: Settings | None = None) -> Any | None:
    """A deferred OTLP exporter for ``signal`` (None if its endpoint is malformed).

    Endpoint and protocol are checked now, so a bad value is reported at start-up; the exporter
    itself is built off the start-up path (:mod:`otelkit._runtime.deferred`).
    """
    if not _endpoint_ok(signal):
        return None
    protocol = _protocol(signal)
    # One metrics batch per export interval: the SDK's encoder is cheap enough there.
    fast = protocol == "http/protobuf" and signal != "metrics" and _fast_export(settings)
    from otelkit._runtime import deferred

    if signal == "metrics":
        return deferred.DeferredMetricExporter(lambda: _create_otlp(signal, protocol, fast=False))
    if signal == "traces":
        from opentelemetry.sdk.trace.export import SpanExportResult as Result
    else:
        from opentelemetry.sdk._logs.export import LogRecordExportResult as Result  # type: ignore[assignment]
    return deferred.DeferredExporter(signal, lambda: _create_otlp(signal, protocol, fast=fast), Result.FAILURE)


def _fast_export(settings: Settings | None) -> bool:
    if settings is not None:
        return settings.fast_export
    try:
        return Settings.from_env({OTELKIT_FAST_EXPORT: os.environ.get(OTELKIT_FAST_EXPORT, "")}).fast_export
    except ConfigError:
        return True  # already reported (and defaulted) with the other OTELKIT_* errors


def _create_otlp(signal: str, protocol: str, *, fast: bool) -> Any:
    """The real OTLP exporter; span and log exporters scrub secrets (:mod:`otelkit._runtime.redact`)."""
    from otelkit._runtime import redact

    if fast:
        try:
            from otelkit._runtime.otlp.fast import FastOTLPLogExporter, FastOTLPSpanExporter
        except Exception as exc:  # the escape hatch must work even if otelkit's encoder cannot load
            _log.error("otelkit: fast OTLP export unavailable (%s); using the SDK's exporter for %s", exc, signal)
        else:
            # Redaction happens while encoding: no copy of the span, no second pass.
            cls = FastOTLPSpanExporter if signal == "traces" else FastOTLPLogExporter
            return cls(attribute_filter=redact.redact_attributes, paced=True, **_lean_transport(signal))
    exporter = _sdk_otlp(signal, protocol)
    if signal == "traces":
        return redact.RedactingSpanExporter(exporter)
    if signal == "logs":
        return redact.RedactingLogRecordExporter(exporter)
    return exporter


def _sdk_otlp(signal: str, protocol: str) -> Any:
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter()
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

        return HTTPSpanExporter(**_lean_transport(signal))
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPMetricExporter

        return HTTPMetricExporter(**_lean_transport(signal))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HTTPLogExporter

    return HTTPLogExporter(**_lean_transport(signal))


_PROXY_VARIABLES = frozenset(("http_proxy", "https_proxy", "all_proxy"))


def _lean_transport(signal: str) -> dict[str, Any]:
    """``{"_transport": urllib3 transport}`` for a plain-HTTP endpoint, else ``{}`` (the SDK's requests).

    The SDK's OTLP/HTTP exporters post through requests: ~40 ms of start-up to import it, and per
    export twice urllib3's CPU (it re-reads ~/.netrc and the proxy variables every time) on the
    thread that competes with requests for the core. Over plain HTTP with no proxy variable and no
    credential-provider session nothing of requests is used, so otelkit hands the exporter the
    SDK's own urllib3 transport. HTTPS keeps requests (its CA bundle and ``REQUESTS_CA_BUNDLE``).
    """
    env = os.environ
    endpoint = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not (endpoint or "http://localhost:4318").strip().lower().startswith("http://"):
        return {}
    if env.get("OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER") or env.get(
        f"OTEL_PYTHON_EXPORTER_OTLP_HTTP_{signal.upper()}_CREDENTIAL_PROVIDER"
    ):
        return {}
    if any(name.lower() in _PROXY_VARIABLES and value for name, value in env.items()):
        return {}
    try:
        from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport

        return {"_transport": Urllib3HTTPTransport(verify=True)}
    except Exception as exc:  # another SDK version: its default transport is fine
        _log.debug("otelkit: urllib3 transport unavailable (%s); the SDK's default is used", exc)
        return {}


def _console_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if signal == "metrics":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ConsoleLogRecordExporter()


def _entry_point_exporter(signal: str, name: str) -> Any | None:
    from opentelemetry.util._importlib_metadata import entry_points

    group = f"opentelemetry_{signal}_exporter" if signal != "traces" else "opentelemetry_traces_exporter"
    for ep in entry_points(group=group, name=name):
        try:
            return ep.load()()
        except Exception as exc:
            _log.error("otelkit: exporter %r for %s could not be created: %s", name, signal, exc)
            return None
    _log.error(
        "otelkit: unknown OTEL_%s_EXPORTER value %r; expected otlp, console, none or an installed exporter;"
        " %s are not exported to it",
        signal.upper(),
        name,
        signal,
    )
    return None


def exporters_for(signal: str, settings: Settings | None = None) -> list[Any]:
    """Create the exporters ``OTEL_{SIGNAL}_EXPORTER`` asks for; errors are logged, not raised."""
    result = []
    for name in exporter_names(signal):
        try:
            if name == "otlp":
                exporter = _otlp_exporter(signal, settings)
            elif name == "console":
                exporter = _console_exporter(signal)
            else:
                exporter = _entry_point_exporter(signal, name)
        except Exception as exc:  # a broken exporter must not take the app down
            _log.error("otelkit: creating the %s exporter for %s failed: %s", name, signal, exc)
            exporter = None
        if exporter is not None:
            result.append(exporter)
    return result


def _resource(settings: Settings) -> Any:
    from opentelemetry.sdk.resources import Resource

    from otelkit import __version__

    attributes: dict[str, Any] = {
        "telemetry.distro.name": "otelkit",
        "telemetry.distro.version": __version__,
    }
    if "deployment.environment" not in _env("OTEL_RESOURCE_ATTRIBUTES"):
        attributes["deployment.environment.name"] = settings.environment
    return Resource.create(attributes)


def build_providers(settings: Settings, *, warm_after: float | None = None) -> tuple[Any, Any, Any]:
    """Create tracer, meter and logger providers exporting as the environment says.

    Args:
        settings: otelkit's settings.
        warm_after: build the deferred OTLP exporters this many seconds from now, on a background
            thread (:func:`otelkit._runtime.deferred.warm_later`); None: at their first export.

    Returns:
        ``(tracer_provider, meter_provider, logger_provider)``; not yet set as globals.
    """
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otelkit._runtime import fasthist, redact

    resource = _resource(settings)
    # Secrets are scrubbed from span and log attributes on the export thread, off the request path.
    redact.configure(settings.redact_keys)
    # shutdown_on_exit=False: otelkit's own exit hook shuts them down bounded in time (_shutdown).
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    span_exporters = exporters_for("traces", settings)
    metric_exporters = exporters_for("metrics", settings)
    log_exporters = exporters_for("logs", settings)
    for exporter in span_exporters:
        if not _redacts(exporter):
            exporter = redact.RedactingSpanExporter(exporter)
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))

    # The HTTP duration histogram is pre-aggregated on the request path and merged into exports.
    _register_fast_histograms()
    readers = [
        PeriodicExportingMetricReader(fasthist.wrap_exporter(exporter, resource)) for exporter in metric_exporters
    ]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in log_exporters:
        if not _redacts(exporter):
            exporter = redact.RedactingLogRecordExporter(exporter)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    if warm_after is not None:
        from otelkit._runtime import deferred

        deferred.warm_later([*span_exporters, *metric_exporters, *log_exporters], warm_after)
    return tracer_provider, meter_provider, logger_provider


def _redacts(exporter: Any) -> bool:
    return getattr(exporter, "redacts", False) or getattr(exporter, "_attribute_filter", None) is not None


def _register_fast_histograms() -> None:
    from otelkit import _asgi

    _asgi.register_fast_duration()


def _set_globals(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> tuple[Any, Any, Any]:
    from opentelemetry import _logs as otel_logs
    from opentelemetry import metrics, trace

    current = trace.get_tracer_provider()
    if type(current).__name__ == "ProxyTracerProvider":
        trace.set_tracer_provider(tracer_provider)
    else:
        _log.warning("otelkit: a tracer provider was already set by the app; otelkit uses it as is")
        tracer_provider = current
    current_m = metrics.get_meter_provider()
    if type(current_m).__name__ == "_ProxyMeterProvider":
        metrics.set_meter_provider(meter_provider)
    else:
        _log.warning("otelkit: a meter provider was already set by the app; otelkit uses it as is")
        meter_provider = current_m
    current_l = otel_logs.get_logger_provider()
    if type(current_l).__name__ == "ProxyLoggerProvider":
        otel_logs.set_logger_provider(logger_provider)
    else:
        _log.warning("otelkit: a logger provider was already set by the app; otelkit uses it as is")
        logger_provider = current_l
    return tracer_provider, meter_provider, logger_provider


def setup(settings: Settings) -> tuple[Any, Any, Any]:
    """Providers as globals, console logging, root level and the bounded exit hooks."""
    # Console first: errors while building exporters must be visible.
    _logs.set_root_level(settings.log_level)
    _logs.install_console(settings.console_format, settings.export_error_interval)
    _logs.throttle_sdk_queue_warnings(settings.export_error_interval)
    from otelkit._runtime import deferred

    providers = _set_globals(*build_providers(settings, warm_after=deferred.WARM_AFTER))
    shutdown.register(list(providers), settings.shutdown_timeout)
    shutdown.install_signal_handlers()
    # structlog (when the app uses it) is bridged to stdlib as soon as the app imports it.
    from otelkit._runtime import imports

    imports.when_imported("structlog", lambda _module: _logs.configure_structlog())
    return providers


class OtelkitConfigurator:
    """The launcher's configurator (entry point ``opentelemetry_configurator: otelkit``)."""

    def configure(self, **kwargs: Any) -> None:
        from otelkit import _api

        try:
            _api.configure_from_launcher()
        except Exception as exc:  # never raise into the user's process
            _log.error("otelkit: configuration failed, telemetry is disabled: %s", exc)
