"""otelkit._runtime.sdk_compat: each fast path is probed against the installed SDK, and off means the SDK's own way.

These tests run against the oldest and the newest supported OpenTelemetry releases (scripts/test).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from importlib.metadata import version

import pytest

from otelkit._runtime import fasthist  # noqa: F401  (these register their paths)
from otelkit._runtime import sdk_compat as _sdk_compat
from otelkit._runtime.http import serverspan  # noqa: F401
from otelkit._runtime.logs import fastemit  # noqa: F401
from otelkit._runtime.otlp import encode as _encode  # noqa: F401
from otelkit._runtime.otlp import fast as _fast  # noqa: F401
from otelkit._runtime.sdk_compat import _export
from otelkit.testing import OTLPReceiver


def _release(distribution: str) -> tuple[int, int]:
    major, minor = version(distribution).split(".")[:2]
    return int(major), int(minor.split("b")[0])


SDK = _release("opentelemetry-sdk")
CONTRIB = _release("opentelemetry-instrumentation")

# What each release allows (read in the SDK's sources 1.40.0-1.45.2, checked by running each one).
EXPECTED_ON = {
    "attribute-dict": True,
    "attributes-like": True,
    "batch-queue": True,
    "celery-attributes": True,
    "celery-histograms": True,
    "celery-run-span": True,
    "celery-spans": SDK >= (1, 42),  # the short path of "server-span"
    "context-var": True,
    "dependency-conflict": CONTRIB >= (0, 66),  # DependencyConflict._log
    "end-request-context": True,
    "entry-points": True,
    "exporter-preferences": True,
    "fast-histogram": True,
    "fast-sum": True,
    "idle-record-factory": True,
    "log-record": CONTRIB >= (0, 62),  # LoggingHandler._is_emitting
    "fork-reset": True,
    "otlp-logs": SDK >= (1, 43),  # before: a None log body or value is left out, not sent empty
    "otlp-spans": SDK >= (1, 43),  # before: an attribute whose value is None is dropped
    "proxy-providers": True,
    "record-context": True,
    "request-context": True,
    "server-span": SDK >= (1, 42),  # before: tracer self-metrics always on, no RANDOM_TRACE_ID flag
    "span-attributes": True,
    "span-end": True,
    "span-fields": True,
    "lean-transport": SDK >= (1, 45),  # the exporters' _transport keyword
}


@pytest.fixture
def fresh_paths():
    """Every path probes again in the test, and again after it."""
    for path in _sdk_compat.paths().values():
        path.reset()
    yield _sdk_compat.paths()
    for path in _sdk_compat.paths().values():
        path.reset()


def test_sdk_compat_every_path_is_on_exactly_where_the_installed_sdk_allows_it(fresh_paths):
    found = {name: path.on for name, path in fresh_paths.items()}
    reasons = {name: path.reason for name, path in fresh_paths.items() if path.reason}
    assert found == EXPECTED_ON, reasons


def test_sdk_compat_the_probes_leave_no_thread_behind(fresh_paths):
    """Every probe stops what it starts: the span-end probe's batch processor kept its worker thread
    waiting in every process otelkit set up (py-spy on the benchmark's server showed it)."""
    before = {thread.ident for thread in threading.enumerate()}
    for path in fresh_paths.values():
        path.get()
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        {"OTEL_TRACES_SAMPLER": "always_off"},
    ],
    ids=["ratio-10-percent", "always-off"],
)
def test_sdk_compat_the_probes_do_not_depend_on_the_apps_sampler(fresh_paths, monkeypatch, env):
    """The probes check the SDK, not which spans the app samples: under a 10 % sampler the probes'
    own spans were not recorded, so the span encoder and two span short paths were switched off
    exactly where sampling was meant to make otelkit cheaper (the SDK's encoder, unpaced, was the
    10 % p99). The app's attribute limits do reach the probes: a short path that would count
    dropped attributes otherwise is off under them, as it must be."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    found = {name: path.on for name, path in fresh_paths.items()}
    reasons = {name: path.reason for name, path in fresh_paths.items() if path.reason}
    assert found == EXPECTED_ON, reasons


def test_sdk_compat_a_failed_probe_is_one_info_line_naming_the_sdk_version_and_the_path(fresh_paths, caplog):
    path = fresh_paths["request-context"]
    with caplog.at_level(logging.INFO, logger="otelkit"):
        path.probe = lambda fast: "the context keys moved"
        assert path.get() is path.fallback
        assert path.get() is path.fallback
        path.switch_off("again")
    assert [r.getMessage() for r in caplog.records] == [
        f"otelkit: OpenTelemetry SDK {version('opentelemetry-sdk')}: fast path 'request-context' off"
        " (the context keys moved); using the SDK's public API instead"
    ]
    assert caplog.records[0].levelno == logging.INFO
    assert not path.on and path.reason == "the context keys moved"


def test_sdk_compat_a_probe_that_raises_counts_as_a_mismatch(fresh_paths, caplog):
    path = fresh_paths["span-fields"]

    def probe(fast):
        raise AttributeError("'ReadableSpan' object has no attribute '_context'")

    path.probe = probe
    with caplog.at_level(logging.INFO, logger="otelkit"):
        assert path.get() is path.fallback
    assert "fast path 'span-fields' off (AttributeError: 'ReadableSpan' object has no attribute '_context')" in (
        caplog.text
    )


def test_sdk_compat_the_probe_catches_a_renamed_sdk_attribute(fresh_paths, monkeypatch):
    from opentelemetry.attributes import BoundedAttributes

    # A release that renamed BoundedAttributes' own dict: the fast reader would read nothing.
    original = BoundedAttributes.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._data = self.__dict__.pop("_dict")

    monkeypatch.setattr(BoundedAttributes, "__init__", init)
    monkeypatch.setattr(BoundedAttributes, "__getitem__", lambda self, key: self._data[key])
    monkeypatch.setattr(BoundedAttributes, "__iter__", lambda self: iter(dict(self._data)))
    monkeypatch.setattr(BoundedAttributes, "__len__", lambda self: len(self._data))
    path = fresh_paths["attribute-dict"]
    assert not path.on
    assert "has no attribute '_dict'" in path.reason
    bounded = BoundedAttributes(attributes={"a": 1}, immutable=True)
    assert dict(_sdk_compat.attribute_reader()(bounded)) == {"a": 1}


def test_sdk_compat_export_with_encoder_refuses_an_export_that_does_not_use_the_module_encoder():
    class Exporter:
        def export(self, spans):
            return "sent"

    reason = _export._export_code_reason(Exporter, "encode_spans")
    assert reason == "Exporter.export() does not encode with the module-level encode_spans()"


# --------------------------------------------------------------------------- the fallbacks, end to end

_APP = textwrap.dedent(
    """
    import asyncio
    import logging
    import os

    import otelkit
    from otelkit._runtime import fasthist, sdk_compat as _sdk_compat
    from otelkit._runtime.http import serverspan
    from otelkit._runtime.logs import fastemit
    from otelkit._runtime.otlp import encode, fast

    exec(os.environ["BREAK"])
    otelkit.configure(service_name="fallback")

    import fastapi
    import httpx

    app = fastapi.FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: int):
        logging.getLogger("app").warning("item %s", item_id)
        return {"id": item_id}

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for i in range(3):
                assert (await client.get(f"/items/{i}", headers={"baggage": "tenant=t1"})).status_code == 200

    asyncio.run(main())
    """
)

_ALL_OFF = """
for path in _sdk_compat.paths().values():
    path.probe = lambda fast: "forced off by the test"
