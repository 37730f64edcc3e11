"""The HTTP server span, started and filled for a fraction of what the SDK's generic path costs.

Why: in-process, ``Tracer.start_span`` costs ~10 µs for a sampled span and ~6 µs for a dropped
one (SDK 1.45), and ``Span.set_attributes`` re-validates every attribute (~0.8 µs each): a third
of what otelkit adds to a request. The generic path asks the sampler through its protocol (a
``SamplingResult``, ``TraceFlags`` and attribute mappings per call), where otelkit's server span
needs a comparison or two.

:func:`server_span_starter` gives the short path for a tracer only when it gives what the SDK
would give:

- the tracer is the SDK's ``Tracer``, with the ``RandomIdGenerator`` and no tracer self-metrics
  (``NoOpTracerMetrics``: SDK 1.42+; 1.40 and 1.41 always record them, so the short path is off);
- its sampler is built from the SDK's ``ALWAYS_ON``, ``ALWAYS_OFF``, ``TraceIdRatioBased`` and
  ``ParentBased`` (with any of these as root and as delegates), none with an overridden
  ``should_sample``: every ``OTEL_TRACES_SAMPLER`` value the SDK ships.

Then it draws the ids the same way, makes the same decision, flags and trace state, and builds the
SDK's own ``_Span`` (recording) or ``NonRecordingSpan`` (dropped), started through the span
processors as usual; a tracer disabled at that moment goes through ``Tracer.start_span``. The
``_Span`` is built without its constructor (~30 keyword arguments bound, ~9 objects made through
their own constructors), from the tracer's span layout (:mod:`._layout`: the fields two spans the
constructor builds share, and those each gets anew), when it could be learnt.
Attributes otelkit sets itself (``str``, ``int`` or tuple-of-``str`` values, non-empty keys) go
into the span's attribute mapping directly when no limit could drop or truncate them
(:data:`SPAN_ATTRIBUTES`); otherwise through ``set_attributes``.

Both are probed against the SDK on a throw-away provider before first use (spans started both
ways under each kind of sampler and parent, compared field by field); the unit tests hold both
paths to the same result for every sampler and parent.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from otelkit._runtime.sdk_compat._layout import Layout, layout, sharing, state
from otelkit._runtime.sdk_compat._probes import probe_provider, sampler_cases
from otelkit._runtime.sdk_compat._registry import differs, missing, register

__all__ = ["PENDING", "SERVER_SPAN", "SPAN_ATTRIBUTES", "server_span_starter", "set_known_attributes"]

PENDING: Any = object()
"""What :func:`server_span_starter` returns for a proxy tracer whose provider is not set yet."""

# start(name, context, start_time) -> the span, or None to go through Tracer.start_span
Starter = Callable[[str, Any, int], Any]
# decide(parent span context or None when it is the root, trace id) -> sampled?
Decide = Callable[[Any, int], bool]

_getrandbits = random.getrandbits  # the module's generator, as the SDK's: reseeded in forked children


class _Sdk:
    """SDK names the short path uses, imported by :func:`_load` (the probe runs it before any use)."""

    Tracer: Any = None
    ProxyTracer: Any = None
    Span: Any = None
    NoOpTracerMetrics: Any = None
    RandomIdGenerator: Any = None
    StaticSampler: Any = None
    TraceIdRatioBased: Any = None
    ParentBased: Any = None
    Decision: Any = None
    NonRecordingSpan: Any = None
    SpanContext: Any = None
    SERVER: Any = None
    CONSUMER: Any = None
    ApiSpan: Any = None
    SPAN_KEY: Any = None
    current: Any = None  # the current Context (the context variable's get, or get_current)
    EMPTY_TRACE_STATE: Any = None
    FLAGS: Any = None  # (sampled, random trace id) -> TraceFlags


def _load() -> None:
    if _Sdk.Tracer is not None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import Tracer, _Span
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler, TraceIdRatioBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
    from opentelemetry.trace.propagation import _SPAN_KEY
    from opentelemetry.trace.span import DEFAULT_TRACE_STATE

    from otelkit._runtime.sdk_compat._context import current_context_getter

    no_op_metrics: Any = None
    try:  # SDK 1.42+; before, every tracer records self-metrics and the short path is off
        from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics

        no_op_metrics = NoOpTracerMetrics
    except ImportError:
        pass
    random_id = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # 1.42+, like NoOpTracerMetrics
    _Sdk.FLAGS = {
        # (sampled, random trace id) -> TraceFlags
        (False, False): TraceFlags(TraceFlags.DEFAULT),
        (True, False): TraceFlags(TraceFlags.SAMPLED),
        (False, True): TraceFlags(TraceFlags.DEFAULT | random_id),
        (True, True): TraceFlags(TraceFlags.SAMPLED | random_id),
    }
    _Sdk.ProxyTracer = trace.ProxyTracer
    _Sdk.Span = _Span
    _Sdk.NoOpTracerMetrics = no_op_metrics
    _Sdk.RandomIdGenerator = RandomIdGenerator
    _Sdk.StaticSampler = StaticSampler
    _Sdk.TraceIdRatioBased = TraceIdRatioBased
    _Sdk.ParentBased = ParentBased
    _Sdk.Decision = Decision
    _Sdk.NonRecordingSpan = NonRecordingSpan
    _Sdk.SpanContext = SpanContext
    _Sdk.SERVER = SpanKind.SERVER
    _Sdk.CONSUMER = SpanKind.CONSUMER
    _Sdk.ApiSpan = trace.Span
    _Sdk.SPAN_KEY = _SPAN_KEY
    _Sdk.current = current_context_getter()
    _Sdk.EMPTY_TRACE_STATE = DEFAULT_TRACE_STATE
    _Sdk.Tracer = Tracer  # last: the others are set once this one is


def _decider(sampler: Any) -> Decide | None:
    """The sampler's decision as a plain function, or None when it is not one otelkit knows."""
    kind = type(sampler)
    if isinstance(sampler, _Sdk.StaticSampler) and kind.should_sample is _Sdk.StaticSampler.should_sample:
        decision = sampler._decision
        if decision is _Sdk.Decision.RECORD_AND_SAMPLE:
            return lambda parent, trace_id: True
        if decision is _Sdk.Decision.DROP:
            return lambda parent, trace_id: False
        return None  # RECORD_ONLY: recording but not sampled, left to the SDK
    if isinstance(sampler, _Sdk.TraceIdRatioBased) and kind.should_sample is _Sdk.TraceIdRatioBased.should_sample:
        bound = sampler.bound
        limit = _Sdk.TraceIdRatioBased.TRACE_ID_LIMIT
        return lambda parent, trace_id: trace_id & limit < bound
    if isinstance(sampler, _Sdk.ParentBased) and kind.should_sample is _Sdk.ParentBased.should_sample:
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

        def parent_based(parent: Any, trace_id: int) -> bool:
            if parent is None:
                return root(parent, trace_id)  # type: ignore[misc]
            if parent.is_remote:
                chosen = remote_sampled if parent.trace_flags.sampled else remote_dropped
            else:
                chosen = local_sampled if parent.trace_flags.sampled else local_dropped
            return chosen(parent, trace_id)  # type: ignore[misc]

        return parent_based
    return None


