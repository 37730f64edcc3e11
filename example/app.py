"""The example service: a small FastAPI app with nothing observability-specific in it but its health router
and one business counter (idempotency conflicts, declared with :func:`otelkit.metrics.counter`).

Run it under otelkit's launcher::

    otelkit-instrument uvicorn example.app:app

or, the same with a slower start-up, under the stock one with otelkit as the distro::

    OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn example.app:app

Its logs use plain stdlib logging with ``extra=`` fields; otelkit turns them into OTel log records
carrying the request's trace id.

Routes that show the security signals: ``GET /account`` answers 401 without
``Authorization: Bearer <OTELKIT_EXAMPLE_TOKEN>`` (default ``demo-token``) — authentication failures
are counted from the HTTP metrics, nothing to add; ``POST /orders/{id}`` with an
``Idempotency-Key`` already used for another order answers 409 and counts
``example.idempotency.conflicts`` (``example_idempotency_conflicts_total`` in Prometheus).
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Header, HTTPException

from example.tasks import process_order
from otelkit.health import health, redis_check
from otelkit.metrics import counter

log = logging.getLogger("example.items")

app = FastAPI(title="otelkit example")

# /health, /health/live, /health/ready. Redis is not critical: the app reports ready without it.
health.check("redis", redis_check(os.environ.get("OTELKIT_EXAMPLE_BROKER", "redis://127.0.0.1:6379/0")), critical=False)
app.include_router(health.router())

_ITEMS = {1: "keyboard", 2: "mouse", 3: "monitor"}
_TOKEN = os.environ.get("OTELKIT_EXAMPLE_TOKEN", "demo-token")

idempotency_conflicts = counter(
    "example.idempotency.conflicts",
    unit="{conflict}",
    description="Requests refused because their Idempotency-Key was already used for another request.",
)
# Idempotency-Key → order id; a real service keeps this in Redis or its database, with an expiry.
_seen_keys: dict[str, int] = {}


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, object]:
    name = _ITEMS.get(item_id)
    if name is None:
        log.warning("item not found", extra={"item_id": item_id})
        raise HTTPException(status_code=404, detail="item not found")
    log.info("fetched item", extra={"item_id": item_id, "item_name": name})
    return {"id": item_id, "name": name}


@app.get("/items")
async def list_items() -> list[dict[str, object]]:
    return [{"id": k, "name": v} for k, v in _ITEMS.items()]


@app.get("/account")
async def account(authorization: str | None = Header(default=None)) -> dict[str, object]:
    if authorization != f"Bearer {_TOKEN}":
        log.warning("refused: missing or wrong bearer token")
        raise HTTPException(status_code=401, detail="authentication required", headers={"WWW-Authenticate": "Bearer"})
    return {"user": "demo"}


@app.post("/orders/{order_id}", status_code=202)
def create_order(order_id: int, idempotency_key: str | None = Header(default=None)) -> dict[str, object]:
    if idempotency_key is not None:
        first = _seen_keys.setdefault(idempotency_key, order_id)
        if first != order_id:
            idempotency_conflicts.add(1, {"http.route": "/orders/{order_id}"})
            log.warning("idempotency key reused for another order", extra={"order_id": order_id, "first_order": first})
            raise HTTPException(status_code=409, detail="Idempotency-Key already used for another order")
    result = process_order.delay(order_id)
    log.info("order enqueued", extra={"order_id": order_id, "task_id": result.id})
    return {"order_id": order_id, "task_id": result.id}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom: the example's deliberate failure")
