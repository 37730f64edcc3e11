"""The report of ``bench.run``: medians, ratios to bare and bare-gc, the targets, the markdown tables."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._cases import (
    CELERY_VARIANTS,
    TASK_LOGGER,
    VARIANTS,
    WORKLOADS,
    Case,
    RssRun,
    Run,
    SoakRun,
)
from bench._procs import ROOT, URL_PATH, Cpus

RSS_SLICE_S = 10.0
"""Seconds per alternating load slice of the RSS figure."""

# --------------------------------------------------------------------------- report


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def _ratio(a: float, b: float | None) -> float:
    return a / b if b else float("nan")


def summarize(runs: list[Run], cases: list[Case]) -> dict[str, dict[str, Any]]:
    keys = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "server_cpu_share", "startup_s", "rss_mib", "shutdown_s")
    out: dict[str, dict[str, Any]] = {}
    for case in cases:
        mine = [r for r in runs if r.case == case.key]
        if not mine:
            continue
        row: dict[str, Any] = {"workload": case.workload, "variant": case.variant}
        row.update({k: _median([getattr(r, k) for r in mine]) for k in keys})
        row["spans_per_request"] = _median([r.received["traces"] / r.served for r in mine])
        row["logs_per_request"] = _median([r.received["logs"] / r.served for r in mine])
        losses = [r.lost for r in mine if r.lost is not None]
        row["lost"] = sum(losses) if losses else None
        row["rounds"] = len(mine)
        out[case.key] = row
    for row in out.values():
        bare = out.get(f"{row['workload']}/bare")
        bare_gc = out.get(f"{row['workload']}/bare-gc")
        for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
            row[f"{k}_x"] = _ratio(row[k], bare[k]) if bare else float("nan")
            row[f"{k}_xgc"] = _ratio(row[k], bare_gc[k]) if bare_gc else float("nan")
        row["cpu_delta_us"] = row["cpu_us_per_req"] - bare["cpu_us_per_req"] if bare else float("nan")
        row["cpu_delta_gc_us"] = row["cpu_us_per_req"] - bare_gc["cpu_us_per_req"] if bare_gc else float("nan")
        row["startup_delta_s"] = row["startup_s"] - bare["startup_s"] if bare else float("nan")
    return out


def summarize_celery(runs: list[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in CELERY_VARIANTS:
        mine = [r for r in runs if r.variant == name]
        if not mine:
            continue
        row: dict[str, Any] = {
            k: _median([getattr(r, k) for r in mine])
            for k in ("tasks_per_s", "cpu_us_per_task", "ready_s", "rss_mib", "shutdown_s")
        }
        tasks = mine[0].tasks + 1  # the ping ran too
        row["spans_per_task"] = _median([r.received["traces"] / tasks for r in mine])
        row["logs_per_task"] = _median([r.received["logs"] / tasks for r in mine])
        row["task_logs_per_task"] = _median([r.received["log_scopes"].get(TASK_LOGGER, 0) / tasks for r in mine])
        if CELERY_VARIANTS[name].launcher:
            lost = 0
            for r in mine:
                lost += max(0, tasks - r.received["log_scopes"].get(TASK_LOGGER, 0))
                lost += max(0, tasks - r.received["traces"])
                lost += r.queue_left
            row["lost"] = lost
        else:
            row["lost"] = sum(r.queue_left for r in mine) or None
        row["rounds"] = len(mine)
        out[name] = row
    bare = out.get("bare")
    for row in out.values():
        row["tasks_per_s_x"] = _ratio(row["tasks_per_s"], bare["tasks_per_s"]) if bare else float("nan")
        row["cpu_delta_us"] = row["cpu_us_per_task"] - bare["cpu_us_per_task"] if bare else float("nan")
    return out


@dataclass
class Target:
    what: str
    value: str
    ok: bool | None  # None: not measured in this run


def targets(
    summary: dict[str, dict[str, Any]],
    celery: dict[str, dict[str, Any]],
    rss: dict[str, RssRun],
    soaks: dict[str, SoakRun],
    rss_requests: int,
) -> list[Target]:
    out: list[Target] = []

    def ratio(case: str, key: str, what: str, ok: Callable[[float], bool], fmt: str = "{:.2f}×") -> None:
        row = summary.get(case)
        base = "bare-gc" if key.endswith("_xgc") else "bare"
        if row is None or f"{case.split('/')[0]}/{base}" not in summary:
            out.append(Target(what, "not run", None))
        else:
            out.append(Target(what, fmt.format(row[key]), ok(row[key])))

    # The default build (Python with its C encoder) always; the compiled build's rows when its cases ran.
    for kit, build in (("otelkit", "otelkit"), ("otelkit-compiled", "otelkit compiled")):
        if kit != "otelkit" and not any(case.split("/")[1].startswith(kit) for case in summary):
            continue
        ten = f"{kit}-10"
        ratio(f"default/{kit}", "rps_x", f"default deployment, {build} 100 %: req/s ≥ 0.75× bare", lambda x: x >= 0.75)
        ratio(f"default/{ten}", "rps_x", f"default deployment, {build} 10 %: req/s ≥ 0.80× bare", lambda x: x >= 0.80)
        ratio(
            f"default/{kit}",
            "rps_xgc",
            f"default deployment, {build} 100 %: req/s ≥ 0.70× bare-gc",
            lambda x: x >= 0.70,
        )
        ratio(f"default/{kit}", "p99_ms_x", f"default deployment, {build} 100 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
        ratio(f"default/{ten}", "p99_ms_x", f"default deployment, {build} 10 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
        for case, share in ((f"default/{kit}", "100 %"), (f"default/{ten}", "10 %")):
            row = summary.get(case)
            what = f"default deployment, {build} {share}: every span and record received"
            if row is None or row["lost"] is None:
                out.append(Target(what, "not run", None))
            else:
                out.append(Target(what, f"{row['lost']} lost", row["lost"] == 0))
        ratio(f"nolog/{kit}", "rps_x", f"no-log endpoint, {build} 100 %: req/s ≥ 0.80× bare", lambda x: x >= 0.80)
        ratio(f"nolog/{ten}", "rps_x", f"no-log endpoint, {build} 10 %: req/s ≥ 0.85× bare", lambda x: x >= 0.85)
        ratio(f"nolog/{kit}", "p99_ms_x", f"no-log endpoint, {build} 100 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
        ratio(f"nolog/{ten}", "p99_ms_x", f"no-log endpoint, {build} 10 %: p99 ≤ 1.5× bare", lambda x: x <= 1.5)
    ratio(
        "default/otelkit",
        "startup_delta_s",
        "otelkit (otelkit-instrument): startup ≤ bare + 0.3 s",
        lambda x: x <= 0.3,
        "{:+.2f} s",
    )
    ratio(
        "default/otelkit-oi",
        "startup_delta_s",
        "otelkit under opentelemetry-instrument: startup ≤ bare + 0.3 s",
        lambda x: x <= 0.3,
        "{:+.2f} s",
    )
    kit, bare = celery.get("otelkit"), celery.get("bare")
    if kit is None or bare is None:
        out.append(Target("Celery, otelkit: tasks/s ≥ 0.80× bare Celery", "not run", None))
        out.append(Target("Celery, otelkit: every task record and span received", "not run", None))
    else:
        x = kit["tasks_per_s_x"]
        out.append(Target("Celery, otelkit: tasks/s ≥ 0.80× bare Celery", f"{x:.2f}×", x >= 0.80))
        out.append(
            Target("Celery, otelkit: every task record and span received", f"{kit['lost']} lost", kit["lost"] == 0)
        )
    what = f"RSS after {rss_requests:,} requests, otelkit 100 %: ≤ bare + 30 MiB"
    if "otelkit" in rss and "bare" in rss:
        delta = rss["otelkit"].rss_mib - rss["bare"].rss_mib
        out.append(Target(what, f"{delta:+.1f} MiB", delta <= 30))
    else:
        out.append(Target(what, "not run", None))
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
    redis = shutil.which("redis-server")
    redis_version = "not installed"
    if redis:
        out = subprocess.run([redis, "--version"], capture_output=True, text=True, check=False).stdout
        redis_version = next((w[2:] for w in out.split() if w.startswith("v=")), "?")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "pinning": cpus.describe(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg()[0],
        "wrk": wrk_version,
        "redis": redis_version,
        "versions": {
            d: _version(d)
            for d in (
                "opentelemetry-sdk",
                "opentelemetry-instrumentation-fastapi",
                "opentelemetry-instrumentation-logging",
                "opentelemetry-instrumentation-celery",
                "protobuf",
                "fastapi",
                "uvicorn",
                "celery",
                "prometheus-fastapi-instrumentator",
                "otelkit",
            )
        },
        "otelkit_commit": _git_commit(),
    }


def _f(x: float | None, spec: str) -> str:
    return "—" if x is None or x != x else format(x, spec)


def _http_table(summary: dict[str, dict[str, Any]], workload: str) -> list[str]:
    rows = [row for row in summary.values() if row["workload"] == workload]
    if not rows:
        return []
    lines = [
        "| variant | req/s | ×bare | ×bare-gc | p50 ms | ×bare | p99 ms | ×bare | ×bare-gc | CPU µs/req | +µs vs bare"
        " | +µs vs bare-gc | server CPU | startup s | Δbare s | RSS MiB | shutdown s | spans/req | logs/req | lost |",
        "|---|" + "---:|" * 19,
    ]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {_f(row['rps'], '.0f')} | {_f(row['rps_x'], '.2f')} | {_f(row['rps_xgc'], '.2f')}"
            f" | {_f(row['p50_ms'], '.2f')} | {_f(row['p50_ms_x'], '.2f')} | {_f(row['p99_ms'], '.2f')}"
            f" | {_f(row['p99_ms_x'], '.2f')} | {_f(row['p99_ms_xgc'], '.2f')}"
            f" | {_f(row['cpu_us_per_req'], '.0f')} | {_f(row['cpu_delta_us'], '+.0f')}"
            f" | {_f(row['cpu_delta_gc_us'], '+.0f')}"
            f" | {_f(row['server_cpu_share'] * 100, '.0f')} % | {_f(row['startup_s'], '.2f')}"
            f" | {_f(row['startup_delta_s'], '+.2f')} | {_f(row['rss_mib'], '.0f')}"
            f" | {_f(row['shutdown_s'], '.2f')} | {_f(row['spans_per_request'], '.3f')}"
            f" | {_f(row['logs_per_request'], '.3f')} | {_f(row['lost'], 'd')} |"
        )
    return lines


def render(
    info: dict[str, Any],
    args: argparse.Namespace,
    summary: dict[str, dict[str, Any]],
    celery: dict[str, dict[str, Any]],
    rss: dict[str, RssRun],
    runs: list[Run],
    celery_runs: list[Any],
    soaks: dict[str, SoakRun],
    marks: list[Target],
) -> str:
    v = info["versions"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['pinning']}); Linux {info['kernel']};"
        f" load avg {info['load_avg_at_start']:.2f} at start",
        f"Software: Python {info['python']}, opentelemetry-sdk {v['opentelemetry-sdk']},"
        f" opentelemetry-instrumentation-logging {v['opentelemetry-instrumentation-logging']},"
        f" fastapi {v['fastapi']}, uvicorn {v['uvicorn']}, celery {v['celery']}, protobuf {v['protobuf']},"
        f" wrk {info['wrk']}, redis {info['redis']}, otelkit {v['otelkit']} @ {info['otelkit_commit']}",
        (
            f"Run: {args.rounds} round(s) × {args.duration:g} s, wrk -t1 -c{args.connections} on GET {URL_PATH}"
            f" after {args.warmup:g} s warm-up; {args.startup_samples} start-up sample(s) per default-deployment"
            f" variant and round; cases interleaved, order rotated each round; medians; ×bare = ratio to the"
            f" same workload's bare median in this run, ×bare-gc to bare FastAPI with otelkit's GC tuning"
            if args.rounds
            else f"Run: no rounds, wrk -t1 -c{args.connections} on GET {URL_PATH}"
        ),
    ]
    for name, title in (
        ("default", "Default deployment (the headline)"),
        ("nolog", "No-log endpoint"),
    ):
        table = _http_table(summary, name)
        if table:
            lines += ["", f"**{title}** — {WORKLOADS[name].label}", "", *table]
    if summary:
        names = dict.fromkeys(row["variant"] for row in summary.values())
        lines += ["", "Variants: " + "; ".join(f"{n} = {VARIANTS[n].label}" for n in names) + "."]
    if celery:
        n = celery_runs[0].tasks
        lines += [
            "",
            f"**Celery** — solo pool, {n:,} queued tasks drained per round, each logging one INFO record"
            " (tasks/s from the tasks' own clock: first start to last end)",
            "",
            "| variant | tasks/s | ×bare | CPU µs/task | +µs vs bare | ready s | RSS MiB | shutdown s | spans/task"
            " | task records/task | all records/task | lost |",
            "|---|" + "---:|" * 11,
        ]
        for name, row in celery.items():
            lines.append(
                f"| {name} | {_f(row['tasks_per_s'], '.0f')} | {_f(row['tasks_per_s_x'], '.2f')}"
                f" | {_f(row['cpu_us_per_task'], '.0f')} | {_f(row['cpu_delta_us'], '+.0f')}"
                f" | {_f(row['ready_s'], '.2f')} | {_f(row['rss_mib'], '.0f')} | {_f(row['shutdown_s'], '.2f')}"
                f" | {_f(row['spans_per_task'], '.3f')} | {_f(row['task_logs_per_task'], '.3f')}"
                f" | {_f(row['logs_per_task'], '.3f')} | {_f(row['lost'], 'd')} |"
            )
    if rss:
        lines += [
            "",
            f"**RSS after {args.rss_requests:,} requests** — default deployment, alternating {RSS_SLICE_S:g} s slices",
            "",
            "| variant | requests | RSS at start MiB | RSS after MiB | vs bare MiB | req/s | lost |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        bare_rss = rss["bare"].rss_mib if "bare" in rss else float("nan")
        for r in rss.values():
            lines.append(
                f"| {r.variant} | {r.requests:,} | {r.rss_start_mib:.1f} | {r.rss_mib:.1f}"
                f" | {_f(r.rss_mib - bare_rss, '+.1f')} | {r.rps:.0f} | {_f(r.lost, 'd')} |"
            )
    if soaks:
        lines += [
            "",
            "**Collector-down soak** — default deployment",
            "",
            "| soak (SIGTERM at end) | minutes of load | req/s | p99 ms (slice median) | CPU µs/req | RSS at 30 s MiB"
            " | RSS growth MiB | shutdown s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in soaks.values():
            lines.append(
                f"| {s.variant} | {s.minutes:g} | {s.rps:.0f} | {s.p99_ms:.2f} | {s.cpu_us_per_req:.0f}"
                f" | {s.rss_baseline_mib:.1f} | {s.rss_growth_mib:+.1f} | {s.shutdown_s:.2f} |"
            )
    lines += ["", "| target | this run | |", "|---|---:|---|"]
    for t in marks:
        mark = "—" if t.ok is None else ("PASS" if t.ok else "FAIL")
        lines.append(f"| {t.what} | {t.value} | {mark} |")
    problems = [f"{r.case} round {r.round}: {r.errors}" for r in runs if r.errors]
    problems += [f"{r.case} round {r.round}: exit status {r.exit_code}" for r in runs if r.exit_code not in (0, None)]
    problems += [
        f"celery/{r.variant} round {r.round}: exit status {r.exit_code}"
        for r in celery_runs
        if r.exit_code not in (0, None)
    ]
    problems += [f"{r.case} round {r.round}: {r.lost} spans/records lost" for r in runs if r.lost]
    problems += [f"soak {s.variant}: {s.errors}" for s in soaks.values() if s.errors]
    problems += [f"RSS run {r.variant}: {r.errors}" for r in rss.values() if r.errors]
    starved = [k for k, row in summary.items() if row["server_cpu_share"] < 0.9]
    if starved:
        problems.append(
            f"server CPU below 90 % for {', '.join(starved)}: the server was not the only bottleneck (another"
            " process ran on its CPU, or wrk/receiver saturated theirs); ratios are noisy"
        )
    if problems:
        lines += ["", "Problems seen (these runs' numbers are suspect):", *(f"- {p}" for p in problems)]
    return "\n".join(lines)


def no_nan(value: Any) -> Any:
    """NaN (a missing median or ratio) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [no_nan(v) for v in value]
    return value
