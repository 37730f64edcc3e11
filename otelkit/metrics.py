"""Business metrics in a line each, on the OpenTelemetry metrics API; and the system metrics switch.

Declare instruments at module level, next to the code that records them::

    from otelkit.metrics import counter, histogram

    models_generated = counter("models.generated", unit="{model}", description="3D models generated")
    external_api_calls = counter("external_api.calls", unit="{call}", description="Calls to external APIs")
    external_api_duration = histogram(
        "external_api.duration", unit="s", description="External API call duration",
        buckets=[0.1, 0.5, 1, 2.5, 5, 10, 30, 60],
    )

    models_generated.add(1, {"status": "success"})
    external_api_duration.record(1.7, {"api": "fal", "operation": "generate"})

They can be declared before :func:`otelkit.configure` runs (or before the launcher has set up the
SDK): each binds to the global ``MeterProvider`` on first use, under the declaring module's name
as instrumentation scope. The collector's Prometheus exporter turns ``models.generated`` into
``models_generated_total`` and ``external_api.duration`` (unit ``s``) into
``external_api_duration_seconds_{bucket,sum,count}``: don't put ``_total`` or the unit into the
name. Keep attribute values few (a status, an operation name — never an id, a user or a URL):
every combination is a time series, and the SDK caps a metric at 2000 of them.

Timing code blocks and counting outcomes of jobs and external calls is :func:`otelkit.monitor`'s
job; this module only declares instruments.

System metrics (``OTELKIT_SYSTEM_METRICS=true``, or ``configure(system_metrics=True)``) come from
opentelemetry-instrumentation-system-metrics with :data:`SYSTEM_METRICS` as its configuration.
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry import metrics

__all__ = [
    "SYSTEM_METRICS",
    "Counter",
    "Gauge",
    "Histogram",
    "UpDownCounter",
    "counter",
    "gauge",
    "histogram",
    "instrument_system_metrics",
    "up_down_counter",
]

_log = logging.getLogger("otelkit")

_NAME = re.compile(r"[A-Za-z][-_./A-Za-z0-9]{0,254}")
_UNIT = re.compile(r"[\x00-\x7f]{0,63}")
_bind_lock = threading.Lock()

Attributes = Mapping[str, Any] | None


class _Instrument:
    __slots__ = ("_instrument", "_provider", "buckets", "description", "name", "scope", "unit")
    _kind = ""

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        scope: str,
        provider: metrics.MeterProvider | None,
        buckets: tuple[float, ...] | None = None,
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.scope = scope
        self.buckets = buckets
        self._provider = provider
        self._instrument: Any = None

    def _bind(self) -> Any:
        with _bind_lock:
            if self._instrument is None:
                from otelkit import __version__

                meter = metrics.get_meter(self.scope, __version__, meter_provider=self._provider)
                create = getattr(meter, f"create_{self._kind}")
                if self.buckets is not None:
                    self._instrument = create(
                        self.name, self.unit, self.description, explicit_bucket_boundaries_advisory=list(self.buckets)
                    )
                else:
                    self._instrument = create(self.name, self.unit, self.description)
            return self._instrument

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, unit={self.unit!r})"


class Counter(_Instrument):
    """A monotonic sum (things that happened). Bound to the global MeterProvider on first use."""

    __slots__ = ()
    _kind = "counter"

    def add(self, amount: int | float = 1, attributes: Attributes = None) -> None:
        """Count ``amount`` (default 1, never negative) occurrences with ``attributes``."""
        (self._instrument or self._bind()).add(amount, attributes)


class UpDownCounter(_Instrument):
    """A sum that goes up and down (jobs in progress, items queued)."""

    __slots__ = ()
    _kind = "up_down_counter"

    def add(self, amount: int | float, attributes: Attributes = None) -> None:
        """Add ``amount`` (negative to decrease)."""
        (self._instrument or self._bind()).add(amount, attributes)


class Histogram(_Instrument):
    """A distribution of values (durations, sizes); exported with the buckets given at declaration."""

    __slots__ = ()
    _kind = "histogram"

    def record(self, amount: int | float, attributes: Attributes = None) -> None:
        """Record one value."""
        (self._instrument or self._bind()).record(amount, attributes)


class Gauge(_Instrument):
    """The last value of something sampled when it changes (a temperature, a configured limit)."""

    __slots__ = ()
    _kind = "gauge"

    def set(self, amount: int | float, attributes: Attributes = None) -> None:
        """Set the current value."""
        (self._instrument or self._bind()).set(amount, attributes)


def _caller_module() -> str:
    frame = sys._getframe(3)
    return str(frame.f_globals.get("__name__", "otelkit.metrics"))


def _checked(name: str, unit: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid metric name {name!r}: expected a letter followed by at most 254 letters, digits, '_', '.',"
            " '-' or '/', such as 'models.generated'"
        )
    if not isinstance(unit, str) or not _UNIT.fullmatch(unit):
        raise ValueError(
            f"invalid unit {unit!r} for metric {name!r}: expected at most 63 ASCII characters, a UCUM unit such as"
            " 's', 'By' or '{model}'"
        )


_I = TypeVar("_I", bound=_Instrument)


def _make(cls: type[_I], name: str, unit: str, description: str, provider: Any, **extra: Any) -> _I:
    _checked(name, unit)
    return cls(name, unit, description, _caller_module(), provider, **extra)


def counter(
    name: str, *, unit: str = "", description: str = "", meter_provider: metrics.MeterProvider | None = None
) -> Counter:
    """Declare a counter.

    Args:
        name: OTel metric name, dot-separated (``models.generated``); no ``_total`` suffix.
        unit: UCUM unit: ``{model}``, ``{call}``, ``By``… (curly braces: an annotation, no unit).
        description: one line shown by backends.
        meter_provider: bind to this provider instead of the global one (tests).

    Raises:
        ValueError: ``name`` or ``unit`` is not valid for OpenTelemetry.
    """
    return _make(Counter, name, unit, description, meter_provider)


def up_down_counter(
    name: str, *, unit: str = "", description: str = "", meter_provider: metrics.MeterProvider | None = None
) -> UpDownCounter:
    """Declare an up-down counter (see :func:`counter` for the arguments)."""
    return _make(UpDownCounter, name, unit, description, meter_provider)


def gauge(
    name: str, *, unit: str = "", description: str = "", meter_provider: metrics.MeterProvider | None = None
) -> Gauge:
    """Declare a (synchronous) gauge (see :func:`counter` for the arguments)."""
    return _make(Gauge, name, unit, description, meter_provider)


def histogram(
    name: str,
    *,
    unit: str = "",
    description: str = "",
    buckets: Sequence[float] | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Histogram:
    """Declare a histogram.

    Args:
        name: OTel metric name (``external_api.duration``); no unit suffix.
        unit: ``s`` for durations (record seconds), ``By`` for sizes.
        description: one line shown by backends.
        buckets: explicit, strictly increasing bucket boundaries; default: the SDK's
            (0, 5, 10, 25 … 10000), fit for milliseconds, not for seconds — give buckets for ``s``.
        meter_provider: bind to this provider instead of the global one (tests).

    Raises:
        ValueError: invalid ``name``, ``unit`` or ``buckets``.
    """
    bounds: tuple[float, ...] | None = None
    if buckets is not None:
        try:
            bounds = tuple(float(b) for b in buckets)
        except (TypeError, ValueError):
            bounds = None
        if not bounds or any(b >= c for b, c in itertools.pairwise(bounds)) or not all(map(math.isfinite, bounds)):
            raise ValueError(
                f"invalid buckets {list(buckets)!r} for histogram {name!r}: expected strictly increasing numbers,"
                " such as [0.1, 0.5, 1, 5, 10]"
            )
    return _make(Histogram, name, unit, description, meter_provider, buckets=bounds)


# --- system metrics --------------------------------------------------------------------------

SYSTEM_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": None,
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "process.disk.io": ["read", "write"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
    "system.cpu.utilization": ["user", "system", "idle", "iowait"],
    "system.memory.usage": ["used", "free", "available"],
    "system.memory.utilization": ["used", "available"],
    "system.disk.io": ["read", "write"],
    "system.disk.operations": ["read", "write"],
}
"""What ``OTELKIT_SYSTEM_METRICS=true`` turns on (the instrumentation's configuration format).

Left out of the instrumentation's defaults: per-interface network counters, the system-wide
connection table (slow to read on busy hosts), swap, and the deprecated ``process.runtime.*``
duplicates. ``OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS`` (comma-separated globs) removes more.
"""

_EXCLUDED_ENV = "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS"
_forked: list[Any] = []


def _system_metrics_config(config: Mapping[str, list[str] | None] | None) -> dict[str, list[str] | None]:
    chosen = dict(SYSTEM_METRICS if config is None else config)
    excluded = [p.strip() for p in os.environ.get(_EXCLUDED_ENV, "").split(",") if p.strip()]
    return {k: v for k, v in chosen.items() if not any(fnmatch.fnmatch(k, p) for p in excluded)}


def instrument_system_metrics(
    *,
    meter_provider: metrics.MeterProvider | None = None,
    config: Mapping[str, list[str] | None] | None = None,
) -> bool:
    """Start reporting process and system metrics; what ``OTELKIT_SYSTEM_METRICS=true`` runs.

    Args:
        meter_provider: default the global one.
        config: instrumentation configuration; default :data:`SYSTEM_METRICS`.

    Returns:
        Whether the instrumentation is active. Never raises: a missing package is logged with the
        command that installs it.
    """
    try:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    except ImportError:
        _log.error(
            "otelkit: system metrics need opentelemetry-instrumentation-system-metrics and psutil;"
            " pip install 'otelkit[system]' (or set OTELKIT_SYSTEM_METRICS=false)"
        )
        return False
    # The instrumentor is a singleton whose __init__ resets its configuration: look before creating.
    existing = getattr(SystemMetricsInstrumentor, "_instance", None)
    if existing is not None and existing.is_instrumented_by_opentelemetry:
        return True
    instrumentor = SystemMetricsInstrumentor(config=_system_metrics_config(config))
    try:
        kwargs = {} if meter_provider is None else {"meter_provider": meter_provider}
        instrumentor.instrument(**kwargs)
    except Exception as exc:
        _log.error("otelkit: system metrics failed to start, continuing without them: %s", exc)
        return False
    if not _forked:
        # The instrumentation reads the process it was created in: after a fork (Celery prefork,
        # gunicorn/uvicorn workers) each child must report itself, not its parent.
        os.register_at_fork(after_in_child=_follow_fork)
    _forked[:] = [instrumentor]
    return True


def _follow_fork() -> None:
    try:
        import psutil

        for instrumentor in _forked:
            if hasattr(instrumentor, "_proc"):
                instrumentor._proc = psutil.Process()
    except Exception:  # never break a fork
        pass
