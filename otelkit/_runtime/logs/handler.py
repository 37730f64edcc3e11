"""The OTel log handler otelkit prepares: no SDK feedback, request ids, non-propagating loggers too.

See :mod:`otelkit._runtime.logs` for what otelkit does to logging and why. The prepared handler is
kept by :mod:`otelkit._runtime.state` (the Celery hooks add their task fields to it).
"""

from __future__ import annotations

import datetime as _dt
import logging
import logging.config
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from otelkit._runtime import failures, state
from otelkit._runtime.logs import fastemit
from otelkit._runtime.logs.console import OTEL_INTERNAL_PREFIX, console_handler, is_console_handler, is_otel_handler
from otelkit._runtime.logs.facts import facts
from otelkit.context import REQUEST_ID_KEY, exception_context

__all__ = ["after_app_config", "otel_handler", "prepare_otel_handler"]


class _DropOtelInternal(logging.Filter):
    """Keep the SDK's own records out of the OTel logs pipeline (no feedback loop).

    Also drops uvicorn's ``color_message`` (the message again with ANSI codes) from the record:
    it would become a useless attribute on every uvicorn log record; and adds the request id of
    the active context as the attribute ``request.id``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(OTEL_INTERNAL_PREFIX):
            return False
        if "color_message" in record.__dict__:
            del record.__dict__["color_message"]
        request_id = facts(record).request_id  # the exception's request context for a late exception record
        if request_id is not None:
            record.__dict__[REQUEST_ID_KEY] = request_id
        return True


def otel_handler() -> logging.Handler | None:
    """The OTel logs handler on the root logger, if one is installed."""
    for handler in logging.getLogger().handlers:
        if is_otel_handler(handler):
            return handler
    return None


def prepare_otel_handler(handler: logging.Handler) -> None:
    """Filter the SDK's own records out of ``handler`` and attach it to non-propagating loggers."""
    if not any(isinstance(f, _DropOtelInternal) for f in handler.filters):
        handler.addFilter(_DropOtelInternal())
    _convert_attribute_values(handler)
    fastemit.speed_up(handler)  # after the conversion: the fast emit calls the handler's _get_attributes
    state.set_otel_log_handler(handler)
    _attach_to_isolated_loggers(handler)
    _wrap_config_functions()


def _attach_to_isolated_loggers(handler: logging.Handler) -> None:
    manager = logging.Logger.manager
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or logger.propagate or not logger.handlers:
            continue
        if name.startswith(OTEL_INTERNAL_PREFIX) or handler in logger.handlers:
            continue
        logger.addHandler(handler)
        _restyle_uvicorn(logger)


def _restyle_uvicorn(logger: logging.Logger) -> None:
    # uvicorn's default console formatters become ours, so production output is one JSON format.
    root_console = console_handler()
    if root_console is None or not logger.name.startswith("uvicorn"):
        return
    for h in logger.handlers:
        if type(h.formatter).__module__ == "uvicorn.logging":
            h._otelkit_formatter = h.formatter  # type: ignore[attr-defined]  # given back by _unstyle_uvicorn
            h.setFormatter(root_console.formatter)


def _unstyle_uvicorn() -> None:
    """The app configured the console itself: uvicorn's handlers get their own formatters back."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        for h in getattr(logger, "handlers", ()):
            original = h.__dict__.pop("_otelkit_formatter", None)
            if original is not None:
                h.setFormatter(original)


def _own_enabled_loggers() -> list[logging.Logger]:
    return [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
        and not logger.disabled
        and name.startswith((OTEL_INTERNAL_PREFIX, "otelkit"))
    ]


def after_app_config(root_handlers_before: list[logging.Handler], enabled_before: list[logging.Logger]) -> None:
    """What otelkit does after the app configured logging (``dictConfig``, ``fileConfig``, Celery).

    The app's handlers stay as they are. The OTel handler goes back on the root logger if the
    app's configuration removed it (logs keep being exported), and on every logger that does not
    propagate. When the app put its own console on the root logger, otelkit's is gone and uvicorn's
    handlers get their own formatters back: one console, the app's. otelkit's and the SDK's
    loggers that the configuration disabled only as "existing loggers" are enabled again, so
    exporter failures stay visible.
    """
    handler = state.otel_log_handler()
    root = logging.getLogger()
    if handler is not None and handler in root_handlers_before and handler not in root.handlers:
        root.addHandler(handler)
    if not any(is_console_handler(h) for h in root.handlers) and any(not is_otel_handler(h) for h in root.handlers):
        _unstyle_uvicorn()
    for logger in enabled_before:
        logger.disabled = False
    if handler is not None:
        _attach_to_isolated_loggers(handler)


# Attribute value types the SDK takes as they are; anything else is converted by _plain.
_PLAIN_TYPES = frozenset((str, int, float, bool, bytes, type(None)))


def _plain(value: Any) -> Any:
    """``value`` as an attribute value the SDK accepts without a warning.

    Dates and times become ISO 8601 strings (Celery's ``eta`` on every retried or delayed task),
    mappings and lists are converted inside, anything else becomes ``str(value)`` (a websocket's
    ``weakref.proxy``, a UUID, an enum…), or its type name when even that fails.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, str):  # str subclasses (str enums)
        return str(value)
    if isinstance(value, (int, float, bytes)):  # int subclasses (IntEnum, bool is plain)
        return value
    try:
        return str(value)
    except Exception:  # a dead weakref.proxy, a broken __str__
        return f"<{kind.__name__}>"


