"""Logs: stdlib logging (and structlog through it) into the OTel logs SDK, plus console output.

What otelkit does to logging, and why (console output in ``console``, the OTel handler in
``handler``, structlog in ``structlog_bridge``):

- The root logger's level is set to ``OTELKIT_LOG_LEVEL`` (INFO): Python's default WARNING would
  drop every INFO record before any handler sees it.
- The OTel handler (opentelemetry-instrumentation-logging's ``LoggingHandler``, attached to the root
  logger) gets a filter dropping the SDK's own ``opentelemetry.*`` records: an exporter failure
  logged into a dead logs pipeline would never be seen and would feed itself.
- Loggers that do not propagate to root but have handlers of their own (uvicorn's ``uvicorn`` and
  ``uvicorn.access``) get the OTel handler too, after every ``dictConfig``/``fileConfig`` call:
  uvicorn configures its loggers after otelkit has run. Each record is exported exactly once.
- Records logged while a request is handled carry its id (:mod:`otelkit.context`): the OTel
  attribute ``request.id``, the console field ``request_id``. Only when there is one.
- A console handler on stderr (``OTELKIT_LOG_CONSOLE``): JSON lines in production, a readable line
  in development, both carrying ``trace_id``/``span_id`` of the active span and ``extra=`` fields
  (message, exception text and fields redacted as in the exporters, :mod:`otelkit._runtime.redact`).
  It is only added when the root logger has no handler of the user's, and it goes away when the
  app configures the root logger itself (``dictConfig``, ``basicConfig`` at import, Celery's worker
  set-up): one console, the app's when it has one. otelkit never replaces nor duplicates a handler
  the app configured; it re-adds only its OTel handler where the app's configuration removed it.
- The SDK's own records (``opentelemetry.*``: exporter failures) pass one gate whatever the app's
  logging: a handler on the ``opentelemetry`` logger lets one warning per message through per
  ``OTELKIT_EXPORT_ERROR_INTERVAL`` and hands it to the root logger's handlers.
- ``extra=`` values the SDK would warn about (datetimes, objects such as a ``weakref.proxy``)
  become ISO strings or ``str()`` where the OTel handler picks the extras: never a warning per record.
- A record of an exception that escaped a request (uvicorn's "Exception in ASGI application",
  written after the request ended) carries that request's trace id and request id.
- uvicorn's access-log records carry the request line with its raw query string: a filter on the
  ``uvicorn.access`` logger redacts its sensitive parameters in the record itself
  (:func:`otelkit._runtime.logs.console.redact_access_logs`), so no handler — otelkit's, uvicorn's,
  the app's — sees them.
- structlog, when installed and not configured by the app, is routed through stdlib with
  ``render_to_log_kwargs`` so its key-value pairs become OTel attributes
  (:func:`otelkit._runtime.logs.structlog_bridge.configure_structlog`).
"""
