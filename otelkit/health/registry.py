"""The registry of health checks: :class:`Health`, what a check returns, and the default ``health``.

See :mod:`otelkit.health` for the endpoints and the rules checks follow.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import enum
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otelkit._runtime import redact

__all__ = ["DEFAULT_TIMEOUT", "CheckFunc", "CheckResult", "Health", "HealthReport", "HealthStatus", "health"]

_log = logging.getLogger("otelkit.health")

DEFAULT_TIMEOUT = 2.0
"""Seconds a check may take before it counts as unhealthy."""


class HealthStatus(str, enum.Enum):
    """Outcome of one check, and of all of them together."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass
class CheckResult:
    """What one check found. ``details`` must be JSON-serialisable and free of secrets."""

    status: HealthStatus
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    critical: bool = True
    latency_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "status": self.status.value,
            "critical": self.critical,
            "latency_ms": round(self.latency_seconds * 1000, 2),
        }
        if self.message:
            doc["message"] = self.message
        if self.details:
            doc["details"] = self.details
        return doc


@dataclass
class HealthReport:
    """All check results of one run."""

    results: dict[str, CheckResult]

    @property
    def failing(self) -> list[str]:
        """Names of the critical checks that are unhealthy."""
        return [n for n, r in self.results.items() if r.critical and r.status is HealthStatus.UNHEALTHY]

    @property
    def ready(self) -> bool:
        return not self.failing

    @property
    def status(self) -> HealthStatus:
        if self.failing:
            return HealthStatus.UNHEALTHY
        if any(r.status is not HealthStatus.HEALTHY for r in self.results.values()):
            return HealthStatus.DEGRADED
        return HealthStatus.HEALTHY


CheckFunc = Callable[[], Any]


@dataclass
class _Check:
    name: str
    func: CheckFunc
    critical: bool
    timeout: float
    is_async: bool
    inflight: concurrent.futures.Future[Any] | None = None
    last: HealthStatus | None = None


def _is_async(func: Any) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    return callable(func) and inspect.iscoroutinefunction(type(func).__call__)  # ``async def __call__``


def _normalise(value: Any) -> CheckResult:
    if isinstance(value, CheckResult):
        return value
    if value is None or value is True:
        return CheckResult(HealthStatus.HEALTHY)
    if value is False:
        return CheckResult(HealthStatus.UNHEALTHY, "check returned False")
    if isinstance(value, HealthStatus):
        return CheckResult(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], HealthStatus):
        return CheckResult(value[0], None if value[1] is None else str(value[1]))
    if isinstance(value, str) and value in HealthStatus._value2member_map_:
        return CheckResult(HealthStatus(value))
    return CheckResult(
        HealthStatus.UNHEALTHY,
        f"check returned {type(value).__name__}; expected None, a bool, a HealthStatus,"
        " a (HealthStatus, message) pair or a CheckResult",
    )


def _error_message(exc: BaseException) -> str:
    # First line only: drivers append the SQL statement, parameters and help links below it.
    text = str(exc).strip().split("\n", 1)[0]
    return redact.redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _suppressed(func: CheckFunc) -> Any:
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        return func()


