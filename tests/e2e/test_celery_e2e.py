"""Celery under the launcher against a real Redis and a real OTLP receiver: traces, metrics, logs.

Every process runs as users run it: ``opentelemetry-instrument celery -A … worker`` with
``OTEL_PYTHON_DISTRO=otelkit``. The pool-mode tests export with 60 s batching intervals, so what
arrives got there through otelkit's exit paths (child exit, warm shutdown, process exit), not
through a periodic export that happened to fire; then they count what arrived against what the
tasks produced.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otelkit.local import procs as _procs
from otelkit.testing import OTLPReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAUNCHER = str(BIN / "opentelemetry-instrument")
CELERY = str(BIN / "celery")

TASKS_MODULE = '''
"""Tasks of the Celery e2e tests."""
import logging
import os
import time
from pathlib import Path

from celery import Celery

MARKS = Path(os.environ["E2E_MARKS"])
log = logging.getLogger("e2e.tasks")

app = Celery("e2e_tasks", broker=os.environ["E2E_BROKER"], backend=os.environ["E2E_BROKER"])
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_default_queue=os.environ["E2E_QUEUE"],
    worker_prefetch_multiplier=1,
    result_expires=600,
)


@app.task(name="e2e.ok")
def ok(item):
    log.info("task ran", extra={"item": item})
    return item


@app.task(name="e2e.fail")
def fail(item):
    log.info("task ran", extra={"item": item})
    raise ValueError(f"item {item} is bad")


@app.task(name="e2e.flaky", bind=True, max_retries=1)
def flaky(self, item):
    log.info("task ran", extra={"item": item})
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return item


@app.task(name="e2e.slow", bind=True)
def slow(self, item, seconds):
    (MARKS / f"{self.request.id}.started").touch()
    log.info("task ran", extra={"item": item})
    time.sleep(seconds)
    (MARKS / f"{self.request.id}.done").touch()
    return item
'''

PRODUCER = """
import sys

from e2e_tasks import fail, flaky, ok, slow

if sys.argv[1] == "standard":
    results = [ok.delay(i) for i in range(4)] + [fail.delay(4), flaky.delay(5)]
    for result in results:
        result.get(timeout=60, propagate=False)
else:
    for i in range(int(sys.argv[2])):
        slow.delay(i, float(sys.argv[3]))
"""

# What the "standard" batch runs: 4 ok, 1 failing, 1 retried once (so run twice).
STANDARD_STARTED = {"e2e.ok": 4, "e2e.fail": 1, "e2e.flaky": 2}
STANDARD_COMPLETED = {
    ("e2e.ok", "success"): 4,
    ("e2e.fail", "failure"): 1,
    ("e2e.flaky", "retry"): 1,
    ("e2e.flaky", "success"): 1,
}
SLOW_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "60000", "OTEL_BLRP_SCHEDULE_DELAY": "60000"}
SLOW_EXPORT["OTEL_METRIC_EXPORT_INTERVAL"] = "60000"
FAST_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
    "OTEL_METRIC_EXPORT_INTERVAL": "300",
}


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


@pytest.fixture
def tasks_dir(tmp_path: Path) -> Path:
    (tmp_path / "e2e_tasks.py").write_text(TASKS_MODULE)
    (tmp_path / "e2e_produce.py").write_text(PRODUCER)
    (tmp_path / "marks").mkdir()
    return tmp_path


def _env(rx: OTLPReceiver, service: str, export: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        OTEL_PYTHON_DISTRO="otelkit",
        OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME=service,
        PYTHONUNBUFFERED="1",
        **export,
        **extra,
    )
    return env


def _task_env(rx: OTLPReceiver, service: str, export: dict[str, str], redis: str, tasks: Path, queue: str) -> dict:
    return _env(
        rx,
        service,
        export,
        PYTHONPATH=str(tasks),
        E2E_BROKER=redis,
        E2E_QUEUE=queue,
        E2E_MARKS=str(tasks / "marks"),
    )


def _start_worker(
    procs: _procs.ProcessGroup, env: dict[str, str], app: str, *args: str, launcher: str = LAUNCHER
) -> _procs.ManagedProcess:
    argv = [launcher, CELERY, "-A", app, "worker", "-l", "INFO", "--without-mingle", "--without-gossip", *args]
    return procs.start("worker", argv, env=env, cwd=env.get("PYTHONPATH", str(REPO)))


def _produce(env: dict[str, str], tasks: Path, *args: str) -> None:
    argv = [LAUNCHER, sys.executable, str(tasks / "e2e_produce.py"), *args]
    done = subprocess.run(argv, env=env, cwd=tasks, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _sigterm_main_process(worker: _procs.ManagedProcess, timeout: float = 60.0) -> int:
    """SIGTERM to the worker's main process only, as Kubernetes, Docker and supervisord send it."""
    assert worker.popen is not None
    worker.check_running()
    worker.popen.send_signal(signal.SIGTERM)
    return worker.popen.wait(timeout)


