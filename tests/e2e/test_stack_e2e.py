"""``otelkit stack up`` / ``stack down`` as a user runs them: real processes, real signals.

One ``otelkit stack up --ports free --no-app`` runs for the module: the tests query each backend
through the addresses it printed, then SIGINT it and check that every process it started is gone.
Bad input (a taken port, a missing binary, a backend that dies before it is ready) must give one
clear error and leave nothing running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from launch import BIN, REPO, wait_until

from otelkit.errors import ExternalToolError, UsageError
from otelkit.local import procs as _procs
from otelkit.local.stack import PID_FILE, LocalStack, StackPorts
from otelkit.local.stack.pidfile import write_pid_file

pytestmark = pytest.mark.e2e

OTELKIT = str(BIN / "otelkit")


@dataclass
class Up:
    popen: subprocess.Popen[bytes]
    workdir: Path
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def url(self, what: str) -> str:
        match = re.search(rf"^  {re.escape(what)}\s+(http://127\.0\.0\.1:\d+)", self.output(), re.M)
        assert match, self.output()
        return match.group(1)


def _strays(workdir: Path) -> list[str]:
    """Processes whose command line or working directory is inside ``workdir``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(workdir) in text and proc.pid != os.getpid():
            found.append(f"{proc.pid}: {text}")
    return found


