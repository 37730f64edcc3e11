"""Ready-made health checks: Redis, SQLAlchemy, DB-API, Celery workers, disk space, memory."""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Callable
from typing import Any

from otelkit.health.registry import DEFAULT_TIMEOUT, CheckFunc, CheckResult, HealthStatus

__all__ = [
    "celery_workers_check",
    "dbapi_check",
    "disk_space_check",
    "memory_check",
    "redis_check",
    "sqlalchemy_check",
]


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
