"""Hostile and careless input against a real app process (issue 17, the in-process half).

Secrets never reach a real OTLP receiver nor the console; junk ``OTEL_*`` values never stop the app
nor switch a signal off; health checks that hang or raise ``SystemExit`` never take uvicorn down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import opentelemetry.environment_variables as api_env
import opentelemetry.sdk.environment_variables as sdk_env
import pytest
from launch import BIN, REPO, app_env, start_app, wait_until

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-Tok3n-e2e_77"

APP = '''
"""An app that logs what careless code logs, with a health check whose driver error names everything."""
import logging
import os
import threading

from fastapi import FastAPI

from otelkit.health import health  # importing it failed with OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=-1

log = logging.getLogger("hostile.app")
SECRET = os.environ.get("E2E_SECRET", "")
app = FastAPI(version="7.7.7")


def db():
    raise ConnectionError(
        f'connection to server at "db-7.internal" (10.1.2.3), port 5432 failed: FATAL: password authentication'
        f' failed for user "shop_admin" (Authorization: Bearer {SECRET})'
    )


health.check("db", db, critical=False)
if os.environ.get("E2E_HANG"):
    health.check("hang", lambda: threading.Event().wait(), timeout=0.5)  # a sync check that never returns
if os.environ.get("E2E_EXIT"):
    def leave():
        raise SystemExit(3)

    health.check("exit", leave, critical=False)
app.include_router(health.router())


@app.get("/items")
async def items():
    log.info("listing items")
    return []


@app.get("/login")
async def login():
    log.info(f"calling upstream with Authorization: Bearer {SECRET}", extra={"items": [{"password": SECRET}]})
    return {}


@app.get("/fail")
async def fail():
    try:
        raise ConnectionError(f"upstream refused token={SECRET}")
    except ConnectionError:
        log.exception("upstream failed")
    return {}
'''


@pytest.fixture
def procs():
    with _procs.ProcessGroup() as group:
        yield group


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "hostile_app.py").write_text(APP)
    return tmp_path


def _env(rx: OTLPReceiver, app_dir: Path, **extra: str) -> dict[str, str]:
    env = app_env(rx.endpoint, **{"OTEL_SERVICE_NAME": "hostile", "E2E_SECRET": SECRET, **extra})
    env["PYTHONPATH"] = f"{app_dir}{os.pathsep}{REPO}"
    return env


def _stop(proc: _procs.ManagedProcess, sig: int = signal.SIGINT, timeout: float = 30) -> int:
    proc.signal(sig)
    assert proc.popen is not None
    return proc.popen.wait(timeout=timeout)


# --------------------------------------------------------------------------- secrets


def test_secrets_reach_neither_the_receiver_nor_the_console_nor_anonymous_health_callers(procs, app_dir):
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, _env(rx, app_dir), app="hostile_app:app", launcher="otelkit-instrument")
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{base}/items?token={SECRET}&api_key={SECRET}&page=2").status_code == 200
            assert client.get(f"{base}/items?a=1;token={SECRET}").status_code == 200
            assert client.get(f"{base}/login").status_code == 200
            assert client.get(f"{base}/fail").status_code == 200
            health = client.get(f"{base}/health")
        assert _stop(proc) == 0
        rx.wait_for(lambda r: r.logs_with(body_contains="upstream failed"), timeout=20)
        received = repr(rx.spans) + repr(rx.logs)
    console = proc.log_text()
    assert SECRET not in received
    assert SECRET not in console
    # What arrived is still useful: the query minus its secrets, the message minus the credential.
    access = [log.body for log in rx.logs if log.scope_name == "uvicorn.access"]
    assert any("/items?token=[REDACTED]&api_key=[REDACTED]&page=2" in body for body in access), access
    assert any("/items?a=1;token=[REDACTED]" in body for body in access), access
    assert rx.logs_with(body_contains="calling upstream with Authorization: [REDACTED]")
    assert "/items?token=[REDACTED]&api_key=[REDACTED]&page=2" in console
    assert "Authorization: [REDACTED]" in console
    (failed,) = rx.logs_with(body_contains="upstream failed")
    assert failed.attributes["exception.message"] == "upstream refused token=[REDACTED]"
    # Anonymous callers learn the status of each check, nothing of hosts, addresses, users or versions.
    assert health.status_code == 200
    assert health.json() == {"status": "degraded", "checks": {"db": {"status": "unhealthy", "critical": False}}}


CELERY_TASKS = """
import os
from celery import Celery

app = Celery("hostile_tasks", broker=os.environ["E2E_BROKER"], backend=os.environ["E2E_BROKER"])
app.conf.update(broker_connection_retry_on_startup=True, task_default_queue=os.environ["E2E_QUEUE"])


@app.task(name="hostile.charge")
def charge(email, card, password=None):
    return "charged"
