"""The backend catalogue: which exporter each ``--traces/--metrics/--logs`` choice becomes.

Defaults point at docker-compose service names (``jaeger``, ``tempo``, ``loki``, ``prometheus``);
every push backend takes its endpoint from ``--<signal>-endpoint``. ``otlp`` is OTLP/HTTP with a
base URL: the exporter appends ``/v1/<signal>``, which is what Loki (``…/otlp``) and Prometheus 3
(``…/api/v1/otlp``) expect, so one backend covers vendors and both of those.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from otelkit.errors import UsageError

__all__ = ["BACKENDS", "Backend", "backend_names", "parse_backends", "validate_endpoint"]


@dataclass(frozen=True)
class Backend:
    """One choice for one signal.

    ``exporter`` is a logical exporter kind (``otlp_grpc``, ``otlp_http``, ``zipkin``, ``prometheus``,
    ``prometheus_remote_write``, ``debug``) or ``None`` for ``none``; the versioned type name comes
    from :mod:`otelkit.ops.collector.versions`.
    """

    name: str
    signal: str
    exporter: str | None
    default_endpoint: str | None
    description: str

    @property
    def pushes(self) -> bool:
        """True when the collector sends to it (so it takes an endpoint, TLS and headers)."""
        return self.exporter not in (None, "debug", "prometheus")


def _common(signal: str) -> tuple[Backend, ...]:
    return (
        Backend("debug", signal, "debug", None, "the collector's debug exporter (prints to its log)"),
        Backend("none", signal, None, None, f"no {signal} pipeline"),
    )


_OTLP_DEFAULT = "http://otlp-backend:4318"

#: signal -> backend name -> Backend, in the order help text and errors list them.
BACKENDS: dict[str, dict[str, Backend]] = {
    signal: {b.name: b for b in backends}
    for signal, backends in (
        (
            "traces",
            (
                Backend("jaeger", "traces", "otlp_grpc", "jaeger:4317", "Jaeger v2 over OTLP/gRPC"),
                Backend("tempo", "traces", "otlp_grpc", "tempo:4317", "Grafana Tempo over OTLP/gRPC"),
                Backend("zipkin", "traces", "zipkin", "http://zipkin:9411/api/v2/spans", "Zipkin v2 JSON over HTTP"),
                Backend("otlp", "traces", "otlp_http", _OTLP_DEFAULT, "any OTLP/HTTP endpoint (vendor, gateway)"),
                *_common("traces"),
            ),
        ),
        (
            "metrics",
            (
                Backend(
                    "prometheus",
                    "metrics",
                    "prometheus",
                    None,
                    "the collector's prometheus exporter, scraped by Prometheus",
                ),
                Backend(
                    "prometheusremotewrite",
                    "metrics",
                    "prometheus_remote_write",
                    "http://prometheus:9090/api/v1/write",
                    "Prometheus remote write (Mimir, Thanos, VictoriaMetrics, Cortex)",
                ),
                Backend(
                    "otlp",
                    "metrics",
                    "otlp_http",
                    _OTLP_DEFAULT,
                    "any OTLP/HTTP endpoint; Prometheus 3: http://prometheus:9090/api/v1/otlp",
                ),
                *_common("metrics"),
            ),
        ),
        (
            "logs",
            (
                Backend("loki", "logs", "otlp_http", "http://loki:3100/otlp", "Loki 3 native OTLP endpoint"),
                Backend("otlp", "logs", "otlp_http", _OTLP_DEFAULT, "any OTLP/HTTP endpoint"),
                *_common("logs"),
            ),
        ),
    )
}

# Spellings people type for the same backend (the contrib component's own names).
_ALIASES = {"prometheus_remote_write": "prometheusremotewrite", "remotewrite": "prometheusremotewrite"}


def backend_names(signal: str) -> tuple[str, ...]:
    return tuple(BACKENDS[signal])


def parse_backends(signal: str, values: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """Split comma lists, check every name against the catalogue, and reject repeats and ``none`` mixes.

    Raises:
        UsageError: an unknown name (with a did-you-mean), a repeated one, or ``none`` beside others.
    """
    if isinstance(values, str):
        values = (values,)
    names: list[str] = []
    for value in values:
        for raw in value.split(","):
            name = raw.strip().lower()
            name = _ALIASES.get(name, name)
            if name not in BACKENDS[signal]:
                choices = backend_names(signal)
                hint = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
                tail = f" (did you mean {hint[0]!r}?)" if hint else f" (choose with --{signal} NAME)"
                raise UsageError(
                    f"unknown {signal} backend {raw.strip()!r}; expected one of: {', '.join(choices)}{tail}"
                )
            if name in names:
                raise UsageError(f"{signal} backend {name!r} is given twice; list each backend once")
            names.append(name)
    if not names:
        raise UsageError(f"no {signal} backend given; expected one of: {', '.join(backend_names(signal))}")
    if "none" in names and len(names) > 1:
        raise UsageError(
            f"{signal} backend 'none' cannot be combined with {', '.join(n for n in names if n != 'none')}; "
            f"drop 'none' or pass --{signal} none alone"
        )
    return tuple(names)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
_HOST_PORT = re.compile(rf"{_HOST}:(?P<port>[0-9]{{1,5}})")
_HOST_ONLY = re.compile(_HOST)
# What Go's url.Parse (the collector's) refuses besides what urlsplit does: control characters and
# a '%' not followed by two hex digits. Other non-printable characters are refused too.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def valid_host(host: str) -> bool:
    # fullmatch: a trailing newline must not pass as the end of the host name.
    return bool(_HOST_ONLY.fullmatch(host)) or _is_ipv6(host)


def _is_ipv6(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9A-Fa-f:.]+", host)) and host.count(":") >= 2


def _port_ok(port: str | int | None) -> bool:
    return port is not None and 0 < int(port) < 65536


def validate_endpoint(signal: str, backend: Backend, endpoint: str) -> str:
    """Return ``endpoint`` if it has the form ``backend`` needs.

    gRPC backends take ``host:port`` or ``http(s)://host:port``; HTTP backends take
    ``http(s)://host[:port][/path]``.

    Raises:
        UsageError: the endpoint is malformed, naming the form expected and an example.
    """
    grpc = backend.exporter == "otlp_grpc"
    if grpc:
        expected = f"host:port or http(s)://host:port (e.g. {backend.default_endpoint})"
    else:
        expected = f"an http:// or https:// URL (e.g. {backend.default_endpoint})"
    bad = UsageError(
        f"malformed {signal} endpoint {endpoint!r} for backend {backend.name!r}; expected {expected}; "
        f"fix --{signal}-endpoint"
    )
    if not endpoint or any(ch.isspace() or not ch.isprintable() for ch in endpoint) or _BAD_ESCAPE.search(endpoint):
        raise bad
    if grpc and "://" not in endpoint:
        m = _HOST_PORT.fullmatch(endpoint)
        if not m or not _port_ok(m["port"]):
            raise bad
        return endpoint
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise bad
    if not valid_host(parts.hostname) or (port is not None and not _port_ok(port)):
        raise bad
    if grpc and parts.path not in ("", "/"):
        raise bad
    return endpoint
