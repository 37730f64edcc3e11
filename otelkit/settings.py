"""otelkit's own settings: the only reader of ``OTELKIT_*`` environment variables.

Precedence is explicit argument > environment variable > default. Each variable is a constant
below with its docstring; the README's configuration reference lists the same set.

A bad value raises :class:`otelkit.errors.ConfigError` with one line naming the variable, the
value, what is accepted and how to fix it. The launcher's distro catches it, logs that line and
falls back to the default: code running inside a user's process never raises into their app.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from otelkit.errors import ConfigError

__all__ = [
    "OTELKIT_CELERY_BROKER_METRICS",
    "OTELKIT_CELERY_PING_INTERVAL",
    "OTELKIT_DEBUG",
    "OTELKIT_ENVIRONMENT",
    "OTELKIT_EXPORT_ERROR_INTERVAL",
    "OTELKIT_FAST_EXPORT",
    "OTELKIT_GC_FREEZE",
    "OTELKIT_HEALTH_DETAILS",
    "OTELKIT_HEALTH_TOKEN",
    "OTELKIT_HTTP_BODY_SIZE_METRICS",
    "OTELKIT_HTTP_INSTRUMENTATION",
    "OTELKIT_LOG_CONSOLE",
    "OTELKIT_LOG_LEVEL",
    "OTELKIT_REDACT_KEYS",
    "OTELKIT_REQUEST_ID_HEADER",
    "OTELKIT_SHUTDOWN_TIMEOUT",
    "OTELKIT_SYSTEM_METRICS",
    "Settings",
    "cli_debug",
]

OTELKIT_ENVIRONMENT = "OTELKIT_ENVIRONMENT"
"""``production`` (default) or ``development``: JSON-lines or pretty console logs; also the
``deployment.environment.name`` resource attribute unless OTEL_RESOURCE_ATTRIBUTES sets it."""

OTELKIT_LOG_LEVEL = "OTELKIT_LOG_LEVEL"
"""Level of the root logger: DEBUG, INFO (default), WARNING, ERROR or CRITICAL. Python's default
of WARNING would drop every INFO record before it reaches the OTel handler."""

OTELKIT_LOG_CONSOLE = "OTELKIT_LOG_CONSOLE"
"""Console (stderr) log output for humans: ``auto`` (default: ``json`` in production, ``pretty``
in development; only added when the root logger has no handler of the user's), ``json``,
``pretty`` or ``off``."""

OTELKIT_HTTP_INSTRUMENTATION = "OTELKIT_HTTP_INSTRUMENTATION"
"""``otelkit`` (default): otelkit's lean ASGI instrumentation of FastAPI (one server span and the
stable HTTP metrics per request); ``contrib``: opentelemetry-instrumentation-fastapi with its
send/receive spans dropped."""

OTELKIT_SHUTDOWN_TIMEOUT = "OTELKIT_SHUTDOWN_TIMEOUT"
"""Seconds (default 3) that flushing all three signals may take at process exit, SIGTERM or
Celery child exit. With the collector down, shutdown ends after this long instead of retrying."""

OTELKIT_EXPORT_ERROR_INTERVAL = "OTELKIT_EXPORT_ERROR_INTERVAL"
"""Seconds (default 30) between two console lines about the same exporter failure: failures stay
visible on stderr without flooding it."""

OTELKIT_REQUEST_ID_HEADER = "OTELKIT_REQUEST_ID_HEADER"
"""Name of the request-correlation header (default ``X-Request-ID``)."""

OTELKIT_SYSTEM_METRICS = "OTELKIT_SYSTEM_METRICS"
"""``true``/``false`` (default ``false``): process and system metrics (CPU, memory, GC, threads)
through opentelemetry-instrumentation-system-metrics."""

OTELKIT_HTTP_BODY_SIZE_METRICS = "OTELKIT_HTTP_BODY_SIZE_METRICS"
"""``true``/``false`` (default ``false``): request and response body sizes, as the
``http.server.request.body.size``/``http.server.response.body.size`` histograms and the
``http.request.body.size``/``http.response.body.size`` span attributes. Opt-in, as in the HTTP
semantic conventions: each histogram costs about as much per request as the duration one."""

OTELKIT_GC_FREEZE = "OTELKIT_GC_FREEZE"
"""``true`` (default) or ``false``: under the launcher, move everything alive after instrumentation
(the imported libraries: FastAPI, pydantic, the SDK, protobuf…) out of the garbage collector's
reach with ``gc.freeze()``. Full collections then scan only what the app allocates: in the
benchmark this cut p99 latency roughly in half and CPU per request by ~4 %."""

OTELKIT_FAST_EXPORT = "OTELKIT_FAST_EXPORT"
"""``true`` (default) or ``false``: with OTLP over ``http/protobuf``, spans and log records are
encoded by otelkit's own protobuf writer (same bytes, ~10× less CPU on the export thread);
``false`` uses the SDK's exporters unchanged. Metrics always use the SDK's exporter."""

OTELKIT_REDACT_KEYS = "OTELKIT_REDACT_KEYS"
"""Comma-separated extra key patterns (case-insensitive substrings) whose values are redacted from
log and span attributes, on top of the built-in list (authorization, cookie, token, password…)."""

OTELKIT_CELERY_BROKER_METRICS = "OTELKIT_CELERY_BROKER_METRICS"
"""``true`` (default) or ``false``: processes that publish Celery tasks read the broker at each
metric export — ``celery.queue.length`` per queue and ``celery.workers.online`` (see
``otelkit._runtime.celery.broker``)."""

OTELKIT_CELERY_PING_INTERVAL = "OTELKIT_CELERY_PING_INTERVAL"
"""Seconds (default 30) between two broadcast pings that count the Celery workers online, per
publishing process. Every worker answers every ping: with many publishing processes, raise it."""

OTELKIT_HEALTH_DETAILS = "OTELKIT_HEALTH_DETAILS"
"""Who sees the details of ``GET /health`` (error messages, latencies, ``details``, version, uptime):
``never`` (default: anonymous callers get the status of each check only; a driver's error line names
hosts, IPs and database users) or ``always`` (for a port only trusted networks reach). Requests with
``Authorization: Bearer <OTELKIT_HEALTH_TOKEN>`` see them in any case; ``Health(details=…)`` wins."""

OTELKIT_HEALTH_TOKEN = "OTELKIT_HEALTH_TOKEN"
"""A secret (16 to 256 characters of ``A-Z a-z 0-9 - . _ ~ + / =``); requests carrying it as
``Authorization: Bearer <token>`` see the details of ``GET /health``. Unset (default): nobody does
unless ``OTELKIT_HEALTH_DETAILS=always``."""

OTELKIT_DEBUG = "OTELKIT_DEBUG"
"""``1`` (or ``true``): the ``otelkit`` command prints the traceback of an internal error instead of
the one ``otelkit: internal error: … (please report)`` line. Read by the CLI only."""


def _error(var: str, message: str) -> ConfigError:
    error = ConfigError(message)
    error.variable = var
    return error


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _choice(var: str, raw: str, accepted: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value in accepted:
        return value
    hint = [a for a in accepted if value and a.startswith(value)]
    if not hint:
        import difflib  # only for a bad value: not imported at every start-up

        hint = difflib.get_close_matches(value, accepted, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise _error(var, f"invalid {var}={raw!r}; expected one of: {', '.join(accepted)}{suggestion}; fix or unset {var}")


def _bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _error(var, f"invalid {var}={raw!r}; expected true or false; fix or unset {var}")


def _seconds(var: str, raw: str, *, maximum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= maximum:
        raise _error(
            var,
            f"invalid {var}={raw!r}; expected a number of seconds greater than 0 and at most {maximum:g};"
            f" fix or unset {var}",
        )
    return value


_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


def _header(var: str, raw: str) -> str:
    value = raw.strip()
    if not _HEADER_NAME.match(value):
        raise _error(
            var, f"invalid {var}={raw!r}; expected an HTTP header name such as X-Request-ID; fix or unset {var}"
        )
    return value


_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/=]{16,256}")


def _token(var: str, raw: str) -> str:
    value = raw.strip()
    if not _TOKEN.fullmatch(value):
        # The value is a secret: never echoed, only described.
        raise _error(
            var,
            f"invalid {var} (a value of {len(value)} characters); expected 16 to 256 characters of"
            f" A-Z a-z 0-9 - . _ ~ + / =; fix or unset {var}",
        )
    return value


def _keys(var: str, raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip().lower() for k in raw.split(",") if k.strip())
    for key in keys:
        if not re.fullmatch(r"[a-z0-9_.\-]+", key):
            raise _error(
                var,
                f"invalid {var}={raw!r}: {key!r} is not a key pattern; expected comma-separated names"
                f" of letters, digits, '.', '_' or '-'; fix or unset {var}",
            )
    return keys


@dataclass(frozen=True)
class Settings:
    """otelkit's settings, resolved once: explicit argument > environment > default."""

    environment: str = "production"
    log_level: str = "INFO"
    log_console: str = "auto"
    http_instrumentation: str = "otelkit"
    shutdown_timeout: float = 3.0
    export_error_interval: float = 30.0
    request_id_header: str = "X-Request-ID"
    system_metrics: bool = False
    fast_export: bool = True
    http_body_size_metrics: bool = False
    gc_freeze: bool = True
    redact_keys: tuple[str, ...] = field(default_factory=tuple)
    celery_broker_metrics: bool = True
    celery_ping_interval: float = 30.0
    health_details: str = "never"
    health_token: str = field(default="", repr=False)

    @property
    def console_format(self) -> str:
        """``json``, ``pretty`` or ``off`` after resolving ``auto``."""
        if self.log_console != "auto":
            return self.log_console
        return "pretty" if self.environment == "development" else "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Resolve settings from ``explicit`` keyword arguments, then ``env`` (default ``os.environ``).

        Raises:
            ConfigError: an environment value or explicit argument is invalid (first one found).
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(explicit) - known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; expected one of: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        parsers: dict[str, tuple[str, Callable[[str, str], Any]]] = {
            "environment": (OTELKIT_ENVIRONMENT, lambda v, raw: _choice(v, raw, ("production", "development"))),
            "log_level": (
                OTELKIT_LOG_LEVEL,
                lambda v, raw: _choice(v, raw, ("debug", "info", "warning", "error", "critical")).upper(),
            ),
            "log_console": (OTELKIT_LOG_CONSOLE, lambda v, raw: _choice(v, raw, ("auto", "json", "pretty", "off"))),
            "http_instrumentation": (
                OTELKIT_HTTP_INSTRUMENTATION,
                lambda v, raw: _choice(v, raw, ("otelkit", "contrib")),
            ),
            "shutdown_timeout": (OTELKIT_SHUTDOWN_TIMEOUT, lambda v, raw: _seconds(v, raw, maximum=120)),
            "export_error_interval": (
                OTELKIT_EXPORT_ERROR_INTERVAL,
                lambda v, raw: _seconds(v, raw, maximum=86400),
            ),
            "request_id_header": (OTELKIT_REQUEST_ID_HEADER, _header),
            "system_metrics": (OTELKIT_SYSTEM_METRICS, _bool),
            "fast_export": (OTELKIT_FAST_EXPORT, _bool),
            "http_body_size_metrics": (OTELKIT_HTTP_BODY_SIZE_METRICS, _bool),
            "gc_freeze": (OTELKIT_GC_FREEZE, _bool),
            "redact_keys": (OTELKIT_REDACT_KEYS, _keys),
            "celery_broker_metrics": (OTELKIT_CELERY_BROKER_METRICS, _bool),
            "celery_ping_interval": (OTELKIT_CELERY_PING_INTERVAL, lambda v, raw: _seconds(v, raw, maximum=3600)),
            "health_details": (OTELKIT_HEALTH_DETAILS, lambda v, raw: _choice(v, raw, ("never", "always"))),
            "health_token": (OTELKIT_HEALTH_TOKEN, _token),
        }
        for name, (var, parse) in parsers.items():
            if explicit.get(name) is not None:
                raw = explicit[name]
                if isinstance(raw, str):
                    values[name] = parse(f"{name} (argument)", raw)
                elif name == "redact_keys":
                    values[name] = _keys(f"{name} (argument)", ",".join(raw))
                else:
                    values[name] = parse(f"{name} (argument)", str(raw).lower() if isinstance(raw, bool) else str(raw))
            elif env.get(var, "").strip():
                values[name] = parse(var, env[var])
        return cls(**values)


def cli_debug(env: Mapping[str, str] | None = None) -> bool:
    """Whether :data:`OTELKIT_DEBUG` asks the CLI for tracebacks (any value but empty/0/false/no/off)."""
    raw = (os.environ if env is None else env).get(OTELKIT_DEBUG, "").strip().lower()
    return raw not in ("", *_FALSE)
