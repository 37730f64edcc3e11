"""What the test receivers hand back: one frozen dataclass per span, log record and metric data point."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ReceivedLink",
    "ReceivedLog",
    "ReceivedMetricPoint",
    "ReceivedRecord",
    "ReceivedSpan",
    "ReceivedSpanEvent",
    "Signal",
]

Signal = Literal["traces", "metrics", "logs"]
"""The three OTLP signals, named as in their URL paths."""


@dataclass(frozen=True, slots=True)
class ReceivedSpanEvent:
    """An event recorded on a span."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedLink:
    """A link from a span to another span context."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One span, flattened out of an ``ExportTraceServiceRequest``."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    """Lowercase hex; ``""`` for a root span."""
    kind: str
    """``"INTERNAL"``, ``"SERVER"``, ``"CLIENT"``, ``"PRODUCER"``, ``"CONSUMER"`` or ``"UNSPECIFIED"``."""
    start_time_ns: int
    end_time_ns: int
    attributes: dict[str, Any]
    status_code: str
    """``"UNSET"``, ``"OK"`` or ``"ERROR"``."""
    status_message: str
    events: tuple[ReceivedSpanEvent, ...]
    links: tuple[ReceivedLink, ...]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str

    @property
    def duration_ns(self) -> int:
        return self.end_time_ns - self.start_time_ns

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One log record, flattened out of an ``ExportLogsServiceRequest``."""

    time_ns: int
    """The record's timestamp; its observed timestamp when the record has none."""
    severity_text: str
    severity_number: int
    body: Any
    attributes: dict[str, Any]
    trace_id: str
    """Lowercase hex; ``""`` when the record was emitted outside a span."""
    span_id: str
    resource: dict[str, Any]
    scope_name: str
    event_name: str

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMetricPoint:
    """One data point of one metric, flattened out of an ``ExportMetricsServiceRequest``.

    ``value`` is set for ``sum`` and ``gauge`` points; ``count``/``sum`` for the histogram types
    and ``summary``; ``bucket_counts``/``explicit_bounds`` for ``histogram``; ``scale``,
    ``zero_count`` and the bucket counts of both ranges for ``exp_histogram``; ``quantiles`` as
    ``(quantile, value)`` pairs for ``summary``.
    """

    name: str
    type: str
    """``"sum"``, ``"gauge"``, ``"histogram"``, ``"exp_histogram"`` or ``"summary"``."""
    unit: str = ""
    description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    value: int | float | None = None
    count: int | None = None
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    scale: int | None = None
    zero_count: int | None = None
    positive_bucket_counts: tuple[int, ...] = ()
    negative_bucket_counts: tuple[int, ...] = ()
    quantiles: tuple[tuple[float, float], ...] = ()
    exemplars: int = 0
    """How many exemplars the point carries."""
    is_monotonic: bool | None = None
    temporality: str = ""
    """``"CUMULATIVE"`` or ``"DELTA"`` for sums and histograms; ``""`` otherwise."""
    start_time_ns: int = 0
    time_ns: int = 0
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name", ""))


ReceivedRecord = ReceivedSpan | ReceivedLog | ReceivedMetricPoint
"""Any of the three record types."""
