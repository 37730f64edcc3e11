"""Overhead benchmark: ``python -m bench.run`` starts each variant of the same FastAPI app, loads it
with wrk, and prints req/s, p50/p99 and CPU per request as ratios to the bare app, plus startup
time, RSS, shutdown time and how many spans reached the OTLP receiver. See bench/README.md.

How one run is laid out (2 cores): the server under test is pinned to the last CPU this process
may use; wrk, the OTLP receiver (``otelkit.testing.OTLPReceiver`` with ``keep=False``, in its own
process) and this script share the others, so neither the load generator nor the receiver steals
the server's core. Variants are interleaved round by round, their order rotated each round, so a
noisy neighbour or thermal drift hits every variant alike; each figure is the median over rounds
and each ratio is against bare's median from the same run.

Per variant and round: ``--startup-samples`` − 1 start/stop cycles timed only for start-up (it is
the noisiest figure; the round keeps the median), then one measured server start:
spawn → poll ``GET /items/1`` until it answers (startup time) → wrk warm-up →
wrk measured run, with the server's utime+stime (all threads, /proc/PID/stat) read before and after
(CPU per request) → VmRSS → SIGINT and time until exit (shutdown). SIGINT, not SIGTERM: uvicorn
re-raises SIGTERM and the stock SDK then never flushes (FACTS), and every variant must stop alike.
The collector-down soak (``--soak-minutes``) uses SIGTERM on purpose: that is what Kubernetes sends.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INSTALL_HINT = "pip install -e '.[bench,test]' (see bench/README.md)"
URL_PATH = "/items/1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something the benchmark cannot go on without; printed as ``error: …``, exit status 1."""


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    env: dict[str, str]
    launcher: str | None  # None, "opentelemetry-instrument" or "otelkit-instrument"
    needs: tuple[tuple[str, str], ...] = ()  # (importable module, distribution to install)
    collector_down: bool = False


_OTLP = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}
_OTELKIT = {"OTEL_PYTHON_DISTRO": "otelkit", "OTEL_PYTHON_CONFIGURATOR": "otelkit", **_OTLP}

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("bare", "bare FastAPI", {}, launcher=None),
        Variant(
            "prometheus",
            "prometheus-fastapi-instrumentator",
            {"BENCH_PROMETHEUS": "1"},
            launcher=None,
            needs=(("prometheus_fastapi_instrumentator", "prometheus-fastapi-instrumentator"),),
        ),
        Variant(
            "stock",
            "stock opentelemetry-instrument",
            {
                "OTEL_PYTHON_DISTRO": "distro",
                "OTEL_PYTHON_CONFIGURATOR": "configurator",
                "OTEL_TRACES_SAMPLER": "parentbased_always_on",
                **_OTLP,
            },
            launcher="opentelemetry-instrument",
            needs=(
                ("opentelemetry.distro", "opentelemetry-distro"),
                ("opentelemetry.instrumentation.fastapi", "opentelemetry-instrumentation-fastapi"),
            ),
        ),
        Variant(
            "otelkit",
            "otelkit, 100 % sampling",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=(("otelkit", "otelkit"),),
        ),
        Variant(
            "otelkit-oi",
            "otelkit, 100 %, under opentelemetry-instrument",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="opentelemetry-instrument",
            needs=(("otelkit", "otelkit"),),
        ),
        Variant(
            "otelkit-10",
            "otelkit, 10 % sampling",
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=(("otelkit", "otelkit"),),
        ),
        Variant(
            "otelkit-down",
            "otelkit, 100 %, collector down",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=(("otelkit", "otelkit"),),
            collector_down=True,
        ),
    )
}


