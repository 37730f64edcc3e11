"""otelkit's short path for the server span gives what the SDK's Tracer.start_span gives."""

from __future__ import annotations

import functools
import logging
import random
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider, _TracerConfig
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from otelkit._runtime import sdk_compat as _sdk_compat
from otelkit._runtime.http.serverspan import ServerSpans, set_known_attributes
from otelkit._runtime.sdk_compat import _layout

_RANDOM_TRACE_ID = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # SDK 1.42+

SAMPLERS = {
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "traceidratio": TraceIdRatioBased(0.5),
    "parentbased_always_on": ParentBased(ALWAYS_ON),
    "parentbased_always_off": ParentBased(ALWAYS_OFF),
    "parentbased_traceidratio": ParentBasedTraceIdRatio(0.5),
    "parentbased_inverted": ParentBased(
        TraceIdRatioBased(0.25),
        remote_parent_sampled=ALWAYS_OFF,
        remote_parent_not_sampled=ALWAYS_ON,
        local_parent_sampled=TraceIdRatioBased(0.5),
        local_parent_not_sampled=ALWAYS_ON,
    ),
}


def _parent(remote: bool, sampled: bool, *, random_id: bool = True) -> Context:
    flags = TraceFlags((TraceFlags.SAMPLED if sampled else 0) | (_RANDOM_TRACE_ID if random_id else 0))
    ctx = SpanContext(0x1234, 0x5678, is_remote=remote, trace_flags=flags, trace_state=TraceState([("k", "v")]))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


PARENTS: dict[str, Context | None] = {
    "none": None,
    "empty": Context(),
    "remote_sampled": _parent(True, True),
    "remote_dropped": _parent(True, False),
    "local_sampled": _parent(False, True),
    "local_dropped": _parent(False, False, random_id=False),
    "invalid": trace.set_span_in_context(NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)),
}


class _Starts(SpanProcessor):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.seen.append(parent_context)


RESOURCE = Resource.create({"service.name": "t"})


def _sdk_set(span: Any, attributes: Any, name: str | None = None) -> None:
    if name is not None:
        span.update_name(name)  # what the middleware did before the name went with the attributes
    span.set_attributes(attributes)


def _provider(sampler: Sampler, **kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter, _Starts]:
    provider = TracerProvider(sampler=sampler, resource=RESOURCE, **kwargs)
    exporter = InMemorySpanExporter()
    starts = _Starts()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(starts)
    return provider, exporter, starts


def _exported(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "kind": span.kind,
        "attributes": dict(span.attributes),
        "dropped": span.dropped_attributes,
        "start": span.start_time,
        "end": span.end_time,
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
    }


ATTRS = {"http.request.method": "GET", "url.path": "/x", "client.address": "127.0.0.1", "request.id": "abc"}
FINAL = {"http.response.status_code": 200, "http.route": "/x", "url.path": "/y"}


def _run(spans_start: Any, parent: Context | None, seed: int, *, known: bool) -> Any:
    random.seed(seed)
    span = spans_start(context=parent)
    if span.is_recording():
        (set_known_attributes if known else _sdk_set)(span, ATTRS)
        (set_known_attributes if known else _sdk_set)(span, FINAL, "GET /x")
    span.end(2_000)
    return span


@pytest.mark.parametrize("parent_name", list(PARENTS))
@pytest.mark.parametrize("sampler_name", list(SAMPLERS))
def test_serverspan_same_span_as_the_sdk(sampler_name: str, parent_name: str) -> None:
    parent = PARENTS[parent_name]
    results = []
    # Probe first: the probes draw random ids too, and the two runs must draw the same ones.
    _sdk_compat.SERVER_SPAN.get(), _sdk_compat.SPAN_ATTRIBUTES.get()
    for fast in (False, True):
        provider, exporter, starts = _provider(SAMPLERS[sampler_name])
        tracer = provider.get_tracer("otelkit.http", "1")
        spans = ServerSpans(tracer)
        assert not spans.short_path
        kept = []
        if fast:
            start = functools.partial(spans.start, "GET", start_time=1_000)
        else:
            start = functools.partial(tracer.start_span, "GET", kind=SpanKind.SERVER, start_time=1_000)
        for seed in range(40):  # both decisions of the ratio samplers, on the same ids
            span = _run(start, parent, seed, known=fast)
            kept.append((type(span).__name__, span.get_span_context(), span.is_recording()))
        if fast:
            assert spans.short_path is _sdk_compat.SERVER_SPAN.on  # taken whenever the installed SDK allows it
        results.append((kept, [_exported(s) for s in exporter.get_finished_spans()], starts.seen))
    assert results[0] == results[1]
    if sampler_name in ("always_on", "parentbased_always_on") and parent_name in ("none", "empty", "invalid"):
        assert len(results[1][1]) == 40  # not equal because both paths recorded nothing


def _fields(span: Any) -> list[tuple[str, Any]]:
    return _layout.state(span, ("_context", "_record_end_metrics"))


