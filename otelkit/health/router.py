"""The FastAPI router serving a :class:`~otelkit.health.Health` registry: ``/health``, ``/live``, ``/ready``."""

from __future__ import annotations

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

    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def ready() -> JSONResponse:
        report = await health.run()
        checks = {name: r.status.value for name, r in report.results.items()}
        if report.ready:
            return JSONResponse({"status": "ready", "checks": checks}, headers=_NO_STORE)
        doc = {"status": "not_ready", "failing": report.failing, "checks": checks}
        return JSONResponse(doc, status_code=503, headers=_NO_STORE)

    async def detail(request: Request) -> JSONResponse:
        report = await health.run()
        doc: dict[str, Any] = {"status": report.status.value}
        version = health.version or getattr(request.app, "version", None)
        if version:
            doc["version"] = version
        service = _service_name()
        if service:
            doc["service"] = service
        doc["uptime_seconds"] = round(time.monotonic() - health.started, 3)
        doc["checks"] = {name: r.as_dict() for name, r in report.results.items()}
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


def _service_name() -> str | None:
    from opentelemetry import trace

    resource = getattr(trace.get_tracer_provider(), "resource", None)
    name = resource.attributes.get("service.name") if resource is not None else None
    return name if isinstance(name, str) else None
