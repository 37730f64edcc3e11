"""Forked processes never write on their parent's exporter connection (issue 18, item 1).

A Celery prefork worker's main process exports its own records ("Task received …") over a
keep-alive connection, then forks a child per task (``--max-tasks-per-child 1``). A child that
inherits the parent's open connection writes its requests on the same socket as the parent: the
receiver sees a second request inside the first one's body (400) or a request vanishes. Short
export delays (20 ms) keep the parent's connection open at almost every fork, so the test catches
the bug in nearly every run of 150 tasks; both receivers speak HTTP/1.1 keep-alive (a receiver
that closes every connection hides the bug).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from launch import start_otlp_collector

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
TASKS = 150

TASKS_MODULE = """
import logging
import os

from celery import Celery

log = logging.getLogger("fork.tasks")
app = Celery("fork_tasks", broker=os.environ["E2E_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ["E2E_QUEUE"],
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
)


@app.task(name="fork.work")
def work(item):
    log.info("task ran", extra={"item": item})
    return item
"""

PRODUCER = """
import sys

from fork_tasks import work

for i in range(int(sys.argv[1])):
    work.delay(i)
"""

# Export every 20 ms: the worker's main process then holds an open connection at most forks.
QUICK = {"OTEL_BSP_SCHEDULE_DELAY": "20", "OTEL_BLRP_SCHEDULE_DELAY": "20", "OTEL_METRIC_EXPORT_INTERVAL": "60000"}


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Path:
    (tmp_path / "fork_tasks.py").write_text(TASKS_MODULE)
    (tmp_path / "fork_produce.py").write_text(PRODUCER)
    return tmp_path


def _env(endpoint: str, redis: str, tasks: Path, queue: str, service: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelkit",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME=service,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="redis",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(tasks),
        E2E_BROKER=redis,
        E2E_QUEUE=queue,
        **QUICK,
    )
    return env


def _run_prefork_worker(
    procs: _procs.ProcessGroup, endpoint: str, redis: str, tasks: Path, queue: str, launcher: str
) -> _procs.ManagedProcess:
    """Enqueue TASKS tasks, run them in a prefork worker (a new child per task), stop it warmly."""
    producer = subprocess.run(
        [str(BIN / "python"), str(tasks / "fork_produce.py"), str(TASKS)],
        env=_env(endpoint, redis, tasks, queue, "fork-producer"),
        cwd=tasks,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert producer.returncode == 0, producer.stderr
    argv = [
        str(BIN / launcher),
        str(BIN / "celery"),
        "-A",
        "fork_tasks",
        "worker",
        "-l",
        "INFO",
        "-Q",
        queue,
        "--without-mingle",
        "--without-gossip",
        "--pool",
        "prefork",
        "-c",
        "2",
        "--max-tasks-per-child",
        "1",
    ]
    worker = procs.start(f"worker-{launcher}", argv, env=_env(endpoint, redis, tasks, queue, "fork-worker"), cwd=tasks)
    return worker


def _stop(worker: _procs.ManagedProcess) -> None:
    assert worker.popen is not None
    worker.check_running()
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(60) == 0, worker.log_tail()


def _task_items(rx: OTLPReceiver) -> tuple[set[int], set[str]]:
    logs = {r.attributes.get("item") for r in rx.logs if r.body == "task ran" and r.service_name == "fork-worker"}
    runs = {s.attributes.get("messaging.message.id") for s in rx.spans if s.name == "run/fork.work"}
    return {i for i in logs if isinstance(i, int)}, {r for r in runs if isinstance(r, str)}


def _wait_all_arrived(rx: OTLPReceiver, worker: _procs.ManagedProcess, timeout: float = 240) -> None:
    """Until every task's record and span arrived, or nothing new arrived for 15 s (some were lost)."""
    deadline = time.monotonic() + timeout
    last, quiet_since = (-1, -1), time.monotonic()
    while time.monotonic() < deadline:
        worker.check_running()
        logs, runs = _task_items(rx)
        if len(logs) >= TASKS and len(runs) >= TASKS:
            return
        if (len(logs), len(runs)) != last:
            last, quiet_since = (len(logs), len(runs)), time.monotonic()
        elif time.monotonic() - quiet_since > 15:
            break
        time.sleep(0.5)
    logs, runs = _task_items(rx)
    missing = sorted(set(range(TASKS)) - logs)
    raise AssertionError(
        f"{len(logs)}/{TASKS} task log records and {len(runs)}/{TASKS} run spans arrived (bad requests:"
        f" {rx.bad_requests}); missing log items {missing[:20]}; worker log:\n{worker.log_tail(40)}"
    )


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


@pytest.mark.parametrize("launcher", ["opentelemetry-instrument", "otelkit-instrument"])
def test_fork_prefork_children_never_share_the_parents_connection(
    launcher: str, receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup, tasks_dir: Path
) -> None:
    queue = f"fork-{launcher}"
    worker = _run_prefork_worker(procs, receiver.endpoint, redis_server, tasks_dir, queue, launcher)
    _wait_all_arrived(receiver, worker)
    _stop(worker)

    logs, runs = _task_items(receiver)
    assert logs == set(range(TASKS))
    assert len(runs) == TASKS
    assert receiver.bad_requests == 0
    assert "Failed to export" not in worker.log_text()


def test_fork_prefork_children_through_the_real_collector(
    otelcol_bin: Path, receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup, tasks_dir: Path
) -> None:
    endpoint = start_otlp_collector(procs, otelcol_bin, receiver.endpoint)
    worker = _run_prefork_worker(procs, endpoint, redis_server, tasks_dir, "fork-collector", "otelkit-instrument")
    _wait_all_arrived(receiver, worker)
    _stop(worker)

    logs, runs = _task_items(receiver)
    assert logs == set(range(TASKS))
    assert len(runs) == TASKS
    # The collector answers 400 to a request it cannot decode; the exporter logs each failure.
    assert "Failed to export" not in worker.log_text()


def test_fork_gunicorn_workers_recycled_from_a_preloaded_master(
    receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup
) -> None:
    # gunicorn --preload: otelkit is set up in the master, which logs "Booting worker" (exported
    # every 20 ms) and forks a new worker every 10 requests (--max-requests).
    apps = Path(__file__).resolve().parent / "apps"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelkit",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="fork-web",
        PYTHONPATH=str(apps),
        PYTHONUNBUFFERED="1",
        REALAPP_BROKER=redis_server,
        **QUICK,
    )
    port = _procs.free_port()
    argv = [str(BIN / "otelkit-instrument"), str(BIN / "gunicorn"), "realapp.main:app", "--preload", "-w", "2"]
    argv += ["-k", "uvicorn.workers.UvicornWorker", "--max-requests", "10", "-b", f"127.0.0.1:{port}"]
    web = procs.start("gunicorn", argv, env=env, cwd=apps)
    base = f"http://127.0.0.1:{port}"
    web.wait_http_ready(f"{base}/health/live", timeout=60)
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        for i in range(TASKS):
            try:
                response = client.get(f"/api/v1/items/{i}")
            except httpx.TransportError:  # the worker holding this connection was just recycled
                response = client.get(f"/api/v1/items/{i}")
            assert response.status_code == 200

    def items(rx: OTLPReceiver) -> set[Any]:
        return {r.attributes.get("item_id") for r in rx.logs_with(body_contains="item served")}

    deadline = time.monotonic() + 60
    while len(items(receiver)) < TASKS and time.monotonic() < deadline:
        web.check_running()
        time.sleep(0.5)
    assert web.popen is not None
    web.popen.send_signal(signal.SIGTERM)
    web.popen.wait(60)
    missing = sorted(set(range(TASKS)) - items(receiver))
    assert not missing, f"{len(missing)} request records lost: {missing[:20]}; bad requests {receiver.bad_requests}"
    assert receiver.bad_requests == 0
