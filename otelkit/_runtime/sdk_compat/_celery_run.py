"""contrib Celery's run span, made inside otelkit's own task receivers (``celery-run-span``).

opentelemetry-instrumentation-celery makes a task run's CONSUMER span in two receivers of its own.
``_trace_prerun`` extracts the parent from the request, starts ``run/<task name>``, makes it
current through ``trace.use_span`` and stores it with ``utils.attach_context``. ``_trace_postrun``
copies the signal's and the request's fields onto it, ends it, forgets it and records
``flower.task.runtime.seconds``. Around the span itself that is two more Celery signal dispatches,
two debug calls, a generator context manager, a per-task-id duration dict and two attribute copies:
made here instead, a solo worker spends ~20 µs less CPU a task (bench's Celery drain, 2026-12-02).

:class:`RunSpans` does the same in otelkit's task_prerun and task_postrun receivers, which run
anyway; contrib's two are disconnected while it does. The span, what is current during the run
(the span and the parent's baggage), the store contrib's ``task_failure`` and ``task_retry``
receivers read, and the histogram record are contrib's, in contrib's order. The attributes contrib's
own ``utils.set_attributes_from_context`` picks are set in one batch when ``celery-attributes`` is
on (which fields become which attributes stays contrib's decision in every release).

It relies on: ``CeleryInstrumentor._tracer``, ``_use_span_links``, ``metrics``, ``_instrument``
and its receivers ``_trace_prerun``/``_trace_postrun``; contrib's module-level ``celery_getter``;
``utils.attach_context``/``detach_context``/``retrieve_context``/``set_attributes_from_context``.
The probe runs contrib's two receivers and :class:`RunSpans` on the same task request for every
sampler case (no parent, sampled and unsampled parents with baggage) with contrib's failure
receiver in between, and compares the finished spans, what was current during the run, the stored
entry during and after, the context after, and the histogram records.

Not taken over: an instrumentor made with ``use_span_links=True`` (contrib links instead of
parenting), and one instrumented after otelkit's hooks were installed.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from otelkit._runtime.sdk_compat._celery import CELERY_CONTEXT_ATTRIBUTES, apply_pairs, contrib_copier, recorded_pairs
from otelkit._runtime.sdk_compat._probes import probe_provider, sampler_cases
from otelkit._runtime.sdk_compat._registry import differs, missing, quiet, register
from otelkit._runtime.sdk_compat._span_end import end_span

__all__ = ["CELERY_RUN_SPANS", "Run", "RunSpans", "give_back_run_spans", "take_over_run_spans"]

_RUNTIME = "flower.task.runtime.seconds"
_ACTION = ("celery.action", "run")
_TASK_NAME = "celery.task_name"


class _Activation:
    """What contrib stores beside a run span: a context manager ending it (no contrib receiver calls it)."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def __enter__(self) -> Any:
        return self.span

    def __exit__(self, *_: Any) -> None:
        self.span.end()


class RunSpans:
    """contrib's run span for one instrumentor, started by :meth:`start` and ended by :meth:`finish`."""

    __slots__ = (
        "_attach",
        "_consumer",
        "_detach",
        "_extract",
        "_getter",
        "_in_context",
        "_instrumentor",
        "_no_op",
        "_utils",
    )

    def __init__(self, instrumentor: Any) -> None:
        from opentelemetry import context, propagate, trace
        from opentelemetry.instrumentation import celery as contrib
        from opentelemetry.instrumentation.celery import utils
        from opentelemetry.metrics import NoOpHistogram

        self._instrumentor = instrumentor
        self._utils = utils  # read at each call: otelkit keys its store by thread (patches.py)
        self._extract = propagate.extract
        self._getter = contrib.celery_getter
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._consumer = trace.SpanKind.CONSUMER
        self._no_op = NoOpHistogram

    def active(self) -> bool:
        """Whether contrib is instrumented and parenting (not linking): otherwise no span here."""
        return _parenting(self._instrumentor)

    def start(self, task: Any, task_id: Any, request: Any) -> Run:
        """As contrib's ``_trace_prerun``: the run span, current until :meth:`finish`; returns what it needs.

        ``request`` is ``task.request`` (a property costing ~2 µs a read): Celery keeps the same one
        from ``task_prerun`` to ``task_postrun``.
        """
        parent = self._extract(request, getter=self._getter) or None
        parent_token = self._attach(parent) if parent is not None else None
        span = self._instrumentor._tracer.start_span(f"run/{task.name}", context=parent, kind=self._consumer)
        span_token = self._attach(self._in_context(span))
        self._utils.attach_context(task, task_id, span, _Activation(span), parent_token)
        return span, span_token, parent_token, request

    def finish(self, signal_kwargs: dict[str, Any], task: Any, task_id: Any, run: Run, took: float) -> None:
        """As contrib's ``_trace_postrun``: attributes, end, forget, record ``took`` (seconds); the context back."""
        span, span_token, parent_token, request = run
        try:
            if span.is_recording():
                self._set_attributes(span, signal_kwargs, task.name, request)
        finally:
            self._detach(span_token)
            end_span(span)  # Span.end with fewer steps where the SDK allows it (span-end)
            self._utils.detach_context(task, task_id)
            try:
                self._record(task.name, request, took)
            finally:
                if parent_token is not None:
                    self._detach(parent_token)

    def _set_attributes(self, span: Any, signal_kwargs: dict[str, Any], name: str, request: Any) -> None:
        copier = contrib_copier(self._utils)
        if not CELERY_CONTEXT_ATTRIBUTES.on:
            span.set_attribute(*_ACTION)
            copier(span, signal_kwargs)
            copier(span, request)
            span.set_attribute(_TASK_NAME, name)
            return
        pairs = [_ACTION]
        try:
            recorded_pairs(copier, signal_kwargs, pairs)
            recorded_pairs(copier, _fields(request, self._utils), pairs)
            pairs.append((_TASK_NAME, name))
        finally:
            apply_pairs(span, pairs)  # what was set before an exception stays set, as contrib's own would

    def _record(self, name: str, request: Any, took: float) -> None:
        metrics = self._instrumentor.metrics
        histogram = metrics.get(_RUNTIME) if isinstance(metrics, dict) else None
        if histogram is not None and not isinstance(histogram, self._no_op):  # otelkit's provider drops it
            histogram.record(took, attributes={"task": name, "worker": request.hostname})


