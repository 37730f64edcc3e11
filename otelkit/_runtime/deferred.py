"""OTLP exporters created after start-up, off its path.

The SDK's OTLP exporter modules import protobuf (and the generated message classes), requests and
urllib3, or grpc: about a third of what otelkit adds to an app's start-up, for objects that are
first used seconds later, on the batch processors' and the metric reader's own threads. The
configurator therefore hands the processors a :class:`DeferredExporter`: it checks the endpoint and
protocol at start-up (bad values are reported then), and the real exporter is built
:data:`WARM_AFTER` seconds later on a background thread (:func:`warm_later`), or at the first
export if that comes sooner. Not at the first export alone: building takes ~0.1 s of CPU, and on a
server already under load that burst would delay every request in flight at that moment (a p99
spike seconds into the process's life); one second after start-up the app is usually still
starting or idle.

The metric reader needs the exporter's temporality and aggregation preferences when it is built.
:func:`metric_preferences` computes them from the same variables the SDK's OTLP metric exporters
read (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``,
``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``); a unit test holds it equal to the
SDK's for every accepted value.

If building the real exporter fails, that is logged once and the signal's exports fail from then
on (the processors drop those batches, as they would with an unreachable collector); the app is
never affected.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter

__all__ = ["WARM_AFTER", "DeferredExporter", "DeferredMetricExporter", "metric_preferences", "warm_later"]

_log = logging.getLogger("otelkit")

TEMPORALITY_VARIABLE = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
AGGREGATION_VARIABLE = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
_TEMPORALITIES = ("CUMULATIVE", "DELTA", "LOWMEMORY")
_AGGREGATIONS = ("explicit_bucket_histogram", "base2_exponential_bucket_histogram")

WARM_AFTER = 1.0
"""Seconds after set-up at which :func:`warm_later` builds the real exporters."""


class _Lazy:
    """The real exporter, built once by ``factory`` on first use; None if building it failed."""

    def __init__(self, signal: str, factory: Callable[[], Any]) -> None:
        self.signal = signal
        self._factory: Callable[[], Any] | None = factory
        self._exporter: Any = None
        self._done = False  # set only once the build finished: a caller never sees one in progress
        self._lock = threading.Lock()
        self.on_built: Callable[[], None] | None = None
        _instances.add(self)

    def get(self) -> Any:
        if self._done:
            return self._exporter
        with self._lock:  # another thread may be building it: wait for the result
            if not self._done:
                try:
                    self._exporter = self._factory() if self._factory is not None else None
                except Exception as exc:  # never raise into the processors' threads
                    _log.error(
                        "otelkit: creating the OTLP exporter for %s failed; %s are not exported: %s",
                        self.signal,
                        self.signal,
                        exc,
                    )
                finally:
                    self._factory = None
                    self._done = True
            on_built, self.on_built = self.on_built, None
            if on_built is not None:
                try:
                    on_built()
                except Exception as exc:  # never raise into the processors' threads
                    _log.error("otelkit: after building the OTLP exporter for %s: %s", self.signal, exc)
        return self._exporter

    def built(self) -> Any:
        """The real exporter if it was built, without building it."""
        return self._exporter


# Every _Lazy: a fork waits until no exporter is being built. Building imports modules, and a
# child forked in the middle of that would inherit half-imported modules whose import locks belong
# to a thread it does not have: its first export (Celery prefork children) would block forever.
_instances: weakref.WeakSet[_Lazy] = weakref.WeakSet()
_held: list[_Lazy] = []


def _before_fork() -> None:
    for lazy in list(_instances):
        lazy._lock.acquire()
        _held.append(lazy)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._lock.release()


def _after_fork_in_child() -> None:
    for lazy in _held:
        lazy._lock = threading.Lock()
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


class DeferredExporter:
    """A span or log record exporter that builds the real one on its first export.

    ``redacts`` tells the configurator that the real exporter scrubs attributes itself (the
    factory wraps it if needed), so it is not wrapped again.
    """

    redacts = True

    def __init__(self, signal: str, factory: Callable[[], Any], failure: Any) -> None:
        self._lazy = _Lazy(signal, factory)
        self._failure = failure

    def resolve(self) -> Any:
        """The real exporter, built now if it was not yet (None if that failed)."""
        return self._lazy.get()

    def built(self) -> Any:
        """The real exporter if it was built, without building it."""
        return self._lazy.built()

    def when_built(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once, on the building thread) when the real exporter has been built."""
        self._lazy.on_built = callback

    def export(self, batch: Any, *args: Any, **kwargs: Any) -> Any:
        exporter = self._lazy.get()
        if exporter is None:
            return self._failure
        return exporter.export(batch, *args, **kwargs)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        exporter = self._lazy.built()
        return True if exporter is None else exporter.force_flush(timeout_millis)

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        exporter = self._lazy.built()
        if exporter is not None:
            exporter.shutdown(*args, **kwargs)


