"""Golden files for representative render-collector runs, and drift tests for the committed renders.

Regenerate after an intended change (then review the diff):

    OTELKIT_UPDATE_GOLDEN=1 pytest tests/unit/test_collector_golden.py

That also rewrites ``collector/otelcol.yaml`` and ``collector/builder-manifest.yaml``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import yaml

from otelkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "collector"
UPDATE = os.environ.get("OTELKIT_UPDATE_GOLDEN") == "1"

# name -> render-collector arguments. Together they cover every backend, both profiles, the
# version-dependent names, fan-out, auth from env, TLS, persistence and every optional processor.
CASES: dict[str, list[str]] = {
    "default": [],
    "dev": ["--profile", "dev"],
    "local-ports": [
        "--bind", "127.0.0.1", "--otlp-grpc-port", "14317", "--otlp-http-port", "14318",
        "--prometheus-endpoint", "127.0.0.1:18889", "--telemetry-port", "18888", "--health-port", "13134",
    ],
    "fanout-auth": [
        "--traces", "jaeger", "--traces", "otlp", "--traces-endpoint", "otlp=https://otlp.vendor.example",
        "--traces-auth-env", "otlp=VENDOR_TOKEN", "--metrics", "prometheus,prometheusremotewrite",
        "--metrics-endpoint", "http://mimir:9009/api/v1/push", "--header-env", "metrics:X-Scope-OrgID=MIMIR_TENANT",
        "--logs", "loki,otlp", "--logs-endpoint", "otlp=https://otlp.vendor.example",
        "--logs-auth-env", "otlp=VENDOR_TOKEN", "--header-env", "logs.loki:X-Scope-OrgID=LOKI_TENANT",
    ],
    "tempo-zipkin-otlp-tls": [
        "--traces", "tempo,zipkin", "--metrics", "otlp", "--metrics-endpoint", "https://prometheus:9090/api/v1/otlp",
        "--logs", "otlp", "--logs-endpoint", "https://logs.example.com:4318", "--ca-file", "/etc/otelcol/ca.pem",
        "--cert-file", "/etc/otelcol/client.pem", "--key-file", "/etc/otelcol/client-key.pem",
    ],
    "production-extras": [
        "--persistent-queue", "/var/lib/otelcol/queue", "--span-metrics", "--tail-sampling", "10",
        "--drop-route", "/health/live", "--drop-route", "/health/ready", "--max-attribute-length", "4096",
    ],
    "dev-debug-only": ["--profile", "dev", "--traces", "debug", "--metrics", "none", "--logs", "none"],
    "batch-processor": ["--batching", "processor", "--span-metrics", "--no-redact"],
    "v0.130.0": ["--collector-version", "0.130.0", "--metrics", "prometheusremotewrite", "--span-metrics"],
    "v0.144.0": [
        "--collector-version", "0.144.0", "--metrics", "prometheus,prometheusremotewrite", "--span-metrics",
        "--drop-route", "/health",
    ],
    "v0.155.0": ["--collector-version", "0.155.0", "--metrics", "prometheusremotewrite", "--span-metrics",
                 "--drop-route", "/health"],
    "agent-static": ["--role", "agent", "--gateway", "gateway-1:4317", "--gateway", "gateway-2:4317",
                     "--persistent-queue", "/var/lib/otelcol/queue"],
    "agent-dns-k8s": ["--role", "agent", "--gateway-dns", "otelkit-gateway.observability.svc:4317",
                      "--k8s-attributes", "--resource-detection", "env,system", "--drop-route", "/health/live"],
    "agent-dev": ["--role", "agent", "--profile", "dev", "--gateway", "127.0.0.1:14317", "--logs", "none"],
    "gateway-sampling": ["--role", "gateway", "--span-metrics", "--tail-sampling", "1", "--decision-wait", "20",
                         "--slow-threshold", "500", "--traces", "tempo",
                         "--persistent-queue", "/var/lib/otelcol/queue"],
}  # fmt: skip


def _render(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    main(argv)
    return capsys.readouterr().out


def _compare(path: Path, produced: str, regenerate: str) -> None:
    if UPDATE:
        path.write_text(produced, encoding="utf-8")
    assert path.exists(), f"{path} is missing; {regenerate}"
    assert path.read_text(encoding="utf-8") == produced, f"{path} drifted from the command; {regenerate}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_collector_matches_golden(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    produced = _render(capsys, ["render-collector", *CASES[name]])
    yaml.safe_load(produced)
    _compare(
        GOLDEN / f"{name}.yaml", produced, "run OTELKIT_UPDATE_GOLDEN=1 pytest tests/unit/test_collector_golden.py"
    )


def test_golden_files_have_a_case_each() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_collector_header_command_reproduces_the_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    produced = _render(capsys, ["render-collector", *CASES[name]])
    command = produced.splitlines()[1].removeprefix("#   ")
    argv = shlex.split(command)
    assert argv[:2] == ["otelkit", "render-collector"]
    assert _render(capsys, argv[1:]) == produced


def test_committed_collector_config_matches_render(capsys: pytest.CaptureFixture[str]) -> None:
    produced = _render(capsys, ["render-collector"])
    _compare(ROOT / "collector" / "otelcol.yaml", produced, "run otelkit render-collector -o collector/otelcol.yaml")


def test_committed_builder_manifest_matches_render(capsys: pytest.CaptureFixture[str]) -> None:
    produced = _render(capsys, ["render-builder", "--all"])
    _compare(
        ROOT / "collector" / "builder-manifest.yaml",
        produced,
        "run otelkit render-builder --all -o collector/builder-manifest.yaml",
    )
