"""otelkit.cli.main: how a command's typer.Exit and typer.Abort end the process."""

from __future__ import annotations

import pytest
import typer

import otelkit.cli as cli


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """A bare app in place of otelkit's, with two commands (the real ones are never registered)."""
    bare = typer.Typer(add_completion=False)

    @bare.command("exit3")
    def exit3() -> None:
        raise typer.Exit(3)

    @bare.command("abort")
    def abort() -> None:
        raise typer.Abort()

    monkeypatch.setattr(cli, "app", bare)
    monkeypatch.setattr(cli, "_registered", [True])
    return bare


def test_cli_main_typer_exit_sets_the_exit_code(app: typer.Typer) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["exit3"])
    assert exc.value.code == 3


def test_cli_main_abort_is_one_line_and_exit_130(app: typer.Typer, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["abort"])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "error: aborted\n"
