"""Tasks: a chain, a retried task, an ETA task."""

import logging

from celery.utils.log import get_task_logger

from realapp.celery_app import app

log = logging.getLogger("realapp.tasks")
task_log = get_task_logger(__name__)


@app.task
def add(x, y):
    log.info("added", extra={"total": x + y})
    return x + y


@app.task(bind=True, max_retries=2)
def flaky(self, order_id):
    task_log.info("flaky attempt", extra={"order_id": order_id, "attempt": self.request.retries})
    if self.request.retries < 1:
        raise self.retry(countdown=1)
    return order_id


@app.task
def remind(order_id):
    log.info("reminded", extra={"order_id": order_id})
