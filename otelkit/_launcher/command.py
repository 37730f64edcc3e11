"""``otelkit-instrument``: run a command with otelkit set up in its Python processes.

A drop-in for ``OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument``, with the same options
(``--traces_exporter console`` sets ``OTEL_TRACES_EXPORTER``) and the same result, at a fraction of
its start-up cost: it puts ``otelkit/_launcher/_boot`` first on ``PYTHONPATH`` (plus the current directory,
as the stock launcher does) and ``exec``\\ s the command. The ``sitecustomize`` there sets otelkit
up in every Python process the command starts (:mod:`otelkit._runtime.bootstrap`).

What it saves (measured in bench/README.md): the stock launcher imports ``packaging``, ``wrapt``,
``importlib.metadata`` and every ``opentelemetry_environment_variables`` module in its own
process before it ``exec``\\ s, and again in the app's process, plus a dependency scan per
installed instrumentation. Here the launcher process imports nothing beyond the standard library
unless an option is given, and the app's process only what otelkit needs.

Errors are one line on stderr and exit status 2; nothing is started.
"""

from __future__ import annotations

import os
import shutil
import sys

from otelkit.errors import UsageError  # a bad command line; printed as one line

__all__ = ["main"]

PROG = "otelkit-instrument"
USAGE = f"usage: {PROG} [--OPTION VALUE]... COMMAND [ARGS]...  (see {PROG} --help)"
HELP = f"""{USAGE}

Run COMMAND (uvicorn, gunicorn, celery, python, ...) with OpenTelemetry set up by otelkit in
each of its Python processes: traces, metrics and logs over OTLP. The same as
OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument COMMAND, with a faster start-up.

Options (before COMMAND) set the OpenTelemetry variable of the same name: --traces_exporter
console sets OTEL_TRACES_EXPORTER=console, --service_name shop sets OTEL_SERVICE_NAME=shop
(OTEL_ and OTEL_PYTHON_ dropped, lower case), as with opentelemetry-instrument. Everything else
is configured with the OTEL_* and OTELKIT_* environment variables (README: Configuration).

Example:  {PROG} uvicorn shop.main:app --port 8000
"""


def _boot_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")


def _option_variables() -> dict[str, str]:
    """``--name`` → variable, from every installed ``opentelemetry_environment_variables`` module."""
    import re

    from otelkit._runtime.sdk_compat import entry_points

    options: dict[str, str] = {}
    for entry_point in entry_points(group="opentelemetry_environment_variables"):
        try:
            module = entry_point.load()
        except Exception:  # a broken package must not stop the app from starting
            continue
        for attribute in dir(module):
            if attribute.startswith("OTEL_"):
                options[re.sub(r"^OTEL_(PYTHON_)?", "", attribute).lower()] = attribute
    return options


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split the command line into ``(variables the options set, command)``; raises UsageError."""
    settings: dict[str, str] = {}
    options: dict[str, str] | None = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        name, has_value, value = arg[2:].partition("=") if arg.startswith("--") else ("", False, "")
        if not name:
            raise UsageError(f"unknown option {arg!r}; options are --NAME VALUE for OTEL_* variables")
        if options is None:
            options = _option_variables()
        variable = options.get(name)
        if variable is None:
            import difflib

            close = difflib.get_close_matches(name, list(options), n=1)
            hint = f" (did you mean '--{close[0]}'?)" if close else ""
            raise UsageError(
                f"unknown option '--{name}'; expected an OpenTelemetry variable's option such as"
                f" --traces_exporter or --service_name{hint}"
            )
        if not has_value:
            if i + 1 >= len(argv):
                raise UsageError(f"option '--{name}' needs a value, e.g. --{name} VALUE")
            value = argv[i + 1]
            i += 1
        settings[variable] = value
        i += 1
    command = argv[i:]
    if not command:
        raise UsageError("no command given; put the command to run after the options, e.g. uvicorn app:app")
    return settings, command


def python_path(current: str | None, cwd: str) -> str:
    """``PYTHONPATH`` for the command: otelkit's boot directory first, the current directory next."""
    entries = [e for e in (current or "").split(os.pathsep) if e]
    # The stock launcher's directory would set everything up a second time.
    stock = os.path.join("instrumentation", "auto_instrumentation")
    entries = [e for e in entries if os.path.abspath(e) != _boot_dir() and not os.path.abspath(e).endswith(stock)]
    if cwd not in entries:
        entries.insert(0, cwd)  # as opentelemetry-instrument does, for apps run as their own executable
    return os.pathsep.join([_boot_dir(), *entries])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(HELP)
        return 0
    if args[:1] == ["--version"]:
        from otelkit import __version__

        sys.stdout.write(f"{PROG} (otelkit) {__version__}\n")
        return 0
    try:
        settings, command = parse(args)
        executable = shutil.which(command[0])
        if executable is None:
            raise UsageError(
                f"command {command[0]!r} not found; give a program on PATH (uvicorn, celery, python…) or a path to one"
            )
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n{USAGE}\n")
        return 2
    os.environ.update(settings)
    os.environ["PYTHONPATH"] = python_path(os.environ.get("PYTHONPATH"), os.getcwd())
    try:
        os.execv(executable, command)
    except OSError as exc:
        sys.stderr.write(f"{PROG}: error: cannot run {executable!r}: {exc.strerror}\n")
        return 2
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
