"""Junk in the standard ``OTEL_*`` variables never stops the app and never switches a signal off.

The OpenTelemetry SDK reads its variables in many places, some of them at import time, and its
reactions to a bad value range from ignoring it to raising: ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=-1``
makes ``import opentelemetry.sdk.trace`` raise (an app importing ``otelkit.health`` died at import),
an unknown ``OTEL_PROPAGATORS`` name makes ``import opentelemetry.propagate`` raise,
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE=0`` makes the batch span processor's constructor raise (otelkit's
set-up failed, and with it all three signals), a timeout of ``0`` makes every export fail.

:func:`check` runs before any of that — when ``otelkit`` is imported with any ``OTEL_*`` variable
set (the launcher's ``sitecustomize`` and the distro import it before the SDK) and again when
otelkit sets the process up — and looks at every variable below that is set. A value outside what the variable accepts
gets one line naming the variable, the value, what it accepts and what is used instead, and is
removed from the environment, so the SDK (and every process the app starts) uses the default. An
empty value counts as unset. Everything else keeps working. Each bad value is reported once per
process.

=================================================  ==================================================
variables                                          accepted
=================================================  ==================================================
``OTEL_BSP_*``/``OTEL_BLRP_*`` ``SCHEDULE_DELAY``,  an integer of milliseconds, 1 to 86 400 000 (a day)
``EXPORT_TIMEOUT``
``…_MAX_QUEUE_SIZE``, ``…_MAX_EXPORT_BATCH_SIZE``   an integer, 1 to 10 000 000; a batch size larger than
                                                   its queue becomes the queue size (the SDK raises)
``OTEL_METRIC_EXPORT_INTERVAL``, ``…_TIMEOUT``      milliseconds, more than 0 and at most a day
the attribute, event and link limits               an integer, 0 to 2 147 483 647, or ``unset``
``OTEL_EXPORTER_OTLP[_SIGNAL]_ENDPOINT``            an http or https URL with a host (and a valid port);
                                                   with OTLP/gRPC also ``host:port`` or a gRPC target
                                                   such as ``dns:///host:port``, ``unix:///path``
``…_TIMEOUT``                                      seconds, more than 0 and at most 3600
``…_PROTOCOL``                                     ``http/protobuf`` or ``grpc``
``…_COMPRESSION``                                  ``gzip``, ``deflate`` or ``none``
``…_CERTIFICATE``, ``…_CLIENT_KEY``,               an existing file
``…_CLIENT_CERTIFICATE``
``…_INSECURE``, ``OTEL_SDK_DISABLED``,              ``true`` or ``false``
``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``,
``OTEL_PYTHON_LOG_CORRELATION``
``OTEL_TRACES_SAMPLER``                            a built-in sampler (any case) or an installed one
``OTEL_TRACES_SAMPLER_ARG``                        with a ``…traceidratio`` sampler: a number, 0 to 1
``OTEL_METRICS_EXEMPLAR_FILTER``                   ``trace_based``, ``always_on`` or ``always_off``
``OTEL_PROPAGATORS``,                              names of installed ones (each unknown name is
``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS``            dropped; none left: the default)
``OTEL_PYTHON_ID_GENERATOR``                       ``random`` or an installed one (the line lists them)
``OTEL_PYTHON_CONTEXT``,                           the name of an installed implementation
``OTEL_PYTHON_{TRACER,METER,LOGGER}_PROVIDER``,
``OTEL_PYTHON_EXPORTER_OTLP_*_CREDENTIAL_PROVIDER``
=================================================  ==================================================

``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` are checked by :mod:`otelkit._runtime.exporters` (an
unknown name is dropped; none left: ``otlp``), the metrics temporality and histogram aggregation by
:mod:`otelkit._runtime.deferred`, both with the same kind of line. Headers and resource attributes
are parsed by the SDK itself, which skips a malformed pair with a warning. Free-form variables
(service name, excluded URLs, captured headers) take any value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, MutableMapping
from typing import NamedTuple

__all__ = ["BUILTIN_SAMPLERS", "CHECKED", "DEFAULT_ID_GENERATOR", "READ_BY_OTELKIT", "check"]


_INTEGER = re.compile(r"[+-]?\d{1,30}").fullmatch
_DAY_MS = 86_400_000
_MAX_QUEUE = 10_000_000
_MAX_LIMIT = 2**31 - 1


class _Rule(NamedTuple):  # not a dataclass: ``import otelkit`` runs this module, dataclasses costs ~10 ms
    accepts: Callable[[str], bool]
    expected: str | Callable[[], str]  # a function: worked out only when a value is refused
    default: str


def _integer(low: int, high: int, *, unset: bool = False) -> Callable[[str], bool]:
    def accepts(value: str) -> bool:
        if unset and value.lower() == "unset":
            return True
        return _INTEGER(value) is not None and low <= int(value) <= high

    return accepts


def _number(low: float, high: float, *, low_included: bool = False) -> Callable[[str], bool]:
    def accepts(value: str) -> bool:
        try:
            number = float(value)
        except ValueError:
            return False
        if not math.isfinite(number):
            return False
        return (low <= number if low_included else low < number) and number <= high

    return accepts


def _one_of(*choices: str) -> Callable[[str], bool]:
    return lambda value: value.lower() in choices


def _file(value: str) -> bool:
    return os.path.isfile(value)


def _url(value: str) -> bool:
    from urllib.parse import urlsplit  # only when an endpoint is set

    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return False
    try:
        port = parts.port
    except ValueError:
        return False
    return port != 0


def _grpc_target(value: str) -> bool:
    """What the SDK's OTLP/gRPC exporter connects to: an http(s) URL, ``host:port`` or a gRPC target URI."""
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        return _url(value)
    scheme, _, rest = lowered.partition(":")
    if scheme in _GRPC_SCHEMES:
        return bool(rest.strip("/"))
    host, colon, port = value.rpartition(":")
    if not (colon and host.strip("[]") and port.isdigit() and 0 < int(port) < 65536):
        return False
    return not any(c.isspace() or c in "/?#@" for c in host)


