from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import threading
from collections import namedtuple

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelkit._runtime.env import DEFAULT_EXCLUDED_URLS
from otelkit._runtime.http import asgi as _asgi
from otelkit.health import (
    CheckResult,
    Health,
    HealthStatus,
    celery_workers_check,
    dbapi_check,
    disk_space_check,
    memory_check,
    redis_check,
    sqlalchemy_check,
)


def _client(health: Health, version: str = "1.2.3") -> TestClient:
    app = FastAPI(version=version)
    app.include_router(health.router())
    return TestClient(app)


def _run(health: Health):
    return asyncio.run(health.run())


def test_health_live_runs_no_check():
    health = Health()
    calls = []

    @health.check("db")
    def db() -> None:
        calls.append(1)
        raise RuntimeError("down")

    response = _client(health).get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert calls == []


def test_health_ready_is_200_when_all_checks_pass():
    health = Health()
    health.check("a", lambda: None)

    @health.check("b")
    async def b() -> HealthStatus:
        return HealthStatus.HEALTHY

    response = _client(health).get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"a": "healthy", "b": "healthy"}}
    assert response.headers["cache-control"] == "no-store"


def test_health_ready_is_503_naming_failing_critical_checks():
    health = Health()
    health.check("redis", lambda: False)
    health.check("db", lambda: 1 / 0)
    health.check("disk", lambda: None)
    response = _client(health).get("/health/ready")
    assert response.status_code == 503
    doc = response.json()
    assert doc["status"] == "not_ready"
    assert doc["failing"] == ["redis", "db"]
    assert doc["checks"] == {"redis": "unhealthy", "db": "unhealthy", "disk": "healthy"}
    assert "ZeroDivisionError" not in response.text  # messages only in /health


def test_health_noncritical_failure_keeps_ready_and_degrades_detail():
    health = Health()
    health.check("cache", lambda: False, critical=False)
    health.check("db", lambda: None)
    client = _client(health)
    assert client.get("/health/ready").status_code == 200
    detail = client.get("/health")
    assert detail.status_code == 200
    assert detail.json()["status"] == "degraded"
    assert detail.json()["checks"]["cache"]["critical"] is False


def test_health_detail_has_version_uptime_and_per_check_latency():
    health = Health(details=True)
    health.check("db", lambda: CheckResult(HealthStatus.HEALTHY, details={"pool": 3}))
    response = _client(health, version="9.9.9").get("/health")
    assert response.status_code == 200
    doc = response.json()
    assert doc["status"] == "healthy"
    assert doc["version"] == "9.9.9"
    assert doc["uptime_seconds"] >= 0
    check = doc["checks"]["db"]
    assert check["status"] == "healthy"
    assert check["critical"] is True
    assert check["latency_ms"] >= 0
    assert check["details"] == {"pool": 3}


def test_health_detail_version_argument_wins_and_unhealthy_is_503():
    health = Health(version="2.0.0", details=True)
    health.check("db", lambda: False)
    response = _client(health, version="1.0.0").get("/health")
    assert response.status_code == 503
    assert response.json()["version"] == "2.0.0"
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["db"]["message"] == "check returned False"


def test_health_error_messages_leak_no_secrets():
    health = Health(details=True)

    @health.check("db")
    def db() -> None:
        raise ConnectionError("cannot reach postgresql://app:hunter2@db.internal:5432/shop password=hunter2")

    response = _client(health).get("/health")
    message = response.json()["checks"]["db"]["message"]
    assert "hunter2" not in response.text
    assert message == "ConnectionError: cannot reach postgresql://[REDACTED]@db.internal:5432/shop password=[REDACTED]"


def test_health_check_return_forms():
    health = Health()
    health.check("none", lambda: None)
    health.check("true", lambda: True)
    health.check("degraded", lambda: HealthStatus.DEGRADED)
    health.check("pair", lambda: (HealthStatus.UNHEALTHY, "queue full"))
    health.check("string", lambda: "degraded")
    health.check("junk", lambda: 42)
    results = _run(health).results
    assert results["none"].status is HealthStatus.HEALTHY
    assert results["true"].status is HealthStatus.HEALTHY
    assert results["degraded"].status is HealthStatus.DEGRADED
    assert (results["pair"].status, results["pair"].message) == (HealthStatus.UNHEALTHY, "queue full")
    assert results["string"].status is HealthStatus.DEGRADED
    assert results["junk"].status is HealthStatus.UNHEALTHY
    assert results["junk"].message == (
        "check returned int; expected None, a bool, a HealthStatus, a (HealthStatus, message) pair or a CheckResult"
    )


def test_health_async_check_timeout_is_unhealthy():
    health = Health()

    @health.check("slow", timeout=0.05)
    async def slow() -> None:
        await asyncio.Event().wait()

    result = _run(health).results["slow"]
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == "timed out after 0.05s"


def test_health_hung_sync_check_times_out_and_is_not_started_twice():
    health = Health()
    release = threading.Event()
    calls = []

    def hung() -> None:
        calls.append(1)
        release.wait(30)

    health.check("hung", hung, timeout=0.05)
    try:
        first = _run(health).results["hung"]
        second = _run(health).results["hung"]
    finally:
        release.set()
    assert first.status is HealthStatus.UNHEALTHY
    assert second.message == "timed out after 0.05s"
    assert calls == [1]


