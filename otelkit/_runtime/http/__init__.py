"""otelkit's lean HTTP server instrumentation: the ASGI wrapper (asgi) and its server spans (serverspan)."""