def _latest(rx: OTLPReceiver, name: str, service: str) -> Counter[tuple[tuple[str, Any], ...]]:
    """Sum over processes of each series' last cumulative value (histograms: the count)."""
    latest: dict[tuple[Any, ...], Any] = {}
    for point in rx.metric_points(name):
        if point.service_name != service:
            continue
        key = (point.resource.get("service.instance.id"), tuple(sorted(point.attributes.items())))
        if key not in latest or point.time_ns >= latest[key].time_ns:
            latest[key] = point
    totals: Counter[tuple[tuple[str, Any], ...]] = Counter()
    for (_, attributes), point in latest.items():
        totals[attributes] += point.value if point.value is not None else point.count
    return totals


def _by(totals: Counter[tuple[tuple[str, Any], ...]], *keys: str) -> dict[Any, Any]:
    out: Counter[Any] = Counter()
    for attributes, value in totals.items():
        attrs = dict(attributes)
        picked = tuple(attrs.get(k) for k in keys)
        out[picked[0] if len(keys) == 1 else picked] += value
    return dict(out)


def _runs(rx: OTLPReceiver, service: str) -> list[ReceivedSpan]:
    return [s for s in rx.spans if s.service_name == service and s.name.startswith("run/")]


def _task_logs(rx: OTLPReceiver, service: str) -> list[Any]:
    return [r for r in rx.logs if r.service_name == service and r.body == "task ran"]


def _snapshot(rx: OTLPReceiver, service: str) -> dict[str, Any]:
    return {
        "runs": Counter(s.name.removeprefix("run/") for s in _runs(rx, service)),
        "logs": Counter(r.attributes.get("celery.task.name") for r in _task_logs(rx, service)),
        "started": _by(_latest(rx, "celery.task.started", service), "celery.task.name"),
        "completed": _by(_latest(rx, "celery.task.completed", service), "celery.task.name", "celery.task.state"),
        "durations": _by(_latest(rx, "celery.task.duration", service), "celery.task.name", "celery.task.state"),
        "waits": _by(_latest(rx, "celery.task.wait.duration", service), "celery.task.name"),
        "active": sum(_latest(rx, "celery.task.active", service).values()),
    }