# Name resolvers gRPC understands in a target (``dns:///collector:4317``, ``unix:///run/otlp.sock``).
_GRPC_SCHEMES = frozenset(("dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock"))


def _installed(
    group: str, builtin: frozenset[str] = frozenset(), *, any_case: frozenset[str] = frozenset()
) -> Callable[[str], bool]:
    """A name the SDK knows: ``builtin`` as written, ``any_case`` in any case, or an installed entry point."""

    def accepts(name: str) -> bool:
        if name in builtin or name.lower() in any_case:
            return True
        from importlib.metadata import entry_points  # only for an unusual name: it scans every distribution

        return bool(entry_points(group=group, name=name))

    return accepts


BUILTIN_SAMPLERS: frozenset[str] = frozenset(
    (
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    )
)
"""The ``OTEL_TRACES_SAMPLER`` values the SDK's ``TracerProvider`` knows itself (any case)."""

DEFAULT_ID_GENERATOR = "random"
"""The ``OTEL_PYTHON_ID_GENERATOR`` the SDK uses when none is set: its ``RandomIdGenerator``."""


def _installed_id_generators() -> str:
    from importlib.metadata import entry_points

    names = sorted({DEFAULT_ID_GENERATOR, *(ep.name for ep in entry_points(group="opentelemetry_id_generator"))})
    return f"the name of an installed id generator (installed: {', '.join(names)})"


_BOOL = _Rule(_one_of("true", "false"), "true or false", "false")
_RULES: dict[str, _Rule] = {}

for _prefix, _delay in (("OTEL_BSP", "5000"), ("OTEL_BLRP", "1000")):
    _RULES[f"{_prefix}_SCHEDULE_DELAY"] = _Rule(
        _integer(1, _DAY_MS), "an integer of milliseconds from 1 to 86400000", _delay
    )
    _RULES[f"{_prefix}_EXPORT_TIMEOUT"] = _Rule(
        _integer(1, _DAY_MS), "an integer of milliseconds from 1 to 86400000", "30000"
    )
    _RULES[f"{_prefix}_MAX_QUEUE_SIZE"] = _Rule(_integer(1, _MAX_QUEUE), "an integer from 1 to 10000000", "2048")
    _RULES[f"{_prefix}_MAX_EXPORT_BATCH_SIZE"] = _Rule(_integer(1, _MAX_QUEUE), "an integer from 1 to 10000000", "512")
