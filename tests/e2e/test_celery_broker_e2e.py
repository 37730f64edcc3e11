"""Celery backlog and liveness read from a real broker: ``celery.queue.length`` and ``celery.workers.online``.

In process first (an SDK reader collecting the gauges): every queue the app declares or routes to,
on Redis with its priority sub-queues and on RabbitMQ (passive ``queue.declare``, a queue the
broker does not know), and a broker that cannot be reached. Then the product's path: the
example app under the launcher publishes orders with no worker running; the backlog shows in a real
Prometheus query (app → collector → Prometheus) with no worker online; a worker starts and the
queue drains.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import BIN, REPO, app_env, start_app, wait_until
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from stackrun import start_stack_collector, start_stack_prometheus

from otelkit._runtime.celery.broker import BrokerObserver
from otelkit.local import procs as _procs

pytestmark = pytest.mark.e2e


def _database(redis_url: str, number: int) -> str:
    """The session Redis, another database: these tests leave messages behind on purpose."""
    return redis_url.rsplit("/", 1)[0] + f"/{number}"


def _gauges(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    found: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]  # type: ignore[attr-defined]
                found.setdefault(metric.name, []).extend(points)
    return found


@pytest.fixture
def celery_app(redis_server: str) -> Iterator[Any]:
    from celery import Celery
    from kombu import Queue

    app = Celery("broker-test", broker=_database(redis_server, 5), set_as_current=False)
    app.conf.task_queues = [Queue("celery"), Queue("bulk")]
    app.conf.broker_transport_options = {"priority_steps": list(range(10))}
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    yield app
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    app.close()


def test_queue_length_counts_priority_sub_queues_and_routed_queues(celery_app: Any) -> None:
    @celery_app.task(name="broker_test.work")
    def work() -> None:
        pass

    for _ in range(3):
        work.apply_async()
    for _ in range(2):
        work.apply_async(priority=7)  # kombu keeps these in the sub-queue "celery\x06\x167"
    work.apply_async(queue="emails")  # not declared: created for the route
    with celery_app.connection_for_write() as conn:
        keys = sorted(conn.default_channel.client.keys("celery*"))
    assert keys == [b"celery", b"celery\x06\x167"]

    reader = InMemoryMetricReader()
    observer = BrokerObserver(MeterProvider(metric_readers=[reader]), ping_interval=30, ping_timeout=0.2)
    try:
        observer.watch(celery_app)
        gauges = _gauges(reader)
        lengths = {a["messaging.destination.name"]: v for a, v in gauges["celery.queue.length"]}
        assert lengths == {"celery": 5, "bulk": 0, "emails": 1}
        assert {a["messaging.system"] for a, _ in gauges["celery.queue.length"]} == {"celery"}
        # Nobody consumes: no worker answers the ping.
        assert gauges["celery.workers.online"] == [({"messaging.system": "celery"}, 0)]
    finally:
        observer.close()


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's RabbitMQ on free 127.0.0.1 ports, its own epmd; yields the broker URL."""
    server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    epmd = shutil.which("epmd") or next(iter(sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))), None)
    if not server.exists() or epmd is None:
        pytest.fail(
            "rabbitmq-server not found; run the tests with ./scripts/test (it installs it) or"
            " `apt-get install -y --no-install-recommends rabbitmq-server`",
            pytrace=False,
        )
    base = tmp_path_factory.mktemp("rabbitmq")
    node, dist, mapper = _procs.free_port(), _procs.free_port(), _procs.free_port()
    (base / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(base),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(mapper),
        "RABBITMQ_NODENAME": "otelkit-test@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(node),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
    }
    with _procs.ProcessGroup(base / "procs") as group:
        # epmd in the foreground, in the group: RabbitMQ would otherwise start one as a daemon
        # that outlives the test.
        group.start("epmd", [epmd, "-address", "127.0.0.1", "-port", str(mapper)], env=env).wait_port(
            mapper, timeout=30
        )
        group.start("rabbitmq", [str(server)], env=env).wait_port(node, timeout=120)
        yield f"amqp://guest:guest@127.0.0.1:{node}//"