def test_health_checks_run_concurrently():
    health = Health()
    state: dict[str, asyncio.Event] = {}

    async def meet(mine: str, other: str) -> None:
        state.setdefault(mine, asyncio.Event()).set()
        await state.setdefault(other, asyncio.Event()).wait()

    # Each check finishes only once the other has started: run one after the other, both time out.
    health.check("a", lambda: meet("a", "b"), timeout=5)
    health.check("b", lambda: meet("b", "a"), timeout=5)

    async def run():
        state.clear()
        return await health.run()

    report = asyncio.run(run())
    assert report.status is HealthStatus.HEALTHY


def test_health_checks_run_with_instrumentation_suppressed():
    health = Health()
    seen = {}
    key = otel_context._SUPPRESS_INSTRUMENTATION_KEY

    def sync_check() -> None:
        seen["sync"] = otel_context.get_value(key)

    async def async_check() -> None:
        seen["async"] = otel_context.get_value(key)

    health.check("sync", sync_check)
    health.check("async", async_check)
    _run(health)
    assert seen == {"sync": True, "async": True}
    assert otel_context.get_value(key) is None


def test_health_state_changes_are_logged_once(caplog):
    health = Health()
    state = {"ok": False}
    health.check("db", lambda: state["ok"])
    with caplog.at_level(logging.INFO, logger="otelkit.health"):
        _run(health)
        _run(health)
        state["ok"] = True
        _run(health)
        _run(health)
    messages = [r.getMessage() for r in caplog.records if r.name == "otelkit.health"]
    assert messages == ["health check db is unhealthy: check returned False", "health check db is healthy again"]


def test_health_registration_errors():
    health = Health()
    health.check("redis", lambda: None)
    with pytest.raises(ValueError) as exc:
        health.check("redis", lambda: None)
    assert (
        str(exc.value)
        == "health check 'redis' is already registered; choose another name or call remove('redis') first"
    )
    with pytest.raises(ValueError) as exc:
        health.check("", lambda: None)
    assert str(exc.value) == "invalid health check name '': expected a non-empty string such as 'redis'"
    with pytest.raises(ValueError) as exc:
        health.check("db", lambda: None, timeout=0)
    assert str(exc.value) == "invalid timeout 0 for health check 'db': expected seconds > 0"
    health.remove("redis")
    assert health.names == []


def test_health_decorator_returns_the_function():
    health = Health()

    @health.check("x", critical=False)
    def x() -> None:
        return None

    assert x() is None
    assert health.names == ["x"]


def test_health_routes_are_excluded_from_traces_and_metrics():
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    inst = _asgi.HTTPInstrumentation(
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        excluded_urls=DEFAULT_EXCLUDED_URLS,
    )
    _asgi.instrument_fastapi(inst)
    try:
        health = Health()
        health.check("db", lambda: None)
        app = FastAPI()
        app.include_router(health.router())

        @app.get("/orders")
        async def orders() -> list:
            return []

        client = TestClient(app)
        for path in ("/health", "/health/live", "/health/ready", "/health/ready?verbose=1"):
            assert client.get(path).status_code == 200
            assert "x-request-id" not in client.get(path).headers
        assert spans.get_finished_spans() == ()
        assert reader.get_metrics_data() is None or not any(
            m.data.data_points
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "http.server.request.duration"
        )
        client.get("/orders")
        assert [s.name for s in spans.get_finished_spans()] == ["GET /orders"]
    finally:
        _asgi.uninstrument_fastapi()


# --- ready-made checks ---------------------------------------------------------------------------


class _SyncRedis:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def execute_command(self, *args):
        raise NotImplementedError

    def ping(self) -> bool:
        if self.fail:
            raise ConnectionError("Error 111 connecting to redis://:s3cret@cache:6379. Connection refused.")
        return True


class _AsyncRedis:
    pinged = 0

    async def execute_command(self, *args):
        raise NotImplementedError

    async def ping(self) -> bool:
        self.pinged += 1
        return True


def test_redis_check_with_sync_and_async_clients():
    health = Health()
    async_client = _AsyncRedis()
    health.check("sync", redis_check(_SyncRedis()))
    health.check("async", redis_check(async_client))
    health.check("down", redis_check(_SyncRedis(fail=True)))
    results = _run(health).results
    assert results["sync"].status is HealthStatus.HEALTHY
    assert results["async"].status is HealthStatus.HEALTHY
    assert async_client.pinged == 1
    assert results["down"].status is HealthStatus.UNHEALTHY
    assert "s3cret" not in results["down"].message


def test_redis_check_url_unreachable_is_unhealthy_without_password():
    health = Health()
    health.check("redis", redis_check("redis://:s3cret@127.0.0.1:1/0"))
    result = _run(health).results["redis"]
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message.startswith("ConnectionError")
    assert "s3cret" not in result.message


