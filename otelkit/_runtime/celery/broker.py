"""Celery backlog and liveness, read from the broker: ``celery.queue.length`` and ``celery.workers.online``.

Two observable gauges (instrumentation scope ``otelkit.celery``), exported over OTLP like every
other metric:

==========================  ============  ===========  ===================================================
name                        unit          attributes   value
==========================  ============  ===========  ===================================================
``celery.queue.length``     ``{message}`` queue        messages waiting in the queue, priority sub-queues
                                                       included (Redis ``LLEN`` of each; RabbitMQ's count)
``celery.workers.online``   ``{worker}``  —            workers that answered a broadcast ``ping``
==========================  ============  ===========  ===================================================

Attributes: ``messaging.system`` (``celery``) and, on the queue gauge, ``messaging.destination.name``.
In Prometheus: ``celery_queue_length`` and ``celery_workers_online``, with the reporting
process's ``service_name``.

Where it runs, and what it costs. The gauges are observed in the processes that *publish* tasks —
the web app — because those are the ones that keep reporting when no worker runs: a worker cannot
report its own absence, and a queue with no consumer is exactly the backlog to see. A process
starts observing its Celery app at its first publish (otelkit's ``before_task_publish`` hook), or
at once with :func:`otelkit.celery.observe_broker`. At each metric export (the SDK's export
interval, 60 s by default) it reads the length of every queue the app declares — ``task_queues``,
the default queue, and queues created for routes — through kombu's passive ``queue_declare``: for
Redis one pipelined ``EXISTS`` and one pipelined ``LLEN`` over the queue and the priority
sub-queues kombu creates (``<queue>\\x06\\x16<n>``); for RabbitMQ the message count of the queue.
At most every ``OTELKIT_CELERY_PING_INTERVAL`` seconds (30 by default) it broadcasts Celery's
``ping`` and counts the replies, waiting one second for them; every worker answers every
publishing process, so with many web processes raise the interval. Every publishing process
reports the same values: aggregate with ``max`` (the rendered alerts do). Workers with remote
control disabled (``worker_enable_remote_control = False``) never answer and count as offline.

This runs on the SDK's metric export thread, never in a request. A broker that cannot be reached
leaves a gap (no value), not a zero, and is logged once at WARNING (then at DEBUG) with the
broker's address without its password. ``OTELKIT_CELERY_BROKER_METRICS=false`` turns it all off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["QUEUE_LENGTH", "WORKERS_ONLINE", "BrokerObserver"]

_log = logging.getLogger("otelkit")

QUEUE_LENGTH = "celery.queue.length"
WORKERS_ONLINE = "celery.workers.online"
_SYSTEM = {"messaging.system": "celery"}
# Broker I/O runs on the export thread: keep each step short, so one dead broker cannot hold the
# metric export for long (kombu retries connections forever by default).
_CONNECT_TIMEOUT = 2.0
_REDIS_OPTIONS = {"socket_timeout": 5.0, "socket_connect_timeout": _CONNECT_TIMEOUT}


@dataclass
class _Watched:
    """One Celery app observed from this process, and its broker connection."""

    app: Any
    connection: Any = None
    channel: Any = None
    last_ping: float | None = None
    workers: int | None = None
    warned: set[str] = field(default_factory=set)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The broker's traffic is otelkit's own bookkeeping: no spans for it, whatever is instrumented.
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # pragma: no cover - opentelemetry-instrumentation is a dependency
        yield
        return
    with suppress_instrumentation():
        yield


class BrokerObserver:
    """The two gauges, and the Celery apps whose broker they read.

    Args:
        meter_provider: create the gauges on this provider instead of the global one (tests).
        ping_interval: seconds between two broadcast pings per app; 0 turns the workers gauge off.
        ping_timeout: seconds to wait for the workers' replies.
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        ping_interval: float = 30.0,
        ping_timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[int, _Watched] = {}
        self._seen_tasks: set[str] = set()
        meter = metrics.get_meter("otelkit.celery", meter_provider=meter_provider)
        meter.create_observable_gauge(
            QUEUE_LENGTH,
            callbacks=[self._observe_queues],
            unit="{message}",
            description="Messages waiting in a Celery queue, read from the broker (priority sub-queues included).",
        )
        if ping_interval > 0:
            meter.create_observable_gauge(
                WORKERS_ONLINE,
                callbacks=[self._observe_workers],
                unit="{worker}",
                description="Celery workers that answered a broadcast ping.",
            )
        # A forked child must not use its parent's broker sockets.
        ref = weakref.ref(self)

        def after_fork() -> None:
            observer = ref()
            if observer is not None:
                observer._forget_connections()

        os.register_at_fork(after_in_child=after_fork)

    # -- which apps ---------------------------------------------------------------------------

    def watch(self, app: Any) -> None:
        """Observe ``app``'s broker from now on (idempotent, cheap to call on every publish)."""
        # No lock: the export thread may hold it for a broker round trip, and a request must not
        # wait for that. dict.setdefault is atomic; the callbacks iterate over a copy.
        key = id(app)
        if key not in self._watched:
            self._watched.setdefault(key, _Watched(app))

    def watch_publisher(self, task_name: str) -> None:
        """Observe the app that publishes ``task_name`` (called on every publish; work on the first only).

        The publish signal does not carry the app, and ``celery.current_app`` is per thread (a
        request handled in a worker thread sees Celery's fallback app). So: the apps that have the
        task registered (``@app.task`` shares a task with every app by default: in a process with
        several apps, each is observed), else every app with a broker configured.
        """
        if task_name in self._seen_tasks:
            return
        self._seen_tasks.add(task_name)
        from celery import _state

        fallback = _state.default_app  # Celery's own, created when current_app finds none
        apps = [app for app in list(_state._get_active_apps()) if not (app is fallback and app.main == "default")]
        owners = [app for app in apps if app.finalized and task_name in app.tasks]
        if not owners:
            owners = [app for app in apps if app.conf.broker_url]
        for app in owners:
            self.watch(app)

    def watching(self) -> list[Any]:
        return [w.app for w in list(self._watched.values())]

    def close(self) -> None:
        """Stop observing every app and close their broker connections."""
        with self._lock:
            for watched in self._watched.values():
                self._drop(watched)
            self._watched.clear()

    # -- the callbacks (metric export thread) -------------------------------------------------

    def _observe_queues(self, options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        with self._lock:
            for watched in list(self._watched.values()):
                lengths = self._guard(watched, "queue lengths", self._queue_lengths)
                for queue, length in sorted((lengths or {}).items()):
                    observations.append(Observation(length, {**_SYSTEM, "messaging.destination.name": queue}))
        return observations

    def _observe_workers(self, options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        with self._lock:
            for watched in list(self._watched.values()):
                now = self._clock()
                if watched.last_ping is None or now - watched.last_ping >= self.ping_interval:
                    watched.last_ping = now
                    watched.workers = self._guard(watched, "the workers' ping", self._ping)
                if watched.workers is not None:
                    observations.append(Observation(watched.workers, dict(_SYSTEM)))
        return observations

    # -- broker I/O ---------------------------------------------------------------------------

    def _guard(self, watched: _Watched, what: str, read: Callable[[_Watched], Any]) -> Any:
        try:
            with _quiet():
                return read(watched)
        except Exception as exc:
            where = self._address(watched)
            kind = f"{what}:{type(exc).__name__}"
            level = logging.DEBUG if kind in watched.warned else logging.WARNING
            watched.warned.add(kind)
            _log.log(level, "otelkit: reading %s from the Celery broker %s failed: %s", what, where, exc)
            self._drop(watched)
            return None

    def _connection(self, watched: _Watched) -> Any:
        if watched.connection is None:
            app = watched.app
            connection = app.connection_for_read(connect_timeout=_CONNECT_TIMEOUT)
            if getattr(connection.transport, "driver_type", "") == "redis":
                connection.release()
                connection = app.connection_for_read(
                    connect_timeout=_CONNECT_TIMEOUT, transport_options=dict(_REDIS_OPTIONS)
                )
            watched.connection = connection
        watched.connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=_CONNECT_TIMEOUT)
        return watched.connection

    def _queue_lengths(self, watched: _Watched) -> dict[str, int]:
        connection = self._connection(watched)
        if watched.channel is None:
            watched.channel = connection.channel()
        lengths: dict[str, int] = {}
        for queue in list(watched.app.amqp.queues):
            try:
                lengths[queue] = int(watched.channel.queue_declare(queue=queue, passive=True).message_count)
            except connection.channel_errors:
                # "no such queue": Redis deletes empty lists, RabbitMQ has not declared it yet.
                lengths[queue] = 0
                if not getattr(watched.channel, "is_open", True):
                    watched.channel = connection.channel()  # AMQP closes a channel on 404
        return lengths

    def _ping(self, watched: _Watched) -> int:
        replies = watched.app.control.ping(timeout=self.ping_timeout, connection=self._connection(watched))
        return len(replies or ())

    @staticmethod
    def _address(watched: _Watched) -> str:
        try:
            from kombu.utils.url import maybe_sanitize_url

            return str(maybe_sanitize_url(watched.app.conf.broker_url))  # the password masked
        except Exception:
            return "(unknown address)"

    @staticmethod
    def _drop(watched: _Watched) -> None:
        for resource in (watched.channel, watched.connection):
            if resource is not None:
                with contextlib.suppress(Exception):
                    resource.close() if resource is watched.channel else resource.release()
        watched.channel = watched.connection = None

    def _forget_connections(self) -> None:
        # After fork: the parent owns the sockets; the child opens its own on next use.
        self._lock = threading.Lock()
        for watched in self._watched.values():
            watched.channel = watched.connection = None
            watched.last_ping = None
