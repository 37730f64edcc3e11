"""otelkit.ops.templates: where templates are found, and what a template failure looks like."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli

from otelkit.ops import templates


@pytest.fixture
def fresh_environment() -> Iterator[None]:
    templates.environment.cache_clear()
    yield
    templates.environment.cache_clear()


def test_templates_dir_prefers_the_installed_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A wheel install ships the templates inside the package (otelkit/templates); importlib.resources
    # finds them there first, whatever directory happens to sit beside site-packages.
    package = tmp_path / "site-packages" / "otelkit"
    (package / "templates" / "collector").mkdir(parents=True)
    real_files = importlib.resources.files

    def files(anchor: str) -> object:
        return package if anchor == "otelkit" else real_files(anchor)

    monkeypatch.setattr(importlib.resources, "files", files)
    assert templates.templates_dir() == package / "templates"


def test_templates_dir_falls_back_to_the_repository() -> None:
    # In a checkout the package has no templates/ of its own: the top-level templates/ is used.
    assert templates.templates_dir() == Path(templates.__file__).resolve().parents[2] / "templates"


def test_render_collector_missing_template_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_environment: None
) -> None:
    monkeypatch.setattr(templates, "templates_dir", lambda: tmp_path)
    code, out, err = run_cli(capsys, "render-collector")
    assert code == 1
    assert out == ""
    assert err == (
        f"error: template 'collector/otelcol.yaml.j2' not found in {tmp_path}: otelkit's templates are missing"
        " from this installation; reinstall otelkit (pip install --force-reinstall otelkit)\n"
    )


def test_render_collector_template_error_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_environment: None
) -> None:
    (tmp_path / "collector").mkdir()
    (tmp_path / "collector" / "otelcol.yaml.j2").write_text("{{ no_such_variable }}\n", encoding="utf-8")
    monkeypatch.setattr(templates, "templates_dir", lambda: tmp_path)
    code, out, err = run_cli(capsys, "render-collector")
    assert code == 1
    assert out == ""
    assert err == (
        "error: rendering template 'collector/otelcol.yaml.j2' failed (UndefinedError: 'no_such_variable' is"
        " undefined); this is a bug in otelkit, please report it\n"
    )
