"""otelkit's Celery signal receivers: task metrics, task-aware logs, the worker's logging, flushes.

The manual — what is recorded, the attributes, and why each hook exists (fork and exit rules) — is
the docstring of :mod:`otelkit.celery`, the public module that re-exports :func:`install`,
:func:`uninstall` and the constants. The repairs to other libraries (the broker's Redis traffic,
contrib's per-task span store) are in :mod:`otelkit._runtime.celery.patches`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from otelkit._runtime import failures, fasthist, sdk_compat, shutdown, state
from otelkit._runtime.celery import instruments, patches
from otelkit._runtime.celery.broker import BrokerObserver
from otelkit._runtime.celery.instruments import (
    ACTIVE_DESCRIPTION,
    ACTIVE_METRIC,
    COMPLETED_DESCRIPTION,
    COMPLETED_METRIC,
    DURATION_DESCRIPTION,
    DURATION_METRIC,
    SCOPE,
    STARTED_DESCRIPTION,
    STARTED_METRIC,
    TASK_ID_KEY,
    TASK_NAME_KEY,
    TASK_STATE_KEY,
    WAIT_DESCRIPTION,
    WAIT_METRIC,
)
from otelkit._runtime.logs import handler as log_handler
from otelkit._runtime.monitor import DURATION_BUCKETS

__all__ = [
    "DURATION_BUCKETS",
    "ENQUEUED_AT_HEADER",
    "TaskLogContext",
    "install",
    "observe_broker",
    "uninstall",
]

_log = logging.getLogger("otelkit")

ENQUEUED_AT_HEADER = "otelkit_enqueued_at"
"""Message header carrying the publish time (Unix seconds, float), for ``celery.task.wait.duration``."""


_STATES = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "RETRY": "retry",
    "REVOKED": "revoked",
    "IGNORED": "ignored",
    "REJECTED": "rejected",
}


@dataclass
class _Running:
    """The task running in this thread (or greenlet): set in task_prerun, read by logs and task_postrun.

    A context variable rather than a dict keyed by task id: a retried task keeps its id, and in a
    threads pool its next run can start before the failed run's task_postrun has been handled.
    """

    name: str
    task_id: str
    start: float
    attributes: dict[str, str]
    span: Any
    key: tuple[str | None, ...] = ()  # the values of WAIT_ATTRIBUTES (None: absent), for fasthist
    token: contextvars.Token[_Running | None] | None = None
    run: sdk_compat.Run | None = None  # the run span otelkit made (RunSpans.start), ended in task_postrun


_current: contextvars.ContextVar[_Running | None] = contextvars.ContextVar("otelkit_celery_task", default=None)


class TaskLogContext(logging.Filter):
    """Handler filter adding the running task's name and id to each record (fields it has win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = _current.get()
        if task is None:
            return True
        fields = record.__dict__
        if TASK_NAME_KEY not in fields:
            fields[TASK_NAME_KEY] = task.name
        if TASK_ID_KEY not in fields:
            fields[TASK_ID_KEY] = task.task_id
        return True


