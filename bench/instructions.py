"""Instructions per request and per task under callgrind: what otelkit costs, without the machine's noise.

    python -m bench.instructions [--requests 1024] [--tasks 2048] [--variants bare,otelkit]
                                 [--workloads default,nolog,celery]

``bench.run`` measures what the targets are stated in — requests and tasks per second, as ratios
in one interleaved run — and on a shared VM those move by ±15 % from one minute to the next
(bench/README). This counts what does not move: the instructions the process under test executes
(all its threads: the request's, the event loop's and the export threads') per request or task,
with valgrind's callgrind. The same run twice differs by ~0.1 %, so a change of 1 % shows, on any
machine, however busy. Instructions are not time: memory stalls, system calls and the scheduler are
not in them (bench.run's ratios were 0.02–0.05 below the instruction ratios here), so this
checks a change; it does not replace bench.run's figures.

Each case is bench.run's own command — the same app or worker, the same launcher, the same
environment — started under ``valgrind --tool=callgrind --trace-children=yes`` (the launcher execs
the app: same PID), warmed up, then its counters are zeroed (``callgrind_control -z``), the load is
sent, the export of what it made is awaited at the receiver, and the counters are dumped
(``callgrind_control -d``). HTTP load is one HTTP/1.1 keep-alive connection, request after
request; Celery load is ``--tasks`` queued tasks drained by the solo worker. The batch processors'
schedule delays are raised so that, as in a loaded server, every export is a full batch of 512:
under callgrind (~50× slower) a 1-second delay would export a few items at a time and count the
per-batch cost many times over. Needs ``valgrind`` (Debian: ``apt-get install valgrind``) and, for
Celery, ``redis-server``; a case takes ~2–5 minutes.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import _compiled, celery_bench
from bench._cases import CELERY_VARIANTS, VARIANTS, WORKLOADS, Variant, Workload
from bench._procs import ROOT, BenchError, Cpus, Process, Receiver, free_port
from bench.run import _compile_sources, _server_cmd, _server_env, variant_root

NO_PIN = Cpus(None, set())
BATCH = 512  # OTEL_BSP/BLRP_MAX_EXPORT_BATCH_SIZE's default: what a loaded server exports at a time
# Exports only when a batch is full (and the periodic metric export not at all during a case).
FULL_BATCHES = {
    "OTEL_BSP_SCHEDULE_DELAY": "3600000",
    "OTEL_BLRP_SCHEDULE_DELAY": "3600000",
    "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
}
WARMUP = 300
DUMP = "counted"  # callgrind_control -d's reason, in the dump's header
STARTUP_TIMEOUT = 600.0


@dataclass
class Count:
    workload: str
    variant: str
    units: int  # requests or tasks counted
    total: int  # instructions, all threads
    main: int  # instructions of the main thread (the event loop, or the worker's consumer)

    @property
    def per_unit(self) -> float:
        return self.total / self.units


def _callgrind(outdir: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        "--separate-threads=yes",
        f"--callgrind-out-file={outdir}/cg.%p",
    ]


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=600)


def _dumped(outdir: Path, pid: int) -> tuple[int, int]:
    """(all threads, main thread) instructions in the dump ``callgrind_control -d`` wrote for ``pid``."""
    total = main = 0
    for path in [*outdir.glob(f"cg.{pid}"), *outdir.glob(f"cg.{pid}.*")]:  # not cg.<pid>7…
        with path.open() as f:
            head = f.read(4000)
        if f"Trigger: dump {DUMP}" not in head:
            continue  # the pre-exec launcher's profile, or the one at exit
        found = re.search(r"^summary: (\d+)", head, re.M)
        if found is None:
            continue
        thread = re.search(r"^thread: (\d+)", head, re.M)
        total += int(found.group(1))
        if thread is None or thread.group(1) == "1":
            main += int(found.group(1))
    if not total:
        raise BenchError(f"no callgrind dump for pid {pid} in {outdir}")
    return total, main


def _alive(process: Process, waiting_for: str) -> None:
    # Process.check_alive's start-up limit is bench.run's; under callgrind a start takes ~50× longer.
    if process.proc.poll() is not None:
        raise BenchError(
            f"{process.name!r} exited with status {process.proc.returncode} before {waiting_for}; its output:\n"
            f"{process.log_tail()}"
        )


def _wait_exported(receiver: Receiver, spans: int, process: Process) -> None:
    """Until ``spans`` spans have arrived and nothing more arrives for 5 s (the log batches)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last, since = None, time.monotonic()
    while True:
        items = receiver.counts()["items"]
        now = time.monotonic()
        if items != last:
            last, since = items, now
        elif items["traces"] >= spans and now - since >= 5:
            return
        _alive(process, f"exporting {spans} spans")
        if now > deadline:
            raise BenchError(f"{process.name!r}: {items['traces']} of {spans} spans arrived")
        time.sleep(0.5)