class Health:
    """A registry of health checks and the FastAPI router serving them.

    Args:
        version: reported by ``/health``; default: the FastAPI app's ``version``.
        max_threads: worker threads for sync checks. A check still running from an earlier probe
            (a hung connection) is awaited again rather than started twice, so hung checks never
            pile up threads.
    """

    def __init__(self, *, version: str | None = None, max_threads: int = 4) -> None:
        self.version = version
        self.started = time.monotonic()
        self._checks: dict[str, _Check] = {}
        self._max_threads = max_threads
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- registry ------------------------------------------------------------------------------

    def check(
        self,
        name: str,
        func: CheckFunc | None = None,
        *,
        critical: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """Register ``func`` as check ``name``; without ``func``, a decorator that does.

        Args:
            name: shown in the responses; unique within this registry.
            func: the check (see the module docstring for what it may return).
            critical: when unhealthy, the app is not ready (``/health/ready`` answers 503).
            timeout: seconds before the check counts as unhealthy.

        Raises:
            ValueError: empty or duplicate ``name``, or a ``timeout`` that is not positive.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"invalid health check name {name!r}: expected a non-empty string such as 'redis'")
        if name in self._checks:
            raise ValueError(
                f"health check {name!r} is already registered; choose another name or call remove({name!r}) first"
            )
        if not timeout > 0:
            raise ValueError(f"invalid timeout {timeout!r} for health check {name!r}: expected seconds > 0")

        def register(fn: CheckFunc) -> CheckFunc:
            if not callable(fn):
                raise TypeError(f"health check {name!r} must be callable, got {type(fn).__name__}")
            self._checks[name] = _Check(name, fn, critical, float(timeout), _is_async(fn))
            return fn

        return register if func is None else register(func)

    def remove(self, name: str) -> None:
        """Unregister check ``name`` (no error when it is not registered)."""
        self._checks.pop(name, None)

    @property
    def names(self) -> list[str]:
        """Registered check names, in registration order."""
        return list(self._checks)

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> HealthReport:
        """Run all checks concurrently, each bounded by its timeout."""
        checks = list(self._checks.values())
        results = await asyncio.gather(*(self._run_one(c) for c in checks))
        return HealthReport({c.name: r for c, r in zip(checks, results, strict=True)})

    async def _run_one(self, check: _Check) -> CheckResult:
        start = time.perf_counter()
        try:
            if check.is_async:
                from opentelemetry.instrumentation.utils import suppress_instrumentation

                with suppress_instrumentation():  # the task created below copies this context
                    value = await asyncio.wait_for(check.func(), check.timeout)
            else:
                value = await asyncio.wait_for(asyncio.shield(self._in_thread(check)), check.timeout)
                if inspect.isawaitable(value):  # a sync function returning a coroutine
                    value = await asyncio.wait_for(value, max(0.001, check.timeout - (time.perf_counter() - start)))
            result = _normalise(value)
        except asyncio.TimeoutError:
            result = CheckResult(HealthStatus.UNHEALTHY, f"timed out after {check.timeout:g}s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = CheckResult(HealthStatus.UNHEALTHY, _error_message(exc))
        result = dataclasses.replace(
            result,
            name=check.name,
            critical=check.critical,
            latency_seconds=time.perf_counter() - start,
            message=redact.redact_text(result.message) if result.message else None,
        )
        self._note(check, result)
        return result

    def _in_thread(self, check: _Check) -> asyncio.Future[Any]:
        running = check.inflight
        if running is None or running.done():
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._max_threads, thread_name_prefix="otelkit-health"
                )
            ctx = contextvars.copy_context()
            running = self._executor.submit(ctx.run, _suppressed, check.func)
            # A probe that timed out no longer waits for it: retrieve its outcome so none is left unread.
            running.add_done_callback(lambda f: f.cancelled() or f.exception())
            check.inflight = running
        return asyncio.wrap_future(running)

    def _note(self, check: _Check, result: CheckResult) -> None:
        previous, check.last = check.last, result.status
        if previous is result.status or (previous is None and result.status is HealthStatus.HEALTHY):
            return
        if result.status is HealthStatus.HEALTHY:
            _log.info("health check %s is healthy again", check.name)
        else:
            _log.warning(
                "health check %s is %s: %s",
                check.name,
                result.status.value,
                result.message or "-",
                extra={"health.check": check.name, "health.status": result.status.value},
            )

    # -- HTTP ----------------------------------------------------------------------------------

    def router(self, *, prefix: str = "/health", include_in_schema: bool = True, tags: list[str] | None = None) -> Any:
        """A FastAPI ``APIRouter`` serving ``{prefix}``, ``{prefix}/live`` and ``{prefix}/ready``.

        Mount it with ``app.include_router(health.router())``.
        """
        from otelkit.health.router import build_router

        return build_router(self, prefix=prefix, include_in_schema=include_in_schema, tags=tags)


health = Health()
"""The default registry: ``from otelkit.health import health``."""
