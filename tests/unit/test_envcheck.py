"""Junk in any OTEL_* variable the SDK or otelkit reads: one line, the default, and all three pipelines."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import opentelemetry.environment_variables as api_env
import opentelemetry.sdk.environment_variables as sdk_env
import pytest
from opentelemetry._logs import LogRecord

from otelkit._runtime import envcheck as _envcheck
from otelkit._runtime import providers
from otelkit.settings import Settings
from otelkit.testing import OTLPReceiver

JUNK = ["-1", "0", "abc", "1e400", "", "9" * 400]
JUNK_IDS = ["minus-one", "zero", "abc", "1e400", "empty", "huge"]


def _names(module: object) -> set[str]:
    return {v for k, v in vars(module).items() if k.startswith("OTEL_") and isinstance(v, str)}


ALL_VARIABLES = sorted(_names(sdk_env) | _names(api_env) | _envcheck.READ_BY_OTELKIT | _envcheck.CHECKED)
"""Every OTEL_* variable the SDK (and the API it builds on) and otelkit read: derived, so it stays complete."""

# Variables whose every value is acceptable to whoever reads them (names, free text, regexes), or that
# only the stock launcher / the SDK's own configurator read (otelkit replaces that configurator).
FREE_FORM = {
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS",
    "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH",  # otelkit's launcher: one line, no patch
    # Read only by the SDK's own configurator, which otelkit's replaces, or by other exporters/launchers.
    "OTEL_CONFIG_FILE",
    "OTEL_PYTHON_TRACER_CONFIGURATOR",
    "OTEL_PYTHON_METER_CONFIGURATOR",
    "OTEL_PYTHON_LOGGER_CONFIGURATOR",
    "OTEL_LOG_LEVEL",
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
    "OTEL_EXPORTER_ZIPKIN_TIMEOUT",
}


@pytest.fixture(scope="module")
def receiver():
    with OTLPReceiver() as rx:
        yield rx


ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    *(f"OTEL_EXPORTER_OTLP_{s}_ENDPOINT" for s in ("TRACES", "METRICS", "LOGS")),
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, receiver):
    for var in [v for v in os.environ if v.startswith(("OTEL_", "OTELKIT_"))]:
        monkeypatch.delenv(var)
    monkeypatch.setattr(_envcheck, "_reported", set())
    # Every endpoint variable points at the receiver: junk in one of them falls back to another.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    for signal in ("traces", "metrics", "logs"):
        monkeypatch.setenv(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", receiver.url(signal))
    receiver.clear()


# Checked where otelkit reads them, with the same kind of line.
CHECKED_ELSEWHERE = {
    "OTEL_TRACES_EXPORTER",  # otelkit.configurator: unknown names dropped, none left means otlp
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",  # otelkit._deferred
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
}


def test_envcheck_every_variable_is_checked_or_free_form():
    assert set(ALL_VARIABLES) <= _envcheck.CHECKED | FREE_FORM | CHECKED_ELSEWHERE
    assert not (_envcheck.CHECKED & (FREE_FORM | CHECKED_ELSEWHERE))


# Set (never read) by otelkit for the stock launcher, which reads them to choose the distro; and a
# Python constant of otelkit that only looks like a variable.
WRITTEN_FOR_THE_LAUNCHER = {"OTEL_PYTHON_DISTRO", "OTEL_PYTHON_CONFIGURATOR", "OTEL_INTERNAL_PREFIX"}


def test_envcheck_knows_every_variable_otelkit_reads():
    import otelkit

    root = Path(otelkit.__file__).parent
    named = set()
    for path in root.rglob("*.py"):
        if {"cli", "ops", "local"} & set(path.relative_to(root).parts[:-1]):
            continue  # not in the app's process
        named |= set(re.findall(r"\bOTEL_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    known = _envcheck.READ_BY_OTELKIT | _envcheck.CHECKED | FREE_FORM | CHECKED_ELSEWHERE | WRITTEN_FOR_THE_LAUNCHER
    prefixes = {name for name in named if any(k.startswith(name + "_") for k in known)}  # f"{prefix}_…" names
    assert named - known - prefixes == set()


@pytest.mark.parametrize("junk", JUNK, ids=JUNK_IDS)
@pytest.mark.parametrize("var", ALL_VARIABLES)
def test_envcheck_junk_is_one_line_and_every_signal_arrives(monkeypatch, caplog, receiver, var, junk):
    monkeypatch.setenv(var, junk)
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        lines = _envcheck.check()
    if var in _envcheck.CHECKED and junk.strip():
        accepted = var in os.environ and os.environ[var] == junk.strip()
        if not accepted:
            (line,) = lines
            assert line.startswith(f"otelkit: invalid {var}={junk!r}; expected ")
            assert line.endswith(f" — fix or unset {var}")
            assert caplog.messages == [line]
    if not junk.strip() and (var in _envcheck.CHECKED or var in _envcheck.READ_BY_OTELKIT):
        assert var not in os.environ and lines == []  # empty is unset
    # All three signals still arrive.
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    try:
        tracer_provider.get_tracer("junk").start_span("junk-probe").end()
        meter_provider.get_meter("junk").create_counter("junk.probe").add(1)
        logger_provider.get_logger("junk").emit(LogRecord(body="junk-probe"))
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.force_flush()
        receiver.wait_for(
            lambda r: r.spans_named("junk-probe") and r.metric_points("junk.probe") and r.logs, timeout=10
        )
    finally:
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.shutdown()
    assert [log.body for log in receiver.logs] == ["junk-probe"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "-1"}, {}),
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "unset"}, {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "unset"}),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5000"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512"}),
        (
            {"OTEL_BLRP_MAX_QUEUE_SIZE": "100"},
            {"OTEL_BLRP_MAX_QUEUE_SIZE": "100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "100"},
        ),
        ({"OTEL_BSP_SCHEDULE_DELAY": "-5"}, {}),
        ({"OTEL_BLRP_EXPORT_TIMEOUT": "0"}, {}),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "0"}, {}),
        ({"OTEL_METRIC_EXPORT_INTERVAL": "1e400"}, {}),
        ({"OTEL_METRIC_EXPORT_INTERVAL": " 250 "}, {"OTEL_METRIC_EXPORT_INTERVAL": "250"}),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, {}),
        ({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5"}, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2.5"}),
        ({"OTEL_PROPAGATORS": "tracecontext, nope"}, {"OTEL_PROPAGATORS": "tracecontext"}),
        ({"OTEL_PROPAGATORS": "nope"}, {}),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            {"OTEL_TRACES_SAMPLER": "traceidratio"},
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
        ),
        ({"OTEL_METRICS_EXEMPLAR_FILTER": "TRACE_BASED"}, {}),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"}, {"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"}),
        ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, {}),
        ({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:99999/v1/logs"}, {}),
    ],
)
def test_envcheck_corrections(monkeypatch, env, expected):
    for var in ENDPOINTS:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    _envcheck.check()
    assert {k: v for k, v in os.environ.items() if k.startswith("OTEL_")} == expected


def test_envcheck_messages_word_for_word(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")
    monkeypatch.setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "100")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        _envcheck.check()
        _envcheck.check()  # once per process
    assert caplog.messages == [
        "otelkit: invalid OTEL_BSP_MAX_EXPORT_BATCH_SIZE='0'; expected an integer from 1 to 10000000; using 512"
        " — fix or unset OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "otelkit: OTEL_BLRP_MAX_QUEUE_SIZE=100 is smaller than the default OTEL_BLRP_MAX_EXPORT_BATCH_SIZE (512);"
        " using OTEL_BLRP_MAX_EXPORT_BATCH_SIZE=100 — set OTEL_BLRP_MAX_EXPORT_BATCH_SIZE to at most 100",
    ]


# Values real deployments use that the SDK accepts: never reported, never removed.
@pytest.mark.parametrize(
    "env",
    [
        # The gRPC exporter takes a gRPC target: host:port without a scheme (with _INSECURE or TLS).
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4317",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        },
        {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "[::1]:4317"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "dns:///collector.internal:4317"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "unix:///run/otel/otlp.sock"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4318"},
        # The SDK lower-cases sampler names, and "none" in any case switches propagation off.
        {"OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
        {"OTEL_TRACES_SAMPLER": "ALWAYS_OFF"},
        {"OTEL_PROPAGATORS": "None"},
        {"OTEL_PYTHON_ID_GENERATOR": "random"},
    ],
    ids=[
        "grpc-host-port",
        "grpc-ipv6",
        "grpc-dns-target",
        "grpc-unix-socket",
        "http-ipv6",
        "sampler-case",
        "always-off-case",
        "propagators-None",
        "id-generator-random",
    ],
)
def test_envcheck_keeps_values_the_sdk_accepts(monkeypatch, caplog, env):
    for var in ENDPOINTS:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        lines = _envcheck.check()
    assert lines == [] and caplog.messages == []
    assert {k: v for k, v in os.environ.items() if k.startswith("OTEL_")} == env


@pytest.mark.parametrize(
    ("env", "var"),
    [
        # Over OTLP/HTTP a value without a scheme is no URL: requests refuses it.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        # A gRPC target still needs a host and a port that exists.
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector"},
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:99999"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://:4317"},
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
    ],
    ids=["http-no-scheme", "grpc-no-port", "grpc-bad-port", "grpc-http-no-host"],
)
def test_envcheck_endpoint_refused_per_protocol(monkeypatch, env, var):
    for name in ENDPOINTS:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (line,) = _envcheck.check()
    assert line.startswith(f"otelkit: invalid {var}=")
    assert var not in os.environ


def test_envcheck_grpc_target_without_scheme_reaches_a_grpc_receiver(monkeypatch):
    """``host:port`` under OTLP/gRPC is what the SDK's gRPC exporter connects to: spans arrive."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[str] = []

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    received.extend(span.name for span in scope_spans.spans)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        for name in ENDPOINTS:
            monkeypatch.delenv(name)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
        assert _envcheck.check() == []
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
        try:
            tracer_provider.get_tracer("grpc").start_span("grpc-probe").end()
            assert tracer_provider.force_flush(10_000)
        finally:
            for provider in (tracer_provider, meter_provider, logger_provider):
                provider.shutdown()
        assert received == ["grpc-probe"]
    finally:
        server.stop(None)


