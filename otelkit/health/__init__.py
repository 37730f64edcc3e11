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
``GET /health/ready``  readiness: runs the *critical* checks concurrently, each bounded by its
                       timeout; 503 ``{"status": "not_ready", "failing": ["db"], ...}`` when one
                       is unhealthy, else 200 ``{"status": "ready", ...}``.
``GET /health``        overall ``healthy``/``degraded``/``unhealthy`` (503 when unhealthy) and per
                       check ``status`` and ``critical``; to callers allowed to see details (below)
                       also ``version``, ``uptime_seconds`` and per check ``latency_ms``,
                       ``message``, ``details``.
=====================  =======================================================================

A check is a function, sync (run in a thread of its own) or async (a task of its own), without
arguments. It passes by returning ``None``, ``True`` or :attr:`HealthStatus.HEALTHY`; it fails by
raising (anything, ``SystemExit`` included), returning ``False`` or :attr:`HealthStatus.UNHEALTHY`;
it may return :attr:`HealthStatus.DEGRADED`, a ``(status, message)`` pair, or a :class:`CheckResult`
(statuses may be given as strings). A check that exceeds its timeout is unhealthy; each check is
bounded on its own, and critical checks never wait behind non-critical ones
(:mod:`otelkit.health.run`). A non-critical check that fails makes ``/health`` degraded but keeps
the app ready.

Nothing secret is served. Anonymous callers of ``/health`` get the status of each check, nothing
more: a driver's first error line names hosts, IP addresses and database users. Details (messages,
latencies, ``details``, version, uptime) are shown when ``OTELKIT_HEALTH_DETAILS=always``, to
requests carrying ``Authorization: Bearer <OTELKIT_HEALTH_TOKEN>``, or as ``Health(details=…)``
decides (``True``, ``False``, or a function of the request). Even then, error messages go through
:func:`otelkit._runtime.redact.redact_text` (credentials removed, first line only, 300 characters at
most), details through :func:`otelkit._runtime.redact.redact_attributes` and
:func:`otelkit.health.run.json_safe`. Ready-made checks report counts rather than host names. A
check's state changes (healthy → unhealthy and back) are logged once each, not on every probe, with
the redacted message.

The three paths are left out of traces and metrics by otelkit's HTTP instrumentation wherever
the router is mounted (with ``OTELKIT_HTTP_INSTRUMENTATION=contrib``: by the default
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``, for ``/health`` only), and instrumentation is suppressed
while checks run, so probes make no Redis or SQL spans either.
Keep the probe's ``timeoutSeconds`` above the largest check timeout (default 2 s).
"""

from __future__ import annotations

from otelkit.health.checks import (
    celery_workers_check,
    dbapi_check,
    disk_space_check,
    memory_check,
    redis_check,
    sqlalchemy_check,
)
from otelkit.health.registry import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT  # public constant, not in __all__ (as before)
from otelkit.health.registry import CheckResult, Health, HealthReport, HealthStatus, health

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
