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
        # Issue 18: generic module names give the project folder, the interpreter is unwrapped.
        (["/venv/bin/uvicorn", "main:app"], "myproj"),
        (["/venv/bin/python", "/venv/bin/uvicorn", "pkg.main:app"], "pkg"),
        (["/venv/bin/python", "-m", "uvicorn", "pkg.main:app", "--port", "1"], "pkg"),
        (["/venv/bin/celery", "-A", "main.celery", "worker"], "myproj-worker"),
        (["/venv/bin/python", "/venv/bin/celery", "-A", "pkg.celery_app", "worker"], "pkg-worker"),
        (["/usr/bin/python3", "-m", "pkg"], "pkg"),
        (["/usr/bin/python3", "-u", "-X", "dev", "-m", "pkg.cli", "run"], "pkg"),
        (["/usr/bin/python3", "script.py"], "script"),
        (["/usr/bin/python3", "main.py"], "myproj"),
        (["/usr/bin/python3", "-c", "import app; app.run()"], "myproj"),
        (["/usr/bin/python3"], "myproj"),
        (["-c", "x"], "myproj"),  # sys.argv at start-up
        (["-m"], "myproj"),
        # A bind address is no app: gunicorn's documented "-b 0.0.0.0:8000" gave the service name "0".
        (["/venv/bin/gunicorn", "-w", "4", "-b", "0.0.0.0:8000", "shop.main:app"], "shop"),
        (["/venv/bin/gunicorn", "--bind", "localhost:8000", "main:app"], "myproj"),
        (["/venv/bin/gunicorn", "-b", "unix:/run/shop.sock", "billing.api:create_app()"], "billing"),
        (["/venv/bin/hypercorn", "--bind", "[::]:8000", "shop.main:app"], "shop"),
        (["/venv/bin/hypercorn", "-b", "127.0.0.1:8000"], "myproj"),
    ],
)
def test_distro_default_service_name_from_command(argv, expected):
    assert env.default_service_name(argv, cwd="/srv/MyProj") == expected


def test_distro_default_service_name_in_a_real_process_started_with_c_and_m(tmp_path):
    import subprocess
    import sys

    project = tmp_path / "billing-api"
    (project / "billing").mkdir(parents=True)
    (project / "billing" / "__init__.py").write_text("")
    (project / "billing" / "__main__.py").write_text(
        "from otelkit._runtime.env import default_service_name; print(default_service_name())"
    )
    site = tmp_path / "site"
    site.mkdir()  # what the launchers see: the name derived at start-up, before the module runs
    (site / "sitecustomize.py").write_text(
        "from otelkit._runtime.env import default_service_name; print(default_service_name())"
    )
    env = {"PYTHONPATH": f"{site}:{project}", "PATH": "/usr/bin:/bin"}
    code = "pass"
    for args, expected in ((["-m", "billing"], "billing\nbilling"), (["-c", code], "billing-api")):
        done = subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected, done.stderr


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
    # otelkit's own instrumentation leaves exactly its health router untraced: no URL default.
    assert "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS" not in os.environ


def test_distro_excluded_urls_default_only_for_contribs_instrumentation(monkeypatch):
    import os

    monkeypatch.delenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", raising=False)
    monkeypatch.setenv("OTELKIT_HTTP_INSTRUMENTATION", "contrib")
    env.apply_env_defaults()
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
