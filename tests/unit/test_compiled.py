"""The compiled build (``OTELKIT_COMPILE=1``, scripts/compiled.sh) and its pure-Python fallback.

scripts/test runs the unit tests twice on the newest OpenTelemetry: from the sources, and in a copy
with the compiled extension modules beside them (``OTELKIT_EXPECT_COMPILED=1``). This test is what
makes each of the two runs test what it says it tests.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from otelkit._runtime import compiled

ROOT = Path(__file__).resolve().parents[2]


def test_compiled_every_listed_module_runs_as_the_build_under_test_says() -> None:
    expected = os.environ.get("OTELKIT_EXPECT_COMPILED") == "1"
    status = compiled.compiled_modules()
    assert {name: status[name] for name in compiled.MODULES} == dict.fromkeys(compiled.MODULES, expected), (
        "OTELKIT_EXPECT_COMPILED=1 but some modules run from source"
        if expected
        else "compiled extension modules are on the path: run the compiled tests with OTELKIT_EXPECT_COMPILED=1"
    )
    # The C encoder: every build the test command makes has it (scripts/venv.sh installs a C
    # compiler first), current with its source (native.py refuses a stale one).
    assert shutil.which("cc") is not None, "no C compiler: scripts/test installs gcc"
    assert {name: status[name] for name in compiled.NATIVE} == dict.fromkeys(compiled.NATIVE, True), (
        "the C encoder is not in use: rebuild it in place (pip install --no-deps -e .), as scripts/test does"
    )


def test_compiled_modules_are_existing_sources_setup_py_can_read() -> None:
    namespace: dict[str, object] = {}
    exec((ROOT / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    assert (namespace["MODULES"], namespace["NATIVE"]) == (compiled.MODULES, compiled.NATIVE)
    for name in compiled.MODULES:
        assert (ROOT / Path(*name.split("."))).with_suffix(".py").is_file(), name
    for name in compiled.NATIVE:  # written in C: a source of its own, no Python module of the same name
        assert (ROOT / Path(*name.split("."))).with_suffix(".c").is_file(), name
        assert not (ROOT / Path(*name.split("."))).with_suffix(".py").exists(), name
    assert tuple(sorted(set(compiled.MODULES))) == compiled.MODULES


def test_compiled_build_refuses_a_bad_switch_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "setup.py", "--name"],
        cwd=ROOT,
        env={**os.environ, "OTELKIT_COMPILE": "yes"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: OTELKIT_COMPILE='yes' is not accepted; use 1 (compile the hot modules), 0 (pure Python, no C)"
        " or leave it unset (the C encoder where a C compiler is there)"
    ]


def test_compiled_modules_define_no_subclass_of_an_interpreted_class() -> None:
    """mypyc/mypyc#1102: such a subclass, compiled, leaves its weak references dangling (a crash)."""
    for name in compiled.MODULES:
        tree = ast.parse((ROOT / Path(*name.split("."))).with_suffix(".py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(base) for base in node.bases]
                assert bases in ([], ["Protocol"]), f"{name}.{node.name} derives from {bases}"
