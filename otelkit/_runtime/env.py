"""The one owner of otelkit's defaults for the standard ``OTEL_*`` variables, and of reading them.

:func:`apply_env_defaults` sets otelkit's defaults with ``os.environ.setdefault`` (a value in the
user's environment always wins); :func:`default_service_name` derives ``service.name`` from the
command line; :data:`DEFAULT_EXCLUDED_URLS` keeps the health endpoints out of traces and metrics;
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
instrumentation does."""

_GENERIC_MODULES = frozenset(("app", "main", "api", "server", "src", "asgi", "wsgi", "application", "web"))
_ASGI_SERVERS = frozenset(("uvicorn", "gunicorn", "hypercorn", "granian", "daphne", "fastapi"))


def _sanitize(name: str) -> str:
    name = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-.")
    return name or "python-service"


def default_service_name(argv: list[str] | None = None, cwd: str | None = None) -> str:
    """A readable service name derived from the command line that started the process."""
    argv = list(sys.argv if argv is None else argv)
    folder = os.path.basename(os.path.abspath(cwd or os.getcwd()))
    if not argv:
        return _sanitize(folder)
    prog = os.path.basename(argv[0])
    if prog.endswith(".py"):
        prog = prog[:-3]
    args = argv[1:]
    if prog in _ASGI_SERVERS:
        for arg in args:
            if ":" in arg and not arg.startswith("-"):
                parts = [p for p in arg.split(":")[0].split(".") if p and p not in _GENERIC_MODULES]
                return _sanitize(parts[0] if parts else folder)
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
        base = folder
        if app_name:
            parts = [p for p in app_name.split(":")[0].split(".") if p and p not in _GENERIC_MODULES]
            base = parts[0] if parts else folder
        role = next((a for a in args if a in ("worker", "beat", "flower")), None)
        return _sanitize(f"{base}-{role}" if role else base)
    if prog in ("python", "python3") or re.fullmatch(r"python3(\.\d+)?", prog):
        if len(args) >= 2 and args[0] == "-m":
            return _sanitize(args[1].split(".")[0])
        if args and args[0].endswith(".py"):
            return _sanitize(os.path.basename(args[0])[:-3])
        return _sanitize(folder)
    return _sanitize(prog)


def apply_env_defaults(*, service_name: str | None = None) -> None:
    """Set otelkit's defaults for the standard variables, never overriding the user's values.

    Bad values of the standard variables are dropped first (:mod:`otelkit._runtime.envcheck`), each with one line.
    """
    from otelkit._runtime import envcheck

    envcheck.check()
    env = os.environ
    for signal in ("TRACES", "METRICS", "LOGS"):
        env.setdefault(f"OTEL_{signal}_EXPORTER", "otlp")
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    env.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    env.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    env.setdefault("OTEL_PYTHON_CONFIGURATOR", "otelkit")
    if service_name:
        env.setdefault("OTEL_SERVICE_NAME", service_name)
    if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        env["OTEL_SERVICE_NAME"] = default_service_name()


def env_int(name: str, default: int) -> int:
    """The positive integer (at most 100 000) in ``$name``, else ``default`` (the SDK reports a bad value itself)."""
    try:
        value = int(os.environ.get(name, "").strip() or default)
    except ValueError:
        return default
    return value if 0 < value <= 100_000 else default
