"""The real collector (built from collector/builder-manifest.yaml) accepts what otelkit renders.

``otelcol validate`` is run on every golden file (both profiles, every backend, the older-version
renders too: the pinned collector still loads their old names as aliases), on the committed
``collector/otelcol.yaml``, and one render is started for real on loopback ports.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from otelkit.ops.collector import CollectorSpec, render_collector

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [*sorted((ROOT / "tests" / "golden" / "collector").glob("*.yaml")), ROOT / "collector" / "otelcol.yaml"]


def _env_for(text: str) -> dict[str, str]:
    # ${env:VAR} references must resolve; the values are placeholders, never real secrets. So must
    # k8s_attributes' node_from_env_var (Kubernetes sets it from the downward API).
    names = re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}|node_from_env_var: ([A-Za-z_][A-Za-z0-9_]*)", text)
    return {**os.environ, **{var: "placeholder" for pair in names for var in pair if var}}


@pytest.mark.parametrize("config", CONFIGS, ids=[p.relative_to(ROOT).as_posix() for p in CONFIGS])
def test_otelcol_validate_accepts_render(otelcol_bin: Path, config: Path) -> None:
    result = subprocess.run(
        [str(otelcol_bin), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env_for(config.read_text()),
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("profile", ["dev", "production"])
def test_otelcol_validate_accepts_every_backend_at_once(otelcol_bin: Path, tmp_path: Path, profile: str) -> None:
    text = render_collector(
        CollectorSpec(
            profile=profile,
            traces=("jaeger", "tempo", "zipkin", "otlp", "debug"),
            metrics=("prometheus", "prometheusremotewrite", "otlp", "debug"),
            logs=("loki", "otlp", "debug"),
            traces_auth_env=("otlp=OTLP_TOKEN",),
            header_env=("logs.loki:X-Scope-OrgID=LOKI_TENANT",),
            persistent_queue=str(tmp_path / "queue"),
            span_metrics=True,
            tail_sampling=10,
            drop_route=("/health",),
            max_attribute_length=4096,
        )
    )
    config = tmp_path / "otelcol.yaml"
    config.write_text(text)
    result = subprocess.run(
        [str(otelcol_bin), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env_for(text),
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status, response.read().decode()


def test_otelcol_runs_render_on_loopback_ports(otelcol_bin: Path, tmp_path: Path) -> None:
    grpc, http, prom, telemetry, health, sink = _free_ports(6)
    text = render_collector(
        CollectorSpec(
            bind="127.0.0.1",
            otlp_grpc_port=grpc,
            otlp_http_port=http,
            prometheus_endpoint=f"127.0.0.1:{prom}",
            telemetry_port=telemetry,
            health_port=health,
            traces_endpoint=(f"127.0.0.1:{sink}",),
            logs_endpoint=(f"http://127.0.0.1:{sink}/otlp",),
            persistent_queue=str(tmp_path / "queue"),
        )
    )
    config = tmp_path / "otelcol.yaml"
    config.write_text(text)
    log = (tmp_path / "otelcol.log").open("w")
    proc = subprocess.Popen([str(otelcol_bin), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(f"http://127.0.0.1:{health}/")
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, (tmp_path / "otelcol.log").read_text()
        _, own_metrics = _get(f"http://127.0.0.1:{telemetry}/metrics")
        assert "otelcol_" in own_metrics
        assert (tmp_path / "queue").is_dir()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
