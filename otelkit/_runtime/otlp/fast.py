"""The fast OTLP/HTTP exporters: the SDK's exporters encoding with :mod:`otelkit._runtime.otlp.encode`, paced.

:class:`FastOTLPSpanExporter` and :class:`FastOTLPLogExporter` are the SDK's OTLP/HTTP exporters
with the encoding step replaced (see :mod:`otelkit._runtime.otlp.encode` for what is cheaper and
why the bytes are the same): their ``export`` is the installed SDK's own, run with otelkit's encoder
bound where it calls ``encode_spans``/``encode_logs`` (:func:`otelkit._runtime.sdk_compat.export_with_encoder`),
so retries, timeouts, compression, the size limit and self-metrics are whatever that release does.
Used only where the ``otlp-spans``/``otlp-logs`` probes pass. :class:`Pacer` spreads an export's
CPU over time so a one-core app's requests keep the core.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry.exporter.otlp.proto.http import trace_exporter as _sdk_trace_exporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from otelkit._runtime import sdk_compat
from otelkit._runtime.otlp.emitted import sdk_records
from otelkit._runtime.otlp.encode import ENCODE_LOGS, ENCODE_SPANS, PAUSE_EVERY, TextFilter
from otelkit._runtime.otlp.protowire import AttributeFilter

if TYPE_CHECKING:
    from opentelemetry.exporter.otlp.proto.http import _log_exporter as _sdk_log_exporter
else:
    _sdk_log_exporter = sdk_compat.otlp_log_exporter_module()

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
    a batch of 512 spans in one go (~2.5 ms) delays every one of them by as much, which is the p99.
    Paced, the exporter sleeps between chunks of :data:`PAUSE_EVERY` items, ``(1 - share) / share``
    times the CPU the chunk took, so while it runs it takes about ``share`` of the core. It never
    falls behind because of it: the sleeping in one export is capped at half the idle time since
    the previous export ended (a busier exporter sleeps less, one exporting back to back not at all)
    and at ``max_sleep`` seconds; exports during otelkit's flushes and shutdown are not paced. A
    pause comes only once the export has used ``min_slice`` seconds of CPU since the last one:
    128 items take the Python encoder ~0.3-0.6 ms, the C encoder ~0.06-0.1 ms, for
    which a pause every 128 items would cost a wake-up (~17 µs of CPU, and the GIL handed over) per
    ~0.1 ms of work — with the C encoder the default deployment ran 1 % faster this way
    (bench/README.md, "eighteenth run").

    An export pauses between its encoding, its post and the freeing of its batch, too: without those
    two pauses the last chunk encoded, the post (~0.5 ms of the SDK's and urllib3's CPU) and the
    first chunk freed ran as one ~1.2 ms slice, the longest of every export, and the no-log
    endpoint's p99 was 3.95-4.80 ms against 3.48-3.63 with them (5 alternations, same req/s;
    bench/README.md, 2026-12-05).

    Tried and undone: pauses every 32 items sharing the whole budget equally (a batch spread over
    half the time until the next is due). In 10 interleaved rounds it cost the default deployment
    3.5 % of its throughput (257 against 248 µs a request; slower in all 10 rounds, 1.5 % at 10 %
    sampling) for a p99 no better (5.31 against 5.43 ms, lower in 5 rounds of 10): the extra
    wake-ups cost more than the spreading gains (bench/README.md, 2026-12-05).
    """

    def __init__(self, share: float = 0.1, max_sleep: float = 0.2, min_slice: float = 0.00025) -> None:
        self._ratio = (1.0 - share) / share
        self._max_sleep = max_sleep
        self._min_slice = min_slice
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
        if used < self._min_slice:  # not a slice's worth yet (the C encoder's chunks): no wake-up for it
            return
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


_COLLECT_EVERY = 2.0
_last_collect = [0.0]


