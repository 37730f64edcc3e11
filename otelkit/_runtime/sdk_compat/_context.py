"""The OTel context on a request's path: its context variable, a request's context, what a log record reads from it.

Four fast paths (``context-var``, ``request-context``, ``record-context``, ``end-request-context``):
the API's ``Context`` is a ``dict`` under two keys (the span's, baggage's) kept in one
``ContextVar``; these read and write them directly, each probed against the API's own functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otelkit._runtime.sdk_compat._probes import probe_provider
from otelkit._runtime.sdk_compat._registry import differs, register

# --- the current context's variable ------------------------------------------------------------------


def _context_var_direct() -> Any:
    # The ContextVar the API's contextvars runtime context keeps the current Context in.
    from opentelemetry import context

    return context._RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]


def _context_var_public() -> Any:
    return None


def _probe_context_var(fast: Callable[[], Any]) -> str | None:
    import contextvars

    from opentelemetry import context

    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    if type(runtime).__name__ != "ContextVarsRuntimeContext":
        return f"the runtime context is {type(runtime).__name__} (OTEL_PYTHON_CONTEXT), not ContextVarsRuntimeContext"
    var = fast()
    if type(var) is not contextvars.ContextVar:
        return f"the runtime context keeps a {type(var).__name__}, not a ContextVar"
    probe = context.set_value("otelkit.probe", 1)
    token = var.set(probe)
    try:
        if context.get_current() is not probe:
            return "get_current() does not return what the variable holds"
    finally:
        var.reset(token)
    token = context.attach(probe)
    try:
        if var.get() is not probe:
            return "attach() does not set the variable"
    finally:
        context.detach(token)
    return None


CONTEXT_VAR = register("context-var", probe=_probe_context_var, fast=_context_var_direct, fallback=_context_var_public)


def context_var() -> Any:
    """The ``ContextVar`` holding the API's current ``Context``, or None (use ``get_current``/``attach``/``detach``).

    Its ``get``, ``set`` and ``reset`` are what ``get_current``, ``attach`` and ``detach`` end in,
    without their two Python calls each; ``reset`` raises where ``detach`` logs.
    """
    return CONTEXT_VAR.get()()


def current_context_getter() -> Callable[[], Any]:
    """``opentelemetry.context.get_current``, or the context variable's own ``get`` (the same, one C call)."""
    var = context_var()
    if var is not None:
        return var.get  # type: ignore[no-any-return]
    from opentelemetry.context import get_current

    return get_current


# --- request context ---------------------------------------------------------------------------------


def _request_context_public(span: Any, key: str, value: str, context: Any) -> Any:
    from opentelemetry import baggage, trace

    return trace.set_span_in_context(span, baggage.set_baggage(key, value, context))


class _Keys:
    """The API's context keys, imported by the probe (which runs before the fast path is used)."""

    baggage: Any = None
    span: Any = None
    Context: Any = None
    get_current: Any = None


def _request_context_direct(span: Any, key: str, value: str, context: Any) -> Any:
    # The same context the two API calls build (baggage as the API stores it, a plain dict), in one copy.
    base = _Keys.get_current() if context is None else context
    entries = base.get(_Keys.baggage)
    bag = dict(entries) if isinstance(entries, dict) and entries else {}
    bag[key] = value
    values = dict(base)
    values[_Keys.baggage] = bag
    values[_Keys.span] = span
    return _Keys.Context(values)


def _load_keys() -> None:
    from opentelemetry.baggage import _BAGGAGE_KEY
    from opentelemetry.context import Context
    from opentelemetry.trace.propagation import _SPAN_KEY

    _Keys.baggage, _Keys.span, _Keys.Context = _BAGGAGE_KEY, _SPAN_KEY, Context
    _Keys.get_current = current_context_getter()


def _probe_request_context(fast: Callable[[Any, str, str, Any], Any]) -> str | None:
    from opentelemetry import baggage, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    _load_keys()
    span = NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(1)))
    base = baggage.set_baggage("tenant", "t1", trace.set_span_in_context(NonRecordingSpan(SpanContext(3, 4, True))))
    base = Context({**base, "otelkit.probe": 1})
    for context in (base, Context()):
        ours = fast(span, "request.id", "r1", context)
        sdk = _request_context_public(span, "request.id", "r1", context)
        for what, read in (
            ("baggage", baggage.get_all),
            ("span", lambda c: trace.get_current_span(c)),
            ("context", dict),
        ):
            reason = differs(what, read(ours), read(sdk))
            if reason is not None:
                return reason
    return None


REQUEST_CONTEXT = register(
    "request-context", probe=_probe_request_context, fast=_request_context_direct, fallback=_request_context_public
)


def request_context(span: Any, key: str, value: str, context: Any = None) -> Any:
    """``set_span_in_context(span, set_baggage(key, value, context))``; the fast path copies the context once."""
    return REQUEST_CONTEXT.get()(span, key, value, context)


# --- what a log record reads from its context --------------------------------------------------------


