"""otelkit's HTTP server span: the SDK's span, started on a short path when the installed SDK allows it.

``Tracer.start_span`` costs ~10 µs for a sampled span (SDK 1.45) and ``Span.set_attributes``
re-validates every attribute: a third of what otelkit adds to a request. The short path (the same
ids, decision, flags, trace state and ``Span``, built without the generic sampler protocol) reads
SDK internals, so it lives in :mod:`otelkit._runtime.sdk_compat` (``server-span`` and ``span-attributes``),
which checks it against the installed SDK before first use. :class:`ServerSpans` takes it for a
tracer when it applies and goes through ``Tracer.start_span`` otherwise (a custom sampler or id
generator, a disabled tracer, tracer self-metrics, a proxy tracer whose provider is not the SDK's,
an SDK on which the probe failed).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from otelkit._runtime import sdk_compat
from otelkit._runtime.sdk_compat import end_span, set_known_attributes

__all__ = ["ServerSpans", "end_span", "set_known_attributes"]


class ServerSpans:
    """Starts SERVER spans on ``tracer``: the short path when it applies, ``start_span`` otherwise."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._start: Any = None
        self._resolved = False

    @property
    def short_path(self) -> bool:
        """Whether spans are started on the short path (decided at the first :meth:`start`)."""
        return self._start is not None

    def _resolve(self) -> None:
        start = sdk_compat.server_span_starter(self._tracer)
        if start is sdk_compat.PENDING:
            return  # a proxy tracer without a provider yet: ask again next time
        self._start = start
        self._resolved = True

    def start(self, name: str, context: Context | None, start_time: int) -> trace.Span:
        """Start a SERVER span named ``name``, child of the span in ``context`` (default: the active one)."""
        if not self._resolved:
            self._resolve()
        start = self._start
        if start is not None:
            span = start(name, context, start_time)
            if span is not None:
                return span  # type: ignore[no-any-return]
        return self._tracer.start_span(name, context=context, kind=SpanKind.SERVER, start_time=start_time)
