"""otelkit's console output on stderr, the root level, and the rate limits on the SDK's own warnings.

The SDK's records (exporter failures) pass one gate on the ``opentelemetry`` logger, whatever the
app's handlers: one line per message per ``OTELKIT_EXPORT_ERROR_INTERVAL`` (:func:`install_sdk_gate`).

See :mod:`otelkit._runtime.logs` for what otelkit does to logging and why.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace

from otelkit._runtime import redact, sdk_compat
from otelkit._runtime.logs import line as console_line
from otelkit._runtime.logs.facts import facts, field_names
from otelkit._runtime.otlp import native
from otelkit.context import REQUEST_ID_KEY, exception_context, get_request_id

__all__ = [
    "OTEL_INTERNAL_PREFIX",
    "ConsoleFormatter",
    "console_handler",
    "install_console",
    "install_sdk_gate",
    "is_console_handler",
    "is_otel_handler",
    "redact_access_logs",
    "set_root_level",
    "throttle_sdk_queue_warnings",
]

OTEL_INTERNAL_PREFIX = "opentelemetry"

# LogRecord attributes that are not user ``extra=`` fields.
_RESERVED = frozenset(
    (
        "args",
        "asctime",
        "created",
        "exc_info",
        "exc_text",
        "filename",
        "funcName",
        "levelname",
        "levelno",
        "lineno",
        "message",
        "module",
        "msecs",
        "msg",
        "name",
        "pathname",
        "process",
        "processName",
        "relativeCreated",
        "stack_info",
        "thread",
        "threadName",
        "taskName",
        "color_message",  # uvicorn
        "otelkit_suppressed",
        REQUEST_ID_KEY,  # set by the OTel handler's filter; the console prints it as request_id
    )
)


def _extras(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = record.__dict__
    names = field_names(fields, _RESERVED)
    if not names:
        return {}
    extras = {}
    for name in names:  # a loop, not dict(zip(...)): no iterator objects on every record's path
        extras[name] = fields[name]
    return redact.redact_attributes(extras)


def _configure_native_line(module: Any) -> Callable[[logging.LogRecord, Any], str | None]:
    first_keys = console_line.FIRST_KEYS
    module.configure_line(_RESERVED, first_keys, redact.redact_message, redact.redact_attributes)
    return module.json_line  # type: ignore[no-any-return]


# The C encoder's console line (cencoder.c's json_line): format_json's line with _extras and
# redact_message, for the common record; None from it, or no C module, and format_json writes it.
_native_line: Callable[[logging.LogRecord, Any], str | None] | None = native.load(_configure_native_line, None)


def _trace_ids(context: Any = None) -> tuple[str, str]:
    ctx = trace.get_current_span(context).get_span_context()
    if not ctx.is_valid:
        return "", ""
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class ConsoleFormatter(logging.Formatter):
    """Human console output: ``json`` (one object per line) or ``pretty`` (one readable line)."""

    def __init__(self, style: str = "json") -> None:
        super().__init__()
        if style not in ("json", "pretty"):
            raise ValueError(f"unknown console style {style!r}; expected json or pretty")
        self.style_name = style
        self._color = style == "pretty" and sys.stderr.isatty()

    def format(self, record: logging.LogRecord) -> str:
        if self.style_name == "json":  # the production console: the hot path (otelkit._runtime.logs.line)
            native_line = _native_line
            if native_line is not None:
                text = native_line(record, facts(record))
                if text is not None:
                    return text
            return console_line.format_json(self, record, _extras, redact.redact_message)
        message = redact.redact_message(record.getMessage())
        suppressed = getattr(record, "otelkit_suppressed", 0)
        if suppressed:
            message = f"{message} ({suppressed} similar messages suppressed)"
        context = exception_context(record)  # uvicorn's "Exception in ASGI application", after the request
        trace_id, _ = _trace_ids(context)
        request_id = get_request_id(context)
        extras = _extras(record)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        level = record.levelname
        if self._color:
            color = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "41"}.get(level, "0")
            level = f"\x1b[{color}m{level:<5}\x1b[0m"
        else:
            level = f"{level:<5}"
        fields = " ".join(f"{k}={v}" for k, v in extras.items())
        line = f"{stamp} {level} {record.name}  {message}"
        if fields:
            line += f"  {fields}"
        if trace_id:
            line += f"  trace_id={trace_id}"
        if request_id:
            line += f"  request_id={request_id}"
        if record.exc_info:
            line += "\n" + redact.redact_message(self.formatException(record.exc_info))
        return line


class _RateLimitOtelWarnings(logging.Filter):
    """Let through one SDK warning per message template per interval; count the rest."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(OTEL_INTERNAL_PREFIX):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._seen.get(key, (-1e18, 0))
            if now - last < self.interval:
                self._seen[key] = (last, suppressed + 1)
                return False
            self._seen[key] = (now, 0)
        if suppressed:
            record.otelkit_suppressed = suppressed
        return True