@pytest.mark.e2e
def test_redis_check_against_a_real_server(redis_server):
    import redis.asyncio

    async def run():
        client = redis.asyncio.Redis.from_url(redis_server)
        health = Health()
        health.check("url", redis_check(redis_server))
        health.check("async", redis_check(client))
        try:
            return await health.run()
        finally:
            await client.aclose()

    report = asyncio.run(run())
    assert {n: r.status for n, r in report.results.items()} == {
        "url": HealthStatus.HEALTHY,
        "async": HealthStatus.HEALTHY,
    }


def test_sqlalchemy_check_sqlite_ok_and_bad_query_fails(tmp_path):
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    health = Health()
    health.check("db", sqlalchemy_check(engine))
    health.check("bad", sqlalchemy_check(engine, query="SELECT * FROM nowhere"))
    results = _run(health).results
    assert results["db"].status is HealthStatus.HEALTHY
    assert results["bad"].status is HealthStatus.UNHEALTHY
    assert results["bad"].message == "OperationalError: (sqlite3.OperationalError) no such table: nowhere"
    engine.dispose()


def test_sqlalchemy_check_async_engine_is_awaited():
    executed = []

    class _Conn:
        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        async def execute(self, statement):
            executed.append(str(statement))

    class _AsyncEngine:
        sync_engine = object()

        def connect(self):
            return _Conn()

    health = Health()
    health.check("db", sqlalchemy_check(_AsyncEngine()))
    assert _run(health).results["db"].status is HealthStatus.HEALTHY
    assert executed == ["SELECT 1"]


def test_dbapi_check_runs_query_and_reports_connect_errors():
    def refused():
        raise OSError("connection refused to mysql://root:toor@db")

    health = Health()
    health.check("sqlite", dbapi_check(lambda: sqlite3.connect(":memory:", check_same_thread=False)))
    health.check("down", dbapi_check(refused))
    results = _run(health).results
    assert results["sqlite"].status is HealthStatus.HEALTHY
    assert results["down"].status is HealthStatus.UNHEALTHY
    assert "toor" not in results["down"].message


def test_celery_workers_check_counts_replies():
    class _Control:
        def __init__(self, replies):
            self.replies = replies
            self.calls = []

        def ping(self, timeout, limit):
            self.calls.append((timeout, limit))
            return self.replies

    class _App:
        def __init__(self, replies):
            self.control = _Control(replies)

    up, down = _App([{"celery@host-1": {"ok": "pong"}}]), _App([])
    health = Health()
    health.check("up", celery_workers_check(up))
    health.check("down", celery_workers_check(down, min_workers=2, timeout=0.5))
    results = _run(health).results
    assert results["up"].status is HealthStatus.HEALTHY
    assert results["up"].details == {"workers": 1}
    assert "host-1" not in str(results["up"].as_dict())
    assert results["down"].status is HealthStatus.UNHEALTHY
    assert results["down"].message == "0 Celery worker(s) answered within 0.5s; expected at least 2"
    assert down.control.calls == [(0.5, 2)]


def test_disk_space_check_thresholds(monkeypatch):
    usage = namedtuple("usage", "total used free")
    import otelkit.health.checks as health_module

    free = {"value": 50}
    monkeypatch.setattr(health_module.shutil, "disk_usage", lambda path: usage(100, 100 - free["value"], free["value"]))
    check = disk_space_check("/data")
    assert check().status is HealthStatus.HEALTHY
    free["value"] = 10
    assert check().status is HealthStatus.DEGRADED
    free["value"] = 2
    result = check()
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == "2.0% free, below 5%"
    assert result.details == {"free_bytes": 2, "total_bytes": 100, "free_percent": 2.0}
    free["value"] = 50
    assert disk_space_check(min_free_bytes=60)().message == "50 bytes free, below 60"


def test_disk_space_check_on_a_real_path(tmp_path):
    result = disk_space_check(str(tmp_path), min_free_percent=None, degraded_free_percent=None)()
    assert result.status is HealthStatus.HEALTHY
    assert result.details["total_bytes"] > 0


def test_memory_check_uses_cgroup_working_set(tmp_path):
    (tmp_path / "memory.max").write_text("1000\n")
    (tmp_path / "memory.current").write_text("950\n")
    (tmp_path / "memory.stat").write_text("anon 100\ninactive_file 100\n")
    result = memory_check(80, cgroup_root=str(tmp_path))()
    assert result.status is HealthStatus.UNHEALTHY
    assert result.message == "85.0% of container limit memory in use, above 80%"
    assert memory_check(90, cgroup_root=str(tmp_path))().status is HealthStatus.HEALTHY


def test_memory_check_without_limit_uses_psutil(tmp_path):
    (tmp_path / "memory.max").write_text("max\n")
    result = memory_check(100.0, cgroup_root=str(tmp_path))()
    assert result.status is HealthStatus.HEALTHY
    assert result.details["of"] == "system"


def test_memory_check_without_psutil_is_degraded_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)
    result = memory_check(cgroup_root=str(tmp_path / "none"))()
    assert result.status is HealthStatus.DEGRADED
    assert result.message == (
        "memory not checked: no cgroup memory limit and psutil is not installed; pip install 'otelkit[system]'"
    )
