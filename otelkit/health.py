"""Health endpoints for load balancers and Kubernetes, and the registry of dependency checks.

Mount them in one line::

    from otelkit.health import health, redis_check, sqlalchemy_check

    health.check("redis", redis_check("redis://redis:6379/0"))
    health.check("db", sqlalchemy_check(engine))

    @health.check("fal-api", critical=False, timeout=3.0)
    async def fal_api() -> HealthStatus | tuple[HealthStatus, str] | None:
        ...

    app.include_router(health.router())

=====================  =======================================================================
``GET /health/live``   liveness: 200 ``{"status": "ok"}`` as long as the event loop answers. Runs
                       no check: a dead database must not get every pod restarted.
``GET /health/ready``  readiness: runs every check concurrently, each bounded by its timeout;
                       503 ``{"status": "not_ready", "failing": ["db"], ...}`` when a *critical*
                       check is unhealthy, else 200 ``{"status": "ready", ...}``.
``GET /health``        detail: overall ``healthy``/``degraded``/``unhealthy`` (503 when unhealthy),
                       ``version``, ``uptime_seconds`` and per check ``status``, ``critical``,
                       ``latency_ms``, ``message``, ``details``.
=====================  =======================================================================

A check is a function, sync (run in a worker thread) or async, without arguments. It passes by
returning ``None``, ``True`` or :attr:`HealthStatus.HEALTHY`; it fails by raising, returning
``False`` or :attr:`HealthStatus.UNHEALTHY`; it may return :attr:`HealthStatus.DEGRADED`, a
``(status, message)`` pair, or a :class:`CheckResult`. A check that exceeds its timeout is
unhealthy. A non-critical check that fails makes ``/health`` degraded but keeps the app ready.

Nothing secret is served: error messages go through :func:`otelkit._redact.redact_text` (URL
user-info and ``password=…``-style pairs removed, 300 characters at most), ready-made checks report
counts rather than host names, and ``/health/ready`` names failing checks without their messages.
A check's state changes (healthy → unhealthy and back) are logged once each, not on every probe.

The three paths are excluded from traces and metrics by otelkit's default
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` (mounted elsewhere than ``/health``, extend that variable),
and instrumentation is suppressed while checks run, so probes make no Redis or SQL spans either.
Keep the probe's ``timeoutSeconds`` above the largest check timeout (default 2 s).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import enum
import inspect
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otelkit import _redact

__all__ = [
    "CheckResult",
    "Health",
    "HealthReport",
    "HealthStatus",
    "celery_workers_check",
    "dbapi_check",
    "disk_space_check",
    "health",
    "memory_check",
    "redis_check",
    "sqlalchemy_check",
]

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
    return _redact.redact_text(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


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
            message=_redact.redact_text(result.message) if result.message else None,
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
        from fastapi import APIRouter, Request
        from fastapi.responses import JSONResponse

        router = APIRouter(prefix=prefix, tags=list(tags or ["health"]), include_in_schema=include_in_schema)

        async def live() -> JSONResponse:
            return JSONResponse({"status": "ok"}, headers=_NO_STORE)

        async def ready() -> JSONResponse:
            report = await self.run()
            checks = {name: r.status.value for name, r in report.results.items()}
            if report.ready:
                return JSONResponse({"status": "ready", "checks": checks}, headers=_NO_STORE)
            doc = {"status": "not_ready", "failing": report.failing, "checks": checks}
            return JSONResponse(doc, status_code=503, headers=_NO_STORE)

        async def detail(request: Request) -> JSONResponse:
            report = await self.run()
            doc: dict[str, Any] = {"status": report.status.value}
            version = self.version or getattr(request.app, "version", None)
            if version:
                doc["version"] = version
            service = _service_name()
            if service:
                doc["service"] = service
            doc["uptime_seconds"] = round(time.monotonic() - self.started, 3)
            doc["checks"] = {name: r.as_dict() for name, r in report.results.items()}
            status_code = 503 if report.status is HealthStatus.UNHEALTHY else 200
            return JSONResponse(doc, status_code=status_code, headers=_NO_STORE)

        # Annotations are strings here (``from __future__ import annotations``) naming names local to
        # this function: give FastAPI the classes.
        for endpoint in (live, ready, detail):
            endpoint.__annotations__ = {"return": JSONResponse}
        detail.__annotations__["request"] = Request
        router.add_api_route("/live", live, methods=["GET"], summary="Liveness probe")
        router.add_api_route("/ready", ready, methods=["GET"], summary="Readiness probe")
        router.add_api_route("", detail, methods=["GET"], summary="Health detail")
        return router


_NO_STORE = {"Cache-Control": "no-store"}


def _service_name() -> str | None:
    from opentelemetry import trace

    resource = getattr(trace.get_tracer_provider(), "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return name if isinstance(name, str) else None


health = Health()
"""The default registry: ``from otelkit.health import health``."""


# --- ready-made checks ---------------------------------------------------------------------------


def redis_check(client_or_url: Any) -> CheckFunc:
    """``PING`` a Redis server.

    Args:
        client_or_url: a ``redis://`` URL (a client is made on first use, with socket timeouts of
            the default check timeout), a ``redis.Redis`` or a ``redis.asyncio.Redis``.
    """
    if isinstance(client_or_url, str):
        url = client_or_url
        clients: list[Any] = []

        def ping_url() -> CheckResult:
            if not clients:
                import redis

                clients.append(
                    redis.Redis.from_url(url, socket_timeout=DEFAULT_TIMEOUT, socket_connect_timeout=DEFAULT_TIMEOUT)
                )
            clients[0].ping()
            return CheckResult(HealthStatus.HEALTHY)

        return ping_url
    client = client_or_url
    if inspect.iscoroutinefunction(getattr(type(client), "execute_command", None)):

        async def ping_async() -> CheckResult:
            await client.ping()
            return CheckResult(HealthStatus.HEALTHY)

        return ping_async

    def ping() -> CheckResult:
        client.ping()
        return CheckResult(HealthStatus.HEALTHY)

    return ping


def sqlalchemy_check(engine: Any, query: str = "SELECT 1") -> CheckFunc:
    """Run ``query`` on a SQLAlchemy ``Engine`` or ``AsyncEngine`` (Oracle: ``SELECT 1 FROM DUAL``)."""
    from sqlalchemy import text

    statement = text(query)
    if hasattr(engine, "sync_engine"):

        async def run_async() -> None:
            async with engine.connect() as conn:
                await conn.execute(statement)

        return run_async

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(statement)

    return run


def dbapi_check(connect: Callable[[], Any], query: str = "SELECT 1") -> CheckFunc:
    """Open a DB-API connection with ``connect()``, run ``query``, close it.

    Example: ``dbapi_check(lambda: psycopg.connect(DSN, connect_timeout=2))``.
    """

    def run() -> None:
        conn = connect()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(query)
                cursor.fetchone()
            finally:
                cursor.close()
        finally:
            conn.close()

    return run


def celery_workers_check(app: Any, *, min_workers: int = 1, timeout: float = 1.0) -> CheckFunc:
    """At least ``min_workers`` Celery workers answer a broadcast ping within ``timeout`` seconds.

    Register it with a check timeout above ``timeout``. Reports the number of workers that
    answered (at most ``min_workers``: the ping returns as soon as enough have), not their names.
    """

    def run() -> CheckResult:
        replies = app.control.ping(timeout=timeout, limit=min_workers) or []
        count = len(replies)
        if count < min_workers:
            return CheckResult(
                HealthStatus.UNHEALTHY,
                f"{count} Celery worker(s) answered within {timeout:g}s; expected at least {min_workers}",
                {"workers": count},
            )
        return CheckResult(HealthStatus.HEALTHY, details={"workers": count})

    return run


def disk_space_check(
    path: str = "/",
    *,
    min_free_bytes: int | None = None,
    min_free_percent: float | None = 5.0,
    degraded_free_percent: float | None = 15.0,
) -> CheckFunc:
    """Free space on the file system holding ``path`` (standard library only).

    Unhealthy below ``min_free_bytes`` or ``min_free_percent``; degraded below
    ``degraded_free_percent``.
    """

    def run() -> CheckResult:
        usage = shutil.disk_usage(path)
        percent = 100.0 * usage.free / usage.total if usage.total else 0.0
        details = {"free_bytes": usage.free, "total_bytes": usage.total, "free_percent": round(percent, 2)}
        if min_free_bytes is not None and usage.free < min_free_bytes:
            return CheckResult(HealthStatus.UNHEALTHY, f"{usage.free} bytes free, below {min_free_bytes}", details)
        if min_free_percent is not None and percent < min_free_percent:
            return CheckResult(HealthStatus.UNHEALTHY, f"{percent:.1f}% free, below {min_free_percent:g}%", details)
        if degraded_free_percent is not None and percent < degraded_free_percent:
            return CheckResult(HealthStatus.DEGRADED, f"{percent:.1f}% free, below {degraded_free_percent:g}%", details)
        return CheckResult(HealthStatus.HEALTHY, details=details)

    return run


_CGROUP = "/sys/fs/cgroup"


def _cgroup_memory_percent(root: str = _CGROUP) -> float | None:
    """Working set / limit of this cgroup (v2), as the kubelet computes it; None without a limit."""
    try:
        with open(os.path.join(root, "memory.max")) as f:
            limit_raw = f.read().strip()
        if limit_raw == "max":
            return None
        limit = int(limit_raw)
        with open(os.path.join(root, "memory.current")) as f:
            current = int(f.read().strip())
        inactive_file = 0
        with open(os.path.join(root, "memory.stat")) as f:
            for line in f:
                if line.startswith("inactive_file "):
                    inactive_file = int(line.split()[1])
                    break
    except (OSError, ValueError):
        return None
    if limit <= 0:
        return None
    return 100.0 * max(0, current - inactive_file) / limit


def memory_check(max_percent: float = 90.0, *, cgroup_root: str = _CGROUP) -> CheckFunc:
    """Memory in use below ``max_percent``: of the container's limit (cgroup v2) when it has one,
    else of the machine (needs psutil: without it the check reports degraded and says so).
    """

    def run() -> CheckResult:
        percent = _cgroup_memory_percent(cgroup_root)
        scope = "container limit"
        if percent is None:
            try:
                import psutil
            except ImportError:
                return CheckResult(
                    HealthStatus.DEGRADED,
                    "memory not checked: no cgroup memory limit and psutil is not installed;"
                    " pip install 'otelkit[system]'",
                )
            percent = float(psutil.virtual_memory().percent)
            scope = "system"
        details = {"used_percent": round(percent, 2), "of": scope}
        if percent > max_percent:
            return CheckResult(
                HealthStatus.UNHEALTHY, f"{percent:.1f}% of {scope} memory in use, above {max_percent:g}%", details
            )
        return CheckResult(HealthStatus.HEALTHY, details=details)

    return run