@pytest.fixture(scope="module")
def up(
    tmp_path_factory: pytest.TempPathFactory,
    otelcol_bin: Path,
    jaeger_bin: Path,
    loki_bin: Path,
    prometheus_bin: Path,
    alertmanager_bin: Path,
) -> Iterator[Up]:
    # The binary fixtures make sure the cached builds exist: `stack up` finds them in the cache.
    workdir = tmp_path_factory.mktemp("stack-up")
    out, err = workdir.parent / "up.out", workdir.parent / "up.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        popen = subprocess.Popen(
            [OTELKIT, "stack", "up", "--ports", "free", "--no-app", "--workdir", str(workdir)],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    running = Up(popen, workdir, out, err)
    try:

        def ready() -> bool:
            assert popen.poll() is None, f"stack up exited with {popen.returncode}: {err.read_text()}"
            return "stack ready" in running.output()

        wait_until(ready, timeout=180, what="`otelkit stack up` to print 'stack ready'")
        yield running
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGINT)
            try:
                popen.wait(timeout=120)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def test_stack_up_prints_where_each_backend_answers(up: Up) -> None:
    prometheus, jaeger, loki = up.url("metrics (Prometheus)"), up.url("traces (Jaeger UI)"), up.url("logs (Loki API)")
    # Prometheus scrapes the collector: both of the collector's targets are up.
    wait_until(
        lambda: len(_procs.prometheus_query(prometheus, 'up{job=~"otel-collector.*"} == 1')) == 2,
        timeout=60,
        what="both collector scrape targets up in Prometheus",
    )
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert client.get(f"{jaeger}/api/services").json()["errors"] is None
        assert client.get(f"{loki}/ready").text.strip() == "ready"
        assert client.get(f"{loki}/loki/api/v1/labels").json()["status"] == "success"
        otlp = up.url("OTLP in (collector)")
        # An empty OTLP/JSON export is accepted by the collector.
        assert client.post(f"{otlp}/v1/traces", json={"resourceSpans": []}).status_code == 200
        # Alertmanager runs the committed config, and Prometheus sends its alerts there.
        alertmanager = up.url("alerts (Alertmanager)")
        status = client.get(f"{alertmanager}/api/v2/status").json()
        assert [r["name"] for r in yaml.safe_load(status["config"]["original"])["receivers"]] == [
            "unrouted",
            "pager",
            "tickets",
        ]
        assert status["cluster"]["status"] == "disabled"
        active = client.get(f"{prometheus}/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        assert [a["url"] for a in active] == [f"{alertmanager}/api/v2/alerts"]
    recorded = json.loads((up.workdir / PID_FILE).read_text())["processes"]
    assert sorted(recorded) == ["alertmanager", "collector", "jaeger", "loki", "prometheus"]
    for pid in (entry["pid"] for entry in recorded.values()):
        conns = psutil.Process(pid).net_connections(kind="inet")
        assert {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN} == {"127.0.0.1"}


def test_stack_up_sigint_stops_every_process_it_started(up: Up) -> None:
    info = json.loads((up.workdir / PID_FILE).read_text())
    assert info["pid"] == info["owner"]["pid"] == up.popen.pid
    started = [entry["pid"] for entry in info["processes"].values()]
    assert all(psutil.pid_exists(pid) for pid in started)
    up.popen.send_signal(signal.SIGINT)
    assert up.popen.wait(timeout=120) == 0
    assert [pid for pid in started if psutil.pid_exists(pid)] == []
    assert _strays(up.workdir) == []
    assert not (up.workdir / PID_FILE).exists()
    assert up.stderr.read_text().splitlines()[-1] == "stopped everything the stack started"


def test_stack_down_stops_a_stack_running_elsewhere(tmp_path: Path) -> None:
    # `down` signals the pid file's owner; a stand-in owner shows it, with a child left behind.
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    write_pid_file(tmp_path / PID_FILE, owner.pid, {"loki": child.pid}, workdir=str(tmp_path))
    result = subprocess.run([OTELKIT, "stack", "down", "--workdir", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"stopping the stack (pid {owner.pid}, SIGTERM)", result.stderr
    assert owner.wait(timeout=30) == -signal.SIGTERM
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / PID_FILE).exists()
    again = subprocess.run([OTELKIT, "stack", "down", "--workdir", str(tmp_path)], capture_output=True, text=True)
    assert (again.returncode, again.stderr) == (
        0,
        f"no stack is running from {tmp_path} (no stack.pid there); nothing to stop\n",
    )


def test_stack_up_port_taken_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    # With --ports default the first port checked is the collector's OTLP/gRPC 4317: hold it.
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 4317))
        holder.listen()
    except OSError:
        pass  # something else holds it already: the same error is expected
    try:
        result = subprocess.run(
            [OTELKIT, "stack", "up", "--no-app", "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=60
        )
    finally:
        holder.close()
    assert result.returncode == 2
    assert result.stderr == (
        "error: port 4317 (collector OTLP/gRPC) on 127.0.0.1 is already in use; stop the other process or use"
        " --ports free\n"
    )
    assert list(tmp_path.iterdir()) == []
    assert _strays(tmp_path) == []


def test_stack_up_missing_prometheus_names_the_fix(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run(
        [OTELKIT, "stack", "up", "--no-app", "--ports", "free", "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert (result.returncode, result.stderr) == (
        1,
        "error: prometheus not found on PATH; install it (Debian: `apt-get install -y prometheus`)\n",
    )
    assert _strays(tmp_path) == []


def test_stack_receiver_without_its_secret_file_is_a_usage_error_and_starts_nothing(tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    shutil.copytree(REPO / "stack", stack_dir, ignore=shutil.ignore_patterns("secrets"))
    config = yaml.safe_load((stack_dir / "alertmanager" / "alertmanager.yaml").read_text())
    config["receivers"][2]["slack_configs"] = [{"api_url_file": "/etc/alertmanager/secrets/slack_api_url"}]
    (stack_dir / "alertmanager" / "alertmanager.yaml").write_text(yaml.safe_dump(config))
    stack = LocalStack(tmp_path / "w", ports=StackPorts.free(), app=False)
    stack.stack_dir = stack_dir
    with pytest.raises(UsageError) as excinfo:
        stack.start()
    # The compose path /etc/alertmanager/… is looked up in the stack's own alertmanager directory.
    assert str(excinfo.value) == (
        f"receiver 'tickets' (slack) reads its api_url_file from {stack_dir}/alertmanager/secrets/slack_api_url,"
        " which does not exist; put the secret there, or change the receiver in stack/slo.yaml and run otelkit"
        " render-alerts again (docs/stack.md, 'Alerts that reach people')"
    )
    assert UsageError.exit_code == 2
    assert stack.pids() == {} and not (tmp_path / "w").exists()
    # With the file in place, the local copy reads it from there.
    (stack_dir / "alertmanager" / "secrets").mkdir()
    (stack_dir / "alertmanager" / "secrets" / "slack_api_url").write_text("https://hooks.example/x\n")
    text = stack._alertmanager_config()
    slack = yaml.safe_load(text)["receivers"][2]["slack_configs"][0]
    assert slack["api_url_file"] == f"{stack_dir}/alertmanager/secrets/slack_api_url"


def test_stack_up_missing_alertmanager_names_the_fix(tmp_path: Path, prometheus_bin: Path) -> None:
    only = tmp_path / "bin"
    only.mkdir()
    (only / "prometheus").symlink_to(prometheus_bin)
    env = {**os.environ, "PATH": str(only)}
    result = subprocess.run(
        [OTELKIT, "stack", "up", "--no-app", "--ports", "free", "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert (result.returncode, result.stderr) == (
        1,
        "error: alertmanager not found on PATH; install it (Debian: `apt-get install -y prometheus-alertmanager`)\n",
    )
    assert _strays(tmp_path) == []


def test_stack_backend_not_ready_stops_everything_and_shows_its_log(
    tmp_path: Path, otelcol_bin: Path, loki_bin: Path, prometheus_bin: Path, alertmanager_bin: Path
) -> None:
    broken = tmp_path / "jaeger"
    broken.write_text("#!/bin/sh\necho 'error decoding config: something is wrong' >&2\nexit 3\n")
    broken.chmod(0o755)
    binaries = {
        "collector": otelcol_bin,
        "jaeger": broken,
        "loki": loki_bin,
        "prometheus": prometheus_bin,
        "alertmanager": alertmanager_bin,
    }
    stack = LocalStack(tmp_path / "w", ports=StackPorts.free(), app=False, binaries=binaries)
    with pytest.raises(ExternalToolError) as excinfo:
        stack.start()
    message = str(excinfo.value)
    assert message.startswith(f"jaeger exited early with code 3 (`{broken} --config=")
    assert message.endswith("error decoding config: something is wrong")
    assert stack.pids() == {}
    assert _strays(tmp_path) == []
    assert not (tmp_path / "w" / PID_FILE).exists()
