"""A forked child never exports over its parent's connections (otelkit._forksafe)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._runtime import exporters as configurator
from otelkit._runtime import forksafe as _forksafe
from otelkit.testing import OTLPReceiver


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def _spans(n: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        provider.get_tracer("t").start_span(f"span-{i}").end()
    return list(memory.get_finished_spans())


def _in_child(check: Callable[[], str]) -> str:
    """Run ``check`` in a forked child; return what it returned (or the exception it raised)."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded" (3.12+)
        pid = os.fork()
    if pid == 0:
        try:
            try:
                answer = check()
            except BaseException as exc:
                answer = f"raised {exc!r}"
            os.write(write, answer.encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 4096):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def _pooled_sockets(pool_manager) -> list:
    if hasattr(pool_manager, "connection"):  # otelkit's transport (1.45+, plain HTTP): its one connection
        connection = pool_manager.connection
        return [connection.sock] if connection is not None and connection.sock is not None else []
    sockets = []
    for key in list(pool_manager.pools.keys()):
        pool = pool_manager.pools.get(key)
        queue = getattr(getattr(pool, "pool", None), "queue", ())
        sockets += [conn.sock for conn in queue if conn is not None and conn.sock is not None]
    return sockets


def _session(exporter) -> object:
    """The requests session of an SDK OTLP/HTTP exporter (SDK 1.45+: in its transport; before: its own)."""
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    return transport._session if transport is not None else exporter._session


def _pool_of(exporter, url: str) -> Callable[[], object]:
    """The connection pool the exporter posts through: otelkit's transport's (1.45+, plain HTTP) or requests'."""
    exporter = getattr(exporter, "inner", exporter)  # the SDK's exporter behind the redacting wrapper
    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    if getattr(transport, "_pool", None) is not None:
        return lambda: transport._pool
    session = _session(exporter)
    return lambda: session.get_adapter(url).poolmanager


def test_forksafe_fast_exporter_child_connects_anew_and_both_keep_exporting(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    exporter = configurator._create_otlp("traces", "http/protobuf", fast=True)
    pool = _pool_of(exporter, receiver.url("traces"))
    assert exporter.export(_spans(1)) is SpanExportResult.SUCCESS
    (inherited,) = _pooled_sockets(pool())  # the parent's open keep-alive connection

    def child() -> str:
        fresh = _pooled_sockets(pool())
        result = exporter.export(_spans(2))
        (own,) = _pooled_sockets(pool())
        return f"{len(fresh)} {result.name} {own is inherited}"

    assert _in_child(child) == "0 SUCCESS False"
    assert exporter.export(_spans(3)) is SpanExportResult.SUCCESS
    assert _pooled_sockets(pool()) == [inherited]  # the parent's connection is untouched
    receiver.wait_for(lambda r: len(r.spans) == 6)
    assert receiver.bad_requests == 0
    exporter.shutdown()


def test_forksafe_requests_session_gets_new_pools_and_keeps_its_settings(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    exporter = _forksafe.track(OTLPSpanExporter())  # requests, as over HTTPS or a proxy
    session = _session(exporter)
    session.headers["X-Kept"] = "yes"
    assert exporter.export(_spans(1)) is SpanExportResult.SUCCESS
    adapter = session.get_adapter(receiver.endpoint)
    (inherited,) = _pooled_sockets(adapter.poolmanager)

    def child() -> str:
        fresh = _pooled_sockets(adapter.poolmanager)
        result = exporter.export(_spans(1))
        (own,) = _pooled_sockets(adapter.poolmanager)
        return f"{len(fresh)} {result.name} {own is inherited} {session.headers['X-Kept']}"

    assert _in_child(child) == "0 SUCCESS False yes"
    receiver.wait_for(lambda r: len(r.spans) == 2)
    assert receiver.last_headers.get("x-kept") == "yes"
    exporter.shutdown()


def test_forksafe_grpc_exporter_gets_a_new_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    exporter = configurator._create_otlp("traces", "grpc", fast=False)
    inner = exporter.inner
    parent_channel = inner._channel

    def child() -> str:
        return f"{inner._channel is not parent_channel} {inner._client is not None}"

    assert _in_child(child) == "True True"
    assert inner._channel is parent_channel
    exporter.shutdown()


def test_forksafe_untracked_and_unknown_objects_are_left_alone() -> None:
    assert _forksafe.reset_connections(object()) is False
    assert _forksafe.track(3) == 3  # not weak-referenceable: ignored, never raises


def test_a_forked_child_queues_and_exports_through_otelkits_batch_queue() -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otelkit._runtime import sdk_compat

    memory = InMemorySpanExporter()
    span_processor = BatchSpanProcessor(memory, schedule_delay_millis=60_000)
    emit = sdk_compat.queue_emit(span_processor._batch_processor)
    assert emit != span_processor._batch_processor.emit
    emit("parent, unflushed")  # the child starts with an empty queue: the parent exports its own

    def check() -> str:
        for item in ("child 1", "child 2"):
            emit(item)
        span_processor.force_flush()
        return repr(list(memory.get_finished_spans()))

    assert _in_child(check) == repr(["child 1", "child 2"])
    span_processor.force_flush()
    span_processor.shutdown()
    assert list(memory.get_finished_spans()) == ["parent, unflushed"]
