"""contrib Celery's spans for less: its attribute copier batched (``celery-attributes``), its spans started on
the short path (``celery-spans``).

opentelemetry-instrumentation-celery copies a task's request fields onto its spans with
``utils.set_attributes_from_context(span, context)``: one ``span.set_attribute`` per field, each
taking the span's lock and cleaning the value, eight per task run (it runs twice in ``task_postrun``).
:func:`batched` wraps contrib's own function, so which fields become which attributes stays
contrib's decision in every release: it runs it on a recorder standing in for the span, then sets
what it recorded on the real span in one :func:`set_known_attributes` (one lock, no cleaning) when
every value is one the SDK keeps as it is (``str``, ``bool``, ``int``, ``float``); any other value
(a list, a value the SDK drops with a warning) and the pairs are set one by one as contrib would.

It relies on contrib's function touching the span only through ``is_recording()`` and
``set_attribute()``: the probe runs the wrapped and the plain function on two SDK spans for the
contexts a worker and a publisher pass (a task request, the signal's keyword arguments) and
compares the attributes, their order and what was dropped.

``celery-spans``: contrib starts its run (CONSUMER) and publish (PRODUCER) spans with
``self._tracer.start_span(name, context=…, kind=…)``, no attributes, no links (unless
``use_span_links``). :func:`short_celery_tracer` gives its instrumentor a tracer that starts those
on the short path of the ``server-span`` path (the same ids, sampling decision, flags, trace state
and SDK ``_Span``, of the kind asked for) and anything else through the SDK's ``start_span``. It
relies on ``CeleryInstrumentor`` keeping its tracer in ``_tracer`` and starting spans through it;
the probe also starts CONSUMER and PRODUCER spans both ways and compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otelkit._runtime.sdk_compat._probes import probe_provider, sampler_cases
from otelkit._runtime.sdk_compat._registry import differs, missing, quiet, register
from otelkit._runtime.sdk_compat._server_span import PENDING, SERVER_SPAN, server_span_starter, set_known_attributes

__all__ = ["CELERY_CONTEXT_ATTRIBUTES", "CELERY_SPANS", "batched_context_attributes", "short_celery_tracer"]

Copier = Callable[[Any, Any], None]

_PLAIN = frozenset((str, bool, int, float))


class _Recorder:
    """Stands in for the span while contrib's copier runs: records each ``set_attribute`` in order."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[Any, Any]] | None = None) -> None:
        self.pairs: list[tuple[Any, Any]] = [] if pairs is None else pairs

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: Any, value: Any) -> None:
        self.pairs.append((key, value))


def batched(original: Copier) -> Copier:
    """``original`` (contrib's ``set_attributes_from_context``), its attributes set in one batch."""

    def set_attributes_from_context(span: Any, context: Any) -> None:
        if not span.is_recording():
            return
        recorder = _Recorder()
        try:
            original(recorder, context)
        finally:
            _apply(span, recorder.pairs)  # what was set before an exception stays set, as contrib's own would

    set_attributes_from_context._otelkit_original = original  # type: ignore[attr-defined]
    return set_attributes_from_context


def contrib_copier(utils: Any) -> Copier:
    """contrib's own ``set_attributes_from_context`` (not otelkit's batching wrapper around it)."""
    copier = utils.set_attributes_from_context
    return getattr(copier, "_otelkit_original", copier)  # type: ignore[no-any-return]


def recorded_pairs(copier: Copier, context: Any, pairs: list[tuple[Any, Any]]) -> None:
    """Append to ``pairs`` the ``(key, value)`` pairs ``copier`` would set on a span for ``context``."""
    copier(_Recorder(pairs), context)


def apply_pairs(span: Any, pairs: list[tuple[Any, Any]]) -> None:
    """Set ``pairs`` on ``span`` as one ``set_attribute`` each would (one batch when every value is plain)."""
    _apply(span, pairs)


def _apply(span: Any, pairs: list[tuple[Any, Any]]) -> None:
    batch: dict[str, Any] = {}
    for key, value in pairs:
        if type(value) not in _PLAIN or type(key) is not str or not key:
            for key_, value_ in pairs:  # the SDK cleans (or drops, with its warning) each one
                span.set_attribute(key_, value_)
            return
        batch.pop(key, None)  # set again: to the end, as the SDK's mapping moves it
        batch[key] = value
    if batch:
        set_known_attributes(span, batch)


def _unchanged(original: Copier) -> Copier:
    return original


