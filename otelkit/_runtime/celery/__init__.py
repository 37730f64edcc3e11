"""The Celery worker hooks behind :mod:`otelkit.celery`: signal receivers (hooks) and library repairs (patches)."""
