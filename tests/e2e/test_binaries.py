"""The real binaries the other e2e tests rely on: built collector, Jaeger, Loki, Prometheus, Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

import otelkit
from otelkit.local import procs as _procs

pytestmark = pytest.mark.e2e

# What collector/builder-manifest.yaml builds, by the names the v0.161.0 binary reports.
EXPECTED_COMPONENTS = {
    "receivers": {"otlp"},
    "processors": {
        "batch",
        "memory_limiter",
        "attributes",
        "filter",
        "transform",
        "tail_sampling",
        "k8s_attributes",
        "resource_detection",
    },
    "exporters": {
        "debug",
        "otlp_grpc",
        "otlp_http",
        "prometheus",
        "prometheus_remote_write",
        "zipkin",
        "load_balancing",
    },
    "connectors": {"span_metrics", "forward"},
    "extensions": {"health_check", "file_storage", "zpages"},
}


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False)


def test_otelcol_components_lists_what_the_manifest_builds(otelcol_bin: Path) -> None:
    result = run(otelcol_bin, "components")
    assert result.returncode == 0, result.stderr
    listed = yaml.safe_load(result.stdout)
    for kind, names in EXPECTED_COMPONENTS.items():
        assert names <= {c["name"] for c in listed[kind]}, kind


def test_otelcol_version_names_collector_and_otelkit(otelcol_bin: Path) -> None:
    # dist.version in the builder manifest: without it the binary answers "unknown flag: --version".
    result = run(otelcol_bin, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"otelcol-otelkit version 0.161.0-otelkit{otelkit.__version__}"


def test_otelcol_validate_accepts_a_minimal_pipeline(otelcol_bin: Path, tmp_path: Path) -> None:
    config = tmp_path / "otelcol.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "receivers": {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:4318"}}}},
                "exporters": {"debug": {}},
                "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}},
            }
        )
    )
    result = run(otelcol_bin, "validate", f"--config={config}")
    assert result.returncode == 0, result.stderr


def test_jaeger_runs_and_offers_validate(jaeger_bin: Path) -> None:
    top = run(jaeger_bin, "--help")
    assert top.returncode == 0, top.stderr
    assert "validate" in top.stdout
    validate = run(jaeger_bin, "validate", "--help")
    assert validate.returncode == 0, validate.stderr
    assert "--config" in validate.stdout


def test_loki_reports_its_version_and_offers_verify_config(loki_bin: Path) -> None:
    version = run(loki_bin, "-version")
    assert version.returncode == 0, version.stderr
    assert "3.7.8" in version.stdout + version.stderr
    usage = run(loki_bin, "-help")
    assert "-verify-config" in usage.stdout + usage.stderr


def test_prometheus_scrapes_a_target_and_answers_queries(
    prometheus_bin: Path, procs: _procs.ProcessGroup, tmp_path: Path
) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "metrics").write_text("# TYPE otelkit_probe_total counter\notelkit_probe_total 7\n")
    port = _procs.free_port()
    server = procs.start("metrics", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=www)
    server.wait_port(port, timeout=60)
    prom = _procs.start_prometheus(procs, [f"127.0.0.1:{port}"], binary=prometheus_bin)

    deadline = time.monotonic() + 60
    result: list = []
    while not result and time.monotonic() < deadline:
        result = prom.query("otelkit_probe_total")
        time.sleep(0.2)
    assert [(r["metric"]["job"], r["metric"]["instance"], r["value"][1]) for r in result] == [
        ("otelkit", f"127.0.0.1:{port}", "7")
    ]


def test_redis_server_fixture_answers_ping(redis_server: str) -> None:
    url = urllib.parse.urlsplit(redis_server)
    assert (url.scheme, url.hostname, url.path) == ("redis", "127.0.0.1", "/0")
    with socket.create_connection((url.hostname, url.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(16) == b"+PONG\r\n"