def _load(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for i in range(n):
            conn.request("GET", f"/items/{i}")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise BenchError(f"GET /items/{i} answered {response.status}")
    finally:
        conn.close()


def count_http(variant: Variant, workload: Workload, requests: int, receiver: Receiver, workdir: Path) -> Count:
    port = free_port()
    env = {**_server_env(variant, endpoint=receiver.endpoint, app_log=workload.app_log), **FULL_BATCHES}
    outdir = Path(tempfile.mkdtemp(prefix=f"{workload.name}-{variant.name}-", dir=workdir))
    cmd = [*_callgrind(outdir), *_server_cmd(variant, port, NO_PIN, workload)]
    server = Process(f"{workload.name}/{variant.name}", cmd, env, outdir / "server.log", variant_root(variant))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                _load(port, 1)
                break
            except (OSError, http.client.HTTPException):
                _alive(server, "answering")
                if time.monotonic() > deadline:
                    raise BenchError(f"{server.name!r} did not answer within {STARTUP_TIMEOUT:.0f} s") from None
                time.sleep(0.5)
        _load(port, WARMUP)
        spans_before = receiver.counts()["items"]["traces"]
        _control("-z", str(server.pid))
        _load(port, requests)
        if variant.launcher:  # the spans of the last full batch made in the window have arrived
            made = WARMUP + 1 + requests
            _wait_exported(receiver, max(spans_before, made // BATCH * BATCH), server)
        _control("-d", DUMP, str(server.pid))
        total, main = _dumped(outdir, server.pid)
        return Count(workload.name, variant.name, requests, total, main)
    finally:
        server.stop(signal.SIGINT)


def count_celery(
    variant: Variant, tasks: int, broker: celery_bench.RedisBroker, receiver: Receiver, workdir: Path
) -> Count:
    outdir = Path(tempfile.mkdtemp(prefix=f"celery-{variant.name}-", dir=workdir))
    marks = outdir / "marks"
    env = _server_env(variant, endpoint=receiver.endpoint, app_log=False, service="bench-worker")
    env.update(FULL_BATCHES, BENCH_REDIS_URL=broker.url, BENCH_CELERY_MARKS=str(marks))
    cmd = [*_callgrind(outdir), *celery_bench.worker_cmd(variant.launcher, NO_PIN)]
    worker = Process(f"celery/{variant.name}", cmd, env, outdir / "worker.log")
    try:
        broker.push(broker.ping)
        celery_bench._wait_for_mark(worker, marks, "ping", STARTUP_TIMEOUT)
        time.sleep(2)
        spans_before = receiver.counts()["items"]["traces"]
        _control("-z", str(worker.pid))
        broker.push(broker.tasks)
        celery_bench._wait_for_mark(worker, marks, "last", STARTUP_TIMEOUT + tasks)
        if variant.launcher:
            _wait_exported(receiver, max(spans_before, (1 + tasks) // BATCH * BATCH), worker)
        _control("-d", DUMP, str(worker.pid))
        total, main = _dumped(outdir, worker.pid)
        return Count("celery", variant.name, tasks, total, main)
    finally:
        worker.stop(signal.SIGTERM)


def report(counts: list[Count]) -> str:
    lines = [
        "| workload | variant | instructions per request/task | main thread | other threads | ×bare | +k vs bare |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    bare = {c.workload: c.per_unit for c in counts if c.variant == "bare"}
    for c in counts:
        base = bare.get(c.workload)
        ratio = f"{base / c.per_unit:.3f}" if base else "—"
        extra = f"{(c.per_unit - base) / 1000:+,.0f}" if base else "—"
        lines.append(
            f"| {c.workload} | {c.variant} | {c.per_unit:,.0f} | {c.main / c.units:,.0f} |"
            f" {(c.total - c.main) / c.units:,.0f} | {ratio} | {extra} |"
        )
    lines.append("")
    lines.append("×bare = bare's instructions ÷ the variant's (what throughput would be if time were instructions).")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2 * BATCH, help="requests counted per HTTP case")
    parser.add_argument("--tasks", type=int, default=4 * BATCH, help="tasks counted per Celery case")
    parser.add_argument(
        "--variants",
        default="bare,otelkit",
        help="bare, otelkit and/or otelkit-compiled (the compiled build; HTTP workloads only) (default: bare,otelkit)",
    )
    parser.add_argument("--workloads", default="default,nolog,celery", help="default, nolog and/or celery")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    choices = {"--variants": ("bare", "otelkit", "otelkit-compiled"), "--workloads": (*WORKLOADS, "celery")}
    problems = [
        f"{option} {value!r}: takes {','.join(choices[option])}"
        for option, given in (("--variants", variants), ("--workloads", workloads))
        for value in (given or [""])
        if value not in choices[option]
    ] + [
        f"{option} {value}: at least {BATCH}"
        for option, value in (("--requests", args.requests), ("--tasks", args.tasks))
        if value < BATCH
    ]
    if problems:
        print(f"error: bad value {problems[0]}", file=sys.stderr)
        return 2
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if "celery" in workloads and shutil.which("redis-server") is None:
        missing.append("redis-server")
    if missing:
        print(f"error: {', '.join(missing)} not found; apt-get install valgrind redis-server", file=sys.stderr)
        return 1
    try:
        if "otelkit" in variants:
            _compiled.check_pure_clone()
        _compile_sources((ROOT, _compiled.tree()) if "otelkit-compiled" in variants else (ROOT,))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts: list[Count] = []
    receiver = Receiver()
    broker: celery_bench.RedisBroker | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="otelkit-instructions-") as tmp:
            for workload in workloads:
                for name in variants:
                    if workload == "celery" and name not in CELERY_VARIANTS:
                        continue  # the compiled build is counted on the HTTP workloads
                    print(f"… {workload}/{name}", file=sys.stderr, flush=True)
                    if workload == "celery":
                        if broker is None:  # one broker: bench.tasks reads its URL once, at import
                            broker = celery_bench.RedisBroker(Path(tmp))
                            broker.prepare(args.tasks)
                        count = count_celery(CELERY_VARIANTS[name], args.tasks, broker, receiver, Path(tmp))
                    else:
                        count = count_http(VARIANTS[name], WORKLOADS[workload], args.requests, receiver, Path(tmp))
                    counts.append(count)
                    print(
                        f"  {count.per_unit:,.0f} instructions per {'task' if workload == 'celery' else 'request'}",
                        file=sys.stderr,
                        flush=True,
                    )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if broker is not None:
            broker.close()
        receiver.close()
        _compiled.remove_tree()
    print(report(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
