"""``cencoder.c`` compiled for the running interpreter, for the tests that compare it with the Python code.

The test command's builds all carry the C module (``native.in_use()``, tests/unit/test_compiled.py);
a checkout without it still compares the two, with the module compiled here (warnings are errors).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[1] / "otelkit" / "_runtime" / "otlp" / "cencoder.c"


def build_cencoder(folder: Path, *defines: str) -> Any:
    """``cencoder.c`` compiled into ``folder`` and imported (not registered in ``sys.modules``)."""
    out = folder / ("cencoder" + str(sysconfig.get_config_var("EXT_SUFFIX")))
    include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", *defines]
    built = subprocess.run(["cc", *flags, f"-I{include}", str(SOURCE), "-o", str(out)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    spec = importlib.util.spec_from_file_location("cencoder", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
