"""The FastAPI router serving a :class:`~otelkit.health.Health` registry: ``/health``, ``/live``, ``/ready``."""

from __future__ import annotations

import hmac
import inspect
import logging
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelkit.health.registry import Health

__all__ = ["build_router"]


def build_router(
    health: Health, *, prefix: str = "/health", include_in_schema: bool = True, tags: list[str] | None = None
) -> Any:
    """The ``APIRouter`` behind :meth:`Health.router`."""
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse

    router = APIRouter(prefix=prefix, tags=list(tags or ["health"]), include_in_schema=include_in_schema)
    configured = _configured_details()

    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def ready() -> JSONResponse:
        # Readiness depends on the critical checks only: they never wait for the others.
        report = await health.run(critical_only=True)
        checks = {name: r.status.value for name, r in report.results.items()}
        if report.ready:
            return JSONResponse({"status": "ready", "checks": checks}, headers=_NO_STORE)
        doc = {"status": "not_ready", "failing": report.failing, "checks": checks}
        return JSONResponse(doc, status_code=503, headers=_NO_STORE)

    async def detail(request: Request) -> JSONResponse:
        report = await health.run()
        show = await _show_details(health, request, configured)
        doc: dict[str, Any] = {"status": report.status.value}
        if show:
            version = health.version or getattr(request.app, "version", None)
            if version:
                doc["version"] = version
            service = _service_name()
            if service:
                doc["service"] = service
            doc["uptime_seconds"] = round(time.monotonic() - health.started, 3)
        doc["checks"] = {name: r.as_dict(details=show) for name, r in report.results.items()}
        # HealthStatus is a str enum; comparing by value keeps this module free of a run-time import of the registry.
        status_code = 503 if report.status == "unhealthy" else 200
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


async def _show_details(health: Health, request: Any, configured: tuple[str, str]) -> bool:
    """Whether this request sees the details of ``/health`` (``Health.details``, else the settings)."""
    choice = health.details
    if choice is None:
        mode, token = configured
        if mode == "always":
            return True
        if not token:
            return False
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode())
    if not callable(choice):
        return bool(choice)
    try:
        allowed = choice(request)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return allowed is True
    except Exception as exc:  # the app's own check failing shows nothing
        from otelkit.health.run import error_message

        logging.getLogger("otelkit.health").warning(
            "health details check failed, showing the summary: %s", error_message(exc)
        )
        return False


def _configured_details() -> tuple[str, str]:
    """``(OTELKIT_HEALTH_DETAILS, OTELKIT_HEALTH_TOKEN)``; a bad value is one line and its default."""
    from otelkit.errors import ConfigError
    from otelkit.settings import OTELKIT_HEALTH_DETAILS, OTELKIT_HEALTH_TOKEN, Settings

    env = {k: os.environ[k] for k in (OTELKIT_HEALTH_DETAILS, OTELKIT_HEALTH_TOKEN) if k in os.environ}
    while True:
        try:
            settings = Settings.from_env(env)
        except ConfigError as exc:
            logging.getLogger("otelkit").error("otelkit: %s; using its default", exc)
            bad = getattr(exc, "variable", None)
            if bad not in env:
                return "never", ""
            env.pop(bad)
        else:
            return settings.health_details, settings.health_token


def _service_name() -> str | None:
    from opentelemetry import trace

    resource = getattr(trace.get_tracer_provider(), "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return name if isinstance(name, str) else None
