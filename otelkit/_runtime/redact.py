"""Redaction of secrets from telemetry attributes before they leave the process.

An attribute whose *key* looks sensitive has its value replaced by ``"[REDACTED]"`` (unless the value
is a boolean: ``password_reset_sent=True`` is no credential). A key is
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

Values are rewritten too where a secret hides inside them:

- in ``url.query``, ``url.full``, ``http.url``, ``http.target`` and ``url.original`` the query
  parameters (``&``- or ``;``-separated) with a sensitive name are redacted
  (``?token=abc&page=2`` → ``?token=[REDACTED]&page=2``) and URL user-info is dropped
  (``https://user:pw@host`` → ``https://[REDACTED]@host``);
- nested mappings and lists (structured log attributes: ``{"items": [{"password": …}]}``) are
  redacted recursively;
- free text — log record bodies, span status descriptions, ``exception.message``,
  ``exception.stacktrace`` and the other keys in ``TEXT_KEYS`` (also ``error`` and structlog's
  ``exception``) — loses URL user-info, every ``key=value``/``key: value`` pair with a sensitive
  key (quoted or not, JSON and Python reprs too), bearer tokens and JSON Web Tokens; an
  ``Authorization: Bearer <token>`` pair loses its scheme *and* its credential
  (``Authorization: [REDACTED]``), a ``Cookie:`` line everything after the colon;
- Celery's task arguments: ``args``, ``kwargs`` (and ``argsrepr``/``kwargsrepr``) are redacted
  wherever they appear — Celery's own log records carry them, as repr strings, in their ``data``
  field (e-mail addresses, card numbers, passwords passed to tasks).

Where it applies: span attributes, event and link attributes and status descriptions, and log record
bodies and attributes, in the exporters otelkit creates (so the work happens on the export thread,
not in the request: the fast OTLP encoder calls :func:`redact_attributes` and :func:`redact_body`
while it encodes, the SDK's exporters are wrapped by the exporters of
:mod:`otelkit._runtime.redact_exporters`, which call the same functions); the console log formatter's
message, exception text and fields; uvicorn's access-log record itself (its request line, for every
handler); captured HTTP headers; the error text of health checks. These functions return their
argument unchanged (the same object) when nothing matches, so the common case builds nothing new:
free text is first tested for a few plain substrings of a lower-cased copy (a temporary string the
garbage collector does not track; ~1 µs for a log line), and only rewritten on a hit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

__all__ = [
    "DEFAULT_PATTERNS",
    "REDACTED",
    "Redactor",
    "configure",
    "is_sensitive",
    "redact_access_args",
    "redact_attributes",
    "redact_body",
    "redact_message",
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

_TEXT_NEEDLES: tuple[str, ...] = (
    "authorization",
    "cookie",
    "apikey",
    "api_key",
    "api-key",
    "api.key",
    "token",
    "passw",
    "pwd",
    "passphrase",
    "secret",
    "private",
    "session",
    "credential",
    "signature",
    "bearer",
    "eyj",
)
"""Plain substrings, one of which every match of a built-in pattern (and a bearer token) contains:
free text that holds none of them (lower-cased) is left alone without running any pattern."""

# Attribute keys whose values are URLs or query strings: their sensitive parameters are redacted.
_URL_KEYS = frozenset(("url.query", "url.full", "http.url", "http.target", "url.original"))
TEXT_KEYS = frozenset(
    (
        "exception.message",
        "exception.stacktrace",
        "error.message",
        "exc",
        "traceback",
        "return_value",
        "error",  # extra={"error": str(exc)}
        "exception",  # structlog's format_exc_info: the traceback
    )
)
"""Attribute keys whose values are free text (error messages, tracebacks): redacted like log bodies."""
TASK_ARGUMENT_KEYS = frozenset(("args", "kwargs", "argsrepr", "kwargsrepr"))
"""Keys whose values are a task's arguments (Celery's ``data`` extra): always redacted."""
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
_CACHE_MAX = 4096
_CACHE_KEY_MAX = 128
_MESSAGE_CACHE_LEN_MAX = 512  # an access-log line with a long query string still fits
_UNCHANGED = "\x00otelkit: unchanged"  # never a redacted text: redaction only replaces parts of one
_PLAIN, _SENSITIVE, _URL, _TEXT = 0, 1, 2, 3
# Values that hold no mapping: nothing to look at inside them.
_ATOMS = frozenset((str, int, float, bool, bytes, type(None)))
# Authentication schemes whose credential follows after a space (RFC 9110 and common ones).
_AUTH_SCHEMES = r"(?:bearer|basic|digest|negotiate|ntlm|token|apikey|hoba|mutual|aws4-hmac-sha256)"


class Redactor:
    """Decides which keys are sensitive and rewrites attribute mappings and free text.

    Args:
        extra_keys: more key patterns, matched as case-insensitive substrings.
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.extra_keys = tuple(k.strip().lower() for k in extra_keys if k.strip())
        patterns = [*DEFAULT_PATTERNS, *(re.escape(k) for k in self.extra_keys)]
        keys = "|".join(f"(?:{p})" for p in patterns)
        self._search = re.compile(keys).search
        # Free text is looked at with plain substring tests of its lower-cased copy (~1 µs for a log
        # line; an alternation of case-insensitive patterns costs ~10 µs); only a hit runs the
        # rewriting patterns below.
        self._needles = (*_TEXT_NEEDLES, *self.extra_keys)
        # "Cookie: a=1; sid=2": every cookie of the line goes.
        self._cookies = re.compile(r"""(?i)((?:set-)?cookie["']?\s*:\s*)("[^"]*"|'[^']*'|[^\r\n"']+)""")
        # key=value / key: value pairs with a sensitive key, the key optionally quoted (JSON, reprs),
        # found in two steps whose work grows linearly with the text (hostile text — a request line
        # repeating "password" 4,000 times — must not hold the logging call for seconds):
        # every word followed by "=" or ":" (a word starts after a non-word character, so a long run
        # of letters is scanned once, never from each key inside it); then, after a sensitive word,
        # its value. A value starting with an auth scheme word takes the credential after it along;
        # closing brackets at the end of the value are left ("(sent token=abc)").
        self._pair_keys = re.compile(r"""(?<![\w.\-])([\w.\-]+)["']?\s*[=:]\s*""")
        self._pair_value = re.compile(
            rf"""(?i)(?:{_AUTH_SCHEMES}\s+)?(?:\[REDACTED\]|"[^"]*"|'[^']*'|[^\s&;,"']*[^\s&;,"')\]}}>])"""
        )
        self._bearer = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]{4,}=*)")
        # A JSON Web Token wherever it stands: header.payload.signature, both JSON parts start '{"' (eyJ).
        self._jwt = re.compile(r"\beyJ[A-Za-z0-9_\-]{6,}\.eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*")
        # key -> _PLAIN, _SENSITIVE, _URL or _TEXT: decided once per key (keys are few in practice).
        self._kinds: dict[str, int] = {}
        # Short free text -> its redacted form (_UNCHANGED: the text itself). A log record's message
        # is redacted twice, for the console line and again in the export; and a service repeats
        # its messages. Bounded like _kinds: long texts are not kept, a full cache starts over.
        self._messages: dict[str, str] = {}
        # The C module reads both tables (native_tables()): a mapping of atoms under _PLAIN keys, and
        # a text kept as _UNCHANGED, are left as they are without calling these methods.

    def _kind(self, key: str) -> int:
        kind = self._kinds.get(key)
        if kind is None:
            if key in TASK_ARGUMENT_KEYS or self._search(key.lower()) is not None:
                kind = _SENSITIVE
            elif key in _URL_KEYS:
                kind = _URL
            elif key in TEXT_KEYS:
                kind = _TEXT
            else:
                kind = _PLAIN
            # Bounded all the same; long keys (query parameter names sent by anyone) are not kept.
            if len(key) <= _CACHE_KEY_MAX and len(self._kinds) < _CACHE_MAX:
                self._kinds[key] = kind
        return kind

    def is_sensitive(self, key: str) -> bool:
        """Whether values under ``key`` are redacted."""
        return self._kind(key) == _SENSITIVE

    @overload
    def redact_attributes(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]: ...
    @overload
    def redact_attributes(self, attributes: None) -> None: ...
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
                if type(value) in _ATOMS:
                    continue
                new: Any = self._redact_value(value)
            elif kind == _SENSITIVE:
                if type(value) is bool:
                    continue  # a flag is never a credential: password_reset_sent, cookie_consent
                # Keep the shape: captured headers are string arrays.
                new = (REDACTED,) if isinstance(value, (list, tuple)) else REDACTED
            elif type(value) is not str:
                new = self._redact_value(value)
            elif kind == _URL:
                new = self.redact_query(value) if key == "url.query" else self.redact_url(value)
            else:
                new = self.redact_message(value)
            if new is not value:
                if changed is None:
                    changed = dict(attributes)
                changed[key] = new
        return attributes if changed is None else changed

    def _redact_value(self, value: Any) -> Any:
        """A nested value (mapping, list, tuple) with its mappings redacted; the same object if unchanged."""
        if isinstance(value, Mapping):
            return self.redact_attributes(value)
        if type(value) not in (list, tuple):
            return value
        atoms = _ATOMS
        for item in value:
            if type(item) not in atoms:
                break
        else:
            return value  # an array of plain values: the common case
        items = [self._redact_value(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return tuple(items) if type(value) is tuple else items

    def redact_query(self, query: str) -> str:
        """A query string (no ``?``) with the values of sensitive parameters redacted; ``&`` or ``;`` separate them."""
        if "=" not in query:
            return query
        parts = _QUERY_SEPARATORS.split(query)
        changed = False
        for i in range(0, len(parts), 2):  # odd indexes hold the separators
            name, sep, value = parts[i].partition("=")
            if sep and value and value != REDACTED and self.is_sensitive(_unquote(name)):
                parts[i] = f"{name}={REDACTED}"
                changed = True
        return "".join(parts) if changed else query

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

    def redact_message(self, text: str) -> str:
        """Free text (a log body, an error message, a traceback) with credentials removed.

        URL user-info, ``key=value``/``key: value`` pairs whose key is sensitive (with the
        ``Bearer``/``Basic``… scheme word and the credential after it), ``Cookie:`` lines and bare
        ``Bearer <token>`` credentials become ``[REDACTED]``. Returns ``text`` itself when nothing
        looks sensitive: then the cost is one lower-cased copy and a few substring tests, or one
        dictionary lookup for a short text seen before.
        """
        if len(text) > _MESSAGE_CACHE_LEN_MAX:
            return self._redact_message(text)
        messages = self._messages
        known = messages.get(text)
        if known is not None:
            return text if known is _UNCHANGED else known
        new = self._redact_message(text)
        if len(messages) >= _CACHE_MAX:
            messages.clear()
        messages[text] = _UNCHANGED if new is text else new
        return new

    def _redact_message(self, text: str) -> str:
        lowered = text.lower()
        userinfo = "@" in lowered and "://" in lowered
        if not userinfo:
            for needle in self._needles:
                if needle in lowered:
                    break
            else:
                return text
        new = _USERINFO.sub(REDACTED + "@", text) if userinfo else text
        if "cookie" in lowered:
            new = self._cookies.sub(_keep_key, new)
        new = self._redact_pairs(new)
        if "bearer" in lowered:
            new = self._bearer.sub(_keep_key, new)
        if "eyj" in lowered:
            new = self._jwt.sub(REDACTED, new)
        return text if new == text else new

    def _redact_pairs(self, text: str) -> str:
        """``text`` with the value of every ``key=value``/``key: value`` pair whose key is sensitive redacted."""
        pieces: list[str] = []
        done = 0  # text[:done] is in pieces already
        search = self._search
        for pair in self._pair_keys.finditer(text):
            if pair.start() < done or search(pair.group(1).lower()) is None:
                continue  # inside a value just redacted, or an ordinary key
            start = pair.end()
            value = self._pair_value.match(text, start)
            if value is None:
                continue
            pieces.append(text[done:start])
            pieces.append(REDACTED)
            done = value.end()
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def redact_body(self, body: Any) -> Any:
        """A log record body: text as in :meth:`redact_message`, structures as attributes."""
        if type(body) is str:
            return self.redact_message(body)
        if type(body) in _ATOMS:
            return body
        return self._redact_value(body)

    def redact_text(self, text: str, limit: int = 300) -> str:
        """:meth:`redact_message`, then truncated to ``limit`` characters (health check messages)."""
        text = self.redact_message(text)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return text


_QUERY_SEPARATORS = re.compile(r"([&;])")


def _keep_key(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


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


def is_sensitive(key: str) -> bool:
    """Whether the process-wide redactor redacts values under ``key``."""
    return _active[0].is_sensitive(key)


@overload
def redact_attributes(attributes: Mapping[str, Any]) -> Mapping[str, Any]: ...
@overload
def redact_attributes(attributes: None) -> None: ...
def redact_attributes(attributes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Redact with the process-wide redactor; returns ``attributes`` itself when nothing matches."""
    return _active[0].redact_attributes(attributes)


def redact_text(text: str, limit: int = 300) -> str:
    """Redact free text with the process-wide redactor and truncate it (see :meth:`Redactor.redact_text`)."""
    return _active[0].redact_text(text, limit)


def redact_message(text: str) -> str:
    """Redact free text with the process-wide redactor; returns ``text`` itself when nothing matches."""
    return _active[0].redact_message(text)


def redact_body(body: Any) -> Any:
    """Redact a log record body with the process-wide redactor; returns ``body`` itself when nothing matches."""
    return _active[0].redact_body(body)


def native_tables() -> tuple[Any, ...]:
    """What otelkit's C module needs to leave out the redaction calls that would change nothing.

    Its ``filtered_by`` (``otlp/cencoder.c``) answers :func:`redact_attributes`, :func:`redact_body`
    and :func:`redact_message` itself where the active Redactor's tables already decide: a dict whose
    every key is ``_PLAIN`` in ``_kinds`` and whose every value is an atom; a text whose entry in
    ``_messages`` is ``_UNCHANGED``. Everything else is still the Python code's. ``_active`` is read
    at each use (:func:`configure` replaces the Redactor).
    """
    return (_active, redact_attributes, redact_body, redact_message, _PLAIN, _UNCHANGED, _MESSAGE_CACHE_LEN_MAX)


def redact_access_args(args: Any) -> Any:
    """uvicorn's access-log arguments ``(client, method, path with query, version, status)``, redacted.

    The path carries the raw query string; its sensitive parameters are redacted as in ``url.query``.
    Returns ``args`` itself when there is nothing to redact.
    """
    if type(args) is not tuple or len(args) < 3:
        return args
    path = args[2]
    if type(path) is not str or "?" not in path:
        return args
    new = _active[0].redact_url(path)
    return args if new is path else (*args[:2], new, *args[3:])
