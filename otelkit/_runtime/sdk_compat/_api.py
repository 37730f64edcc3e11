"""SDK and API internals outside the hot paths: the logs modules, entry points, global providers, handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from otelkit._runtime.sdk_compat._registry import differs, missing, register

# --- the logs signal's modules --------------------------------------------------------------------
# The logs API and SDK still live under underscore names (opentelemetry._logs, opentelemetry.sdk._logs)
# in 1.40–1.45; the public names are tried first, for the release that makes them stable.


_found: dict[tuple[str, ...], ModuleType] = {}


def _first_module(*names: str) -> ModuleType:
    """The first of ``names`` that imports, remembered.

    A name that does not exist is searched for on disk again at every import attempt, and the log
    exporter asks for the export module on every export: uncached, ~40 µs of directory checks a
    batch (found by py-spy on the export thread).
    """
    found = _found.get(names)
    if found is not None:
        return found
    import importlib

    error: Exception | None = None
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            error = error or exc
        else:
            _found[names] = module
            return module
    raise ImportError(f"none of {', '.join(names)} can be imported: {error}")


def logs_api() -> ModuleType:
    """The logs API module (``get_logger_provider``, ``SeverityNumber``, ``LogRecord``…)."""
    return _first_module("opentelemetry.logs", "opentelemetry._logs")


def logs_sdk() -> ModuleType:
    """The logs SDK module (``LoggerProvider``, ``LoggingHandler``…)."""
    return _first_module("opentelemetry.sdk.logs", "opentelemetry.sdk._logs")


def logs_sdk_export() -> ModuleType:
    """The logs SDK's export module (``BatchLogRecordProcessor``, ``LogRecordExporter``, ``LogRecordExportResult``…)."""
    return _first_module("opentelemetry.sdk.logs.export", "opentelemetry.sdk._logs.export")


def otlp_log_exporter_module(protocol: str = "http") -> ModuleType:
    """The module of the SDK's OTLP log exporter for ``protocol`` (``http`` or ``grpc``)."""
    base = f"opentelemetry.exporter.otlp.proto.{protocol}"
    return _first_module(f"{base}.log_exporter", f"{base}._log_exporter")


def otlp_log_encoder() -> Any:
    """The OTLP exporters' ``encode_logs(records) -> ExportLogsServiceRequest``."""
    return _first_module(
        "opentelemetry.exporter.otlp.proto.common.log_encoder", "opentelemetry.exporter.otlp.proto.common._log_encoder"
    ).encode_logs


SDK_QUEUE_LOGGER = "opentelemetry.sdk._shared_internal"
"""The logger of the SDK's batch span/log processors ("Queue full, dropping …"), 1.40–1.45.2."""


def is_otel_logging_handler(handler: logging.Handler) -> bool:
    """Whether ``handler`` is an OTel logs handler (contrib's or the SDK's deprecated ``LoggingHandler``).

    By name, so checking never imports either module; ``tests`` hold it true for both classes.
    """
    kind = type(handler)
    return kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry")


# --- entry points ---------------------------------------------------------------------------------


def _probe_entry_points(fast: Callable[..., Any]) -> str | None:
    fast(group="opentelemetry_otelkit_probe")
    return None


def _otel_entry_points(**params: Any) -> Any:
    # The API's cached copy: the API itself has already read every entry point (context,
    # propagators), so otelkit's look-ups cost nothing more.
    from opentelemetry.util._importlib_metadata import entry_points

    return entry_points(**params)


_all_entry_points: list[Any] = []


def _stdlib_entry_points(**params: Any) -> Any:
    import importlib.metadata

    if not _all_entry_points:
        found: Any = importlib.metadata.entry_points()
        if isinstance(found, dict):  # Python 3.10/3.11: a dict of groups
            found = importlib.metadata.EntryPoints(ep for group in found.values() for ep in group)
        _all_entry_points.append(found)
    return _all_entry_points[0].select(**params)


ENTRY_POINTS = register(
    "entry-points", probe=_probe_entry_points, fast=_otel_entry_points, fallback=_stdlib_entry_points
)


def entry_points(**params: Any) -> Any:
    """``importlib.metadata.entry_points(**params)``, read once per process."""
    return ENTRY_POINTS.get()(**params)


# --- the global providers -------------------------------------------------------------------------


def _proxy_classes() -> tuple[type, type, type]:
    from opentelemetry import trace
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    logs_internal = _first_module("opentelemetry._logs._internal")
    return trace.ProxyTracerProvider, _ProxyMeterProvider, logs_internal.ProxyLoggerProvider


def _probe_proxy_providers(fast: Callable[[str, Any, Any], bool]) -> str | None:
    from opentelemetry import metrics, trace

    apis = (trace.TracerProvider, metrics.MeterProvider, logs_api().LoggerProvider)
    for cls, api in zip(_proxy_classes(), apis, strict=True):
        if not issubclass(cls, api):
            return f"{cls.__name__} is not a {api.__name__}"
    return None


