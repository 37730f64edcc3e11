"""What otelkit does before the app runs: defaults, providers, instrumentations.

Two ways in, one code path:

- ``otelkit-instrument uvicorn app:app`` (:mod:`otelkit._launcher.command`) puts
  ``otelkit/_launcher/_boot`` first on ``PYTHONPATH``; its ``sitecustomize`` calls :func:`initialize`
  in the app's process. Nothing of the stock launcher is imported: no ``packaging``, no ``wrapt``,
  no per-instrumentation dependency scan of every installed distribution.
- ``OTEL_PYTHON_DISTRO=otelkit opentelemetry-instrument uvicorn app:app``: the stock launcher calls
  :class:`otelkit.distro.OtelkitDistro`, otelkit's configurator and post-instrument hook, which end
  in the same functions.

Either way the standard ``OTEL_*`` variables get otelkit's defaults (never overriding the user's,
:func:`otelkit._runtime.env.apply_env_defaults`), and every contrib instrumentation whose library
is installed but not imported yet is applied the moment the app imports that library
(:func:`otelkit._runtime.instrument.instrument_entry_point`). Failures are logged and never raised
into the user's process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from otelkit._runtime.env import apply_env_defaults

__all__ = ["initialize"]

_log = logging.getLogger("otelkit")

_GEVENT_PATCH = "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH"


def initialize() -> None:
    """Set the process up as ``opentelemetry-instrument`` with otelkit as distro would, only leaner.

    Called by ``otelkit/_launcher/_boot/sitecustomize.py`` in every Python process started under
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
    # Imported after the defaults are set: the SDK and instrumentations read some variables at import.
    from otelkit._runtime import setup
    from otelkit._runtime.instrument import instrument_entry_point

    try:
        setup.configure_from_launcher()
    except Exception as exc:
        _log.error("otelkit: configuration failed, telemetry is disabled: %s", exc)
    from otelkit._runtime.sdk_compat import entry_points

    _run_hooks(entry_points(group="opentelemetry_pre_instrument"))
    disabled = {n.strip() for n in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if "*" not in disabled:
        for entry_point in entry_points(group="opentelemetry_instrumentor"):
            if entry_point.name in disabled:
                continue
            try:
                instrument_entry_point(entry_point, {})
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
        from gevent import monkey
    except ImportError:
        _log.error("otelkit: %s=patch_all but gevent is not installed; pip install gevent or unset it", _GEVENT_PATCH)
        return
    monkey.patch_all()
