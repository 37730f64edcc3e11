"""In-memory SDK providers for unit tests of code that takes providers explicitly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from otelkit.testing.decode import flatten_logs, flatten_metrics, flatten_traces
from otelkit.testing.records import ReceivedLog, ReceivedMetricPoint, ReceivedSpan

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["InMemoryTelemetry"]


class InMemoryTelemetry:
    """SDK providers that keep spans, metrics and logs in memory, for unit tests.

    Nothing is installed globally: hand ``tracer_provider``, ``meter_provider`` and
    ``logger_provider`` (or ``tracer()``, ``meter()``, ``logger()``) to the code under test.

    Args:
        resource: A ``Resource`` or a mapping of resource attributes
            (default ``{"service.name": "test"}``).
    """

    def __init__(self, *, resource: Resource | Mapping[str, Any] | None = None) -> None:
        # Imported here so that `otelkit tail` and the receiver do not pay for the SDK.
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from otelkit._runtime import sdk_compat

        logs_sdk, logs_export = sdk_compat.logs_sdk(), sdk_compat.logs_sdk_export()
        if resource is None:
            resource = {"service.name": "test"}
        if not isinstance(resource, Resource):
            resource = Resource.create(dict(resource))
        self.resource = resource
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider: TracerProvider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider: MeterProvider = MeterProvider(
            resource=resource, metric_readers=[self.metric_reader], shutdown_on_exit=False
        )
        self.log_exporter = logs_export.InMemoryLogRecordExporter()
        self.logger_provider: LoggerProvider = logs_sdk.LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(logs_export.SimpleLogRecordProcessor(self.log_exporter))
        self._shut_down = False

    def tracer(self, name: str = "test") -> Any:
        """A tracer from ``tracer_provider``."""
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str = "test") -> Any:
        """A meter from ``meter_provider``."""
        return self.meter_provider.get_meter(name)

    def logger(self, name: str = "test") -> Any:
        """An OTel logger (not a ``logging.Logger``) from ``logger_provider``."""
        return self.logger_provider.get_logger(name)

    def spans(self) -> list[ReceivedSpan]:
        """Finished spans, flattened like :attr:`OTLPReceiver.spans`."""
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        finished = self.span_exporter.get_finished_spans()
        return flatten_traces(encode_spans(finished)) if finished else []

    def logs(self) -> list[ReceivedLog]:
        """Emitted log records, flattened like :attr:`OTLPReceiver.logs`."""
        from otelkit._runtime.sdk_compat import otlp_log_encoder

        encode_logs = otlp_log_encoder()
        finished = self.log_exporter.get_finished_logs()
        return flatten_logs(encode_logs(finished)) if finished else []

    def metric_points(self, name: str | None = None) -> list[ReceivedMetricPoint]:
        """Collect now and return the data points (of metric ``name`` only, if given).

        The reader is cumulative: each call returns the totals since the start.
        """
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        data = self.metric_reader.get_metrics_data()
        points = flatten_metrics(encode_metrics(data)) if data is not None else []
        return points if name is None else [p for p in points if p.name == name]

    def clear(self) -> None:
        """Forget finished spans and log records (metrics are cumulative and stay)."""
        self.span_exporter.clear()
        self.log_exporter.clear()

    def shutdown(self) -> None:
        """Shut the three providers down; safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()

    def __enter__(self) -> InMemoryTelemetry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
