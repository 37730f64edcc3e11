"""The registry of health checks: :class:`Health`, what a check returns, and the default ``health``.

See :mod:`otelkit.health` for the endpoints and the rules checks follow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otelkit._runtime import redact
from otelkit.health import run as _run

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

    def as_dict(self, *, details: bool = True) -> dict[str, Any]:
        """The check as ``/health`` shows it: status and criticality, and with ``details`` the rest."""
        doc: dict[str, Any] = {"status": self.status.value, "critical": self.critical}
        if not details:
            return doc
        doc["latency_ms"] = round(self.latency_seconds * 1000, 2)
        if self.message:
            doc["message"] = self.message
        if self.details:
            doc["details"] = redact.redact_attributes(_run.json_safe(self.details))
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
    inflight: Any = None  # the run still going from an earlier probe (see otelkit.health.run)
    last: HealthStatus | None = None


def _is_async(func: Any) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    return callable(func) and inspect.iscoroutinefunction(type(func).__call__)  # ``async def __call__``


_STATUSES = "expected healthy, degraded or unhealthy"


def _status(value: Any) -> HealthStatus | None:
    if isinstance(value, HealthStatus):
        return value
    if isinstance(value, str):
        return HealthStatus._value2member_map_.get(value.strip().lower())  # type: ignore[return-value]
    return None


def _invalid_status(value: Any) -> CheckResult:
    return CheckResult(
        HealthStatus.UNHEALTHY, f"check returned an invalid status {_run.json_safe(value)!r}; {_STATUSES}"
    )


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(_run.json_safe(value))


def _normalise(value: Any) -> CheckResult:
    if isinstance(value, CheckResult):
        status = _status(value.status)
        if status is None:
            return _invalid_status(value.status)
        details = value.details
        if not isinstance(details, dict):
            details = {} if details is None else {"value": details}
        return CheckResult(status, _text(value.message), details)
    if value is None or value is True:
        return CheckResult(HealthStatus.HEALTHY)
    if value is False:
        return CheckResult(HealthStatus.UNHEALTHY, "check returned False")
    if isinstance(value, HealthStatus):
        return CheckResult(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (HealthStatus, str)):
        status = _status(value[0])
        if status is None:
            return _invalid_status(value[0])
        return CheckResult(status, _text(value[1]))
    if isinstance(value, str) and value in HealthStatus._value2member_map_:
        return CheckResult(HealthStatus(value))
    return CheckResult(
        HealthStatus.UNHEALTHY,
        f"check returned {type(value).__name__}; expected None, a bool, a HealthStatus,"
        " a (HealthStatus, message) pair or a CheckResult",
    )


def _outcome_result(check: _Check, outcome: _run.Outcome) -> CheckResult:
    kind, value = outcome
    if kind == "ok":
        return _normalise(value)
    if kind == "error":
        return CheckResult(HealthStatus.UNHEALTHY, _run.error_message(value))
    if kind == "cancelled":
        return CheckResult(HealthStatus.UNHEALTHY, "cancelled")
    return CheckResult(HealthStatus.UNHEALTHY, f"timed out after {check.timeout:g}s")


DetailsChoice = Any
"""``True``, ``False``, or a function of the request returning (or awaiting to) a bool."""


class Health:
    """A registry of health checks and the FastAPI router serving them.

    Each sync check runs in a thread of its own and each async check in a task of its own; a check
    still running from an earlier probe (a hung connection) is waited for again rather than started
    twice, so hung checks never pile up threads.

    Args:
        version: reported by ``/health`` (with details); default: the FastAPI app's ``version``.
        details: who sees details in ``/health``: ``True`` (everyone), ``False`` (nobody), or a
            function of the Starlette ``Request`` returning (or awaiting to) a bool, e.g. the app's
            own authentication. Default: ``OTELKIT_HEALTH_DETAILS`` and ``OTELKIT_HEALTH_TOKEN``.
    """

    def __init__(self, *, version: str | None = None, details: DetailsChoice | None = None) -> None:
        self.version = version
        self.details = details
        self.started = time.monotonic()
        self._checks: dict[str, _Check] = {}

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

    async def run(self, *, critical_only: bool = False) -> HealthReport:
        """Run all checks (or the critical ones) concurrently, each bounded by its own timeout."""
        checks = [c for c in self._checks.values() if c.critical or not critical_only]
        results = await asyncio.gather(*(self._run_one(c) for c in checks))
        return HealthReport({c.name: r for c, r in zip(checks, results, strict=True)})

    async def _run_one(self, check: _Check) -> CheckResult:
        start = time.perf_counter()
        outcome = await _run.call(check, check.timeout)  # raises only if this probe is cancelled
        try:
            result = _outcome_result(check, outcome)
            message = redact.redact_text(result.message) if result.message else None
        except Exception as exc:  # a result that cannot be read is this check's failure too
            result, message = CheckResult(HealthStatus.UNHEALTHY), _run.error_message(exc)
        result = dataclasses.replace(
            result,
            name=check.name,
            critical=check.critical,
            latency_seconds=time.perf_counter() - start,
            message=message,
        )
        self._note(check, result)
        return result

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