def _provider_unset_by_class(signal: str, current: Any, new: Any) -> bool:
    tracer, meter, logger = _proxy_classes()
    proxy = {"traces": tracer, "metrics": meter, "logs": logger}[signal]
    if not isinstance(current, proxy):
        return False
    _set_provider(signal, new)
    return True


def _provider_unset_by_setting(signal: str, current: Any, new: Any) -> bool:
    # The API refuses a second provider (with a warning) and keeps the first: set and look.
    _set_provider(signal, new)
    return _get_provider(signal) is new


def _set_provider(signal: str, provider: Any) -> None:
    from opentelemetry import metrics, trace

    if signal == "traces":
        trace.set_tracer_provider(provider)
    elif signal == "metrics":
        metrics.set_meter_provider(provider)
    else:
        logs_api().set_logger_provider(provider)


def _get_provider(signal: str) -> Any:
    from opentelemetry import metrics, trace

    if signal == "traces":
        return trace.get_tracer_provider()
    if signal == "metrics":
        return metrics.get_meter_provider()
    return logs_api().get_logger_provider()


PROXY_PROVIDERS = register(
    "proxy-providers",
    probe=_probe_proxy_providers,
    fast=_provider_unset_by_class,
    fallback=_provider_unset_by_setting,
)


def install_global_provider(signal: str, provider: Any) -> Any:
    """Make ``provider`` the global one for ``signal`` unless the app set one; returns the global one."""
    current = _get_provider(signal)
    if PROXY_PROVIDERS.get()(signal, current, provider):
        return provider
    return _get_provider(signal)


# --- instrumentation dependency conflicts ---------------------------------------------------------


def _probe_dependency_conflict(fast: Callable[..., None]) -> str | None:
    from opentelemetry.instrumentation.dependencies import DependencyConflict

    return missing(DependencyConflict, ("_log",))


def _log_conflict_as_contrib(exc: Any, logger: logging.Logger, name: str) -> None:
    # contrib 0.66: an error for a version conflict, debug when the library is not installed.
    exc.conflict._log(logger, name)


def _log_conflict_public(exc: Any, logger: logging.Logger, name: str) -> None:
    logger.debug("otelkit: skipping instrumentation %s: %s", name, exc)


DEPENDENCY_CONFLICT = register(
    "dependency-conflict",
    probe=_probe_dependency_conflict,
    fast=_log_conflict_as_contrib,
    fallback=_log_conflict_public,
)


def report_dependency_conflict(exc: BaseException, logger: logging.Logger, name: str) -> bool:
    """Log ``exc`` as the stock launcher does if it is a ``DependencyConflictError``; returns whether it was one."""
    try:
        from opentelemetry.instrumentation.dependencies import DependencyConflictError
    except ImportError:
        return False
    if not isinstance(exc, DependencyConflictError):
        return False
    DEPENDENCY_CONFLICT.get()(exc, logger, name)
    return True


# --- contrib Celery's histogram otelkit's MeterProvider drops ------------------------------------------


def _probe_skip_celery_histograms(fast: Callable[..., None]) -> str | None:
    from types import SimpleNamespace

    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.metrics import NoOpMeter

    contrib: Any = CeleryInstrumentor  # unannotated in contrib; called unbound on a stand-in
    reason = missing(contrib, ("create_celery_metrics", "_record_histograms"))
    if reason is not None:
        return reason
    recorded: list[tuple[Any, Any]] = []

    class _Histogram:
        def record(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
            recorded.append((amount, attributes))

    instrumentor: Any = SimpleNamespace(metrics=None, task_id_to_start_time={"t": 0.5})
    contrib.create_celery_metrics(instrumentor, NoOpMeter("otelkit.probe"))
    reason = differs("histograms", sorted(instrumentor.metrics or ()), ["flower.task.runtime.seconds"])
    if reason is not None:
        return reason
    instrumentor.metrics["flower.task.runtime.seconds"] = _Histogram()
    contrib._record_histograms(instrumentor, "t", {"task": "x"})
    fast(instrumentor, ("flower.task.runtime.seconds",))
    contrib._record_histograms(instrumentor, "t", {"task": "x"})
    return differs("records", recorded, [(0.5, {"task": "x"})])


def _skip_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    from opentelemetry.metrics import NoOpHistogram

    for name in names:
        if name in instrumentor.metrics:
            instrumentor.metrics[name] = NoOpHistogram(name)


def _keep_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    pass  # the SDK drops the records (the provider's views)


SKIP_CELERY_HISTOGRAMS = register(
    "celery-histograms",
    probe=_probe_skip_celery_histograms,
    fast=_skip_celery_histograms,
    fallback=_keep_celery_histograms,
)


def skip_dropped_celery_histograms(instrumentor: Any, names: tuple[str, ...]) -> None:
    """Give contrib's CeleryInstrumentor no-op histograms for ``names``, which its meter provider drops anyway.

    Each ``record()`` on a histogram a view drops still costs the SDK ~68,000 instructions (a
    Measurement, attribute cleaning, the view look-up); contrib records one per task.
    """
    SKIP_CELERY_HISTOGRAMS.get()(instrumentor, names)


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

    from otelkit._runtime.sdk_compat._probes import probe_provider

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
