"""The one owner of otelkit's defaults for the standard ``OTEL_*`` variables, and of reading them.

:func:`apply_env_defaults` sets otelkit's defaults with ``os.environ.setdefault`` (a value in the
user's environment always wins); :func:`default_service_name` derives ``service.name`` from the
command line; :data:`DEFAULT_EXCLUDED_URLS` keeps the health endpoints out of the contrib instrumentation's traces;
:func:`env_int` reads a numeric variable the way the SDK does. The table of defaults is in
:mod:`otelkit.distro`.
"""

from __future__ import annotations

import logging
import os
import re
import sys

__all__ = ["DEFAULT_EXCLUDED_URLS", "apply_env_defaults", "default_service_name", "env_int"]

_log = logging.getLogger("otelkit")

DEFAULT_EXCLUDED_URLS = r"^[a-z][a-z0-9+.-]*://[^/?#]*/health(?:/live|/ready)?/?(?:\?.*)?$"
"""Health endpoints, anchored: ``/health``, ``/health/live``, ``/health/ready`` — not
``/healthcare`` nor ``/api/health-report``. Searched in the full URL, as the contrib
instrumentation does. The default of ``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` only with
``OTELKIT_HTTP_INSTRUMENTATION=contrib``: otelkit's own instrumentation excludes exactly the
health router otelkit serves."""

# Module names that say what a module is, not whose it is: skipped when a name is derived.
_GENERIC_MODULES = frozenset(
    (
        "app",
        "main",
        "api",
        "server",
        "src",
        "asgi",
        "wsgi",
        "application",
        "web",
        "celery",
        "celery_app",
        "celeryapp",
        "tasks",
        "worker",
        "workers",
        "config",
        "settings",
        "core",
        "run",
        "__main__",
    )
)
_ASGI_SERVERS = frozenset(("uvicorn", "gunicorn", "hypercorn", "granian", "daphne", "fastapi"))
_PROGRAMS = _ASGI_SERVERS | {"celery"}
# Interpreter options that take a value (python -X dev -W error script.py).
_PYTHON_OPTIONS_WITH_VALUE = frozenset(("-X", "-W", "--check-hash-based-pycs"))


def _sanitize(name: str) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-.")
    return name or "python-service"


def _owner(dotted: str, folder: str) -> str:
    """The first part of ``pkg.sub.module`` that is not a generic name, else the project folder."""
    parts = [p for p in dotted.split(".") if p and p not in _GENERIC_MODULES]
    return parts[0] if parts else folder


def _is_python(program: str) -> bool:
    return re.fullmatch(r"python(3(\.\d+)?)?(\.exe)?", program) is not None


