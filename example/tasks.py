"""The example's Celery worker: one task, plain stdlib logging, nothing observability-specific.

Run it under the launcher, next to the web app::

    otelkit-instrument celery -A example.tasks worker -l INFO

The broker is ``OTELKIT_EXAMPLE_BROKER`` (default ``redis://127.0.0.1:6379/0``). Results are not
stored: the web app only enqueues.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Celery

log = logging.getLogger("example.orders")

app = Celery("example", broker=os.environ.get("OTELKIT_EXAMPLE_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)

_PRICES = {1: 49.0, 2: 19.5, 3: 189.0}
_DECLINED_FROM = 1000
"""Orders from this id on are declined by the (pretend) payment provider: the task fails."""


@app.task(name="example.tasks.process_order")
def process_order(order_id: int) -> dict[str, object]:
    """Pretend to charge and ship an order (ids from 1000 on are declined: the task fails)."""
    started = time.perf_counter()
    total = _PRICES.get(order_id, 10.0)
    time.sleep(0.05)
    if order_id >= _DECLINED_FROM:
        log.error("order declined", extra={"order_id": order_id})
        raise ValueError(f"order {order_id} declined by the payment provider")
    log.info(
        "order processed",
        extra={"order_id": order_id, "order_total": total, "elapsed_ms": round((time.perf_counter() - started) * 1000)},
    )
    return {"order_id": order_id, "total": total}
