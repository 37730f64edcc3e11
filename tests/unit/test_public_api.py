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
