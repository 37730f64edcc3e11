"""The ``otelkit`` command line: one module per command, registered here.

Domain code raises :class:`otelkit.errors.OtelkitError`; this layer prints it as one
``error: …`` line on stderr and exits with its ``exit_code`` (2 for usage errors). Click's own
usage errors (unknown flag, bad choice) are reduced to the same one-line form.
"""

from __future__ import annotations

import sys

import click
import typer

from otelkit.errors import OtelkitError

app = typer.Typer(
    name="otelkit",
    help="OpenTelemetry-native observability for FastAPI + Celery, and the collector pipelines behind it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _register() -> None:
    # Each command lives in its own module and is mounted here; keep one line per command.
    from otelkit.cli import _commands

    _commands.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``otelkit`` console script."""
    _register()
    try:
        app(args=argv, standalone_mode=False, prog_name="otelkit")
    except OtelkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        # no_args_is_help: help was already printed.
        sys.exit(exc.exit_code if hasattr(exc, "exit_code") else 2)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else "otelkit"
        print(f"error: {exc.format_message()} (see '{cmd} --help')", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