SAMPLER_MODULE = '''
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult


class DropNamed(Sampler):
    """Drops spans with the name given in OTEL_TRACES_SAMPLER_ARG."""

    def __init__(self, name):
        self.name = name

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        return SamplingResult(Decision.DROP if name == self.name else Decision.RECORD_AND_SAMPLE)

    def get_description(self):
        return "DropNamed"


def drop_named(arg):
    return DropNamed(arg)
'''


def _install_entry_point(monkeypatch, tmp_path, module: str, source: str, group: str, name: str, target: str) -> None:
    """Install ``module`` (``source``) as a distribution whose entry point ``group``/``name`` is ``module:target``.

    A ``.dist-info`` directory on ``sys.path`` is all ``importlib.metadata.entry_points`` looks at, as
    for a package installed with pip; the entry point is gone with the test's ``sys.path``.
    """
    import importlib

    (tmp_path / f"{module}.py").write_text(source)
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\n{name} = {module}:{target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_envcheck_installed_sampler_is_the_one_spans_get(monkeypatch, tmp_path, receiver):
    """An installed sampler envcheck accepts is used, as the SDK's own configurator would (it was ignored)."""
    _install_entry_point(
        monkeypatch,
        tmp_path,
        "dropnamed_sampler",
        SAMPLER_MODULE,
        "opentelemetry_traces_sampler",
        "drop_named",
        "drop_named",
    )
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "drop_named")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "health-probe")
    assert _envcheck.check() == []
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    try:
        tracer = tracer_provider.get_tracer("sampler")
        tracer.start_span("health-probe").end()
        tracer.start_span("checkout").end()
        assert tracer_provider.force_flush(10_000)
        receiver.wait_for(lambda r: r.spans_named("checkout"), timeout=10)
    finally:
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.shutdown()
    assert [s.name for s in receiver.spans] == ["checkout"]


