from __future__ import annotations

import re

import pytest

from otelkit._runtime import env


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/venv/bin/uvicorn", "shop.main:app", "--port", "8000"], "shop"),
        (["/venv/bin/uvicorn", "app:app"], "myproj"),
        (["/venv/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker", "billing.api:create_app()"], "billing"),
        (["/venv/bin/celery", "-A", "shop.tasks", "worker", "-l", "info"], "shop-worker"),
        (["/venv/bin/celery", "--app=shop", "beat"], "shop-beat"),
        (["/usr/bin/python3", "-m", "reports.run"], "reports"),
        (["/usr/bin/python3.11", "Nightly Job.py"], "nightly-job"),
        (["/usr/local/bin/my_tool"], "my_tool"),
    ],
)
def test_distro_default_service_name_from_command(argv, expected):
    assert env.default_service_name(argv, cwd="/srv/MyProj") == expected


def test_distro_env_defaults_never_override_user_values(monkeypatch):
    for var in list(__import__("os").environ):
        if var.startswith("OTEL_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "mine")
    env.apply_env_defaults()
    import os

    assert os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert os.environ["OTEL_LOGS_EXPORTER"] == "none"
    assert os.environ["OTEL_SERVICE_NAME"] == "mine"
    assert os.environ["OTEL_TRACES_EXPORTER"] == "otlp"
    assert os.environ["OTEL_METRICS_EXPORTER"] == "otlp"
    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
    assert os.environ["OTEL_PYTHON_CONFIGURATOR"] == "otelkit"
    assert os.environ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"] == env.DEFAULT_EXCLUDED_URLS


def test_distro_service_name_from_resource_attributes_is_kept(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=a")
    env.apply_env_defaults()
    import os

    assert "OTEL_SERVICE_NAME" not in os.environ


@pytest.mark.parametrize(
    ("url", "excluded"),
    [
        ("http://svc:8000/health", True),
        ("http://svc:8000/health/", True),
        ("http://svc:8000/health/live", True),
        ("https://svc/health/ready?verbose=1", True),
        ("http://svc:8000/healthcare", False),
        ("http://svc:8000/api/health", False),
        ("http://svc:8000/items?next=/health", False),
        ("http://svc:8000/health/live/extra", False),
    ],
)
def test_distro_default_excluded_urls_are_anchored(url, excluded):
    assert (re.search(env.DEFAULT_EXCLUDED_URLS, url) is not None) is excluded