def _unwrap_python(args: list[str]) -> tuple[str, str, list[str]]:
    """``(kind, target, rest)`` of ``python [options] (-m module | -c code | script) rest``."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-m", "-c"):
            return arg, args[i + 1] if i + 1 < len(args) else "", args[i + 2 :]
        if arg in _PYTHON_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-") and arg != "-":
            i += 1
            continue
        return "script", arg, args[i + 1 :]
    return "-c", "", []  # the interactive interpreter


def _command_line() -> list[str]:
    # sys.orig_argv is the command as typed: at start-up (sitecustomize, where otelkit runs under
    # the launchers) sys.argv[0] is still "-m" or "-c", without the module's name.
    orig = getattr(sys, "orig_argv", None)
    return list(orig) if orig else list(sys.argv)


def default_service_name(argv: list[str] | None = None, cwd: str | None = None) -> str:
    """A readable service name derived from the command that started the process.

    The app's package, or the project folder (the working directory) when the command names only
    generic modules (``main``, ``app``, ``celery``, ``tasks``…) or none at all:

    ==========================================  ===================
    ``uvicorn main:app``                         ``<folder>``
    ``uvicorn shop.main:app``                    ``shop``
    ``celery -A shop.celery_app worker``         ``shop-worker``
    ``celery -A main.celery worker``             ``<folder>-worker``
    ``python -m shop`` / ``python -m shop.cli``  ``shop``
    ``python nightly_report.py``                 ``nightly_report``
    ``python main.py``, ``python -c …``          ``<folder>``
    ==========================================  ===================

    Args:
        argv: The command line (default ``sys.orig_argv``); the interpreter may lead it.
        cwd: The project folder (default the working directory).
    """
    argv = _command_line() if argv is None else list(argv)
    folder = os.path.basename(os.path.abspath(cwd or os.getcwd()))
    if not argv:
        return _sanitize(folder)
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog in ("-c", "-m"):  # sys.argv at start-up, without the interpreter
        return _sanitize(folder)
    if _is_python(prog):
        kind, target, rest = _unwrap_python(args)
        if kind == "-c" or not target:
            return _sanitize(folder)
        if kind == "-m":
            if target in _PROGRAMS:  # python -m uvicorn shop.main:app
                return _program_name(target, rest, folder)
            return _sanitize(_owner(target, folder))
        prog, args = os.path.basename(target), rest
        if not prog.endswith(".py") and prog not in _PROGRAMS:
            return _sanitize(prog)
        if prog.endswith(".py") and prog[:-3] in _GENERIC_MODULES:
            parent = os.path.basename(os.path.dirname(os.path.abspath(os.path.join(cwd or os.getcwd(), target))))
            return _sanitize(parent if prog == "__main__.py" and parent else folder)
    if prog.endswith(".py"):
        prog = prog[:-3]
    return _program_name(prog, args, folder)


# "module.path:attribute" or a factory "module:create_app()": never a bind address such as
# 0.0.0.0:8000, localhost:8000, unix:/run/app.sock or [::]:8000 (gunicorn -b, hypercorn --bind).
_APP_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(?:\(.*\))?")


def _program_name(prog: str, args: list[str], folder: str) -> str:
    if prog in _ASGI_SERVERS:
        for arg in args:
            if _APP_REFERENCE.fullmatch(arg):
                return _sanitize(_owner(arg.split(":")[0], folder))
        return _sanitize(folder)
    if prog == "celery":
        app_name = None
        for i, arg in enumerate(args):
            if arg in ("-A", "--app") and i + 1 < len(args):
                app_name = args[i + 1]
            elif arg.startswith("--app="):
                app_name = arg.split("=", 1)[1]
            elif arg.startswith("-A") and len(arg) > 2:
                app_name = arg[2:]
        base = _owner(app_name.split(":")[0], folder) if app_name else folder
        role = next((a for a in args if a in ("worker", "beat", "flower")), None)
        return _sanitize(f"{base}-{role}" if role else base)
    return _sanitize(prog)


def apply_env_defaults(*, derive_service_name: bool = True) -> None:
    """Set otelkit's defaults for the standard variables, never overriding the user's values.

    Bad values of the standard variables are dropped first (:mod:`otelkit._runtime.envcheck`), each
    with one line.

    Args:
        derive_service_name: set ``OTEL_SERVICE_NAME`` to :func:`default_service_name` when neither
            it nor ``OTEL_RESOURCE_ATTRIBUTES`` names the service. False when the caller names it
            itself (``configure(service_name=…)``: that name goes to the resource, not into the
            environment child processes inherit).
    """
    from otelkit._runtime import envcheck

    envcheck.check()
    env = os.environ
    for signal in ("TRACES", "METRICS", "LOGS"):
        env.setdefault(f"OTEL_{signal}_EXPORTER", "otlp")
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    env.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    if env.get("OTELKIT_HTTP_INSTRUMENTATION", "").strip().lower() == "contrib":
        # Contrib's instrumentation can only exclude by URL; otelkit's own excludes exactly the
        # health router otelkit serves (otelkit._runtime.http), so an app's own /health stays traced.
        env.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    env.setdefault("OTEL_PYTHON_CONFIGURATOR", "otelkit")
    if (
        derive_service_name
        and not env.get("OTEL_SERVICE_NAME")
        and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    ):
        env["OTEL_SERVICE_NAME"] = default_service_name()


def env_int(name: str, default: int) -> int:
    """The positive integer (at most 100 000) in ``$name``, else ``default`` (the SDK reports a bad value itself)."""
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if 0 < value <= 100_000 else default
