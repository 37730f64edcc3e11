"""The Celery task instruments' names and attributes, and the pre-aggregated ones otelkit's MeterProvider registers.

A task's metric attributes (:func:`task_attributes`) and the header times they start from
(:func:`timestamp`) are here too.

Recording into a pre-aggregated instrument (:mod:`otelkit._runtime.fasthist`) as the SDK instrument
would with the task's span in the context: :func:`record_fast`, :func:`add_fast` (a hook reads the
clock and the span context once for its three records).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from otelkit._runtime import fasthist
from otelkit._runtime.monitor import DURATION_BUCKETS

__all__ = [
    "ACTIVE_DESCRIPTION",
    "ACTIVE_METRIC",
    "COMPLETED_DESCRIPTION",
    "COMPLETED_METRIC",
    "DURATION_ATTRIBUTES",
    "DURATION_DESCRIPTION",
    "DURATION_METRIC",
    "SCOPE",
    "STARTED_DESCRIPTION",
    "STARTED_METRIC",
    "TASK_ID_KEY",
    "TASK_NAME_KEY",
    "TASK_STATE_KEY",
    "WAIT_ATTRIBUTES",
    "WAIT_DESCRIPTION",
    "WAIT_METRIC",
    "add_fast",
    "exemplar_ids",
    "record_fast",
    "register_fast_instruments",
    "task_attributes",
    "timestamp",
]

TASK_NAME_KEY = "celery.task.name"
TASK_ID_KEY = "celery.task.id"
TASK_STATE_KEY = "celery.task.state"

DURATION_METRIC = "celery.task.duration"
WAIT_METRIC = "celery.task.wait.duration"
STARTED_METRIC = "celery.task.started"
COMPLETED_METRIC = "celery.task.completed"
ACTIVE_METRIC = "celery.task.active"
STARTED_DESCRIPTION = "Celery tasks that started running."
COMPLETED_DESCRIPTION = "Celery tasks that finished, by final state (success, failure, retry, revoked)."
ACTIVE_DESCRIPTION = "Celery tasks running now."
DURATION_DESCRIPTION = "Time Celery tasks took to run."
WAIT_DESCRIPTION = "Time Celery tasks waited between being enqueued (or their ETA) and starting."
SCOPE = "otelkit.celery"
WAIT_ATTRIBUTES = (TASK_NAME_KEY, "messaging.system", "messaging.destination.name")
DURATION_ATTRIBUTES = (*WAIT_ATTRIBUTES, TASK_STATE_KEY)


_last_ids: list[tuple[Any, Any, tuple[int, int]]] = [(object(), None, (0, 0))]  # (context, filter, ids), replaced whole


def exemplar_ids(instrument: fasthist.FastHistogram | fasthist.FastSum, context: Any) -> tuple[int, int]:
    """The ids the SDK's exemplar filter takes from a measurement under the span context ``context`` (0: none).

    A task's records share two span contexts; the answer for the last one is kept (a span context
    is immutable, and the entry holds it, so ``is`` cannot match a new one at the same address).
    """
    exemplars = instrument.exemplars
    last = _last_ids[0]
    if last[0] is context and last[1] == exemplars:
        return last[2]
    if context.trace_flags.sampled or (exemplars == "always_on" and context.is_valid):
        ids = (context.trace_id, context.span_id)
    else:
        ids = (0, 0)
    _last_ids[0] = (context, exemplars, ids)
    return ids


def record_fast(
    histogram: fasthist.FastHistogram, value: float, key: tuple[str | None, ...], now: int, context: Any
) -> None:
    """Record at ``now`` (ns) as the SDK histogram would under the span context ``context``."""
    histogram.record(value, key, now, *exemplar_ids(histogram, context))


def add_fast(counter: fasthist.FastSum, key: tuple[str | None, ...], now: int, context: Any, amount: int = 1) -> None:
    """Add at ``now`` (ns) as the SDK counter would under the span context ``context``."""
    counter.add(amount, key, now, *exemplar_ids(counter, context))


def register_fast_instruments(*, anchored: bool = False) -> None:
    """Register the pre-aggregated task instruments (called when otelkit builds the MeterProvider).

    The histograms when fasthist is usable at all (the caller checked); the two counters too when
    the ``fast-sum`` path is on; ``celery.task.active`` too when every exporter also takes
    up-down counters cumulative (``anchored``). The SDK's reader calls the exporter (which merges
    these in) only when its own instruments have a point: the SDK's ``celery.task.active`` gets one
    ``add(0)`` per attribute set, which stays in every cumulative collection from a process's first
    task on, and the exporter sends the fast instrument's points in its place.
    """
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    scope = InstrumentationScope(SCOPE, "")  # as metrics.get_meter(SCOPE) makes it: version ""
    for name, description, names in (
        (DURATION_METRIC, DURATION_DESCRIPTION, DURATION_ATTRIBUTES),
        (WAIT_METRIC, WAIT_DESCRIPTION, WAIT_ATTRIBUTES),
    ):
        fasthist.register(
            fasthist.FastHistogram(
                name, unit="s", description=description, boundaries=DURATION_BUCKETS, attribute_names=names, scope=scope
            )
        )
    fast_sum = fasthist.FAST_SUM.get()
    if fast_sum is None:
        return
    for name, description, names in (
        (STARTED_METRIC, STARTED_DESCRIPTION, WAIT_ATTRIBUTES),
        (COMPLETED_METRIC, COMPLETED_DESCRIPTION, DURATION_ATTRIBUTES),
    ):
        fasthist.register(
            fast_sum(name, unit="{task}", description=description, monotonic=True, attribute_names=names, scope=scope)
        )
    if anchored:
        active = fast_sum(
            ACTIVE_METRIC,
            unit="{task}",
            description=ACTIVE_DESCRIPTION,
            monotonic=False,
            attribute_names=WAIT_ATTRIBUTES,
            scope=scope,
        )
        active.replaces_sdk = True
        fasthist.register(active)


def _queue(delivery_info: Any) -> str | None:
    if isinstance(delivery_info, dict):
        queue = delivery_info.get("routing_key")
        if isinstance(queue, str) and queue:
            return queue
    return None


def task_attributes(name: str, delivery_info: Any) -> dict[str, str]:
    """The attributes of a task's own metrics: its name, the system, and its queue when known."""
    attributes = {TASK_NAME_KEY: name, "messaging.system": "celery"}
    queue = _queue(delivery_info)
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    return attributes


def timestamp(value: Any) -> float | None:
    """Unix seconds from a header value: a number, or an ISO 8601 string (Celery's ETA)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            moment = _dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.timestamp()
