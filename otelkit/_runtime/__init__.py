"""_runtime: everything otelkit runs inside the user's process, behind the public modules.

Set-up and the one owner of shared state (``state``), the ``OTEL_*`` defaults (``env``), providers
and exporters, the OTLP encoder and fast exporters (``otlp/``), the HTTP instrumentation
(``http/``), logging (``logs/``), the Celery hooks (``celery/``), shutdown and flushing, secret
redaction, ``monitor`` and the metric helpers' internals. It may import the OpenTelemetry API and
SDK, the public top-level otelkit modules (``errors``, ``settings``, ``context``, ``metrics``) and
other ``_runtime`` modules; never ``otelkit.ops``, ``otelkit.local`` nor ``otelkit.cli`` (they
would load Jinja2, YAML and subprocess code into every app). Code here runs on its own in the
user's process: it logs and never raises into the app, except from the documented public calls
(tests/unit/test_layering.py enforces the imports).
"""
