"""An in-memory Celery app and an embedded worker for unit tests (solo pool, in a thread)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from celery.contrib.testing.worker import start_worker


def memory_app(name: str) -> Celery:
    """A Celery app on the in-memory broker that polls every 10 ms and leaves the root logger alone.

    The embedded worker starts before otelkit's hooks are installed: Celery stays off the root logger.
    """
    app = Celery(name, broker="memory://", set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},
        worker_hijack_root_logger=False,
    )
    return app


@contextmanager
def embedded_worker(app: Celery) -> Iterator[Celery]:
    """One embedded worker for ``app``; the root logger's handlers and level are restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with start_worker(app, perform_ping_check=False, loglevel="ERROR"):
            yield app
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
