"""cli: the ``otelkit`` command line — one module per command, registered in ``_commands``.

The top layer: it may import anything in otelkit (``otelkit.ops`` to render, ``otelkit.local`` to
build and run processes, ``otelkit.testing`` for ``otelkit tail``), and nothing imports it but the
``otelkit`` console script. It is the only place that prints errors and sets exit codes: domain
code raises :class:`otelkit.errors.OtelkitError`; this layer prints it as one ``error: …`` line on
stderr and exits with its ``exit_code`` (2 for usage errors). Click's own usage errors (unknown
flag, bad choice) are reduced to the same one-line form. Anything else is a bug: it ends as one
``otelkit: internal error: <type>: <message> (please report)`` line with exit 1 (the traceback
only with ``OTELKIT_DEBUG=1``), never as a traceback the user has to read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import typer

try:  # typer >= 0.29 vendors its own click; older typers use click itself
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]


from otelkit.errors import OtelkitError
from otelkit.ops.yamltext import comment
from otelkit.settings import cli_debug

app = typer.Typer(
    name="otelkit",
    help="OpenTelemetry-native observability for FastAPI + Celery, and the collector pipelines behind it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# typer.Abort/typer.Exit are click's own classes on typers that use click, and typer's on those that
# vendor it (whose click has neither): catch both spellings that exist.
_ABORT = tuple({typer.Abort, getattr(_click_exceptions, "Abort", typer.Abort)})
_EXIT = tuple({typer.Exit, getattr(_click_exceptions, "Exit", typer.Exit)})

_MAX_DETAIL = 500

_registered: list[bool] = []


def _register() -> None:
    # Each command lives in its own module and is mounted once (main() may run many times in tests).
    if _registered:
        return
    from otelkit.cli import _commands

    _commands.register(app)
    _registered.append(True)


def _line(text: str) -> str:
    # One line whatever the message holds (a newline or an escape sequence from user input).
    return comment(text)


def _with_value(exc: Exception, argv: list[str]) -> str:
    """Click's message, naming the value given when an option's value failed to convert.

    Click says ``Invalid value for '--gateway-replicas': Input should be a valid integer…`` without
    the value; the value is the one on the command line after the option (the last one given).
    """
    message = str(exc.format_message()) if isinstance(exc, _click_exceptions.ClickException) else str(exc)
    opts: list[str] = list(getattr(getattr(exc, "param", None), "opts", []))
    param = getattr(exc, "param", None)
    if not isinstance(exc, _click_exceptions.BadParameter) or getattr(param, "param_type_name", "") != "option":
        return message
    value = None
    for i, arg in enumerate(argv):
        for name in opts:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
    if value is None or not opts or repr(value) in message:
        return message
    hint = opts[-1]
    return message.replace(f"'{hint}':", f"'{hint}' ({value!r}):", 1) if f"'{hint}':" in message else message


def _stdout_gone() -> None:
    # The reader went away (`| head`): keep Python's final flush from failing too.
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``otelkit`` console script."""
    try:
        _register()
        rc = app(args=argv, standalone_mode=False, prog_name="otelkit")
        # Outside standalone mode typer returns (not raises) the exit code of an aborted command.
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except OtelkitError as exc:
        message = str(exc) if exc.exit_code != 2 else _line(str(exc))
        print(f"error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except _click_exceptions.NoArgsIsHelpError as exc:
        # Outside click's standalone mode nobody prints the help for us.
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        sys.exit(2)
    except _click_exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else "otelkit"
        print(
            f"error: {_line(_with_value(exc, sys.argv[1:] if argv is None else argv))} (see '{cmd} --help')",
            file=sys.stderr,
        )
        sys.exit(2)
    except _click_exceptions.ClickException as exc:  # e.g. FileError
        print(f"error: {_line(exc.format_message())}", file=sys.stderr)
        sys.exit(exc.exit_code or 1)
    except _ABORT:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except _EXIT as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _stdout_gone()
        sys.exit(1)
    except Exception as exc:
        if cli_debug():
            traceback.print_exc()
        else:
            detail = _line(f"{type(exc).__name__}: {exc}")
            if len(detail) > _MAX_DETAIL:
                detail = detail[: _MAX_DETAIL - 1] + "…"
            print(f"otelkit: internal error: {detail} (please report)", file=sys.stderr)
        sys.exit(1)