Run: TypeAlias = tuple[Any, Any, Any, Any]
"""What :meth:`RunSpans.start` returns for :meth:`RunSpans.finish`: span, its token, the parent's, the request."""

_MISSING: Any = object()
_DEFAULTS: dict[type, dict[str, Any] | None] = {}


def _fields(request: Any, utils: Any) -> Any:
    """``request`` as a dict whose ``get(key)`` gives what ``request.get(key)`` gives, for contrib's keys.

    Celery's ``Context.get`` is a Python ``getattr``, read ~20 times a task by contrib's copier; a
    dict's is C. Only a plain ``Context`` (``get`` is Celery's, no ``__getattr__``, no descriptor among
    the keys) is copied: its instance fields over its class-level defaults. Anything else is returned as it is.
    """
    cls = type(request)
    try:
        defaults = _DEFAULTS[cls]
    except KeyError:
        defaults = _DEFAULTS[cls] = _class_defaults(cls, getattr(utils, "CELERY_CONTEXT_ATTRIBUTES", None))
    if defaults is None:
        return request
    return {**defaults, **request.__dict__}


def _class_defaults(cls: type, keys: Any) -> dict[str, Any] | None:
    import inspect

    from celery.app.task import Context

    if not isinstance(keys, tuple) or getattr(cls, "get", None) is not Context.get:
        return None
    lookup: Any = cls.__getattribute__
    if hasattr(cls, "__getattr__") or lookup is not object.__getattribute__:
        return None
    if "__dict__" not in {name for klass in cls.__mro__ for name in vars(klass)}:
        return None
    defaults = {}
    for key in keys:
        value = inspect.getattr_static(cls, key, _MISSING)
        if value is _MISSING:
            continue
        if hasattr(type(value), "__get__"):  # a property or method: only getattr gives its value
            return None
        defaults[key] = value
    return defaults


# --- taking contrib's receivers over and giving them back ---------------------------------------------


def _parenting(instrumentor: Any) -> bool:
    """contrib is instrumented and makes run spans children of the publisher's (``use_span_links``: 0.62+)."""
    return bool(instrumentor._is_instrumented_by_opentelemetry) and not _linking(instrumentor)


def _linking(instrumentor: Any) -> bool:
    return bool(getattr(instrumentor, "_use_span_links", False))


def _receivers(instrumentor: Any) -> list[tuple[Any, Any]]:
    from celery import signals

    return [(signals.task_prerun, instrumentor._trace_prerun), (signals.task_postrun, instrumentor._trace_postrun)]


def _take_over(instrumentor: Any) -> RunSpans | None:
    if not _parenting(instrumentor):
        return None
    run_spans = RunSpans(instrumentor)
    original = instrumentor._instrument

    def _instrument(**kwargs: Any) -> Any:  # instrument() again, after uninstrument(): take over again
        result = original(**kwargs)
        if not _linking(instrumentor):  # instrument() marks it instrumented only after this returns
            for signal, receiver in _receivers(instrumentor):
                signal.disconnect(receiver)
        return result

    _instrument._otelkit_original = original  # type: ignore[attr-defined]
    instrumentor._instrument = _instrument
    for signal, receiver in _receivers(instrumentor):
        signal.disconnect(receiver)
    return run_spans


def _keep_contrib(instrumentor: Any) -> RunSpans | None:
    return None


def give_back_run_spans(instrumentor: Any) -> None:
    """Undo :func:`take_over_run_spans`: contrib's receivers connected again if it is instrumented."""
    wrapper = instrumentor.__dict__.get("_instrument")
    original: Any = getattr(wrapper, "_otelkit_original", None)
    if original is None:
        return
    cls: Any = type(instrumentor)
    own = getattr(original, "__func__", None) is cls._instrument and getattr(original, "__self__", None) is instrumentor
    if own:  # the class's method, bound: otelkit's instance attribute goes
        del instrumentor._instrument
    else:
        instrumentor._instrument = original  # someone else's wrapper was there before otelkit's
    if _parenting(instrumentor):
        for signal, receiver in _receivers(instrumentor):
            signal.connect(receiver, weak=False)