def _start(
    sdk: Any, decide: Decide, spans: Layout | None, name: str, context: Any, start_time: int | None, kind: Any = None
) -> Any:
    if not sdk._is_enabled():
        return None
    # What get_current_span(context).get_span_context() reads: the span under the API's key.
    current = (_Sdk.current() if context is None else context).get(_Sdk.SPAN_KEY)
    parent = current.get_span_context() if current is not None and isinstance(current, _Sdk.ApiSpan) else None
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
        trace_state = _Sdk.EMPTY_TRACE_STATE
    span_id = _getrandbits(64)
    while not span_id:
        span_id = _getrandbits(64)
    sampled = decide(parent, trace_id)
    span_context = _Sdk.SpanContext(trace_id, span_id, False, _Sdk.FLAGS[sampled, random_id], trace_state)
    if not sampled:
        return _Sdk.NonRecordingSpan(span_context)
    if kind is None:
        kind = _Sdk.SERVER
    if spans is None:
        span = _construct(sdk, name, span_context, parent, kind)
        span.start(start_time=start_time, parent_context=context)
        return span
    # The span the constructor would build (see _span_layout), then what Span.start does to a new span.
    span = spans.new(name, span_context, parent, kind, start_time if start_time is not None else time_ns())
    span._span_processor.on_start(span, parent_context=context)
    return span


