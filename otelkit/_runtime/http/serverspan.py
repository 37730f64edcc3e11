"""The HTTP server span, started and filled for a fraction of what the SDK's generic path costs.

Why: in-process, ``Tracer.start_span`` costs ~10 µs for a sampled span and ~6 µs for a dropped
one (SDK 1.45), and ``Span.set_attributes`` re-validates every attribute (~0.8 µs each): a third
of what otelkit adds to a request. The generic path asks the sampler through its protocol (a
``SamplingResult``, ``TraceFlags`` and attribute mappings per call), where otelkit's server span
needs a comparison or two.

:class:`ServerSpans` takes the short path only when it gives what the SDK would give:

- the tracer is the SDK's ``Tracer``, enabled, with the ``RandomIdGenerator`` and no tracer
  self-metrics;
- its sampler is built from the SDK's ``ALWAYS_ON``, ``ALWAYS_OFF``, ``TraceIdRatioBased`` and
  ``ParentBased`` (with any of these as root and as delegates), none with an overridden
  ``should_sample``: every ``OTEL_TRACES_SAMPLER`` value the SDK ships.

Then it draws the ids the same way, makes the same decision, flags and trace state, and builds the
SDK's own ``Span`` (recording) or ``NonRecordingSpan`` (dropped), started through the span
processors as usual. Attributes otelkit sets itself (``str``, ``int`` or tuple-of-``str`` values,
non-empty keys) go into the span's attribute mapping directly when no limit could drop or
truncate them; otherwise through ``set_attributes``. Anything else (a custom sampler or id
generator, a disabled tracer, a proxy tracer whose provider is not the SDK's) goes through
``Tracer.start_span`` unchanged.
The unit tests hold both paths to the same result for every sampler and parent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SDKTracer
from opentelemetry.sdk.trace import _Span
from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

__all__ = ["ServerSpans", "set_known_attributes"]

# decide(parent span context or None when it is the root, trace id) -> sampled?
Decide = Callable[[SpanContext | None, int], bool]

_getrandbits = random.getrandbits  # the module's generator, as the SDK's: reseeded in forked children
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
_FLAGS = {
    # (sampled, random trace id) -> TraceFlags
    (False, False): TraceFlags(TraceFlags.DEFAULT),
    (True, False): TraceFlags(TraceFlags.SAMPLED),
    (False, True): TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID),
    (True, True): TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID),
}


def _decider(sampler: Sampler) -> Decide | None:
    """The sampler's decision as a plain function, or None when it is not one otelkit knows."""
    kind = type(sampler)
    if isinstance(sampler, StaticSampler) and kind.should_sample is StaticSampler.should_sample:
        decision = sampler._decision
        if decision is Decision.RECORD_AND_SAMPLE:
            return lambda parent, trace_id: True
        if decision is Decision.DROP:
            return lambda parent, trace_id: False
        return None  # RECORD_ONLY: recording but not sampled, left to the SDK
    if isinstance(sampler, TraceIdRatioBased) and kind.should_sample is TraceIdRatioBased.should_sample:
        bound = sampler.bound
        return lambda parent, trace_id: trace_id & _TRACE_ID_LIMIT < bound
    if isinstance(sampler, ParentBased) and kind.should_sample is ParentBased.should_sample:
        parts = [
            _decider(s)
            for s in (
                sampler._root,
                sampler._remote_parent_sampled,
                sampler._remote_parent_not_sampled,
                sampler._local_parent_sampled,
                sampler._local_parent_not_sampled,
            )
        ]
        if any(p is None for p in parts):
            return None
        root, remote_sampled, remote_dropped, local_sampled, local_dropped = parts

        def parent_based(parent: SpanContext | None, trace_id: int) -> bool:
            if parent is None:
                return root(parent, trace_id)  # type: ignore[misc]
            if parent.is_remote:
                chosen = remote_sampled if parent.trace_flags.sampled else remote_dropped
            else:
                chosen = local_sampled if parent.trace_flags.sampled else local_dropped
            return chosen(parent, trace_id)  # type: ignore[misc]

        return parent_based
    return None


class ServerSpans:
    """Starts SERVER spans on ``tracer``: the short path when it applies, ``start_span`` otherwise."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._sdk: SDKTracer | None = None
        self._decide: Decide | None = None
        self._resolved = False

    def _resolve(self) -> None:
        tracer: Any = self._tracer
        if isinstance(tracer, trace.ProxyTracer):
            tracer = tracer._real_tracer
            if tracer is None:
                return  # no provider yet: ask again next time
        self._resolved = True
        if (
            type(tracer) is SDKTracer
            and type(tracer.id_generator) is RandomIdGenerator
            and type(tracer._tracer_metrics) is NoOpTracerMetrics
        ):
            decide = _decider(tracer.sampler)
            if decide is not None:
                self._sdk, self._decide = tracer, decide

    def start(self, name: str, context: Context | None, start_time: int) -> trace.Span:
        """Start a SERVER span named ``name``, child of the span in ``context`` (default: the active one)."""
        if not self._resolved:
            self._resolve()
        sdk = self._sdk
        if sdk is None or not sdk._tracer_config.is_enabled:
            return self._tracer.start_span(name, context=context, kind=SpanKind.SERVER, start_time=start_time)
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
            trace_state = parent.trace_state
        else:
            parent = None
            trace_id = _getrandbits(128)
            while not trace_id:
                trace_id = _getrandbits(128)
            random_id = True
            trace_state = DEFAULT_TRACE_STATE
        span_id = _getrandbits(64)
        while not span_id:
            span_id = _getrandbits(64)
        sampled = self._decide(parent, trace_id)  # type: ignore[misc]
        span_context = SpanContext(trace_id, span_id, False, _FLAGS[sampled, random_id], trace_state)
        if not sampled:
            return NonRecordingSpan(span_context)
        span = _Span(
            name=name,
            context=span_context,
            parent=parent,
            sampler=sdk.sampler,
            resource=sdk.resource,
            span_processor=sdk.span_processor,
            kind=SpanKind.SERVER,
            instrumentation_info=sdk.instrumentation_info,
            limits=sdk._span_limits,
            instrumentation_scope=sdk._instrumentation_scope,
        )
        span.start(start_time=start_time, parent_context=context)
        return span


def set_known_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """``span.set_attributes(attributes)`` for attributes known valid (what otelkit's HTTP span sets).

    Non-empty ``str`` keys; ``str``, ``int`` or tuple-of-``str`` values, which the SDK would keep as
    they are.

    Straight into the SDK span's attribute mapping (under its lock) when nothing could be dropped
    or truncated; ``set_attributes`` otherwise, or for any other kind of span.
    """
    bounded = getattr(span, "_attributes", None)
    store = getattr(bounded, "_dict", None)
    if (
        type(span) is not _Span
        or store is None
        or bounded.max_value_len is not None  # type: ignore[union-attr]
        or (bounded.maxlen is not None and len(store) + len(attributes) > bounded.maxlen)  # type: ignore[union-attr]
    ):
        span.set_attributes(attributes)
        return
    with span._lock:
        writable = span._end_time is None and not bounded._immutable  # type: ignore[union-attr]
        if writable:
            for key, value in attributes.items():
                if key in store:
                    del store[key]  # as the SDK does: a key set again moves to the end
                store[key] = value
    if not writable:
        span.set_attributes(attributes)  # an ended span: the SDK's warning, nothing set
