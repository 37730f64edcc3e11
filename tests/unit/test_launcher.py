"""otelkit-instrument's command line (what it runs is in tests/e2e/test_launcher_e2e.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otelkit._launcher import command as _launcher

BOOT = str(Path(_launcher.__file__).parent / "_boot")
USAGE = "usage: otelkit-instrument [--OPTION VALUE]... COMMAND [ARGS]...  (see otelkit-instrument --help)\n"


def test_launcher_parse_options_become_otel_variables():
    settings, command = _launcher.parse(
        [
            "--traces_exporter",
            "console",
            "--service_name=shop",
            "--disabled_instrumentations",
            "redis",
            "uvicorn",
            "--port",
            "1",
        ]
    )
    assert settings == {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "redis",
    }
    assert command == ["uvicorn", "--port", "1"]  # options after the command are the command's


def test_launcher_parse_without_options_reads_no_metadata(monkeypatch):
    def boom():
        raise AssertionError("entry points scanned without an option")

    monkeypatch.setattr(_launcher, "_option_variables", boom)
    assert _launcher.parse(["celery", "-A", "shop", "worker"]) == ({}, ["celery", "-A", "shop", "worker"])
    assert _launcher.parse(["--", "-weird-name"]) == ({}, ["-weird-name"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no command given; put the command to run after the options, e.g. uvicorn app:app"),
        (
            ["--trace_exporter", "console", "uvicorn"],
            "unknown option '--trace_exporter'; expected an OpenTelemetry variable's option such as"
            " --traces_exporter or --service_name (did you mean '--traces_exporter'?)",
        ),
        (["-v", "uvicorn"], "unknown option '-v'; options are --NAME VALUE for OTEL_* variables"),
        (["--service_name"], "option '--service_name' needs a value, e.g. --service_name VALUE"),
        (
            ["no-such-program-here"],
            "command 'no-such-program-here' not found; give a program on PATH (uvicorn, celery, python…)"
            " or a path to one",
        ),
    ],
)
def test_launcher_usage_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert _launcher.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"otelkit-instrument: error: {message}\n{USAGE}"


def test_launcher_help_and_version(capsys):
    assert _launcher.main(["--help"]) == 0
    assert "Run COMMAND (uvicorn, gunicorn, celery, python, ...)" in capsys.readouterr().out
    assert _launcher.main(["--version"]) == 0
    assert capsys.readouterr().out == "otelkit-instrument (otelkit) 0.1.0\n"


def test_launcher_python_path_puts_boot_first_and_drops_the_stock_launchers():
    stock = "/venv/lib/python3.11/site-packages/opentelemetry/instrumentation/auto_instrumentation"
    path = _launcher.python_path(os.pathsep.join([stock, "/srv/lib", BOOT]), "/srv/app")
    assert path.split(os.pathsep) == [BOOT, "/srv/app", "/srv/lib"]
    assert _launcher.python_path(None, "/srv/app").split(os.pathsep) == [BOOT, "/srv/app"]


def test_launcher_console_script_execs_the_command_with_the_variables(tmp_path):
    launcher = Path(sys.executable).with_name("otelkit-instrument")
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    if "PYTHONPATH" in os.environ:  # the compiled build's test run (scripts/compiled.sh) imports otelkit from it
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    code = "import os, sys; print(os.environ['OTEL_SERVICE_NAME'], sys.path.index(os.environ['BOOT']) < 2)"
    out = subprocess.run(
        [str(launcher), "--service_name", "nightly", sys.executable, "-c", code],
        env={**env, "BOOT": BOOT},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.split() == ["nightly", "True"]
