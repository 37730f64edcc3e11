"""A batch processor's queue without a system call per item: ``BatchProcessor.emit`` minus ``os.getpid()``.

The SDK's ``BatchProcessor.emit`` (the batch span and log record processors' common part) checks
``os.getpid()`` against the process it started in for every span and record it queues — three a
request in bench/'s default deployment — and ``getpid()`` is a system call (0.15 µs in a loop
here; its ``emit`` takes 260 ns an item, this one 103). The SDK also registers
``os.register_at_fork(after_in_child=…)`` to start each processor afresh in a forked child; the
``getpid()`` check is its fallback for a fork that runs no at-fork hooks.

:func:`queue_emit` gives the fast paths (``span-end``, ``log-record``) an ``emit`` for a processor
that does what the SDK's does for an item it queues — the item put on the left of the queue, the
worker woken when a batch is full — and hands the SDK's own ``emit`` every other item: the first
one after any fork of this process (otelkit's own at-fork hook counts them; the SDK's ``emit`` then
checks the pid as always), every one after shutdown, and every one that meets a full queue (the
SDK's warning and drop count). What it relies on (checked by its probe, ``batch-queue``): the
names ``emit`` refers to being those of a release otelkit knows (1.40; 1.41–1.42 count drops;
1.43+ wake the worker only when it is not awake), and ``_queue``, ``_max_queue_size``,
``_max_export_batch_size``, ``_worker_awaken`` and ``_shutdown`` on the processor; the probe queues
items both ways and compares what reached the exporter.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

from otelkit._runtime.sdk_compat._registry import differs, missing, quiet, register

__all__ = ["BATCH_QUEUE", "queue_emit"]

# The names BatchProcessor.emit refers to in 1.40; later releases add to them.
_EMIT_NAMES = frozenset(
    {
        *("_at_fork_reinit", "_bsp_reset_once", "_exporting", "_logger", "_max_export_batch_size"),
        *("_max_queue_size", "_pid", "_queue", "_shutdown", "_worker_awaken", "appendleft", "do_once"),
        *("getpid", "info", "len", "os", "set", "warning"),
    }
)
_KNOWN_EMITS = (
    _EMIT_NAMES,  # 1.40
    _EMIT_NAMES | {"_metrics", "drop_items"},  # 1.41-1.42
    _EMIT_NAMES | {"_metrics", "drop_items", "is_set"},  # 1.43+
)
_PROCESSOR_FIELDS = ("_queue", "_max_queue_size", "_max_export_batch_size", "_worker_awaken", "_shutdown")

_batch: list[Any] = [None]  # the SDK's BatchProcessor class, set by the probe
_forks = [0]  # forks of this process seen in this child (otelkit's at-fork hook); the value is all that matters


def _forked() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _queue_direct(processor: Any) -> Callable[[Any], None]:
    sdk_emit: Callable[[Any], None] = processor.emit
    if type(processor) is not _batch[0]:
        return sdk_emit
    forks = _forks
    seen = [forks[0]]

    def emit(item: Any) -> None:
        queue = processor._queue
        if seen[0] != forks[0] or processor._shutdown or len(queue) >= processor._max_queue_size:
            seen[0] = forks[0]
            sdk_emit(item)
            return
        queue.appendleft(item)
        if len(queue) >= processor._max_export_batch_size:
            awaken = processor._worker_awaken
            if not awaken.is_set():
                awaken.set()

    return emit


def _queue_public(processor: Any) -> Callable[[Any], None]:
    return processor.emit  # type: ignore[no-any-return]


def _probe_batch_queue(fast: Callable[[Any], Callable[[Any], None]]) -> str | None:
    from opentelemetry.sdk._shared_internal import BatchProcessor
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if frozenset(BatchProcessor.emit.__code__.co_names) not in _KNOWN_EMITS:
        return "BatchProcessor.emit does what no release otelkit knows does"
    _batch[0] = BatchProcessor
    exported: dict[str, list[Any]] = {}
    for way, make in (("sdk", _queue_public), ("fast", fast)):
        exporter = InMemorySpanExporter()
        span_processor: Any = BatchSpanProcessor(exporter, schedule_delay_millis=60_000, max_export_batch_size=2)
        processor = span_processor._batch_processor
        reason = missing(processor, _PROCESSOR_FIELDS)
        if reason is not None:
            span_processor.shutdown()
            return reason
        if type(processor._queue) is not deque or processor._queue.maxlen != processor._max_queue_size:
            span_processor.shutdown()
            return "BatchProcessor._queue is not a deque bounded by _max_queue_size"
        emit = make(processor)
        for item in ("a", "b", "c"):
            emit(item)
        span_processor.force_flush()
        span_processor.shutdown()
        with quiet(BatchProcessor.__module__):  # "Shutdown called, ignoring …": the SDK's INFO, both ways
            emit("after shutdown")
        exported[way] = list(exporter.get_finished_spans())
    return differs("queued items", exported["fast"], exported["sdk"])


BATCH_QUEUE = register("batch-queue", probe=_probe_batch_queue, fast=_queue_direct, fallback=_queue_public)


def queue_emit(processor: Any) -> Callable[[Any], None]:
    """What queues an item on ``processor`` (a batch processor's ``_batch_processor``).

    Its ``emit``, or the same without the pid check (the module's docstring) where the probe passed.
    """
    return BATCH_QUEUE.get()(processor)