class _FastExporter:
    """What both fast exporters add to the SDK's: the encoder, the attribute and text filters and the pacer.

    ``export`` is the installed SDK's own, run with otelkit's encoder in place of the SDK's
    (:func:`otelkit.sdk_compat.export_with_encoder`): retries, timeouts, compression, the size
    limit and self-metrics are whatever the installed release does.
    """

    _sdk_class: Any
    _encoder_name: str
    _path: sdk_compat.FastPath[Any]
    _what: str

    def __init__(
        self,
        *args: Any,
        attribute_filter: AttributeFilter | None = None,
        text_filter: TextFilter | None = None,
        paced: bool = False,
        **kwargs: Any,
    ) -> None:
        transport = kwargs.get("_transport")
        super().__init__(*args, **kwargs)
        # otelkit's transport (sdk_compat/_transport.py) pauses between chunks of the body: a post is paced too.
        self._paced_transport = transport if paced and hasattr(transport, "pause") else None
        self._attribute_filter = attribute_filter
        self._text_filter = text_filter
        self._pacer = Pacer() if paced else None
        self._pause: Callable[[], None] | None = None
        self._encode_error: BaseException | None = None
        self._unexpected: str | None = None
        self._sdk_export = sdk_compat.export_with_encoder(self._sdk_class, self._encoder_name, self._encode_request)

    def _encode_request(self, batch: Sequence[Any]) -> sdk_compat.EncodedRequest:
        pause = self._pause
        try:
            data = self._path.fast(batch, self._attribute_filter, pause, self._text_filter)
        except Exception as error:
            self._encode_error = error
            raise
        if pause is not None:
            pause()  # the batch's last chunk and the post are two slices, not one (Pacer)
        return sdk_compat.EncodedRequest(data, self._note_unexpected)

    def _note_unexpected(self, name: str) -> None:
        self._unexpected = name

    def export(self, batch: Sequence[Any]) -> Any:
        pacer = self._pacer
        self._pause = pacer.begin() if pacer is not None else None
        self._encode_error = self._unexpected = None
        transport = self._paced_transport
        if transport is not None:
            transport.pause = self._pause
        try:
            result = self._sdk_export(self, batch)
        except Exception as error:
            if error is not self._encode_error and not isinstance(error, sdk_compat.UnexpectedUse):
                raise
            if self._encode_error is not None:  # SDKs before 1.45 let it out of export()
                # The words of SDK 1.45, which logs it itself.
                logging.getLogger(self._sdk_class.__module__).error("Failed to encode %s batch: %s", self._what, error)
                result = self._result_type().FAILURE
        finally:
            if transport is not None:
                transport.pause = None
            if pacer is not None:
                pacer.end()
        if self._unexpected is not None:
            # This SDK's export() uses the encoded request in a way otelkit's does not provide: from
            # now on the SDK encodes, starting with this batch again.
            self._path.switch_off(
                f"{self._sdk_class.__name__}.export() used the encoded request's {self._unexpected!r}"
            )
            sdk_compat.replan()  # log records are queued as the SDK's again
            return super().export(self._for_sdk_encoder(batch))  # type: ignore[misc,unused-ignore]
        pause = self._pause
        if pause is not None and type(batch) is list:
            pause()  # the post and the first items freed: two slices (Pacer)
            _release(batch, pause)
        if result is not self._result_type().SUCCESS:
            # Each failed POST (and each retry) leaves the request body and connection in a traceback
            # cycle: the exception refers to the frame that holds them. With otelkit's raised GC
            # threshold (OTELKIT_GC_FREEZE) these piled up by ~20 MiB while the collector was down;
            # collect them here, at most every few seconds.
            now = time.monotonic()
            if now - _last_collect[0] >= _COLLECT_EVERY:
                _last_collect[0] = now
                gc.collect()
        return result

    def _result_type(self) -> Any:
        raise NotImplementedError

    def _for_sdk_encoder(self, batch: Sequence[Any]) -> Sequence[Any]:
        """``batch`` as the SDK's encoder takes it, filtered as otelkit's encoder would have filtered it."""
        raise NotImplementedError


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

    _sdk_class = _sdk_trace_exporter.OTLPSpanExporter
    _encoder_name = "encode_spans"
    _what = "span"

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans)  # type: ignore[no-any-return]

    def _result_type(self) -> Any:
        return SpanExportResult

    def _for_sdk_encoder(self, batch: Sequence[Any]) -> Sequence[Any]:
        if self._attribute_filter is None and self._text_filter is None:
            return batch
        from otelkit._runtime.redact_exporters import redact_span

        return [redact_span(span) for span in batch]  # otelkit's filters are redact's (exporters.py)


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

    _sdk_class = _sdk_log_exporter.OTLPLogExporter
    _encoder_name = "encode_logs"
    _what = "logs"

    def takes_fields(self) -> bool:
        """Whether the fast emit may queue records for this exporter as their fields; False once its encoder is off.

        Its batch processor then queues :data:`~otelkit._runtime.otlp.encode.PlainLog` tuples, the
        records' fields alone, which :func:`encode_logs` encodes (and redacts) on the export thread.
        """
        return bool(self._path.on)

    def _result_type(self) -> Any:
        return sdk_compat.logs_sdk_export().LogRecordExportResult

    def _for_sdk_encoder(self, batch: Sequence[Any]) -> Sequence[Any]:
        from otelkit._runtime.redact_exporters import redact_log_records

        return redact_log_records(sdk_records(batch), self._attribute_filter, self._text_filter)


FastOTLPSpanExporter._path = ENCODE_SPANS
FastOTLPLogExporter._path = ENCODE_LOGS