_RULES["OTEL_METRIC_EXPORT_INTERVAL"] = _Rule(
    _number(0, _DAY_MS), "milliseconds, more than 0 and at most 86400000", "60000"
)
_RULES["OTEL_METRIC_EXPORT_TIMEOUT"] = _Rule(
    _number(0, _DAY_MS), "milliseconds, more than 0 and at most 86400000", "30000"
)
for _limit, _default in (
    ("OTEL_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "no limit"),
    ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT or 128"),
    ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or no limit"),
    ("OTEL_SPAN_EVENT_COUNT_LIMIT", "128"),
    ("OTEL_SPAN_LINK_COUNT_LIMIT", "128"),
    ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT or 128"),
    ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT or 128"),
    ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT or 128"),
    ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or no limit"),
):
    _RULES[_limit] = _Rule(_integer(0, _MAX_LIMIT, unset=True), "an integer from 0 to 2147483647, or unset", _default)
for _signal in ("", "TRACES_", "METRICS_", "LOGS_"):
    _base = f"OTEL_EXPORTER_OTLP_{_signal}"
    _fallback = "the default" if not _signal else "OTEL_EXPORTER_OTLP_… or the default"
    _RULES[f"{_base}ENDPOINT"] = _Rule(
        _url, "a URL such as http://127.0.0.1:4318 (scheme http or https and a host)", _fallback
    )
    _RULES[f"{_base}TIMEOUT"] = _Rule(
        _number(0, 3600), "seconds, more than 0 and at most 3600", "10" if not _signal else _fallback
    )
    _RULES[f"{_base}PROTOCOL"] = _Rule(
        lambda value: value in ("http/protobuf", "grpc"),
        "one of: http/protobuf, grpc",
        "http/protobuf" if not _signal else _fallback,
    )
    _RULES[f"{_base}COMPRESSION"] = _Rule(
        _one_of("gzip", "deflate", "none"), "one of: gzip, deflate, none", "none" if not _signal else _fallback
    )
    for _file_var in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE"):
        _RULES[f"{_base}{_file_var}"] = _Rule(_file, "the path of an existing file", _fallback)
    _RULES[f"{_base}INSECURE"] = _BOOL
_RULES["OTEL_SDK_DISABLED"] = _BOOL
_RULES["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = _BOOL
_RULES["OTEL_PYTHON_LOG_CORRELATION"] = _BOOL  # instrumentation-logging's; otelkit reads it too (sdk_compat)
_RULES["OTEL_TRACES_SAMPLER"] = _Rule(
    _installed(
        "opentelemetry_traces_sampler",
        # The SDK lower-cases the name before it looks it up among these.
        any_case=BUILTIN_SAMPLERS,
    ),
    "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
    " or an installed sampler",
    "parentbased_always_on",
)
_RULES["OTEL_PYTHON_ID_GENERATOR"] = _Rule(
    # The SDK's configurator looks the name up as written (after strip), as otelkit's providers do.
    _installed("opentelemetry_id_generator", frozenset((DEFAULT_ID_GENERATOR,))),
    _installed_id_generators,
    DEFAULT_ID_GENERATOR,
)
_RULES["OTEL_METRICS_EXEMPLAR_FILTER"] = _Rule(
    lambda value: value in ("trace_based", "always_on", "always_off"),
    "one of: trace_based, always_on, always_off",
    "trace_based",
)
_RULES["OTEL_PYTHON_CONTEXT"] = _Rule(
    _installed("opentelemetry_context", frozenset(("contextvars_context",))),
    "the name of an installed context implementation such as contextvars_context",
    "contextvars_context",
)
for _transport in ("HTTP", "GRPC"):
    for _signal in ("", "TRACES_", "METRICS_", "LOGS_"):
        _RULES[f"OTEL_PYTHON_EXPORTER_OTLP_{_transport}_{_signal}CREDENTIAL_PROVIDER"] = _Rule(
            _installed("opentelemetry_otlp_credential_provider"),
            "the name of an installed OTLP credential provider",
            "no credential provider",
        )
for _provider in ("tracer", "meter", "logger"):
    # Read by the API when the app asks for the global provider before one is set.
    _RULES[f"OTEL_PYTHON_{_provider.upper()}_PROVIDER"] = _Rule(
        _installed(f"opentelemetry_{_provider}_provider"),
        f"the name of an installed {_provider} provider such as sdk_{_provider}_provider",
        "otelkit's provider",
    )

# Comma-separated names: each unknown one is dropped.
_LISTS: dict[str, tuple[Callable[[str], bool], str, str]] = {
    "OTEL_PROPAGATORS": (
        # Entry-point names are case-sensitive; "none" (no propagation) is compared lower-cased.
        _installed("opentelemetry_propagator", frozenset(("tracecontext", "baggage")), any_case=frozenset(("none",))),
        "tracecontext, baggage, none or an installed propagator",
        "tracecontext,baggage",
    ),
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": (
        _installed("opentelemetry_resource_detector"),
        "the names of installed resource detectors",
        "no extra detector",
    ),
}

# Endpoint variable -> the protocol variable that says how it is used.
_ENDPOINT_PROTOCOL = {
    f"OTEL_EXPORTER_OTLP_{signal}ENDPOINT": f"OTEL_EXPORTER_OTLP_{signal}PROTOCOL"
    for signal in ("", "TRACES_", "METRICS_", "LOGS_")
}
# The gRPC exporter also takes host:port and gRPC target URIs; the OTLP/HTTP exporter needs a URL.
_GRPC_ENDPOINTS = {
    var: _Rule(
        _grpc_target,
        "with OTLP/gRPC a target such as collector:4317, http://collector:4317 or dns:///collector:4317",
        _RULES[var].default,
    )
    for var in _ENDPOINT_PROTOCOL
}


def _protocol_of(env: MutableMapping[str, str], endpoint_var: str) -> str:
    """The protocol an endpoint is used with: its signal's, else the general one (http/protobuf by default)."""
    own = env.get(_ENDPOINT_PROTOCOL[endpoint_var], "").strip()
    return own or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()


_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"

CHECKED: frozenset[str] = frozenset((*_RULES, *_LISTS, _SAMPLER_ARG))
"""Every variable :func:`check` looks at."""

READ_BY_OTELKIT: frozenset[str] = frozenset(
    (
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_METRICS_CREDENTIAL_PROVIDER",
        "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_SDK_DISABLED",
        "OTEL_PYTHON_LOG_CORRELATION",
        "OTEL_SEMCONV_STABILITY_OPT_IN",
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
        "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH",
        "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_METRICS_EXEMPLAR_FILTER",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
    )
)
"""The ``OTEL_*`` variables otelkit's own code reads (a test keeps the list complete)."""

_reported: set[tuple[str, str]] = set()


def _log_error(line: str) -> None:
    import logging  # only when there is something to say: ``import otelkit`` runs this module

    logging.getLogger("otelkit").error("%s", line)


def _report(var: str, raw: str, expected: str, instead: str) -> str:
    line = f"otelkit: invalid {var}={raw!r}; expected {expected}; using {instead} — fix or unset {var}"
    if (var, raw) not in _reported:
        _reported.add((var, raw))
        _log_error(line)
    return line


def check(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove (or correct) every bad ``OTEL_*`` value in ``environ`` (default ``os.environ``).

    Returns:
        One line per bad value, as logged (each logged once per process).
    """
    env = os.environ if environ is None else environ
    lines: list[str] = []
    for var in [v for v in env if v.startswith("OTEL_")]:
        raw = env[var]
        value = raw.strip()
        if not value and (var in CHECKED or var in READ_BY_OTELKIT):
            del env[var]  # empty means unset; some SDK readers raise on it (int(""))
            continue
        rule = _RULES.get(var)
        if var in _ENDPOINT_PROTOCOL and _protocol_of(env, var) == "grpc":
            rule = _GRPC_ENDPOINTS[var]
        if rule is not None:
            if not rule.accepts(value):
                del env[var]
                expected = rule.expected if isinstance(rule.expected, str) else rule.expected()
                lines.append(_report(var, raw, expected, rule.default))
            elif value != raw:
                env[var] = value  # some SDK readers do not strip (the exemplar filter raises)
        elif var in _LISTS:
            lines.extend(_check_list(env, var, raw))
    lines.extend(_check_sampler_arg(env))
    for prefix in ("OTEL_BSP", "OTEL_BLRP"):
        lines.extend(_check_batch(env, prefix))
    return lines


def _check_list(env: MutableMapping[str, str], var: str, raw: str) -> list[str]:
    accepts, expected, default = _LISTS[var]
    names = [n.strip() for n in raw.split(",") if n.strip()]
    good = [n for n in names if accepts(n)]
    if good == names:
        return []
    bad = ", ".join(repr(n) for n in names if n not in good)
    if good:
        env[var] = ",".join(good)
        return [_report(var, raw, expected, f"{','.join(good)} (without {bad})")]
    del env[var]
    return [_report(var, raw, expected, default)]


def _check_sampler_arg(env: MutableMapping[str, str]) -> list[str]:
    raw = env.get(_SAMPLER_ARG)
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if raw is None or sampler not in _RATIO_SAMPLERS:
        return []  # other samplers take other arguments (or none)
    if _number(0.0, 1.0, low_included=True)(raw.strip()):
        return []
    del env[_SAMPLER_ARG]
    return [_report(_SAMPLER_ARG, raw, f"a sampling ratio from 0 to 1 for {sampler}", "1.0")]


def _check_batch(env: MutableMapping[str, str], prefix: str) -> list[str]:
    queue_var, var = f"{prefix}_MAX_QUEUE_SIZE", f"{prefix}_MAX_EXPORT_BATCH_SIZE"
    queue = int(env.get(queue_var, "2048"))
    raw = env.get(var)
    batch = int(raw) if raw is not None else 512
    if batch <= queue:
        return []
    # The SDK refuses a batch larger than its queue: use the largest batch that fits.
    fitting = min(512, queue)
    env[var] = str(fitting)
    if raw is not None:
        return [_report(var, raw, f"at most {queue_var} ({queue})", str(fitting))]
    line = (
        f"otelkit: {queue_var}={queue} is smaller than the default {var} (512); using {var}={fitting}"
        f" — set {var} to at most {queue}"
    )
    if (var, line) not in _reported:
        _reported.add((var, line))
        _log_error(line)
    return [line]
