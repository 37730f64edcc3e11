"""The console's JSON line, written with the least work, and the write of one line.

:func:`format_json` is the document of :class:`~otelkit._runtime.logs.console.ConsoleFormatter`
(``json`` style), byte for byte what ``json.dumps(doc, default=str, ensure_ascii=False)`` gives,
with the timestamp's second formatted once per second and no encoder set up per call.
:func:`write_line` is ``StreamHandler.emit`` without the flush an unbuffered stream does not need.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from otelkit._runtime.logs.facts import facts

__all__ = ["FIRST_KEYS", "format_json", "iso_millis", "write_line"]


_second: list[tuple[int, str]] = [(-1, "")]  # (second, "YYYY-MM-DDTHH:MM:SS"), replaced whole: atomic


def iso_millis(created: float) -> str:
    """``datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")``, cheaper.

    The same rounding as ``datetime`` (the fraction to microseconds, half to even) and the same
    text; the date and time of each second are formatted once, the milliseconds looked up. Only
    arithmetic the interpreter does itself on a record's path (no ``round``, no format spec: on
    the request's path each distinct C function costs its own cache misses, bench/README.md).
    """
    if created < 0:  # never for a log record; keep datetime's own behaviour there
        import datetime as _dt

        return _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat(timespec="milliseconds")
    second = int(created)
    scaled = (created - second) * 1e6
    micros = int(scaled)
    rest = scaled - micros  # exact: the fraction of a double is a double
    if rest > 0.5 or (rest == 0.5 and micros & 1):  # round half to even, as round() and datetime
        micros += 1
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    cached = _second[0]
    if cached[0] == second:
        text = cached[1]
    else:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second[0] = (second, text)
    return f"{text}.{_MILLIS[micros // 1000]}+00:00"


_MILLIS = tuple(f"{i:03d}" for i in range(1000))


_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None)


def _dumps(doc: Mapping[str, Any]) -> str:
    """``json.dumps(doc, default=str, ensure_ascii=False)`` without building a JSONEncoder per call.

    The C encoder ``json.dumps`` ends in, with the same arguments and a fresh circular-reference
    map per call (so threads never share one).
    """
    if _make_encoder is None or _encode_str is None:  # pragma: no cover - CPython has _json
        return json.dumps(doc, default=str, ensure_ascii=False)
    encoder = _make_encoder({}, str, _encode_str, None, ": ", ", ", False, False, True)
    return "".join(encoder(doc, 0))


_hex: list[tuple[Any, str, str]] = [(None, "", "")]  # (span context, trace id hex, span id hex)


def _ids(context: Any) -> tuple[Any, str, str]:
    """The hex ids of a span context; a request's records share it, so the last one is kept."""
    cached = _hex[0]
    if cached[0] is context:
        return cached
    # As the request id is made (http/asgi.py): one way of writing hex on the request's path, not format()'s.
    entry = (context, context.trace_id.to_bytes(16, "big").hex(), context.span_id.to_bytes(8, "big").hex())
    _hex[0] = entry
    return entry


