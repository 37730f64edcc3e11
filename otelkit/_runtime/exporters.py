"""The exporters each signal gets, from the standard ``OTEL_*`` variables; errors are logged, not raised.

``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (``otlp``, ``console``, ``none``, or any exporter entry
point), ``OTEL_EXPORTER_OTLP[_{SIGNAL}]_PROTOCOL`` (``http/protobuf`` — otelkit's default — or
``grpc``, which needs the ``otelkit[grpc]`` extra: without it one warning says how to install it
and those signals go over http/protobuf), endpoints, headers and timeouts. ``prometheus`` as a
metrics exporter is refused with one warning and replaced by OTLP: the app never opens a port of
its own; the collector's ``prometheus`` exporter is what Prometheus scrapes. OTLP exporters are
built off the start-up path (:mod:`otelkit._runtime.deferred`); spans and logs leave through
otelkit's fast encoder (:mod:`otelkit._runtime.otlp.fast`) unless ``OTELKIT_FAST_EXPORT=false`` or
the installed SDK's exporter cannot take it (:mod:`otelkit._runtime.sdk_compat`), and secrets are
scrubbed on the way out (:mod:`otelkit._runtime.redact`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from otelkit._runtime import forksafe, sdk_compat
from otelkit.errors import ConfigError
from otelkit.settings import OTELKIT_FAST_EXPORT, Settings

__all__ = ["GRPC_INSTALL_HINT", "exporter_names", "exporters_for"]

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


GRPC_INSTALL_HINT = "pip install 'otelkit[grpc]'"

_grpc_reported: list[bool] = []


def _grpc_installed() -> bool:
    """Whether the OTLP/gRPC exporter (an extra: ``otelkit[grpc]``) and grpcio can be imported."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in ("grpc", "opentelemetry.exporter.otlp.proto.grpc"))
    except (ImportError, ValueError):
        return False


def _effective_protocol(signal: str) -> str:
    """``_protocol(signal)``, with ``grpc`` replaced by ``http/protobuf`` when the gRPC exporter is not installed.

    Reported once per process, naming every signal that asked for gRPC.
    """
    protocol = _protocol(signal)
    if protocol != "grpc" or _grpc_installed():
        return protocol
    if not _grpc_reported:
        _grpc_reported.append(True)
        asking = [s for s in _SIGNALS if _protocol_variable(s)[1] == "grpc" and _exports_otlp(s)]
        variables = sorted({_protocol_variable(s)[0] for s in asking})
        _log.warning(
            "otelkit: %s=grpc but the OTLP/gRPC exporter is not installed (%s); %s go over http/protobuf"
            " (default endpoint http://localhost:4318) until it is",
            "/".join(variables),
            GRPC_INSTALL_HINT,
            ", ".join(asking),
        )
    return "http/protobuf"


def _exports_otlp(signal: str) -> bool:
    return "otlp" in (n.strip().lower() for n in (_env(f"OTEL_{signal.upper()}_EXPORTER") or "otlp").split(","))


def _protocol_variable(signal: str) -> tuple[str, str]:
    """``(variable, raw value)`` that sets ``signal``'s protocol."""
    var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
    if _env(var):
        return var, _env(var)
    return "OTEL_EXPORTER_OTLP_PROTOCOL", _env("OTEL_EXPORTER_OTLP_PROTOCOL")


_BUILTIN_EXPORTERS = ("otlp", "console", "none")


def exporter_names(signal: str) -> list[str]:
    """The exporters selected for ``signal`` by ``OTEL_{SIGNAL}_EXPORTER`` (default ``otlp``).

    An unknown name (neither built in nor an installed exporter) is dropped with one error line; a
    value with no known name left means ``otlp``: junk never switches a signal off.
    """
    var = f"OTEL_{signal.upper()}_EXPORTER"
    raw = _env(var) or "otlp"
    names: list[str] = []
    unknown: list[str] = []
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
        if name not in _BUILTIN_EXPORTERS and not _installed_exporter(signal, name):
            unknown.append(name)
            continue
        if name not in names:
            names.append(name)
    if unknown:
        _log.error(
            "otelkit: unknown %s value %s; expected otlp, console, none or an installed exporter; %s — fix %s",
            var,
            ", ".join(repr(n) for n in unknown),
            f"exporting {signal} with {', '.join(names)}" if names else f"exporting {signal} with otlp instead",
            var,
        )
    return names or ["otlp"]


def _installed_exporter(signal: str, name: str) -> bool:
    from otelkit._runtime.sdk_compat import entry_points

    return bool(entry_points(group=f"opentelemetry_{signal}_exporter", name=name))