def _construct(tracer: Any, name: str, context: Any, parent: Any, kind: Any) -> Any:
    """A new, unstarted span of ``tracer``, through ``_Span``'s constructor (as ``Tracer.start_span`` makes it)."""
    return _Sdk.Span(
        name=name,
        context=context,
        parent=parent,
        sampler=tracer.sampler,
        resource=tracer.resource,
        span_processor=tracer.span_processor,
        kind=kind,
        instrumentation_info=tracer.instrumentation_info,
        limits=tracer._span_limits,
        instrumentation_scope=tracer._instrumentation_scope,
    )


# Fields every span gets from _start itself; the layout's template spans differ in each of them.
_PER_SPAN = ("_name", "_context", "_parent", "_kind", "_start_time")


def _span_layout(tracer: Any) -> Layout | None:
    """How ``tracer``'s recording spans are laid out, learnt from two its SDK constructor builds; None: use it."""
    try:
        built = [
            _construct(tracer, name, _Sdk.SpanContext(ids, ids, False), parent, kind)
            for name, ids, parent, kind in (
                ("first", 1, None, _Sdk.SERVER),
                ("second", 2, _Sdk.SpanContext(3, 3, True), _Sdk.CONSUMER),
            )
        ]
    except Exception:
        return None
    spans = layout(built[0], built[1], per_object=_PER_SPAN)
    if spans is None or not all(key in spans.base for key in (*_PER_SPAN, "_span_processor")):
        return None
    return spans


def _short_path(tracer: Any) -> Starter | None:
    if isinstance(tracer, _Sdk.ProxyTracer):
        tracer = tracer._real_tracer
        if tracer is None:
            return PENDING  # type: ignore[no-any-return]  # no provider yet: ask again next time
    if (
        type(tracer) is _Sdk.Tracer
        and type(tracer.id_generator) is _Sdk.RandomIdGenerator
        and type(tracer._tracer_metrics) is _Sdk.NoOpTracerMetrics
    ):
        decide = _decider(tracer.sampler)
        if decide is not None:
            return functools.partial(_start, tracer, decide, _span_layout(tracer))
    return None


def _no_short_path(tracer: Any) -> Starter | None:
    return None


def _span_shape(span: Any, recording: bool) -> tuple[Any, ...]:
    """What a started span is, compared field by field (``recording``: as it was before it ended)."""
    context = span.get_span_context()
    shape: tuple[Any, ...] = (type(span).__name__, recording, context.trace_flags, context.trace_state)
    if recording:
        shape += (span.name, span.kind, span.parent, dict(span.attributes), span.resource, span.instrumentation_scope)
        shape += (span.start_time, span.end_time, span._span_processor)
    return shape


# The ids differ between any two spans; the SDK's no-op end-of-span metrics callback is left out (None).
_NOT_COMPARED = ("_context", "_record_end_metrics")


def _probe_server_span(fast: Callable[[Any], Starter | None]) -> str | None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import Tracer

    reason = missing(Tracer, ("_is_enabled",)) or missing(trace.TraceFlags, ("RANDOM_TRACE_ID",))
    if reason is not None:
        return reason
    _load()
    if _Sdk.NoOpTracerMetrics is None:
        return "no NoOpTracerMetrics: every span records tracer self-metrics"
    for sampler, contexts in sampler_cases():
        provider, _ = probe_provider(sampler)
        tracer = provider.get_tracer("otelkit.probe", "1")
        reason = missing(tracer, ("_span_limits", "_instrumentation_scope", "_tracer_metrics", "sampler"))
        if reason is not None:
            return reason
        start = fast(tracer)
        if start is None or start is PENDING:
            return f"the short path does not take the SDK's own {type(sampler).__name__} tracer"
        for context in contexts:
            sdk_spans = [
                tracer.start_span("GET /probe", context=context, kind=_Sdk.SERVER, start_time=1_000) for _ in "ab"
            ]
            fast_spans = [start("GET /probe", context, 1_000) for _ in "ab"]
            sdk_span, fast_span = sdk_spans[0], fast_spans[0]
            recording = fast_span.is_recording(), sdk_span.is_recording()
            for span in (*sdk_spans, *fast_spans):
                span.end(end_time=2_000)
            reason = differs("server span", _span_shape(fast_span, recording[0]), _span_shape(sdk_span, recording[1]))
            if reason is None and recording[0]:
                # Every field as the SDK's constructor sets it, and nothing two spans must not share shared.
                reason = differs(
                    "server span fields", state(fast_span, _NOT_COMPARED), state(sdk_span, _NOT_COMPARED)
                ) or differs("server span sharing", sharing(*fast_spans), sharing(*sdk_spans))
            if reason is not None:
                return reason
            if context is not None and fast_span.get_span_context().trace_id != sdk_span.get_span_context().trace_id:
                return "the server span's trace id is not its parent's"
    return None


