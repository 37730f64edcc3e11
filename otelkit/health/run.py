"""Running one health check, bounded on its own: whatever it does, the probe gets an outcome in time.

The rules, and why:

- **A sync check runs in a thread of its own** (a daemon thread, one per run), never in a shared
  pool: four hung non-critical checks once filled a pool of four, and an instant critical check
  then waited behind them until it timed out — ``/health/ready`` answered 503 for ever. A run
  still going from an earlier probe (a hung connection) is waited for again instead of being
  started twice, so a check never has more than one thread. Daemon threads do not hold up the
  interpreter's exit: Ctrl-C stops the app while a check hangs (a pool's workers are joined at exit).
- **An async check runs as a task of its own**, cancelled when it times out (a check that ignores
  the cancellation keeps running and is waited for again by the next probe, never started twice).
- **Any way a check ends is its outcome**: a value, an exception of any kind — ``SystemExit``,
  ``KeyboardInterrupt`` or ``CancelledError`` raised by a sync check, ``SystemExit`` by an async
  one — or its own cancellation. Nothing a check raises reaches the event loop or the server (a
  ``SystemExit`` from a check used to end uvicorn). Only the cancellation of the probe itself (the
  client went away, the server is stopping) propagates.

:func:`json_safe` turns whatever a check puts in its details into what JSON can hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as _dt
import enum
import inspect
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from otelkit._runtime import redact

__all__ = ["CANCELLED", "TIMED_OUT", "Outcome", "call", "error_message", "json_safe"]

Outcome = tuple[str, Any]
"""``("ok", value)``, ``("error", exception)``, :data:`TIMED_OUT` or :data:`CANCELLED`."""

TIMED_OUT: Outcome = ("timeout", None)
CANCELLED: Outcome = ("cancelled", None)


def _suppressed(func: Callable[[], Any]) -> Any:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return func()


class ThreadRun:
    """One run of a sync check in a daemon thread; any number of probes (event loops) may wait for it."""

    def __init__(self, func: Callable[[], Any], name: str) -> None:
        self._lock = threading.Lock()
        self._outcome: Outcome | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Outcome]]] = []
        context = contextvars.copy_context()
        thread = threading.Thread(target=self._target, args=(context, func), name=f"otelkit-health {name}", daemon=True)
        thread.start()

    def _target(self, context: contextvars.Context, func: Callable[[], Any]) -> None:
        outcome: Outcome
        try:
            outcome = ("ok", context.run(_suppressed, func))
        except BaseException as exc:  # in a thread of its own, every way out is this check's result
            outcome = ("error", exc)
        with self._lock:
            self._outcome = outcome
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future, outcome)

    @property
    def done(self) -> bool:
        return self._outcome is not None

    async def wait(self, timeout: float) -> Outcome:
        """The outcome, or :data:`TIMED_OUT` after ``timeout`` seconds (the thread goes on)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._outcome is not None:
                return self._outcome
            future: asyncio.Future[Outcome] = loop.create_future()
            waiter = (loop, future)
            self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, max(timeout, 0.0))
        except asyncio.TimeoutError:
            return TIMED_OUT
        finally:
            # A timed-out or cancelled probe forgets its wait: a check hung for days is probed every
            # few seconds, and each left-over future would keep its event loop referenced.
            with self._lock, contextlib.suppress(ValueError):  # the thread ended and took the list already
                self._waiters.remove(waiter)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


async def _guarded(make: Callable[[], Any]) -> Outcome:
    try:
        value = make()
        if inspect.isawaitable(value):
            value = await value
        return ("ok", value)
    except asyncio.CancelledError:
        raise  # the task's own cancellation: seen as task.cancelled()
    except (Exception, SystemExit) as exc:  # a Task would re-raise SystemExit into the event loop
        return ("error", exc)


async def _in_task(check: Any, make: Callable[[], Any], deadline: float) -> Outcome:
    loop = asyncio.get_running_loop()
    task = check.inflight
    if not (isinstance(task, asyncio.Task) and not task.done() and task.get_loop() is loop):
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        with suppress_instrumentation():  # the task copies this context
            task = loop.create_task(_guarded(make), name=f"otelkit-health {check.name}")
        check.inflight = task
    try:
        done, _ = await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.0))
    except asyncio.CancelledError:
        task.cancel()  # the probe itself was cancelled: so is the check
        raise
    if not done:
        task.cancel()
        return TIMED_OUT
    if task.cancelled():
        return CANCELLED
    try:
        outcome: Outcome = task.result()
    except BaseException as exc:  # what _guarded lets through (GeneratorExit…) is the check's too
        return ("error", exc)
    return outcome


async def call(check: Any, timeout: float) -> Outcome:
    """Run ``check`` (its ``func``, ``is_async``, ``name``, ``inflight``) for at most ``timeout`` seconds.

    Never raises, except :class:`asyncio.CancelledError` when the calling task is cancelled.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if check.is_async:
        return await _in_task(check, check.func, deadline)
    run = check.inflight
    if not isinstance(run, ThreadRun) or run.done:
        run = ThreadRun(check.func, check.name)
        check.inflight = run
    outcome = await run.wait(deadline - loop.time())
    if outcome[0] == "ok" and inspect.isawaitable(outcome[1]):  # a sync function returning a coroutine
        awaitable = outcome[1]
        return await _in_task(check, lambda: awaitable, deadline)
    return outcome


def error_message(exc: BaseException) -> str:
    """``Type: first line of the message``, redacted and cut at 300 characters."""
    # First line only: drivers append the SQL statement, parameters and help links below it.
    try:
        text = str(exc).strip().split("\n", 1)[0]
    except Exception:  # an exception whose __str__ fails
        text = ""
    return redact.redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


_MAX_DEPTH = 8


def json_safe(value: Any, _path: tuple[int, ...] = ()) -> Any:
    """``value`` with everything JSON cannot hold made text: dates as ISO 8601, non-finite floats,
    sets (sorted), bytes, enums and any other object as ``str()``; cycles and depth past 8 cut."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, _path)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if id(value) in _path:
            return "<cycle>"
        if len(_path) >= _MAX_DEPTH:
            return "…"
        path = (*_path, id(value))
        if isinstance(value, Mapping):
            return {_text(k): json_safe(v, path) for k, v in value.items()}
        items = [json_safe(v, path) for v in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return items
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value))
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"
