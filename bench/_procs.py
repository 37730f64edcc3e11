"""The processes one benchmark run drives: CPU pinning, the server under test, wrk, the OTLP receiver.

Shared by :mod:`bench.run` (HTTP variants) and :mod:`bench.celery_bench` (Celery workers).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
URL_PATH = "/items/1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something the benchmark cannot go on without; printed as ``error: …``, exit status 1."""


# --------------------------------------------------------------------------- CPUs and /proc


@dataclass
class Cpus:
    server: int | None  # None: one CPU only, nothing pinned
    load: set[int]

    def describe(self) -> str:
        if self.server is None:
            return "one CPU: nothing pinned (numbers are less meaningful)"
        load = ",".join(map(str, sorted(self.load)))
        return f"server on CPU {self.server}; wrk, receiver, Redis and runner on CPU {load}"

    def pin(self, cmd: list[str]) -> list[str]:
        """``cmd`` run on the server's CPU (taskset execs: the PID stays the command's)."""
        return cmd if self.server is None else ["taskset", "-c", str(self.server), *cmd]


def pick_cpus() -> Cpus:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return Cpus(None, set(allowed))
    cpus = Cpus(allowed[-1], set(allowed[:-1]))
    os.sched_setaffinity(0, cpus.load)  # children (wrk, receiver, redis-server) inherit it
    return cpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` so far."""
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def launcher_bin(name: str) -> str:
    import shutil

    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


# --------------------------------------------------------------------------- a process under test


class Process:
    """A process under test, its output in a log file, and the time its stop took."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.name, self.log_path = name, log_path
        self._log = log_path.open("w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def check_alive(self, waiting_for: str) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name!r} exited with status {self.proc.returncode} before {waiting_for}; its output:\n"
                f"{self.log_tail()}"
            )
        if time.perf_counter() - self.started > READY_TIMEOUT:
            raise BenchError(
                f"{self.name!r}: no {waiting_for} within {READY_TIMEOUT:.0f} s; its output:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line for line in text) or "    (nothing)"

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int) -> float:
        """Send ``sig`` and return the seconds until the process exited (killed after STOP_TIMEOUT)."""
        t0 = time.perf_counter()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return time.perf_counter() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _get_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {URL_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Server(Process):
    """One variant's uvicorn process; ``startup_s`` = spawn until ``GET /items/1`` answered 200."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path = ROOT
    ) -> None:
        super().__init__(name, cmd, env, log_path, cwd)
        self.port = port
        while not _get_ok(port):
            self.check_alive(f"answering {URL_PATH}")
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - self.started


# --------------------------------------------------------------------------- the OTLP receiver


class Receiver:
    """``otelkit.testing.OTLPReceiver(keep=False)`` in a child process; ``counts()`` asks it how much arrived.

    Besides the items per signal it counts log records per instrumentation scope (the stdlib
    logger's name: ``uvicorn.access``, ``bench.app``, …) and spans per name, so the report can
    hold each kind of record against what the app wrote.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--receiver-process"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        line = self._out.readline()
        if not line:
            raise BenchError("the OTLP receiver process did not start (is otelkit installed in this venv?)")
        self.endpoint = json.loads(line)["endpoint"]

    def counts(self) -> dict[str, Any]:
        self._in.write("counts\n")
        self._in.flush()
        return json.loads(self._out.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def receiver_main() -> None:
    import threading

    from otelkit.testing import OTLPReceiver

    # The receiver shares the load generator's CPU. Decoding a batch of 512 records takes it for
    # milliseconds, and wrk, its one thread starved meanwhile, counted that in the server's latency
    # (p99 6.6-7.5 ms against 5.4 with this). At SCHED_IDLE (set before any thread starts: they
    # inherit it) it runs only while wrk waits. It counts from the decoded messages (on_message),
    # never building a record object: a collector's cost, not ten times one.
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    lock = threading.Lock()
    scopes: Counter[str] = Counter()
    spans: Counter[str] = Counter()

    def on_message(signal: str, request: Any) -> None:
        if signal == "logs":
            batch: Counter[str] = Counter()
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    batch[scope.scope.name] += len(scope.log_records)
            with lock:
                scopes.update(batch)
        elif signal == "traces":
            batch = Counter(span.name for r in request.resource_spans for s in r.scope_spans for span in s.spans)
            with lock:
                spans.update(batch)

    with OTLPReceiver(keep=False, on_message=on_message) as receiver:
        print(json.dumps({"endpoint": receiver.endpoint}), flush=True)
        for _ in sys.stdin:
            with lock:
                counts = {
                    "items": dict(receiver.items),
                    "requests": dict(receiver.requests),
                    "bad": receiver.bad_requests,
                    "log_scopes": dict(scopes),
                    "span_names": dict(spans),
                }
            print(json.dumps(counts), flush=True)


def received_since(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What arrived between two ``Receiver.counts()``: items per signal, logs per scope, spans per name."""

    def diff(key: str) -> dict[str, int]:
        return {k: v - before[key].get(k, 0) for k, v in after[key].items() if v - before[key].get(k, 0)}

    return {
        **{s: after["items"][s] - before["items"][s] for s in after["items"]},
        **{
            "log_scopes": diff("log_scopes"),
            "span_names": diff("span_names"),
        },
    }


# --------------------------------------------------------------------------- wrk


@dataclass
class Wrk:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str  # "" when none: socket errors and non-2xx responses as wrk reports them


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> Wrk:
    def find(pattern: str) -> re.Match[str]:
        m = re.search(pattern, out, re.MULTILINE)
        if not m:
            raise BenchError(f"cannot find {pattern!r} in wrk's output:\n{out}")
        return m

    done = find(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)")
    errors = [
        m.group(0).strip() for m in re.finditer(r"^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$", out, re.M)
    ]
    return Wrk(
        requests=int(done.group(1)),
        seconds=_ms(done.group(2) + done.group(3)) / 1e3,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        errors="; ".join(errors),
    )


def _wrk_cmd(port: int, seconds: float, connections: int) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        f"http://127.0.0.1:{port}{URL_PATH}",
    ]


def run_wrk(port: int, seconds: float, connections: int) -> Wrk:
    proc = subprocess.run(_wrk_cmd(port, seconds, connections), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with status {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return parse_wrk(proc.stdout)
