from __future__ import annotations

import sys

from otelkit._runtime import imports as _imports


def test_imports_hook_runs_after_first_import(tmp_path, monkeypatch):
    (tmp_path / "lazy_mod_x.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    _imports.when_imported("lazy_mod_x", lambda module: seen.append(module.VALUE + 1))
    assert seen == []
    import lazy_mod_x  # noqa: F401

    assert seen == [42]
    sys.modules.pop("lazy_mod_x")


def test_imports_hook_runs_at_once_when_already_imported():
    seen = []
    _imports.when_imported("json", lambda module: seen.append(module.__name__))
    assert seen == ["json"]


def test_imports_failing_hook_is_logged_not_raised(tmp_path, monkeypatch, caplog):
    (tmp_path / "lazy_mod_y.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def broken(module):
        raise RuntimeError("boom")

    _imports.when_imported("lazy_mod_y", broken)
    import lazy_mod_y  # noqa: F401

    assert "setting up lazy_mod_y after its import failed: boom" in caplog.text
    sys.modules.pop("lazy_mod_y")


def test_imports_package_resources_still_load(tmp_path, monkeypatch):
    pkg = tmp_path / "lazy_pkg_z"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "data.txt").write_text("payload")
    monkeypatch.syspath_prepend(str(tmp_path))
    _imports.when_imported("lazy_pkg_z", lambda module: None)
    import importlib.resources

    import lazy_pkg_z

    assert importlib.resources.files(lazy_pkg_z).joinpath("data.txt").read_text() == "payload"
    sys.modules.pop("lazy_pkg_z")