class _SdkLogGate(logging.Handler):
    """The one way out for the SDK's own records: rate-limited, then to the root logger's handlers.

    Installed on the ``opentelemetry`` logger with ``propagate = False``, so every record of the
    SDK's loggers passes it, whatever handlers the app put on the root logger (its own console
    after a ``dictConfig``, Celery's). Records the SDK logs below WARNING pass unlimited.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.limiter = _RateLimitOtelWarnings(interval)
        self.addFilter(self.limiter)

    def emit(self, record: logging.LogRecord) -> None:
        suppressed = record.__dict__.pop("otelkit_suppressed", 0)
        if suppressed:
            message = f"{record.getMessage()} ({suppressed} similar messages suppressed)"
            record = logging.makeLogRecord({**record.__dict__, "msg": message, "args": ()})
        found = False
        for handler in logging.getLogger().handlers:
            if is_otel_handler(handler):
                continue  # the SDK's records never go into the logs pipeline
            found = True
            if record.levelno >= handler.level:
                handler.handle(record)
        last_resort = logging.lastResort
        if not found and last_resort is not None and record.levelno >= last_resort.level:
            last_resort.handle(record)


def install_sdk_gate(interval: float) -> _SdkLogGate:
    """Route the SDK's records through :class:`_SdkLogGate` (once); returns the gate."""
    logger = logging.getLogger(OTEL_INTERNAL_PREFIX)
    for handler in logger.handlers:
        if isinstance(handler, _SdkLogGate):
            handler.limiter.interval = interval
            return handler
    gate = _SdkLogGate(interval)
    logger.addHandler(gate)
    logger.propagate = False
    return gate


def uninstall_sdk_gate() -> None:
    """Undo :func:`install_sdk_gate` (tests)."""
    logger = logging.getLogger(OTEL_INTERNAL_PREFIX)
    for handler in list(logger.handlers):
        if isinstance(handler, _SdkLogGate):
            logger.removeHandler(handler)
            logger.propagate = True


_SDK_QUEUE_LOGGER = sdk_compat.SDK_QUEUE_LOGGER


class _MuteAfterQueueFull(logging.Filter):
    """Let one "Queue full, dropping …" warning through, then mute its logger for an interval.

    The SDK's batch processors log that warning for every dropped span or log record: with the
    collector down under load, thousands of records per second (~20 % of the CPU in the benchmark).
    A level above WARNING makes ``logger.warning`` return before any record is built; errors still
    pass. The level comes back after ``interval`` seconds, so an ongoing outage stays visible.
    """

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith("Queue full"):
            with self._lock:
                if self._timer is None:
                    logger = logging.getLogger(_SDK_QUEUE_LOGGER)
                    logger.setLevel(logging.ERROR)
                    self._timer = threading.Timer(self.interval, self._unmute, args=(logger,))
                    self._timer.daemon = True
                    self._timer.start()
        return True

    def _unmute(self, logger: logging.Logger) -> None:
        with self._lock:
            logger.setLevel(logging.NOTSET)
            self._timer = None


def throttle_sdk_queue_warnings(interval: float) -> None:
    """Install :class:`_MuteAfterQueueFull` on the SDK batch processors' logger (once)."""
    logger = logging.getLogger(_SDK_QUEUE_LOGGER)
    if not any(isinstance(f, _MuteAfterQueueFull) for f in logger.filters):
        logger.addFilter(_MuteAfterQueueFull(interval))


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr handler installed by otelkit (recognisable, so it is never installed twice)."""

    def __init__(self) -> None:
        # Resolve sys.stderr at emit time: test runners and daemons swap it.
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        console_line.write_line(self, record, sys.stderr)


def is_otel_handler(handler: logging.Handler) -> bool:
    return sdk_compat.is_otel_logging_handler(handler)


def console_handler() -> logging.Handler | None:
    """otelkit's console handler on the root logger, if it is installed."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _ConsoleHandler):
            return handler
    return None


def install_console(style: str, export_error_interval: float) -> logging.Handler | None:
    """Add otelkit's console handler to the root logger unless the user has a handler there."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _ConsoleHandler):
            return handler
    if style == "off":
        return None
    users = [h for h in root.handlers if not is_otel_handler(h)]
    if users:
        return None
    handler = _ConsoleHandler()
    handler.setFormatter(ConsoleFormatter(style))
    root.addHandler(handler)
    return handler


class _RedactAccessLog(logging.Filter):
    """Redacts the query string in uvicorn's access-log record (``args[2]``: path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        new = redact.redact_access_args(args)
        if new is not args:
            record.args = new
        return True


ACCESS_LOGGER = "uvicorn.access"


def redact_access_logs() -> None:
    """Install :class:`_RedactAccessLog` on uvicorn's access logger (once; ``dictConfig`` keeps logger filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, _RedactAccessLog) for f in logger.filters):
        logger.addFilter(_RedactAccessLog())


def is_console_handler(handler: logging.Handler) -> bool:
    """Whether ``handler`` is otelkit's console handler."""
    return isinstance(handler, _ConsoleHandler)


def set_root_level(level: str) -> None:
    logging.getLogger().setLevel(level)