def _parse_variants(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in VARIANTS:
            close = difflib.get_close_matches(name, list(VARIANTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise argparse.ArgumentTypeError(f"unknown variant {name!r}; expected one of: {', '.join(VARIANTS)}{hint}")
    if len(set(names)) != len(names) or not names:
        raise argparse.ArgumentTypeError(f"variants must be distinct and at least one; got {text!r}")
    return names


# --------------------------------------------------------------------------- processes


@dataclass
class Cpus:
    server: int | None  # None: one CPU only, nothing pinned
    load: set[int]

    def describe(self) -> str:
        if self.server is None:
            return "one CPU: nothing pinned (numbers are less meaningful)"
        load = ",".join(map(str, sorted(self.load)))
        return f"server on CPU {self.server}; wrk, receiver and runner on CPU {load}"


def _pick_cpus() -> Cpus:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return Cpus(None, set(allowed))
    cpus = Cpus(allowed[-1], set(allowed[:-1]))
    os.sched_setaffinity(0, cpus.load)  # children (wrk, receiver) inherit it
    return cpus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env(variant: Variant, *, port_endpoint: str, log_per_request: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_", "BENCH_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variant.env)
    if variant.launcher:
        env["OTEL_SERVICE_NAME"] = "bench-app"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = port_endpoint
    if log_per_request:
        env["BENCH_LOG_PER_REQUEST"] = "1"
    return env


def _server_cmd(variant: Variant, port: int, cpus: Cpus) -> list[str]:
    # Access logs off for every variant: per-request console output would dominate what we measure.
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.app:app",
        "--app-dir",
        str(ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if variant.launcher:
        cmd = [_launcher_bin(variant.launcher), *cmd]
    if cpus.server is not None:
        cmd = ["taskset", "-c", str(cpus.server), *cmd]  # taskset execs: the PID stays the server's
    return cmd


def _launcher_bin(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def _cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


class Server:
    """One variant's uvicorn process, its log file and the timings of its start and stop."""

    def __init__(self, variant: Variant, cmd: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.variant, self.port, self.log_path = variant, port, log_path
        self._log = log_path.open("w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        while not _get_ok(port):
            if self.proc.poll() is not None:
                raise BenchError(
                    f"variant {variant.name!r} exited with status {self.proc.returncode} before answering"
                    f" {URL_PATH}; its output:\n{self.log_tail()}"
                )
            if time.perf_counter() - t0 > READY_TIMEOUT:
                raise BenchError(
                    f"variant {variant.name!r} did not answer {URL_PATH} within {READY_TIMEOUT:.0f} s; its output:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.005)
        self.startup_s = time.perf_counter() - t0

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join("    " + line for line in text) or "    (nothing)"

    def stop(self, sig: signal.Signals) -> float:
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


class Receiver:
    """``otelkit.testing.OTLPReceiver(keep=False)`` in a child process; ``counts()`` asks it how much arrived."""

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
        return json.loads(self._out.readline())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._in.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _receiver_main() -> None:
    from otelkit.testing import OTLPReceiver

    with OTLPReceiver(keep=False) as receiver:
        print(json.dumps({"endpoint": receiver.endpoint}), flush=True)
        for _ in sys.stdin:
            counts = {"items": dict(receiver.items), "requests": dict(receiver.requests), "bad": receiver.bad_requests}
            print(json.dumps(counts), flush=True)


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


# --------------------------------------------------------------------------- one measurement


@dataclass
class Run:
    variant: str
    round: int
    position: int
    startup_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_s: float
    cpu_us_per_req: float
    server_cpu_share: float  # CPU seconds / wall seconds of the measured run: ~1.0 when the server is the bottleneck
    rss_mib: float
    shutdown_s: float
    exit_code: int | None
    served: int  # every request the app answered: readiness probe + warm-up + measured
    received: dict[str, int]  # spans / metric points / log records that reached the receiver
    errors: str


@dataclass
class Context:
    args: argparse.Namespace
    cpus: Cpus
    receiver: Receiver
    closed_endpoint: str
    logdir: Path
    servers: list[Server] = field(default_factory=list)

    def start(self, variant: Variant) -> Server:
        port = _free_port()
        endpoint = self.closed_endpoint if variant.collector_down else self.receiver.endpoint
        env = _server_env(variant, port_endpoint=endpoint, log_per_request=self.args.log_per_request)
        log_path = self.logdir / f"{variant.name}-{len(self.servers) + 1}.log"
        server = Server(variant, _server_cmd(variant, port, self.cpus), env, port, log_path)
        self.servers.append(server)
        return server

    def cleanup(self) -> None:
        for server in self.servers:
            server.kill()


def _diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, int]:
    return {signal: after["items"][signal] - before["items"][signal] for signal in after["items"]}


def measure(ctx: Context, variant: Variant, round_no: int, position: int) -> Run:
    args = ctx.args
    # Start-up varies more than anything else on a noisy VM: extra start/stop cycles, timed only.
    startups = []
    for _ in range(args.startup_samples - 1):
        extra = ctx.start(variant)
        startups.append(extra.startup_s)
        extra.stop(signal.SIGINT)
    before = ctx.receiver.counts()
    server = ctx.start(variant)
    startups.append(server.startup_s)
    warm = run_wrk(server.port, args.warmup, args.connections)
    cpu0 = _cpu_seconds(server.pid)
    result = run_wrk(server.port, args.duration, args.connections)
    cpu = _cpu_seconds(server.pid) - cpu0
    rss = _rss_mib(server.pid)
    shutdown = server.stop(signal.SIGINT)
    received = _diff(ctx.receiver.counts(), before)
    return Run(
        variant=variant.name,
        round=round_no,
        position=position,
        startup_s=statistics.median(startups),
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        cpu_s=cpu,
        cpu_us_per_req=cpu / max(result.requests, 1) * 1e6,
        server_cpu_share=cpu / result.seconds if result.seconds else float("nan"),
        rss_mib=rss,
        shutdown_s=shutdown,
        exit_code=server.proc.returncode,
        served=1 + warm.requests + result.requests,
        received=received,
        errors="; ".join(e for e in (warm.errors, result.errors) if e),
    )


# --------------------------------------------------------------------------- soak


@dataclass
class SoakRun:
    variant: str
    minutes: float
    rps: float
    p99_ms: float
    requests: int
    cpu_us_per_req: float
    rss_samples: list[tuple[float, float]]  # (seconds of load so far, MiB)
    rss_baseline_mib: float
    rss_growth_mib: float
    shutdown_s: float
    shutdown_signal: str
    errors: str


SOAK_SLICE_S = 30.0


def soak(ctx: Context, down: Variant, up: Variant, minutes: float) -> dict[str, SoakRun]:
    """``minutes`` of load on each of ``down`` and ``up``, both running all along, in alternating slices.

    Sequential halves would compare two stretches of a noisy VM; alternating 30 s slices lets
    drift hit both alike, as the rounds do. The collector stays down for the whole soak (twice
    ``minutes``), the down server's RSS is sampled after every slice of its load, and both get
    SIGTERM at the end. RSS is sampled after every slice of each server's load.
    """
    args = ctx.args
    slices = max(1, round(minutes * 60 / SOAK_SLICE_S))
    servers = {v.name: ctx.start(v) for v in (down, up)}
    for server in servers.values():
        run_wrk(server.port, args.warmup, args.connections)
    totals = {name: {"requests": 0, "seconds": 0.0, "cpu": 0.0, "p99": [], "errors": []} for name in servers}
    rss: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    for i in range(slices):
        for name, server in servers.items():
            cpu0 = _cpu_seconds(server.pid)
            result = run_wrk(server.port, SOAK_SLICE_S, args.connections)
            total = totals[name]
            total["cpu"] += _cpu_seconds(server.pid) - cpu0
            total["requests"] += result.requests
            total["seconds"] += result.seconds
            total["p99"].append(result.p99_ms)
            if result.errors:
                total["errors"].append(result.errors)
            rss[name].append((round(total["seconds"], 1), round(_rss_mib(server.pid), 2)))
        _progress(
            f"  soak slice {i + 1}/{slices}: "
            + ", ".join(f"{n} {totals[n]['requests'] / max(totals[n]['seconds'], 1e-9):.0f} req/s" for n in servers)
            + f"; {down.name} RSS {rss[down.name][-1][1]:.1f} MiB"
        )
    runs = {}
    for name, server in servers.items():
        total = totals[name]
        # RSS after 30 s under load is the baseline: imports, first batches and buffers are settled by then.
        settled = [r for r in rss[name] if r[0] >= 30.0] or rss[name]
        baseline = settled[0][1]
        runs[name] = SoakRun(
            variant=name,
            minutes=minutes,
            rps=total["requests"] / max(total["seconds"], 1e-9),
            p99_ms=statistics.median(total["p99"]),
            requests=total["requests"],
            cpu_us_per_req=total["cpu"] / max(total["requests"], 1) * 1e6,
            rss_samples=rss[name],
            rss_baseline_mib=baseline,
            rss_growth_mib=max(r[1] for r in settled) - baseline,
            shutdown_s=server.stop(signal.SIGTERM),
            shutdown_signal="SIGTERM",
            errors="; ".join(total["errors"]),
        )
    return runs


# --------------------------------------------------------------------------- report


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[Run], variants: list[str]) -> dict[str, dict[str, float]]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "server_cpu_share", "startup_s", "rss_mib", "shutdown_s")
    out: dict[str, dict[str, float]] = {}
    for name in variants:
        mine = [r for r in runs if r.variant == name]
        if not mine:
            continue
        row = {k: _median([getattr(r, k) for r in mine]) for k in keys}
        row["spans_per_request"] = _median([r.received["traces"] / r.served for r in mine])
        row["logs_per_request"] = _median([r.received["logs"] / r.served for r in mine])
        row["rounds"] = len(mine)
        out[name] = row
    bare = out.get("bare")
    for row in out.values():
        for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
            row[f"{k}_x"] = row[k] / bare[k] if bare and bare[k] else float("nan")
        row["startup_delta_s"] = row["startup_s"] - bare["startup_s"] if bare else float("nan")
    return out


@dataclass
class Target:
    what: str
    value: str
    ok: bool | None  # None: not measured in this run


def targets(summary: dict[str, dict[str, float]], soaks: dict[str, SoakRun]) -> list[Target]:
    out: list[Target] = []

    def ratio(variant: str, key: str, what: str, ok: Callable[[float], bool], fmt: str = "{:.2f}×") -> None:
        row = summary.get(variant)
        if row is None or "bare" not in summary:
            out.append(Target(what, "not run", None))
        else:
            out.append(Target(what, fmt.format(row[key]), ok(row[key])))

    ratio("otelkit", "rps_x", "otelkit 100 %: req/s ≥ 0.71× bare", lambda x: x >= 0.71)
    ratio("otelkit-10", "rps_x", "otelkit 10 %: req/s ≥ 0.85× bare", lambda x: x >= 0.85)
    ratio("otelkit", "p99_ms_x", "otelkit 100 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
    ratio("otelkit-10", "p99_ms_x", "otelkit 10 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
    ratio(
        "otelkit",
        "startup_delta_s",
        "otelkit (otelkit-instrument): startup ≤ bare + 0.3 s",
        lambda x: x <= 0.3,
        "{:+.2f} s",
    )
    ratio(
        "otelkit-oi",
        "startup_delta_s",
        "otelkit under opentelemetry-instrument: startup ≤ bare + 0.3 s",
        lambda x: x <= 0.3,
        "{:+.2f} s",
    )
    down, up = soaks.get("otelkit-down"), soaks.get("otelkit")
    if down is None or up is None:
        for what in (
            "collector down (soak): RSS growth ≤ 10 MiB",
            "collector down (soak): req/s ≥ 0.95× collector up",
            "collector down (soak): shutdown ≤ 5 s",
        ):
            out.append(Target(what, "not run (--soak-minutes 5)", None))
    else:
        m = f"{down.minutes:g} min"
        out.append(
            Target(
                f"collector down {m}: RSS growth ≤ 10 MiB", f"{down.rss_growth_mib:+.1f} MiB", down.rss_growth_mib <= 10
            )
        )
        x = down.rps / up.rps if up.rps else float("nan")
        out.append(Target(f"collector down {m}: req/s ≥ 0.95× collector up", f"{x:.2f}×", x >= 0.95))
        out.append(
            Target(f"collector down {m}: shutdown ≤ 5 s (SIGTERM)", f"{down.shutdown_s:.2f} s", down.shutdown_s <= 5)
        )
    return out


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    def git(*argv: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine(cpus: Cpus) -> dict[str, Any]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_version = (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).startswith("wrk ") else "?"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "pinning": cpus.describe(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg()[0],
        "wrk": wrk_version,
        "versions": {
            d: _version(d)
            for d in (
                "opentelemetry-sdk",
                "opentelemetry-instrumentation-fastapi",
                "protobuf",
                "fastapi",
                "uvicorn",
                "prometheus-fastapi-instrumentator",
                "otelkit",
            )
        },
        "otelkit_commit": _git_commit(),
    }


def _f(x: float, spec: str) -> str:
    return "—" if x != x else format(x, spec)


def render(
    info: dict[str, Any],
    args: argparse.Namespace,
    summary: dict[str, dict[str, float]],
    runs: list[Run],
    soaks: dict[str, SoakRun],
    marks: list[Target],
) -> str:
    v = info["versions"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['pinning']}); Linux {info['kernel']};"
        f" load avg {info['load_avg_at_start']:.2f} at start",
        f"Software: Python {info['python']}, opentelemetry-sdk {v['opentelemetry-sdk']},"
        f" fastapi {v['fastapi']}, uvicorn {v['uvicorn']}, protobuf {v['protobuf']}, wrk {info['wrk']},"
        f" otelkit {v['otelkit']} @ {info['otelkit_commit']}",
        (
            f"Run: {args.rounds} round(s) × {args.duration:g} s, wrk -t1 -c{args.connections} on GET {URL_PATH}"
            f" after {args.warmup:g} s warm-up; {args.startup_samples} start-up sample(s) per variant and round;"
            f" variants interleaved, order rotated each round; medians; ×bare = ratio to bare's median in this run"
            if args.rounds
            else f"Run: soak only, wrk -t1 -c{args.connections} on GET {URL_PATH}"
        )
        + ("; one INFO log per request" if args.log_per_request else ""),
    ]
    logs = args.log_per_request
    if summary:
        lines += [
            "",
            "| variant | req/s | ×bare | p50 ms | ×bare | p99 ms | ×bare | CPU µs/req | ×bare | server CPU"
            " | startup s | Δbare s | RSS MiB | shutdown s | spans/req |" + (" logs/req |" if logs else ""),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if logs else ""),
        ]
        for name, row in summary.items():
            lines.append(
                f"| {name} | {_f(row['rps'], '.0f')} | {_f(row['rps_x'], '.2f')} | {_f(row['p50_ms'], '.2f')}"
                f" | {_f(row['p50_ms_x'], '.2f')} | {_f(row['p99_ms'], '.2f')} | {_f(row['p99_ms_x'], '.2f')}"
                f" | {_f(row['cpu_us_per_req'], '.0f')} | {_f(row['cpu_us_per_req_x'], '.2f')}"
                f" | {_f(row['server_cpu_share'] * 100, '.0f')} % | {_f(row['startup_s'], '.2f')}"
                f" | {_f(row['startup_delta_s'], '+.2f')} | {_f(row['rss_mib'], '.0f')}"
                f" | {_f(row['shutdown_s'], '.2f')} | {_f(row['spans_per_request'], '.3f')} |"
                + (f" {_f(row['logs_per_request'], '.3f')} |" if logs else "")
            )
        lines.append("")
        lines.append("Variants: " + "; ".join(f"{n} = {VARIANTS[n].label}" for n in summary) + ".")
    if soaks:
        lines += [
            "",
            "| soak (SIGTERM at end) | minutes of load | req/s | p99 ms (slice median) | CPU µs/req | RSS at 30 s MiB"
            " | RSS growth MiB"
            " | shutdown s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in soaks.values():
            lines.append(
                f"| {s.variant} | {s.minutes:g} | {s.rps:.0f} | {s.p99_ms:.2f} | {s.cpu_us_per_req:.0f}"
                f" | {s.rss_baseline_mib:.1f}"
                f" | {s.rss_growth_mib:+.1f} | {s.shutdown_s:.2f} |"
            )
    lines += ["", "| target | this run | |", "|---|---:|---|"]
    for t in marks:
        mark = "—" if t.ok is None else ("PASS" if t.ok else "FAIL")
        lines.append(f"| {t.what} | {t.value} | {mark} |")
    problems = [f"{r.variant} round {r.round}: {r.errors}" for r in runs if r.errors]
    problems += [
        f"{r.variant} round {r.round}: exit status {r.exit_code}" for r in runs if r.exit_code not in (0, None)
    ]
    problems += [f"soak {s.variant}: {s.errors}" for s in soaks.values() if s.errors]
    starved = [n for n, row in summary.items() if row["server_cpu_share"] < 0.9]
    if starved:
        problems.append(
            f"server CPU below 90 % for {', '.join(starved)}: the server was not the only bottleneck (another"
            " process ran on its CPU, or wrk/receiver saturated theirs); ratios are noisy"
        )
    if problems:
        lines += ["", "Problems seen (these runs' numbers are suspect):", *(f"- {p}" for p in problems)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_setup(names: list[str], soak_minutes: float) -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found on PATH; install it (Debian/Ubuntu: apt-get install wrk)")
    wanted = set(names) | ({"otelkit", "otelkit-down"} if soak_minutes else set())
    missing = sorted(
        {dist for n in wanted for module, dist in VARIANTS[n].needs if importlib.util.find_spec(module) is None}
    )
    if importlib.util.find_spec("otelkit") is None:
        missing.append("otelkit")  # the OTLP receiver is otelkit.testing's
    if missing:
        raise BenchError(
            f"{sys.executable} lacks {', '.join(missing)}; install the bench dependencies: {INSTALL_HINT},"
            " or leave those variants out with --variants"
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark otelkit's overhead against bare FastAPI and the alternatives (see bench/README.md).",
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; 0 skips to the soak)")
    p.add_argument("--duration", type=float, default=10, help="seconds of measured load per run (default 10)")
    p.add_argument(
        "--startup-samples",
        type=int,
        default=3,
        help="server starts per variant and round whose start-up time is measured (default 3; the median is kept)",
    )
    p.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load before each run (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument(
        "--variants",
        type=_parse_variants,
        default=list(VARIANTS),
        help=f"comma-separated, from: {','.join(VARIANTS)} (default: all)",
    )
    p.add_argument(
        "--soak-minutes",
        type=float,
        default=0,
        help="collector-down soak: minutes of load on otelkit-down, then as long on otelkit (collector up)"
        " for the throughput ratio (default 0 = skip; the issue's soak is 5)",
    )
    p.add_argument("--log-per-request", action="store_true", help="the endpoint logs one INFO record per request")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write every measurement to this JSON file")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round × 3 s (overrides --rounds/--duration)")
    p.add_argument("--receiver-process", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.receiver_process:
        _receiver_main()
        return 0
    if args.quick:
        args.rounds, args.duration = 1, 3.0
    if (
        args.rounds < 0
        or args.duration < 1
        or args.connections < 1
        or args.soak_minutes < 0
        or args.warmup < 0
        or args.startup_samples < 1
    ):
        parser.error(
            "--rounds and --soak-minutes must be ≥ 0, --duration, --connections and --startup-samples ≥ 1, --warmup ≥ 0"
        )
    try:
        return _run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _compile_sources() -> None:
    """Byte-compile otelkit and the bench app, as installing a wheel does.

    An editable install leaves no ``.pyc`` files, and with ``PYTHONDONTWRITEBYTECODE`` set (as on
    CI machines and in many images) every server start would compile otelkit from source again:
    start-up time no installed otelkit ever pays.
    """
    import compileall

    for folder in ("otelkit", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def _rotations(names: list[str], rounds: int) -> Iterator[tuple[int, list[str]]]:
    for r in range(rounds):
        k = r % len(names)
        yield r + 1, names[k:] + names[:k]


def _run(args: argparse.Namespace) -> int:
    names: list[str] = args.variants
    _check_setup(names if args.rounds else [], args.soak_minutes)
    if args.rounds and "bare" not in names:
        _progress("warning: 'bare' is not among the variants: no ratios will be computed")
    _compile_sources()
    cpus = _pick_cpus()
    info = machine(cpus)
    _progress(f"bench: {info['pinning']}; server logs in a temporary directory, kept on failure")
    logdir = Path(tempfile.mkdtemp(prefix="otelkit-bench-"))
    # A bound socket that never listens: connections to it are refused at once, and no other
    # process can take the port while the run lasts.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    receiver = Receiver()
    ctx = Context(args, cpus, receiver, f"http://127.0.0.1:{closed.getsockname()[1]}", logdir)
    runs: list[Run] = []
    soaks: dict[str, SoakRun] = {}
    ok = False
    try:
        for round_no, order in _rotations(names, args.rounds):
            for position, name in enumerate(order):
                run = measure(ctx, VARIANTS[name], round_no, position)
                runs.append(run)
                _progress(
                    f"[round {round_no}/{args.rounds}] {name:13} {run.rps:8.0f} req/s  p99 {run.p99_ms:6.2f} ms"
                    f"  {run.cpu_us_per_req:6.0f} µs CPU/req  startup {run.startup_s:.2f} s"
                    f"  shutdown {run.shutdown_s:.2f} s  spans {run.received['traces']}/{run.served} requests"
                )
        if args.soak_minutes:
            _progress(
                f"soak: otelkit-down and otelkit, {args.soak_minutes:g} min of load each, in alternating"
                f" {SOAK_SLICE_S:g} s slices"
            )
            soaks.update(soak(ctx, VARIANTS["otelkit-down"], VARIANTS["otelkit"], args.soak_minutes))
        ok = True
    finally:
        ctx.cleanup()
        receiver.close()
        closed.close()
        if ok:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            _progress(f"server logs kept in {logdir}")
    summary = summarize(runs, names)
    marks = targets(summary, soaks)
    print(render(info, args, summary, runs, soaks, marks))
    if args.json:
        payload = {
            "machine": info,
            "config": {
                k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "receiver_process"
            },
            "summary": summary,
            "targets": [dataclasses.asdict(t) for t in marks],
            "runs": [dataclasses.asdict(r) for r in runs],
            "soak": {k: dataclasses.asdict(s) for k, s in soaks.items()},
        }
        args.json.write_text(json.dumps(_no_nan(payload), indent=2, allow_nan=False) + "\n")
        _progress(f"wrote {args.json}")
    return 0


def _no_nan(value: Any) -> Any:
    """NaN (a missing median or ratio) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
