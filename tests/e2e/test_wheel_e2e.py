"""The wheel, built the way a release is and installed (not editable) into a fresh venv outside the checkout.

What a user of the wheel gets: it builds without setuptools warnings, installs from its own
metadata (no ``[grpc]`` extra), and its commands work from any directory — the templates, the
launcher's ``sitecustomize`` and the CLI all come from the installed package. An app under
``otelkit-instrument`` there asks for OTLP/gRPC, which that venv lacks: one line says how to
install it and the span still arrives, over http/protobuf, at ``otelkit tail``.

The dependencies come from a wheelhouse cached under ``$OTELKIT_CACHE_DIR/wheelhouse/`` (keyed by
the wheel's requirements and the Python version; filled by ``pip download`` the first time), so
the fresh venv installs with ``--no-index`` in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from launch import REPO

pytestmark = pytest.mark.e2e

_IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "build", "dist", "*.egg-info", ".hypothesis", ".pytest_cache", ".ruff_cache", ".venv*"
)


def _env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing pointing back at the checkout or the test venv."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and "venv" not in p)
    env.update(extra)
    return env


def _run(argv: list[str], *, cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel built from a copy of the checkout, and everything the build printed."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=_IGNORED)
    build = _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist"), "."], cwd=source
    )
    (built,) = (root / "dist").glob("otelkit-*.whl")
    return built, build.stdout + build.stderr


def _wheelhouse(wheel: Path) -> Path:
    """A directory holding every distribution the wheel's requirements resolve to (cached)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = sorted(
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line
        )
    key = hashlib.sha256("\n".join([sys.version, *requires]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("OTELKIT_CACHE_DIR") or Path.home() / ".cache" / "otelkit")
    house = cache / "wheelhouse" / key
    if not (house / ".complete").exists():
        partial = house.with_name(f"{key}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(partial), str(wheel)], cwd=wheel.parent)
        for own in partial.glob("otelkit-*"):
            own.unlink()
        (partial / ".complete").touch()
        shutil.rmtree(house, ignore_errors=True)
        partial.rename(house)
    return house


@pytest.fixture(scope="module")
def installed(wheel: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (outside the checkout) with the wheel installed from the wheelhouse; its bin/."""
    built, _ = wheel
    venv = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent)
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(_wheelhouse(built)),
            str(built),
        ],
        cwd=venv.parent,
    )
    return venv / "bin"


def test_wheel_builds_without_warnings(wheel: tuple[Path, str]) -> None:
    built, output = wheel
    assert "would be ignored" not in output
    assert not [line for line in output.splitlines() if re.search(r"\bwarning\b", line, re.IGNORECASE)], output
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
    templates = [f"otelkit/templates/{p.relative_to(REPO / 'templates')}" for p in (REPO / "templates").rglob("*.j2")]
    assert templates
    for expected in (
        *templates,
        "otelkit/_launcher/_boot/sitecustomize.py",
        "otelkit/_runtime/sdk_compat/__init__.py",
        "otelkit/py.typed",
        # The C encoder, built where a C compiler is there (the test command makes sure of one).
        "otelkit/_runtime/otlp/cencoder" + str(sysconfig.get_config_var("EXT_SUFFIX")),
    ):
        assert expected in names


def test_wheel_installs_as_a_regular_package(installed: Path) -> None:
    where = _run([str(installed / "python"), "-c", "import otelkit; print(otelkit.__file__)"], cwd=installed.parent)
    assert Path(where.stdout.strip()).is_relative_to(installed.parent)
    assert not any(installed.parent.glob("lib/python*/site-packages/__editable__*"))
    in_use = _run(
        [str(installed / "python"), "-c", "from otelkit._runtime.otlp import encode, native; print(native.in_use())"],
        cwd=installed.parent,
    )
    assert in_use.stdout.strip() == "True", in_use.stderr  # the wheel's C encoder, checked and loaded
    # The gRPC exporter is an extra: a plain install does not have it.
    probe = subprocess.run(
        [str(installed / "python"), "-c", "import grpc"], env=_env(), capture_output=True, timeout=60
    )
    assert probe.returncode != 0


def test_wheel_renders_collector_builder_and_alerts_from_anywhere(installed: Path, tmp_path: Path) -> None:
    otelkit = str(installed / "otelkit")
    _run([otelkit, "render-collector", "-o", "otelcol.yaml"], cwd=tmp_path)
    assert "receivers:" in (tmp_path / "otelcol.yaml").read_text()
    assert "dist:" in _run([otelkit, "render-builder"], cwd=tmp_path).stdout
    assert "groups:" in _run([otelkit, "render-alerts"], cwd=tmp_path).stdout
    _run([otelkit, "render-alerts", "-o", "alerts.yaml", "--alertmanager", "alertmanager.yaml"], cwd=tmp_path)
    assert "route:" in (tmp_path / "alertmanager.yaml").read_text()


_APP = """
from opentelemetry import trace

with trace.get_tracer("wheel.test").start_as_current_span("from-the-wheel"):
    pass
"""


def test_wheel_tail_receives_an_instrumented_app_asking_for_grpc_over_http(installed: Path, tmp_path: Path) -> None:
    tail = subprocess.Popen(
        [str(installed / "otelkit"), "tail", "--port", "0", "--signals", "traces", "--once", "--exit-after", "120"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        banner = tail.stderr.readline()
        endpoint = re.search(r"listening for OTLP/HTTP on (http://\S+)", banner)
        assert endpoint, banner
        (tmp_path / "app.py").write_text(_APP)
        app = _run(
            [str(installed / "otelkit-instrument"), str(installed / "python"), "app.py"],
            cwd=tmp_path,
            timeout=120,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint.group(1),
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_SERVICE_NAME="wheel-app",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        out, err = tail.communicate(timeout=120)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.communicate()
    assert tail.returncode == 0, err
    assert "from-the-wheel" in out, (out, err, app.stderr)
    # One line (JSON, the production console format), saying how to install the extra.
    grpc_lines = [json.loads(line)["message"] for line in app.stderr.splitlines() if "grpc" in line.lower()]
    assert grpc_lines == [
        "otelkit: OTEL_EXPORTER_OTLP_PROTOCOL=grpc but the OTLP/gRPC exporter is not installed"
        " (pip install 'otelkit[grpc]'); traces go over http/protobuf"
        " (default endpoint http://localhost:4318) until it is"
    ], app.stderr
