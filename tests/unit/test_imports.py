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


def _instrumentation_pair(tmp_path, monkeypatch, suffix: str) -> None:
    """``lazy_lib_<s>`` and ``lazy_lib2_<s>``, and ``lazy_instr_<s>``, which imports both, as contrib's httpx does."""
    (tmp_path / f"lazy_lib_{suffix}.py").write_text("PATCHED = []\n")
    (tmp_path / f"lazy_lib2_{suffix}.py").write_text("PATCHED = []\n")
    (tmp_path / f"lazy_instr_{suffix}.py").write_text(
        f"import lazy_lib_{suffix}\nimport lazy_lib2_{suffix}\n\n\n"
        "class Instrumentor:\n    def instrument(self, lib):\n        lib.PATCHED.append(True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def _cleanup(suffix: str) -> None:
    for name in (f"lazy_lib_{suffix}", f"lazy_lib2_{suffix}", f"lazy_instr_{suffix}"):
        sys.modules.pop(name, None)


def _instrument_when_imported(lib: str, instr: str) -> None:
    import importlib

    _imports.when_imported(lib, lambda module: importlib.import_module(instr).Instrumentor().instrument(module))


def test_imports_hook_fired_while_otelkit_loads_an_instrumentation_waits_until_it_is_loaded(
    tmp_path, monkeypatch, caplog
):
    # The launcher instruments httpx2 at once (its library is not installed): loading contrib's
    # module imports httpx, whose hook needs that same module, still half-initialized.
    _instrumentation_pair(tmp_path, monkeypatch, "a")
    _instrument_when_imported("lazy_lib_a", "lazy_instr_a")
    try:
        with _imports.deferring():
            import lazy_instr_a  # noqa: F401

            assert sys.modules["lazy_lib_a"].PATCHED == []  # not yet: the module is still loading
        assert sys.modules["lazy_lib_a"].PATCHED == [True]
        assert "failed" not in caplog.text
    finally:
        _cleanup("a")


def test_imports_hook_whose_instrumentation_imports_another_watched_library(tmp_path, monkeypatch, caplog):
    # The app imports httpx; loading the instrumentation imports httpx2, also watched, whose hook
    # loads the same instrumentation module: it runs once the first hook is done.
    _instrumentation_pair(tmp_path, monkeypatch, "b")
    _instrument_when_imported("lazy_lib_b", "lazy_instr_b")
    _instrument_when_imported("lazy_lib2_b", "lazy_instr_b")
    try:
        import lazy_lib_b

        assert lazy_lib_b.PATCHED == [True]
        assert sys.modules["lazy_lib2_b"].PATCHED == [True]
        assert "failed" not in caplog.text
    finally:
        _cleanup("b")