def test_queue_length_from_rabbitmq_through_a_passive_declare(rabbitmq: str) -> None:
    from celery import Celery
    from kombu import Queue

    app = Celery("rabbit-test", broker=rabbitmq, set_as_current=False)
    app.conf.task_queues = [Queue("celery"), Queue("bulk")]

    @app.task(name="broker_test.rabbit", shared=False)
    def work() -> None:
        pass

    for _ in range(3):
        work.apply_async()
    work.apply_async(queue="emails")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete("bulk")  # declared by the app, unknown to the broker
    reader = InMemoryMetricReader()
    observer = BrokerObserver(MeterProvider(metric_readers=[reader]), ping_interval=30, ping_timeout=0.2)
    try:
        observer.watch(app)
        for _ in range(2):  # RabbitMQ closes the channel on the unknown queue: the next read reopens it
            lengths = {a["messaging.destination.name"]: v for a, v in _gauges(reader)["celery.queue.length"]}
            assert lengths == {"celery": 3, "bulk": 0, "emails": 1}
    finally:
        observer.close()
        app.close()


def test_unreachable_broker_leaves_a_gap_and_warns_once(celery_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    from celery import Celery

    port = _procs.free_port()
    dead = Celery("dead", broker=f"redis://:s3cret@127.0.0.1:{port}/0", set_as_current=False)
    reader = InMemoryMetricReader()
    observer = BrokerObserver(MeterProvider(metric_readers=[reader]), ping_interval=0.01, ping_timeout=0.2)
    try:
        observer.watch(dead)
        observer.watch(celery_app)
        with caplog.at_level(logging.DEBUG, logger="otelkit"):
            first = _gauges(reader)
            time.sleep(0.05)
            second = _gauges(reader)
        for gauges in (first, second):
            # The live broker is reported, the dead one is absent: a gap, never a false zero.
            assert [a["messaging.destination.name"] for a, _ in gauges["celery.queue.length"]] == ["bulk", "celery"]
            assert len(gauges["celery.workers.online"]) == 1
        # Once each at WARNING (queue lengths, ping), the password masked; later failures at DEBUG.
        warnings = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        refused = f"Error 111 connecting to 127.0.0.1:{port}. Connection refused."
        where = f"the Celery broker redis://:**@127.0.0.1:{port}/0"
        assert warnings == [
            f"otelkit: reading queue lengths from {where} failed: {refused}",
            f"otelkit: reading the workers' ping from {where} failed: {refused}",
        ]
        assert all("s3cret" not in r.getMessage() for r in caplog.records)
    finally:
        observer.close()
        dead.close()


# --- the product's path --------------------------------------------------------------------------


def _value(prom: str, expr: str) -> float | None:
    result = _procs.prometheus_query(prom, expr)
    return float(result[0]["value"][1]) if result else None


def test_backlog_without_workers_shows_in_prometheus_then_drains(
    otelcol_bin: Path, prometheus_bin: Path, redis_server: str, procs: _procs.ProcessGroup
) -> None:
    broker = _database(redis_server, 6)
    import redis

    redis.Redis.from_url(broker).flushdb()
    collector = start_stack_collector(procs, otelcol_bin)
    prom = start_stack_prometheus(procs, prometheus_bin, collector)

    env = {
        "OTELKIT_EXAMPLE_BROKER": broker,
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTELKIT_CELERY_PING_INTERVAL": "1",
    }
    endpoint = collector.otlp_http
    _, base = start_app(procs, app_env(endpoint, OTEL_SERVICE_NAME="example-api", **env))

    # Five orders and no worker: they wait in Redis.
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
        assert [client.post(f"/orders/{n}").status_code for n in range(1, 6)] == [202] * 5
    length = 'max(celery_queue_length{service_name="example-api", messaging_destination_name="celery"})'
    online = 'max(celery_workers_online{service_name="example-api"})'
    wait_until(lambda: _value(prom, length) == 5, timeout=60, what="a backlog of 5 in Prometheus")
    wait_until(lambda: _value(prom, online) == 0, timeout=30, what="no worker online in Prometheus")

    # A worker starts: it answers the ping and the queue drains.
    worker_env = app_env(endpoint, OTEL_SERVICE_NAME="example-worker", **env)
    worker = [str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", "example.tasks", "worker"]
    procs.start("worker", [*worker, "--pool", "solo", "-l", "INFO"], env=worker_env, cwd=REPO)
    wait_until(lambda: _value(prom, online) == 1, timeout=90, what="one worker online in Prometheus")
    wait_until(lambda: _value(prom, length) == 0, timeout=60, what="the backlog drained in Prometheus")
    done = 'sum(celery_task_completed_total{service_name="example-worker", celery_task_state="success"})'
    wait_until(lambda: _value(prom, done) == 5, timeout=60, what="the five orders processed")
