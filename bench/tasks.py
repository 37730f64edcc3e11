"""The benchmarked Celery app: one trivial task that logs one INFO record, for every variant.

``celery -A bench.tasks worker -P solo`` consumes ``bench.work`` from the Redis broker at
``BENCH_REDIS_URL``. The task logs ``"task done"`` with one ``extra=`` field, as a real task logs
something; like :mod:`bench.app` the app configures no logging of its own (Celery's defaults).

``BENCH_CELERY_MARKS`` names a file the task appends ``<label> <time.monotonic()>`` lines to:
``ping`` for the run that tells ``bench.run`` the worker is consuming (item -1), ``first`` when
item 0 starts and ``last`` when item ``last`` ends. ``CLOCK_MONOTONIC`` is one clock for every
process on the machine, so ``bench.run`` reads throughput from the tasks' own times: worker
start-up and the runner's polling are not in it. Only those three runs write the file.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Celery  # type: ignore[import-untyped]

app = Celery("bench", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.broker_connection_retry_on_startup = True  # silences a deprecation warning at start

_log = logging.getLogger("bench.tasks")
_log.setLevel(logging.INFO)  # as in bench.app: the logger's own level decides, whatever root's is
_MARKS = os.environ.get("BENCH_CELERY_MARKS", "")


def _mark(label: str) -> None:
    if _MARKS:
        with open(_MARKS, "a") as f:
            f.write(f"{label} {time.monotonic():.6f}\n")


@app.task(name="bench.work")  # type: ignore[untyped-decorator]
def work(item: int, last: int) -> None:
    """Log one record; items -1, 0 and ``last`` also leave a time mark for the runner."""
    if item == 0:
        _mark("first")
    _log.info("task done", extra={"item": item})
    if item == -1:
        _mark("ping")
    elif item == last:
        _mark("last")