class DeferredMetricExporter(MetricExporter):
    """The metric counterpart: preferences known at once, the real exporter built on first export."""

    redacts = True

    def __init__(self, factory: Callable[[], Any]) -> None:
        temporality, aggregation = metric_preferences()
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self.preferences = (temporality, aggregation)
        self._lazy = _Lazy("metrics", lambda: _checked(factory(), self.preferences))

    def resolve(self) -> Any:
        """The real exporter, built now if it was not yet (None if that failed)."""
        return self._lazy.get()

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        exporter = self._lazy.get()
        if exporter is None:
            return MetricExportResult.FAILURE
        return exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        exporter = self._lazy.built()
        return True if exporter is None else exporter.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        exporter = self._lazy.built()
        if exporter is not None:
            exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def _checked(exporter: Any, preferences: tuple[dict[type, Any], dict[type, Any]]) -> Any:
    """``exporter``; its preferences should be what :func:`metric_preferences` computed: logged if not.

    The metric reader took otelkit's preferences at start-up (the exporter did not exist yet) and
    keeps them; a unit test holds the two equal on the oldest and the newest supported SDK.
    """
    from otelkit._runtime import sdk_compat

    theirs = sdk_compat.exporter_preferences(exporter)
    if theirs is None:
        return exporter
    ours_t, ours_a = preferences
    theirs_t, theirs_a = theirs
    same = {k: ours_t.get(k) for k in theirs_t} == theirs_t and {
        k: type(v) for k, v in ours_a.items() if k in theirs_a
    } == {k: type(v) for k, v in theirs_a.items()}
    if not same:
        _log.info(
            "otelkit: OpenTelemetry SDK %s: the OTLP metric exporter prefers %s where otelkit computed %s"
            " from %s and %s; metrics are exported with otelkit's (its copy of the SDK's rule is out of date)",
            sdk_compat.sdk_version(),
            {k.__name__: v.name for k, v in theirs_t.items()},
            {k.__name__: v.name for k, v in ours_t.items()},
            TEMPORALITY_VARIABLE,
            AGGREGATION_VARIABLE,
        )
    return exporter


def warm_later(exporters: Iterable[Any], delay: float = WARM_AFTER) -> threading.Timer | None:
    """Build the deferred ones among ``exporters`` on a daemon thread after ``delay`` seconds."""
    deferred = [e for e in exporters if isinstance(e, (DeferredExporter, DeferredMetricExporter))]
    if not deferred:
        return None

    def warm() -> None:
        for exporter in deferred:
            exporter.resolve()  # logs, never raises

    timer = threading.Timer(delay, warm)
    timer.name = "otelkit-exporters"
    timer.daemon = True
    timer.start()
    return timer


def metric_preferences() -> tuple[dict[type, Any], dict[type, Any]]:
    """``(temporality, aggregation)`` per instrument class, as the SDK's OTLP metric exporters set them."""
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.export import AggregationTemporality
    from opentelemetry.sdk.metrics.view import (
        ExplicitBucketHistogramAggregation,
        ExponentialBucketHistogramAggregation,
    )

    raw = os.environ.get(TEMPORALITY_VARIABLE, "CUMULATIVE").upper().strip()
    if raw not in _TEMPORALITIES:
        _log.error(
            "otelkit: invalid %s=%r; expected one of: %s; using CUMULATIVE — fix or unset %s",
            TEMPORALITY_VARIABLE,
            raw,
            ", ".join(_TEMPORALITIES),
            TEMPORALITY_VARIABLE,
        )
        raw = "CUMULATIVE"
    cumulative, delta = AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA
    counters = cumulative if raw == "CUMULATIVE" else delta
    observable_counters = delta if raw == "DELTA" else cumulative
    temporality: dict[type, Any] = {
        Counter: counters,
        UpDownCounter: cumulative,
        Histogram: counters,
        ObservableCounter: observable_counters,
        ObservableUpDownCounter: cumulative,
        ObservableGauge: cumulative,
    }

    histogram = os.environ.get(AGGREGATION_VARIABLE, "explicit_bucket_histogram")
    if histogram not in _AGGREGATIONS:
        _log.error(
            "otelkit: invalid %s=%r; expected one of: %s; using explicit_bucket_histogram — fix or unset %s",
            AGGREGATION_VARIABLE,
            histogram,
            ", ".join(_AGGREGATIONS),
            AGGREGATION_VARIABLE,
        )
        histogram = "explicit_bucket_histogram"
    aggregation: dict[type, Any] = {
        Histogram: ExponentialBucketHistogramAggregation()
        if histogram == "base2_exponential_bucket_histogram"
        else ExplicitBucketHistogramAggregation()
    }
    return temporality, aggregation
