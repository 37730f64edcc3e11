"""Instructions per request and per task under callgrind: what otelkit costs, without the machine's noise.

    python -m bench.instructions [--requests 1024] [--tasks 2048] [--variants bare,otelkit]
                                 [--workloads default,nolog,celery] [--env KEY=VALUE ...]
                                 [--caches [SIZE,WAYS,LINE]]

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

``--env KEY=VALUE`` (repeatable) adds an ``OTEL_*``/``OTELKIT_*`` setting to the otelkit variants
(bare reads none), to count what one part costs by taking it away: ``OTELKIT_LOG_CONSOLE=off``
(the console lines), ``OTEL_TRACES_SAMPLER=always_off`` (the spans), ``OTEL_LOGS_EXPORTER=none``
(the log records' export).

``--caches`` also simulates the caches (callgrind's ``--cache-sim=yes``), for what instructions
do not show: on these VMs otelkit's time ratios sit below its instruction ratios, and there are
no hardware counters to say why. The last level simulated is this CPU's L2 (read from
``/sys/devices/system/cpu/cpu0/cache``; or give ``SIZE,WAYS,LINE`` in bytes), not the L3 valgrind
would pick: a request's code and data are well under an L3 of megabytes and well over an L2, so
the L2's misses are the ones that cost (~40 cycles each, hits of the L3). Reported per request or
task: the misses of that level (instruction and data), and bare's ÷ the variant's. A case takes ~1.5× as long.
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


# The events of a last-level miss in callgrind's cache simulation: instruction reads, data reads, data writes.
LL_MISSES = ("ILmr", "DLmr", "DLmw")


@dataclass
class Count:
    workload: str
    variant: str
    units: int  # requests or tasks counted
    total: int  # instructions, all threads
    main: int  # instructions of the main thread (the event loop, or the worker's consumer)
    misses: int | None = None  # last-level misses, all threads (--caches)
    main_misses: int | None = None  # those of the main thread

    @property
    def per_unit(self) -> float:
        return self.total / self.units


@dataclass(frozen=True)
class Geometry:
    """A simulated cache level: ``--LL=size,ways,line`` for valgrind."""

    size: int
    ways: int
    line: int

    def option(self) -> str:
        return f"--LL={self.size},{self.ways},{self.line}"

    def __str__(self) -> str:
        return f"{self.size // 1024} KiB, {self.ways}-way, {self.line}-byte lines"


def _sysfs_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text.rstrip("KM")) * scale


def l2_geometry(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> Geometry:
    """This CPU's L2 as Linux describes it; BenchError when it does not."""
    for index in sorted(root.glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2" or (index / "type").read_text().strip() == "Instruction":
                continue
            size = _sysfs_size((index / "size").read_text())
            ways = int((index / "ways_of_associativity").read_text())
            line = int((index / "coherency_line_size").read_text())
        except (OSError, ValueError):
            continue
        return parse_geometry(f"{size},{ways},{line}")  # valgrind's rule checked for it too
    raise BenchError(f"--caches: no L2 cache described under {root}; give it as SIZE,WAYS,LINE, e.g. 524288,8,64")


def parse_geometry(text: str) -> Geometry:
    """``SIZE,WAYS,LINE`` in bytes, valid for valgrind (its number of sets a power of two)."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--caches {text!r}: takes SIZE,WAYS,LINE in bytes, e.g. 524288,8,64")
    size, ways, line = (int(p) for p in parts)
    sets = size // (ways * line) if size % (ways * line) == 0 else 0
    if sets < 1 or sets & (sets - 1):
        raise ValueError(f"--caches {text!r}: SIZE / (WAYS × LINE) must be a whole power of two (valgrind's sets)")
    return Geometry(size, ways, line)


def _callgrind(outdir: Path, caches: Geometry | None = None) -> list[str]:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        "--separate-threads=yes",
        f"--callgrind-out-file={outdir}/cg.%p",
    ]
    if caches is not None:
        cmd[2:2] = ["--cache-sim=yes", caches.option()]
    return cmd


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=600)


def _dumped(outdir: Path, pid: int) -> tuple[int, int, int | None, int | None]:
    """(all threads, main thread) instructions in the dump ``callgrind_control -d`` wrote for ``pid``,
    and the last-level misses (all threads, main thread) when the caches were simulated (else None)."""
    total = main = 0
    misses: int | None = None
    main_misses: int | None = None
    for path in [*outdir.glob(f"cg.{pid}"), *outdir.glob(f"cg.{pid}.*")]:  # not cg.<pid>7…
        with path.open() as f:
            head = f.read(4000)
        if f"Trigger: dump {DUMP}" not in head:
            continue  # the pre-exec launcher's profile, or the one at exit
        found = re.search(r"^summary: ([\d ]+)$", head, re.M)
        names = re.search(r"^events: (.+)$", head, re.M)
        if found is None or names is None:
            continue
        counts = dict(zip(names.group(1).split(), (int(n) for n in found.group(1).split()), strict=False))
        thread = re.search(r"^thread: (\d+)", head, re.M)
        is_main = thread is None or thread.group(1) == "1"
        total += counts["Ir"]
        if is_main:
            main += counts["Ir"]
        if all(event in counts for event in LL_MISSES):
            missed = sum(counts[event] for event in LL_MISSES)
            misses = (misses or 0) + missed
            if is_main:
                main_misses = (main_misses or 0) + missed
    if not total:
        raise BenchError(f"no callgrind dump for pid {pid} in {outdir}")
    return total, main, misses, main_misses


def _alive(process: Process, waiting_for: str) -> None:
    # Process.check_alive's start-up limit is bench.run's; under callgrind a start takes ~50× longer.
    if process.proc.poll() is not None:
        raise BenchError(
            f"{process.name!r} exited with status {process.proc.returncode} before {waiting_for}; its output:\n"
            f"{process.log_tail()}"
        )


def _wait_exported(receiver: Receiver, spans: int, process: Process) -> None:
    """Until ``spans`` spans have arrived and nothing more arrives for 5 s (the log batches; 0 spans: only that)."""
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


@dataclass(frozen=True)
class Options:
    """What every case of one run shares: settings added to the otelkit variants, the cache simulated."""

    env: tuple[tuple[str, str], ...] = ()
    caches: Geometry | None = None

    def label(self, variant: Variant) -> str:
        if not variant.launcher or not self.env:
            return variant.name
        return f"{variant.name} ({' '.join(f'{k}={v}' for k, v in self.env)})"

    @property
    def every_span_exported(self) -> bool:
        """Whether every request's or task's span is exported (else the count waits only for the export to go quiet)."""
        settings = dict(self.env)
        sampler = settings.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        exporter = settings.get("OTEL_TRACES_EXPORTER", "otlp")
        return sampler in ("always_on", "parentbased_always_on") and exporter == "otlp"

    def environ(self, variant: Variant, base: dict[str, str]) -> dict[str, str]:
        env = {**base, **FULL_BATCHES}
        if variant.launcher:
            env.update(self.env)
        return env


def parse_env(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``--env KEY=VALUE`` settings: OTEL_* or OTELKIT_* names only (bench.run's own are not for changing)."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith(("OTEL_", "OTELKIT_")) or not key.replace("_", "").isalnum():
            raise ValueError(
                f"--env {item!r}: takes KEY=VALUE with an OTEL_* or OTELKIT_* KEY, e.g. OTELKIT_LOG_CONSOLE=off"
            )
        pairs.append((key, value))
    return tuple(pairs)


def count_http(
    variant: Variant, workload: Workload, requests: int, receiver: Receiver, workdir: Path, options: Options = Options()
) -> Count:
    port = free_port()
    env = options.environ(variant, _server_env(variant, endpoint=receiver.endpoint, app_log=workload.app_log))
    outdir = Path(tempfile.mkdtemp(prefix=f"{workload.name}-{variant.name}-", dir=workdir))
    cmd = [*_callgrind(outdir, options.caches), *_server_cmd(variant, port, NO_PIN, workload)]
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
            expected = made // BATCH * BATCH if options.every_span_exported else 0
            _wait_exported(receiver, max(spans_before, expected), server)
        _control("-d", DUMP, str(server.pid))
        total, main, misses, main_misses = _dumped(outdir, server.pid)
        return Count(workload.name, options.label(variant), requests, total, main, misses, main_misses)
    finally:
        server.stop(signal.SIGINT)


def count_celery(
    variant: Variant,
    tasks: int,
    broker: celery_bench.RedisBroker,
    receiver: Receiver,
    workdir: Path,
    options: Options = Options(),
) -> Count:
    outdir = Path(tempfile.mkdtemp(prefix=f"celery-{variant.name}-", dir=workdir))
    marks = outdir / "marks"
    env = options.environ(
        variant, _server_env(variant, endpoint=receiver.endpoint, app_log=False, service="bench-worker")
    )
    env.update(BENCH_REDIS_URL=broker.url, BENCH_CELERY_MARKS=str(marks))
    cmd = [*_callgrind(outdir, options.caches), *celery_bench.worker_cmd(variant.launcher, NO_PIN)]
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
            expected = (1 + tasks) // BATCH * BATCH if options.every_span_exported else 0
            _wait_exported(receiver, max(spans_before, expected), worker)
        _control("-d", DUMP, str(worker.pid))
        total, main, misses, main_misses = _dumped(outdir, worker.pid)
        return Count("celery", options.label(variant), tasks, total, main, misses, main_misses)
    finally:
        worker.stop(signal.SIGTERM)


def report(counts: list[Count], caches: Geometry | None = None) -> str:
    simulated = caches is not None and all(c.misses is not None for c in counts)
    head = "| workload | variant | instructions per request/task | main thread | other threads | ×bare | +k vs bare |"
    rule = "|---|---|---:|---:|---:|---:|---:|"
    if simulated:
        head += " L2-sized misses | main thread | misses ×bare |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    bare = {c.workload: c for c in counts if c.variant == "bare"}
    for c in counts:
        base = bare.get(c.workload)
        ratio = f"{base.per_unit / c.per_unit:.3f}" if base else "—"
        extra = f"{(c.per_unit - base.per_unit) / 1000:+,.0f}" if base else "—"
        line = (
            f"| {c.workload} | {c.variant} | {c.per_unit:,.0f} | {c.main / c.units:,.0f} |"
            f" {(c.total - c.main) / c.units:,.0f} | {ratio} | {extra} |"
        )
        if simulated:
            assert c.misses is not None
            misses = c.misses / c.units
            base_misses = base.misses / base.units if base is not None and base.misses else None
            main_misses = (c.main_misses or 0) / c.units
            ratio_misses = f"{base_misses / misses:.3f}" if base_misses and misses else "—"
            line += f" {misses:,.0f} | {main_misses:,.0f} | {ratio_misses} |"
        lines.append(line)
    lines.append("")
    lines.append("×bare = bare's instructions ÷ the variant's (what throughput would be if time were instructions).")
    if simulated:
        lines.append(
            f"L2-sized misses: of a simulated last level of {caches} (instruction and data, all threads);"
            " misses ×bare = bare's ÷ the variant's."
        )
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
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an OTEL_*/OTELKIT_* setting added to the otelkit variants (repeatable), e.g. OTELKIT_LOG_CONSOLE=off",
    )
    parser.add_argument(
        "--caches",
        nargs="?",
        const="l2",
        metavar="SIZE,WAYS,LINE",
        help="also simulate the caches, with this CPU's L2 (or SIZE,WAYS,LINE in bytes) as the last level",
    )
    return parser


def _caches(given: str | None) -> Geometry | None:
    if given is None:
        return None
    return l2_geometry() if given == "l2" else parse_geometry(given)


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
    try:
        options = Options(env=parse_env(args.env), caches=_caches(args.caches))
    except (ValueError, BenchError) as exc:
        problems.append(str(exc))
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
            _compiled.check_default_clone()
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
                        count = count_celery(CELERY_VARIANTS[name], args.tasks, broker, receiver, Path(tmp), options)
                    else:
                        count = count_http(
                            VARIANTS[name], WORKLOADS[workload], args.requests, receiver, Path(tmp), options
                        )
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
    print(report(counts, options.caches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