@pytest.mark.parametrize(
    "limits", [SpanLimits(), SpanLimits(max_span_attributes=3, max_events=2, max_links=1)], ids=["default", "small"]
)
def test_serverspan_built_from_its_layout_is_what_the_sdk_constructor_builds(limits: SpanLimits) -> None:
    provider, exporter, _ = _provider(ALWAYS_ON, span_limits=limits)
    tracer = provider.get_tracer("otelkit.http", "1")
    spans = ServerSpans(tracer)
    fast = [spans.start("GET", PARENTS["remote_sampled"], 1_000) for _ in range(2)]
    sdk = [
        tracer.start_span("GET", PARENTS["remote_sampled"], kind=SpanKind.SERVER, start_time=1_000) for _ in range(2)
    ]
    if _sdk_compat.SERVER_SPAN.on:
        assert isinstance(spans._start.args[2], _layout.Layout)  # not the constructor
    assert _fields(fast[0]) == _fields(sdk[0])
    assert _layout.sharing(*fast) == _layout.sharing(*sdk)
    # The classes' shared-key dicts, as the constructor's objects have (a dict of its own is ~3× larger).
    sizes = [[sys.getsizeof(vars(o)) for o in (s, s._attributes, s._events, s._links)] for s in (fast[0], sdk[0])]
    assert sizes[0] == sizes[1]
    # What one span is given stays its own: attributes, events, links, status, the end.
    fast[0].set_attribute("a", 1)
    fast[0].add_event("e", {"k": "v"})
    fast[0].add_link(sdk[0].get_span_context())
    fast[0].set_status(trace.StatusCode.ERROR)
    fast[0].end(2_000)
    assert fast[1].is_recording() and dict(fast[1].attributes) == {}
    assert (fast[1].events, fast[1].links, fast[1].status.status_code) == ((), (), trace.StatusCode.UNSET)
    fast[1].end(3_000)
    first, second = exporter.get_finished_spans()
    assert (dict(first.attributes), [e.name for e in first.events], len(first.links)) == ({"a": 1}, ["e"], 1)
    assert (dict(second.attributes), second.events, second.links, second.end_time) == ({}, (), (), 3_000)


def test_serverspan_without_a_layout_uses_the_sdk_constructor(monkeypatch: pytest.MonkeyPatch) -> None:
    from otelkit._runtime.sdk_compat import _server_span

    monkeypatch.setattr(_server_span, "_span_layout", lambda tracer: None)
    provider, exporter, starts = _provider(ALWAYS_ON)
    tracer = provider.get_tracer("otelkit.http", "1")
    spans = ServerSpans(tracer)
    span = spans.start("GET", PARENTS["local_sampled"], 1_000)
    sdk = tracer.start_span("GET", PARENTS["local_sampled"], kind=SpanKind.SERVER, start_time=1_000)
    assert spans.short_path is _sdk_compat.SERVER_SPAN.on
    assert _fields(span) == _fields(sdk)
    span.end(2_000)
    assert [s.name for s in exporter.get_finished_spans()] == ["GET"] and len(starts.seen) == 2


class _Holder:
    def __init__(self, name: str, extra: Any = None) -> None:
        self.name = name
        self.shared = RESOURCE
        self.items: list[Any] = []
        if extra is not None:
            self.extra = extra


class _Slotted:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def test_layout_copies_what_is_shared_and_makes_the_rest_anew() -> None:
    found = _layout.layout(_Holder("a"), _Holder("b"), per_object=("name",))
    assert found is not None
    one, two = found.new("x"), found.new("y")
    assert type(one) is _Holder and (one.name, two.name) == ("x", "y") and one.shared is RESOURCE
    assert one.items == [] and one.items is not two.items


@pytest.mark.parametrize(
    "pair",
    [
        (_Holder("a"), _Holder("b")),  # "name" derived from the arguments, not set by the caller
        (_Holder("a", extra=[1]), _Holder("a", extra=[2])),  # a mutable value it cannot make anew
        (_Holder("a", extra=1), _Holder("a")),  # different fields
        (_Slotted("a"), _Slotted("a")),  # state in slots
        (_Holder("a", extra=_Holder("b")), _Holder("a", extra=_Holder("b"))),  # a nested object not the SDK's
    ],
    ids=["derived", "mutable", "fields", "slots", "foreign"],
)
def test_layout_refuses_objects_it_cannot_build(pair: tuple[Any, Any]) -> None:
    assert _layout.layout(*pair) is None


def test_serverspan_ratio_sampler_takes_both_decisions() -> None:
    provider, _, _ = _provider(TraceIdRatioBased(0.5))
    spans = ServerSpans(provider.get_tracer("x"))
    recorded = [spans.start("GET", None, 1).is_recording() for _ in range(200)]
    assert 40 < sum(recorded) < 160


class _Custom(Sampler):
    def __init__(self) -> None:
        self.calls = 0

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        self.calls += 1
        return SamplingResult(Decision.RECORD_AND_SAMPLE, {"custom": True})

    def get_description(self) -> str:
        return "custom"


