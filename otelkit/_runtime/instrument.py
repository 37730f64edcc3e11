"""Instrumenting libraries otelkit's way: one module for both launchers and :func:`otelkit.configure`.

:func:`instrument_entry_point` is what the launchers do with each ``opentelemetry_instrumentor``
entry point (the distro's ``load_instrumentor`` and ``otelkit-instrument``'s start-up);
:func:`instrument_by_name` is otelkit's own way for FastAPI, logging, Celery and system metrics;
:func:`instrument_all` is the instrumentor loop for programmatic use. Every other instrumentation
whose library is installed but not imported yet is applied the moment the app imports it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from otelkit._runtime import imports, sdk_compat, state
from otelkit._runtime.http import asgi
from otelkit._runtime.logs import handler
from otelkit.settings import Settings

__all__ = ["instrument_all", "instrument_by_name", "instrument_entry_point"]

_log = logging.getLogger("otelkit")


def instrument_entry_point(entry_point: Any, kwargs: dict[str, Any]) -> None:
    """Apply one ``opentelemetry_instrumentor`` entry point, otelkit's way.

    FastAPI, logging, Celery and system metrics are otelkit's own (:func:`instrument_by_name`);
    any other instrumentation waits for its library to be imported. Raises ImportError when the
    library is not installed (both launchers skip it); logs any other failure.
    """
    try:
        handled = instrument_by_name(entry_point.name, kwargs)
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
        imports.when_imported(module, lambda _module: entry_point.load()().instrument(**kwargs))
        return
    try:
        # The stock launcher checked dependencies already (skip_dep_check); otelkit-instrument did not.
        # Deferring: the instrumentation module may import a library another instrumentation waits for.
        with imports.deferring():
            entry_point.load()().instrument(**{"raise_exception_on_conflict": True, **kwargs})
    except ImportError:
        raise
    except Exception as exc:
        if sdk_compat.report_dependency_conflict(exc, _log, entry_point.name):
            return
        _log.error("otelkit: instrumenting %s failed, continuing without it: %s", entry_point.name, exc)


# Contrib instrumentations whose entry point is not named after the module they patch.
_LIBRARY_OF = {
    "aiohttp_client": "aiohttp",
    "aiohttp_server": "aiohttp",
    "boto3sqs": "boto3",
    "mysqlclient": "MySQLdb",
    "tortoiseorm": "tortoise",
}


def _lazy_target(name: str) -> str | None:
    """The top-level module to wait for before instrumenting ``name``, or None to instrument now.

    Contrib instrumentations are named after the module they patch (``httpx``, ``redis``,
    ``requests``, ``sqlalchemy``…), a few after something else (:data:`_LIBRARY_OF`). When no such
    module is installed (``system_metrics``) or it is already imported, instrument at once, as the
    launcher would.
    """
    import importlib.util

    name = _LIBRARY_OF.get(name, name)
    if not name.isidentifier() or name in sys.modules:
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return name if spec is not None else None


def instrument_by_name(name: str, kwargs: dict[str, Any]) -> bool:
    """Instrument ``name`` otelkit's way. Returns False when the launcher's default way is right."""
    telemetry = state.telemetry()
    settings = telemetry.settings if telemetry else Settings()
    if name in ("fastapi", "starlette"):
        if settings.http_instrumentation == "otelkit":
            if name == "fastapi":
                _instrument_fastapi()
            return True  # contrib's FastAPI/Starlette instrumentors would record every request twice
        if name == "fastapi":
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor().instrument(**{"exclude_spans": ["send", "receive"], **kwargs})
            return True
        return False
    if name == "logging":
        _instrument_logging(kwargs)
        return True
    if name == "celery":
        import importlib.util

        if importlib.util.find_spec("celery") is None:
            raise ModuleNotFoundError("No module named 'celery'", name="celery")  # the launcher skips it
        # Instrumented the moment the app (or the celery command) imports Celery, not at start-up:
        # a web process that never enqueues a task does not pay ~0.2 s importing Celery.
        imports.when_imported("celery", lambda _module: _instrument_celery(kwargs))
        return True
    if name == "system_metrics":
        # Opt-in (OTELKIT_SYSTEM_METRICS), with otelkit's selection of metrics (otelkit.metrics.SYSTEM_METRICS).
        if settings.system_metrics:
            from otelkit.metrics import instrument_system_metrics

            instrument_system_metrics()
        return True
    return False


def _instrument_fastapi() -> None:
    asgi.instrument_fastapi()


def _instrument_logging(kwargs: dict[str, Any]) -> None:
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    from otelkit._runtime.logs import fastemit

    instrumentor = LoggingInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)
        fastemit.drop_idle_record_factory(kwargs)
    otel = handler.otel_handler()
    if otel is not None:
        handler.prepare_otel_handler(otel)


def _instrument_celery(kwargs: dict[str, Any]) -> None:
    """Spans from contrib's CeleryInstrumentor, then otelkit's hooks (metrics, log context, flushes).

    Raises ImportError when Celery or the instrumentation is missing (the launcher skips it).
    """
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from otelkit._runtime.celery import hooks

    instrumentor = CeleryInstrumentor()  # type: ignore[no-untyped-call]  # unannotated in contrib
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(**kwargs)
        _skip_dropped_histograms(instrumentor, kwargs)
        try:
            sdk_compat.short_celery_tracer(instrumentor)
        except Exception as exc:  # its spans go on starting through the SDK's start_span
            _log.debug("otelkit: keeping contrib's Celery tracer: %s", exc)
    hooks.install()


def _skip_dropped_histograms(instrumentor: Any, kwargs: dict[str, Any]) -> None:
    """No SDK record per task for contrib histograms otelkit's MeterProvider drops (no-ops instead)."""
    from opentelemetry import metrics

    from otelkit._runtime import providers

    meter_provider = kwargs.get("meter_provider") or metrics.get_meter_provider()
    if providers.drops_instruments(meter_provider):
        try:
            sdk_compat.skip_dropped_celery_histograms(instrumentor, providers.DROPPED_INSTRUMENTS)
        except Exception as exc:  # the records go on being dropped by the SDK
            _log.debug("otelkit: keeping contrib's Celery histograms: %s", exc)


def instrument_all(settings: Settings) -> None:
    """What the launcher's instrumentor loop does, for programmatic use."""
    import importlib.util

    if importlib.util.find_spec("fastapi") is not None:
        instrument_by_name("fastapi", {})
    _instrument_logging({})
    if importlib.util.find_spec("celery") is not None:
        imports.when_imported("celery", lambda _module: _instrument_celery({}))
    if settings.system_metrics:
        from otelkit.metrics import instrument_system_metrics

        instrument_system_metrics()
