"""contrib Celery's attribute copier, its attributes set on the span in one batch (``celery-attributes``).

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otelkit._runtime.sdk_compat._probes import probe_provider
from otelkit._runtime.sdk_compat._registry import differs, quiet, register
from otelkit._runtime.sdk_compat._server_span import set_known_attributes

__all__ = ["CELERY_CONTEXT_ATTRIBUTES", "batched_context_attributes"]

Copier = Callable[[Any, Any], None]

_PLAIN = frozenset((str, bool, int, float))


class _Recorder:
    """Stands in for the span while contrib's copier runs: records each ``set_attribute`` in order."""

    __slots__ = ("pairs",)

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any]] = []

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
