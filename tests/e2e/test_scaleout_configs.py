"""The real collector accepts the agent and gateway configs: in deploy/kubernetes/, and started for real.

``otelcol validate`` builds every component's config but not its run-time state: an unknown
tail_sampling policy type, or an OTTL condition the policy cannot parse, passes ``validate`` and
fails only at start. So each role is also started on loopback ports until its health check answers.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from otelkit.local import procs as _procs
from otelkit.ops.collector import CollectorSpec, render_collector
from otelkit.ops.collector.spec import Role

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"


def _embedded_configs() -> list[tuple[str, str]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "ConfigMap" and "config.yaml" in doc.get("data", {}):
                out.append((doc["metadata"]["name"], doc["data"]["config.yaml"]))
    return out


EMBEDDED = _embedded_configs()


def _env_for(text: str) -> dict[str, str]:
    # ${env:VAR} references must resolve; the values are placeholders, never real secrets.
    return {**os.environ, **{var: "placeholder" for var in re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", text)}}


def test_deploy_kubernetes_embeds_both_roles() -> None:
    assert [name for name, _ in EMBEDDED] == ["otelkit-agent", "otelkit-gateway"]


@pytest.mark.parametrize(("name", "text"), EMBEDDED, ids=[name for name, _ in EMBEDDED])
def test_otelcol_validate_accepts_embedded_config(otelcol_bin: Path, tmp_path: Path, name: str, text: str) -> None:
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    result = subprocess.run(
        [str(otelcol_bin), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env_for(text), "K8S_NODE_NAME": "node-1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _start(procs: _procs.ProcessGroup, otelcol_bin: Path, tmp_path: Path, name: str, spec: CollectorSpec) -> str:
    config = tmp_path / f"{name}.yaml"
    config.write_text(render_collector(spec))
    proc = procs.start(name, [otelcol_bin, "--config", config])
    proc.wait_http_ready(f"http://127.0.0.1:{spec.health_port}/", timeout=60)
    return proc.log_text()


def _loopback(**options: object) -> CollectorSpec:
    p = [_procs.free_port() for _ in range(5)]
    prometheus = None if options.get("role") is Role.AGENT else f"127.0.0.1:{p[4]}"
    return CollectorSpec(
        bind="127.0.0.1",
        otlp_grpc_port=p[0],
        otlp_http_port=p[1],
        telemetry_port=p[2],
        health_port=p[3],
        prometheus_endpoint=prometheus,
        **options,  # type: ignore[arg-type]
    )


def test_gateway_with_tail_sampling_starts(otelcol_bin: Path, procs: _procs.ProcessGroup, tmp_path: Path) -> None:
    spec = _loopback(
        role=Role.GATEWAY,
        traces=("otlp",),
        traces_endpoint=(f"http://127.0.0.1:{_procs.free_port()}",),
        logs=("none",),
        span_metrics=True,
        tail_sampling=1,
        decision_wait=5,
        slow_threshold=250,
    )
    log = _start(procs, otelcol_bin, tmp_path, "gateway", spec)
    assert "Everything is ready" in log, log
    assert "error" not in log.lower(), log


def test_agent_with_persistent_queue_starts(otelcol_bin: Path, procs: _procs.ProcessGroup, tmp_path: Path) -> None:
    spec = _loopback(
        role=Role.AGENT,
        gateway=(f"127.0.0.1:{_procs.free_port()}", f"127.0.0.1:{_procs.free_port()}"),
        persistent_queue=str(tmp_path / "queue"),
        resource_detection=("env",),
    )
    log = _start(procs, otelcol_bin, tmp_path, "agent", spec)
    assert "Everything is ready" in log, log
    assert (tmp_path / "queue").is_dir()
