"""The CLI's last resort and render-alerts' ranges: every failure is one line, never a traceback.

Usage errors are exit 2 with one ``error:`` line; a bug is exit 1 with one
``otelkit: internal error: <type>: <message> (please report)`` line, and the traceback only with
``OTELKIT_DEBUG=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from cli_runner import run_cli

from otelkit.errors import RenderError
from otelkit.ops import slo


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_cli_deeply_nested_spec_is_a_config_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text("http: " + "[" * 10_000 + "]" * 10_000 + "\n")
    code, out, err = run_cli(capsys, "render-alerts", "--spec", str(spec))
    assert (code, out) == (2, "")
    assert _one_line(err) == f"error: {spec}: invalid YAML: nested too deeply; an SLO spec is a few levels deep\n"


def test_cli_spec_with_an_endless_number_is_a_config_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text("process:\n  memory: {max: " + "9" * 5000 + "}\n")
    code, _, err = run_cli(capsys, "render-alerts", "--spec", str(spec))
    assert code == 2
    assert _one_line(err).startswith(f"error: {spec}: invalid YAML: Exceeds the limit (4300 digits)")


def test_cli_spec_larger_than_a_megabyte_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "render-alerts", "--spec", "/dev/zero")  # would never end
    assert code == 2
    assert _one_line(err) == "error: /dev/zero: larger than 1024 KiB; an SLO spec is a few lines of YAML\n"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "http:\n  error_rate: {max: 1E-400%}\n",
            "http.error_rate.max: percentage '1E-400%' is out of range; expected from 0.000001% to 99.999999%",
        ),
        (
            "process:\n  memory: {max: " + "9" * 400 + "}\n",
            "process.memory.max: size 999999999999999999...9999999999999999999 is out of range; expected from 1B"
            " to 8PiB",
        ),
        (
            "process:\n  memory: {max: " + "9" * 400 + "GB}\n",
            "process.memory.max: invalid size '999999999999999999999999999...99999999999999999999999999GB'; expected"
            " bytes or a size such as 512MB, 1GB or 2GiB",
        ),
        (
            "http:\n  latency: {max: " + "9" * 400 + "ms}\n",
            "http.latency.max: invalid duration '999999999999999999999999999...99999999999999999999999999ms'; expected"
            " a Prometheus duration from 1ms to 10y such as 30s, 5m, 1h or 1h30m",
        ),
    ],
)
def test_cli_render_alerts_refuses_out_of_range_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, yaml_text: str, message: str
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(yaml_text)
    code, out, err = run_cli(capsys, "render-alerts", "--spec", str(spec))
    assert (code, out) == (2, "")
    assert _one_line(err) == f"error: {spec}: {message}\n"


def test_cli_unexpected_exception_is_one_internal_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom\n\x1b[2Jsecond line")

    monkeypatch.delenv("OTELKIT_DEBUG", raising=False)
    monkeypatch.setattr(slo, "render_alerts", broken)
    code, out, err = run_cli(capsys, "render-alerts")
    assert (code, out) == (1, "")
    assert _one_line(err) == "otelkit: internal error: RuntimeError: boom\\n\\x1b[2Jsecond line (please report)\n"


def test_cli_internal_error_traceback_with_otelkit_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setenv("OTELKIT_DEBUG", "1")
    monkeypatch.setattr(slo, "render_alerts", broken)
    code, _, err = run_cli(capsys, "render-alerts")
    assert code == 1
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith("RuntimeError: boom\n")


def test_cli_abort_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def abort(*args: object, **kwargs: object) -> str:
        raise typer.Abort()

    monkeypatch.setattr(slo, "render_alerts", abort)
    code, _, err = run_cli(capsys, "render-alerts")
    assert (code, err) == (130, "error: aborted\n")


def test_cli_usage_error_message_stays_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> str:
        raise RenderError("bad value 'a\nb\rc'")

    monkeypatch.setattr(slo, "render_alerts", refuse)
    code, _, err = run_cli(capsys, "render-alerts")
    assert (code, err) == (2, "error: bad value 'a\\nb\\rc'\n")


def test_cli_closed_stdout_exits_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte (`| head -0`)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from otelkit.cli import main; main()", "render-collector"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["render-k8s", "--gateway-replicas", "abc", "-o", "out"], "--gateway-replicas", "abc"),
        (["render-collector", "--tail-sampling=1e", "-o", "x.yaml"], "--tail-sampling", "1e"),
    ],
    ids=["separate", "equals"],
)
def test_cli_a_value_that_does_not_convert_is_named(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    option: str,
    value: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert _one_line(err).startswith(f"error: Invalid value for '{option}' ({value!r}): ")
    assert list(tmp_path.iterdir()) == []  # nothing written
