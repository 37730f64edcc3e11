"""Request headers for the HTTP instrumentation: propagation getter, excluded URLs, captured headers.

``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` and the two ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_*``
variables are compiled once, when the instrumentation is built; an invalid regex in them is one
warning and is skipped. Captured sensitive headers (:mod:`otelkit._runtime.redact`) are recorded as
``["[REDACTED]"]``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from opentelemetry.propagators.textmap import Getter

from otelkit._runtime import redact

__all__ = [
    "CAPTURE_REQUEST_HEADERS_ENV",
    "CAPTURE_RESPONSE_HEADERS_ENV",
    "EXCLUDED_URLS_ENV",
    "GETTER",
    "captured",
    "compile_capture",
    "compile_excluded",
]

_log = logging.getLogger("otelkit")

EXCLUDED_URLS_ENV = "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"
CAPTURE_REQUEST_HEADERS_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"
CAPTURE_RESPONSE_HEADERS_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE"


class _HeaderGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


GETTER = _HeaderGetter()
"""Reads propagation headers from the lower-cased header dict built once per request."""


def compile_excluded(raw: str | None) -> re.Pattern[str] | None:
    if not raw or not raw.strip():
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    valid = []
    for part in parts:
        try:
            re.compile(part)
        except re.error as exc:
            _log.warning("otelkit: ignoring invalid regex %r in %s: %s", part, EXCLUDED_URLS_ENV, exc)
            continue
        valid.append(f"(?:{part})")
    return re.compile("|".join(valid)) if valid else None


def compile_capture(var: str) -> Callable[[str], Any] | None:
    raw = os.environ.get(var)
    if not raw or not raw.strip():
        return None
    valid = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            re.compile(part)
        except re.error as exc:
            _log.warning("otelkit: ignoring invalid header pattern %r in %s: %s", part, var, exc)
            continue
        valid.append(f"(?:{part})")
    return re.compile("|".join(valid), re.IGNORECASE).fullmatch if valid else None


def captured(match: Callable[[str], Any], prefix: str, pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in pairs:
        if match(name):
            key = prefix + name
            found[key] = (redact.REDACTED,) if redact.is_sensitive(name) else (value,)
    return found
