"""Health checks that hang, raise anything, return junk, or carry secrets: the app stays up and says little."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from otelkit.health import CheckResult, Health, HealthStatus

DRIVER_ERROR = (
    'connection to server at "db-7.internal.example" (10.1.2.3), port 5432 failed: FATAL:  password'
    ' authentication failed for user "shop_admin" (sent Authorization: Bearer tok-8f2a9c)'
)


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()  # lets the hung check threads end


@pytest.fixture(autouse=True)
def no_health_env(monkeypatch):
    monkeypatch.delenv("OTELKIT_HEALTH_DETAILS", raising=False)
    monkeypatch.delenv("OTELKIT_HEALTH_TOKEN", raising=False)


def _client(health: Health) -> TestClient:
    app = FastAPI(version="3.1.4")
    app.include_router(health.router())
    return TestClient(app)


def _run(health: Health):
    return asyncio.run(health.run())


# --------------------------------------------------------------------------- bounded on their own


def test_health_hung_noncritical_checks_never_starve_a_critical_one(release):
    health = Health()
    for i in range(4):
        health.check(f"slow-{i}", lambda: release.wait(30), critical=False, timeout=0.2)
    health.check("db", lambda: None, timeout=0.5)  # instant
    client = _client(health)
    for _ in range(3):  # the hung threads are still there on the later probes
        response = client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == {"db": "healthy"}  # readiness runs critical checks only
    detail = client.get("/health").json()
    assert detail["checks"]["db"]["status"] == "healthy"
    assert {detail["checks"][f"slow-{i}"]["status"] for i in range(4)} == {"unhealthy"}


def test_health_many_hung_sync_checks_each_time_out_on_its_own(release):
    health = Health()
    for i in range(8):
        health.check(f"hung-{i}", lambda: release.wait(30), timeout=0.3)
    health.check("quick", lambda: None, timeout=0.3)
    report = _run(health)
    assert report.results["quick"].status is HealthStatus.HEALTHY
    assert {report.results[f"hung-{i}"].message for i in range(8)} == {"timed out after 0.3s"}


def test_health_probes_of_a_hung_check_leave_nothing_behind(release):
    """Every probe that times out forgets its wait: a check hung for days under a 10 s probe holds one thread
    and no pile of futures (each would keep its event loop referenced too)."""
    from types import SimpleNamespace

    from otelkit.health import run

    check = SimpleNamespace(func=lambda: release.wait(30), is_async=False, name="hung", inflight=None)

    async def probes() -> list[run.Outcome]:
        return [await run.call(check, 0.01) for _ in range(20)]

    assert asyncio.run(probes()) == [run.TIMED_OUT] * 20
    assert check.inflight._waiters == []  # one thread, no waiter left over
    release.set()


# --------------------------------------------------------------------------- any failure is a result


class Weird(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (SystemExit(3), "SystemExit: 3"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
        (asyncio.CancelledError(), "CancelledError"),
        (GeneratorExit(), "GeneratorExit"),
        (Weird(), "Weird"),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "CancelledError", "GeneratorExit", "unprintable"],
)
def test_health_sync_check_raising_anything_is_unhealthy(raised, message):
    health = Health(details=True)

    def check() -> None:
        raise raised

    health.check("db", check)
    response = _client(health).get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["db"] == {
        "status": "unhealthy",
        "critical": True,
        "latency_ms": response.json()["checks"]["db"]["latency_ms"],
        "message": message,
    }


@pytest.mark.parametrize(
    ("raised", "message"),
    [(SystemExit(3), "SystemExit: 3"), (asyncio.CancelledError(), "cancelled"), (Weird(), "Weird")],
    ids=["SystemExit", "CancelledError", "unprintable"],
)
def test_health_async_check_raising_anything_is_unhealthy(raised, message):
    health = Health(details=True)

    async def check() -> None:
        await asyncio.sleep(0)
        raise raised

    health.check("db", check)
    health.check("ok", lambda: None)
    response = _client(health).get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (checks["db"]["status"], checks["db"]["message"]) == ("unhealthy", message)
    assert checks["ok"]["status"] == "healthy"


def test_health_cancelled_task_inside_an_async_check_is_its_failure():
    health = Health(details=True)

    @health.check("worker")
    async def worker() -> None:
        task = asyncio.ensure_future(asyncio.sleep(10))
        task.cancel()
        await task

    assert _client(health).get("/health").json()["checks"]["worker"]["message"] == "cancelled"


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        (CheckResult("healthy"), "healthy", None),  # type: ignore[arg-type]
        (CheckResult("DEGRADED", "slow"), "degraded", "slow"),  # type: ignore[arg-type]
        (
            CheckResult("ok"),
            "unhealthy",
            "check returned an invalid status 'ok'; expected healthy, degraded or unhealthy",
        ),  # type: ignore[arg-type]
        (("degraded", "replica lag"), "degraded", "replica lag"),
        (
            ("fine", "x"),
            "unhealthy",
            "check returned an invalid status 'fine'; expected healthy, degraded or unhealthy",
        ),
        (CheckResult(HealthStatus.DEGRADED, 42), "degraded", "42"),  # type: ignore[arg-type]
    ],
)
def test_health_string_statuses_and_odd_messages(value, status, message):
    health = Health(details=True)
    health.check("x", lambda: value, critical=False)
    response = _client(health).get("/health")
    assert response.status_code == 200
    check = response.json()["checks"]["x"]
    assert check["status"] == status
    assert check.get("message") == message


def test_health_details_that_json_cannot_hold_are_served_as_text():
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    loop: dict[str, object] = {}
    loop["self"] = loop
    details = {
        "checked_at": dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc),
        "ratio": math.nan,
        "tags": {"b", "a"},
        "raw": b"\xff\x00",
        "thing": Thing(),
        1: "int key",
        "loop": loop,
        "password": "hunter2",
    }
    health = Health(details=True)
    health.check("x", lambda: CheckResult(HealthStatus.HEALTHY, details=details))
    response = _client(health).get("/health")
    assert response.status_code == 200
    served = response.json()["checks"]["x"]["details"]
    assert served["checked_at"] == "2026-12-01T12:00:00+00:00"
    assert served["ratio"] == "nan"
    assert served["tags"] == ["a", "b"]
    assert served["thing"] == "<Thing>"
    assert served["1"] == "int key"
    assert served["password"] == "[REDACTED]"
    assert "hunter2" not in response.text


# --------------------------------------------------------------------------- what anonymous callers see


def _failing_db() -> Health:
    health = Health()

    @health.check("db")
    def db() -> None:
        raise ConnectionError(DRIVER_ERROR)

    health.check("cache", lambda: None, critical=False)
    return health


def test_health_anonymous_callers_get_a_status_per_check_only():
    response = _client(_failing_db()).get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "checks": {"db": {"status": "unhealthy", "critical": True}, "cache": {"status": "healthy", "critical": False}},
    }
    for leak in ("db-7", "10.1.2.3", "shop_admin", "tok-8f2a9c", "3.1.4", "ConnectionError"):
        assert leak not in response.text


def test_health_details_for_everyone_when_configured(monkeypatch):
    monkeypatch.setenv("OTELKIT_HEALTH_DETAILS", "always")
    doc = _client(_failing_db()).get("/health").json()
    assert doc["version"] == "3.1.4"
    assert doc["checks"]["db"]["message"].startswith('ConnectionError: connection to server at "db-7.internal.example"')
    assert "tok-8f2a9c" not in doc["checks"]["db"]["message"]  # secrets stay redacted even then
    assert doc["checks"]["db"]["message"].endswith("(sent Authorization: [REDACTED])")


def test_health_details_for_callers_with_the_token(monkeypatch):
    monkeypatch.setenv("OTELKIT_HEALTH_TOKEN", "h3alth-t0ken-for-ops-0123456789")
    client = _client(_failing_db())
    assert "message" not in client.get("/health").json()["checks"]["db"]
    wrong = client.get("/health", headers={"Authorization": "Bearer nope"})
    assert "message" not in wrong.json()["checks"]["db"]
    right = client.get("/health", headers={"Authorization": "Bearer h3alth-t0ken-for-ops-0123456789"})
    assert right.json()["checks"]["db"]["message"].startswith("ConnectionError")


def test_health_details_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("OTELKIT_HEALTH_DETAILS", "always")
    health = _failing_db()
    health.details = lambda request: request.headers.get("x-internal") == "yes"
    client = _client(health)
    assert "message" not in client.get("/health").json()["checks"]["db"]
    assert "message" in client.get("/health", headers={"X-Internal": "yes"}).json()["checks"]["db"]


def test_health_bad_details_setting_is_one_line_and_summary(monkeypatch, caplog):
    monkeypatch.setenv("OTELKIT_HEALTH_DETAILS", "yes please")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        doc = _client(_failing_db()).get("/health").json()
    assert "message" not in doc["checks"]["db"]
    assert caplog.messages == [
        "otelkit: invalid OTELKIT_HEALTH_DETAILS='yes please'; expected one of: never, always;"
        " fix or unset OTELKIT_HEALTH_DETAILS; using its default"
    ]


def test_health_logged_failure_is_redacted(caplog):
    with caplog.at_level(logging.WARNING, logger="otelkit.health"):
        _client(_failing_db()).get("/health/ready")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "otelkit.health"]
    assert line.startswith("health check db is unhealthy: ConnectionError: connection to server")
    assert line.endswith("(sent Authorization: [REDACTED])")


def test_health_bad_token_is_one_line_that_never_echoes_it(monkeypatch, caplog):
    monkeypatch.setenv("OTELKIT_HEALTH_TOKEN", "short secret")
    with caplog.at_level(logging.ERROR, logger="otelkit"):
        client = _client(_failing_db())
        doc = client.get("/health", headers={"Authorization": "Bearer short secret"}).json()
    assert "message" not in doc["checks"]["db"]
    assert caplog.messages == [
        "otelkit: invalid OTELKIT_HEALTH_TOKEN (a value of 12 characters); expected 16 to 256 characters of"
        " A-Z a-z 0-9 - . _ ~ + / =; fix or unset OTELKIT_HEALTH_TOKEN; using its default"
    ]
