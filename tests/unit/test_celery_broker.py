"""celery.queue.length and celery.workers.online in one process: kombu's memory:// broker, in-memory providers.

The real-Redis cases (priority sub-queues, a broker that cannot be reached, the Prometheus view)
are in tests/e2e/test_celery_broker_e2e.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from celery import Celery

from otelkit import celery as otelkit_celery
from otelkit._runtime.celery.broker import BrokerObserver
from otelkit.settings import Settings
from otelkit.testing import InMemoryTelemetry


@pytest.fixture
def mem() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as telemetry:
        yield telemetry


def _app(name: str, queue: str) -> Celery:
    app = Celery(name, broker="memory://", set_as_current=False)
    app.conf.task_default_queue = queue
    return app


def test_publish_from_a_request_thread_reports_the_publishing_apps_queue(
    mem: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTELKIT_CELERY_PING_INTERVAL", "3600")
    assert otelkit_celery.install(meter_provider=mem.meter_provider)
    try:
        app = _app("shop", "unit-broker-orders")

        @app.task(name="unit_broker.order")
        def order() -> None:
            pass

        # A web framework publishes from a worker thread, where celery.current_app is Celery's
        # fallback app, not this one: the queue must still be read from this app's broker.
        publisher = threading.Thread(target=lambda: [order.apply_async() for _ in range(3)])
        publisher.start()
        publisher.join()
        # Apps that other tests of this process created (and left with a broker) may be reported too.
        points = [
            p
            for p in mem.metric_points("celery.queue.length")
            if p.attributes.get("messaging.destination.name") != "celery"
        ]
        assert [(p.attributes, p.value, p.unit) for p in points] == [
            (
                {"messaging.system": "celery", "messaging.destination.name": "unit-broker-orders"},
                3,
                "{message}",
            )
        ]
    finally:
        otelkit_celery.uninstall()


def test_observe_broker_reports_before_any_publish_and_can_be_turned_off(
    mem: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app("monitor", "unit-broker-idle")
    assert otelkit_celery.observe_broker(app) is False  # nothing installed yet
    monkeypatch.setenv("OTELKIT_CELERY_PING_INTERVAL", "3600")
    assert otelkit_celery.install(meter_provider=mem.meter_provider)
    try:
        assert otelkit_celery.observe_broker(app) is True
        assert [p.value for p in mem.metric_points("celery.queue.length")] == [0]
    finally:
        otelkit_celery.uninstall()
    monkeypatch.setenv("OTELKIT_CELERY_BROKER_METRICS", "false")
    with InMemoryTelemetry() as quiet:
        assert otelkit_celery.install(meter_provider=quiet.meter_provider)
        try:
            assert otelkit_celery.observe_broker(app) is False
            assert quiet.metric_points("celery.queue.length") == []
        finally:
            otelkit_celery.uninstall()


def test_watch_publisher_picks_the_app_that_owns_the_task(mem: InMemoryTelemetry) -> None:
    owner, other = _app("owner", "unit-broker-a"), _app("other", "unit-broker-b")

    # shared=False: Celery's default adds a task to every app finalized afterwards.
    @owner.task(name="unit_broker.owned", shared=False)
    def owned() -> None:
        pass

    owner.finalize()
    other.finalize()
    observer = BrokerObserver(mem.meter_provider, ping_interval=3600)
    try:
        observer.watch_publisher("unit_broker.owned")
        assert observer.watching() == [owner]
        # send_task by name, registered nowhere: every app with a broker configured.
        observer.watch_publisher("elsewhere.defined")
        assert set(map(id, observer.watching())) >= {id(owner), id(other)}
    finally:
        observer.close()


def test_broker_settings_are_read_from_the_environment() -> None:
    assert (Settings().celery_broker_metrics, Settings().celery_ping_interval) == (True, 30.0)
    settings = Settings.from_env({"OTELKIT_CELERY_BROKER_METRICS": "false", "OTELKIT_CELERY_PING_INTERVAL": "5"})
    assert (settings.celery_broker_metrics, settings.celery_ping_interval) == (False, 5.0)
    with pytest.raises(ValueError) as info:
        Settings.from_env({"OTELKIT_CELERY_PING_INTERVAL": "0"})
    assert str(info.value) == (
        "invalid OTELKIT_CELERY_PING_INTERVAL='0'; expected a number of seconds greater than 0 and at most 3600;"
        " fix or unset OTELKIT_CELERY_PING_INTERVAL"
    )
