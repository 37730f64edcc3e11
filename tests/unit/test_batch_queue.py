"""otelkit's queueing on an SDK batch processor (``batch-queue``) queues what the SDK's ``emit`` queues."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._runtime import sdk_compat
from otelkit._runtime.sdk_compat import _queue


def _processor(**options: Any) -> tuple[BatchSpanProcessor, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return BatchSpanProcessor(exporter, schedule_delay_millis=60_000, **options), exporter


def test_queue_emit_is_the_fast_path_and_exports_every_item_in_order() -> None:
    assert sdk_compat.BATCH_QUEUE.on, sdk_compat.BATCH_QUEUE.reason
    span_processor, exporter = _processor()
    emit = sdk_compat.queue_emit(span_processor._batch_processor)
    assert emit != span_processor._batch_processor.emit  # not the SDK's own
    for i in range(5):
        emit(i)
    span_processor.force_flush()
    span_processor.shutdown()
    assert list(exporter.get_finished_spans()) == [0, 1, 2, 3, 4]


def test_queue_emit_wakes_the_worker_when_a_batch_is_full() -> None:
    span_processor, exporter = _processor(max_export_batch_size=3)
    emit = sdk_compat.queue_emit(span_processor._batch_processor)
    for i in range(3):
        emit(i)
    # No flush: the worker (asleep for 60 s) exports because the third item filled a batch.
    for _ in range(100):
        if len(exporter.get_finished_spans()) == 3:
            break
        time.sleep(0.05)
    assert list(exporter.get_finished_spans()) == [0, 1, 2]
    span_processor.shutdown()


def test_queue_emit_leaves_a_full_queue_and_shutdown_to_the_sdk(caplog: pytest.LogCaptureFixture) -> None:
    span_processor, exporter = _processor(max_queue_size=4, max_export_batch_size=4)
    processor = span_processor._batch_processor
    emit = sdk_compat.queue_emit(processor)
    gate = threading.Lock()
    gate.acquire()
    export = exporter.export
    exporter.export = lambda batch: (gate.acquire(), gate.release(), export(batch))[-1]  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        for i in range(4):
            emit(i)  # the fourth wakes the worker, which waits at the gate with the four it took
        for _ in range(100):
            if not processor._queue:
                break
            time.sleep(0.05)
        for i in range(4, 9):
            emit(i)  # four fill the queue again; the fifth meets it full: the SDK's warning, the oldest dropped
        gate.release()
        span_processor.force_flush()
        span_processor.shutdown()
        emit("late")
    assert list(exporter.get_finished_spans()) == [0, 1, 2, 3, 5, 6, 7, 8]
    messages = [r.getMessage() for r in caplog.records]
    assert "Queue full, dropping Span." in messages
    assert "Shutdown called, ignoring Span." in messages


def test_queue_emit_after_a_fork_hands_the_item_to_the_sdk_which_starts_afresh() -> None:
    span_processor, exporter = _processor()
    processor = span_processor._batch_processor
    emit = sdk_compat.queue_emit(processor)
    emit("before")
    span_processor.force_flush()
    # As in a child whose at-fork hooks ran otelkit's but not the SDK's: the SDK's emit sees
    # another pid and starts the processor afresh (an empty queue, a new worker), then queues.
    old_worker = processor._worker_thread
    processor._pid = -1
    _queue._forked()
    emit("after")
    assert processor._pid == os.getpid()
    assert processor._worker_thread is not old_worker
    emit("next")
    span_processor.force_flush()
    span_processor.shutdown()
    assert list(exporter.get_finished_spans()) == ["before", "after", "next"]


def test_queue_emit_of_anything_but_the_sdk_batch_processor_is_its_own_emit() -> None:
    class Queue:
        def emit(self, item: Any) -> None:
            pass

    queue = Queue()
    assert sdk_compat.queue_emit(queue) == queue.emit


def test_queue_emit_falls_back_to_the_sdk_emit_when_the_path_is_off() -> None:
    path = sdk_compat.BATCH_QUEUE
    path.reset()
    probe = path.probe
    path.probe = lambda fast: "forced off by the test"
    try:
        span_processor, _ = _processor()
        assert sdk_compat.queue_emit(span_processor._batch_processor) == span_processor._batch_processor.emit
        span_processor.shutdown()
    finally:
        path.probe = probe
        path.reset()
