"""The broker's Redis commands stay out of tracing, against a real redis-server, for the least work per command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from opentelemetry.instrumentation import utils as instrumentation_utils
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._runtime.celery import patches

pytestmark = pytest.mark.e2e


@pytest.fixture
def traced_redis() -> Iterator[InMemorySpanExporter]:
    """redis-py instrumented at class level, as the launcher does, into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RedisInstrumentor()
    was = instrumentor.is_instrumented_by_opentelemetry
    if was:
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


def _commands(client: Any) -> None:
    assert client.execute_command("PING") is True
    pipe = client.pipeline()
    pipe.set("otelkit:quiet", "1")
    pipe.get("otelkit:quiet")
    assert pipe.execute() == [True, b"1"]


def test_broker_client_commands_make_no_span_and_enter_no_suppression_context(
    redis_server: str, traced_redis: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    _commands(redis.Redis.from_url(redis_server))
    assert len(traced_redis.get_finished_spans()) == 2  # the control: an ordinary client is traced
    traced_redis.clear()
    entered: list[int] = []
    real = instrumentation_utils.suppress_instrumentation
    monkeypatch.setattr(instrumentation_utils, "suppress_instrumentation", lambda: entered.append(1) or real())
    quiet = patches._quiet_client(redis.Redis.from_url(redis_server))
    _commands(quiet)
    assert traced_redis.get_finished_spans() == ()
    # kombu makes such a client for every ack and delivery: its commands run the functions the
    # instrumentation wraps, with no context switched per command.
    assert entered == []


def test_broker_client_made_before_the_instrumentation_stays_quiet(redis_server: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RedisInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    quiet = patches._quiet_client(redis.Redis.from_url(redis_server))
    instrumentor.instrument(tracer_provider=provider)
    try:
        _commands(quiet)
        _commands(redis.Redis.from_url(redis_server))
    finally:
        instrumentor.uninstrument()
    assert len(exporter.get_finished_spans()) == 2  # the ordinary client's two; none of the quiet one's


def test_broker_clients_find_the_unwrapped_methods_once_per_class_and_again_after_reinstrumenting(
    redis_server: str, traced_redis: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(patches, "_found", {})
    looked_up: list[str] = []
    real = patches._direct
    monkeypatch.setattr(patches, "_direct", lambda cls, name, owner: looked_up.append(name) or real(cls, name, owner))
    for _ in range(3):  # kombu: a client for every ack and every delivered message
        _commands(patches._quiet_client(redis.Redis.from_url(redis_server)))
    assert sorted(looked_up) == ["execute", "execute_command"]  # the two methods _commands calls, once
    assert traced_redis.get_finished_spans() == ()
    # The instrumentation replaced: its new wrappers are seen, and the clients stay quiet.
    instrumentor = RedisInstrumentor()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(traced_redis))
    instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    looked_up.clear()
    _commands(patches._quiet_client(redis.Redis.from_url(redis_server)))
    assert sorted(looked_up) == ["execute", "execute_command"]
    assert traced_redis.get_finished_spans() == ()
    _commands(redis.Redis.from_url(redis_server))
    assert len(traced_redis.get_finished_spans()) == 2  # the control: an ordinary client is traced


def test_broker_client_without_the_instrumentation_calls_redis_py_directly(
    redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instrumentor = RedisInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    entered: list[int] = []
    real = instrumentation_utils.suppress_instrumentation
    monkeypatch.setattr(instrumentation_utils, "suppress_instrumentation", lambda: entered.append(1) or real())
    _commands(patches._quiet_client(redis.Redis.from_url(redis_server)))
    assert entered == []  # nothing to suppress: no context switched per command


def test_broker_clients_are_freed_when_dropped_not_left_to_the_garbage_collector(
    redis_server: str, traced_redis: InMemorySpanExporter
) -> None:
    import gc
    import weakref

    client = patches._quiet_client(redis.Redis.from_url(redis_server))
    pipe = client.pipeline()
    _commands(client)
    refs = [weakref.ref(client), weakref.ref(pipe)]
    enabled = gc.isenabled()
    gc.disable()
    try:
        del client, pipe
        # kombu drops two clients and two pipelines per task: a reference cycle through each
        # would keep them (and their ~170 response callbacks) until a collection.
        assert [ref() for ref in refs] == [None, None]
    finally:
        if enabled:
            gc.enable()
    assert traced_redis.get_finished_spans() == ()


def test_kombus_prefixed_broker_client_stays_quiet_and_keeps_its_prefix(
    redis_server: str, traced_redis: InMemorySpanExporter
) -> None:
    from kombu.transport.redis import PrefixedStrictRedis

    # broker_transport_options={"global_keyprefix": …}: kombu's client overrides execute_command
    # (it prefixes keys, then calls redis-py's wrapped one), so its calls run suppressed.
    pool = redis.ConnectionPool.from_url(redis_server)

    def client() -> Any:
        return PrefixedStrictRedis(connection_pool=pool, global_keyprefix="otelkit-pfx:")

    quiet = patches._quiet_client(client())
    assert isinstance(quiet, PrefixedStrictRedis)
    quiet.set("a", "1")
    pipe = quiet.pipeline()
    pipe.set("b", "2")
    assert pipe.execute() == [True]
    assert traced_redis.get_finished_spans() == ()
    assert sorted(client().execute_command("KEYS", "otelkit-pfx:*")) == [b"otelkit-pfx:a", b"otelkit-pfx:b"]
    assert [span.name for span in traced_redis.get_finished_spans()] == ["KEYS"]  # the control: traced
