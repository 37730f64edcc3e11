"""Redaction of secrets from telemetry attributes before they leave the process.

An attribute whose *key* looks sensitive has its value replaced by ``"[REDACTED]"``. A key is
sensitive when, lower-cased, it contains one of the patterns below (``OTELKIT_REDACT_KEYS`` adds
plain substrings to the list):

=====================  ===============================================================
``authorization``      ``Authorization``, ``http.request.header.proxy-authorization``
``cookie``             ``cookie``, ``set-cookie``, ``http.response.header.set-cookie``
``api key``            ``api_key``, ``api-key``, ``apikey``, ``x-api-key``, ``apiKey``
``token``              ``token``, ``access_token``, ``x-auth-token``, ``csrftoken`` — but
                       not ``input_tokens``/``max_tokens``/``tokenizer`` (counts, not secrets)
``password``           ``password``, ``passwd``, ``pwd``, ``passphrase``
``secret``             ``secret``, ``client_secret``, ``aws_secret_access_key``
``private key``        ``private_key``, ``private-key``, ``privatekey``
``session``            ``session``, ``sessionid``, ``session_key``
``credential``         ``credential``, ``credentials``
``signature``          ``signature``, ``x-amz-signature`` (pre-signed URLs)
=====================  ===============================================================

Values are rewritten too where a secret hides inside them: in ``url.query``, ``url.full``,
``http.url`` and ``http.target`` the query parameters with a sensitive name are redacted
(``?token=abc&page=2`` → ``?token=[REDACTED]&page=2``) and URL user-info is dropped
(``https://user:pw@host`` → ``https://[REDACTED]@host``). Nested mappings (structured log
attributes) are redacted recursively.

Where it applies: span attributes and span event attributes, and log record attributes, in the
exporters otelkit creates (so the work happens on the export thread, not in the request); the
console log formatter's fields; captured HTTP headers. :func:`redact_attributes` is the one
function all of them call; it returns its argument unchanged (the same object) when nothing
matches, so the common case allocates nothing. Log message bodies are not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util import BoundedList

__all__ = [
    "DEFAULT_PATTERNS",
    "REDACTED",
    "RedactingLogRecordExporter",
    "RedactingSpanExporter",
    "Redactor",
    "configure",
    "is_sensitive",
    "redact_attributes",
    "redact_span",
    "redact_text",
]

REDACTED = "[REDACTED]"
"""The value that replaces a redacted one."""

DEFAULT_PATTERNS: tuple[str, ...] = (
    "authorization",
    "cookie",
    r"api[-_.]?key",
    r"token(?![a-z])",
    r"passw(?:or)?d",
    "pwd",
    "passphrase",
    "secret",
    r"private[-_.]?key",
    "session",
    "credential",
    "signature",
)
"""Built-in key patterns (regular expressions searched in the lower-cased key)."""

# Attribute keys whose values are URLs or query strings: their sensitive parameters are redacted.
_URL_KEYS = frozenset(("url.query", "url.full", "http.url", "http.target", "url.original"))
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
_CACHE_MAX = 4096
_PLAIN, _SENSITIVE, _URL = 0, 1, 2
_SCALARS = frozenset((str, int, float, bool, bytes, tuple, list))


class Redactor:
    """Decides which keys are sensitive and rewrites attribute mappings.

    Args:
        extra_keys: more key patterns, matched as case-insensitive substrings.
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.extra_keys = tuple(k.strip().lower() for k in extra_keys if k.strip())
        patterns = [*DEFAULT_PATTERNS, *(re.escape(k) for k in self.extra_keys)]
        self._search = re.compile("|".join(f"(?:{p})" for p in patterns)).search
        # key=value pairs in free text: connection strings, "password=..." in error messages.
        self._pairs = re.compile(
            r"(?i)([\w.\-]*(?:" + "|".join(patterns) + r")[\w.\-]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,]+)"
        )
        # key -> _PLAIN, _SENSITIVE or _URL: decided once per key (keys are few in practice).
        self._kinds: dict[str, int] = {}

    def _kind(self, key: str) -> int:
        kind = self._kinds.get(key)
        if kind is None:
            sensitive = self._search(key.lower()) is not None
            kind = _SENSITIVE if sensitive else _URL if key in _URL_KEYS else _PLAIN
            if len(self._kinds) < _CACHE_MAX:  # bounded all the same
                self._kinds[key] = kind
        return kind

    def is_sensitive(self, key: str) -> bool:
        """Whether values under ``key`` are redacted."""
        return self._kind(key) == _SENSITIVE

    def redact_attributes(self, attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``attributes`` with sensitive values replaced; the same object when nothing changes."""
        if not attributes:
            return attributes
        changed: dict[str, Any] | None = None
        kinds = self._kinds
        for key, value in attributes.items():
            kind = kinds.get(key)
            if kind is None:
                kind = self._kind(key)
            if kind == _PLAIN:
                # Runs on the export thread for every attribute: the common case is one dict
                # lookup and one type check.
                if type(value) in _SCALARS or not isinstance(value, Mapping):
                    continue
                new = self.redact_attributes(value)
            elif kind == _SENSITIVE:
                # Keep the shape: captured headers are string arrays.
                new = (REDACTED,) if isinstance(value, (list, tuple)) else REDACTED
            elif isinstance(value, str):
                new = self.redact_query(value) if key == "url.query" else self.redact_url(value)
            else:
                continue
            if new is not value:
                if changed is None:
                    changed = dict(attributes)
                changed[key] = new
        return attributes if changed is None else changed

    def redact_query(self, query: str) -> str:
        """A query string (no ``?``) with the values of sensitive parameters redacted."""
        if "=" not in query:
            return query
        parts = query.split("&")
        changed = False
        for i, part in enumerate(parts):
            name, sep, value = part.partition("=")
            if sep and value and value != REDACTED and self.is_sensitive(_unquote(name)):
                parts[i] = f"{name}={REDACTED}"
                changed = True
        return "&".join(parts) if changed else query

    def redact_url(self, url: str) -> str:
        """A URL (or a path with a query) with user-info and sensitive query parameters redacted."""
        new = url
        if "@" in new and "://" in new:
            new = _USERINFO.sub(REDACTED + "@", new, count=1)
        head, sep, query = new.partition("?")
        if sep:
            query, hash_sign, fragment = query.partition("#")
            redacted = self.redact_query(query)
            if redacted is not query:
                new = f"{head}?{redacted}{hash_sign}{fragment}"
        return url if new == url else new

    def redact_text(self, text: str, limit: int = 300) -> str:
        """Free text (an error message) with URL user-info and ``secret=value`` pairs redacted, truncated."""
        text = _USERINFO.sub(REDACTED + "@", text)
        text = self._pairs.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return text


def _unquote(name: str) -> str:
    if "%" in name or "+" in name:
        from urllib.parse import unquote_plus

        return unquote_plus(name)
    return name


_active = [Redactor()]


def configure(extra_keys: Sequence[str] = ()) -> Redactor:
    """Make the process-wide redactor use the built-in patterns plus ``extra_keys``."""
    if tuple(k.lower() for k in extra_keys) != _active[0].extra_keys:
        _active[0] = Redactor(extra_keys)
    return _active[0]


def active() -> Redactor:
    """The process-wide redactor."""
    return _active[0]


def is_sensitive(key: str) -> bool:
    """Whether the process-wide redactor redacts values under ``key``."""
    return _active[0].is_sensitive(key)


def redact_attributes(attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Redact with the process-wide redactor; returns ``attributes`` itself when nothing matches."""
    return _active[0].redact_attributes(attributes)


def redact_text(text: str, limit: int = 300) -> str:
    """Redact free text with the process-wide redactor (see :meth:`Redactor.redact_text`)."""
    return _active[0].redact_text(text, limit)


# --- exporters -------------------------------------------------------------------------------


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """``span`` itself, or a copy with its attributes and event attributes redacted."""
    redactor = _active[0]
    attributes = span.attributes
    new_attributes = redactor.redact_attributes(attributes)
    events = span.events
    new_events: list[Event] | None = None
    for i, event in enumerate(events):
        scrubbed = redactor.redact_attributes(event.attributes)
        if scrubbed is not event.attributes:
            if new_events is None:
                new_events = list(events)  # type: ignore[arg-type]
            new_events[i] = Event(event.name, scrubbed, event.timestamp)  # type: ignore[arg-type]
    if new_attributes is attributes and new_events is None:
        return span
    final_events: Any = events
    if new_events is not None:
        final_events = BoundedList(None)
        final_events.extend(new_events)
        final_events.dropped = getattr(events, "dropped", 0)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_bounded_like(attributes, new_attributes),
        events=final_events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _bounded_like(original: Any, new: Any) -> Any:
    # Keep the dropped-attributes count the exporter reports.
    if new is original or not isinstance(original, BoundedAttributes):
        return new
    bounded = BoundedAttributes(maxlen=None, attributes=new, immutable=True)
    bounded.dropped = original.dropped
    return bounded


class RedactingSpanExporter(SpanExporter):
    """Exports through ``inner`` what :func:`redact_span` makes of each span."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))

    def __repr__(self) -> str:
        return f"RedactingSpanExporter({self.inner!r})"


class RedactingLogRecordExporter(LogRecordExporter):
    """Exports through ``inner`` after redacting each record's attributes in place."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner

    def export(self, batch: Sequence[Any]) -> Any:
        redactor = _active[0]
        for record in batch:
            inner = record.log_record
            attributes = inner.attributes
            scrubbed = redactor.redact_attributes(attributes)
            if scrubbed is not attributes:
                # The record left the app when it was emitted: rewriting it now is safe.
                inner.attributes = _bounded_like(attributes, scrubbed)
        return self.inner.export(batch)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flush = getattr(self.inner, "force_flush", None)
        return True if flush is None else bool(flush(timeout_millis))

    def __repr__(self) -> str:
        return f"RedactingLogRecordExporter({self.inner!r})"