SERVER_SPAN = register("server-span", probe=_probe_server_span, fast=_short_path, fallback=_no_short_path)


def server_span_starter(tracer: Any) -> Starter | None:
    """The short path's ``start(name, context, start_time)`` for ``tracer``; None: use ``start_span``.

    :data:`PENDING` for a proxy tracer whose provider is not set yet (ask again later). The
    starter returns None when the tracer is disabled at that moment (then use ``start_span``).
    """
    return SERVER_SPAN.get()(tracer)


def _set_public(span: Any, attributes: Mapping[str, Any], name: str | None = None) -> None:
    if name is not None:
        span.update_name(name)
    span.set_attributes(attributes)


def _set_direct(span: Any, attributes: Mapping[str, Any], name: str | None = None) -> None:
    bounded = getattr(span, "_attributes", None)
    store = getattr(bounded, "_dict", None)
    if (
        type(span) is not _Sdk.Span
        or store is None
        or bounded.max_value_len is not None  # type: ignore[union-attr]
        or (bounded.maxlen is not None and len(store) + len(attributes) > bounded.maxlen)  # type: ignore[union-attr]
    ):
        _set_public(span, attributes, name)
        return
    with span._lock:
        writable = span._end_time is None and not bounded._immutable  # type: ignore[union-attr]
        if writable:
            if name is not None:
                span._name = name  # what update_name does to an open span, under the same lock
            for key, value in attributes.items():
                if key in store:
                    del store[key]  # as the SDK does: a key set again moves to the end
                store[key] = value
    if not writable:
        _set_public(span, attributes, name)  # an ended span: the SDK's warnings, nothing set


def _probe_span_attributes(fast: Callable[[Any, Mapping[str, Any], str | None], None]) -> str | None:
    from opentelemetry.sdk.trace import SpanLimits

    _load()
    # Limits: the fast path hands over to set_attributes when one could apply; check it sees them.
    provider, _ = probe_provider(span_limits=SpanLimits(max_span_attributes=5, max_span_attribute_length=9))
    limited = provider.get_tracer("otelkit.probe").start_span("probe")
    reason = missing(limited, ("_lock", "_end_time", "_attributes")) or missing(
        limited._attributes, ("_dict", "_immutable", "maxlen", "max_value_len")
    )
    limited.end()
    if reason is not None:
        return reason
    if (limited._attributes.maxlen, limited._attributes.max_value_len) != (5, 9):
        return "a span's attribute limits are kept elsewhere"
    reason = missing(limited, ("_name",))
    if reason is not None:
        return reason
    provider, _ = probe_provider()
    tracer = provider.get_tracer("otelkit.probe")
    sdk_span, fast_span = tracer.start_span("probe"), tracer.start_span("probe")
    for attributes, name in (
        ({"http.request.method": "GET", "url.path": "/a", "server.port": 80, "h": ("x", "y")}, None),
        ({"http.response.status_code": 200, "url.path": "/b"}, "GET /b"),
    ):
        if name is not None:
            sdk_span.update_name(name)
        sdk_span.set_attributes(attributes)
        fast(fast_span, attributes, name)
    for span in (sdk_span, fast_span):
        span.end()
    return differs(
        "span attributes",
        (fast_span.name, list(fast_span.attributes.items()), fast_span.dropped_attributes),
        (sdk_span.name, list(sdk_span.attributes.items()), sdk_span.dropped_attributes),
    )


SPAN_ATTRIBUTES = register("span-attributes", probe=_probe_span_attributes, fast=_set_direct, fallback=_set_public)


def set_known_attributes(span: Any, attributes: Mapping[str, Any], name: str | None = None) -> None:
    """``span.set_attributes(attributes)`` for attributes known valid (what otelkit's HTTP span sets),
    after ``span.update_name(name)`` when a ``name`` is given.

    Non-empty ``str`` keys; ``str``, ``int`` or tuple-of-``str`` values, which the SDK would keep as
    they are. Straight into the SDK span's attribute mapping (under its lock, with the name) when
    nothing could be dropped or truncated; ``set_attributes`` otherwise, for any other kind of span,
    or when the installed SDK does not pass the probe.
    """
    SPAN_ATTRIBUTES.get()(span, attributes, name)
