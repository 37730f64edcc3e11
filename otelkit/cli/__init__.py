"""cli: the ``otelkit`` command line — one module per command, registered in ``_commands``.

The top layer: it may import anything in otelkit (``otelkit.ops`` to render, ``otelkit.local`` to
build and run processes, ``otelkit.testing`` for ``otelkit tail``), and nothing imports it but the
``otelkit`` console script. It is the only place that prints errors and sets exit codes: domain
code raises :class:`otelkit.errors.OtelkitError`; this layer prints it as one ``error: …`` line on
stderr and exits with its ``exit_code`` (2 for usage errors). Click's own usage errors (unknown
flag, bad choice) are reduced to the same one-line form.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.29 vendors its own click; older typers use click itself
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]

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


_registered: list[bool] = []


def _register() -> None:
    # Each command lives in its own module and is mounted once (main() may run many times in tests).
    if _registered:
        return
    from otelkit.cli import _commands

    _commands.register(app)
    _registered.append(True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``otelkit`` console script."""
    _register()
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="otelkit")
        # Outside standalone mode typer returns (not raises) the exit code of an aborted command.
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except OtelkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except _click_exceptions.NoArgsIsHelpError as exc:
        # Outside click's standalone mode nobody prints the help for us.
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        sys.exit(2)
    except _click_exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else "otelkit"
        print(f"error: {exc.format_message()} (see '{cmd} --help')", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:  # click's own Abort/Exit in older typers (the same classes), typer's in newer ones
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
