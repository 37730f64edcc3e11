"""Overhead benchmark: ``python -m bench.run`` starts each variant of the same FastAPI app (and of one
Celery worker), loads it, and prints req/s, p50/p99 and CPU per request as ratios to the bare app
and to the bare app given otelkit's GC tuning, plus start-up, RSS, shutdown, Celery task throughput,
RSS after many requests, and how much of what the app wrote reached the OTLP receiver.
See bench/README.md.

How one run is laid out (2 cores): the process under test is pinned to the last CPU this process
may use; wrk, the OTLP receiver (``otelkit.testing.OTLPReceiver`` with ``keep=False``, in its own
process), Redis and this script share the others, so neither the load generator nor the receiver
steals the server's core. Cases — a variant under a workload: the default deployment, the no-log
endpoint, the Celery worker — are interleaved round by round, their order rotated each round, so
a noisy neighbour or thermal drift hits every case alike; each figure is the median over rounds
and each ratio is against the same workload's bare median from the same run.

Per HTTP case and round: ``--startup-samples`` − 1 start/stop cycles timed only for start-up
(default-deployment cases only; it is the noisiest figure; the round keeps the median), then one
measured server start: spawn → poll ``GET /items/1`` until it answers (startup time) → wrk
warm-up → wrk measured run, with the server's utime+stime (all threads, /proc/PID/stat) read
before and after (CPU per request) → VmRSS → SIGINT and time until exit (shutdown). SIGINT, not
SIGTERM: uvicorn re-raises SIGTERM and the stock SDK then never flushes (FACTS), and every variant
must stop alike. The collector-down soak (``--soak-minutes``) uses SIGTERM on purpose: that is
what Kubernetes sends. Celery cases: :mod:`bench.celery_bench`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import _compiled
from bench._cases import (
    CELERY_VARIANTS,
    DEFAULT_NOLOG_VARIANTS,
    VARIANTS,
    WORKLOADS,
    Case,
    RssRun,
    Run,
    SoakRun,
    Variant,
    Workload,
    expected_loss,
    parse_variants,
)
from bench._procs import (
    BIN,
    ROOT,
    URL_PATH,
    BenchError,
    Cpus,
    Process,
    Receiver,
    Server,
    cpu_seconds,
    free_port,
    launcher_bin,
    pick_cpus,
    received_since,
    receiver_main,
    rss_mib,
    run_wrk,
)
from bench._report import RSS_SLICE_S, machine, no_nan, render, summarize, summarize_celery, targets

INSTALL_HINT = "pip install -e '.[bench,test]' (see bench/README.md)"


# --------------------------------------------------------------------------- servers


def variant_root(variant: Variant) -> Path:
    """Where ``variant``'s processes start and import otelkit from: the clone, or the compiled build's copy."""
    return _compiled.tree() if variant.compiled else ROOT


def _server_env(variant: Variant, *, endpoint: str, app_log: bool, service: str = "bench-app") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_", "BENCH_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variant.env)
    if variant.compiled:
        env = _compiled.env_for(variant_root(variant), env)
    if variant.launcher:
        env["OTEL_SERVICE_NAME"] = service
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    if app_log:
        env["BENCH_LOG_PER_REQUEST"] = "1"
    return env


def _server_cmd(variant: Variant, port: int, cpus: Cpus, workload: Workload) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.app:app",
        "--app-dir",
        str(variant_root(variant)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if not workload.access_log:
        cmd += ["--no-access-log", "--log-level", "warning"]
    if variant.launcher:
        cmd = [launcher_bin(variant.launcher), *cmd]
    return cpus.pin(cmd)


def _access_lines(output: str) -> int:
    """Requests the server logged, in uvicorn's own format or otelkit's JSON console."""
    needle = f"GET {URL_PATH} HTTP/1.1"
    return sum(1 for line in output.splitlines() if needle in line)


# --------------------------------------------------------------------------- one measurement


@dataclass
class Context:
    args: argparse.Namespace
    cpus: Cpus
    receiver: Receiver
    closed_endpoint: str
    logdir: Path
    processes: list[Process] = field(default_factory=list)

    def start(self, variant: Variant, workload: Workload) -> Server:
        port = free_port()
        endpoint = self.closed_endpoint if variant.collector_down else self.receiver.endpoint
        env = _server_env(variant, endpoint=endpoint, app_log=workload.app_log)
        log_path = self.logdir / f"{workload.name}-{variant.name}-{len(self.processes) + 1}.log"
        cmd = _server_cmd(variant, port, self.cpus, workload)
        server = Server(variant.name, cmd, env, port, log_path, variant_root(variant))
        self.processes.append(server)
        return server

    def cleanup(self) -> None:
        for process in self.processes:
            process.kill()


def measure(ctx: Context, case: Case, round_no: int, position: int) -> Run:
    args = ctx.args
    variant, workload = VARIANTS[case.variant], WORKLOADS[case.workload]
    # Start-up varies more than anything else on a noisy VM: extra start/stop cycles, timed only.
    # The targets read it from the default deployment; other workloads time the measured start only.
    startups = []
    for _ in range(args.startup_samples - 1 if workload.name == "default" else 0):
        extra = ctx.start(variant, workload)
        startups.append(extra.startup_s)
        extra.stop(signal.SIGINT)
    before = ctx.receiver.counts()
    server = ctx.start(variant, workload)
    startups.append(server.startup_s)
    warm = run_wrk(server.port, args.warmup, args.connections)
    cpu0 = cpu_seconds(server.pid)
    result = run_wrk(server.port, args.duration, args.connections)
    cpu = cpu_seconds(server.pid) - cpu0
    rss = rss_mib(server.pid)
    shutdown = server.stop(signal.SIGINT)
    received = received_since(ctx.receiver.counts(), before)
    if workload.access_log:
        served, exact = _access_lines(server.output()), True
    else:
        served, exact = 1 + warm.requests + result.requests, False
    return Run(
        case=case.key,
        workload=workload.name,
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
        served=served,
        served_exact=exact,
        received=received,
        lost=expected_loss(variant, workload, served, received),
        errors="; ".join(e for e in (warm.errors, result.errors) if e),
    )


# --------------------------------------------------------------------------- soak and RSS


SOAK_SLICE_S = 30.0


def _alternate(
    ctx: Context, servers: dict[str, Server], slice_s: float, more: Callable[[dict[str, dict[str, Any]]], bool]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[float, float]]]]:
    """Load ``servers`` in alternating ``slice_s`` slices while ``more(totals)``; VmRSS after each slice.

    Sequential runs would compare two stretches of a noisy VM; alternating slices lets drift hit
    every server alike, as the rounds do.
    """
    args = ctx.args
    for server in servers.values():
        run_wrk(server.port, args.warmup, args.connections)
    totals: dict[str, dict[str, Any]] = {
        name: {"requests": 0, "seconds": 0.0, "cpu": 0.0, "p99": [], "errors": []} for name in servers
    }
    rss: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    i = 0
    while more(totals):
        i += 1
        for name, server in servers.items():
            cpu0 = cpu_seconds(server.pid)
            result = run_wrk(server.port, slice_s, args.connections)
            total = totals[name]
            total["cpu"] += cpu_seconds(server.pid) - cpu0
            total["requests"] += result.requests
            total["seconds"] += result.seconds
            total["p99"].append(result.p99_ms)
            if result.errors:
                total["errors"].append(result.errors)
            rss[name].append((round(total["seconds"], 1), round(rss_mib(server.pid), 2)))
        _progress(
            f"  slice {i}: "
            + ", ".join(
                f"{n} {totals[n]['requests']} requests {totals[n]['requests'] / max(totals[n]['seconds'], 1e-9):.0f}"
                f" req/s RSS {rss[n][-1][1]:.1f} MiB"
                for n in servers
            )
        )
    return totals, rss


def soak(ctx: Context, down: Variant, up: Variant, minutes: float) -> dict[str, SoakRun]:
    """``minutes`` of load on each of ``down`` and ``up`` (default deployment), in alternating slices.

    The collector stays down for the whole soak (twice ``minutes``), RSS is sampled after every
    slice of each server's load, and both get SIGTERM at the end.
    """
    slices = max(1, round(minutes * 60 / SOAK_SLICE_S))
    workload = WORKLOADS["default"]
    servers = {v.name: ctx.start(v, workload) for v in (down, up)}
    totals, rss = _alternate(ctx, servers, SOAK_SLICE_S, lambda t: len(t[down.name]["p99"]) < slices)
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


def rss_after(ctx: Context, names: list[str], requests: int) -> dict[str, RssRun]:
    """VmRSS of each variant (default deployment) after ``requests`` requests, loaded in alternating slices."""
    workload = WORKLOADS["default"]
    before = ctx.receiver.counts()
    servers = {name: ctx.start(VARIANTS[name], workload) for name in names}
    start = {name: rss_mib(s.pid) for name, s in servers.items()}
    totals, rss = _alternate(ctx, servers, RSS_SLICE_S, lambda t: any(x["requests"] < requests for x in t.values()))
    out = {}
    for name, server in servers.items():
        total = totals[name]
        server.stop(signal.SIGINT)
        out[name] = RssRun(
            variant=name,
            requests=total["requests"],
            rss_start_mib=start[name],
            rss_mib=rss[name][-1][1],
            rps=total["requests"] / max(total["seconds"], 1e-9),
            lost=None,
            errors="; ".join(total["errors"]),
        )
    received = received_since(ctx.receiver.counts(), before)
    exporting = [name for name in servers if VARIANTS[name].launcher]
    if len(exporting) == 1:  # what arrived is all its own
        name = exporting[0]
        out[name].lost = expected_loss(VARIANTS[name], workload, _access_lines(servers[name].output()), received)
    return out


# --------------------------------------------------------------------------- main


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_setup(cases: list[Case], args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk not found on PATH; install it (Debian/Ubuntu: apt-get install wrk)")
    wanted = [VARIANTS[c.variant] for c in cases if c.workload != "celery"]
    wanted += [CELERY_VARIANTS[c.variant] for c in cases if c.workload == "celery"]
    if args.soak_minutes:
        wanted += [VARIANTS["otelkit"], VARIANTS["otelkit-down"]]
    if args.rss_requests:
        wanted += [VARIANTS["bare"], VARIANTS["otelkit"]]
    if any(not v.compiled and v.launcher for v in wanted):
        _compiled.check_default_clone()
    missing = sorted({dist for v in wanted for module, dist in v.needs if importlib.util.find_spec(module) is None})
    if importlib.util.find_spec("otelkit") is None:
        missing.append("otelkit")  # the OTLP receiver is otelkit.testing's
    if missing:
        raise BenchError(
            f"{sys.executable} lacks {', '.join(missing)}; install the bench dependencies: {INSTALL_HINT},"
            " or leave those variants out (--variants, --nolog-variants, --celery-tasks 0)"
        )
    if any(c.workload == "celery" for c in cases) and shutil.which("redis-server") is None:
        raise BenchError(
            "redis-server not found on PATH; install it (Debian/Ubuntu: apt-get install redis-server),"
            " or skip the Celery figure with --celery-tasks 0"
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark otelkit's overhead against bare FastAPI, bare Celery and the alternatives"
        " (see bench/README.md).",
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; 0 skips to RSS and soak)")
    p.add_argument("--duration", type=float, default=10, help="seconds of measured load per run (default 10)")
    p.add_argument(
        "--startup-samples",
        type=int,
        default=3,
        help="server starts per default-deployment variant and round whose start-up time is measured"
        " (default 3; the median is kept)",
    )
    p.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load before each run (default 2)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument(
        "--variants",
        type=parse_variants,
        default=list(VARIANTS),
        help=f"default-deployment variants, comma-separated, from: {','.join(VARIANTS)} (default: all)",
    )
    p.add_argument(
        "--nolog-variants",
        type=lambda text: parse_variants(text, empty_ok=True),
        default=DEFAULT_NOLOG_VARIANTS.split(","),
        help=f"no-log endpoint variants (default {DEFAULT_NOLOG_VARIANTS}; 'none' skips the workload)",
    )
    p.add_argument(
        "--celery-tasks",
        type=int,
        default=3000,
        help="tasks each Celery worker drains per round (default 3000; 0 skips the Celery figure)",
    )
    p.add_argument(
        "--rss-requests",
        type=int,
        default=100_000,
        help="requests before RSS is read, bare vs otelkit, after the rounds (default 100000; 0 skips)",
    )
    p.add_argument(
        "--soak-minutes",
        type=float,
        default=0,
        help="collector-down soak: minutes of load on otelkit-down, then as long on otelkit (collector up)"
        " for the throughput ratio (default 0 = skip; the issue's soak is 5)",
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="also write every measurement to this JSON file")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 round × 3 s, 300 Celery tasks, RSS after 5000 requests (overrides those options)",
    )
    p.add_argument("--receiver-process", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.receiver_process:
        receiver_main()
        return 0
    if args.quick:
        args.rounds, args.duration, args.celery_tasks, args.rss_requests = 1, 3.0, 300, 5000
    if (
        args.rounds < 0
        or args.duration < 1
        or args.connections < 1
        or args.soak_minutes < 0
        or args.warmup < 0
        or args.startup_samples < 1
        or args.celery_tasks < 0
        or args.rss_requests < 0
    ):
        parser.error(
            "--rounds, --soak-minutes, --celery-tasks and --rss-requests must be ≥ 0, --duration, --connections"
            " and --startup-samples ≥ 1, --warmup ≥ 0"
        )
    try:
        return _run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _compile_sources(roots: tuple[Path, ...] = (ROOT,)) -> None:
    """Byte-compile otelkit and the bench app, as installing a wheel does.

    An editable install leaves no ``.pyc`` files, and with ``PYTHONDONTWRITEBYTECODE`` set (as on
    CI machines and in many images) every server start would compile otelkit from source again:
    start-up time no installed otelkit ever pays.
    """
    import compileall

    for root in roots:
        for folder in ("otelkit", "bench"):
            compileall.compile_dir(root / folder, quiet=1)


def _cases(args: argparse.Namespace) -> list[Case]:
    cases = [Case("default", v) for v in args.variants]
    cases += [Case("nolog", v) for v in args.nolog_variants]
    if args.celery_tasks:
        cases += [Case("celery", v) for v in CELERY_VARIANTS]
    return cases


def _rotations(cases: list[Case], rounds: int) -> Iterator[tuple[int, list[Case]]]:
    for r in range(rounds):
        k = r % len(cases)
        yield r + 1, cases[k:] + cases[:k]


def _run(args: argparse.Namespace) -> int:
    cases = _cases(args) if args.rounds else []
    _check_setup(cases, args)
    for workload in ("default", "nolog"):
        names = [c.variant for c in cases if c.workload == workload]
        if names and "bare" not in names:
            _progress(f"warning: 'bare' is not among the {workload} variants: no ratios will be computed there")
    try:
        return _measure(args, cases)
    finally:
        _compiled.remove_tree()  # the compiled variants' copy of the clone, however the run ended


def _measure(args: argparse.Namespace, cases: list[Case]) -> int:
    from bench import celery_bench

    if any(VARIANTS[c.variant].compiled for c in cases if c.workload != "celery"):
        _compile_sources((ROOT, _compiled.tree()))  # built (or taken from the cache) before any measurement
    else:
        _compile_sources()
    cpus = pick_cpus()
    info = machine(cpus)
    _progress(f"bench: {info['pinning']}; process logs in a temporary directory, kept on failure")
    logdir = Path(tempfile.mkdtemp(prefix="otelkit-bench-"))
    # A bound socket that never listens: connections to it are refused at once, and no other
    # process can take the port while the run lasts.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    receiver = Receiver()
    broker: celery_bench.RedisBroker | None = None
    ctx = Context(args, cpus, receiver, f"http://127.0.0.1:{closed.getsockname()[1]}", logdir)
    runs: list[Run] = []
    celery_runs: list[celery_bench.CeleryRun] = []
    rss: dict[str, RssRun] = {}
    soaks: dict[str, SoakRun] = {}
    ok = False
    try:
        if any(c.workload == "celery" for c in cases):
            broker = celery_bench.RedisBroker(logdir)
            broker.prepare(args.celery_tasks)
        for round_no, order in _rotations(cases, args.rounds):
            for position, case in enumerate(order):
                if case.workload == "celery":
                    assert broker is not None
                    variant = CELERY_VARIANTS[case.variant]
                    crun = celery_bench.measure_celery(
                        name=case.variant,
                        launcher=variant.launcher,
                        env=_server_env(variant, endpoint=receiver.endpoint, app_log=False, service="bench-worker"),
                        broker=broker,
                        receiver=receiver,
                        cpus=cpus,
                        logdir=logdir,
                        round_no=round_no,
                        position=position,
                        register=ctx.processes.append,
                    )
                    celery_runs.append(crun)
                    _progress(
                        f"[round {round_no}/{args.rounds}] {case.key:20} {crun.tasks_per_s:8.0f} tasks/s"
                        f"  {crun.cpu_us_per_task:6.0f} µs CPU/task  ready {crun.ready_s:.2f} s"
                        f"  shutdown {crun.shutdown_s:.2f} s  spans {crun.received['traces']}"
                        f"  records {crun.received['log_scopes']}"
                    )
                    continue
                run = measure(ctx, case, round_no, position)
                runs.append(run)
                _progress(
                    f"[round {round_no}/{args.rounds}] {case.key:20} {run.rps:8.0f} req/s  p99 {run.p99_ms:6.2f} ms"
                    f"  {run.cpu_us_per_req:6.0f} µs CPU/req  startup {run.startup_s:.2f} s"
                    f"  shutdown {run.shutdown_s:.2f} s  spans {run.received['traces']}/{run.served} requests"
                    + (f"  lost {run.lost}" if run.lost is not None else "")
                )
        if args.rss_requests:
            _progress(f"RSS: bare and otelkit (default deployment) until {args.rss_requests:,} requests each")
            rss.update(rss_after(ctx, ["bare", "otelkit"], args.rss_requests))
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
        if broker is not None:
            broker.close()
        closed.close()
        if ok:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            _progress(f"process logs kept in {logdir}")
    summary = summarize(runs, cases)
    celery = summarize_celery(celery_runs)
    marks = targets(summary, celery, rss, soaks, args.rss_requests)
    print(render(info, args, summary, celery, rss, runs, celery_runs, soaks, marks))
    if args.json:
        payload = {
            "machine": info,
            "config": {
                k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "receiver_process"
            },
            "summary": summary,
            "celery": celery,
            "rss": {k: dataclasses.asdict(r) for k, r in rss.items()},
            "targets": [dataclasses.asdict(t) for t in marks],
            "runs": [dataclasses.asdict(r) for r in runs],
            "celery_runs": [dataclasses.asdict(r) for r in celery_runs],
            "soak": {k: dataclasses.asdict(s) for k, s in soaks.items()},
        }
        args.json.write_text(json.dumps(no_nan(payload), indent=2, allow_nan=False) + "\n")
        _progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
