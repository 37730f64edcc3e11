"""Start the example app (or any ASGI app) as a real process under the launcher, for e2e tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from otelkit.local import procs as _procs

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LAUNCHERS = ("opentelemetry-instrument", "otelkit-instrument")
"""The stock launcher with otelkit as distro, and otelkit's own: both must give the same result."""


def app_env(endpoint: str, **extra: str) -> dict[str, str]:
    """Environment of an instrumented app process exporting to ``endpoint`` (OTLP/HTTP)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    env.update(
        {
            "OTEL_PYTHON_DISTRO": "otelkit",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "example",
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_app(
    procs: _procs.ProcessGroup,
    env: Mapping[str, str],
    *,
    name: str = "app",
    app: str = "example.app:app",
    launcher: str | None = "opentelemetry-instrument",
    python_args: tuple[str, ...] = (),
) -> tuple[_procs.ManagedProcess, str]:
    """Start ``uvicorn app`` on a free port under ``launcher`` (``otelkit-instrument``, the stock one, or None)."""
    port = _procs.free_port()
    uvicorn = [str(BIN / "python"), *python_args, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    argv = [str(BIN / launcher), *uvicorn] if launcher else uvicorn
    proc = procs.start(name, argv, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    proc.wait_http_ready(f"{base}/health/live", timeout=60)
    return proc, base


def start_otlp_collector(procs: _procs.ProcessGroup, otelcol_bin: Path, receiver_endpoint: str) -> str:
    """Start the real collector on loopback, all three signals over OTLP/HTTP to ``receiver_endpoint``.

    Returns the collector's own OTLP/HTTP endpoint, for the apps.
    """
    import yaml

    from otelkit.ops.collector import CollectorSpec, render_collector

    ports = {name: _procs.free_port() for name in ("grpc", "http", "exporter", "telemetry", "health")}
    spec = CollectorSpec(
        traces=("otlp",),
        metrics=("otlp",),
        logs=("otlp",),
        traces_endpoint=(receiver_endpoint,),
        metrics_endpoint=(receiver_endpoint,),
        logs_endpoint=(receiver_endpoint,),
        bind="127.0.0.1",
        otlp_grpc_port=ports["grpc"],
        otlp_http_port=ports["http"],
        prometheus_endpoint=f"127.0.0.1:{ports['exporter']}",
        telemetry_port=ports["telemetry"],
        health_port=ports["health"],
    )
    config = procs.path("otelcol.yaml")
    config.write_text(render_collector(spec), encoding="utf-8")
    exporters = yaml.safe_load(config.read_text(encoding="utf-8"))["exporters"]
    assert sorted(exporters) == ["otlp_http/logs", "otlp_http/metrics", "otlp_http/traces"]
    collector = procs.start("collector", [str(otelcol_bin), f"--config={config}"])
    collector.wait_http_ready(f"http://127.0.0.1:{ports['health']}/", timeout=60)
    return f"http://127.0.0.1:{ports['http']}"


def wait_until(predicate: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until truthy; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