def format_json(
    formatter: logging.Formatter,
    record: logging.LogRecord,
    extras: Callable[[logging.LogRecord], Mapping[str, Any]],
    message: Callable[[str], str] | None = None,
) -> str:
    """The JSON line of :class:`otelkit._logs.ConsoleFormatter` for ``record``.

    Exactly ``json.dumps(doc, default=str, ensure_ascii=False)`` of the document ``{"timestamp",
    "level", "logger", "message"[, "trace_id", "span_id"][, "request_id"], **extras[,
    "exception"]}`` (an extra field never replaces one of the first ones). The common case — no
    exception, no extra field named like one of them — is written piece by piece: the fixed keys
    as text, the strings through the C string encoder ``json`` uses, extras of plain values as
    ``json`` writes them (:func:`_plain_fields`); anything else builds the document.

    Args:
        formatter: The console formatter (its ``formatException``).
        record: The record.
        extras: The record's ``extra=`` fields, redacted (``otelkit._logs._extras``).
        message: Applied to the message (and exception text) first, e.g. redaction, if given.
    """
    f = facts(record)
    text = f.message if message is None else message(f.message)
    suppressed = getattr(record, "otelkit_suppressed", 0)
    if suppressed:
        text = f"{text} ({suppressed} similar messages suppressed)"
    fields = extras(record)
    context = f.span_context
    valid = context.is_valid
    request_id = f.request_id
    if _encode_str is not None and not record.exc_info:
        tail = _plain_fields(fields) if fields else ""
        if tail is not None:
            enc = _encode_str
            ids = ""
            if valid:
                _, trace_hex, span_hex = _ids(context)
                ids = f', "trace_id": "{trace_hex}", "span_id": "{span_hex}"'
            request = f', "request_id": {enc(request_id)}' if request_id else ""
            return (
                f'{{"timestamp": "{iso_millis(record.created)}", "level": {enc(record.levelname)},'
                f' "logger": {enc(record.name)}, "message": {enc(text)}{ids}{request}{tail}}}'
            )
    doc: dict[str, Any] = {
        "timestamp": iso_millis(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": text,
    }
    if valid:
        _, doc["trace_id"], doc["span_id"] = _ids(context)
    if request_id:
        doc["request_id"] = request_id
    for key, value in fields.items():
        doc.setdefault(key, value)
    if record.exc_info:
        exception = formatter.formatException(record.exc_info)
        doc["exception"] = exception if message is None else message(exception)
    return _dumps(doc)


def _plain_fields(fields: Mapping[str, Any]) -> str | None:
    """``fields`` as the JSON document's last members (``, "key": value`` each), or None.

    For fields whose values are ``str``, ``int``, ``bool`` or ``None`` and whose names are none of
    the line's own keys — what a record's ``extra=`` fields are — written with the C string
    encoder and the interpreter's own int-to-text, exactly as ``json.dumps`` writes them; any
    other value (a float, which may be NaN, a list, an object) or name: None, and the caller
    builds the document.
    """
    enc = _encode_str
    out = ""
    for key, value in fields.items():
        if key in FIRST_KEYS:
            return None
        kind = type(value)
        if kind is str:
            out = f"{out}, {enc(key)}: {enc(value)}"
        elif kind is int:
            out = f"{out}, {enc(key)}: {value}"
        elif kind is bool:
            out = f"{out}, {enc(key)}: {'true' if value else 'false'}"
        elif value is None:
            out = f"{out}, {enc(key)}: null"
        else:
            return None
    return out


_stream_kind: list[tuple[Any, bool]] = [(None, True)]  # (the last stream, whether a line needs a flush)


def _needs_flush(stream: Any) -> bool:
    """Whether a written line can still sit in a buffer of ``stream`` (decided once per stream object).

    A line-buffered text stream flushes when given a newline; one writing through to an unbuffered
    file (stderr, and stdout under ``python -u``/``PYTHONUNBUFFERED``) has no buffer to flush.
    """
    last = _stream_kind[0]
    if last[0] is stream:
        return last[1]
    unbuffered = getattr(stream, "write_through", False) and isinstance(getattr(stream, "buffer", None), io.RawIOBase)
    needs = not (getattr(stream, "line_buffering", False) or unbuffered)
    _stream_kind[0] = (stream, needs)
    return needs


def write_line(handler: logging.Handler, record: logging.LogRecord, stream: Any) -> None:
    """``StreamHandler.emit`` for otelkit's console: the line, then a flush only if the stream needs one.

    The stdlib's flush after each line takes the handler lock again and looks the stream up three
    times; for stderr it has nothing to do (see :func:`_needs_flush`). Nothing is skipped: every
    line is formatted and written, whoever reads it.
    """
    try:
        formatter = handler.formatter  # Handler.format, without its call
        stream.write((handler.format(record) if formatter is None else formatter.format(record)) + "\n")
        if _needs_flush(stream):
            stream.flush()
    except RecursionError:  # as the stdlib: never hide a recursion
        raise
    except Exception:
        handler.handleError(record)


FIRST_KEYS = frozenset(("timestamp", "level", "logger", "message", "trace_id", "span_id", "request_id", "exception"))