ID_GENERATOR_MODULE = """
from opentelemetry.sdk.trace.id_generator import IdGenerator

TRACE_ID = 0x0123456789ABCDEF0123456789ABCDEF


class Sequential(IdGenerator):
    \"\"\"One trace id for every trace, span ids 1, 2, 3… (an X-Ray-like generator would put the time first).\"\"\"

    def __init__(self):
        self.last = 0

    def generate_span_id(self):
        self.last += 1
        return self.last

    def generate_trace_id(self):
        return TRACE_ID


class NotAGenerator:
    pass


def broken():
    raise RuntimeError("no AWS region")
"""
ID_GENERATOR_GROUP = "opentelemetry_id_generator"


def _request_spans(tracer_provider, meter_provider, receiver) -> list:
    """The spans one request to a FastAPI app (a server span and a span of the app's own) arrive as."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from otelkit._runtime.env import DEFAULT_EXCLUDED_URLS
    from otelkit._runtime.http import asgi

    app = FastAPI()

    @app.get("/orders/{order_id}")
    def order(order_id: int) -> dict:
        with tracer_provider.get_tracer("app").start_as_current_span("load-order"):
            return {"id": order_id}

    asgi.instrument_fastapi(
        asgi.HTTPInstrumentation(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            excluded_urls=DEFAULT_EXCLUDED_URLS,
            request_id_header="X-Request-ID",
            body_size_metrics=False,
        )
    )
    try:
        assert TestClient(app).get("/orders/7").status_code == 200
    finally:
        asgi.uninstrument_fastapi()
    assert tracer_provider.force_flush(10_000)
    receiver.wait_for(lambda r: len(r.spans) >= 2, timeout=10)
    return sorted(receiver.spans, key=lambda s: s.span_id)


def test_envcheck_installed_id_generator_gives_request_spans_their_ids(monkeypatch, tmp_path, receiver):
    """OTEL_PYTHON_ID_GENERATOR names the generator spans get, as with the SDK's own configurator (it was ignored)."""
    _install_entry_point(
        monkeypatch, tmp_path, "sequential_ids", ID_GENERATOR_MODULE, ID_GENERATOR_GROUP, "seq", "Sequential"
    )
    monkeypatch.setenv("OTEL_PYTHON_ID_GENERATOR", " seq ")
    assert _envcheck.check() == []
    tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    try:
        spans = _request_spans(tracer_provider, meter_provider, receiver)
    finally:
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.shutdown()
    trace_id = "0123456789abcdef0123456789abcdef"
    # The server span went through Tracer.start_span: otelkit's short path draws random ids itself.
    assert [(s.name, s.kind, s.trace_id, s.span_id) for s in spans] == [
        ("GET /orders/{order_id}", "SERVER", trace_id, "0000000000000001"),
        ("load-order", "INTERNAL", trace_id, "0000000000000002"),
    ]


