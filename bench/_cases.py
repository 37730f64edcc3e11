"""What ``bench.run`` measures: the variants, the workloads they run under, and one result per run."""

from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- variants and workloads


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    env: dict[str, str]
    launcher: str | None  # None, "opentelemetry-instrument" or "otelkit-instrument"
    needs: tuple[tuple[str, str], ...] = ()  # (importable module, distribution to install)
    collector_down: bool = False
    spans_per_request: float | None = None  # what must arrive per request (None: sampled, not checked)
    exports_access_log: bool = True  # the launcher's log handler reaches uvicorn's non-propagating loggers
    exports: bool = True  # False: every OTEL_*_EXPORTER is "none" (nothing leaves the process, nothing to count)
    compiled: bool = False  # True: otelkit's compiled build (OTELKIT_COMPILE=1), started from bench._compiled.tree()


_OTLP = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}
_OTELKIT = {"OTEL_PYTHON_DISTRO": "otelkit", "OTEL_PYTHON_CONFIGURATOR": "otelkit", **_OTLP}
_NEEDS_OTELKIT = (("otelkit", "otelkit"),)

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("bare", "bare FastAPI", {}, launcher=None),
        Variant(
            "bare-gc",
            "bare FastAPI with otelkit's GC tuning (gc.freeze() + raised gen-0 threshold) and nothing else",
            {"BENCH_GC_TUNING": "1"},
            launcher=None,
            needs=_NEEDS_OTELKIT,
        ),
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
            spans_per_request=3.0,  # the server span and its send/receive spans
            exports_access_log=False,  # its handler is on the root logger only; uvicorn.access does not propagate
        ),
        Variant(
            "otelkit",
            "otelkit, 100 % sampling",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
            spans_per_request=1.0,
        ),
        Variant(
            "otelkit-oi",
            "otelkit, 100 %, under opentelemetry-instrument",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="opentelemetry-instrument",
            needs=_NEEDS_OTELKIT,
            spans_per_request=1.0,
        ),
        Variant(
            "otelkit-10",
            "otelkit, 10 % sampling",
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
        ),
        Variant(
            "otelkit-compiled",
            "otelkit, 100 %, the compiled build (OTELKIT_COMPILE=1)",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
            spans_per_request=1.0,
            compiled=True,
        ),
        Variant(
            "otelkit-compiled-10",
            "otelkit, 10 %, the compiled build (OTELKIT_COMPILE=1)",
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
            compiled=True,
        ),
        Variant(
            "otelkit-noexport",
            "otelkit, 100 %, nothing exported (OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none)",
            {
                **_OTELKIT,
                "OTEL_TRACES_SAMPLER": "parentbased_always_on",
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
            },
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
            exports=False,
        ),
        Variant(
            "otelkit-down",
            "otelkit, 100 %, collector down",
            {"OTEL_TRACES_SAMPLER": "parentbased_always_on", **_OTELKIT},
            launcher="otelkit-instrument",
            needs=_NEEDS_OTELKIT,
            collector_down=True,
        ),
    )
}

CELERY_VARIANTS: dict[str, Variant] = {
    "bare": Variant("bare", "bare Celery", {}, launcher=None, needs=(("celery", "celery[redis]"),)),
    "otelkit": Variant(
        "otelkit",
        "Celery under otelkit, 100 % sampling",
        VARIANTS["otelkit"].env,
        launcher="otelkit-instrument",
        needs=(("celery", "celery[redis]"), *_NEEDS_OTELKIT),
        spans_per_request=1.0,
    ),
}


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    access_log: bool  # uvicorn's access log (its default) on
    app_log: bool  # the endpoint logs one INFO record with extra= per request


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "default",
            "default deployment: uvicorn's access log on (its default), one app INFO record with extra= per request",
            access_log=True,
            app_log=True,
        ),
        Workload("nolog", "no-log endpoint: --no-access-log, the endpoint logs nothing", False, False),
    )
}
DEFAULT_NOLOG_VARIANTS = "bare,bare-gc,otelkit,otelkit-10,otelkit-compiled"
APP_LOGGER, ACCESS_LOGGER, TASK_LOGGER = "bench.app", "uvicorn.access", "bench.tasks"


@dataclass(frozen=True)
class Case:
    workload: str  # a WORKLOADS key, or "celery"
    variant: str

    @property
    def key(self) -> str:
        return f"{self.workload}/{self.variant}"


def parse_variants(text: str, choices: dict[str, Variant] | None = None, *, empty_ok: bool = False) -> list[str]:
    choices = VARIANTS if choices is None else choices
    names = [n.strip() for n in text.split(",") if n.strip()]
    if empty_ok and (not names or names == ["none"]):
        return []
    for name in names:
        if name not in choices:
            close = difflib.get_close_matches(name, list(choices), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise argparse.ArgumentTypeError(f"unknown variant {name!r}; expected one of: {', '.join(choices)}{hint}")
    if len(set(names)) != len(names) or not names:
        raise argparse.ArgumentTypeError(f"variants must be distinct and at least one; got {text!r}")
    return names


@dataclass
class Run:
    case: str
    workload: str
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
    served: int  # every request the app answered: its access-log lines; without them wrk's count + probe
    served_exact: bool  # served is the server's own count (access log on), not wrk's
    received: dict[str, Any]  # spans / metric points / log records that reached the receiver, logs per scope
    lost: int | None  # what the app wrote and the receiver did not get (None: not checked for this case)
    errors: str


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


@dataclass
class RssRun:
    variant: str
    requests: int  # requests of the measured slices (wrk's count; the warm-up before them not included)
    rss_start_mib: float  # after the readiness probe, before any load
    rss_mib: float  # after ``requests``
    rps: float
    lost: int | None
    errors: str


def expected_loss(variant: Variant, workload: Workload, served: int, received: dict[str, Any]) -> int | None:
    """Records (and, at 100 %, spans) the app produced that never arrived; None when not checkable."""
    if not variant.launcher or variant.collector_down or not variant.exports or not workload.access_log:
        return None
    scopes: dict[str, int] = received["log_scopes"]
    lost = max(0, served - scopes.get(APP_LOGGER, 0))
    if variant.exports_access_log:
        lost += max(0, served - scopes.get(ACCESS_LOGGER, 0))
    if variant.spans_per_request is not None:
        spans: int = received["traces"]
        lost += max(0, round(served * variant.spans_per_request) - spans)
    return lost