class _Overridden(TraceIdRatioBased):
    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE, {"overridden": True})


@pytest.mark.parametrize(
    "sampler",
    [_Custom(), ParentBased(_Custom()), _Overridden(0.0), StaticSampler(Decision.RECORD_ONLY)],
    ids=["custom", "parentbased_custom", "overridden", "record_only"],
)
def test_serverspan_unknown_sampler_goes_through_the_sdk(sampler: Sampler) -> None:
    provider, exporter, _ = _provider(sampler)
    spans = ServerSpans(provider.get_tracer("x"))
    span = spans.start("GET", None, 1)
    assert span.is_recording()
    span.end(2)
    assert spans._resolved and not spans.short_path
    if isinstance(sampler, StaticSampler):
        assert not span.get_span_context().trace_flags.sampled and exporter.get_finished_spans() == ()
    else:
        (exported,) = exporter.get_finished_spans()
        assert exported.attributes in ({"custom": True}, {"overridden": True})


def test_serverspan_custom_id_generator_goes_through_the_sdk() -> None:
    class Fixed(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            return 42

    provider, _, _ = _provider(ALWAYS_ON, id_generator=Fixed())
    spans = ServerSpans(provider.get_tracer("x"))
    assert spans.start("GET", None, 1).get_span_context().trace_id == 42
    assert not spans.short_path


def test_serverspan_disabled_tracer_records_nothing() -> None:
    provider, exporter, _ = _provider(ALWAYS_ON)
    tracer = provider.get_tracer("x")
    spans = ServerSpans(tracer)
    spans.start("GET", None, 1).end(2)
    if hasattr(tracer, "_set_tracer_config"):  # SDK 1.41+
        tracer._set_tracer_config(_TracerConfig(is_enabled=False))
    else:
        provider._tracer_configurator = lambda scope: _TracerConfig(is_enabled=False)
    span = spans.start("GET", None, 3)
    span.end(4)
    assert not span.is_recording()
    assert len(exporter.get_finished_spans()) == 1


def test_serverspan_proxy_tracer_is_resolved_once_its_provider_is_set() -> None:
    provider, exporter, _ = _provider(ALWAYS_ON)
    proxy = trace.ProxyTracer("otelkit.http")
    spans = ServerSpans(proxy)
    proxy._real_tracer = None
    spans._resolve()
    assert spans._resolved is not _sdk_compat.SERVER_SPAN.on  # without the short path there is nothing to wait for
    real = provider.get_tracer("otelkit.http")
    proxy._real_tracer = real
    spans.start("GET", None, 1).end(2)
    assert spans.short_path is _sdk_compat.SERVER_SPAN.on
    assert [s.name for s in exporter.get_finished_spans()] == ["GET"]


@pytest.mark.parametrize(
    "limits",
    [SpanLimits(max_span_attribute_length=4), SpanLimits(max_span_attributes=3)],
    ids=["value_length", "attribute_count"],
)
def test_set_known_attributes_applies_the_sdk_limits(limits: SpanLimits) -> None:
    exported = []
    for setter in (_sdk_set, set_known_attributes):
        provider, exporter, _ = _provider(ALWAYS_ON, span_limits=limits)
        span = provider.get_tracer("x").start_span("s")
        setter(span, ATTRS)
        setter(span, FINAL, "GET /x")
        span.end()
        (done,) = exporter.get_finished_spans()
        exported.append((done.name, dict(done.attributes), done.dropped_attributes))
    assert exported[0] == exported[1]
    assert exported[1][0] == "GET /x"
    assert exported[1][2] or any(len(str(v)) == 4 for v in exported[1][1].values())


def test_set_known_attributes_on_an_ended_span_warns_and_sets_nothing(caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter, _ = _provider(ALWAYS_ON)
    span = provider.get_tracer("x").start_span("s")
    span.end()
    with caplog.at_level(logging.WARNING):
        set_known_attributes(span, {"late": "yes"}, "GET /late")
    assert "Setting attribute on ended span." in caplog.text
    assert "Tried calling update_name on an ended span." in caplog.text
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes) == {} and done.name == "s" and span.name == "s"


def test_set_known_attributes_on_a_non_recording_span_is_a_no_op() -> None:
    span = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    set_known_attributes(span, ATTRS)
    assert not span.is_recording()


def test_set_known_attributes_keeps_the_sdk_order_for_new_and_repeated_keys() -> None:
    # New keys are appended in order; a key set again moves to the end, as in Span.set_attributes.
    batches = (ATTRS, {"http.route": "/x", "user_agent.original": "t"}, FINAL, {"request.id": "def"})
    exported = []
    for setter in (_sdk_set, set_known_attributes):
        provider, exporter, _ = _provider(ALWAYS_ON)
        span = provider.get_tracer("x").start_span("s")
        for attributes in batches:
            setter(span, attributes)
        span.end()
        (done,) = exporter.get_finished_spans()
        exported.append(list(done.attributes.items()))
    assert exported[0] == exported[1]
    assert [key for key, _ in exported[1]][-2:] == ["url.path", "request.id"]
