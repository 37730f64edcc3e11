"""Failures of code that runs on its own in the user's process (hooks, flushes): reported, never raised.

otelkit sets the root level to INFO, so a failure logged at DEBUG is invisible. :func:`report`
logs the exception being handled at WARNING with its traceback the first time for each kind of
failure, then at most once per ``OTELKIT_EXPORT_ERROR_INTERVAL`` (default 30 s) per kind, saying
how many were left out in between: a hook failing on every task stays visible without flooding.
"""

from __future__ import annotations

import logging
import threading
import time

from otelkit._runtime import state
from otelkit.settings import Settings

__all__ = ["report"]

_log = logging.getLogger("otelkit")
_lock = threading.Lock()
_clock = time.monotonic
# kind -> (time of the last report, failures left out since)
_seen: dict[str, tuple[float, int]] = {}
_DEFAULT_INTERVAL = Settings().export_error_interval


def report(what: str, logger: logging.Logger = _log) -> None:
    """Log the exception being handled as ``otelkit: {what}``, rate-limited per ``what``.

    Call it in an ``except`` block; it never raises.
    """
    telemetry = state.telemetry()
    interval = telemetry.settings.export_error_interval if telemetry is not None else _DEFAULT_INTERVAL
    now = _clock()
    with _lock:
        last = _seen.get(what)
        if last is not None and now - last[0] < interval:
            _seen[what] = (last[0], last[1] + 1)
            return
        left_out = last[1] if last is not None else 0
        _seen[what] = (now, 0)
    more = f" ({left_out} more failures since the last report)" if left_out else ""
    logger.warning("otelkit: %s%s", what, more, exc_info=True)