class _Hooks:
    """The signal receivers and the instruments they record into."""

    def __init__(self, meter_provider: Any = None) -> None:
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        # otelkit's own MeterProvider pre-aggregates the two histograms (fasthist: a bisect and a
        # dict update instead of ~100,000 instructions per SDK record); providers passed in
        # explicitly get the SDK histograms.
        own = meter_provider is None
        self.fast_duration: fasthist.FastHistogram | None = fasthist.get(DURATION_METRIC) if own else None
        self.fast_wait: fasthist.FastHistogram | None = fasthist.get(WAIT_METRIC) if own else None
        self.fast_started: fasthist.FastSum | None = fasthist.get(STARTED_METRIC) if own else None
        self.fast_completed: fasthist.FastSum | None = fasthist.get(COMPLETED_METRIC) if own else None
        self.fast_active: fasthist.FastSum | None = fasthist.get(ACTIVE_METRIC) if own else None
        self.anchored: set[tuple[str | None, ...]] = set()  # keys the SDK's celery.task.active has a 0 for
        self.started = meter.create_counter(STARTED_METRIC, unit="{task}", description=STARTED_DESCRIPTION)
        self.completed = meter.create_counter(COMPLETED_METRIC, unit="{task}", description=COMPLETED_DESCRIPTION)
        self.duration = meter.create_histogram(
            DURATION_METRIC,
            unit="s",
            description=DURATION_DESCRIPTION,
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.active = meter.create_up_down_counter(ACTIVE_METRIC, unit="{task}", description=ACTIVE_DESCRIPTION)
        self.wait = meter.create_histogram(
            WAIT_METRIC,
            unit="s",
            description=WAIT_DESCRIPTION,
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.broker: BrokerObserver | None = None
        self.run_spans: sdk_compat.RunSpans | None = None  # otelkit makes contrib's run span (install())
        self.instrumentor: Any = None

    # -- publishing process

    def before_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        try:
            if isinstance(headers, dict):
                headers[ENQUEUED_AT_HEADER] = time.time()
            if self.broker is not None and isinstance(sender, str):
                self.broker.watch_publisher(sender)
        except Exception:
            failures.report("the Celery before_task_publish hook failed; the task has no wait time")

    # -- worker: one task

    def prerun(self, task_id: Any = None, task: Any = None, **_: Any) -> None:
        if task is None or task_id is None:
            return
        run = None
        try:
            request = getattr(task, "request", None)  # a property: read once
            run = self._start_run_span(task, task_id, request)
            name = str(task.name)
            attributes = instruments.task_attributes(name, getattr(request, "delivery_info", None))
            # The run span (otelkit's, or contrib's: its receiver ran first); kept so the duration
            # recorded after it ended still links to it as an exemplar.
            span = run[0] if run is not None else trace.get_current_span()
            key = (name, "celery", attributes.get("messaging.destination.name"))
            running = _Running(name, str(task_id), time.monotonic(), attributes, span, key=key, run=run)
            running.token = _current.set(running)
            run = None  # task_postrun ends it now
            now, context = time.time_ns(), span.get_span_context()  # once for the three records
            if self.fast_started is None:
                self.started.add(1, attributes)
            else:
                instruments.add_fast(self.fast_started, key, now, context)
            if self.fast_active is None:
                self.active.add(1, attributes)
            else:
                if key not in self.anchored:  # the SDK point that keeps the reader exporting
                    self.active.add(0, attributes)
                    self.anchored.add(key)
                instruments.add_fast(self.fast_active, key, now, context)
            self._record_wait(request, attributes, key, now, context)
            # Handlers added after install() (the launcher may instrument logging after Celery;
            # eager tasks run where no worker hook ever fires) get the task fields too.
            _attach_log_filter()
        except Exception:
            failures.report("the Celery task_prerun hook failed; continuing without it for this task")
        finally:
            if run is not None:  # no _Running holds it: end it now rather than never
                self._finish_run_span({}, task, task_id, run, 0.0)

    def _start_run_span(self, task: Any, task_id: Any, request: Any) -> sdk_compat.Run | None:
        run_spans = self.run_spans
        if run_spans is None or not run_spans.active():
            return None
        try:
            return run_spans.start(task, task_id, request)
        except Exception:
            failures.report("starting the Celery task's run span failed; this run has no span")
            return None

    def _finish_run_span(
        self, signal_kwargs: dict[str, Any], task: Any, task_id: Any, run: sdk_compat.Run, took: float
    ) -> None:
        try:
            assert self.run_spans is not None
            self.run_spans.finish(signal_kwargs, task, task_id, run, took)
        except Exception:
            failures.report("ending the Celery task's run span failed")

    def _record_wait(
        self, request: Any, attributes: dict[str, str], key: tuple[str | None, ...], now: int, context: Any
    ) -> None:
        enqueued = instruments.timestamp(getattr(request, ENQUEUED_AT_HEADER, None))
        if enqueued is None:
            return
        eta = instruments.timestamp(getattr(request, "eta", None))
        begin = max(enqueued, eta) if eta is not None else enqueued
        waited = max(0.0, time.time() - begin)
        if self.fast_wait is None:
            self.wait.record(waited, attributes)
        else:
            instruments.record_fast(self.fast_wait, waited, key, now, context)

    def postrun(self, **signal_kwargs: Any) -> None:
        task_id, state = signal_kwargs.get("task_id"), signal_kwargs.get("state")
        running = _current.get()
        if running is None or running.task_id != str(task_id):
            return
        elapsed = time.monotonic() - running.start
        try:
            if running.token is not None:
                _current.reset(running.token)
            attributes = running.attributes
            now = time.time_ns()
            if self.fast_active is None:
                self.active.add(-1, attributes)
            else:
                current = trace.get_current_span().get_span_context()
                instruments.add_fast(self.fast_active, running.key, now, current, -1)
            final = _STATES.get(str(state), str(state).lower())
            if self.fast_completed is None or self.fast_duration is None:
                done = {**attributes, TASK_STATE_KEY: final}
                context = trace.set_span_in_context(running.span)
            own = running.span.get_span_context()
            if self.fast_completed is None:
                self.completed.add(1, done, context=context)
            else:
                instruments.add_fast(self.fast_completed, (*running.key, final), now, own)
            if self.fast_duration is None:
                self.duration.record(elapsed, done, context=context)
            else:
                instruments.record_fast(self.fast_duration, elapsed, (*running.key, final), now, own)
        except Exception:
            failures.report("the Celery task_postrun hook failed; this run is not recorded")
        finally:
            if running.run is not None:
                self._finish_run_span(signal_kwargs, signal_kwargs.get("task"), task_id, running.run, elapsed)

    def revoked(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        try:
            name = getattr(sender, "name", None) or getattr(request, "task", None)
            if not name:
                return
            attributes = instruments.task_attributes(str(name), getattr(request, "delivery_info", None))
            if self.fast_completed is None:
                self.completed.add(1, {**attributes, TASK_STATE_KEY: "revoked"})
            else:
                key = (str(name), "celery", attributes.get("messaging.destination.name"), "revoked")
                instruments.add_fast(
                    self.fast_completed, key, time.time_ns(), trace.get_current_span().get_span_context()
                )
        except Exception:
            failures.report("the Celery task_revoked hook failed; this revocation is not counted")

    # -- worker: process lifecycle and logging

    def after_setup_logger(self, logger: Any = None, loglevel: Any = None, **_: Any) -> None:
        try:
            _after_celery_logging(logger, loglevel)
        except Exception as exc:
            _log.error("otelkit: preparing the worker's logging failed: %s", exc)

    def after_setup_task_logger(self, logger: Any = None, loglevel: Any = None, **_: Any) -> None:
        try:
            _after_celery_logging(logger, loglevel)
        except Exception as exc:
            _log.error("otelkit: preparing the worker's task logging failed: %s", exc)

    def process_init(self, **_: Any) -> None:
        try:
            shutdown.install_signal_handlers()
            _attach_log_filter()
        except Exception as exc:
            _log.error("otelkit: preparing the worker child failed: %s", exc)

    def process_shutdown(self, **_: Any) -> None:
        try:
            shutdown.flush_all()
        except Exception as exc:
            _log.error("otelkit: flushing telemetry of the exiting worker child failed: %s", exc)

    def worker_shutdown(self, **_: Any) -> None:
        try:
            shutdown.finish()
        except Exception as exc:
            _log.error("otelkit: flushing telemetry at worker shutdown failed: %s", exc)

    # -- wiring

    def _receivers(self) -> list[tuple[Any, Any]]:
        from celery import signals

        return [
            (signals.before_task_publish, self.before_publish),
            (signals.task_prerun, self.prerun),
            (signals.task_postrun, self.postrun),
            (signals.task_revoked, self.revoked),
            (signals.after_setup_logger, self.after_setup_logger),
            (signals.after_setup_task_logger, self.after_setup_task_logger),
            (signals.worker_process_init, self.process_init),
            (signals.worker_process_shutdown, self.process_shutdown),
            (signals.worker_shutdown, self.worker_shutdown),
        ]

    def connect(self) -> None:
        for signal, receiver in self._receivers():
            signal.connect(receiver, weak=False, dispatch_uid=f"{SCOPE}.{receiver.__name__}")

    def disconnect(self) -> None:
        for signal, receiver in self._receivers():
            signal.disconnect(receiver, dispatch_uid=f"{SCOPE}.{receiver.__name__}")


_lock = threading.Lock()
_hooks: list[_Hooks] = []
_filter = TaskLogContext()


def _log_handlers() -> list[logging.Handler]:
    handlers = list(logging.getLogger().handlers)
    prepared = state.otel_log_handler()
    if prepared is not None and prepared not in handlers:
        handlers.append(prepared)
    return handlers


def _attach_log_filter() -> None:
    for handler in _log_handlers():
        if _filter not in handler.filters:
            handler.addFilter(_filter)


def _detach_log_filter() -> None:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            handler.removeFilter(_filter)


CELERY_OWN_LOGGER = "celery"
"""The parent of Celery's own loggers (``celery.worker.strategy``'s "Task … received",
``celery.app.trace``'s "… succeeded in …"); the task logger ``celery.task`` has a level of its own."""


def _after_celery_logging(logger: Any, loglevel: Any) -> None:
    """After Celery configured ``logger`` (root, or the task logger): OTel handler back, level, task fields.

    The root and task loggers get the more verbose of ``OTELKIT_LOG_LEVEL`` and the worker's
    ``-l``, so the app's INFO records are exported under Celery's default WARNING. Celery's own
    loggers keep ``-l``, as without otelkit: lowering the root must not make Celery log two INFO
    records per task (received, succeeded) that the worker was not asked for, and that the task's
    span already carries. A level the app gave the ``celery`` logger itself stays.
    """
    if isinstance(logger, logging.Logger):
        wanted = _otelkit_level()
        worker_level = loglevel if isinstance(loglevel, int) and loglevel else None
        if worker_level is not None:
            wanted = min(wanted, worker_level)
        if logger.level == logging.NOTSET or wanted < logger.level:
            logger.setLevel(wanted)
        own = logging.getLogger(CELERY_OWN_LOGGER)
        is_root = logger is logging.getLogger()
        if is_root and worker_level is not None and worker_level > wanted and own.level == logging.NOTSET:
            own.setLevel(worker_level)  # the root was made more verbose than -l: Celery's own stay at -l
    handler = state.otel_log_handler()
    if handler is not None:
        root = logging.getLogger()
        if handler not in root.handlers:  # the hijack emptied the root logger
            root.addHandler(handler)
        log_handler.after_app_config([handler], [])
    _attach_log_filter()


def _otelkit_level() -> int:
    level = logging.getLevelName(state.settings().log_level)
    return level if isinstance(level, int) else logging.INFO


def _broker_observer(meter_provider: Any) -> BrokerObserver | None:
    settings = state.settings()
    if not settings.celery_broker_metrics:
        return None
    return BrokerObserver(meter_provider, ping_interval=settings.celery_ping_interval)


def observe_broker(app: Any) -> bool:
    """Report ``celery.queue.length`` and ``celery.workers.online`` for ``app`` from this process now.

    A process that publishes tasks starts by itself at its first publish; call this at start-up to
    report before that, or in a process that publishes nothing (a small monitor next to the
    workers). Needs :func:`install` (done by the launcher and :func:`otelkit.configure`).

    Returns:
        True if ``app``'s broker is observed, False if the hooks are not installed or
        ``OTELKIT_CELERY_BROKER_METRICS=false``.
    """
    with _lock:
        broker = _hooks[0].broker if _hooks else None
    if broker is None:
        return False
    broker.watch(app)
    return True


def install(*, meter_provider: Any = None) -> bool:
    """Connect otelkit's Celery hooks (metrics, log context, logging setup, flush on exit).

    Called for you by the launcher (``opentelemetry-instrument``) and by :func:`otelkit.configure`
    when Celery is installed; calling it again does nothing. The spans come from
    opentelemetry-instrumentation-celery, instrumented alongside; when it is instrumented already,
    its run span is made in otelkit's receivers (sdk_compat ``celery-run-span``).

    Args:
        meter_provider: record into this provider instead of the global one (tests).

    Returns:
        True if the hooks are connected (now or before), False if Celery is not installed or
        connecting failed (logged).
    """
    with _lock:
        if _hooks:
            return True
        try:
            hooks = _Hooks(meter_provider)
            hooks.broker = _broker_observer(meter_provider)
            hooks.connect()
        except ImportError:
            _log.error("otelkit: the Celery hooks need celery; pip install 'celery>=5.4'")
            return False
        except Exception as exc:
            _log.error("otelkit: connecting the Celery hooks failed, continuing without them: %s", exc)
            return False
        _hooks.append(hooks)
        _attach_log_filter()
        patches.apply()
        _take_over_run_spans(hooks)
        return True


def _take_over_run_spans(hooks: _Hooks) -> None:
    """Make contrib's run span in :meth:`_Hooks.prerun`/:meth:`_Hooks.postrun` when contrib is instrumented."""
    try:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
    except ImportError:
        return  # no spans at all
    try:
        instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]  # the singleton; unannotated in contrib
        if not instrumentor.is_instrumented_by_opentelemetry:
            return  # instrumented later, its own receivers make the span
        hooks.run_spans = sdk_compat.take_over_run_spans(instrumentor)
        if hooks.run_spans is not None:
            hooks.instrumentor = instrumentor
    except Exception as exc:
        _log.debug("otelkit: contrib's Celery receivers go on making the run span: %s", exc)


def uninstall() -> None:
    """Disconnect the hooks and remove the log filter (tests; a later :func:`install` reconnects)."""
    with _lock:
        while _hooks:
            hooks = _hooks.pop()
            hooks.disconnect()
            if hooks.instrumentor is not None:
                sdk_compat.give_back_run_spans(hooks.instrumentor)
            if hooks.broker is not None:
                hooks.broker.close()
        _detach_log_filter()
        patches.restore()
