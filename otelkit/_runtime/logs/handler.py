"""The OTel log handler otelkit prepares: no SDK feedback, request ids, non-propagating loggers too.

See :mod:`otelkit._runtime.logs` for what otelkit does to logging and why. The prepared handler is
kept by :mod:`otelkit._runtime.state` (the Celery hooks add their task fields to it).
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Callable
from typing import Any

from otelkit._runtime import state
from otelkit._runtime.logs.console import OTEL_INTERNAL_PREFIX, console_handler, is_otel_handler
from otelkit.context import REQUEST_ID_KEY, get_request_id

__all__ = ["otel_handler", "prepare_otel_handler"]


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
        request_id = get_request_id()
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
            h.setFormatter(root_console.formatter)


_wrapped_marker = "_otelkit_wrapped"


def _wrap_config_functions() -> None:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(fn, _wrapped_marker, False):
            return fn

        def configured(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                try:
                    prepared = state.otel_log_handler()
                    if prepared is not None:
                        _attach_to_isolated_loggers(prepared)
                except Exception:  # never break the app's logging setup
                    logging.getLogger("otelkit").debug("re-attaching the OTel log handler failed", exc_info=True)

        setattr(configured, _wrapped_marker, True)
        configured.__wrapped__ = fn  # type: ignore[attr-defined]
        return configured

    logging.config.dictConfig = wrap(logging.config.dictConfig)
    logging.config.fileConfig = wrap(logging.config.fileConfig)
