"""Garbage-collector tuning for the app's process (``OTELKIT_GC_FREEZE``), applied after instrumentation."""

from __future__ import annotations

from otelkit._runtime.env import env_int

__all__ = ["tune_gc"]

# Objects the GC tracks per queued span (span, attributes, context, readable copy, …), measured on
# SDK 1.45; a log record holds fewer. Rounded up.
_TRACKED_PER_ITEM = 12


def tune_gc() -> None:
    """Keep otelkit's own footprint out of the app's garbage collections (``OTELKIT_GC_FREEZE``).

    ``gc.freeze()``: the imported libraries leave the collector's generations, so full collections
    under load scan only what the app allocates. And the generation-0 threshold is raised by what
    otelkit's batch queues hold between two exports (~12 tracked objects per span or log record,
    a batch of each): otherwise those objects alone would trigger a young collection every ~60
    requests (p99 latency). Never lowered.
    """
    import gc

    gc.freeze()
    batches = env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) + env_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512)
    threshold0, *older = gc.get_threshold()
    wanted = 700 + _TRACKED_PER_ITEM * batches
    if threshold0 and threshold0 < wanted:  # 0: the app disabled automatic collection
        gc.set_threshold(wanted, *older)
