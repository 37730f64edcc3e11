from __future__ import annotations

import otelkit


def test_public_api_all_names_exist_and_nothing_public_is_missing():
    assert sorted(otelkit.__all__) == otelkit.__all__
    for name in otelkit.__all__:
        assert hasattr(otelkit, name), name
    public = {
        name
        for name, value in vars(otelkit).items()
        if not name.startswith("_")
        and name.isidentifier()  # not pytest's assertion-rewriting helpers ("@py_builtins")
        and not getattr(value, "__name__", "").startswith("otelkit.")
    }
    assert public <= set(otelkit.__all__) | {"annotations"}


def test_public_api_submodules_are_not_shadowed():
    import importlib

    for name in ("health", "metrics", "context", "settings", "testing", "celery"):
        module = importlib.import_module(f"otelkit.{name}")
        assert getattr(otelkit, name, module) is module, name


def _modules_after_import(env: dict[str, str]) -> set[str]:
    import json
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELKIT_"))}
    code = (
        "import json, sys; before = set(sys.modules); import otelkit;"
        " print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stderr == ""
    return set(json.loads(out.stdout))


def test_public_api_import_is_cheap_with_no_otel_variable():
    # The launcher, the CLI and every app import otelkit at start-up: with nothing to check, the
    # OTEL_* check (and the logging, regex and URL modules it needs) is never imported.
    loaded = _modules_after_import({})
    assert not loaded & {"otelkit._runtime.envcheck", "logging", "re", "urllib.parse", "dataclasses", "inspect"}


def test_public_api_import_checks_otel_variables_without_heavy_modules():
    loaded = _modules_after_import({"OTEL_SERVICE_NAME": "svc"})
    assert "otelkit._runtime.envcheck" in loaded
    assert not loaded & {"dataclasses", "inspect", "logging"}
