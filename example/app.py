"""The example service: a small FastAPI app with nothing observability-specific in it but its health router.

Run it under otelkit's launcher::

    otelkit-instrument uvicorn example.app:app

or, the same with a slower start-up, under the stock one with otelkit as the distro::

    OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn example.app:app

Its logs use plain stdlib logging with ``extra=`` fields; otelkit turns them into OTel log records
carrying the request's trace id.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, HTTPException

from example.tasks import process_order
from otelkit.health import health, redis_check

log = logging.getLogger("example.items")

app = FastAPI(title="otelkit example")

# /health, /health/live, /health/ready. Redis is not critical: the app reports ready without it.
health.check("redis", redis_check(os.environ.get("OTELKIT_EXAMPLE_BROKER", "redis://127.0.0.1:6379/0")), critical=False)
app.include_router(health.router())

_ITEMS = {1: "keyboard", 2: "mouse", 3: "monitor"}


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


@app.post("/orders/{order_id}", status_code=202)
def create_order(order_id: int) -> dict[str, object]:
    result = process_order.delay(order_id)
    log.info("order enqueued", extra={"order_id": order_id, "task_id": result.id})
    return {"order_id": order_id, "task_id": result.id}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom: the example's deliberate failure")
