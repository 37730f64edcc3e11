"""A real-looking FastAPI + Celery app (tests/e2e/apps/realapp) under both launchers (issue 18).

The app was written as projects are, not for otelkit: its own ``dictConfig`` at import, routers
under a prefix, socket.io mounted at ``/ws``, a websocket, a listener task started by a request,
an ``after_setup_logger`` receiver, chains, retries, ETA tasks, several queues. Web server and
worker run as real processes against Redis and an OTLP receiver; no ``OTEL_SERVICE_NAME`` is set.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import LAUNCHERS, wait_until

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver

pytestmark = pytest.mark.e2e

APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent
QUICK = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}


def _env(rx: OTLPReceiver, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelkit",
        OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
        PYTHONPATH=str(APPS),
        PYTHONUNBUFFERED="1",
        **QUICK,
        **extra,
    )
    return env


def _stop(proc: _procs.ManagedProcess) -> None:
    assert proc.popen is not None
    proc.check_running()
    proc.popen.send_signal(signal.SIGTERM)
    proc.popen.wait(60)


def _start_web(procs: _procs.ProcessGroup, launcher: str, env: dict[str, str]) -> tuple[_procs.ManagedProcess, str]:
    port = _procs.free_port()
    argv = [str(BIN / launcher), str(BIN / "uvicorn"), "realapp.main:app", "--host", "127.0.0.1", "--port", str(port)]
    web = procs.start("web", argv, env=env, cwd=APPS)
    base = f"http://127.0.0.1:{port}"
    web.wait_http_ready(f"{base}/health/live", timeout=60)
    return web, base


def _chat(base: str) -> str:
    from simple_websocket import Client

    ws = Client.connect(base.replace("http://", "ws://") + "/chat")
    try:
        ws.send("hello")
        return str(ws.receive(timeout=10))
    finally:
        ws.close()


def _traffic(base: str) -> None:
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        assert client.get("/api/v1/items/3").status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/ws/socket.io/", params={"EIO": "4", "transport": "polling"}).status_code == 200
        assert client.get("/nowhere").status_code == 404
        assert client.get("/health/ready").status_code == 200
        assert client.post("/api/v1/orders/7", headers={"X-Request-ID": "order-7"}).status_code == 200
        assert client.get("/api/v1/listen", headers={"X-Request-ID": "listen-1"}).status_code == 200
        assert client.get("/api/v1/crash", headers={"X-Request-ID": "crash-1"}).status_code == 500
    assert _chat(base) == "hello"


def _runs(rx: OTLPReceiver) -> Counter[str]:
    return Counter(s.name for s in rx.spans if s.name.startswith("run/"))


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_realapp_under_the_launcher(
    launcher: str, tmp_path: Path, redis_server: str, procs: _procs.ProcessGroup
) -> None:
    celery_log = tmp_path / "celery.log"
    with OTLPReceiver() as rx:
        env = _env(rx, REALAPP_BROKER=redis_server, REALAPP_CELERY_LOG=str(celery_log))
        worker_argv = [str(BIN / launcher), str(BIN / "celery"), "-A", "realapp.celery_app", "worker", "-l", "INFO"]
        worker_argv += ["-Q", "default,retries,later", "-c", "2", "--without-mingle", "--without-gossip"]
        worker = procs.start("worker", worker_argv, env=env, cwd=APPS)
        web, base = _start_web(procs, launcher, env)
        _traffic(base)

        expected_runs = {"run/realapp.tasks.add": 2, "run/realapp.tasks.flaky": 2, "run/realapp.tasks.remind": 1}
        wait_until(lambda: _runs(rx) == Counter(expected_runs), timeout=60, what=f"task runs {expected_runs}")
        wait_until(lambda: len(rx.logs_with(body_contains="listener tick")) == 3, timeout=30, what="listener ticks")
        _stop(web)
        _stop(worker)
        wait_until(lambda: rx.metric_points("celery.task.duration"), timeout=15, what="the worker's last metrics")
        web_log, worker_log = web.log_text(), worker.log_text()

    # 7. Service names derived from the commands.
    services = {s.service_name for s in rx.spans}
    assert {"realapp", "realapp-worker"} <= services, services

    # 4. Every request is named: mounts, docs, the prefixed router; the 404 alone is "GET".
    web_spans = [s for s in rx.spans if s.service_name == "realapp" and s.kind == "SERVER"]
    names = Counter(s.name for s in web_spans)
    for name in ("GET /api/v1/items/{item_id}", "GET /docs", "GET /openapi.json", "GET /ws"):
        assert names[name] == 1, names
    assert names["POST /api/v1/orders/{order_id}"] == 1 and names["GET"] == 1, names
    # 6. Only otelkit's own health router goes untraced.
    assert not [s for s in web_spans if str(s.attributes.get("url.path", "")).startswith("/health")]

    # 5. The crash record carries its request; the listener's records after the request do not.
    (crash,) = [s for s in web_spans if s.name == "GET /api/v1/crash"]
    (exception,) = rx.logs_with(body_contains="Exception in ASGI application")
    assert (exception.trace_id, exception.attributes.get("request.id")) == (crash.trace_id, "crash-1")
    for tick in rx.logs_with(body_contains="listener tick"):
        assert tick.trace_id == "" and "request.id" not in tick.attributes, tick

    # 2. The app's own Celery logging ran: its log file, Celery's console format, task records once.
    file_text = celery_log.read_text()
    assert "FILE INFO" in file_text and "TASKFILE INFO realapp.tasks: flaky attempt" in file_text, file_text[-2000:]
    assert "INFO/MainProcess]" in worker_log, worker_log[-2000:]
    attempts = rx.logs_with(body_contains="flaky attempt")
    assert sorted(r.attributes["attempt"] for r in attempts) == [0, 1]
    assert {r.attributes["celery.task.name"] for r in attempts} == {"realapp.tasks.flaky"}
    order = [r for r in rx.logs_with(body_contains="added") if r.service_name == "realapp-worker"]
    assert len(order) == 2 and {r.attributes.get("request.id") for r in order} == {"order-7"}

    # 3. One console, the app's from the moment it configured logging: no otelkit JSON lines beside
    # its format (only start-up lines written before the app's dictConfig ran are otelkit's).
    assert "APP [INFO] realapp.web: item served" in web_log
    lines = web_log.splitlines()
    configured = next(i for i, line in enumerate(lines) if line.startswith("APP "))
    assert not [line for line in lines[configured:] if line.startswith('{"timestamp"')], web_log[-2000:]

    # 6. No noise: values converted, not warned about; no flower duplicate; metrics once at shutdown.
    assert "Invalid type" not in web_log + worker_log
    (chat,) = rx.logs_with(body_contains="chat message")
    assert chat.attributes["connection"] == "<connection /chat>"
    assert not rx.metric_points("flower.task.runtime.seconds")
    series: Counter[Any] = Counter(
        (p.name, tuple(sorted(p.attributes.items())))
        for p in rx.metric_points()
        if p.service_name == "realapp" and p.name.startswith("http.server")
    )
    assert series and set(series.values()) == {1}, series
    assert rx.bad_requests == 0