def _convert_attribute_values(handler: logging.Handler) -> None:
    """Make the OTel handler hand the SDK only values it accepts (:func:`_plain`), in the right context.

    Without this the SDK logs "Invalid type … for attribute value" for every such record. Only the
    ``extra=`` fields the handler already picked are looked at, one type check each; a record is
    otherwise only asked whether it carries an exception.
    """
    original = getattr(handler, "_get_attributes", None)
    if original is None or getattr(original, _wrapped_marker, False):
        return

    def get_attributes(record: logging.LogRecord) -> Any:
        result = original(record)
        attributes = result[0] if type(result) is tuple else result
        for key, value in attributes.items():
            if type(value) not in _PLAIN_TYPES:
                attributes[key] = _plain(value)
        return result

    setattr(get_attributes, _wrapped_marker, True)
    handler._get_attributes = get_attributes  # type: ignore[attr-defined]
    translate = getattr(handler, "_translate", None)
    if translate is not None:
        handler._translate = _in_exception_context(translate)  # type: ignore[attr-defined]


def _in_exception_context(translate: Callable[[logging.LogRecord], Any]) -> Callable[[logging.LogRecord], Any]:
    """The handler reads the trace context from the current context: for the record of an exception
    that escaped a request after it ended, the request's is made current while it is translated."""

    def translated(record: logging.LogRecord) -> Any:
        if not record.exc_info:
            return translate(record)
        context = exception_context(record)
        if context is None:
            return translate(record)
        token = otel_context.attach(context)
        try:
            return translate(record)
        finally:
            otel_context.detach(token)

    return translated


_wrapped_marker = "_otelkit_wrapped"


def _wrap_config_functions() -> None:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(fn, _wrapped_marker, False):
            return fn

        def configured(*args: Any, **kwargs: Any) -> Any:
            before = list(logging.getLogger().handlers)
            enabled = _own_enabled_loggers()
            try:
                return fn(*args, **kwargs)
            finally:
                try:
                    after_app_config(before, enabled)
                except Exception:  # never break the app's logging setup
                    failures.report("re-attaching the OTel log handler after a logging config call failed")

        setattr(configured, _wrapped_marker, True)
        configured.__wrapped__ = fn  # type: ignore[attr-defined]
        return configured

    logging.config.dictConfig = wrap(logging.config.dictConfig)
    logging.config.fileConfig = wrap(logging.config.fileConfig)
    logging.basicConfig = _wrap_basic_config(wrap(logging.basicConfig))


def _wrap_basic_config(configured: Callable[..., Any]) -> Callable[..., Any]:
    """``logging.basicConfig`` as if otelkit had not run first.

    ``basicConfig`` does nothing when the root logger has handlers, and under the launcher
    otelkit's console and OTel handler are there before the app's code runs: the app's format
    (and file, stream) would be silently ignored. While the root logger holds only otelkit's
    handlers they step aside for the call; the OTel handler comes back afterwards, otelkit's
    console only if the call added no handler.
    """
    if getattr(configured, "_otelkit_basic", False):
        return configured

    def basic_config(*args: Any, **kwargs: Any) -> Any:
        root = logging.getLogger()
        ours = [h for h in root.handlers if is_console_handler(h) or is_otel_handler(h)]
        if not ours or len(ours) != len(root.handlers) or kwargs.get("force"):
            return configured(*args, **kwargs)
        for handler in ours:
            root.removeHandler(handler)
        try:
            return configured(*args, **kwargs)
        finally:
            added = bool(root.handlers)
            for handler in ours:
                if handler not in root.handlers and (is_otel_handler(handler) or not added):
                    root.addHandler(handler)
            if added:
                _unstyle_uvicorn()

    basic_config._otelkit_basic = True  # type: ignore[attr-defined]
    basic_config.__wrapped__ = configured  # type: ignore[attr-defined]
    return basic_config