def _otlp_exporter(signal: str, settings: Settings | None = None) -> Any | None:
    """A deferred OTLP exporter for ``signal``.

    The protocol is checked now (endpoints and the other variables by :mod:`otelkit._runtime.envcheck`),
    so a bad value is reported at start-up; the exporter itself is built off the start-up path
    (:mod:`otelkit._runtime.deferred`).
    """
    protocol = _effective_protocol(signal)
    # One metrics batch per export interval: the SDK's encoder is cheap enough there.
    fast = protocol == "http/protobuf" and signal != "metrics" and _fast_export(settings)
    from otelkit._runtime import deferred

    if signal == "metrics":
        return deferred.DeferredMetricExporter(lambda: _create_otlp(signal, protocol, fast=False))
    if signal == "traces":
        from opentelemetry.sdk.trace.export import SpanExportResult

        failure: Any = SpanExportResult.FAILURE
    else:
        failure = sdk_compat.logs_sdk_export().LogRecordExportResult.FAILURE
    return deferred.DeferredExporter(signal, lambda: _create_otlp(signal, protocol, fast=fast), failure)


def _fast_export(settings: Settings | None) -> bool:
    if settings is not None:
        return settings.fast_export
    try:
        return Settings.from_env({OTELKIT_FAST_EXPORT: os.environ.get(OTELKIT_FAST_EXPORT, "")}).fast_export
    except ConfigError:
        return True  # already reported (and defaulted) with the other OTELKIT_* errors


def _create_otlp(signal: str, protocol: str, *, fast: bool) -> Any:
    """The real OTLP exporter; span and log exporters scrub secrets (:mod:`otelkit._runtime.redact`)."""
    from otelkit._runtime import redact, redact_exporters

    if fast:
        try:
            from otelkit._runtime.otlp import encode
            from otelkit._runtime.otlp import fast as fast_exporters
        except Exception as exc:  # the escape hatch must work even if otelkit's encoder cannot load
            _log.error("otelkit: fast OTLP export unavailable (%s); using the SDK's exporter for %s", exc, signal)
        else:
            # Only where the installed SDK's exporter takes otelkit's encoder and encodes alike (its
            # probe runs now, on the thread building the exporter; :mod:`otelkit._runtime.sdk_compat`).
            fast_class: Any
            path: Any
            fast_class, path = (
                (fast_exporters.FastOTLPSpanExporter, encode.ENCODE_SPANS)
                if signal == "traces"
                else (fast_exporters.FastOTLPLogExporter, encode.ENCODE_LOGS)
            )
            if path.get() is not None:
                # Redaction happens while encoding: no copy of the span, no second pass.
                exporter = fast_class(
                    attribute_filter=redact.redact_attributes,
                    text_filter=redact.redact_body,
                    paced=True,
                    **_lean_transport(signal),
                )
                return forksafe.track(exporter)
    exporter = forksafe.track(_sdk_otlp(signal, protocol))
    if signal == "traces":
        return redact_exporters.RedactingSpanExporter(exporter)
    if signal == "logs":
        return redact_exporters.RedactingLogRecordExporter(exporter)
    return exporter


def _sdk_otlp(signal: str, protocol: str) -> Any:
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter()
        return sdk_compat.otlp_log_exporter_module("grpc").OTLPLogExporter()
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

        return HTTPSpanExporter(**_lean_transport(signal))
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HTTPMetricExporter

        return HTTPMetricExporter(**_lean_transport(signal))
    return sdk_compat.otlp_log_exporter_module().OTLPLogExporter(**_lean_transport(signal))


_PROXY_VARIABLES = frozenset(("http_proxy", "https_proxy", "all_proxy"))


def _lean_transport(signal: str) -> dict[str, Any]:
    """``{"_transport": otelkit's transport}`` for a plain-HTTP endpoint, else ``{}`` (the SDK's requests).

    The SDK's OTLP/HTTP exporters post through requests: ~40 ms of start-up to import it, and ~0.4
    ms of CPU a post (it re-reads ~/.netrc and the proxy variables every time) on the thread that
    competes with requests for the core. Over plain HTTP with no proxy variable and no
    credential-provider session nothing of requests is used, so otelkit hands the exporter its
    ``http.client`` transport (~0.07 ms a post, the body sent in paced chunks:
    :mod:`otelkit._runtime.sdk_compat._transport`). HTTPS keeps requests (its CA bundle and
    ``REQUESTS_CA_BUNDLE``), and so do SDKs before 1.45 (``lean-transport`` in
    :mod:`otelkit._runtime.sdk_compat`).
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
    return sdk_compat.lean_transport()


def _console_exporter(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if signal == "metrics":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    return sdk_compat.logs_sdk_export().ConsoleLogRecordExporter()


def _entry_point_exporter(signal: str, name: str) -> Any | None:
    from otelkit._runtime.sdk_compat import entry_points

    group = f"opentelemetry_{signal}_exporter" if signal != "traces" else "opentelemetry_traces_exporter"
    for ep in entry_points(group=group, name=name):
        try:
            return forksafe.track(ep.load()())
        except Exception as exc:
            _log.error("otelkit: exporter %r for %s could not be created: %s", name, signal, exc)
            return None
    return None  # exporter_names() only returns installed names


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
