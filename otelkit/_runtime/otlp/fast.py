"""The fast OTLP/HTTP exporters: the SDK's exporters encoding with :mod:`otelkit._runtime.otlp.encode`, paced.

:class:`FastOTLPSpanExporter` and :class:`FastOTLPLogExporter` are the SDK's OTLP/HTTP exporters
with the encoding step replaced (see :mod:`otelkit._runtime.otlp.encode` for what is cheaper and
why the bytes are the same); :class:`Pacer` spreads an export's CPU over time so a one-core app's
requests keep the core.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.http import _log_exporter as _sdk_log_exporter
from opentelemetry.exporter.otlp.proto.http import trace_exporter as _sdk_trace_exporter
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from otelkit._runtime.otlp.encode import PAUSE_EVERY, TextFilter, encode_logs, encode_spans
from otelkit._runtime.otlp.protowire import (
    AttributeFilter,
)

__all__ = ["PAUSE_EVERY", "RELEASE_EVERY", "FastOTLPLogExporter", "FastOTLPSpanExporter", "Pacer", "unpaced"]


_unpaced = [0]  # > 0 while otelkit flushes or shuts down: exports then run flat out

RELEASE_EVERY = 128
"""Items freed between two pauses when a paced export lets go of its batch (~0.1 ms of CPU)."""


def _release(items: list[Any], pause: Callable[[], None]) -> None:
    """Free an encoded batch in paced slices.

    Freeing 512 finished spans (each with its attributes, events, links and their locks) takes
    0.5-1 ms of CPU; done at once when the batch processor drops its list, it stalled every request
    in flight. Only paced exports do this, and only otelkit's own batch processors are given
    paced exporters: they build the list for one ``export`` call and drop it afterwards, so
    emptying it early changes nothing for them.
    """
    while items:
        del items[-RELEASE_EVERY:]
        if items:
            pause()


class Pacer:
    """Spreads the CPU of one export over time, so the app's own threads keep the core.

    On a service with one core, the export thread's CPU lands on the requests in flight: encoding
    a batch of 512 spans in one go (~8 ms) delays every one of them by as much, which is the p99.
    Paced, the exporter sleeps between chunks of :data:`PAUSE_EVERY` items, ``(1 - share) / share``
    times the CPU the chunk took, so while it runs it takes about ``share`` of the core. It never
    falls behind because of it: the sleeping in one export is capped at half the idle time since
    the previous export ended (a busier exporter sleeps less, one exporting back to back not at all)
    and at ``max_sleep`` seconds; exports during otelkit's flushes and shutdown are not paced.
    """

    def __init__(self, share: float = 0.1, max_sleep: float = 0.2) -> None:
        self._ratio = (1.0 - share) / share
        self._max_sleep = max_sleep
        self._last_end = time.monotonic()
        self._budget = 0.0
        self._mark = 0.0

    def begin(self) -> Callable[[], None] | None:
        """The ``pause`` for one export's encoder, or None when this export must not be paced."""
        if _unpaced[0]:
            return None
        self._budget = min(self._max_sleep, (time.monotonic() - self._last_end) / 2)
        self._mark = time.thread_time()
        return self._pause

    def _pause(self) -> None:
        if _unpaced[0]:  # a flush or shutdown began while this export was under way
            return
        used = time.thread_time() - self._mark
        delay = min(used * self._ratio, self._budget)
        if delay > 0.0001:
            self._budget -= delay
            time.sleep(delay)
        self._mark = time.thread_time()

    def end(self) -> None:
        self._last_end = time.monotonic()


@contextmanager
def unpaced() -> Iterator[None]:
    """Exports in this block (from any thread) run without pauses: flushes, shutdown."""
    _unpaced[0] += 1
    try:
        yield
    finally:
        _unpaced[0] -= 1


