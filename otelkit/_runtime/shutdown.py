"""Flushing and shutting down the three providers, bounded in time, on every way a process ends.

Why this exists:

- uvicorn re-raises SIGTERM after its graceful shutdown with the default handler in place, so the
  process dies without running ``atexit``: the SDK's own exit hooks never flush. otelkit installs a
  SIGTERM handler (only where the default one is in place, only in the main thread) that flushes,
  restores the default and re-raises, so the exit status stays "killed by SIGTERM".
- Celery prefork children with ``--max-tasks-per-child`` exit through ``os._exit``: the Celery hook
  calls :func:`flush_all` from ``worker_process_shutdown``.
- A server's last moment (uvicorn's lifespan shutdown, Celery's ``worker_shutdown``) is not yet
  the end of the process: :func:`finish` flushes spans and logs there and shuts the meter
  provider down, which exports every metric series a last time. The exit hook that follows shuts
  down the rest; a flush there followed by the meter provider's shutdown exported every series
  twice, ~10 ms apart.
- With the collector down the SDK exporters retry for up to ``OTEL_EXPORTER_OTLP_TIMEOUT`` per batch
  and provider ``shutdown()`` waits for them: ~18 s. Here every flush/shutdown runs in daemon
  threads for all three providers at once and is abandoned after ``OTELKIT_SHUTDOWN_TIMEOUT``.
  The providers are created with ``shutdown_on_exit=False`` so the SDK's unbounded atexit hooks
  are not registered behind ours.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from otelkit._runtime import failures

__all__ = ["finish", "flush_all", "install_signal_handlers", "register", "shutdown_all"]

_log = logging.getLogger("otelkit")

_providers: list[Any] = []
_timeout = [3.0]
# Once a flush ran out of time the exporters are stuck retrying (collector down): later flushes
# in the same exit sequence get only a short grace so the total stays near one timeout.
_stalled = [False]
_STALLED_GRACE = 0.5
_lock = threading.Lock()
_atexit_registered = [False]
_shut = [False]
_finished: list[Any] = []  # providers already shut down by finish()


def register(providers: list[Any], timeout: float) -> None:
    """Remember the providers to flush and shut down, and register the atexit hook once."""
    with _lock:
        for provider in providers:
            if provider is not None and provider not in _providers:
                _providers.append(provider)
        _timeout[0] = timeout
        if not _atexit_registered[0]:
            atexit.register(shutdown_all)
            _atexit_registered[0] = True


def _run_bounded(method: str, timeout: float, *, final_metrics: bool = False) -> bool:
    """Call ``method`` on every provider concurrently; give up after ``timeout`` seconds."""
    # Its exporters pace themselves, except now. Another thread (the deferred exporters' warm-up) may
    # be importing it right now: a partly initialised module has no ``unpaced`` yet.
    unpaced = getattr(sys.modules.get("otelkit._runtime.otlp.fast"), "unpaced", None)
    with unpaced() if unpaced is not None else contextlib.nullcontext():
        return _run_bounded_now(method, timeout, final_metrics)


def _is_meter_provider(provider: Any) -> bool:
    return callable(getattr(provider, "get_meter", None))


def _run_bounded_now(method: str, timeout: float, final_metrics: bool = False) -> bool:
    with _lock:
        providers = [p for p in _providers if not any(p is done for done in _finished)]
        if final_metrics:
            _finished.extend(p for p in providers if _is_meter_provider(p))
    if not providers:
        return True
    if _stalled[0]:
        timeout = min(timeout, _STALLED_GRACE)
    deadline = time.monotonic() + timeout
    threads = []
    for provider in providers:
        name = "shutdown" if final_metrics and _is_meter_provider(provider) else method
        fn = getattr(provider, name, None)
        if fn is None:
            continue
        if name == "force_flush":
            args: tuple[Any, ...] = (max(1, int(timeout * 1000)),)
        else:
            args = ()
        thread = threading.Thread(target=_call_quietly, args=(fn, args, method), name=f"otelkit-{method}", daemon=True)
        thread.start()
        threads.append(thread)
    done = True
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        done = done and not thread.is_alive()
    if not done:
        _stalled[0] = True
        _log.warning(
            "otelkit: %s of telemetry did not finish within %.1fs (is the collector reachable?); giving up",
            "flushing" if method == "force_flush" else "shutdown",
            timeout,
        )
    return done


def _call_quietly(fn: Any, args: tuple[Any, ...], method: str) -> None:
    try:
        fn(*args)
    except Exception:
        failures.report(f"{method} of a telemetry provider failed")


def flush_all(timeout: float | None = None) -> bool:
    """Export everything buffered in the three providers, waiting at most ``timeout`` seconds."""
    if _shut[0]:
        return True
    return _run_bounded("force_flush", _timeout[0] if timeout is None else timeout)


def finish(timeout: float | None = None) -> bool:
    """The server is done: flush spans and logs, export metrics a last time (meter provider shut down).

    The exit hook that follows shuts the span and log providers down and leaves the meter
    provider alone, so every metric series is exported once at the end, not twice.
    """
    if _shut[0]:
        return True
    return _run_bounded("force_flush", _timeout[0] if timeout is None else timeout, final_metrics=True)


def shutdown_all(timeout: float | None = None) -> bool:
    """Flush and shut down the providers, bounded in time. Later calls do nothing."""
    with _lock:
        if _shut[0]:
            return True
        _shut[0] = True
    # Provider shutdown exports what is buffered (batch queues, a last metric collection): no
    # separate flush first, which would export every metric point twice.
    return _run_bounded("shutdown", _timeout[0] if timeout is None else timeout)


def _on_sigterm(signum: int, frame: Any) -> None:
    try:
        shutdown_all()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def install_signal_handlers() -> bool:
    """Install the flushing SIGTERM handler where the default handler is in place.

    Only from the main thread (Python's rule) and only over ``SIG_DFL``: an app or server that
    installs its own handler later (uvicorn, Celery) keeps it, and uvicorn restores ours before it
    re-raises. Returns whether the handler was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            return True
        if current not in (signal.SIG_DFL, None):
            return False
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return False
    return True