def _wait_for_snapshot(rx: OTLPReceiver, service: str, expected: dict[str, Any], timeout: float) -> None:
    try:
        rx.wait_for(lambda r: _snapshot(r, service) == expected, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nexpected {expected}\ngot      {_snapshot(rx, service)}") from None


def _standard_expected() -> dict[str, Any]:
    return {
        "runs": Counter(STANDARD_STARTED),
        "logs": Counter(STANDARD_STARTED),
        "started": STANDARD_STARTED,
        "completed": STANDARD_COMPLETED,
        "durations": STANDARD_COMPLETED,
        "waits": STANDARD_STARTED,
        "active": 0,
    }


def _assert_traces_and_logs_line_up(rx: OTLPReceiver, service: str, queue: str) -> None:
    spans = {s.span_id: s for s in rx.spans}
    runs = _runs(rx, service)
    for run in runs:
        parent = spans.get(run.parent_span_id)
        assert parent is not None, f"{run.name}: its publish span did not arrive"
        assert parent.name == "apply_async/" + run.name.removeprefix("run/")
        assert parent.kind == "PRODUCER" and run.kind == "CONSUMER"
        assert parent.trace_id == run.trace_id
    run_ids = {(s.attributes.get("messaging.message.id"), s.span_id, s.trace_id) for s in runs}
    for record in _task_logs(rx, service):
        key = (record.attributes["celery.task.id"], record.span_id, record.trace_id)
        same_trace = [f"{s.name} {s.span_id} <- {s.parent_span_id}" for s in rx.spans if s.trace_id == record.trace_id]
        assert key in run_ids, f"log record not inside its task's run span: {record}; its trace: {same_trace}"
    for point in rx.metric_points("celery.task.started"):
        assert point.attributes["messaging.destination.name"] == queue
        assert point.attributes["messaging.system"] == "celery"
    # The broker's own Redis commands make no spans: every worker span belongs to a task's trace.
    roots = {s.name for s in rx.spans if s.service_name == service and not s.parent_span_id}
    assert roots == set(), roots


POOL_MODES = {
    "prefork": ["--pool", "prefork", "--concurrency", "2"],
    "prefork-max-tasks-per-child-1": ["--pool", "prefork", "--concurrency", "2", "--max-tasks-per-child", "1"],
    "solo": ["--pool", "solo"],
    "threads": ["--pool", "threads", "--concurrency", "2"],
}


@pytest.mark.parametrize(
    ("mode", "launcher"),
    [(mode, "opentelemetry-instrument") for mode in POOL_MODES]
    # otelkit's own launcher in the hardest mode: children that exit after every task.
    + [("prefork-max-tasks-per-child-1", "otelkit-instrument")],
)
def test_celery_worker_exports_every_task_in_each_pool_mode(
    mode: str, launcher: str, receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup, tasks_dir: Path
) -> None:
    queue = f"e2e-{mode}-{launcher}"
    worker_env = _task_env(receiver, "e2e-worker", SLOW_EXPORT, redis_server, tasks_dir, queue)
    worker = _start_worker(procs, worker_env, "e2e_tasks", "-Q", queue, *POOL_MODES[mode], launcher=str(BIN / launcher))
    producer_env = _task_env(receiver, "e2e-producer", SLOW_EXPORT, redis_server, tasks_dir, queue)
    _produce(producer_env, tasks_dir, "standard")

    expected = _standard_expected()
    if "max-tasks-per-child" in mode:
        # Children exit after each task without atexit; only otelkit's worker_process_shutdown
        # flush can deliver their telemetry while the worker keeps running.
        _wait_for_snapshot(receiver, "e2e-worker", expected, timeout=30)
    assert _sigterm_main_process(worker) == 0, worker.log_tail()
    _wait_for_snapshot(receiver, "e2e-worker", expected, timeout=15)

    assert _snapshot(receiver, "e2e-worker") == expected  # and nothing twice
    publishes = Counter(s.name for s in receiver.spans if s.service_name == "e2e-producer")
    assert {k: v for k, v in publishes.items() if k.startswith("apply_async/")} == {
        "apply_async/e2e.ok": 4,
        "apply_async/e2e.fail": 1,
        "apply_async/e2e.flaky": 1,
    }
    _assert_traces_and_logs_line_up(receiver, "e2e-worker", queue)


def test_celery_worker_sigterm_mid_run_loses_nothing_of_the_started_tasks(
    receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup, tasks_dir: Path
) -> None:
    queue = "e2e-sigterm"
    worker_env = _task_env(receiver, "e2e-worker", SLOW_EXPORT, redis_server, tasks_dir, queue)
    worker = _start_worker(procs, worker_env, "e2e_tasks", "-Q", queue, "--pool", "prefork", "--concurrency", "2")
    _produce(
        _task_env(receiver, "e2e-producer", SLOW_EXPORT, redis_server, tasks_dir, queue), tasks_dir, "slow", "8", "1"
    )
    marks = tasks_dir / "marks"
    deadline = time.monotonic() + 60
    while not list(marks.glob("*.started")):
        worker.check_running()
        assert time.monotonic() < deadline, f"no task started; worker log:\n{worker.log_tail()}"
        time.sleep(0.05)

    assert _sigterm_main_process(worker) == 0, worker.log_tail()

    started = {p.name.removesuffix(".started") for p in marks.glob("*.started")}
    done = {p.name.removesuffix(".done") for p in marks.glob("*.done")}
    assert started == done  # warm shutdown lets running tasks finish
    assert 1 <= len(started) < 8  # stopped mid-run: some tasks never started
    n = len(started)
    expected = {
        "runs": Counter({"e2e.slow": n}),
        "logs": Counter({"e2e.slow": n}),
        "started": {"e2e.slow": n},
        "completed": {("e2e.slow", "success"): n},
        "durations": {("e2e.slow", "success"): n},
        "waits": {"e2e.slow": n},
        "active": 0,
    }
    _wait_for_snapshot(receiver, "e2e-worker", expected, timeout=15)
    assert {s.attributes.get("messaging.message.id") for s in _runs(receiver, "e2e-worker")} == started
    _assert_traces_and_logs_line_up(receiver, "e2e-worker", queue)


def test_celery_example_request_to_task_is_one_trace_with_task_aware_logs(
    receiver: OTLPReceiver, redis_server: str, procs: _procs.ProcessGroup
) -> None:
    extra = {"PYTHONPATH": str(REPO), "OTELKIT_EXAMPLE_BROKER": redis_server}
    worker_env = _env(receiver, "shop-worker", FAST_EXPORT, **extra)
    _start_worker(procs, worker_env, "example.tasks", "--concurrency", "1")
    port = _procs.free_port()
    web = procs.start(
        "web",
        [LAUNCHER, str(BIN / "uvicorn"), "example.app:app", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(receiver, "shop", FAST_EXPORT, **extra),
        cwd=REPO,
    )
    web.wait_http_ready(f"http://127.0.0.1:{port}/health/live", 60)

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/orders/3", method="POST", headers={"X-Request-ID": "e2e-order-3"}
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
        assert response.status == 202
        task_id = json.loads(response.read())["task_id"]

    def processed(rx: OTLPReceiver) -> list[Any]:
        return [r for r in rx.logs_with(body_contains="order processed") if r.attributes.get("order_id") == 3]

    (record,) = receiver.wait_for(processed, timeout=60)  # type: ignore[misc]
    receiver.wait_for(lambda rx: [s for s in rx.spans_named("run/example.tasks.process_order")], timeout=30)
    receiver.wait_for(lambda rx: _latest(rx, "celery.task.wait.duration", "shop-worker"), timeout=30)
    # The web's spans leave on its own schedule (its exporter is built off the start-up path): the
    # worker's items having arrived says nothing about them.
    receiver.wait_for(lambda rx: rx.spans_named("POST /orders/{order_id}"), timeout=30)

    (server,) = [s for s in receiver.spans_named("POST /orders/{order_id}") if s.service_name == "shop"]
    (publish,) = receiver.spans_named("apply_async/example.tasks.process_order")
    (run,) = receiver.spans_named("run/example.tasks.process_order")
    assert (server.kind, publish.kind, run.kind) == ("SERVER", "PRODUCER", "CONSUMER")
    assert publish.service_name == "shop" and run.service_name == "shop-worker"
    assert publish.parent_span_id == server.span_id
    assert run.parent_span_id == publish.span_id
    assert server.trace_id == publish.trace_id == run.trace_id
    assert run.attributes["messaging.message.id"] == task_id

    assert record.service_name == "shop-worker"
    assert (record.trace_id, record.span_id) == (run.trace_id, run.span_id)
    assert record.attributes["celery.task.name"] == "example.tasks.process_order"
    assert record.attributes["celery.task.id"] == task_id
    assert record.attributes["request.id"] == "e2e-order-3"
    assert record.attributes["order_total"] == 189.0

    waits = _by(_latest(receiver, "celery.task.wait.duration", "shop-worker"), "celery.task.name")
    assert waits == {"example.tasks.process_order": 1}
    # Not one span of the broker's own Redis traffic (polling, unacked restore, heartbeats).
    assert {s.name for s in receiver.spans if s.service_name == "shop-worker"} == {run.name}
