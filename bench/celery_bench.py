"""Celery task throughput: a solo-pool worker draining N queued tasks, bare Celery vs otelkit.

The task (:mod:`bench.tasks`) logs one INFO record. One measurement, per variant and round:

1. A worker (``celery -A bench.tasks worker -P solo``, under ``otelkit-instrument`` for otelkit)
   starts on the server's CPU, the queue empty.
2. One ``ping`` task is pushed; when it has run (its mark is in the marks file), the worker is
   consuming and its first-task costs are paid. Then 1.5 s more, so otelkit's exporters, built
   on a background thread 1 s after set-up, are built before the measured tasks.
3. The N task messages are pushed in one ``RPUSH``: queued in Redis at once, then drained. The
   messages were published once by Celery itself (``apply_async`` in this process, no worker
   running) and their raw payloads kept, so every round drains the same bytes.
4. **tasks/s** = N ÷ (end of the last task − start of the first), both read by the tasks
   themselves from ``time.monotonic()`` (one clock for all processes): worker start-up and the
   runner's polling are not in it. The worker's CPU is read before the push and after the last
   mark (**CPU µs/task**), then VmRSS, then SIGTERM (Celery's warm shutdown; otelkit flushes).

The receiver counts what arrived; ``bench.tasks`` records must be N + 1 (the ping), and under
otelkit N + 1 ``run/bench.work`` spans. Neither variant passes ``-l``: Celery's own INFO records
per task (``received``, ``succeeded``) are made by neither, since otelkit leaves Celery's loggers
at the worker's level (WARNING) while the root and task loggers export INFO.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._procs import READY_TIMEOUT, BenchError, Cpus, Process, cpu_seconds, free_port, launcher_bin, rss_mib

QUEUE = "celery"
SETTLE_S = 1.5


@dataclass
class CeleryRun:
    variant: str
    round: int
    position: int
    tasks: int
    ready_s: float  # worker spawn until the ping task had run
    tasks_per_s: float
    drain_s: float
    cpu_us_per_task: float
    rss_mib: float
    shutdown_s: float
    exit_code: int | None
    queue_left: int  # messages still queued after the drain: must be 0
    received: dict[str, Any]


class RedisBroker:
    """A private ``redis-server`` on a free loopback port (no persistence), and the task payloads."""

    def __init__(self, logdir: Path) -> None:
        import redis

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = (logdir / "redis.log").open("w")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"redis-server did not start on port {self.port}; see {self._log.name}") from None
                time.sleep(0.02)
        self.ping: list[bytes] = []
        self.tasks: list[bytes] = []

    def prepare(self, n: int) -> None:
        """Publish the ping and ``n`` tasks with Celery (no worker is running) and keep their raw bytes."""
        os.environ["BENCH_REDIS_URL"] = self.url  # bench.tasks reads it at import
        from bench import tasks

        self.client.delete(QUEUE)
        tasks.work.apply_async(args=(-1, n - 1))
        self.ping = self._payloads()
        self.client.delete(QUEUE)
        for i in range(n):
            tasks.work.apply_async(args=(i, n - 1))
        self.tasks = self._payloads()
        self.client.delete(QUEUE)
        if len(self.ping) != 1 or len(self.tasks) != n:
            raise BenchError(f"publishing went wrong: {len(self.ping)} ping and {len(self.tasks)}/{n} task messages")
        tasks.app.close()

    def _payloads(self) -> list[bytes]:
        return [p if isinstance(p, bytes) else p.encode() for p in self.client.lrange(QUEUE, 0, -1)]

    def push(self, payloads: list[bytes]) -> None:
        # The list was read head to tail; pushed back in that order onto an empty key it is the
        # same list, and the worker pops from the tail: first published, first run.
        self.client.rpush(QUEUE, *payloads)

    def queued(self) -> int:
        return int(self.client.llen(QUEUE))

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def worker_cmd(launcher: str | None, cpus: Cpus) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.tasks",
        "worker",
        "-P",
        "solo",
        # Start-up only (no other workers to sync with); the per-task path is Celery's default.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    if launcher:
        cmd = [launcher_bin(launcher), *cmd]
    return cpus.pin(cmd)


def _marks(path: Path) -> dict[str, float]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    marks = {}
    for line in text.splitlines():
        label, _, value = line.partition(" ")
        if value:
            marks[label] = float(value)
    return marks


def _wait_for_mark(worker: Process, marks: Path, label: str, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = _marks(marks)
        if label in found:
            return found
        if worker.proc.poll() is not None:
            raise BenchError(
                f"{worker.name!r} exited with status {worker.proc.returncode} before its {label!r} task ran;"
                f" its output:\n{worker.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise BenchError(
                f"{worker.name!r}: no {label!r} task within {timeout:.0f} s; its output:\n{worker.log_tail()}"
            )
        time.sleep(0.01)


def measure_celery(
    *,
    name: str,
    launcher: str | None,
    env: dict[str, str],
    broker: RedisBroker,
    receiver: Any,
    cpus: Cpus,
    logdir: Path,
    round_no: int,
    position: int,
    register: Any,
) -> CeleryRun:
    """One worker start, the ping, then the drain of ``len(broker.tasks)`` queued tasks."""
    from bench._procs import received_since

    n = len(broker.tasks)
    marks = logdir / f"{name}-{round_no}.marks"
    marks.unlink(missing_ok=True)
    broker.client.delete(QUEUE)
    env = {**env, "BENCH_REDIS_URL": broker.url, "BENCH_CELERY_MARKS": str(marks)}
    before = receiver.counts()
    worker = Process(name, worker_cmd(launcher, cpus), env, logdir / f"{name}-{round_no}.log")
    register(worker)
    broker.push(broker.ping)
    _wait_for_mark(worker, marks, "ping", READY_TIMEOUT)
    ready_s = time.perf_counter() - worker.started
    time.sleep(SETTLE_S)
    cpu0 = cpu_seconds(worker.pid)
    broker.push(broker.tasks)
    found = _wait_for_mark(worker, marks, "last", READY_TIMEOUT + n / 50)
    cpu = cpu_seconds(worker.pid) - cpu0
    rss = rss_mib(worker.pid)
    left = broker.queued()
    shutdown = worker.stop(signal.SIGTERM)
    drain = found["last"] - found["first"]
    return CeleryRun(
        variant=name,
        round=round_no,
        position=position,
        tasks=n,
        ready_s=ready_s,
        tasks_per_s=n / drain if drain > 0 else float("nan"),
        drain_s=drain,
        cpu_us_per_task=cpu / n * 1e6,
        rss_mib=rss,
        shutdown_s=shutdown,
        exit_code=worker.proc.returncode,
        queue_left=left,
        received=received_since(receiver.counts(), before),
    )
