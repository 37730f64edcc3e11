"""The build: pure Python, or with ``OTELKIT_COMPILE=1`` the hot modules compiled as well.

Everything else is in pyproject.toml. ``OTELKIT_COMPILE=1`` compiles the modules listed in
``otelkit/_runtime/compiled.py`` with mypyc (it comes with mypy) into C extension modules that
ship beside their sources, and builds the C modules it lists as ``NATIVE``; it needs mypy and a C
compiler in the build environment (even to read the metadata), so install them first and build
without isolation (README.md)::

    pip install 'mypy>=1.10' 'setuptools>=69'
    OTELKIT_COMPILE=1 pip install --no-build-isolation .
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from setuptools import Extension, setup

_COMPILE_ENV = "OTELKIT_COMPILE"


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _ext_modules() -> list[object]:
    value = os.environ.get(_COMPILE_ENV, "").strip()
    if value in ("", "0"):
        return []
    if value != "1":
        _fail(f"{_COMPILE_ENV}={value!r} is not accepted; use 1 (compile the hot modules) or 0 (pure Python)")
    try:
        from mypyc.build import mypycify
    except ImportError:
        _fail(
            f"{_COMPILE_ENV}=1 needs mypy (which brings mypyc) in the build environment; install it and "
            "build with pip's --no-build-isolation, or unset the variable for a pure-Python build"
        )
    here = Path(__file__).resolve().parent
    namespace: dict[str, object] = {}
    exec((here / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in namespace["MODULES"]]  # type: ignore[attr-defined]
    # The optional extras (structlog, grpc, psutil) may be absent where this builds: mypy takes
    # their modules as untyped instead of failing the build.
    compiled = mypycify([*paths, "--ignore-missing-imports"], opt_level="3", group_name="otelkit._runtime._compiled")
    # And the C modules written as C (NATIVE: the OTLP encoder's common span and log record).
    native = [Extension(name, [str(Path(*name.split(".")).with_suffix(".c"))]) for name in namespace["NATIVE"]]  # type: ignore[attr-defined]
    return [*compiled, *native]


setup(ext_modules=_ext_modules())