def _probe(fast: Callable[[Copier], Copier]) -> str | None:
    from celery.app.task import Context
    from opentelemetry.instrumentation.celery import utils

    original = utils.set_attributes_from_context
    original = getattr(original, "_otelkit_original", original)
    wrapped = fast(original)
    request = Context(
        id="6f1c-probe",
        correlation_id="6f1c-probe",
        delivery_info={"exchange": "", "routing_key": "celery", "priority": 0, "redelivered": False},
        hostname="celery@probe",
        origin="gen1@probe",
        retries=2,
        eta="2026-01-01T00:00:00+00:00",
        priority=3,
        reply_to="r-1",
        timelimit=(None, None),
    )
    contexts: list[Any] = [
        {"state": "SUCCESS", "task_id": "6f1c-probe"},
        request,
        Context(id="7a2d-probe", timelimit=(30, None), delivery_info={"routing_key": None}, retries=0),
        {"routing_key": "celery", "exchange": "", "countdown": 1.5, "expires": True},
    ]
    provider, _ = probe_provider()
    tracer = provider.get_tracer("otelkit.probe")
    for context in contexts:
        sdk_span, fast_span = tracer.start_span("probe"), tracer.start_span("probe")
        for span in (sdk_span, fast_span):
            span.set_attribute("celery.action", "run")
        with quiet("opentelemetry.attributes"):  # a value the SDK drops: its warning, both ways
            original(sdk_span, context)
            wrapped(fast_span, context)
        for span in (sdk_span, fast_span):
            span.end()
        reason = differs(
            "span attributes",
            (list(fast_span.attributes.items()), fast_span.dropped_attributes),
            (list(sdk_span.attributes.items()), sdk_span.dropped_attributes),
        )
        if reason is not None:
            return reason
    provider.shutdown()
    return None


CELERY_CONTEXT_ATTRIBUTES = register("celery-attributes", probe=_probe, fast=batched, fallback=_unchanged)


def batched_context_attributes(original: Copier) -> Copier:
    """contrib's ``set_attributes_from_context`` setting its attributes in one batch (module docstring), or itself."""
    return CELERY_CONTEXT_ATTRIBUTES.get()(original)


# --- celery-spans -----------------------------------------------------------------------------------


class _ShortTracer:
    """A tracer starting spans without attributes and links on the short path; the wrapped one's otherwise."""

    __slots__ = ("_start", "_tracer")

    def __init__(self, tracer: Any, start: Any) -> None:
        self._tracer = tracer
        self._start = start

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: Any = None,
        attributes: Any = None,
        links: Any = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Any:
        if kind is not None and not attributes and not links and record_exception and set_status_on_exception:
            span = self._start(name, context, start_time, kind)
            if span is not None:
                return span
        if kind is None:
            return self._tracer.start_span(name, context, attributes=attributes, links=links, start_time=start_time)
        return self._tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracer, name)


def _short_tracer(instrumentor: Any) -> None:
    tracer = instrumentor._tracer
    if isinstance(tracer, _ShortTracer):
        return
    start = server_span_starter(tracer)
    if start is not None and start is not PENDING:
        instrumentor._tracer = _ShortTracer(tracer, start)


def _keep_tracer(instrumentor: Any) -> None:
    pass


def _span_shape(span: Any) -> tuple[Any, ...]:
    context = span.get_span_context()
    shape: tuple[Any, ...] = (type(span).__name__, span.is_recording(), context.trace_flags, context.trace_state)
    if span.is_recording():
        shape += (span.name, span.kind, span.parent, dict(span.attributes), span.resource, span.instrumentation_scope)
        shape += (span.start_time, span._span_processor, span._record_exception, span._set_status_on_exception)
    return shape


def _probe_spans(fast: Callable[[Any], None]) -> str | None:
    from types import SimpleNamespace

    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.trace import SpanKind

    for method, names in (
        ("_instrument", ("_tracer",)),
        ("_trace_prerun", ("_tracer", "start_span")),
        ("_trace_before_publish", ("_tracer", "start_span")),
    ):
        code = getattr(getattr(CeleryInstrumentor, method, None), "__code__", None)
        if code is None or not set(names) <= set(code.co_names):
            return f"CeleryInstrumentor.{method} does not use self._tracer as it did"
    if not SERVER_SPAN.on:
        return f"the 'server-span' path is off ({SERVER_SPAN.reason})"
    for sampler, contexts in sampler_cases():
        provider, _ = probe_provider(sampler)
        tracer = provider.get_tracer("otelkit.probe", "1")
        instrumentor: Any = SimpleNamespace(_tracer=tracer)
        fast(instrumentor)
        if not isinstance(instrumentor._tracer, _ShortTracer):
            return "the short path does not take the SDK's own tracer"
        reason = missing(instrumentor._tracer, ("start_span", "resource", "sampler"))
        if reason is not None:
            return reason
        for kind in (SpanKind.CONSUMER, SpanKind.PRODUCER):
            for context in contexts:
                sdk_span = tracer.start_span("run/probe", context=context, kind=kind, start_time=1_000)
                fast_span = instrumentor._tracer.start_span("run/probe", context=context, kind=kind, start_time=1_000)
                reason = differs("celery span", _span_shape(fast_span), _span_shape(sdk_span))
                for span in (sdk_span, fast_span):
                    span.end(end_time=2_000)
                if reason is not None:
                    return reason
                if (
                    context is not None
                    and fast_span.get_span_context().trace_id != sdk_span.get_span_context().trace_id
                ):
                    return "the celery span's trace id is not its parent's"
        provider.shutdown()
    return None


CELERY_SPANS = register("celery-spans", probe=_probe_spans, fast=_short_tracer, fallback=_keep_tracer)


def short_celery_tracer(instrumentor: Any) -> None:
    """Give contrib's CeleryInstrumentor a tracer starting its run and publish spans on the short path (docstring)."""
    CELERY_SPANS.get()(instrumentor)