"""

# A release that changed what the SDK produces: its spans carry one more attribute, its encoders
# one more resource attribute. otelkit's short paths no longer give the same: they must go.
_SDK_CHANGED = """
from opentelemetry.exporter.otlp.proto.http import _log_exporter, trace_exporter
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk import trace as sdk_trace

_start_span = sdk_trace.Tracer.start_span

def start_span(self, *args, **kwargs):
    span = _start_span(self, *args, **kwargs)
    if span.is_recording():
        span.set_attribute("sdk.changed", True)
    return span

sdk_trace.Tracer.start_span = start_span

def changed(encode):
    def encode_changed(batch):
        message = encode(batch)
        for resource in list(getattr(message, "resource_spans", [])) + list(getattr(message, "resource_logs", [])):
            resource.resource.attributes.add(key="sdk.changed", value=AnyValue(bool_value=True))
        return message
    return encode_changed

trace_exporter.encode_spans = changed(trace_exporter.encode_spans)
_log_exporter.encode_logs = changed(_log_exporter.encode_logs)

from opentelemetry.instrumentation.logging.handler import LoggingHandler

_translate = LoggingHandler._translate

def translate(self, record):
    log = _translate(self, record)
    log.attributes = {**(log.attributes or {}), "sdk.changed": True}
    return log

