"""The launcher's distro: defaults for the standard ``OTEL_*`` variables and instrumentor kwargs.

Run an app as ``OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app``. Every
default below is set with ``os.environ.setdefault``: a value in the user's environment always wins.

===========================================  ===========================================================
``OTEL_TRACES_EXPORTER`` / ``METRICS`` / ``LOGS``  ``otlp`` for all three signals
``OTEL_EXPORTER_OTLP_PROTOCOL``               ``http/protobuf`` (fork-friendlier than grpc)
``OTEL_SEMCONV_STABILITY_OPT_IN``             ``http``: stable HTTP semconv (seconds, ``http.route``)
``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``         the health endpoints, as anchored regexes
``OTEL_PYTHON_CONFIGURATOR``                  ``otelkit``: wins over opentelemetry-distro if installed
``OTEL_SERVICE_NAME``                         derived from the command (``uvicorn shop.main:app`` →
                                              ``shop``, ``celery -A shop worker`` → ``shop-worker``)
===========================================  ===========================================================

Instrumentors pass through :meth:`OtelkitDistro.load_instrumentor`, the only place the launcher
lets a distro choose their arguments: FastAPI gets otelkit's lean instrumentation (or the contrib
one without its send/receive spans), the logging handler gets otelkit's filters. Every other
instrumentation whose library is installed but not imported yet (httpx, redis, requests,
sqlalchemy…) is applied the moment the app first imports that library: start-up does not import
every library some instrumentation exists for. Failures are logged and never raised into the
user's process.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

__all__ = ["DEFAULT_EXCLUDED_URLS", "OtelkitDistro", "apply_env_defaults", "default_service_name"]

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
    """Set otelkit's defaults for the standard variables, never overriding the user's values."""
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


class OtelkitDistro(BaseDistro):
    """The launcher's distro (entry point ``opentelemetry_distro: otelkit``)."""

    def _configure(self, **kwargs: Any) -> None:
        try:
            apply_env_defaults()
        except Exception as exc:
            _log.error("otelkit: setting OTEL_* defaults failed: %s", exc)

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        from otelkit import _api

        try:
            handled = _api.load_instrumentor(entry_point.name, kwargs)
        except ImportError:
            raise  # the launcher skips instrumentations whose library is not installed
        except Exception as exc:
            _log.error("otelkit: instrumenting %s failed, continuing without it: %s", entry_point.name, exc)
            return
        if handled:
            return
        module = _lazy_target(entry_point.name)
        if module is not None:
            # The library is installed but not imported yet: instrument it the moment the app
            # imports it, so start-up does not import every library some instrumentation exists for.
            from otelkit import _imports

            _imports.when_imported(module, lambda _module: entry_point.load()().instrument(**kwargs))
            return
        try:
            entry_point.load()().instrument(**kwargs)
        except ImportError:
            raise
        except Exception as exc:
            _log.error("otelkit: instrumenting %s failed, continuing without it: %s", entry_point.name, exc)


def _lazy_target(name: str) -> str | None:
    """The top-level module to wait for before instrumenting ``name``, or None to instrument now.

    Contrib instrumentations are named after the module they patch (``httpx``, ``redis``,
    ``requests``, ``sqlalchemy``…). When no such module is installed (``aiohttp_client``,
    ``system_metrics``) or it is already imported, instrument at once, as the launcher would.
    """
    import importlib.util

    if not name.isidentifier() or name in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return name if spec is not None else None
