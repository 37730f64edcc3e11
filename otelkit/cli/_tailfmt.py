"""One-line renderings of received spans, log records and metric points, for ``otelkit tail``.

Pure functions: a record in, a string out. Colors are ANSI escapes added only when asked
(``color=True``); :func:`use_color` decides that the usual way (a TTY, ``NO_COLOR`` unset or
empty, ``TERM`` not ``dumb``). Shapes::

    SPAN   12:00:01.123  checkout  GET /items/{item_id}  SERVER  2.1ms  trace=4bf92f…  http.route=/items/{item_id}
    LOG    12:00:01.124  checkout  INFO  fetched item  trace=4bf92f…  item_id=3
    METRIC 12:00:05  checkout  http.server.request.duration histogram count=12 sum=0.034 {http.route=/items/{item_id}}

Times are local unless ``tz`` is given. Values that contain spaces or quotes are JSON-quoted
so a line stays one line and splits on whitespace predictably.

Whatever arrives is printed escaped: a character that is not printable (ESC, BEL, CR, newline, the
C1 controls, U+2028, bidi overrides…) in a span name, attribute key or value, log body, severity or
metric name is written as ``\x1b``/``\n``/``\u2028``, so telemetry can neither forge a line (a
newline followed by ``LOG …``) nor drive the terminal (retitle the window, erase lines). ``--json``
escapes the same characters as ``\u001b``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, TextIO

from otelkit.testing import ReceivedLog, ReceivedMetricPoint, ReceivedRecord, ReceivedSpan

__all__ = [
    "format_duration",
    "format_log",
    "format_metric_point",
    "format_record",
    "format_span",
    "format_value",
    "record_to_json",
    "use_color",
]

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"
_BLUE = "\x1b[34m"
_MAGENTA = "\x1b[35m"
_CYAN = "\x1b[36m"

# Severity number ranges from the OTel logs data model, 4 numbers per name.
_SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_SEVERITY_COLORS = {"TRACE": _DIM, "DEBUG": _DIM, "INFO": _GREEN, "WARN": _YELLOW, "ERROR": _RED, "FATAL": _RED}


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every character :meth:`str.isprintable` refuses escaped (``\x1b``, ``\n``, ``\u2028``…)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)


def _json_safe(text: str) -> str:
    # json.dumps(ensure_ascii=False) leaves DEL, the C1 controls, U+2028, bidi overrides… raw.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in text)


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to color output written to ``stream``: a TTY, ``NO_COLOR`` unset or empty, ``TERM`` not dumb."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _label(name: str, code: str, color: bool) -> str:
    # A 7-wide first column so that the times line up across the three signals.
    return _paint(name, code, color) + " " * (7 - len(name))


def _severity_color(severity: str) -> str:
    upper = severity.upper()
    for prefix, name in (("WARN", "WARN"), ("ERR", "ERROR"), ("CRIT", "FATAL"), ("FATAL", "FATAL")):
        if upper.startswith(prefix):
            return _SEVERITY_COLORS[name]
    return _SEVERITY_COLORS.get(upper, "")


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color and text else text


def _clock(ns: int, tz: tzinfo | None, *, millis: bool) -> str:
    if ns <= 0:
        return "--:--:--.---" if millis else "--:--:--"
    moment = datetime.fromtimestamp(ns / 1e9, tz)
    text = moment.strftime("%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}" if millis else text


def format_duration(ns: int) -> str:
    """``850µs``, ``2.1ms``, ``1.25s``, ``2m05s``."""
    if ns < 0:
        ns = 0
    if ns < 1_000_000:
        return f"{ns / 1000:.0f}µs"
    if ns < 1_000_000_000:
        ms = ns / 1_000_000
        return f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"
    seconds = ns / 1e9
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _number(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def format_value(value: Any) -> str:
    """An attribute or body value as text: bare when safe, JSON-quoted when it has spaces or quotes."""
    if isinstance(value, str):
        if value and not any(c.isspace() or c in "\"'\\" for c in value) and value.isprintable():
            return value
        return _json_safe(json.dumps(value, ensure_ascii=False))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{escape(str(k))}={format_value(v)}" for k, v in value.items()) + "}"
    return format_value(str(value))


_MAX_VALUE = 160


def _short(text: str) -> str:
    # A stack trace or a large payload would drown the live view; --json prints values whole.
    return text if len(text) <= _MAX_VALUE else f"{text[: _MAX_VALUE - 1]}…"


def _attrs(attributes: Mapping[str, Any], color: bool, sep: str = " ") -> str:
    return sep.join(
        f"{_paint(escape(key), _DIM, color)}={_short(format_value(value))}" for key, value in attributes.items()
    )


def _service(record: ReceivedSpan | ReceivedLog | ReceivedMetricPoint) -> str:
    return format_value(record.service_name) if record.service_name else "-"


def _short_trace(trace_id: str, color: bool) -> str:
    return _paint(f"trace={trace_id[:6]}…", _DIM, color)


def format_span(span: ReceivedSpan, *, color: bool = False, tz: tzinfo | None = None) -> str:
    """``SPAN   12:00:01.123  checkout  GET /items/{item_id}  SERVER  2.1ms  trace=4bf92f…  k=v …``."""
    parts = [
        _paint(_clock(span.start_time_ns, tz, millis=True), _DIM, color),
        _service(span),
        _paint(escape(span.name), _BOLD, color),
        escape(span.kind),
        format_duration(span.duration_ns),
    ]
    if span.status_code == "ERROR":
        parts.append(
            _paint("ERROR" + (f" {format_value(span.status_message)}" if span.status_message else ""), _RED, color)
        )
    parts.append(_short_trace(span.trace_id, color))
    if span.attributes:
        parts.append(_attrs(span.attributes, color))
    return _label("SPAN", _CYAN, color) + "  ".join(parts)


def _severity(log: ReceivedLog) -> str:
    if log.severity_text:
        return escape(log.severity_text)
    if 1 <= log.severity_number <= 24:
        return _SEVERITY_NAMES[(log.severity_number - 1) // 4]
    return "-"


def _body_text(body: Any) -> str:
    if not isinstance(body, str):
        return format_value(body)  # rendered (and quoted) like an attribute value
    # One record, one line: backslashes doubled so an escape in the body cannot pass for ours.
    return escape(body.replace("\\", "\\\\")) or '""'


def format_log(log: ReceivedLog, *, color: bool = False, tz: tzinfo | None = None) -> str:
    """``LOG    12:00:01.124  checkout  INFO  fetched item  trace=4bf92f…  k=v …``."""
    severity = _severity(log)
    body_text = _body_text(log.body)
    parts = [
        _paint(_clock(log.time_ns, tz, millis=True), _DIM, color),
        _service(log),
        _paint(severity, _severity_color(severity), color),
        body_text,
    ]
    if log.event_name:
        parts.append(f"event={format_value(log.event_name)}")
    if log.trace_id:
        parts.append(_short_trace(log.trace_id, color))
    if log.attributes:
        parts.append(_attrs(log.attributes, color))
    return _label("LOG", _BLUE, color) + "  ".join(parts)


def format_metric_point(point: ReceivedMetricPoint, *, color: bool = False, tz: tzinfo | None = None) -> str:
    """``METRIC 12:00:05  checkout  http.server.request.duration histogram count=12 sum=0.034 {k=v, …}``."""
    if point.type in ("sum", "gauge"):
        values = f"value={_number(point.value)}"
    else:
        values = f"count={_number(point.count)} sum={_number(point.sum)}"
    line = " ".join([_paint(escape(point.name), _BOLD, color), escape(point.type), values])
    if point.attributes:
        line += " {" + _attrs(point.attributes, color, sep=", ") + "}"
    parts = [_paint(_clock(point.time_ns, tz, millis=False), _DIM, color), _service(point), line]
    return _label("METRIC", _MAGENTA, color) + "  ".join(parts)


def format_record(record: ReceivedRecord, *, color: bool = False, tz: tzinfo | None = None) -> str:
    """Dispatch to :func:`format_span`, :func:`format_log` or :func:`format_metric_point`."""
    if isinstance(record, ReceivedSpan):
        return format_span(record, color=color, tz=tz)
    if isinstance(record, ReceivedLog):
        return format_log(record, color=color, tz=tz)
    return format_metric_point(record, color=color, tz=tz)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def record_to_json(record: ReceivedRecord) -> str:
    """One JSON object: ``{"signal": "span"|"log"|"metric", …all record fields}``."""
    if isinstance(record, ReceivedSpan):
        data: dict[str, Any] = {"signal": "span", **dataclasses.asdict(record), "duration_ns": record.duration_ns}
    elif isinstance(record, ReceivedLog):
        data = {"signal": "log", **dataclasses.asdict(record)}
    else:
        data = {"signal": "metric", **dataclasses.asdict(record)}
    return _json_safe(json.dumps(data, ensure_ascii=False, default=_json_default, separators=(",", ":")))