LoggingHandler._translate = translate
"""


def _run_app(receiver: OTLPReceiver, breaker: str) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "BREAK": breaker}
    result = subprocess.run(
        [sys.executable, "-c", _APP], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines() if line.startswith("{")]
    receiver.wait_for(lambda r: len(r.spans) >= 3 and len(r.logs) >= 3 and r.metric_points(_DURATION), timeout=30)
    return messages


_DURATION = "http.server.request.duration"
_OFF_LINE = f"otelkit: OpenTelemetry SDK {version('opentelemetry-sdk')}: fast path "


def _assert_everything_arrived(receiver: OTLPReceiver) -> None:
    spans = receiver.spans
    assert [s.name for s in spans] == ["GET /items/{item_id}"] * 3
    assert all(s.kind == "SERVER" and s.attributes["http.route"] == "/items/{item_id}" for s in spans)
    logs = sorted((r for r in receiver.logs if r.body.startswith("item ")), key=lambda r: r.body)
    assert [r.body for r in logs] == ["item 0", "item 1", "item 2"]
    assert [r.trace_id for r in logs] == [s.trace_id for s in sorted(spans, key=lambda s: s.start_time_ns)]
    (point,) = {p.attributes["http.route"]: p for p in receiver.metric_points(_DURATION)}.values()
    assert point.count == 3


def test_sdk_compat_every_fast_path_off_still_exports_everything():
    with OTLPReceiver() as receiver:
        messages = _run_app(receiver, _ALL_OFF)
    _assert_everything_arrived(receiver)
    off = [m[len(_OFF_LINE) :] for m in messages if m.startswith(_OFF_LINE)]
    used = {"fast-histogram", "otlp-logs", "otlp-spans", "proxy-providers", "request-context", "server-span"}
    used |= {"span-attributes", "lean-transport", "exporter-preferences", "end-request-context"}
    used |= {"log-record", "idle-record-factory", "span-end", "record-context", "context-var"}
    assert sorted(off) == sorted(
        f"'{name}' off (forced off by the test); using the SDK's public API instead" for name in used
    )


def test_sdk_compat_an_sdk_that_changed_turns_the_short_paths_off_and_the_sdk_exports_everything():
    with OTLPReceiver() as receiver:
        messages = _run_app(receiver, _SDK_CHANGED)
    _assert_everything_arrived(receiver)
    off = {m[len(_OFF_LINE) :].split(" ")[0].strip("'") for m in messages if m.startswith(_OFF_LINE)}
    # Off because the SDK changed, and (older releases) those off on this release anyway.
    changed = ("server-span", "otlp-spans", "otlp-logs", "log-record")
    assert set(changed) <= off
    assert all(name in changed or not EXPECTED_ON[name] for name in off)
    # What arrived is the SDK's own work: its spans and its encoders.
    assert all(s.attributes.get("sdk.changed") is True for s in receiver.spans)
    assert all(s.resource.get("sdk.changed") is True for s in receiver.spans)
    assert all(r.resource.get("sdk.changed") is True for r in receiver.logs)
    assert all(r.attributes.get("sdk.changed") is True for r in receiver.logs)


def test_sdk_compat_a_metric_exporter_preferring_other_temporalities_is_reported(caplog):
    from opentelemetry.sdk.metrics import Histogram
    from opentelemetry.sdk.metrics.export import AggregationTemporality, ConsoleMetricExporter

    from otelkit._runtime import deferred

    # otelkit computed cumulative (the default); the real exporter, built later, wants delta.
    real = ConsoleMetricExporter(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    exporter = deferred.DeferredMetricExporter(lambda: real)
    with caplog.at_level(logging.INFO, logger="otelkit"):
        assert exporter.resolve() is real
    (record,) = caplog.records
    assert record.getMessage().startswith(f"otelkit: OpenTelemetry SDK {version('opentelemetry-sdk')}: the OTLP")
    assert "'Histogram': 'DELTA'" in record.getMessage()
    assert "'Histogram': 'CUMULATIVE'" in record.getMessage()


def test_sdk_compat_the_logs_modules_are_looked_up_once(monkeypatch):
    # The log exporter asks for the export module on every export; a name that does not exist
    # (the public ``opentelemetry.sdk.logs`` of releases to come) must not be searched for again.
    import importlib

    from otelkit._runtime.sdk_compat import _api

    first = _sdk_compat.logs_sdk_export()
    calls: list[str] = []
    real = importlib.import_module

    def counting(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        calls.append(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", counting)
    assert _sdk_compat.logs_sdk_export() is first
    assert first.LogRecordExportResult.SUCCESS is not None
    assert calls == []
    monkeypatch.setattr(_api, "_found", {})  # forgotten: looked up again, the same module found
    assert _sdk_compat.logs_sdk_export() is first
    assert calls and calls[-1] == first.__name__


def test_sdk_compat_record_context_reads_what_the_api_reads_during_and_after_a_request():
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from otelkit._runtime.sdk_compat import _context
    from otelkit._runtime.sdk_compat._probes import probe_provider
    from otelkit.context import end_request_context, request_context

    assert _sdk_compat.RECORD_CONTEXT.on  # probed: the direct read is set up
    span = NonRecordingSpan(SpanContext(5, 6, False, TraceFlags(1)))
    context = request_context(span, "r-1")
    readers = (_context._record_context_direct, _context._record_context_public)
    during = [read(context, "request.id") for read in readers]
    end_request_context(context)
    after = [read(context, "request.id") for read in readers]
    assert during == [(span.get_span_context(), "r-1")] * 2
    assert after == [(trace.INVALID_SPAN_CONTEXT, None)] * 2
    # An SDK span: its own span context object, as get_span_context() returns it.
    provider, _ = probe_provider()
    sdk_span = provider.get_tracer("test").start_span("GET /")
    context = request_context(sdk_span, "r-2")
    for read in readers:
        found, request_id = read(context, "request.id")
        assert found is sdk_span.get_span_context() and request_id == "r-2"


def test_sdk_compat_the_context_variable_is_what_the_api_reads_and_attaches():
    from opentelemetry import context as otel_context

    getter = _sdk_compat.current_context_getter()
    var = _sdk_compat.context_var()
    assert _sdk_compat.CONTEXT_VAR.on and getter == var.get
    mine = otel_context.set_value("k", "v")
    token = otel_context.attach(mine)
    try:
        assert getter() is mine
    finally:
        otel_context.detach(token)
    token = var.set(mine)
    try:
        assert otel_context.get_current() is mine and otel_context.get_value("k") == "v"
    finally:
        var.reset(token)
    assert otel_context.get_current() is getter() and otel_context.get_value("k") is None
