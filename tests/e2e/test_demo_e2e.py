"""The README's main command (./scripts/demo → python -m example.demo) shows all three signals."""

from __future__ import annotations

import subprocess
import sys

import pytest
from launch import REPO, app_env

from otelkit.local import procs as _procs

pytestmark = pytest.mark.e2e


def test_demo_prints_spans_logs_and_metrics_including_the_celery_hop():
    env = app_env("http://127.0.0.1:9")  # the demo sets its own endpoint: its embedded receiver
    port = _procs.free_port()
    result = subprocess.run(
        [sys.executable, "-m", "example.demo", "--port", str(port), "--requests", "3"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    spans = [line for line in lines if line.startswith("SPAN")]
    assert any("GET /items/{item_id}" in line and "SERVER" in line for line in spans), result.stdout[-3000:]
    assert any("run/example.tasks.process_order" in line for line in spans), result.stdout[-3000:]
    assert any(line.startswith("LOG") and "fetched item" in line and "trace=" in line for line in lines)
    assert any(line.startswith("METRIC") and "http.server.request.duration" in line for line in lines)
    assert "done:" in result.stderr
