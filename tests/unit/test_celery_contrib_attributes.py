"""contrib Celery's spans for less (sdk_compat ``celery-attributes``, ``celery-spans``): the same spans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery, signals
from celery.app.task import Context
from celery_worker import embedded_worker, memory_app
from opentelemetry.instrumentation.celery import CeleryInstrumentor, utils
from opentelemetry.sdk.trace import Span as SdkSpan

from otelkit._runtime import sdk_compat
from otelkit._runtime.celery import hooks as otelkit_celery
from otelkit._runtime.celery import patches
from otelkit.testing import InMemoryTelemetry

ORIGINAL = utils.set_attributes_from_context


def _make_app() -> Celery:
    app = memory_app("attrs")

    @app.task(name="attrs.ok", shared=False)
    def ok(item: int) -> int:
        return item

    @app.task(name="attrs.fail", shared=False)
    def fail(item: int) -> None:
        raise ValueError(f"item {item} is bad")

    @app.task(name="attrs.flaky", shared=False, bind=True, max_retries=1, default_retry_delay=0)
    def flaky(self: Any, item: int) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return item

    return app


@pytest.fixture(scope="module")
def worker_app() -> Iterator[Celery]:
    with embedded_worker(_make_app()) as app:
        yield app


class _Finished:
    def __init__(self) -> None:
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, **kwargs: Any) -> None:
        with self.cond:
            self.count += 1
            self.cond.notify_all()

    def wait(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.count >= count, 10.0), f"{self.count} of {count} tasks finished"


def _run_tasks(app: Celery, batched: bool) -> list[tuple[Any, ...]]:
    """Publish and run a succeeding, a failing and a retried task; their spans, task ids made equal.

    ``batched``: otelkit's attribute copier and contrib's spans on the short path; else contrib's own.
    """
    finished = _Finished()
    with InMemoryTelemetry() as mem:
        instrumentor = CeleryInstrumentor()
        instrumentor.instrument(tracer_provider=mem.tracer_provider, meter_provider=mem.meter_provider)
        if batched:
            sdk_compat.short_celery_tracer(instrumentor)
            # Off where the 'server-span' short path is (SDK < 1.42): contrib keeps the SDK's tracer.
            short = sdk_compat.CELERY_SPANS.on
            assert (type(instrumentor._tracer).__name__ == "_ShortTracer") is short
        assert otelkit_celery.install(meter_provider=mem.meter_provider)
        # Connected after contrib's and otelkit's receivers, which run in the order they connected:
        # when it counts a task, that task's run span has ended (connected first, it raced the span's end).
        signals.task_postrun.connect(finished, weak=False, dispatch_uid="attrs-finished")
        try:
            assert hasattr(utils.set_attributes_from_context, "_otelkit_original")
            if not batched:
                patches.restore_contrib_attributes()
                assert utils.set_attributes_from_context is ORIGINAL
            with mem.tracer().start_as_current_span("POST /x"):  # a parent for the first publish
                app.tasks["attrs.ok"].delay(1)
            finished.wait(1)
            app.tasks["attrs.fail"].delay(2)
            finished.wait(2)
            app.tasks["attrs.flaky"].delay(3)
            finished.wait(4)  # runs twice
            spans = list(mem.span_exporter.get_finished_spans())
        finally:
            otelkit_celery.uninstall()
            CeleryInstrumentor().uninstrument()
            signals.task_postrun.disconnect(finished, dispatch_uid="attrs-finished")
    ids = {s.attributes.get("messaging.message.id") for s in spans} - {None}
    assert len(ids) == 3
    names = {s.context.span_id: s.name for s in spans}
    roots = {s.context.trace_id: s.name for s in spans if s.parent is None}
    out = []
    for span in spans:
        attributes = [(k, "<id>" if v in ids else v) for k, v in span.attributes.items()]
        events = [(e.name, dict(e.attributes or {}).get("exception.type")) for e in span.events]
        parent = None if span.parent is None else names.get(span.parent.span_id, "elsewhere")
        links = (parent, roots.get(span.context.trace_id), span.context.trace_flags, span.context.trace_state)
        status = span.status.status_code, span.status.description
        out.append((span.name, span.kind, status, attributes, span.dropped_attributes, events, links))
    out.sort(key=repr)  # the order spans end in across the worker's and the test's threads varies
    return out


def test_celery_contrib_run_and_publish_spans_are_the_same_with_attributes_batched_and_the_short_path(
    worker_app: Celery,
) -> None:
    assert sdk_compat.CELERY_CONTEXT_ATTRIBUTES.on
    batched = _run_tasks(worker_app, batched=True)
    stock = _run_tasks(worker_app, batched=False)
    assert batched == stock
    names = [span[0] for span in batched]
    assert names.count("run/attrs.flaky") == 2 and "apply_async/attrs.fail" in names
    parents = {span[0]: span[6][:2] for span in batched}
    assert parents["run/attrs.ok"] == ("apply_async/attrs.ok", "POST /x")
    assert parents["apply_async/attrs.ok"] == ("POST /x", "POST /x")
    (run,) = [span for span in batched if span[0] == "run/attrs.ok"]
    keys = [key for key, _ in run[3]]
    assert {"celery.action", "messaging.message.id", "celery.delivery_info", "celery.state"} <= set(keys)
    assert utils.set_attributes_from_context is ORIGINAL  # uninstall restored contrib's own


_FANOUT = SimpleNamespace(type="fanout")  # neither direct nor topic: contrib sets the list itself, the SDK drops it


def _spans_after(copier: Any, context: Any, mem: InMemoryTelemetry) -> tuple[list[tuple[str, Any]], int]:
    span = mem.tracer().start_span("run/x")
    span.set_attribute("celery.action", "run")
    copier(span, context)
    span.end()
    return list(span.attributes.items()), span.dropped_attributes


@pytest.mark.parametrize(
    "context",
    [
        Context(id="a-1", correlation_id="a-1", delivery_info={"routing_key": "q1"}, retries=2, hostname="h@x"),
        Context(id="a-2", timelimit=(30, None), priority=4, eta="2026-01-01T00:00:00+00:00", origin="gen@x"),
        {"routing_key": "q2", "countdown": 1.5, "expires": True, "declare": [SimpleNamespace(exchange=_FANOUT)]},
        {"state": "SUCCESS"},
    ],
    ids=["request", "timelimit-list", "kwargs-unknown-declare", "state"],
)
def test_celery_batched_copier_sets_what_contribs_sets_in_the_same_order(context: Any) -> None:
    with InMemoryTelemetry() as mem:
        assert _spans_after(utils.set_attributes_from_context, context, mem) == _spans_after(
            sdk_compat.batched_context_attributes(utils.set_attributes_from_context), context, mem
        )


def test_celery_batched_copier_takes_the_span_lock_once_for_plain_values(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    set_attribute = SdkSpan.set_attribute
    monkeypatch.setattr(SdkSpan, "set_attribute", lambda self, k, v: calls.append(k) or set_attribute(self, k, v))
    context = Context(id="a-1", correlation_id="a-1", delivery_info={"routing_key": "q1"}, retries=2, hostname="h@x")
    with InMemoryTelemetry() as mem:
        attributes, _ = _spans_after(sdk_compat.batched_context_attributes(ORIGINAL), context, mem)
    assert calls == ["celery.action"]  # only the test's own: the copier's six went in one batch
    assert dict(attributes)["messaging.destination"] == "q1"
    assert len(attributes) == 7


def test_celery_batched_copier_is_off_when_contrib_sets_attributes_another_way(monkeypatch: pytest.MonkeyPatch) -> None:
    def copier(span: Any, context: Any) -> None:
        if span.is_recording():
            span.set_attributes({"celery.state": context.get("state")})

    path = sdk_compat.CELERY_CONTEXT_ATTRIBUTES
    monkeypatch.setattr(utils, "set_attributes_from_context", copier)
    path.reset()
    try:
        assert not path.on
        assert "set_attributes" in (path.reason or "")
        assert sdk_compat.batched_context_attributes(copier) is copier
    finally:
        path.reset()


def test_celery_batched_copier_keeps_what_was_set_before_contribs_copier_raised() -> None:
    # delivery_info comes before declare, whose items contrib reads .exchange from: it raises there
    context = {"delivery_info": {"routing_key": "q2"}, "declare": ["not a queue"]}
    results = []
    with InMemoryTelemetry() as mem:
        for copier in (utils.set_attributes_from_context, sdk_compat.batched_context_attributes(ORIGINAL)):
            span = mem.tracer().start_span("run/x")
            with pytest.raises(AttributeError):
                copier(span, context)
            span.end()
            results.append(list(span.attributes.items()))
    expected = [("messaging.destination", "q2"), ("celery.delivery_info", "{'routing_key': 'q2'}")]
    assert results == [expected, expected]


class _HostnameProperty(Context):  # type: ignore[misc]  # Celery's Context is unannotated
    @property
    def hostname(self) -> str:
        return "celery@from-a-property"


@pytest.mark.parametrize(
    "request_",
    [
        Context(id="a-1", hostname="celery@h", retries=2, timelimit=(5, None), delivery_info={"routing_key": "q"}),
        Context(id="a-2"),
        _HostnameProperty(id="a-3", origin="gen1@o"),
    ],
    ids=["plain", "defaults", "a-property"],
)
def test_celery_run_span_copier_reads_what_contexts_get_gives(request_: Any) -> None:
    """The run span's copier reads a plain Context as a dict (instance fields over class defaults); a
    Context whose class computes one of contrib's fields (a property) is read through get() itself."""
    from otelkit._runtime.sdk_compat import _celery_run

    fields = _celery_run._fields(request_, utils)
    assert (fields is request_) == isinstance(request_, _HostnameProperty)
    assert {k: fields.get(k) for k in utils.CELERY_CONTEXT_ATTRIBUTES} == {
        k: request_.get(k) for k in utils.CELERY_CONTEXT_ATTRIBUTES
    }
    with InMemoryTelemetry() as mem:
        assert _spans_after(ORIGINAL, fields, mem) == _spans_after(ORIGINAL, request_, mem)
