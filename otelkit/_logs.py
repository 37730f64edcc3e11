"""Logs: stdlib logging (and structlog through it) into the OTel logs SDK, plus console output.

What otelkit does to logging, and why:

- The root logger's level is set to ``OTELKIT_LOG_LEVEL`` (INFO): Python's default WARNING would
  drop every INFO record before any handler sees it.
- The OTel handler (opentelemetry-instrumentation-logging's ``LoggingHandler``, attached to the root
  logger) gets a filter dropping the SDK's own ``opentelemetry.*`` records: an exporter failure
  logged into a dead logs pipeline would never be seen and would feed itself.
- Loggers that do not propagate to root but have handlers of their own (uvicorn's ``uvicorn`` and
  ``uvicorn.access``) get the OTel handler too, after every ``dictConfig``/``fileConfig`` call:
  uvicorn configures its loggers after otelkit has run. Each record is exported exactly once.
- Records logged while a request is handled carry its id (:mod:`otelkit.context`): the OTel
  attribute ``request.id``, the console field ``request_id``. Only when there is one.
- A console handler on stderr (``OTELKIT_LOG_CONSOLE``): JSON lines in production, a readable line
  in development, both carrying ``trace_id``/``span_id`` of the active span and ``extra=`` fields
  (sensitive ones redacted as in the exporters, :mod:`otelkit._runtime.redact`).
  It is only added when the root logger has no handler of the user's. SDK warnings (exporter
  failures) reach it, rate-limited to one line per ``OTELKIT_EXPORT_ERROR_INTERVAL`` per message.
- structlog, when installed and not configured by the app, is routed through stdlib with
  ``render_to_log_kwargs`` so its key-value pairs become OTel attributes (:func:`configure_structlog`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import logging.config
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from otelkit._runtime import redact
from otelkit.context import REQUEST_ID_KEY, get_request_id

__all__ = [
    "ConsoleFormatter",
    "configure_structlog",
]

_OTEL_INTERNAL_PREFIX = "opentelemetry"

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


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")}
    return redact.redact_attributes(extras)  # type: ignore[return-value]


def _trace_ids() -> tuple[str, str]:
    ctx = trace.get_current_span().get_span_context()
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
        message = record.getMessage()
        suppressed = getattr(record, "otelkit_suppressed", 0)
        if suppressed:
            message = f"{message} ({suppressed} similar messages suppressed)"
        trace_id, span_id = _trace_ids()
        request_id = get_request_id()
        extras = _extras(record)
        if self.style_name == "json":
            doc: dict[str, Any] = {
                "timestamp": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
            }
            if trace_id:
                doc["trace_id"] = trace_id
                doc["span_id"] = span_id
            if request_id:
                doc["request_id"] = request_id
            for key, value in extras.items():
                doc.setdefault(key, value)
            if record.exc_info:
                doc["exception"] = self.formatException(record.exc_info)
            return json.dumps(doc, default=str, ensure_ascii=False)
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
            line += "\n" + self.formatException(record.exc_info)
        return line


class _DropOtelInternal(logging.Filter):
    """Keep the SDK's own records out of the OTel logs pipeline (no feedback loop).

    Also drops uvicorn's ``color_message`` (the message again with ANSI codes) from the record:
    it would become a useless attribute on every uvicorn log record; and adds the request id of
    the active context as the attribute ``request.id``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_OTEL_INTERNAL_PREFIX):
            return False
        if "color_message" in record.__dict__:
            del record.__dict__["color_message"]
        request_id = get_request_id()
        if request_id is not None:
            record.__dict__[REQUEST_ID_KEY] = request_id
        return True


class _RateLimitOtelWarnings(logging.Filter):
    """Let through one SDK warning per message template per interval; count the rest."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(_OTEL_INTERNAL_PREFIX):
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


_SDK_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"


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

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _is_otel_handler(handler: logging.Handler) -> bool:
    return type(handler).__name__ == "LoggingHandler" and type(handler).__module__.startswith("opentelemetry")


def otel_handler() -> logging.Handler | None:
    """The OTel logs handler on the root logger, if one is installed."""
    for handler in logging.getLogger().handlers:
        if _is_otel_handler(handler):
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
    users = [h for h in root.handlers if not _is_otel_handler(h)]
    if users:
        return None
    handler = _ConsoleHandler()
    handler.setFormatter(ConsoleFormatter(style))
    handler.addFilter(_RateLimitOtelWarnings(export_error_interval))
    root.addHandler(handler)
    return handler


def set_root_level(level: str) -> None:
    logging.getLogger().setLevel(level)


def prepare_otel_handler(handler: logging.Handler) -> None:
    """Filter the SDK's own records out of ``handler`` and attach it to non-propagating loggers."""
    if not any(isinstance(f, _DropOtelInternal) for f in handler.filters):
        handler.addFilter(_DropOtelInternal())
    _prepared[0] = handler
    _attach_to_isolated_loggers(handler)
    _wrap_config_functions()


def _attach_to_isolated_loggers(handler: logging.Handler) -> None:
    manager = logging.Logger.manager
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or logger.propagate or not logger.handlers:
            continue
        if name.startswith(_OTEL_INTERNAL_PREFIX) or handler in logger.handlers:
            continue
        logger.addHandler(handler)
        _restyle_uvicorn(logger)


def _restyle_uvicorn(logger: logging.Logger) -> None:
    # uvicorn's default console formatters become ours, so production output is one JSON format.
    root_console = next((h for h in logging.getLogger().handlers if isinstance(h, _ConsoleHandler)), None)
    if root_console is None or not logger.name.startswith("uvicorn"):
        return
    for h in logger.handlers:
        if type(h.formatter).__module__ == "uvicorn.logging":
            h.setFormatter(root_console.formatter)


_wrapped_marker = "_otelkit_wrapped"
_prepared: list[logging.Handler | None] = [None]


def _wrap_config_functions() -> None:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(fn, _wrapped_marker, False):
            return fn

        def configured(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                try:
                    if _prepared[0] is not None:
                        _attach_to_isolated_loggers(_prepared[0])
                except Exception:  # never break the app's logging setup
                    logging.getLogger("otelkit").debug("re-attaching the OTel log handler failed", exc_info=True)

        setattr(configured, _wrapped_marker, True)
        configured.__wrapped__ = fn  # type: ignore[attr-defined]
        return configured

    logging.config.dictConfig = wrap(logging.config.dictConfig)
    logging.config.fileConfig = wrap(logging.config.fileConfig)


def configure_structlog(*, force: bool = False) -> bool:
    """Route structlog through stdlib logging so its fields become OTel log attributes.

    Does nothing when structlog is not installed, or when the app already configured it (unless
    ``force``). Returns whether structlog was configured.
    """
    try:
        import structlog
    except ImportError:
        return False
    if structlog.is_configured() and not force:
        return False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return True