"""


def test_celery_task_arguments_are_redacted_in_celery_own_records(procs, tmp_path, redis_server):
    (tmp_path / "hostile_tasks.py").write_text(CELERY_TASKS)
    card, email, password = "4111111111111111", "ana.secret@example.com", "hunter2-e2e"
    with OTLPReceiver() as rx:
        env = app_env(rx.endpoint, OTEL_SERVICE_NAME="hostile-worker", E2E_BROKER=redis_server)
        env.update(PYTHONPATH=str(tmp_path), E2E_QUEUE=f"hostile-{os.getpid()}-{time.monotonic_ns()}")
        argv = [str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", "hostile_tasks", "worker"]
        worker = procs.start(
            "worker",
            [*argv, "-l", "INFO", "--pool", "solo", "--without-mingle", "--without-gossip"],
            env=env,
            cwd=tmp_path,
        )
        producer = (
            "import sys; from hostile_tasks import charge;"
            f" print(charge.delay({email!r}, {card!r}, password={password!r}).get(timeout=60))"
        )
        out = subprocess.run(
            [sys.executable, "-c", producer], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert out.stdout.strip() == "charged", out.stderr
        rx.wait_for(lambda r: r.logs_with(body_contains="succeeded"), timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.popen is not None
        worker.popen.wait(timeout=60)
        received = repr(rx.logs)
    celery_records = [log for log in rx.logs if log.scope_name.startswith("celery") and "data" in log.attributes]
    assert {log.body.split("]")[-1].strip().split(" ")[0] for log in celery_records} >= {"received", "succeeded"}
    for log in celery_records:
        assert log.attributes["data"]["args"] == "[REDACTED]"
        assert log.attributes["data"]["kwargs"] == "[REDACTED]"
    for leak in (card, email, password):
        assert leak not in received
        assert leak not in worker.log_text()


# --------------------------------------------------------------------------- junk OTEL_* values


def _traffic_and_stop(proc: _procs.ManagedProcess, base: str) -> int:
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            assert client.get(f"{base}/items").status_code == 200
    return _stop(proc)


def _all_three_arrived(rx: OTLPReceiver) -> bool:
    return bool(
        rx.spans_named("GET /items")
        and rx.metric_points("http.server.request.duration")
        and rx.logs_with(body_contains="listing items")
    )


@pytest.mark.parametrize("launcher", ["opentelemetry-instrument", "otelkit-instrument"])
def test_junk_batch_and_limit_values_are_one_line_each_and_every_signal_arrives(procs, app_dir, launcher):
    junk = {
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "-1",  # made `import otelkit.health` raise: no server at all
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0",  # disabled all three signals
        "OTEL_BLRP_SCHEDULE_DELAY": "-5",
        "OTEL_METRIC_EXPORT_INTERVAL": "0",
    }
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, _env(rx, app_dir, **junk), app="hostile_app:app", launcher=launcher)
        assert _traffic_and_stop(proc, base) == 0
        wait_until(lambda: _all_three_arrived(rx), timeout=20, what=rx.summary())
    output = proc.log_text()
    assert "Traceback" not in output
    for var, value in junk.items():
        lines = [line for line in output.splitlines() if f"invalid {var}={value!r}" in line]
        assert len(lines) == 1, output
        assert f"fix or unset {var}" in lines[0]


def _junk_everywhere(junk: str, launcher: str) -> dict[str, str]:
    names = {v for m in (sdk_env, api_env) for k, v in vars(m).items() if k.startswith("OTEL_") and isinstance(v, str)}
    from otelkit._runtime import envcheck as _envcheck

    names |= _envcheck.CHECKED | _envcheck.READ_BY_OTELKIT
    # Regexes and instrumentation names mean what they say (an excluded-URL regex "0" excludes URLs with a 0).
    names -= {
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",  # where the receiver is: junk in the per-signal ones falls back to it
    }
    if launcher == "opentelemetry-instrument":
        # The stock launcher imports opentelemetry.propagate and opentelemetry.context itself, before any
        # otelkit code runs: an unknown propagator stops it there, an unknown context is an SDK traceback
        # (otelkit-instrument and otelkit.configure() drop both with one line).
        names -= {"OTEL_PROPAGATORS", "OTEL_PYTHON_CONTEXT"}
    return dict.fromkeys(sorted(names), junk)


@pytest.mark.parametrize(
    "junk", ["-1", "0", "abc", "1e400", "", "9" * 400], ids=["-1", "0", "abc", "1e400", "empty", "huge"]
)
@pytest.mark.parametrize("launcher", ["otelkit-instrument", "opentelemetry-instrument"])
def test_junk_in_every_otel_variable_at_once_and_the_app_still_sends_everything(procs, app_dir, junk, launcher):
    with OTLPReceiver() as rx:
        env = _env(rx, app_dir, **_junk_everywhere(junk, launcher))
        proc, base = start_app(procs, env, app="hostile_app:app", launcher=launcher)
        assert _traffic_and_stop(proc, base) == 0
        wait_until(lambda: _all_three_arrived(rx), timeout=30, what=rx.summary())
    assert "Traceback" not in proc.log_text()


# --------------------------------------------------------------------------- health checks


def test_health_check_raising_systemexit_leaves_uvicorn_running(procs, app_dir):
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, _env(rx, app_dir, E2E_EXIT="1"), app="hostile_app:app", launcher=None)
        with httpx.Client(timeout=10) as client:
            for _ in range(2):
                response = client.get(f"{base}/health")
                assert response.status_code == 200
                assert response.json()["checks"]["exit"] == {"status": "unhealthy", "critical": False}
            time.sleep(0.5)
            assert proc.running, proc.log_tail()
            assert client.get(f"{base}/items").status_code == 200
        assert _stop(proc) == 0


def test_ctrl_c_stops_the_app_while_a_sync_check_hangs(procs, app_dir):
    with OTLPReceiver() as rx:
        proc, base = start_app(procs, _env(rx, app_dir, E2E_HANG="1"), app="hostile_app:app", launcher=None)
        with httpx.Client(timeout=10) as client:
            started = time.monotonic()
            response = client.get(f"{base}/health/ready")
            assert time.monotonic() - started < 5
            assert response.status_code == 503
            assert response.json()["failing"] == ["hang"]
        assert _stop(proc, signal.SIGINT, timeout=20) == 0
