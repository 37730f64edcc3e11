"""The Celery app: several queues, task routes, and a log file set up by after_setup_logger."""

import logging
import os

from celery import Celery, signals
from kombu import Queue

from realapp import logconf  # noqa: F401  (the worker imports the app's logging too)

app = Celery("realapp", broker=os.environ["REALAPP_BROKER"], include=["realapp.tasks"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("retries"), Queue("later")),
    task_routes={"realapp.tasks.flaky": {"queue": "retries"}, "realapp.tasks.remind": {"queue": "later"}},
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
)


@signals.after_setup_logger.connect
def log_to_file(logger, **kwargs):
    handler = logging.FileHandler(os.environ["REALAPP_CELERY_LOG"])
    handler.setFormatter(logging.Formatter("FILE %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)


@signals.after_setup_task_logger.connect
def task_log_to_file(logger, **kwargs):
    handler = logging.FileHandler(os.environ["REALAPP_CELERY_LOG"])
    handler.setFormatter(logging.Formatter("TASKFILE %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