def _record_context_public(context: Any, key: str) -> tuple[Any, str | None]:
    from opentelemetry import baggage, trace

    value = baggage.get_baggage(key, context)
    return trace.get_current_span(context).get_span_context(), value if isinstance(value, str) else None


class _Read:
    """What :func:`_record_context_direct` reads with, set by its probe (which runs before any use)."""

    Span: Any = None
    SdkSpan: Any = None
    INVALID: Any = None  # INVALID_SPAN's span context


def _record_context_direct(context: Any, key: str) -> tuple[Any, str | None]:
    # What trace.get_current_span and baggage.get_baggage read, from the context dict itself; an
    # SDK span's context from its field (its get_span_context() returns that field, through a cast).
    span = context.get(_Keys.span)
    if type(span) is _Read.SdkSpan:
        span_context = span._context
    elif span is None or not isinstance(span, _Read.Span):
        span_context = _Read.INVALID
    else:
        span_context = span.get_span_context()
    entries = context.get(_Keys.baggage)
    value = entries.get(key) if isinstance(entries, dict) else None
    return span_context, value if isinstance(value, str) else None


def _probe_record_context(fast: Callable[[Any, str], tuple[Any, str | None]]) -> str | None:
    from opentelemetry import baggage, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    _load_keys()
    if not issubclass(_Keys.Context, dict):
        return "Context is not a dict"
    from opentelemetry.sdk.trace import Span as SdkSpan

    span = NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(1)))
    with_span = trace.set_span_in_context(span)
    provider, _ = probe_provider()
    sdk_span = provider.get_tracer("otelkit.probe").start_span("probe")
    made = type(sdk_span)  # the SDK's _Span
    if not issubclass(made, SdkSpan) or made.get_span_context is not SdkSpan.get_span_context:
        return f"the SDK's tracer made a {made.__name__} with a get_span_context of its own"
    _Read.Span, _Read.SdkSpan, _Read.INVALID = trace.Span, made, trace.INVALID_SPAN.get_span_context()
    ended = provider.get_tracer("otelkit.probe").start_span("probe")
    ended.end()
    cases = [
        Context(),
        with_span,
        trace.set_span_in_context(sdk_span),
        baggage.set_baggage("request.id", "r2", trace.set_span_in_context(ended)),
        baggage.set_baggage("request.id", "r1", with_span),
        baggage.set_baggage("request.id", 7, baggage.set_baggage("t", "1")),  # not a str: no id
        Context({**with_span, _Keys.baggage: "not a dict", _Keys.span: "not a span"}),
    ]
    for context in cases:
        ours, sdk = fast(context, "request.id"), _record_context_public(context, "request.id")
        reason = differs("record context", ours, sdk)
        if reason is None and ours[0] is not sdk[0]:
            reason = "record context: not the span's own span context"
        if reason is not None:
            return reason
    sdk_span.end()
    return None


RECORD_CONTEXT = register(
    "record-context", probe=_probe_record_context, fast=_record_context_direct, fallback=_record_context_public
)


def record_context(context: Any, key: str) -> tuple[Any, str | None]:
    """``(get_current_span(context).get_span_context(), get_baggage(key, context))``, the value if a str."""
    return RECORD_CONTEXT.get()(context, key)


# --- ending a request's context ------------------------------------------------------------------------


def _end_context_in_place(context: Any, key: str) -> None:
    # A Context is a dict kept immutable by its own methods only: remove the span and the key from
    # this very object, which tasks the request started still hold.
    dict.pop(context, _Keys.span, None)
    entries = context.get(_Keys.baggage)
    if isinstance(entries, dict) and key in entries:
        rest = {k: v for k, v in entries.items() if k != key}
        if rest:
            dict.__setitem__(context, _Keys.baggage, rest)
        else:
            dict.pop(context, _Keys.baggage, None)


def _end_context_public(context: Any, key: str) -> None:
    # The API cannot change a context: tasks the request started keep its span and baggage.
    return None


def _probe_end_context(fast: Callable[[Any, str], None]) -> str | None:
    from opentelemetry import baggage, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    _load_keys()
    if not issubclass(_Keys.Context, dict):
        return "Context is not a dict"
    span = NonRecordingSpan(SpanContext(1, 2, False, TraceFlags(1)))
    both = trace.set_span_in_context(span, baggage.set_baggage("request.id", "r1", baggage.set_baggage("t", "1")))
    alone = trace.set_span_in_context(span, baggage.set_baggage("request.id", "r1"))
    for context, rest in ((both, {"t": "1"}), (alone, {})):
        fast(context, "request.id")
        reason = differs(
            "ended context",
            (trace.get_current_span(context) is trace.INVALID_SPAN, dict(baggage.get_all(context))),
            (True, rest),
        )
        if reason is not None:
            return reason
    return None


END_REQUEST_CONTEXT = register(
    "end-request-context", probe=_probe_end_context, fast=_end_context_in_place, fallback=_end_context_public
)


def end_request_context(context: Any, key: str) -> None:
    """Remove the current span and the baggage entry ``key`` from ``context`` itself (tasks hold it)."""
    END_REQUEST_CONTEXT.get()(context, key)
