"""The Loki and Jaeger configs docker-compose mounts, checked by the real Loki and Jaeger binaries.

``stack/loki/loki.yaml`` and ``stack/jaeger/jaeger.yaml`` serve both compose (their variables'
defaults) and the local stack (variables set to loopback addresses and test ports); both forms
must pass the tool's own check. The collector's ``collector/otelcol.yaml`` is checked with
``otelcol validate`` in ``test_collector_validate.py``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from launch import REPO

pytestmark = pytest.mark.e2e

LOKI_CONFIG = REPO / "stack" / "loki" / "loki.yaml"
JAEGER_CONFIG = REPO / "stack" / "jaeger" / "jaeger.yaml"


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_loki_config_passes_verify_config_with_compose_defaults(loki_bin: Path) -> None:
    result = run(loki_bin, "-verify-config", f"-config.file={LOKI_CONFIG}", "-config.expand-env=true")
    assert result.returncode == 0, result.stderr
    assert 'msg="config is valid"' in result.stderr


def test_loki_config_passes_verify_config_moved_to_loopback(loki_bin: Path, tmp_path: Path) -> None:
    env = {"LOKI_LISTEN_ADDRESS": "127.0.0.1", "LOKI_HTTP_PORT": "31001", "LOKI_GRPC_PORT": "31002"}
    env["LOKI_DATA_DIR"] = str(tmp_path)
    argv = [
        loki_bin,
        "-verify-config",
        f"-config.file={LOKI_CONFIG}",
        "-config.expand-env=true",
        "-print-config-stderr",
    ]
    result = run(*argv, env=env)
    assert result.returncode == 0, result.stderr
    printed = result.stderr
    assert "http_listen_address: 127.0.0.1\n  http_listen_port: 31001" in printed
    assert "grpc_listen_address: 127.0.0.1\n  grpc_listen_port: 31002" in printed
    assert f"working_directory: {tmp_path}/compactor" in printed


def test_loki_config_needs_expand_env_and_compose_passes_it(loki_bin: Path) -> None:
    result = run(loki_bin, "-verify-config", f"-config.file={LOKI_CONFIG}")
    assert result.returncode != 0
    assert "Use `-config.expand-env=true` flag" in result.stderr
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text(encoding="utf-8"))
    assert compose["services"]["loki"]["command"] == ["-config.file=/etc/loki/loki.yaml", "-config.expand-env=true"]


def test_jaeger_config_passes_validate(jaeger_bin: Path) -> None:
    result = run(jaeger_bin, "validate", "--config", JAEGER_CONFIG)
    assert result.returncode == 0, result.stderr


def test_jaeger_config_defaults_are_the_compose_addresses(jaeger_bin: Path) -> None:
    result = run(jaeger_bin, "print-config", "--config", JAEGER_CONFIG)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    protocols = config["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "0.0.0.0:16686"
    assert config["extensions"]["healthcheckv2"]["http"]["endpoint"] == "0.0.0.0:13133"


def test_jaeger_config_moves_every_listener_with_its_variables(jaeger_bin: Path) -> None:
    names = ["OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "METRICS"]
    env = {f"JAEGER_{name}_PORT": str(31100 + i) for i, name in enumerate(names)}
    env["JAEGER_LISTEN_ADDRESS"] = "127.0.0.1"
    assert run(jaeger_bin, "validate", "--config", JAEGER_CONFIG, env=env).returncode == 0
    result = run(jaeger_bin, "print-config", "--config", JAEGER_CONFIG, env=env)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    protocols = config["receivers"]["otlp"]["protocols"]
    query = config["extensions"]["jaeger_query"]
    reader = config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert [
        protocols["grpc"]["endpoint"],
        protocols["http"]["endpoint"],
        query["http"]["endpoint"],
        query["grpc"]["endpoint"],
        config["extensions"]["healthcheckv2"]["http"]["endpoint"],
        f"{reader['host']}:{reader['port']}",
    ] == [f"127.0.0.1:{31100 + i}" for i in range(len(names))]


def test_jaeger_validate_rejects_a_broken_config(jaeger_bin: Path, tmp_path: Path) -> None:
    broken = tmp_path / "jaeger.yaml"
    broken.write_text(JAEGER_CONFIG.read_text(encoding="utf-8").replace("jaeger_storage_exporter]", "nosuch]"))
    result = run(jaeger_bin, "validate", "--config", broken)
    assert result.returncode != 0
    assert "nosuch" in result.stderr