# --- the probe -----------------------------------------------------------------------------------------


class _Histogram:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, amount: Any, attributes: Any = None, context: Any = None) -> None:
        self.records.append(attributes)


class _Task:
    def __init__(self, request: Any) -> None:
        self.name = "probe.task"
        self.request = request


def _stand_in(tracer: Any) -> Any:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor: Any = object.__new__(CeleryInstrumentor)  # not the app's singleton
    instrumentor.__dict__.update(
        _tracer=tracer,
        _use_span_links=False,
        _is_instrumented_by_opentelemetry=True,
        metrics={_RUNTIME: _Histogram()},
        task_id_to_start_time={},
    )
    return instrumentor


def _request(parent: Any, task_id: str) -> Any:
    from celery.app.task import Context
    from opentelemetry import baggage, propagate

    carrier: dict[str, str] = {}
    if parent is not None:
        propagate.inject(carrier, context=baggage.set_baggage("probe.key", "v", parent))
    return Context(
        id=task_id,
        correlation_id=task_id,
        delivery_info={"exchange": "", "routing_key": "celery", "priority": 0, "redelivered": False},
        hostname="celery@probe",
        retries=1,
        timelimit=(30, None),
        **carrier,
    )


def _finished(exporter: Any, parent: Any) -> list[Any]:
    shapes = []
    for span in exporter.get_finished_spans():
        shape: tuple[Any, ...] = (
            span.name,
            span.kind,
            span.parent,
            list(span.attributes.items()),
            span.status.status_code,
        )
        shape += (span.status.description, len(span.events), len(span.links), span.instrumentation_scope)
        if parent is not None:  # without one, each run has a trace id of its own
            shape += (span.context.trace_id,)
        shapes.append(shape)
    return shapes


def _run(instrumentor: Any, run_spans: RunSpans | None, task: Any, task_id: str) -> tuple[Any, ...]:
    from opentelemetry import baggage, context, trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor, utils

    before = context.get_current()
    prerun = {"signal": None, "sender": task, "task_id": task_id, "task": task, "args": (), "kwargs": {}}
    postrun = {**prerun, "retval": None, "state": "FAILURE"}
    run = None
    if run_spans is None:
        instrumentor._trace_prerun(**prerun)
    else:
        run = run_spans.start(task, task_id, task.request)
    current = trace.get_current_span()
    stored = utils.retrieve_context(task, task_id)
    during = (current.get_span_context(), dict(baggage.get_all()), stored is not None and stored[0] is current)
    contrib: Any = CeleryInstrumentor  # unannotated in contrib
    contrib._trace_failure(sender=task, task_id=task_id, einfo=None)
    if run is None:
        instrumentor._trace_postrun(**postrun)
    else:
        assert run_spans is not None
        run_spans.finish(postrun, task, task_id, run, 0.25)
    after = (context.get_current() is before, utils.retrieve_context(task, task_id))
    return during[1:], after, instrumentor.metrics[_RUNTIME].records


def _probe(fast: Any) -> str | None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    reason = missing(CeleryInstrumentor, ("_trace_prerun", "_trace_postrun", "_trace_failure", "_instrument"))
    if reason is not None:
        return reason
    from opentelemetry.instrumentation import celery as contrib
    from opentelemetry.instrumentation.celery import utils

    reason = missing(contrib, ("celery_getter",)) or missing(
        utils, ("attach_context", "detach_context", "retrieve_context", "set_attributes_from_context")
    )
    if reason is not None:
        return reason
    for sampler, parents in sampler_cases():
        for parent in parents:
            shapes = []
            for taken in (False, True):
                provider, exporter = probe_provider(sampler)
                tracer = provider.get_tracer("otelkit.probe", "1")
                instrumentor = _stand_in(tracer)
                run_spans = fast(instrumentor) if taken else None
                if taken and not isinstance(run_spans, RunSpans):
                    return "the run spans were not taken over"
                task = _Task(_request(parent, "6f1c-run-probe"))
                with quiet("opentelemetry.instrumentation.celery"):
                    observed = _run(instrumentor, run_spans, task, "6f1c-run-probe")
                shapes.append((_finished(exporter, parent), observed))
                provider.shutdown()  # the stand-in is dropped as it is: never connected to Celery's signals
            reason = differs("celery run span", shapes[1], shapes[0])
            if reason is not None:
                return reason
    return None


CELERY_RUN_SPANS = register("celery-run-span", probe=_probe, fast=_take_over, fallback=_keep_contrib)


def take_over_run_spans(instrumentor: Any) -> RunSpans | None:
    """Make ``instrumentor``'s run spans in otelkit's receivers (module docstring); None: contrib's stay."""
    return CELERY_RUN_SPANS.get()(instrumentor)
