"""What otelkit does before the app runs: defaults, providers, instrumentations.

Two ways in, one code path:

- ``otelkit-instrument uvicorn app:app`` (:mod:`otelkit._launcher`) puts ``otelkit/_boot`` first on
  ``PYTHONPATH``; its ``sitecustomize`` calls :func:`initialize` in the app's process. Nothing of
  the stock launcher is imported: no ``packaging``, no ``wrapt``, no per-instrumentation dependency
  scan of every installed distribution.
- ``OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app``: the stock launcher calls
  :class:`otelkit.distro.OtelkitDistro`, otelkit's configurator and post-instrument hook, which end
  in the same functions.

Either way the standard ``OTEL_*`` variables get otelkit's defaults (never overriding the user's,
:func:`apply_env_defaults`), and every contrib instrumentation whose library is installed but not
imported yet is applied the moment the app imports that library (:func:`load_instrumentor`).
Failures are logged and never raised into the user's process.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

__all__ = ["DEFAULT_EXCLUDED_URLS", "apply_env_defaults", "default_service_name", "initialize", "load_instrumentor"]

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


def load_instrumentor(entry_point: Any, kwargs: dict[str, Any]) -> None:
    """Apply one ``opentelemetry_instrumentor`` entry point, otelkit's way.

    FastAPI, logging, Celery and system metrics are otelkit's own (:func:`otelkit._api.load_instrumentor`);
    any other instrumentation waits for its library to be imported. Raises ImportError when the
    library is not installed (both launchers skip it); logs any other failure.
    """
    from otelkit import _api

    try:
        handled = _api.load_instrumentor(entry_point.name, kwargs)
    except ImportError:
        raise
    except Exception as exc:
        _log.error("otelkit: instrumenting %s failed, continuing without it: %s", entry_point.name, exc)
        return
    if handled:
        return
    module = _lazy_target(entry_point.name)
    if module is not None:
        # The library is installed but not imported yet: instrument it the moment the app
        # imports it, so start-up does not import every library some instrumentation exists for.
        from otelkit._runtime import imports

        imports.when_imported(module, lambda _module: entry_point.load()().instrument(**kwargs))
        return
    try:
        # The stock launcher checked dependencies already (skip_dep_check); otelkit-instrument did not.
        entry_point.load()().instrument(**{"raise_exception_on_conflict": True, **kwargs})
    except ImportError:
        raise
    except Exception as exc:
        if type(exc).__name__ == "DependencyConflictError":
            exc.conflict._log(_log, entry_point.name)  # type: ignore[attr-defined]  # debug if missing
            return
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


_GEVENT_PATCH = "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH"


def initialize() -> None:
    """Set the process up as ``opentelemetry-instrument`` with otelkit as distro would, only leaner.

    Called by ``otelkit/_boot/sitecustomize.py`` in every Python process started under
    ``otelkit-instrument``. Honours ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (names, or ``*``), the
    gevent patch variable, and the ``opentelemetry_pre_instrument``/``opentelemetry_post_instrument``
    hooks of other installed packages. Never raises.
    """
    try:
        _initialize()
    except Exception as exc:  # never raise into the user's process
        _log.error("otelkit: start-up failed, telemetry may be incomplete: %s", exc)


def _initialize() -> None:
    _gevent_patch()
    try:
        apply_env_defaults()
    except Exception as exc:
        _log.error("otelkit: setting OTEL_* defaults failed: %s", exc)
    from otelkit import _api

    try:
        _api.configure_from_launcher()
    except Exception as exc:
        _log.error("otelkit: configuration failed, telemetry is disabled: %s", exc)
    from opentelemetry.util._importlib_metadata import entry_points

    _run_hooks(entry_points(group="opentelemetry_pre_instrument"))
    disabled = {n.strip() for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if "*" not in disabled:
        for entry_point in entry_points(group="opentelemetry_instrumentor"):
            if entry_point.name in disabled:
                continue
            try:
                load_instrumentor(entry_point, {})
            except ImportError as exc:
                _log.debug("otelkit: skipping instrumentation %s: %s", entry_point.name, exc)
    _run_hooks(entry_points(group="opentelemetry_post_instrument"))


def _run_hooks(hooks: Any) -> None:
    for hook in hooks:
        try:
            hook.load()()
        except Exception as exc:
            _log.error("otelkit: the %s hook %s failed: %s", hook.group, hook.name, exc)


def _gevent_patch() -> None:
    value = os.environ.get(_GEVENT_PATCH)
    if value is None:
        return
    if value != "patch_all":
        _log.error(
            "otelkit: invalid %s=%r; expected patch_all; gevent is not patched — fix or unset it", _GEVENT_PATCH, value
        )
        return
    try:
        from gevent import monkey  # type: ignore[import-not-found]
    except ImportError:
        _log.error("otelkit: %s=patch_all but gevent is not installed; pip install gevent or unset it", _GEVENT_PATCH)
        return
    monkey.patch_all()