def test_envcheck_unknown_id_generator_is_one_line_naming_the_installed_ones(monkeypatch, tmp_path, caplog, receiver):
    _install_entry_point(
        monkeypatch, tmp_path, "sequential_ids", ID_GENERATOR_MODULE, ID_GENERATOR_GROUP, "seq", "Sequential"
    )
    monkeypatch.setenv("OTEL_PYTHON_ID_GENERATOR", "xray")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        _envcheck.check()
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    try:
        spans = _request_spans(tracer_provider, meter_provider, receiver)
    finally:
        for provider in (tracer_provider, meter_provider, logger_provider):
            provider.shutdown()
    assert caplog.messages == [
        "otelkit: invalid OTEL_PYTHON_ID_GENERATOR='xray'; expected the name of an installed id generator"
        " (installed: random, seq); using random — fix or unset OTEL_PYTHON_ID_GENERATOR"
    ]
    assert "OTEL_PYTHON_ID_GENERATOR" not in os.environ
    assert len({s.trace_id for s in spans}) == 1 and int(spans[0].trace_id, 16) > 2**64


@pytest.mark.parametrize(
    ("target", "start", "end"),
    [
        ("broken", "otelkit: the id generator 'bad' could not be created (no AWS region); using random", ""),
        (
            "NotAGenerator",
            "otelkit: OTEL_PYTHON_ID_GENERATOR=bad gave <bad_ids.NotAGenerator object at 0x",
            ">, not an IdGenerator; using random",
        ),
    ],
)
def test_providers_id_generator_that_fails_is_one_line_and_random(monkeypatch, tmp_path, caplog, target, start, end):
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    _install_entry_point(monkeypatch, tmp_path, "bad_ids", ID_GENERATOR_MODULE, ID_GENERATOR_GROUP, "bad", target)
    monkeypatch.setenv("OTEL_PYTHON_ID_GENERATOR", "bad")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        assert _envcheck.check() == []  # installed: envcheck cannot know it will fail
        tracer_provider, meter_provider, logger_provider = providers.build_providers(Settings())
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()
    assert type(tracer_provider.id_generator) is RandomIdGenerator
    (line,) = caplog.messages
    assert line.startswith(start) and line.endswith(end)
