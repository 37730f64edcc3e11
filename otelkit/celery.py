"""Celery workers: one trace from request to task, task metrics, task-aware logs, nothing lost at exit.

Run the worker under the launcher, like the web app::

    OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument celery -A shop.tasks worker -l INFO

or call :func:`otelkit.configure` at import time of the module that creates the Celery app. Either
way opentelemetry-instrumentation-celery makes the spans (``apply_async/<task>``, kind PRODUCER,
in the publishing process; ``run/<task>``, kind CONSUMER, in the worker, child of the publish span
through the message headers, which also carry the baggage and with it the request id), and
:func:`install` adds what it lacks. The run span is contrib's span, made inside otelkit's own
``task_prerun``/``task_postrun`` receivers (contrib's two are disconnected; ~20 µs a task less), as
long as a probe finds it identical (sdk_compat ``celery-run-span``); contrib's failure and retry
receivers still mark it. With ``use_span_links=True``, or contrib instrumented after :func:`install`,
contrib's own receivers make it.

Metrics (instrumentation scope ``otelkit.celery``), recorded in the process that runs the task:

=============================  ===========  ==========  ===========================================
name                           instrument   unit        attributes
=============================  ===========  ==========  ===========================================
``celery.task.started``        counter      ``{task}``  common
``celery.task.completed``      counter      ``{task}``  common + ``celery.task.state``
``celery.task.duration``       histogram    ``s``       common + ``celery.task.state``
``celery.task.active``         up-down      ``{task}``  common
``celery.task.wait.duration``  histogram    ``s``       common; from enqueue (or ETA) to start
=============================  ===========  ==========  ===========================================

Recorded in the processes that publish tasks (the web app), read from the broker at each metric
export (see :mod:`otelkit._runtime.celery.broker` for where it runs and what it costs):

- ``celery.queue.length`` (gauge, ``{message}``): messages waiting, per ``messaging.destination.name``;
- ``celery.workers.online`` (gauge, ``{worker}``): workers that answered a broadcast ping.
  :func:`observe_broker` starts reporting for an app before its first publish.

Common attributes: ``celery.task.name``, ``messaging.system`` (``celery``) and
``messaging.destination.name`` (the queue, when the broker says). ``celery.task.state`` is
``success``, ``failure``, ``retry`` or ``revoked``; a task that raises ``celery.exceptions.Ignore``
or ``Reject`` gives ``ignored`` or ``rejected``. ``revoked`` is counted by the worker that
discards the message and has no duration. Histograms advise buckets from 5 ms to 10 min.

The enqueue time travels in the message header ``otelkit_enqueued_at`` (Unix seconds), added by
:func:`install`'s ``before_task_publish`` hook in the publishing process: tasks published by a
process without otelkit have no wait time. For tasks with an ETA or countdown the wait starts at
the ETA. Clocks of different hosts are compared; a negative wait counts as 0.

Task-aware logs: every record emitted while a task runs — stdlib, structlog routed through it,
Celery's own — gets ``celery.task.name`` and ``celery.task.id`` as attributes (a field the record
already has wins), next to the trace and span id of the ``run`` span and ``request.id``, the
request's correlation id, which otelkit's log handler reads from the baggage the message carried.

Two repairs to the spans:

- The broker's own traffic is left out: kombu's Redis transport polls, restores unacked messages
  and sends heartbeats, several commands a second, and opentelemetry-instrumentation-redis would
  make each a root span. The clients kombu's Redis channels make get a subclass of their class
  whose commands call redis-py's own functions, not the instrumentation's wrappers (or run with
  instrumentation suppressed where that cannot be done); the app's own Redis clients (and the
  result backend's) are traced as before.
- The Celery instrumentation keeps each run's span in a dict on the task keyed by task id. A
  retried task keeps its id, and in a threads, gevent or eventlet pool its next run can start
  before the previous run's ``task_postrun``: both runs then share one entry, one span ends with
  the other's attributes and one never ends (seen with ``retry(countdown=0)``). otelkit adds the
  thread (greenlet) id to that key; every signal of one run is handled in the thread running it.

Logging setup in the worker: Celery's own, as without otelkit. Celery hijacks the root logger
(``worker_hijack_root_logger``), adds its console handler in its format (``[… INFO/MainProcess]
…``), sets up the task logger and runs the app's ``after_setup_logger`` /
``after_setup_task_logger`` receivers. otelkit connects no ``setup_logging`` receiver (one would
make Celery skip all of that); it receives ``after_setup_logger`` and ``after_setup_task_logger``
itself and puts its OTel handler back beside Celery's and the app's handlers — on the root logger
and on the task logger, which does not propagate — so every task record is still exported once.
otelkit's own console handler goes with the hijack: the worker has one console, Celery's. The
root and task loggers' level becomes the more verbose of ``OTELKIT_LOG_LEVEL`` and the worker's
``-l``/``--loglevel`` (Celery's default WARNING would drop every INFO task record). Celery's own
loggers (``celery.*`` but the task logger) keep ``-l``, as without otelkit: under the default
WARNING the worker makes no "Task … received" / "… succeeded" INFO records, which the task's span
already carries; ``-l INFO`` brings them back, exported. A level the app set on the ``celery``
logger stays. An app whose
own ``setup_logging`` receiver takes over from Celery keeps that: the root logger is then left
as the app made it.

Fork and exit rules — why each hook exists:

- prefork children inherit the providers; the SDK restarts its export threads after ``fork``
  (nothing to do in ``worker_process_init`` for that).
- ``worker_process_init`` (each child): the SIGTERM handler is restored (Celery resets SIGTERM to
  the default in children), so a child killed by SIGTERM — ``revoke(terminate=True)``, or a
  SIGTERM sent to the worker's whole process group as systemd's ``KillMode=control-group`` does —
  flushes what it buffered before it dies. The run it was in the middle of never ends, so its
  span and duration are not recorded.
- ``worker_process_shutdown`` (each child, before ``os._exit``): children leave without running
  ``atexit`` — on ``--max-tasks-per-child``, ``--max-memory-per-child``, pool shrink and warm
  shutdown — so everything they buffered would be lost; the hook flushes the three providers,
  bounded by ``OTELKIT_SHUTDOWN_TIMEOUT``. With the collector down every exiting child waits that
  long once.
- ``worker_shutdown`` (main process, warm shutdown, all pools): flush spans and logs, export the
  metrics a last time (``otelkit._runtime.shutdown.finish``); the process then exits normally and
  otelkit's exit hook shuts the other providers down.
- prefork children also inherit the exporters' open connections: otelkit replaces them in every
  forked child (``otelkit._runtime.forksafe``), so a child never writes on its parent's socket.
- A child killed by SIGKILL (hard time limit, OOM killer) loses what it had not exported yet: no
  code runs. Its ``celery.task.active`` series stays at its last exported value until it expires.

Every hook logs and never raises into the worker. :func:`install` is idempotent.
"""

from __future__ import annotations

from otelkit._runtime.celery.hooks import (
    DURATION_BUCKETS,
    ENQUEUED_AT_HEADER,
    TaskLogContext,
    install,
    observe_broker,
    uninstall,
)
from otelkit._runtime.celery.instruments import TASK_ID_KEY as TASK_ID_KEY
from otelkit._runtime.celery.instruments import TASK_NAME_KEY as TASK_NAME_KEY
from otelkit._runtime.celery.instruments import TASK_STATE_KEY as TASK_STATE_KEY

__all__ = [
    "DURATION_BUCKETS",
    "ENQUEUED_AT_HEADER",
    "TaskLogContext",
    "install",
    "observe_broker",
    "uninstall",
]
