"""The build: Python with otelkit's C encoder when a C compiler is there; pure Python; or compiled.

Everything else is in pyproject.toml. ``OTELKIT_COMPILE`` chooses:

- unset (the default): the Python sources, and the C modules ``otelkit/_runtime/compiled.py``
  lists as ``NATIVE`` (the OTLP encoder's common span and log record, ``cencoder.c``) built as
  optional extensions: where there is no C compiler or no Python headers, the build goes on
  without them and the Python encoder does everything;
- ``0``: pure Python, no C at all;
- ``1``: also the modules it lists as ``MODULES`` compiled with mypyc (it comes with mypy) into C
  extension modules beside their sources, and the ``NATIVE`` ones required; it needs mypy and a C
  compiler in the build environment (even to read the metadata), so install them first and build
  without isolation (README.md)::

    pip install 'mypy>=1.10' 'setuptools>=69'
    OTELKIT_COMPILE=1 pip install --no-build-isolation .

Each C module is built with the SHA-256 of its source (``SOURCE_SHA256``): otelkit does not use
one built from another source than the one beside it (a stale in-place build).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from setuptools import Extension, setup

_COMPILE_ENV = "OTELKIT_COMPILE"
_HERE = Path(__file__).resolve().parent


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _lists() -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec((_HERE / "otelkit" / "_runtime" / "compiled.py").read_text(), namespace)
    return namespace


def _native(required: bool) -> list[Extension]:
    """The C modules (``NATIVE``), each built with its source's SHA-256; optional unless ``required``."""
    out = []
    for name in _lists()["NATIVE"]:  # type: ignore[attr-defined]
        source = Path(*name.split(".")).with_suffix(".c")
        digest = hashlib.sha256((_HERE / source).read_bytes()).hexdigest()
        macros = [("OTELKIT_SOURCE_SHA256", f'"{digest}"')]
        out.append(Extension(name, [str(source)], define_macros=macros, optional=not required))
    return out


def _ext_modules() -> list[object]:
    value = os.environ.get(_COMPILE_ENV, "").strip()
    if value == "0":
        return []
    if value == "":
        return list(_native(required=False))
    if value != "1":
        _fail(
            f"{_COMPILE_ENV}={value!r} is not accepted; use 1 (compile the hot modules), 0 (pure Python, no C) "
            "or leave it unset (the C encoder where a C compiler is there)"
        )
    try:
        from mypyc.build import mypycify
    except ImportError:
        _fail(
            f"{_COMPILE_ENV}=1 needs mypy (which brings mypyc) in the build environment; install it and "
            "build with pip's --no-build-isolation, or unset the variable for the default build"
        )
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in _lists()["MODULES"]]  # type: ignore[attr-defined]
    # The optional extras (structlog, grpc, psutil) may be absent where this builds: mypy takes
    # their modules as untyped instead of failing the build.
    compiled = mypycify([*paths, "--ignore-missing-imports"], opt_level="3", group_name="otelkit._runtime._compiled")
    return [*compiled, *_native(required=True)]


setup(ext_modules=_ext_modules())