def _export(exporter: Any, items: Sequence[Any], encode: Any, what: str, result_type: Any, logger: Any) -> Any:
    """The SDK exporters' ``export`` (1.45) with the encoding step replaced; messages kept word for word."""
    if exporter._shutdown:
        logger.warning("Exporter already shutdown, ignoring batch")
        return result_type.FAILURE
    pacer: Pacer | None = exporter._pacer
    try:
        result = _export_paced(exporter, items, encode, what, result_type, logger, pacer and pacer.begin())
    finally:
        if pacer is not None:
            pacer.end()
    if result is not result_type.SUCCESS:
        # Each failed POST (and each retry) leaves the request body and connection in a traceback
        # cycle: the exception refers to the frame that holds them. With otelkit's raised GC
        # threshold (OTELKIT_GC_FREEZE) these piled up by ~20 MiB while the collector was down;
        # collect them here, at most every few seconds.
        now = time.monotonic()
        if now - _last_collect[0] >= _COLLECT_EVERY:
            _last_collect[0] = now
            gc.collect()
    return result


_COLLECT_EVERY = 2.0
_last_collect = [0.0]


def _export_paced(
    exporter: Any, items: Sequence[Any], encode: Any, what: str, result_type: Any, logger: Any, pause: Any
) -> Any:
    with exporter._metrics.export_operation(len(items)) as result:
        try:
            serialized_data = encode(items, exporter._attribute_filter, pause, exporter._text_filter)
        except Exception as error:
            logger.error("Failed to encode %s batch: %s", what, error)
            result.error = error
            return result_type.FAILURE
        if pause is not None and type(items) is list:
            _release(items, pause)
        if _is_request_too_large(serialized_data, exporter._max_request_size):
            logger.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                what,
                len(serialized_data),
                exporter._max_request_size,
            )
            result.error = RequestPayloadTooLargeError(
                f"Serialized {what} request size {len(serialized_data)} "
                f"bytes exceeds max_request_size {exporter._max_request_size} bytes."
            )
            return result_type.FAILURE
        export_result = exporter._client.export(serialized_data)
        if not export_result.success:
            result.error = export_result.error
            result.error_attrs = (
                {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                if export_result.status_code is not None
                else None
            )
            return result_type.FAILURE
    return result_type.SUCCESS


class _FastExporter:
    """What both fast exporters add to the SDK's: the attribute and text filters and the pacer."""

    def __init__(
        self,
        *args: Any,
        attribute_filter: AttributeFilter | None = None,
        text_filter: TextFilter | None = None,
        paced: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._attribute_filter = attribute_filter
        self._text_filter = text_filter
        self._pacer = Pacer() if paced else None


class FastOTLPSpanExporter(_FastExporter, _sdk_trace_exporter.OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter, encoding with :func:`encode_spans`.

    Args:
        *args: As for ``OTLPSpanExporter`` (endpoint, certificates, headers, timeout, compression…).
        attribute_filter: Called with each span's, event's and link's attributes before encoding.
        text_filter: Called with each span's status description before encoding.
        paced: Spread each export's encoding and the freeing of its batch over time (:class:`Pacer`);
            only for a batch processor's exporter (it drops each batch list after the export).
        **kwargs: As for ``OTLPSpanExporter``.
    """

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return _export(self, spans, encode_spans, "span", SpanExportResult, _sdk_trace_exporter._logger)  # type: ignore[no-any-return]


class FastOTLPLogExporter(_FastExporter, _sdk_log_exporter.OTLPLogExporter):
    """The SDK's OTLP/HTTP log exporter, encoding with :func:`encode_logs`.

    Args:
        *args: As for ``OTLPLogExporter``.
        attribute_filter: Called with each log record's attributes before encoding.
        text_filter: Called with each log record's body before encoding.
        paced: Spread each export's encoding and the freeing of its batch over time (:class:`Pacer`);
            only for a batch processor's exporter (it drops each batch list after the export).
        **kwargs: As for ``OTLPLogExporter``.
    """

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return _export(self, batch, encode_logs, "logs", LogRecordExportResult, _sdk_log_exporter._logger)  # type: ignore[no-any-return]
